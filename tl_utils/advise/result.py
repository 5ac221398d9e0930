"""What a `tl-advise` run found and decided (`Advice`), and the error for input it cannot use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..stats import interval
from . import checks, ladder

__all__ = ["Advice", "AdviseError", "STAGES"]

STAGES = ("read", "check", "split", "features", "ladder", "choose", "save and export", "report")  # tl-advise's, in order


class AdviseError(ValueError):
    """Input the tool cannot work with; the message says what to change."""


@dataclass
class Advice:
    """Everything tl-advise measured and decided; `out` holds report.md, figures/ and model/."""

    out: Path
    findings: checks.Findings
    sizes: dict[str, int]  # images per split, after leaks were left out
    rungs: list[ladder.Rung]
    chosen: ladder.Rung
    reasons: list[str]
    curve: list[dict]
    val_labels: torch.Tensor
    test_acc: float | None
    onnx_difference: float
    seconds: float
    skipped_methods: dict[str, str] = field(default_factory=dict)
    int8: Any = None  # an int8.Int8 when --int8 was asked for (result comes before int8 in the layers)

    def table(self) -> pd.DataFrame:
        """One row per method: validation accuracy, its 95% interval, seconds, trainable parameters."""
        n = self.sizes["val"]
        return pd.DataFrame([{"method": r.name, "validation accuracy": r.val_acc,
                              "± (95%)": interval(r.val_acc, n), "seconds": r.seconds,
                              "trainable parameters": r.trainable, "chosen": r is self.chosen}
                             for r in self.rungs]).set_index("method")
