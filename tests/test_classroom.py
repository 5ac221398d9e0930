"""Student notebooks and the instructor key (make student, make solutions)."""

import collections
import os
from unittest import mock

import classroom
import nbformat
import pytest

from tl_utils import exercises

NOTEBOOKS = classroom.notebooks()


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_version_has_no_solution_code_and_keeps_everything_else(path):
    original = nbformat.read(path, as_version=4)
    student = classroom.student_version(original)
    solutions = [c for c in original.cells if classroom.is_solution(c)]
    assert len(solutions) >= 2, "every chapter ends with at least two exercises"
    student_code = "\n".join(c.source for c in _code(student))
    elsewhere = "\n".join(c.source for c in _code(original) if not classroom.is_solution(c))
    for cell in solutions:
        for line in cell.source.splitlines():
            line = line.strip()
            specific = line and not line.startswith("#") and line not in elsewhere and not line.startswith("exercises.check(")
            if specific:
                assert line not in student_code, f"solution code leaked into the student notebook: {line!r}"
    assert not any(classroom.is_solution(c) for c in student.cells)
    kept = [c.source for c in original.cells if not classroom.is_solution(c)]
    assert [c.source for c in student.cells if "exercise" not in c.metadata.get("tags", [])] == kept


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_stubs_run_and_wait_for_an_answer(path, capsys):
    student = classroom.student_version(nbformat.read(path, as_version=4))
    stubs = [c for c in student.cells if "exercise" in c.metadata.get("tags", [])]
    for cell in stubs:  # the chapter variables a stub passes to the check are stand-ins here
        exec(cell.source, {}, collections.defaultdict(mock.MagicMock, exercises=exercises))
    out = capsys.readouterr().out
    assert out.count("not answered yet") == len(stubs)


def test_solutions_version_shows_the_solutions():
    for path in NOTEBOOKS:
        key = classroom.solutions_version(nbformat.read(path, as_version=4))
        solutions = [c for c in key.cells if classroom.is_solution(c)]
        assert solutions and all("hide-cell" not in c.metadata["tags"] for c in solutions)


def test_make_student_and_make_solutions_write_under_build():
    for kind in ("student", "solutions"):
        classroom.main(kind)
        assert sorted(p.name for p in classroom.OUT[kind].glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.slow
def test_a_student_notebook_runs_end_to_end(tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("TL_PROGRESS", os.environ.get("TL_PROGRESS", "0"))
    student = tmp_path / "01_student.ipynb"
    nbformat.write(classroom.student_version(nbformat.read(NOTEBOOKS[0], as_version=4)), student)
    papermill.execute_notebook(str(student), str(tmp_path / "ran.ipynb"), cwd=str(NOTEBOOKS[0].parent),
                               kernel_name="python3", progress_bar=False)
    ran = nbformat.read(tmp_path / "ran.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in ran.cells if c.cell_type == "code" for o in c.outputs)
    assert "not answered yet" in text and "Claim '" in text
