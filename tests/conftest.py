"""Test-suite set-up: no network, strict claims, and each notebook executed once per session."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ROOT / "tests" / "offline"

# The whole suite runs offline: here, and (through PYTHONPATH) in every process it starts.
os.environ["TL_OFFLINE"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OFFLINE), os.environ.get("PYTHONPATH")]))
runpy.run_path(str(OFFLINE / "sitecustomize.py"))
os.environ["TL_STRICT_CLAIMS"] = "1"  # a chapter whose claim fails, fails its test
os.environ["TL_PROGRESS"] = "0"

matplotlib.use("Agg")  # in this process only: notebook kernels keep their inline figures

sys.path.insert(0, str(ROOT / "scripts"))
import run_notebooks  # noqa: E402


class _Executions:
    """Runs every chapter once, on first request, and remembers each outcome."""

    def __init__(self) -> None:
        self.results: dict[str, float | BaseException] = {}

    def get(self, notebook: Path) -> float:
        if notebook.name not in self.results:
            try:
                self.results[notebook.name] = run_notebooks.run(notebook)
            except Exception as error:  # kept, so the other notebooks still run
                self.results[notebook.name] = error
        outcome = self.results[notebook.name]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


_EXECUTIONS = _Executions()


@pytest.fixture(scope="session")
def executions() -> _Executions:
    return _EXECUTIONS


HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def build_log(executions) -> str:
    """Build the book once per session, from the executions of the notebook tests, with -W."""
    for notebook in run_notebooks.chapters():
        executions.get(notebook)  # the notebook tests' executions, not new ones
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--all",
         "--warningiserror", "--nitpick", "--keep-going"],
        capture_output=True, text=True, cwd=ROOT,
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, log[-5000:]
    return log


def pytest_terminal_summary(terminalreporter):
    times = {k: v for k, v in _EXECUTIONS.results.items() if isinstance(v, float)}
    if times:
        terminalreporter.section("notebook run times")
        for name, seconds in sorted(times.items()):
            terminalreporter.write_line(f"{name}: {seconds:.0f} s")
