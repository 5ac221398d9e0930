"""Test-suite set-up: no network, strict claims, a cache of its own, each notebook executed once."""

from __future__ import annotations

import json
import os
import platform
import re
import runpy
import shutil
import statistics
import subprocess
import sys
import time
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
# Never the learner's ~/.cache/tl-course: a stale entry there must neither hide nor cause a
# failure, and the tests must not leave anything in it. Emptied at the start of every session,
# so every run extracts and decodes from scratch, as CI does (the notebooks' kernels inherit it).
TEST_CACHE = ROOT / "_build" / "test-cache"
shutil.rmtree(TEST_CACHE, ignore_errors=True)
os.environ["TL_CACHE_DIR"] = str(TEST_CACHE)

matplotlib.use("Agg")  # in this process only: notebook kernels keep their inline figures

KERNEL_TEMP = ROOT / "_build" / "kernel-temp"
CLAIMS_LOGS = ROOT / "_build" / "claims"
shutil.rmtree(CLAIMS_LOGS, ignore_errors=True)  # only this session's executions, never an older run's
CLAIMS_LOGS.mkdir(parents=True, exist_ok=True)

sys.path.insert(0, str(ROOT / "scripts"))
import calibration  # noqa: E402
import run_notebooks  # noqa: E402


class _Executions:
    """Runs every chapter once, on first request, and remembers each outcome.

    Before each chapter it also times the calibration workload (scripts/calibration.py). A
    chapter's ratio divides its seconds by the median of all the timings so far: a machine
    that shares its host runs a few seconds of work 25% faster or slower from one minute to
    the next (seen here: 2.5 to 4.0 s within one run), while a chapter's minutes average that
    out, so one timing alone would make the ratio as noisy as the machine.
    """

    def __init__(self) -> None:
        self.results: dict[str, float | BaseException] = {}
        self.calibrations: list[float] = []
        self.leftovers: dict[str, list[str]] = {}  # what each chapter left in its temporary folder

    def get(self, notebook: Path) -> float:
        if notebook.name not in self.results:
            self.calibrations.append(calibration.calibration_seconds(repeats=5))
            log = CLAIMS_LOGS / f"{notebook.stem}.jsonl"  # its claims' margins (scripts/robustness.py --from-tests)
            log.unlink(missing_ok=True)
            os.environ["TL_CLAIMS_LOG"] = str(log)  # the kernel inherits it
            temp = KERNEL_TEMP / notebook.stem  # the kernel's TMPDIR: what the chapter leaves there is seen
            shutil.rmtree(temp, ignore_errors=True)
            temp.mkdir(parents=True)
            saved_tmpdir = os.environ.get("TMPDIR")
            os.environ["TMPDIR"] = str(temp)
            try:
                self.results[notebook.name] = run_notebooks.run(notebook)
            except Exception as error:  # kept, so the other notebooks still run
                self.results[notebook.name] = error
            finally:
                del os.environ["TL_CLAIMS_LOG"]  # the unit tests' claims log nothing
                if saved_tmpdir is None:
                    del os.environ["TMPDIR"]
                else:
                    os.environ["TMPDIR"] = saved_tmpdir
                # tempfile's own names (tmp...) and the course's (tl-...): other tools' caches are theirs
                self.leftovers[notebook.name] = sorted(p.name for p in temp.iterdir() if p.name.startswith(("tmp", "tl-")))
        outcome = self.results[notebook.name]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def unit(self) -> float:
        """The machine's time for the calibration workload: the median of this session's timings."""
        return statistics.median(self.calibrations)

    def ratio(self, notebook: Path) -> float:
        """The chapter's seconds in units of the calibration workload."""
        return self.get(notebook) / self.unit()


_EXECUTIONS = _Executions()


@pytest.fixture(scope="session")
def executions() -> _Executions:
    return _EXECUTIONS


HTML = ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def build_log(executions) -> str:
    """Build the book once per session, from the executions of the notebook tests, with -W."""
    failed = []
    for notebook in run_notebooks.chapters():
        try:
            executions.get(notebook)  # the notebook tests' executions, not new ones
        except Exception:  # noqa: BLE001 - reported once, by that chapter's own test
            failed.append(notebook.name)
    if failed:
        pytest.skip(f"the book is built only when every chapter runs; {', '.join(failed)} failed (see its test)")
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
        unit = _EXECUTIONS.unit()
        terminalreporter.section("notebook run times (ratio: to the calibration workload)")
        terminalreporter.write_line("calibration workload: " + ", ".join(f"{c:.2f}" for c in _EXECUTIONS.calibrations)
                                    + f" s; median {unit:.2f} s")
        for name, seconds in sorted(times.items()):
            terminalreporter.write_line(f"{name}: {seconds:.0f} s, ratio {seconds / unit:.1f}")
        # the same figures, for `python scripts/bench.py --from _build/notebook-timings.json`
        record = {"chapters": {k: {"this": v} for k, v in times.items()},
                  "calibration": {"this": _EXECUTIONS.calibrations},
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
                  "source": "make test"}
        (ROOT / "_build" / "notebook-timings.json").write_text(json.dumps(record, indent=2))


@pytest.fixture(scope="session")
def mnist_vectors():
    """Real digits flattened to vectors in [0, 1]: mnist_vectors(split, n_per_class) -> (x, y)."""
    from tl_utils import data

    def prepare(split: str, n_per_class: int):
        d = data.load("mnist-5k", split, n_per_class=n_per_class, seed=0)
        return d.x.flatten(1).float() / 255, d.y
    return prepare

