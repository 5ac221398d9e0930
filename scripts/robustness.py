"""How firm is each claim? Run chapters at several seeds and CPU kernels, and tabulate the margins.

PyTorch picks its CPU kernels by the processor's instruction set (AVX512, AVX2, or none),
and they sum in different orders, so the same seed gives slightly different numbers on
another learner's machine. `ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA` and
`MKL_ENABLE_INSTRUCTIONS` together make this machine compute what those machines compute. Each run executes a chapter with its `SEED` parameter set, and its claims
log every test's margin (tl_utils.claims, TL_CLAIMS_LOG); claims are not strict here, so a
failing claim is recorded and the chapter's later claims still run.

By default a chapter runs at 5 seeds (SEED = 0 ... 4) on this machine's own kernels and at
the first 2 of them on each other instruction set the processor can run. Runs are merged
chapter by chapter into book/_margins.json (a chapter run again replaces its rows), and the
table book/_margins.md is written from all of them, so the course can be swept over several
sittings. Offline; executed copies go to _build/robustness/, features are cached per kernel in
_build/robustness-cache/ (never the learner's ~/.cache/tl-course).

Run nothing else meanwhile on a small machine: two PyTorch processes on two cores wait for each
other's threads, and runs timed that way here were many times slower, which makes the timing
claims (chapters 2, 3, 8, 11) read wrong.

    python scripts/robustness.py notebooks/06_negative_transfer.ipynb      # one chapter, all runs
    python scripts/robustness.py --kernel avx2 --seed 0                    # every chapter, one run each
    python scripts/robustness.py --from-tests                              # add the last `make test`'s runs
    python scripts/robustness.py --table-only                              # rewrite the table

A run replaces an earlier record of the same chapter, kernel and seed; the others are kept (a
record made on code that has changed since is marked in the table, unless a run on the new code
reproduced a record made on the old, bit for bit: see `merge`). A test that the chapter's complete
runs on its present code no longer make (a claim withdrawn or reworded) leaves the table: see
`withdrawn_left_out`. `make test` logs its own
executions' claims (default seed, this machine's kernels) to _build/claims/, which --from-tests
merges.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import run_notebooks

ROOT = run_notebooks.ROOT
RECORDS = ROOT / "book" / "_margins.json"
TABLE = ROOT / "book" / "_margins.md"
OUT = ROOT / "_build" / "robustness"
KERNELS = ["default", "avx2", "avx512"]  # from the least capable instruction set
SEEDS, OTHER_SEEDS = 5, 2  # the sweep: seeds 0 .. 4 on the machine's own kernels, 0 and 1 on each other
# ATEN_CPU_CAPABILITY alone changes only PyTorch's own kernels: convolutions run in oneDNN and
# matrix products in MKL, which choose their code by themselves. Measured on torch 2.15: with it
# alone a convolution's and a matrix product's sums are bit for bit the AVX512 ones; these three
# variables together change both, as another processor would.
KERNEL_ENV = {
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}


def native_kernel() -> str:
    """The instruction set PyTorch uses on this machine when nothing is set, e.g. "avx512"."""
    import torch

    return torch.backends.cpu.get_cpu_capability().lower()


def kernels_here() -> list[str]:
    """This machine's own kernel first, then every less capable one it can be told to use."""
    native = native_kernel()
    others = KERNELS[: KERNELS.index(native)] if native in KERNELS else ["default"]
    return [native] + [k for k in reversed(others) if k != native]


def module_files(modules: list[str]) -> list[Path]:
    """The files of tl_utils `modules` as the claims log names them: a module's file, or every file
    of a subpackage (`advise`, `exercises`: the log names a subpackage, not its modules)."""
    files = []
    for m in sorted(set(modules)):
        folder = ROOT / "tl_utils" / m
        files += sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
    return files


def digest(notebook: Path, modules: list[str]) -> str:
    """A digest of the chapter's code cells, the lock file and the tl_utils `modules` the run used: a
    record made on other code is marked as such (the chapter's prose, or an unused module, may change)."""
    code = "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                     for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    inputs = b"".join(f.read_bytes() for f in [ROOT / "requirements-lock.txt", *module_files(modules)] if f.is_file())
    return hashlib.sha256(code.encode() + inputs).hexdigest()[:12]


def _modules(tests: list[dict]) -> list[str]:
    return tests[-1].get("modules", []) if tests else []


def run_once(notebook: Path, seed: int, kernel: str) -> dict:
    """Execute `notebook` at `seed` with `kernel`'s CPU code; return the run's record with its tests."""
    import papermill

    out = OUT / f"{notebook.stem}-{kernel}-seed{seed}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", encoding="utf-8") as log:
        os.environ.update(KERNEL_ENV.get(kernel, {}), TL_CLAIMS_LOG=log.name, TL_OFFLINE="1", TL_PROGRESS="0",
                          TL_CACHE_DIR=str(ROOT / "_build" / "robustness-cache" / kernel))
        os.environ.pop("TL_STRICT_CLAIMS", None)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook), str(out), parameters={"SEED": seed}, cwd=str(notebook.parent),
                                       kernel_name="python3", progress_bar=False, request_save_on_cell_execute=False)
            error = None
        except Exception as exc:  # noqa: BLE001 - recorded; the other runs go on
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else ''}"
        finally:
            os.environ.clear()
            os.environ.update(saved)
        tests = [json.loads(line) for line in log if line.strip()]
    return {"notebook": notebook.name, "seed": seed, "kernel": kernel, "digest": digest(notebook, _modules(tests)),
            "seconds": round(time.perf_counter() - start, 1), "date": time.strftime("%Y-%m-%d"),
            "error": error, "tests": tests}


TEST_LOGS = ROOT / "_build" / "claims"  # where the test suite logs its executions' claims (tests/conftest.py)


def from_test_logs(folder: Path = TEST_LOGS) -> list[dict]:
    """The test suite's executions as records: default seed (0), the kernels named by this process's
    ATEN_CPU_CAPABILITY (set it as the test run had it, with ONEDNN_MAX_CPU_ISA and
    MKL_ENABLE_INSTRUCTIONS as KERNEL_ENV does) or else this machine's own."""
    kernel = os.environ.get("ATEN_CPU_CAPABILITY", "").lower() or native_kernel()
    runs = []
    for log in sorted(folder.glob("*.jsonl")):
        notebook = ROOT / _folder(log.stem + ".ipynb") / (log.stem + ".ipynb")
        tests = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        runs.append({"notebook": notebook.name, "seed": 0, "kernel": kernel,
                     "digest": digest(notebook, _modules(tests)),
                     "seconds": None, "date": time.strftime("%Y-%m-%d", time.localtime(log.stat().st_mtime)),
                     "error": None, "tests": tests})
    return runs


def same_numbers(a: dict, b: dict) -> bool:
    """Whether two finished runs' tests gave the same verdicts on the same values, bit for bit.
    Ratios (unit "x") are not compared: most are timings, which differ on every run (sizes with them)."""
    numbers = lambda run: [(t["claim"], t["what"], t["passes"]) + ((t["value"], t["bound"]) if t["unit"] != "x" else ())  # noqa: E731
                           for t in run["tests"]]
    return a["error"] is None and b["error"] is None and bool(a["tests"]) and numbers(a) == numbers(b)


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """`old` with every run of the same chapter, kernel and seed as one in `new` replaced by it.

    New runs on changed code that reproduce the numbers of the records they replace, bit for bit,
    every one of them, show that the change (a refactor, a file path) did not move this chapter's
    numbers at those seeds on that kernel: the chapter's other records on the same kernel and the
    same old code are carried over to the new code, saying by which run (`verified_by`); that they
    would reproduce too is the one assumption. A new run whose numbers moved carries nothing over.
    """
    key = lambda r: (r["notebook"], r["kernel"], r["seed"])  # noqa: E731
    by_key = {key(r): r for r in old}
    reproduced: dict[tuple, bool] = {}  # (notebook, kernel, old digest) -> every replacement reproduced its record
    proof: dict[tuple, dict] = {}
    for run in new:
        before = by_key.get(key(run))
        if before and before["digest"] != run["digest"]:
            group = (run["notebook"], run["kernel"], before["digest"])
            same = same_numbers(before, run)
            reproduced[group] = reproduced.get(group, True) and same
            proof.setdefault(group, run)
    replaced, kept = {key(n) for n in new}, []
    for r in old:
        if key(r) in replaced:
            continue
        group = (r["notebook"], r["kernel"], r["digest"])
        if reproduced.get(group):
            run = proof[group]
            r = {**r, "digest": run["digest"], "verified_by": f"{run['kernel']}/{run['seed']} ({run['date']})"}
        kept.append(r)
    return sorted(kept + new, key=key)


def load_records(path: Path = RECORDS) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["runs"] if path.is_file() else []


def save_records(runs: list[dict], path: Path = RECORDS) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"runs": runs}, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def summarise(runs: list[dict]) -> list[dict]:
    """One row per (chapter, claim, test): the smallest margin and where, the median, the spread."""
    rows: dict[tuple, dict] = {}
    for run in runs:
        for t in run["tests"]:
            key = (run["notebook"], t["claim"], t["what"])
            row = rows.setdefault(key, {"notebook": key[0], "claim": key[1], "test": key[2], "unit": t["unit"],
                                        "direction": t["direction"], "bound": t["bound"], "margins": [], "where": [],
                                        "fails": 0})
            row["margins"].append(t["margin"])
            row["where"].append(f"{run['kernel']}/{run['seed']}")
            row["fails"] += not t["passes"]
    out = []
    for row in rows.values():
        m = row.pop("margins")
        where = row.pop("where")
        row["runs"] = len(m)
        if row["bound"] is None:  # a yes/no test: no margin, only how often it held
            row.update(smallest=None, median=None, spread=None, at=None)
        else:
            i = min(range(len(m)), key=m.__getitem__)
            row.update(smallest=m[i], at=where[i], median=statistics.median(m),
                       spread=statistics.stdev(m) if len(m) > 1 else 0.0)
        row["verdict"] = verdict(row)
        out.append(row)
    return sorted(out, key=lambda r: (r["notebook"], r["claim"], r["test"]))


def verdict(row: dict) -> str:
    """"fails" anywhere; a yes/no test "exact"; with one run "one run"; "thin" when the smallest
    margin is within one spread (s.d.) of zero; else "firm"."""
    if row["fails"]:
        return "fails"
    if row["smallest"] is None:
        return "exact"
    if row["runs"] < 2:
        return "one run"
    return "thin" if row["smallest"] <= row["spread"] else "firm"


def _num(x: float | None, unit: str) -> str:
    return "" if x is None else f"{x:+.3g}{' ' + unit if unit else ''}"


def withdrawn_left_out(runs: list[dict], current: set[int]) -> list[dict]:
    """The runs without the tests that a chapter's runs on its present code no longer make (a claim
    withdrawn or a test renamed); `current` holds the id() of those runs. A chapter with no run on
    its present code keeps all its tests."""
    made: dict[str, set] = {}
    for r in runs:
        if id(r) in current and r["error"] is None and r["tests"]:  # a run that stopped early made only some
            made.setdefault(r["notebook"], set()).update((t["claim"], t["what"]) for t in r["tests"])
    return [{**r, "tests": [t for t in r["tests"] if r["notebook"] not in made or (t["claim"], t["what"]) in made[r["notebook"]]]}
            for r in runs]


def write_table(runs: list[dict], path: Path = TABLE) -> str:
    """The markdown table of every recorded claim test; returns it."""
    keys = {id(r): (r["notebook"], tuple(_modules(r["tests"]))) for r in runs}
    digests: dict[tuple, str | None] = {}  # (notebook, modules) -> its present digest, read once
    for notebook_name, modules in set(keys.values()):
        notebook = ROOT / _folder(notebook_name) / notebook_name
        digests[notebook_name, modules] = digest(notebook, list(modules)) if notebook.is_file() else None
    current = {id(r) for r in runs if r["digest"] == digests[keys[id(r)]]}
    stale = {r["notebook"] for r in runs if id(r) not in current}
    sweep = sweep_lines(runs, current)
    runs = withdrawn_left_out(runs, current)
    lines = ["| chapter | claim | test | runs | smallest margin (kernel/seed) | median | spread (s.d.) | verdict |",
             "|---|---|---|---:|---|---:|---:|---|"]
    for r in summarise(runs):
        unit = r["unit"]
        if r["smallest"] is None:
            low, med, spread = f"held in {r['runs'] - r['fails']} of {r['runs']}", "", ""
        else:
            low, med, spread = f"{_num(r['smallest'], unit)} ({r['at']})", _num(r["median"], unit), f"{r['spread']:.2g}"
        chapter = r["notebook"].removesuffix(".ipynb") + (" (code changed since)" if r["notebook"] in stale else "")
        lines.append(f"| {chapter} | `{r['claim']}` | {r['test']} | {r['runs']} | {low} | {med} | {spread} | {r['verdict']} |")
    kernels = sorted({r["kernel"] for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    errors = [f"{r['notebook']} ({r['kernel']}/{r['seed']}): {r['error']}" for r in runs if r["error"]]
    head = (f"Runs: {len(runs)} executions of {len({r['notebook'] for r in runs})} chapters, seeds "
            f"{', '.join(map(str, seeds))}, CPU kernels {', '.join(kernels)}; latest {max((r['date'] for r in runs), default='-')}.")
    text = "\n".join([head, "", *lines, ""] + ([f"Runs that stopped early: {'; '.join(errors)}.", ""] if errors else [])
                     + ["Runs on each chapter's present code, and what its sweep still lacks:", "", *sweep, ""])
    path.write_text(text, encoding="utf-8")
    return text


def sweep(kernels: list[str], seeds: int = SEEDS, other_seeds: int = OTHER_SEEDS) -> list[tuple[str, int]]:
    """The (kernel, seed) runs of a full sweep: seeds 0 .. `seeds`-1 on the first of `kernels` (the
    machine's own), the first `other_seeds` of them on each other."""
    return [(k, s) for i, k in enumerate(kernels) for s in range(seeds if i == 0 else other_seeds)]


def sweep_lines(runs: list[dict], current: set[int], seeds: int = SEEDS, other_seeds: int = OTHER_SEEDS) -> list[str]:
    """A line per chapter of `runs`: the seeds run on its present code (the runs whose id() is in
    `current`) on each kernel, and what the sweep (`seeds` on one kernel, the first `other_seeds`
    of them on every other kernel of `runs`) still lacks, or that it is complete. A run that
    stopped early counts for nothing."""
    rank = lambda k: KERNELS.index(k) if k in KERNELS else -1  # noqa: E731  (a kernel named elsewhere: last)
    kernels = sorted({r["kernel"] for r in runs}, key=rank, reverse=True)  # the most capable first
    done: dict[str, dict[str, set[int]]] = {r["notebook"]: {} for r in runs}
    for r in runs:
        if id(r) in current and r["error"] is None:
            done[r["notebook"]].setdefault(r["kernel"], set()).add(r["seed"])
    out = []
    for notebook, by_kernel in sorted(done.items()):
        if not by_kernel:
            out.append(f"- {notebook.removesuffix('.ipynb')}: no complete run on its present code yet.")
            continue
        own = max(kernels, key=lambda k: (len(by_kernel.get(k, ())), -kernels.index(k)))  # a tie: the most capable
        planned = sweep([own] + [k for k in kernels if k != own], seeds, other_seeds)
        lacking = {k: sorted(s for kk, s in planned if kk == k and s not in by_kernel.get(k, set())) for k in kernels}
        ran = "; ".join(f"{k} {', '.join(map(str, sorted(by_kernel[k])))}" for k in kernels if k in by_kernel)
        gaps = "; ".join(f"{k} {', '.join(map(str, s))}" for k, s in lacking.items() if s)
        out.append(f"- {notebook.removesuffix('.ipynb')}: seeds {ran}; " + (f"lacks {gaps}." if gaps else "the sweep is complete."))
    return out


def _folder(name: str) -> str:
    return "book" if (ROOT / "book" / name).is_file() else "notebooks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds 0 .. N-1 on this machine's own kernels ({SEEDS})")
    parser.add_argument("--other-seeds", type=int, default=OTHER_SEEDS, help=f"the first N of them on each other kernel ({OTHER_SEEDS})")
    parser.add_argument("--kernel", action="append", choices=KERNELS, help="only this kernel (repeatable)")
    parser.add_argument("--seed", action="append", type=int, help="only this seed (repeatable)")
    parser.add_argument("--from-tests", action="store_true", help="merge the last `make test`'s executions, run nothing")
    parser.add_argument("--table-only", action="store_true", help="only rewrite book/_margins.md from the records")
    args = parser.parse_args()
    if args.kernel and not set(args.kernel) <= set(kernels_here()):
        parser.error(f"this processor runs {', '.join(kernels_here())}; --kernel {' '.join(args.kernel)} is not among them")
    if args.from_tests:
        save_records(merge(load_records(), from_test_logs()))
    elif not args.table_only:
        plan = sweep(kernels_here(), args.seeds, args.other_seeds)
        if args.kernel or args.seed:
            plan = [(k, s) for k in (args.kernel or [kernels_here()[0]]) for s in (args.seed or [0])]
        for notebook in [n.resolve() for n in args.notebooks] or run_notebooks.chapters():
            for kernel, seed in plan:
                print(f"{notebook.name}: {kernel}, seed {seed} ...", flush=True)
                done = run_once(notebook, seed, kernel)
                failed = [t["claim"] for t in done["tests"] if not t["passes"]]
                print(f"   {done['seconds']:.0f} s; {len(done['tests'])} tests"
                      + (f", failed: {', '.join(failed)}" if failed else ", all passed")
                      + (f"; {done['error']}" if done["error"] else ""), flush=True)
                save_records(merge(load_records(), [done]))  # saved after every run: an interrupted sweep keeps its work
    print(write_table(load_records()))


if __name__ == "__main__":
    main()
