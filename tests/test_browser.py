"""The rendered book, opened in headless Chromium (Debian's chromium) as a reader would."""

import functools
import html
import http.server
import json
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


# Opens a page in an iframe of a given width and writes, into its own DOM, every element of the
# article that is cut off or sticks out: content past the article's right edge, text or code
# that scrolls sideways, and boxes that hide part of their content. Tables may scroll inside
# their own container on a phone (their content can still be reached); nothing else may.
LAYOUT_CHECK = """<!doctype html><html><body style="margin:0">
<iframe id="page" src="/%(page)s" style="width:%(width)dpx;height:1200px;border:0"></iframe>
<pre id="result">pending</pre>
<script>
var TABLE_BOXES = ".pst-scrollable-table-container, .table-wrapper, .output.text_html";
// Text meant only for screen readers (MathJax's assistive MathML) is clipped on purpose: a box
// that hides only such text hides nothing a reader can see.
var READER_ONLY = "mjx-assistive-mml, .sr-only, .visually-hidden";
function cutsOffVisibleContent(el, doc) {
  var right = el.getBoundingClientRect().right + 1, range = doc.createRange();
  var walker = doc.createTreeWalker(el, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT), node;
  while ((node = walker.nextNode())) {
    var host = node.nodeType === 3 ? node.parentElement : node;
    if (host.closest(READER_ONLY)) continue;
    if (node.nodeType === 3) range.selectNodeContents(node);
    var box = (node.nodeType === 3 ? range : node).getBoundingClientRect();
    if (box.width > 0 && box.right > right) return true;
  }
  return false;
}
function where(el) {
  return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && el.className.baseVal === undefined
    ? "." + el.className.trim().split(/\\s+/).join(".") : "") + " '" + (el.textContent || "").trim().slice(0, 60) + "'";
}
document.getElementById("page").onload = function () { setTimeout(function () {
  var doc = this.contentDocument, view = doc.defaultView, problems = [];
  var article = doc.querySelector("article.bd-article");
  if (!article) { document.getElementById("result").textContent = JSON.stringify(["no article: not a book page"]); return; }
  var edge = article.getBoundingClientRect().right;
  article.querySelectorAll("*").forEach(function (el) {
    var box = el.getBoundingClientRect(), style = view.getComputedStyle(el);
    if (box.width === 0 || box.height === 0 || el.closest("mjx-container, .MathJax, " + READER_ONLY)) return;
    var scroller = el.closest(TABLE_BOXES);
    if (box.right > edge + 1 && !(scroller && scroller !== el)) problems.push("sticks out by " + Math.round(box.right - edge) + " px: " + where(el));
    var overflowing = el.scrollWidth > el.clientWidth + 1;
    var table = el.matches(TABLE_BOXES);
    if (overflowing && ["auto", "scroll"].includes(style.overflowX) && !table) problems.push("scrolls sideways: " + where(el));
    if (overflowing && ["hidden", "clip"].includes(style.overflowX) && el.tagName !== "BODY" && el.tagName !== "HTML"
        && cutsOffVisibleContent(el, doc)) problems.push("cuts off its content: " + where(el));
  });
  document.getElementById("result").textContent = JSON.stringify(problems.slice(0, 12));
}.bind(this), 1500); };
</script></body></html>"""


# A page with one box that cuts off what a reader sees and one that clips only screen-reader
# text (as MathJax's inline math does), to show the check tells them apart.
LAYOUT_FIXTURE = """<!doctype html><html><body><article class="bd-article" style="width:300px">
<div style="overflow:hidden;width:100px;white-space:nowrap">a_long_name_that_does_not_fit_its_box</div>
<span style="display:flex;overflow:hidden;position:relative;width:40px"><span>x</span>
<mjx-assistive-mml style="position:absolute;left:0;clip:rect(1px,1px,1px,1px);white-space:nowrap">
text for screen readers, wider than its box</mjx-assistive-mml></span>
</article></body></html>"""


class _BookHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the name http.server calls)
        url = urllib.parse.urlparse(self.path)
        if url.path == "/__layout_fixture__.html":
            body = LAYOUT_FIXTURE.encode()
        elif url.path == "/__layout__.html":
            query = urllib.parse.parse_qs(url.query)
            body = (LAYOUT_CHECK % {"page": query["page"][0], "width": int(query["width"][0])}).encode()
        else:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(build_log, tmp_path_factory):
    handler = functools.partial(_BookHandler, directory=str(HTML))
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


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
@pytest.mark.parametrize("page", PAGES)
def test_nothing_on_a_page_is_cut_off_or_scrolls_sideways(site, page, width):
    problems = _layout_problems(site, page, width)
    assert not problems, f"{page} at {width} px: " + "; ".join(problems)


def _layout_problems(site, page: str, width: int) -> list[str]:
    dom = _render(site, f"__layout__.html?page={urllib.parse.quote(page)}&width={width}")
    result = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert result and result.group(1) != "pending", f"{page}: the layout check did not run"
    return json.loads(html.unescape(result.group(1)))


def test_the_layout_check_flags_hidden_text_but_not_screen_reader_text(site):
    problems = _layout_problems(site, "__layout_fixture__.html", 1280)
    assert len(problems) == 1 and "a_long_name_that_does_not_fit" in problems[0], problems


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
