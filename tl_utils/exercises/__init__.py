"""Self-checks for the chapters' exercises: `tl_utils.exercises.check("02.1", answer)`.

Each check compares your answer with one it computes itself and, when they differ, gives a
hint rather than the answer. Where the answer depends on your own run (your seed, your
settings), you pass what the run produced, e.g. `check("05.2", answer, y_true=..., y_pred=...)`,
and the check computes its answer from that, never from a number fixed at the default
settings. An answer of None means "not answered yet". Under
TL_STRICT_CLAIMS=1 (the course's tests, which run the solutions) a wrong answer raises, so the
solutions in the book are known to be right.

- `answers`: the register of checks, `check`, and readers of numbers, letters and conclusions
- `chapters_01_05`, `chapters_06_10`, `chapters_11_12`: each exercise's check, registered with `answers.exercise`
"""

from __future__ import annotations

from . import chapters_01_05, chapters_06_10, chapters_11_12  # noqa: F401 - importing them registers their checks
from .answers import ExerciseError, available, check

__all__ = ["check", "available", "ExerciseError"]
