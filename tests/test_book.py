"""The book builds with warnings as errors, from the executions the notebook tests made."""

import re

import pytest
from conftest import HTML
from run_notebooks import chapters


@pytest.mark.slow
def test_the_book_reuses_the_executions_instead_of_running_again(build_log):
    for notebook in chapters():
        assert f"{notebook}: Using cached notebook" in build_log
    assert "Executing" not in build_log


@pytest.mark.slow
def test_every_chapter_page_has_its_figures(build_log):
    assert (HTML / "index.html").is_file()
    for notebook in chapters():
        page = HTML / notebook.parent.name / f"{notebook.stem}.html"
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


@pytest.mark.slow
def test_the_results_page_quotes_every_claim_and_all_hold(build_log):
    import nbformat

    claims = set()
    for notebook in chapters():
        for cell in nbformat.read(notebook, as_version=4).cells:
            claims |= set(re.findall(r'check_claim\(\s*"([a-z0-9-]+)"', cell.source))
    page = (HTML / "book" / "results.html").read_text()
    missing = [c for c in claims if f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{c}</span>" not in page]
    assert claims and not missing, f"claims not on the results page: {missing}"
    verdicts = re.findall(r'<span class="pasted-text">(holds|does not hold)</span>', page)
    assert len(verdicts) == len(claims) and set(verdicts) == {"holds"}
