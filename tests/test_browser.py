"""The rendered book, opened in headless Chromium (Debian's chromium) as a reader would."""

import functools
import http.server
import re
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request

import pytest
from conftest import HTML, ROOT
from run_notebooks import chapters

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "_build" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium, which make installs when run as root")]


@pytest.fixture(scope="module")
def site(build_log, tmp_path_factory):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tmp_path_factory.mktemp("chromium-profile")
    yield f"http://127.0.0.1:{server.server_port}/", profile
    server.shutdown()


def _chromium(profile, *args) -> str:
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                            capture_output=True, text=True, timeout=120)
    return result.stdout


def _render(site, page: str) -> str:
    base, profile = site
    return _chromium(profile, "--virtual-time-budget=10000", "--dump-dom", base + page)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, url
        return response.read()


PAGES = ["book/intro.html", "book/results.html", *[f"{nb.parent.name}/{nb.stem}.html" for nb in chapters()],
         "book/workflow.html", "book/when_to_transfer.html", "book/pitfalls.html", "book/glossary.html",
         "book/instructors.html", "book/setup.html"]


def test_the_front_page_opens_the_introduction(site):
    dom = _render(site, "index.html")
    assert "Transfer Learning, hands-on" in dom and "What transfer learning is" in dom


@pytest.mark.parametrize("page", PAGES)
def test_a_page_loads_with_its_images_links_and_search(site, page):
    base, _ = site
    url = base + page
    dom = _render(site, page)
    assert "<main" in dom and "Traceback" not in dom, f"{page} did not render"
    for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):
        if not src.startswith(("http:", "https:", "data:")):
            assert len(_get(urllib.parse.urljoin(url, src))) > 100, f"{page}: empty image {src}"
    for href in set(re.findall(r'<a[^>]+href="([^"]+)"', dom)):
        if href.startswith(("http:", "https:", "mailto:", "javascript:")) or href == "#":
            continue
        target, _, anchor = urllib.parse.urljoin(url, href).partition("#")
        body = _get(target).decode("utf-8", "replace")
        if anchor and target.endswith(".html"):
            assert f'id="{anchor}"' in body, f"{page}: broken anchor {href}"
    assert "search.html" in dom or "search-button" in dom, f"{page}: no search"


def test_math_is_rendered_by_mathjax(site):
    dom = _render(site, "notebooks/06_negative_transfer.html")
    assert "<mjx-container" in dom, "the negative-transfer gap's equation was not typeset"
    assert "es5/tex-chtml.js" in dom or "mathjax" in dom.lower()


def test_search_finds_a_word_from_a_chapter(site):
    base, _ = site
    assert b"negative" in _get(base + "searchindex.js")
    dom = _render(site, "search.html?q=forgetting")
    results = re.search(r'<ul class="search">(.*?)</ul>', dom, re.S)
    assert results and "07_catastrophic_forgetting.html" in results.group(1), "the search page found nothing"


def test_screenshots_for_a_human_to_look_at(site):
    base, profile = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    for page, name in [("book/intro.html", "intro.png"), ("notebooks/02_feature_extraction.html", "chapter-2.png")]:
        shot = SHOTS / name
        shot.unlink(missing_ok=True)
        _chromium(profile, "--virtual-time-budget=10000", "--window-size=1280,2200", f"--screenshot={shot}", base + page)
        assert shot.is_file() and shot.stat().st_size > 20_000, f"no screenshot of {page}"
