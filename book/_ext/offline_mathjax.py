"""Serve MathJax from the copy `make` fetched into .venv/share/mathjax, when there is one.

Jupyter Book loads MathJax from a CDN by default, so math would not render for an offline
reader or in the course's offline browser test. With a local copy, the book ships MathJax in
its _static folder; without one (no npm at set-up), the CDN default stays.
"""

from pathlib import Path

LOCAL = Path(__file__).resolve().parents[2] / ".venv" / "share" / "mathjax"


def _use_local_copy(app, config) -> None:
    if (LOCAL / "es5" / "tex-chtml.js").is_file():
        config.html_static_path = [*config.html_static_path, str(LOCAL)]
        config.mathjax_path = "es5/tex-chtml.js"  # relative to _static


def setup(app):
    app.connect("config-inited", _use_local_copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
