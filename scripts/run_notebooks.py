"""Execute the chapter notebooks with papermill and hand the results to the book build.

Each executed notebook is stored in Jupyter Book's execution cache (_build/.jupyter_cache)
under the hash of the committed notebook, so `jupyter-book build` renders these outputs
instead of running the notebook a second time. That cache only sees the notebook's code, so
this script also records a digest of what else shapes the outputs (tl_utils, the lock file)
and runs a notebook again when either changed. Used by `make book` (runs only what changed)
and by the test suite (runs every notebook).

    python scripts/run_notebooks.py [--force] [notebooks/01_x.ipynb ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BOOK_CACHE = ROOT / "_build" / ".jupyter_cache"
EXECUTED = ROOT / "_build" / "executed"
RECORD = ROOT / "_build" / "notebook-runs.json"


def chapters() -> list[Path]:
    """The chapters, then the book's executable pages."""
    return sorted((ROOT / "notebooks").glob("[0-9A][0-9]_*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))


def _cache():
    from jupyter_cache import get_cache

    return get_cache(str(BOOK_CACHE))


def _read_record() -> dict:
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {}


def inputs_digest() -> str:
    """A digest of everything besides a notebook's own code that shapes its outputs."""
    files = sorted((ROOT / "tl_utils").glob("*.py")) + [ROOT / "requirements-lock.txt"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def is_cached(notebook: Path) -> bool:
    """True when the book cache holds an execution of exactly this code, on this tl_utils."""
    if _read_record().get(notebook.name, {}).get("inputs") != inputs_digest():
        return False
    try:
        _cache().match_cache_notebook(nbformat.read(notebook, as_version=4))
    except KeyError:
        return False
    return True


def execute(notebook: Path, parameters: dict | None = None) -> tuple[Path, float]:
    """Run `notebook` top to bottom in its own folder; return (executed copy, seconds).

    Raises papermill's PapermillExecutionError if a cell fails (a failed claim included).
    """
    import papermill

    os.environ.setdefault("TL_PROGRESS", "0")  # progress bars are noise in a rendered page
    EXECUTED.mkdir(parents=True, exist_ok=True)
    out = EXECUTED / notebook.name
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook), str(out), parameters=parameters or {}, cwd=str(notebook.parent),
        kernel_name="python3", progress_bar=False, request_save_on_cell_execute=False,
    )
    return out, time.perf_counter() - start


def store_in_book_cache(notebook: Path, executed: Path, seconds: float) -> None:
    """Cache the outputs of `executed` under the hash of the committed `notebook`.

    papermill adds metadata to every cell, which is part of the cache's hash, so the
    outputs are copied into the committed notebook before it is cached.
    """
    from jupyter_cache.base import CacheBundleIn

    source = nbformat.read(notebook, as_version=4)
    ran = nbformat.read(executed, as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    ran_code = [c for c in ran.cells if c.cell_type == "code"]
    if len(code) != len(ran_code):
        raise RuntimeError(f"{executed} has {len(ran_code)} code cells, {notebook} has {len(code)}")
    for cell, done in zip(code, ran_code):
        cell.outputs, cell.execution_count = done.outputs, done.execution_count
    source.metadata["language_info"] = ran.metadata.get("language_info", {})
    bundle = CacheBundleIn(source, str(notebook), data={"execution_seconds": seconds})
    _cache().cache_notebook_bundle(bundle, check_validity=False, overwrite=True)


def record_run(notebook: Path, seconds: float) -> None:
    record = _read_record()
    record[notebook.name] = {"seconds": round(seconds, 1), "inputs": inputs_digest()}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2))


def run(notebook: Path) -> float:
    """Execute one notebook, cache it for the book, record the run; return the seconds."""
    executed, seconds = execute(notebook)
    store_in_book_cache(notebook, executed, seconds)
    record_run(notebook, seconds)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--force", action="store_true", help="execute even if the book cache has them")
    args = parser.parse_args()
    for notebook in [n.resolve() for n in args.notebooks] or chapters():
        if not args.force and is_cached(notebook):
            print(f"{notebook.name}: up to date in the book cache, not executed again")
            continue
        print(f"{notebook.name}: executing ...", flush=True)
        print(f"{notebook.name}: done in {run(notebook):.0f} s", flush=True)


if __name__ == "__main__":
    main()
