"""Checking an answer to an exercise: the register of checks, `check`, and readers of numbers,
letters and conclusions that give a hint instead of the answer."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable

import torch

__all__ = ["CHECKS", "ExerciseError", "exercise", "available", "check", "as_number", "number_answer",
           "conclusion_answer", "letters"]

CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {}


class ExerciseError(AssertionError):
    """A solution did not pass its check (raised under TL_STRICT_CLAIMS=1)."""


def exercise(exercise_id: str):
    """Register the decorated function as the check of exercise `exercise_id`."""
    def register(checker: Callable[..., tuple[bool, str]]):
        CHECKS[exercise_id] = checker
        return checker
    return register


def available() -> list[str]:
    """The exercises' ids, e.g. "02.1"."""
    return sorted(CHECKS)


def check(exercise_id: str, answer, **run) -> None:
    """Print whether `answer` solves exercise `exercise_id`, with a hint when it does not.

    run: what your own run produced, for the exercises whose text asks for it.
    """
    if exercise_id not in CHECKS:
        raise KeyError(f"no exercise {exercise_id!r}; the exercises are {', '.join(available())}")
    if answer is None or answer is Ellipsis:
        print(f"✏️  ({exercise_id}): not answered yet: put your answer in `answer` and run the cell again.")
        return
    missing = [name for name, value in run.items() if value is None or value is Ellipsis]
    if missing:
        print(f"✏️  ({exercise_id}): put what your run measured in {', '.join(missing)}, then run the cell again.")
        return
    checker = CHECKS[exercise_id]
    try:
        inspect.signature(checker).bind(answer, **run)
    except TypeError as error:  # a missing or unexpected keyword: say what the exercise takes
        raise TypeError(f"exercise {exercise_id}: {error}; the exercise's text says what to pass") from None
    ok, message = checker(answer, **run)
    print(f"{'✅ Correct' if ok else '❌ Not yet'} ({exercise_id}): {message}")
    if not ok and os.environ.get("TL_STRICT_CLAIMS") == "1":
        raise ExerciseError(f"exercise {exercise_id}: {message}")


def as_number(answer) -> float | None:
    """The answer as a float (a one-element tensor counts), or None when it is not a number."""
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if not isinstance(answer, (int, float)) or isinstance(answer, bool) or math.isnan(answer):
        return None
    return float(answer)


def number_answer(answer, expected: float, tol: float, correct: str,
                  near_misses: list[tuple[float, str]], hint: str) -> tuple[bool, str]:
    """Right within `tol` of `expected`; else the message of the first near miss it matches,
    within the same `tol` (a common mistake's result and what to do about it); else `hint`."""
    value = as_number(answer)
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


def conclusion_answer(answer, measured: dict[str, float], found: str, expected: str, choices: tuple[str, str], why: str,
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


def letters(answer) -> set[str] | None:
    """The answer as a set of lower-case letters ({"a", "c"}, "a c" or "a,c"), or None."""
    if isinstance(answer, str):
        answer = answer.replace(",", " ").split() if len(answer) > 1 else [answer]
    try:
        return {str(a).strip().lower() for a in answer}
    except TypeError:
        return None
