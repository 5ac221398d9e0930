"""`tl-advise --int8`: an int8 copy of the exported model, kept only if it holds up (chapter 11).

Images get static int8 with one scale per channel, calibrated on training images; texts get
dynamic int8 (int8 weights, activations quantized on the fly). The int8 file is scored on the
validation split beside model.onnx and kept, as model.int8.onnx, only when it lost at most
`TOLERANCE` of validation accuracy; the report gives both accuracies, sizes and times either way.
A model ONNX Runtime cannot quantize is said so, and the rest of the advice stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import onnxmodels
from ..train import take
from . import deploy, owned

__all__ = ["TOLERANCE", "Int8", "calibration_batches", "quantize"]

TOLERANCE = 0.01  # the largest loss of validation accuracy an int8 model may show and still be kept
CALIBRATION = 256  # training images that set static quantization's activation ranges
FILE = "model.int8.onnx"


@dataclass
class Int8:
    """What quantizing the exported model gave, and whether the int8 file was kept."""

    method: str
    float_acc: float
    int8_acc: float
    float_mb: float
    int8_mb: float
    float_ms: float  # milliseconds per example, batches of up to 64, median of repeats
    int8_ms: float
    tolerance: float
    kept: bool
    error: str | None = None  # why quantizing failed, when it did

    def sentence(self) -> str:
        """What the report and the command line say about it."""
        if self.error:
            return (f"int8 ({self.method}): not written, ONNX Runtime could not quantize model.onnx ({self.error}). "
                    "model.onnx and the rest of this advice are unaffected; chapter 11 shows how to quantize by hand.")
        numbers = (f"int8 ({self.method}): {self.int8_acc:.1%} on validation against {self.float_acc:.1%} in float32, "
                   f"{self.int8_mb:.1f} MB against {self.float_mb:.1f} MB, {self.int8_ms:.2f} ms against "
                   f"{self.float_ms:.2f} ms per example on this machine")
        if self.kept:
            return f"{numbers}: kept as model/{FILE} (tl-predict --int8 runs it)."
        return (f"{numbers}: not kept, it lost more than {points(self.tolerance)} of validation accuracy. Use "
                "model.onnx, or quantize by hand (chapter 11 shows which settings lose accuracy).")


def points(tolerance: float) -> str:
    """A tolerance in words: 0.01 -> "1 percentage point"."""
    value = tolerance * 100
    return f"{value:g} percentage point{'' if value == 1 else 's'}"


def calibration_batches(inputs: torch.Tensor | dict, n: int = CALIBRATION, batch: int = 32,
                        seed: int = 0) -> list[dict]:
    """Feeds of `n` training inputs drawn at random (a split is stored class by class, so its first
    inputs would all be of one class), in batches, for static quantization."""
    count = len(inputs["input_ids"]) if isinstance(inputs, dict) else len(inputs)
    drawn = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:n]
    return [deploy.onnx_feed(take(inputs, part)) for part in drawn.split(batch)]


def _accuracy(session, inputs, labels: torch.Tensor) -> float:
    count = len(labels)
    probs = np.concatenate([deploy.onnx_probabilities(session, take(inputs, torch.arange(i, min(i + 256, count))))
                            for i in range(0, count, 256)])
    return float((probs.argmax(1) == labels.numpy()).mean())


def quantize(folder: Path, config: dict, val_inputs, val_labels: torch.Tensor, train_inputs, *,
             tolerance: float = TOLERANCE) -> Int8:
    """Quantize folder/model.onnx, score both on validation, keep folder/model.int8.onnx only within `tolerance`."""
    folder = Path(folder)
    if len(val_labels) == 0:
        raise ValueError("an int8 copy is kept only if it scores within the tolerance on validation, and the "
                         "validation split is empty: give it some examples")
    src, dst = folder / "model.onnx", folder / FILE
    method = "dynamic" if config.get("input") == "texts" else "static, per channel"
    try:
        if method == "dynamic":
            onnxmodels.dynamic(src, dst)
        else:
            onnxmodels.static(src, dst, calibration_batches(train_inputs), per_channel=True)
    except Exception as exc:  # noqa: BLE001 - an operator the quantizer does not know: said, and the advice stands
        dst.unlink(missing_ok=True)
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}" if str(exc).strip() else type(exc).__name__
        return Int8(method, math.nan, math.nan, onnxmodels.megabytes(src), math.nan, math.nan, math.nan, tolerance,
                    kept=False, error=reason)
    sessions = {"float": onnxmodels.session(src), "int8": onnxmodels.session(dst)}
    timed = min(64, len(val_labels))  # examples per timed call
    feed = deploy.onnx_feed(take(val_inputs, torch.arange(timed)))
    accs = {k: _accuracy(s, val_inputs, val_labels) for k, s in sessions.items()}
    ms = {k: 1000 * onnxmodels.seconds_per_call(s, feed) / timed for k, s in sessions.items()}
    result = Int8(method, accs["float"], accs["int8"], onnxmodels.megabytes(src), onnxmodels.megabytes(dst),
                  ms["float"], ms["int8"], tolerance, kept=accs["int8"] >= accs["float"] - tolerance - 1e-9)
    if result.kept:
        owned.own(folder, [FILE])  # the model folder's files: a later save of another model removes it
    else:
        dst.unlink()
    return result
