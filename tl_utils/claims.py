"""Check a chapter's claim on the numbers it just produced, and quote numbers in the prose.

Every chapter ends with `check_claim(...)`. It prints a verdict a reader understands and
glues it into the notebook, so the book can quote it on any page. In the course's tests
(TL_STRICT_CLAIMS=1) a claim that does not hold fails the run: the prose never states a
result the numbers did not show.
"""

from __future__ import annotations

import os
import re


class ClaimError(AssertionError):
    """A chapter's claim did not hold on its own numbers (raised under TL_STRICT_CLAIMS=1)."""


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


def check_claim(name: str, holds: bool, detail: str) -> None:
    """Print and glue whether the claim `name` holds; raise under TL_STRICT_CLAIMS=1 if not.

    name: a short slug, e.g. "preprocessing-matters"; glued as `claim-<name>` ("holds" or
    "does not hold") and `claim-<name>-detail`.
    detail: the numbers behind the verdict, in words.
    """
    holds = bool(holds)
    verdict = "holds" if holds else "does not hold"
    mark = "✅" if holds else "❌"
    print(f"{mark} Claim '{name}' {verdict}: {detail}")
    glue(f"claim-{name}", verdict)
    glue(f"claim-{name}-detail", detail)
    if not holds and os.environ.get("TL_STRICT_CLAIMS") == "1":
        raise ClaimError(f"claim '{name}' does not hold: {detail}")

