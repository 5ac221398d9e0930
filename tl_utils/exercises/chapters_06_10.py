"""The exercises' checks of chapters 6 to 10 and appendix A."""

from __future__ import annotations

import torch

from .answers import as_number, conclusion_answer, exercise, letters, number_answer

# ---------------------------------------------------------------- chapter 6


@exercise("06.1")
def _check_06_1(answer) -> tuple[bool, str]:
    try:
        value, negative = answer
    except (TypeError, ValueError):
        return False, "answer with a pair (gap, is_negative_transfer), e.g. (0.1, False)"
    if abs(value + 0.06) < 1e-6:
        return False, "the sign is reversed: the gap is the error WITH the source minus the error WITHOUT it."
    if abs(value - 0.06) > 1e-6:
        return False, "subtract the two errors as fractions: 0.31 - 0.25."
    if negative is not True:
        return False, "the gap is right; a positive gap means the source made things worse."
    return True, "a gap of +0.06: six points of error added by the source, negative transfer."


@exercise("06.2")
def _check_06_2(answer) -> tuple[bool, str]:
    given = letters(answer)
    if given is None:
        return False, "answer with a set of letters, e.g. {'a', 'b'}"
    if given == {"a", "c", "d"}:
        return True, "a broader source, fine-tuning and fewer transferred layers all shrank the gap."
    if "b" in given:
        return False, "freezing more made it worse: frozen deep features were the riskiest transfer in the heat map."
    if "e" in given:
        return False, "more training on the source makes its top layers more specific to the source, not less."
    return False, "look at the heat map's rows for each method, and at ImageNet's row."


@exercise("06.3")
def _check_06_3(answer, *, one_stage: float, all_stages: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"gap, first stage only": one_stage, "gap, all stages frozen": all_stages},
                  "smaller" if one_stage < all_stages else "larger", "smaller", ("smaller", "larger"),
                  "the first stage's filters are generic; the later ones are what made the source narrow.")


# ---------------------------------------------------------------- chapter 7


@exercise("07.1")
def _check_07_1(answer) -> tuple[bool, str]:
    if answer == 1100:
        return True, "1000 new images plus 10% of the 1000 old ones."
    if answer == 100:
        return False, "that is only the replayed part; the new task's images are all there too."
    return False, "count the new images and add the fraction of the old ones that is replayed."


@exercise("07.2")
def _check_07_2(answer, *, fisher) -> tuple[bool, str]:
    values = torch.cat([f.detach().flatten().cpu() for f in fisher.values()])
    expected = (values > values.max() / 100).float().mean().item()
    return number_answer(
        answer, expected, 1e-4,
        f"only {expected:.1%} of the weights matter much for task A by this measure; EWC lets the rest move.",
        [((values > values.mean()).float().mean().item(), "that compares with the mean; compare with max / 100."),
         (1 - expected, "that is the fraction below the threshold; count the weights above it.")],
        "flatten every tensor in `fisher`, join them, and count the values above max / 100.")


@exercise("07.3")
def _check_07_3(answer, *, stronger: float, strongest_swept: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"task B, ten times stronger": stronger, "task B, strongest in the sweep": strongest_swept},
                  "higher" if stronger > strongest_swept else "lower", "lower", ("higher", "lower"),
                  "the harder the pull towards the weights after A, the less room to learn B.")


# ---------------------------------------------------------------- chapter 8


@exercise("08.1")
def _check_08_1(answer, *, history) -> tuple[bool, str]:
    losses = [row["val_loss"] for row in history]
    best, stop = 0, len(losses)
    for epoch, loss in enumerate(losses):
        if loss < losses[best]:
            best = epoch
        if epoch - best >= 2 and epoch + 1 < len(losses):
            stop = epoch + 1
            break
    expected = (stop, best + 1)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return False, "answer with a pair: (the epoch it stops after, the epoch whose weights it keeps)"
    try:
        given = tuple(int(a) for a in answer)
    except (TypeError, ValueError):
        return False, f"answer with two epoch numbers, e.g. (11, 9), not {answer!r}"
    if given == expected:
        return True, (f"the lowest validation loss came at epoch {expected[1]}; two epochs without a lower one "
                      f"end the run after epoch {expected[0]}, with epoch {expected[1]}'s weights.")
    if given == expected[::-1]:
        return False, "the pair is the other way round: first the epoch it stops after, then the one it keeps."
    if given[1] == expected[1]:
        return False, "the kept epoch is right; it stops once `patience` epochs in a row bring no lower loss."
    return False, "walk through history[i]['val_loss'] keeping the lowest so far; stop two epochs after it."


@exercise("08.2")
def _check_08_2(answer, *, plain: float, broken: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"without augmentation": plain, "with your label-breaking augmentation": broken},
                  "falls" if broken < plain else "rises", "falls", ("falls", "rises"),
                  "an augmentation must keep the label true; random rotations of up to 180 degrees make many digits "
                  "unreadable and turn some 6s into 9s.")


# ---------------------------------------------------------------- chapter 9
@exercise("09.1")
def _check_09_1(answer) -> tuple[bool, str]:
    d_in, d_out, r = 384, 1536, 8  # MiniLM's intermediate.dense, the exercise's rank
    return number_answer(
        answer, r * (d_in + d_out), 0.5,
        f"A is {r} x {d_in} and B is {d_out} x {r}: {r * (d_in + d_out):,} numbers, against {d_in * d_out:,} in the "
        "frozen weight.",
        [(d_in * d_out, "that is the whole frozen weight; LoRA trains two thin matrices instead"),
         (r * (d_in + d_out) + d_out, "the bias belongs to the frozen layer: it does not train"),
         (r * d_in, "that is A alone; B trains too"), (r * d_out, "that is B alone; A trains too"),
         (r * r, "A and B are not r x r: each has one side of the layer's size")],
        "A maps the layer's input to r numbers, B maps r numbers to its output: count both.")


@exercise("09.2")
def _check_09_2(answer, *, rank_4: float, rank_64: float, se: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"rank 4": rank_4, "rank 64": rank_64},
                  "higher" if rank_64 > rank_4 + 2 * se else "not higher", "not higher", ("higher", "not higher"),
                  f"two standard errors are {2 * se:.1%} here. This run changes the rank and the update's scale "
                  "together (ALPHA / r is sixteen times smaller at rank 64), so it cannot say which one mattered: "
                  "LoRA's authors found small ranks enough on many tasks, and rsLoRA's that the smaller scale can "
                  "be what holds a large rank back. Train rank 64 with alpha=ALPHA * 16 to separate the two.")


# ---------------------------------------------------------------- appendix A
@exercise("A.1")
def _check_a_1(answer) -> tuple[bool, str]:
    processes, batch, accumulate = 4, 8, 2
    return number_answer(
        answer, processes * batch * accumulate, 0.5,
        f"{processes} processes x {batch} examples x {accumulate} accumulated batches: one step averages the "
        f"gradients of {processes * batch * accumulate} examples.",
        [(processes * batch, "that is one forward pass on every process; the step waits for the accumulated batch too"),
         (batch * accumulate, "that is one process's share; the other processes' shares are averaged in"),
         (batch, "batch_size counts one process's forward pass, not the step")],
        "multiply what one forward pass sees by the number of processes and by the batches accumulated.")


@exercise("A.2")
def _check_a_2(answer) -> tuple[bool, str]:
    theirs, yours, batch = 4, 2, 8
    return number_answer(
        answer, theirs * batch // yours, 0.5,
        f"{theirs} x {batch} = {theirs * batch} examples per step; on {yours} processes that is "
        f"{theirs * batch // yours} each (or batch_size={batch} with accumulate={theirs // yours}).",
        [(batch, f"with the same batch_size each step sees {yours} x {batch}, half the examples: the tuned rate "
                 "no longer fits"),
         (theirs * batch, "that is the whole step's batch; batch_size counts one process's share")],
        "keep processes x batch_size (x accumulate) the same as theirs.")


# ---------------------------------------------------------------- chapter 10
def _photo_variants() -> dict[str, torch.Tensor]:
    """A real photo and four changed copies, as chapter 10's exercise 10.1 describes them."""
    import io

    import numpy as np
    from PIL import Image

    from .. import registry

    names, photos, _ = registry.sample_photos()
    original = Image.fromarray(photos[names.index("espresso")].permute(1, 2, 0).numpy())
    w, h = original.size
    buffer = io.BytesIO()
    original.resize((w // 2, h // 2)).save(buffer, "JPEG", quality=60)
    variants = {"original": original, "a": Image.open(io.BytesIO(buffer.getvalue())),
                "b": original.crop((w // 10, h // 10, w - w // 10, h - h // 10)),
                "c": Image.fromarray(np.ascontiguousarray(np.asarray(original)[..., ::-1])),  # red and blue swapped
                "d": original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)}
    return {k: torch.from_numpy(np.asarray(v.convert("RGB").resize((64, 64))).copy()).permute(2, 0, 1)
            for k, v in variants.items()}


@exercise("10.1")
def _check_10_1(answer) -> tuple[bool, str]:
    from .. import copies

    variants = _photo_variants()
    found = copies.find_copies(torch.stack(list(variants.values())))
    keys = list(variants)
    expected = {keys[c.second] for c in found if c.first == 0}
    given = letters(answer)
    if given is None or not given <= {"a", "b", "c", "d"}:
        return False, "answer with a set of letters among 'a', 'b', 'c', 'd', e.g. {'a'}"
    similarity = {keys[c.second]: c.similarity for c in found if c.first == 0}
    if given == expected:
        return True, (f"found: {sorted(expected)} (similarities {similarity}). The check compares grey thumbnails: "
                      "it survives resizing and recompression, not a change of framing or a mirror image.")
    return False, ("not quite: the check shrinks each image to 16x16 grey pixels and correlates them. Which "
                   "changes keep every pixel where it was?")


@exercise("10.2")
def _check_10_2(answer, *, curve: list[dict]) -> tuple[bool, str]:
    half = next(row for row in curve if row["fraction"] == 0.5)
    gain = 100 * (curve[-1]["val_acc"] - half["val_acc"])
    value = as_number(answer)
    if value is None:
        return False, f"expected a number of points, got {answer!r}"
    if abs(value - gain) <= 0.05:
        return True, f"{gain:.1f} points from {half['images']} to {curve[-1]['images']} training images."
    if abs(value - gain / 100) <= 0.0005 and abs(gain) > 0.05:
        return False, "give the gain in points (percentage points), not as a fraction"
    if abs(value + gain) <= 0.05:
        return False, "the gain is the accuracy with all the labels minus that with half"
    return False, "subtract the validation accuracy at 50% of the labels from that at 100%, in points."
