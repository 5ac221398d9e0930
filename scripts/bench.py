"""Time every chapter against the calibration workload, in one run (`make bench`).

Prints one row per chapter: its seconds at default parameters and its ratio to the
calibration workload (scripts/calibration.py). The workload is timed before every chapter and
once more at the end, and the ratio uses the median of those timings, as the test suite
does: a few seconds of work on a machine that shares its host vary by a quarter from minute
to minute. The ratios are what the test suite budgets (tests/test_notebooks.py); seconds
alone mean little across machines.

    python scripts/bench.py [--write book/_timings.md] [--json out.json] [notebooks ...]
    python scripts/bench.py --compare ../old-checkout     # before/after a change, interleaved
    python scripts/bench.py --from _build/notebook-timings.json --write book/_timings.md
                                                         # the table from the last `make test`

With --compare, each chapter of the other checkout (its notebooks on its own tl_utils) runs
right after the same chapter here, so both see the same machine. The chapters run with an
empty feature cache of their own (as on a fresh machine, or in CI), never the learner's
~/.cache/tl-course; executed copies go to _build/bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import calibration
import run_notebooks

OUT = run_notebooks.ROOT / "_build" / "bench"


def time_notebook(notebook: Path, label: str, pythonpath: Path | None = None) -> tuple[float, str]:
    """(seconds, "ok" or what went wrong) for one execution of `notebook` with a fresh cache."""
    import papermill

    out = OUT / label / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="tl-bench-cache-") as cache:
        os.environ.update(TL_CACHE_DIR=cache, TL_PROGRESS="0")
        if pythonpath is not None:  # the other checkout's tl_utils first, in the kernel too
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), saved.get("PYTHONPATH")]))
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook), str(out), cwd=str(notebook.parent), kernel_name="python3",
                                       progress_bar=False, request_save_on_cell_execute=False)
            status = "ok"
        except Exception as error:  # noqa: BLE001 - reported in the table, the others still run
            status = f"failed: {type(error).__name__}"
        seconds = time.perf_counter() - start
        os.environ.clear()
        os.environ.update(saved)
    if status == "ok" and "does not hold" in out.read_text():
        status = "a claim does not hold"
    return seconds, status


def bench(notebooks: list[Path], compare: Path | None = None) -> dict:
    """{"chapters": {name: {label: seconds}}, "calibration": {label: [seconds, ...]}, "status": ...}."""
    chapters: dict[str, dict[str, float]] = {}
    units: dict[str, list[float]] = {}
    status: dict[str, dict[str, str]] = {}
    for notebook in notebooks:
        runs = [("this", notebook, None)]
        if compare is not None:
            runs.append(("other", compare / notebook.relative_to(run_notebooks.ROOT), compare))
        for label, path, pythonpath in runs:
            if not path.is_file():
                continue
            units.setdefault(label, []).append(calibration.calibration_seconds(repeats=5))
            seconds, state = time_notebook(path, label, pythonpath)
            chapters.setdefault(notebook.name, {})[label] = seconds
            status.setdefault(notebook.name, {})[label] = state
            print(f"{notebook.name} ({label}): {seconds:.0f} s, calibration {units[label][-1]:.2f} s, {state}",
                  flush=True)
    for label in units:
        units[label].append(calibration.calibration_seconds(repeats=5))
    return {"chapters": chapters, "calibration": units, "status": status,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}


# The chapters together: at most 30 minutes on the machine the course was measured on (a fresh
# 2-core machine, ../shared/DESIGN.md), in the same units.
REFERENCE_CALIBRATION = 2.55  # seconds of the calibration workload on that machine
COURSE_TARGET_RATIO = 30 * 60 / REFERENCE_CALIBRATION


def table(result: dict) -> str:
    """The Markdown table book/instructors.md includes."""
    compare = any("other" in runs for runs in result["chapters"].values())
    unit = {label: statistics.median(times) for label, times in result["calibration"].items()}
    head = "| chapter | seconds | ratio |" + (" seconds before | ratio before | after / before |" if compare else "")
    rule = "|---|---:|---:|" + ("---:|---:|---:|" if compare else "")
    rows = []
    for name, runs in result["chapters"].items():
        ratio = {label: runs[label] / unit[label] for label in runs}
        row = f"| {name.removesuffix('.ipynb')} | {runs['this']:.0f} | {ratio['this']:.1f} |"
        if compare and "other" in runs:
            row += f" {runs['other']:.0f} | {ratio['other']:.1f} | {ratio['this'] / ratio['other']:.0%} |"
        rows.append(row)
    seconds = sum(runs["this"] for runs in result["chapters"].values())
    total = seconds / unit["this"]
    rows.append(f"| all together | {seconds:.0f} | {total:.1f} |")
    timings = ", ".join(f"{t:.2f}" for t in result["calibration"]["this"])
    return "\n".join([
        f"Measured by `{result.get('source', 'make bench')}` on {result['date']} ({result['machine']}). The "
        f"calibration workload took {timings} s (median {unit['this']:.2f} s); a ratio is a chapter's seconds "
        f"divided by that median. The course's target for all of them together is a ratio of "
        f"{COURSE_TARGET_RATIO:.0f} (30 minutes where the workload takes {REFERENCE_CALIBRATION} s); this run is "
        f"{'within' if total <= COURSE_TARGET_RATIO else 'over'} it.",
        "",
        head,
        rule,
        *rows,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--compare", type=Path, help="another checkout of the course, timed interleaved")
    parser.add_argument("--write", type=Path, help="write the Markdown table to this file")
    parser.add_argument("--json", type=Path, help="write the raw figures to this file")
    parser.add_argument("--from", dest="saved", type=Path, help="render figures saved by --json or make test")
    args = parser.parse_args()
    if args.saved:
        result = json.loads(args.saved.read_text())
    else:
        notebooks = [n.resolve() for n in args.notebooks] or run_notebooks.chapters()
        result = bench(notebooks, args.compare.resolve() if args.compare else None)
    text = table(result)
    print(text)
    if args.write:
        args.write.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
