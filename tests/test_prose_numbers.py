"""Every number in the prose is computed by the code: a numeral typed by hand fails here.

The chapters' markdown cells and the book's pages may show a number only through a glue role
(`{glue:text}`), so that changing a parameter or rerunning on another machine changes the text.
Before looking for numerals the test removes what is allowed, a short list of kinds:

- what is not prose: glue and other roles, code spans, math, link targets, HTML tags, URLs;
- headings, and references by number: chapter 3, sections 2 and 4, exercise 04.2, stage 5,
  block 6, the claim enumerators (1) (2), numbered-list markers, chapter titles in links;
- years in context (in 2019, (2019)), software versions (Python 3.11, PyTorch 2.15), kernel
  and image sizes (3x3, 28x28), and names with digits inside (EfficientNet-Lite0, F1, L2-SP);
- a sentence that cites its source ({cite}): a figure quoted from a paper, not measured here;
- an exercise's statement (from "**Exercise" to the end of its cell): it sets the numbers its
  self-check computes from.

Generated includes (book/_*.md) are written from measurements or data by scripts and checked
by their own tests.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))
PAGES = [p for p in sorted((ROOT / "book").glob("*.md")) if not p.name.startswith("_")]

# within one sentence: up to a full stop and a space, a blank line or a table cell's edge
_IN_SENTENCE = r"(?:[^.!?\n|]|\n(?![ \t]*\n)|[.!?](?!\s))*"
CITING_SENTENCE = re.compile(_IN_SENTENCE + r"\{cite[^}]*\}`[^`]*`" + _IN_SENTENCE)
NOT_PROSE = re.compile(r"```.*?```|\{[a-z:]+\}`[^`]*`|`[^`]*`|\$\$.*?\$\$|\$[^$\n]*\$|\]\([^)]*\)|<[^>]+>|https?://\S+",
                       re.S)
REFERENCE = re.compile(
    r"(?i)\b(?:chapter|section|exercise|stage|block|claim)\s+\d+(?:\.\d+)?\b"  # chapter 3, exercise 04.2
    r"|\b(?:chapters|sections|exercises|stages|blocks)\s+\d+(?:\s*(?:,|and|to|or)\s*\d+\b)+"  # chapters 2 and 3
    r"|\[\d+\.\s|^\s*(?:[-*]\s+)?\d+\.\s|\(\d\)(?=\s+(?-i:[A-Z]))"  # chapter titles, list markers, claims (1)
    r"|\b(?:in|since|from)\s+(?:19|20)\d\d\b|\((?:19|20)\d\d\)"  # years, in context
    r"|\b(?:Python|PyTorch|torch|WSL|wav2vec|version)\s+\d+(?:\.\d+)*"  # software versions
    r"|\b\d+x\d+\b")  # kernel and image sizes: 3x3, 28x28
NUMERAL = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?!\d)")


def hand_typed(text: str) -> list[str]:
    """The numerals in `text` outside the allowed kinds, each with its line."""
    text = CITING_SENTENCE.sub(" ", text)
    text = NOT_PROSE.sub(" ", text)
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        rest = REFERENCE.sub(" ", line)
        found += [f"{m.group()!r} in: {line.strip()[:90]}" for m in NUMERAL.finditer(rest)]
    return found


def _prose(path: Path) -> str:
    if path.suffix == ".md":
        return path.read_text()
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    return "\n\n".join(c[: c.index("**Exercise")] if "**Exercise" in c else c for c in cells)


def test_the_rule_catches_a_hand_typed_number_and_spares_the_allowed_kinds():
    assert hand_typed("The probe reaches 84.5% with 10 labels.") == [
        "'84.5' in: The probe reaches 84.5% with 10 labels.", "'10' in: The probe reaches 84.5% with 10 labels."]
    allowed = ("## 2. Results\nChapter 3 and sections 2 and 4 use stage 5 (exercise 04.2).\n(1) On clip art, claim 2.\n"
               "EfficientNet-Lite0 with 3x3 filters, F1 and L2-SP, in 2019.\n"
               "The probe reaches {glue:text}`acc:.1%` with `N = 10` labels, $k = 9$.\n"
               "ULMFiT divides by 2.6 {cite}`howard2018universal`. [1. Models](01.ipynb)\n1. a list item")
    assert hand_typed(allowed) == []
    for loophole in ["As in chapter 2, 500 images.", "Section 3 and 64 px.", "We ran 2000 steps.", "It fell (5) points.",
                     "A 10x speed-up.", "The 99th percentile.", "About 7GB."]:
        assert hand_typed(loophole), loophole


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_no_number_in_the_prose_is_typed_by_hand(path):
    found = hand_typed(_prose(path))
    assert not found, (f"{path.relative_to(ROOT)}: glue these numbers from the code (tl.glue and "
                       "{glue:text}), or say it without a number:\n  " + "\n  ".join(found))


CROSS_GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`]*::[^`]*)`")


def cross_glue_without_format(text: str) -> list[str]:
    """The `{glue:text}` references to another notebook (`path::key`) that lack a format spec.

    MyST-NB splits the reference at its last colon, so `path::key` is read as the key `path:`
    with the format `key`, and the book fails to build; `path::key:d` (or `:s`, `:.1%`) works.
    """
    return [m.group(1) for m in CROSS_GLUE.finditer(text) if ":" not in m.group(1).split("::", 1)[1]]


def test_the_cross_glue_rule_catches_a_missing_format():
    assert cross_glue_without_format("{glue:text}`../a.ipynb::n` and {glue:text}`../a.ipynb::m:d`") == ["../a.ipynb::n"]


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=lambda p: p.name)
def test_references_to_another_notebook_name_a_format(path):
    text = path.read_text()
    found = cross_glue_without_format(text)
    assert not found, f"{path.relative_to(ROOT)}: add a format spec (':d', ':s', ':.1%') to " + ", ".join(found)
