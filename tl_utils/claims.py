"""Check a chapter's claim on the numbers it just produced, and quote numbers in the prose.

Every chapter ends with `check_claim(...)`. A claim is a list of tests, each a number set
against a threshold (`at_least`, `at_most`) or, where there is no number, a yes/no fact
(`is_true`). The verdict is that every test passes; each test's **margin** says by how much,
in the test's own unit, so a reader sees how close a claim came to failing. Verdict, detail
and the smallest margin are printed and glued, so the book can quote them on any page.

In the course's tests (TL_STRICT_CLAIMS=1) a claim that does not hold fails the run: the
prose never states a result the numbers did not show. With TL_CLAIMS_LOG set to a file, every
test is also appended to it as a JSON line (scripts/robustness.py collects them).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import asdict, dataclass

# How a test's value is shown: accuracies are fractions, shown (and their margins given) in points.
UNITS = {"points": 100.0, "x": 1.0, "": 1.0}


class ClaimError(AssertionError):
    """A chapter's claim did not hold on its own numbers (raised under TL_STRICT_CLAIMS=1)."""


@dataclass(frozen=True)
class Test:
    """One test of a claim: `value` against `bound`, or a yes/no fact when `bound` is None."""

    what: str
    value: float
    bound: float | None
    direction: str  # ">=", ">", "<=", "<" or "is true"
    unit: str = "points"

    @property
    def margin(self) -> float | None:
        """How far the value is on the passing side of the bound, in the test's unit (None for a fact)."""
        if self.bound is None:
            return None
        scale = UNITS[self.unit]
        above = self.value - self.bound if self.direction.startswith(">") else self.bound - self.value
        return scale * above

    @property
    def passes(self) -> bool:
        if self.bound is None:
            return bool(self.value)
        m = self.margin
        return not math.isnan(m) and (m > 0 if self.direction in (">", "<") else m >= 0)

    def describe(self) -> str:
        if self.bound is None:
            return f"{self.what}: {'yes' if self.value else 'no'}"
        scale, unit = UNITS[self.unit], f" {self.unit}" if self.unit else ""
        return (f"{self.what}: {scale * self.value:.4g}{unit}, needs {self.direction} {scale * self.bound:.4g}{unit}, "
                f"margin {self.margin:+.3g}{unit}")


def _test(what: str, value, bound, direction: str, unit: str) -> Test:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {sorted(UNITS)}; got {unit!r}")
    return Test(what, float(value), float(bound), direction, unit)


def at_least(what: str, value, bound, unit: str = "points", strict: bool = False) -> Test:
    """A test that `value` >= `bound` (> with strict=True). Accuracies as fractions with unit="points"."""
    return _test(what, value, bound, ">" if strict else ">=", unit)


def at_most(what: str, value, bound, unit: str = "points", strict: bool = False) -> Test:
    """A test that `value` <= `bound` (< with strict=True)."""
    return _test(what, value, bound, "<" if strict else "<=", unit)


def is_true(what: str, fact) -> Test:
    """A yes/no test with no number to give a margin (an exact match, a file that was found)."""
    return Test(what, float(bool(fact)), None, "is true", "")


def weakest(tests: list[Test]) -> Test | None:
    """The numeric test closest to failing (a failed one first), or None if all are facts.

    Margins in different units are compared relative to their bound (at least 1 in the unit).
    """
    numeric = [t for t in tests if t.bound is not None]
    if not numeric:
        return None
    return min(numeric, key=lambda t: (t.passes, t.margin / max(abs(UNITS[t.unit] * t.bound), 1.0)))


def glue(name: str, value, display: bool = False):
    """Store `value` under `name` for the book (`{glue:text}` in the prose); returns `value`.

    Outside a notebook kernel (or without myst_nb installed, as on Colab) nothing is stored.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"glue names may use letters, digits, '_', '.' and '-'; got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # NumPy/torch scalars -> plain numbers, which the book can format
    try:
        from IPython import get_ipython
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    if get_ipython() is not None:
        myst_glue(name, value, display=display)
    return value


def margin_text(tests: list[Test]) -> str:
    """The claim's smallest margin in words, e.g. "+4.2 points (smallest gain)"."""
    low = weakest(tests)
    if low is None:
        return "exact (yes/no tests, no threshold)"
    unit = f" {low.unit}" if low.unit else ""
    return f"{low.margin:+.3g}{unit} ({low.what})"


def check_claim(name: str, tests: list[Test], detail: str) -> bool:
    """Print and glue whether the claim `name` holds (every test passes); raise under TL_STRICT_CLAIMS=1 if not.

    name: a short slug, e.g. "preprocessing-matters"; glued as `claim-<name>` ("holds" or
    "does not hold"), `claim-<name>-detail` and `claim-<name>-margin`.
    tests: from `at_least`, `at_most` and `is_true`.
    detail: the numbers behind the verdict, in words.
    """
    if isinstance(tests, Test):
        tests = [tests]
    if not isinstance(tests, (list, tuple)) or not tests or not all(isinstance(t, Test) for t in tests):
        raise TypeError("check_claim needs a list of tests made by at_least, at_most or is_true")
    holds = all(t.passes for t in tests)
    verdict = "holds" if holds else "does not hold"
    margin = margin_text(tests)
    print(f"{'✅' if holds else '❌'} Claim '{name}' {verdict}: {detail}")
    for t in tests:
        print(f"   {'·' if t.passes else '✗'} {t.describe()}")
    glue(f"claim-{name}", verdict)
    glue(f"claim-{name}-detail", detail)
    glue(f"claim-{name}-margin", margin)
    log = os.environ.get("TL_CLAIMS_LOG")
    if log:  # with the tl_utils modules this run used, so a record can tell when their code changed
        modules = sorted(m.split(".")[1] for m in sys.modules if m.startswith("tl_utils."))
        with open(log, "a", encoding="utf-8") as f:
            for t in tests:
                f.write(json.dumps({"claim": name, **asdict(t), "margin": t.margin, "passes": t.passes,
                                    "modules": modules}) + "\n")
    if not holds and os.environ.get("TL_STRICT_CLAIMS") == "1":
        failed = "; ".join(t.describe() for t in tests if not t.passes)
        raise ClaimError(f"claim '{name}' does not hold: {failed}. {detail}")
    return holds
