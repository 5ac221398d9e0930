"""Self-checks for the chapters' exercises: `tl_utils.exercises.check("02.1", answer)`.

Each check compares your answer with one it computes itself and, when they differ, gives a
hint rather than the answer. Where the answer depends on your own run (your seed, your
settings), you pass what the run produced, e.g. `check("05.2", answer, y_true=..., y_pred=...)`,
and the check computes its answer from that, never from a number fixed at the default
settings. An answer of None means "not answered yet". Under
TL_STRICT_CLAIMS=1 (the course's tests, which run the solutions) a wrong answer raises, so the
solutions in the book are known to be right.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable

import torch

_CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {}


class ExerciseError(AssertionError):
    """A solution did not pass its check (raised under TL_STRICT_CLAIMS=1)."""


def _exercise(exercise_id: str):
    def register(checker: Callable[..., tuple[bool, str]]):
        _CHECKS[exercise_id] = checker
        return checker
    return register


def available() -> list[str]:
    return sorted(_CHECKS)


def check(exercise_id: str, answer, **run) -> None:
    """Print whether `answer` solves exercise `exercise_id`, with a hint when it does not.

    run: what your own run produced, for the exercises whose text asks for it.
    """
    if exercise_id not in _CHECKS:
        raise KeyError(f"no exercise {exercise_id!r}; the exercises are {', '.join(available())}")
    if answer is None or answer is Ellipsis:
        print(f"✏️  ({exercise_id}): not answered yet: put your answer in `answer` and run the cell again.")
        return
    missing = [name for name, value in run.items() if value is None or value is Ellipsis]
    if missing:
        print(f"✏️  ({exercise_id}): put what your run measured in {', '.join(missing)}, then run the cell again.")
        return
    checker = _CHECKS[exercise_id]
    try:
        inspect.signature(checker).bind(answer, **run)
    except TypeError as error:  # a missing or unexpected keyword: say what the exercise takes
        raise TypeError(f"exercise {exercise_id}: {error}; the exercise's text says what to pass") from None
    ok, message = checker(answer, **run)
    print(f"{'✅ Correct' if ok else '❌ Not yet'} ({exercise_id}): {message}")
    if not ok and os.environ.get("TL_STRICT_CLAIMS") == "1":
        raise ExerciseError(f"exercise {exercise_id}: {message}")


def _as_number(answer) -> float | None:
    """The answer as a float (a one-element tensor counts), or None when it is not a number."""
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if not isinstance(answer, (int, float)) or isinstance(answer, bool) or math.isnan(answer):
        return None
    return float(answer)


def _check_number(answer, expected: float, tol: float, correct: str,
                  near_misses: list[tuple[float, str]], hint: str) -> tuple[bool, str]:
    """Right within `tol` of `expected`; else the message of the first near miss it matches,
    within the same `tol` (a common mistake's result and what to do about it); else `hint`."""
    value = _as_number(answer)
    if value is None:
        return False, f"expected a number, got {answer!r}"
    if expected <= 1 < value <= 100:
        return False, "give the accuracy as a fraction between 0 and 1, not a percentage"
    if abs(value - expected) <= tol:
        return True, correct
    for mistake, message in near_misses:
        if abs(value - mistake) <= tol:
            return False, message
    return False, hint


def _found(answer, measured: dict[str, float], found: str, expected: str, choices: tuple[str, str], why: str,
           ) -> tuple[bool, str]:
    """Check a conclusion drawn from the learner's own run: right when the answer says what their
    numbers show (`found`); when that is not what the course expects (`expected`), say so."""
    numbers = ", ".join(f"{name} {value:.1%}" for name, value in measured.items())
    given = answer.strip().lower() if isinstance(answer, str) else None
    if given not in choices:
        return False, f"answer with {choices[0]!r} or {choices[1]!r}, as your numbers show"
    if given != found:
        return False, f"look at your numbers again: {numbers}."
    if found != expected:
        return True, (f"{numbers}: that is what your run shows, though this change usually goes the other way "
                      "here. Did you change only the setting the exercise names? Try another seed: is it noise?")
    return True, f"{numbers}: {why}"


def _letters(answer) -> set[str] | None:
    if isinstance(answer, str):
        answer = answer.replace(",", " ").split() if len(answer) > 1 else [answer]
    try:
        return {str(a).strip().lower() for a in answer}
    except TypeError:
        return None


# ---------------------------------------------------------------- chapter 1


@_exercise("01.1")
def _check_01_1(answer) -> tuple[bool, str]:
    from . import models, registry

    names, photos, _ = registry.sample_photos()
    model, prep = models.load_backbone(), models.preprocessing(size=224)
    with torch.no_grad():
        expected = models.imagenet_classes()[int(model(prep(photos[names.index("camera on tripod")])).argmax())]
    if not isinstance(answer, str):
        return False, "answer with the class name as a string, e.g. 'tripod'"
    if answer.strip().lower() == expected.lower():
        return True, f"'{expected}': the network names the most salient object it knows."
    return False, "run the camera photo through the backbone with preprocessing(size=224) and look up imagenet_classes()."


@_exercise("01.2")
def _check_01_2(answer) -> tuple[bool, str]:
    expected = {"b", "d"}
    given = _letters(answer)
    if given is None:
        return False, "answer with a set of letters, e.g. {'a', 'c'}"
    if given == expected:
        return True, "values outside [-1, 1] and images under 32 px are caught; BGR and the resize method are not."
    if "a" in given or "c" in given:
        return False, "BGR order and the interpolation method leave the values in range: a check on values cannot see them."
    return False, "which mistakes push values outside what the preprocessing can produce, or make images too small?"


@_exercise("01.3")
def _check_01_3(answer, *, fewer: float, more: float) -> tuple[bool, str]:
    return _found(answer, {"fewer labels": fewer, "the chapter's labels": more},
                  "lower" if fewer < more else "higher", "lower", ("lower", "higher"),
                  "a frozen backbone still needs labels to place its classes; fewer labels, a less certain head.")


# ---------------------------------------------------------------- chapter 2


def _clipart_features(split: str, n_per_class: int | None, seed: int):
    from . import data, features, models

    model = models.load_backbone()
    return features.extract(model, data.load("clipart", split, n_per_class=n_per_class, seed=seed),
                            models.preprocessing(size=64))


def _nearest_class_mean(train, test) -> float:
    means = torch.stack([train.x[train.y == c].mean(dim=0) for c in range(len(train.classes))])
    sims = torch.nn.functional.normalize(test.x, dim=1) @ torch.nn.functional.normalize(means, dim=1).T
    return (sims.argmax(dim=1) == test.y).float().mean().item()


@_exercise("02.1")
def _check_02_1(answer) -> tuple[bool, str]:
    train = _clipart_features("train", 5, 0)
    test = _clipart_features("test", None, 0)
    expected = _nearest_class_mean(train, test)
    return _check_number(
        answer, expected, 0.005, f"nearest class mean reaches {expected:.1%}, with no training at all.",
        [(_nearest_class_mean_unnormalised(train, test),
          "close: compare directions, not lengths. Normalise the features and the means (cosine).")],
        "use clip art, 64 px, n_per_class=5, seed=0 for train and the whole test split; one "
        "mean feature vector per class; predict the class whose mean is most similar.")


def _nearest_class_mean_unnormalised(train, test) -> float:
    means = torch.stack([train.x[train.y == c].mean(dim=0) for c in range(len(train.classes))])
    return (torch.cdist(test.x, means).argmin(dim=1) == test.y).float().mean().item()


@_exercise("02.2")
def _check_02_2(answer) -> tuple[bool, str]:
    expected = {"b", "c", "d"}
    given = _letters(answer)
    if given is None:
        return False, "answer with the letters, e.g. {'a', 'e'} or 'a e'"
    if given == expected:
        return True, "the key covers weights, data and preprocessing; nothing about the head."
    if given & {"a", "e"}:
        return False, "the head is trained after extraction: nothing about it changes the features."
    return False, "which inputs change what the frozen backbone outputs? Check each one: weights, images, preprocessing."


@_exercise("02.3")
def _check_02_3(answer, *, longer: float, probe: float) -> tuple[bool, str]:
    return _found(answer, {"small CNN, trained longer": longer, "linear probe": probe},
                  "yes" if longer >= probe else "no", "no", ("yes", "no"),
                  "more epochs on the same few drawings do not buy what pretraining on a million photos gave.")


# ---------------------------------------------------------------- chapter 3


@_exercise("03.1")
def _check_03_1(answer) -> tuple[bool, str]:
    from . import freezing, models

    model = models.load_backbone(num_classes=10)
    total = freezing.count_parameters(model)
    freezing.freeze_stages(model, 7)
    expected = freezing.count_parameters(model, trainable_only=True)
    if answer == expected:
        return True, f"{expected:,} of {total:,} parameters train: stages 7 and 8 and the head."
    if answer == total:
        return False, "that is every parameter; count only those with requires_grad (trainable_only=True)."
    if answer == freezing.count_parameters(freezing.head(model)):
        return False, "that is the head alone; with 7 of 9 stages frozen, the last two stages train too."
    return False, "freeze the first 7 stages of a 10-class model, then count the parameters that require gradients."


@_exercise("03.2")
def _check_03_2(answer) -> tuple[bool, str]:
    from . import data, models, train

    model = models.load_backbone(num_classes=10)
    images = data.load("fashion-mnist", "test", n_per_class=100, seed=0).x[:32]
    memory = train.memory_footprint(model, images, transform=models.preprocessing(size=64))
    training = memory["gradients"] + memory["optimizer"] + memory["activations"]
    expected = memory["activations"] / training
    return _check_number(
        answer, expected, 0.02,
        f"activations are {expected:.0%} of it: memory grows with batch and image size, not just model size.",
        [(memory["activations"] / (training + memory["parameters"]),
          "leave the weights themselves out: the table counts gradients, optimizer statistics and activations.")],
        "activations / (gradients + optimizer + activations), for the full model on 32 test images at 64 px.")


@_exercise("03.3")
def _check_03_3(answer, *, probe: float, fine_tuned: float) -> tuple[bool, str]:
    return _found(answer, {"probe under the harder shift": probe, "fine-tuned, statistics updating": fine_tuned},
                  "the probe" if probe > fine_tuned else "fine-tuning", "the probe", ("the probe", "fine-tuning"),
                  "statistics re-estimated on crisp training images normalise the shifted ones badly, and more so "
                  "the harder the shift.")


# ---------------------------------------------------------------- chapter 4


@_exercise("04.1")
def _check_04_1(answer) -> tuple[bool, str]:
    from . import schedules

    curve = schedules.curve(schedules.slanted_triangular(120, cut_frac=0.1, ratio=32), 120)
    peak, last = max(range(120), key=curve.__getitem__), curve[119]
    try:
        step, fraction = answer
    except (TypeError, ValueError):
        return False, "answer with a pair (step, fraction), e.g. (10, 0.5)"
    if step != peak:
        return False, "the rate rises for cut_frac of the steps, counting from step 0; where does the rise end?"
    if abs(fraction - last) > 0.005:
        return False, "at the end the rate falls towards peak / ratio; compute the multiplier at step 119."
    return True, f"the peak is at step {peak}; the last step runs at {last:.1%} of it, close to 1/32."


@_exercise("04.2")
def _check_04_2(answer) -> tuple[bool, str]:
    expected, one_off = 1e-3 / 1.5**9, 1e-3 / 1.5**8
    value = _as_number(answer)
    if value is None:
        return False, f"expected a number, got {answer!r}"
    if abs(value - expected) <= 0.01 * expected:  # a rate, not an accuracy: the tolerance is relative
        return True, f"1e-3 / 1.5^9 = {expected:.2e}: the stem is the ninth stage below the head."
    if abs(value - one_off) <= 0.01 * one_off:
        return False, "one stage off: the top stage (stage 8) already gets 1e-3 / 1.5."
    return False, "use schedules.layerwise_groups and look for the group named 'stage 0'."


@_exercise("04.3")
def _check_04_3(answer, *, new_seeds: list[float]) -> tuple[bool, str]:
    best = max(new_seeds)
    return _found(answer, {"best new seed": best}, "yes" if best > 0.2 else "no", "no", ("yes", "no"),
                  "without warm-up and bias correction the first steps are too large at this rate, whatever the seed.")


# ---------------------------------------------------------------- chapter 5


@_exercise("05.1")
def _check_05_1(answer) -> tuple[bool, str]:
    from . import data

    y = data.load("airline-tweets", "test").y
    expected = ((y == 0).sum() / (y != 1).sum()).item()
    return _check_number(
        answer, expected, 0.005, f"{expected:.1%}: a model must beat this before its accuracy means anything here.",
        [((y == 0).float().mean().item(),
          "remove the neutral tweets first: count negatives among negatives and positives only.")],
        "count the negative tweets and divide by the number of negative and positive ones.")


@_exercise("05.2")
def _check_05_2(answer, *, y_true, y_pred) -> tuple[bool, str]:
    from sklearn.metrics import f1_score

    y_true, y_pred = (torch.as_tensor(v).numpy() for v in (y_true, y_pred))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length; got {len(y_true)} and {len(y_pred)}")
    expected = f1_score(y_true, y_pred, average="macro")
    return _check_number(
        answer, expected, 1e-6, f"macro F1 {expected:.1%}: on a balanced test set it is close to the accuracy.",
        [(f1_score(y_true, y_pred), "that is the F1 of the 'fresh' class alone; average over both classes (average='macro')."),
         ((y_true == y_pred).mean(), "that is the accuracy; compute f1_score(..., average='macro').")],
        "compute f1_score(y_true, y_pred, average='macro') on the predictions you passed.")


@_exercise("05.3")
def _check_05_3(answer, *, fewer: float, more: float) -> tuple[bool, str]:
    return _found(answer, {"fewer reviews": fewer, "the chapter's reviews": more},
                  "lower" if fewer < more else "higher", "lower", ("lower", "higher"),
                  "even strong frozen embeddings need enough labels to place the boundary between the classes.")


# ---------------------------------------------------------------- chapter 6


@_exercise("06.1")
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


@_exercise("06.2")
def _check_06_2(answer) -> tuple[bool, str]:
    given = _letters(answer)
    if given is None:
        return False, "answer with a set of letters, e.g. {'a', 'b'}"
    if given == {"a", "c", "d"}:
        return True, "a broader source, fine-tuning and fewer transferred layers all shrank the gap."
    if "b" in given:
        return False, "freezing more made it worse: frozen deep features were the riskiest transfer in the heat map."
    if "e" in given:
        return False, "more training on the source makes its top layers more specific to the source, not less."
    return False, "look at the heat map's rows for each method, and at ImageNet's row."


@_exercise("06.3")
def _check_06_3(answer, *, one_stage: float, all_stages: float) -> tuple[bool, str]:
    return _found(answer, {"gap, first stage only": one_stage, "gap, all stages frozen": all_stages},
                  "smaller" if one_stage < all_stages else "larger", "smaller", ("smaller", "larger"),
                  "the first stage's filters are generic; the later ones are what made the source narrow.")


# ---------------------------------------------------------------- chapter 7


@_exercise("07.1")
def _check_07_1(answer) -> tuple[bool, str]:
    if answer == 1100:
        return True, "1000 new images plus 10% of the 1000 old ones."
    if answer == 100:
        return False, "that is only the replayed part; the new task's images are all there too."
    return False, "count the new images and add the fraction of the old ones that is replayed."


@_exercise("07.2")
def _check_07_2(answer, *, fisher) -> tuple[bool, str]:
    values = torch.cat([f.detach().flatten().cpu() for f in fisher.values()])
    expected = (values > values.max() / 100).float().mean().item()
    return _check_number(
        answer, expected, 1e-4,
        f"only {expected:.1%} of the weights matter much for task A by this measure; EWC lets the rest move.",
        [((values > values.mean()).float().mean().item(), "that compares with the mean; compare with max / 100."),
         (1 - expected, "that is the fraction below the threshold; count the weights above it.")],
        "flatten every tensor in `fisher`, join them, and count the values above max / 100.")


@_exercise("07.3")
def _check_07_3(answer, *, stronger: float, strongest_swept: float) -> tuple[bool, str]:
    return _found(answer, {"task B, ten times stronger": stronger, "task B, strongest in the sweep": strongest_swept},
                  "higher" if stronger > strongest_swept else "lower", "lower", ("higher", "lower"),
                  "the harder the pull towards the weights after A, the less room to learn B.")


# ---------------------------------------------------------------- chapter 8


@_exercise("08.1")
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


@_exercise("08.2")
def _check_08_2(answer, *, plain: float, broken: float) -> tuple[bool, str]:
    return _found(answer, {"without augmentation": plain, "with your label-breaking augmentation": broken},
                  "falls" if broken < plain else "rises", "falls", ("falls", "rises"),
                  "an augmentation must keep the label true; random rotations of up to 180 degrees make many digits "
                  "unreadable and turn some 6s into 9s.")


# ---------------------------------------------------------------- chapter 9
@_exercise("09.1")
def _check_09_1(answer) -> tuple[bool, str]:
    d_in, d_out, r = 384, 1536, 8  # MiniLM's intermediate.dense, the exercise's rank
    return _check_number(
        answer, r * (d_in + d_out), 0.5,
        f"A is {r} x {d_in} and B is {d_out} x {r}: {r * (d_in + d_out):,} numbers, against {d_in * d_out:,} in the "
        "frozen weight.",
        [(d_in * d_out, "that is the whole frozen weight; LoRA trains two thin matrices instead"),
         (r * (d_in + d_out) + d_out, "the bias belongs to the frozen layer: it does not train"),
         (r * d_in, "that is A alone; B trains too"), (r * d_out, "that is B alone; A trains too"),
         (r * r, "A and B are not r x r: each has one side of the layer's size")],
        "A maps the layer's input to r numbers, B maps r numbers to its output: count both.")


@_exercise("09.2")
def _check_09_2(answer, *, rank_4: float, rank_64: float, se: float) -> tuple[bool, str]:
    return _found(answer, {"rank 4": rank_4, "rank 64": rank_64},
                  "higher" if rank_64 > rank_4 + 2 * se else "not higher", "not higher", ("higher", "not higher"),
                  f"two standard errors are {2 * se:.1%} here. A larger rank adds capacity that a small task does "
                  "not use; LoRA's authors found small ranks enough on many tasks.")


# ---------------------------------------------------------------- appendix A
@_exercise("A.1")
def _check_a_1(answer) -> tuple[bool, str]:
    processes, batch, accumulate = 4, 8, 2
    return _check_number(
        answer, processes * batch * accumulate, 0.5,
        f"{processes} processes x {batch} examples x {accumulate} accumulated batches: one step averages the "
        f"gradients of {processes * batch * accumulate} examples.",
        [(processes * batch, "that is one forward pass on every process; the step waits for the accumulated batch too"),
         (batch * accumulate, "that is one process's share; the other processes' shares are averaged in"),
         (batch, "batch_size counts one process's forward pass, not the step")],
        "multiply what one forward pass sees by the number of processes and by the batches accumulated.")


@_exercise("A.2")
def _check_a_2(answer) -> tuple[bool, str]:
    theirs, yours, batch = 4, 2, 8
    return _check_number(
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

    from . import registry

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


@_exercise("10.1")
def _check_10_1(answer) -> tuple[bool, str]:
    from . import copies

    variants = _photo_variants()
    found = copies.find_copies(torch.stack(list(variants.values())))
    keys = list(variants)
    expected = {keys[c.second] for c in found if c.first == 0}
    given = _letters(answer)
    if given is None or not given <= {"a", "b", "c", "d"}:
        return False, "answer with a set of letters among 'a', 'b', 'c', 'd', e.g. {'a'}"
    similarity = {keys[c.second]: c.similarity for c in found if c.first == 0}
    if given == expected:
        return True, (f"found: {sorted(expected)} (similarities {similarity}). The check compares grey thumbnails: "
                      "it survives resizing and recompression, not a change of framing or a mirror image.")
    return False, ("not quite: the check shrinks each image to 16x16 grey pixels and correlates them. Which "
                   "changes keep every pixel where it was?")


@_exercise("10.2")
def _check_10_2(answer, *, curve: list[dict]) -> tuple[bool, str]:
    half = next(row for row in curve if row["fraction"] == 0.5)
    gain = 100 * (curve[-1]["val_acc"] - half["val_acc"])
    value = _as_number(answer)
    if value is None:
        return False, f"expected a number of points, got {answer!r}"
    if abs(value - gain) <= 0.05:
        return True, f"{gain:.1f} points from {half['images']} to {curve[-1]['images']} training images."
    if abs(value - gain / 100) <= 0.0005 and abs(gain) > 0.05:
        return False, "give the gain in points (percentage points), not as a fraction"
    if abs(value + gain) <= 0.05:
        return False, "the gain is the accuracy with all the labels minus that with half"
    return False, "subtract the validation accuracy at 50% of the labels from that at 100%, in points."
