"""The recommendation and its reasons, in sentences made from the same comparisons the choice used."""

from __future__ import annotations

import torch

from ..stats import interval, paired_interval
from . import ladder
from .checks import ADVISED_VAL

__all__ = ["recommend"]


def _points(x: float) -> str:
    return f"{100 * x:.1f} points"


def recommend(rungs: list[ladder.Rung], chosen: ladder.Rung, val_labels: torch.Tensor, curve: list[dict],
              skipped: dict[str, str] | None = None, noun: str = "image") -> list[str]:
    """The recommendation, then its reasons, each a sentence with the numbers behind it; `noun`
    ("image" or "text") says what the examples are.

    Two methods are compared on the same validation images (stats.paired_interval): a gain is
    called real only when it is larger than its 95% interval.
    """
    kinds = {r.kind: r for r in rungs}
    probe, top, cnn = kinds.get("probe"), kinds.get("top"), kinds.get("scratch")
    best = ladder.best_of(rungs)
    n_val = len(val_labels)
    tuned = "the top stages" if noun == "image" else "the top encoder layers"
    baseline = "small CNN trained from scratch" if noun == "image" else "TF-IDF + logistic regression baseline"
    far = ("your images may be far from the photos the backbone learnt from (chapter 6)" if noun == "image" else
           "the words alone may carry your labels, or your texts may be far from those the encoder learnt from")

    def compare(a: ladder.Rung, b: ladder.Rung) -> tuple[float, float]:
        return paired_interval(a.val_pred, b.val_pred, val_labels)

    behind, noise = compare(best, chosen)  # the comparison ladder.choose made
    lines = [f"Use the {chosen.name}: {chosen.val_acc:.1%} on validation (± {interval(chosen.val_acc, n_val):.1%}"
             f"), trained in {chosen.seconds:.1f} s" + ("." if chosen is best else
             f"; the best, the {best.name} ({best.val_acc:.1%}), is {_points(behind)} ahead, within the noise "
             f"(± {_points(noise)}) of this validation split, and costs more to train or to run.")]
    if top is not None and probe is not None:
        gain, noise = compare(top, probe)
        if gain > noise:
            lines.append(f"Fine-tuning {tuned} gains {_points(gain)} over the linear probe, more than the "
                         f"noise (± {_points(noise)}): worth its {top.seconds:.0f} s.")
        elif gain > 0:
            lines.append(f"Fine-tuning {tuned} scored {_points(gain)} above the linear probe, within the noise "
                         f"(± {_points(noise)}): this validation split cannot tell them apart.")
        else:
            lines.append(f"Fine-tuning {tuned} did not beat the linear probe ({top.val_acc:.1%} vs "
                         f"{probe.val_acc:.1%}): the pretrained features already fit this task as well as it can tell.")
    if cnn is not None:
        transfer = max((r for r in rungs if r.kind != "scratch"), key=lambda r: r.val_acc)
        margin, noise = compare(transfer, cnn)
        if margin > noise:
            lines.append(f"Transfer beats the {baseline} by {_points(margin)}, more than the "
                         f"noise (± {_points(noise)}): {transfer.val_acc:.1%} vs {cnn.val_acc:.1%}.")
        else:
            lines.append(f"The {baseline} is within the noise of transfer ({cnn.val_acc:.1%} vs "
                         f"{transfer.val_acc:.1%}, ± {_points(noise)}): {far}; compare on more data before trusting "
                         "transfer here.")
    if len(curve) >= 2:
        half = min(curve[:-1], key=lambda r: abs(r["fraction"] - 0.5))
        gain, noise = paired_interval(curve[-1]["val_pred"], half["val_pred"], val_labels)
        verdict = (": more labels are likely to help." if gain > noise else
                   f", within the noise (± {_points(noise)}): this validation split cannot tell whether more labels "
                   "would help.")
        lines.append(f"The probe gained {_points(gain)} from {half['fraction']:.0%} to all of the labels" + verdict)
    close = [r for r in rungs if r is not best and ladder.close_to_best(best, r, val_labels)]
    if close or n_val < ADVISED_VAL:
        names = ", ".join(r.name for r in close) or "none"
        advised = f" (at least {ADVISED_VAL} are advised)" if n_val < ADVISED_VAL else ""
        lines.append(f"Caution: the validation split has {n_val} {noun}s{advised}; within the noise of the best: "
                     f"{names}. More validation {noun}s might tell them apart.")
    flattered = [r for r in rungs if r.tried > 1]
    if flattered:
        most = max(flattered, key=lambda r: ladder.selection_lift(r, n_val))
        settings = "; ".join(f"the {r.name}, {r.tried}" for r in flattered)
        lines.append(f"Optimism: these scores are each the best of several settings tried on this same validation "
                     f"split ({settings}), so they flatter those methods, by up to about "
                     f"{_points(ladder.selection_lift(most, n_val))} for the {most.name} (one standard error times "
                     "the expected best of that many draws); the test split, scored once, is not flattered.")
    for name, why in (skipped or {}).items():
        lines.append(f"Not run: {name} ({why}); give more --minutes to include it.")
    return lines
