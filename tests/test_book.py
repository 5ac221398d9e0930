"""The book builds with warnings as errors, from the executions the notebook tests made."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from run_notebooks import chapters

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="module")
def build_log(executions):
    for notebook in chapters():
        executions.get(notebook)  # the notebook tests' executions, not new ones
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--all",
         "--warningiserror", "--nitpick", "--keep-going"],
        capture_output=True, text=True, cwd=ROOT,
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, log[-5000:]
    return log


@pytest.mark.slow
def test_the_book_reuses_the_executions_instead_of_running_again(build_log):
    for notebook in chapters():
        assert f"{notebook}: Using cached notebook" in build_log
    assert "Executing" not in build_log


@pytest.mark.slow
def test_every_chapter_page_has_its_figures(build_log):
    assert (HTML / "index.html").is_file()
    for notebook in chapters():
        page = HTML / "notebooks" / f"{notebook.stem}.html"
        html = page.read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', html)
        assert images, f"{page.name} has no figures"
        for src in images:
            assert (page.parent / src).resolve().is_file(), f"{page.name}: missing image {src}"
        assert "Claim" in html and "does not hold" not in html


@pytest.mark.slow
def test_glued_numbers_and_citations_render(build_log):
    intro = (HTML / "book" / "intro.html").read_text()
    assert re.search(r"reaches\s*(<[^>]+>\s*)*\d+\.\d%", intro), "the intro quotes chapter 1's number"
    references = (HTML / "book" / "references.html").read_text()
    assert "how transferable are features" in references.lower() and "learning without forgetting" in references.lower()
