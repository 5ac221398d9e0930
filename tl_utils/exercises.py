"""Self-checks for the chapters' exercises: `tl_utils.exercises.check("02.1", answer)`.

Each check compares your answer with one it computes itself and, when they differ, gives a
hint rather than the answer. Under TL_STRICT_CLAIMS=1 (the course's tests, which run the
solutions) a wrong answer raises, so the solutions in the book are known to be right.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import torch

_CHECKS: dict[str, Callable[[object], tuple[bool, str]]] = {}


class ExerciseError(AssertionError):
    """A solution did not pass its check (raised under TL_STRICT_CLAIMS=1)."""


def _exercise(exercise_id: str):
    def register(checker: Callable[[object], tuple[bool, str]]):
        _CHECKS[exercise_id] = checker
        return checker
    return register


def available() -> list[str]:
    return sorted(_CHECKS)


def check(exercise_id: str, answer) -> None:
    """Print whether `answer` solves exercise `exercise_id`, with a hint when it does not."""
    if exercise_id not in _CHECKS:
        raise KeyError(f"no exercise {exercise_id!r}; the exercises are {', '.join(available())}")
    ok, message = _CHECKS[exercise_id](answer)
    print(f"{'✅ Correct' if ok else '❌ Not yet'} ({exercise_id}): {message}")
    if not ok and os.environ.get("TL_STRICT_CLAIMS") == "1":
        raise ExerciseError(f"exercise {exercise_id}: {message}")


def _close(answer, expected: float, tol: float) -> tuple[bool, str] | None:
    """Common checks for a number; None when the answer is a plausible number to compare."""
    if isinstance(answer, torch.Tensor):
        answer = answer.item()
    if not isinstance(answer, (int, float)) or isinstance(answer, bool) or math.isnan(answer):
        return False, f"expected a number, got {answer!r}"
    if expected <= 1 < answer <= 100:
        return False, "give the accuracy as a fraction between 0 and 1, not a percentage"
    return None


def _letters(answer) -> set[str] | None:
    if isinstance(answer, str):
        answer = answer.replace(",", " ").split() if len(answer) > 1 else [answer]
    try:
        return {str(a).strip().lower() for a in answer}
    except TypeError:
        return None


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
    problem = _close(answer, expected, 0.005)
    if problem:
        return problem
    if abs(answer - expected) <= 0.005:
        return True, f"nearest class mean reaches {expected:.1%}, with no training at all."
    if abs(answer - _nearest_class_mean_unnormalised(train, test)) <= 0.005:
        return False, "close: compare directions, not lengths. Normalise the features and the means (cosine)."
    return False, ("use clip art, 64 px, n_per_class=5, seed=0 for train and the whole test split; one "
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
