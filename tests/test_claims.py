import ast
import json
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tl_utils import claims

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import robustness  # noqa: E402
import run_notebooks  # noqa: E402


def test_a_claim_that_holds_prints_its_verdict_and_margin(capsys, monkeypatch):
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    assert claims.check_claim("probe-beats-scratch", [claims.at_least("probe minus scratch", 0.80 - 0.60, 0.05)], "80% vs 60%")
    out = capsys.readouterr().out
    assert "Claim 'probe-beats-scratch' holds: 80% vs 60%" in out
    assert "probe minus scratch: 20 points, needs >= 5 points, margin +15 points" in out


def test_a_failed_claim_raises_only_when_strict_and_names_the_failed_test(capsys, monkeypatch):
    tests = [claims.at_least("gain", 0.047, 0.05), claims.at_most("cost", 2.0, 3.0, unit="x")]
    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    assert not claims.check_claim("x", tests, "50% vs 60%")
    assert "does not hold: 50% vs 60%" in capsys.readouterr().out
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    with pytest.raises(claims.ClaimError, match=r"'x' does not hold: gain: 4.7 points, needs >= 5 points, margin -0.3 points\. 50%"):
        claims.check_claim("x", tests, "50% vs 60%")


def test_margins_are_signed_in_the_tests_unit_and_strict_bounds_exclude_equality():
    assert claims.at_least("a", 0.12, 0.10).margin == pytest.approx(2.0)  # points
    assert claims.at_most("a", 0.12, 0.10).margin == pytest.approx(-2.0)
    assert claims.at_least("r", 12.0, 10, unit="x").margin == pytest.approx(2.0)
    assert claims.at_least("a", 0.1, 0.1).passes and not claims.at_least("a", 0.1, 0.1, strict=True).passes
    assert not claims.at_least("a", float("nan"), 0.1).passes
    assert claims.is_true("exact", np.bool_(True)).passes and claims.is_true("exact", True).margin is None
    with pytest.raises(ValueError, match="unit"):
        claims.at_least("a", 1, 0, unit="%")
    with pytest.raises(TypeError, match="list of tests"):
        claims.check_claim("x", True, "old style")


def test_the_weakest_test_is_the_failed_one_then_the_closest_relative_to_its_bound():
    wide, thin, ratio = claims.at_least("wide", 0.5, 0.1), claims.at_least("thin", 0.12, 0.1), claims.at_least("r", 11, 10, unit="x")
    assert claims.weakest([wide, thin, ratio]) is ratio  # +1 on a bound of 10 is thinner than +2 points on 10 points
    failed = claims.at_most("f", 0.2, 0.1)
    assert claims.weakest([wide, failed]) is failed
    assert claims.weakest([claims.is_true("e", True)]) is None
    assert claims.margin_text([claims.is_true("e", True)]).startswith("exact")
    assert claims.margin_text([wide, thin]) == "+2 points (thin)"


def test_each_test_is_logged_for_the_robustness_run(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("TL_CLAIMS_LOG", str(log))
    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    claims.check_claim("c", [claims.at_least("g", 0.2, 0.1), claims.is_true("e", False)], "d")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["claim"], r["what"], r["passes"]) for r in rows] == [("c", "g", True), ("c", "e", False)]
    assert rows[0]["margin"] == pytest.approx(10.0) and rows[1]["margin"] is None
    assert "claims" in rows[0]["modules"]  # the tl_utils modules the run used (robustness.digest)


def test_glue_returns_plain_values_and_checks_names():
    assert claims.glue("acc", 0.5) == 0.5
    value = claims.glue("acc", np.float64(0.25))
    assert type(value) is float and value == 0.25
    with pytest.raises(ValueError, match="glue names"):
        claims.glue("bad name!", 1)


def _claim_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for notebook in run_notebooks.chapters():
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code" and "check_claim" in cell.source:
                tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith(("%", "!"))))
                calls += [(notebook.name, node) for node in ast.walk(tree) if isinstance(node, ast.Call)
                          and getattr(node.func, "attr", getattr(node.func, "id", None)) == "check_claim"]
    return calls


def test_every_claim_in_the_course_passes_a_list_of_tests_and_most_have_a_margin():
    calls = _claim_calls()
    source_count = sum(nbformat.read(n, as_version=4).cells.__repr__().count("check_claim(") for n in run_notebooks.chapters())
    assert len(calls) == source_count >= 40  # every call found, the indented ones too
    kinds = []
    for notebook, call in calls:
        name = call.args[0]
        assert isinstance(name, ast.Constant), f"{notebook}: a claim without a literal name"
        tests = call.args[1] if len(call.args) > 1 else None
        assert isinstance(tests, ast.List) and tests.elts, f"{notebook}: '{name.value}' passes no list of tests"
        made = {getattr(t.func, "attr", None) for t in tests.elts if isinstance(t, ast.Call)}
        assert len(made) and made <= {"at_least", "at_most", "is_true"}, f"{notebook}: '{name.value}': {made}"
        kinds.append(made)
    numeric = [m for m in kinds if m & {"at_least", "at_most"}]
    assert len(numeric) >= 0.75 * len(kinds), "most claims test a number against a threshold, so they have a margin"


def test_the_robustness_table_merges_runs_and_parses(tmp_path, monkeypatch):
    def run(seed, kernel, growth, holds=True):
        tests = [{"claim": "gap-grows", "what": "mean growth", "value": growth, "bound": 0.02, "direction": ">=",
                  "unit": "points", "margin": 100 * (growth - 0.02), "passes": growth >= 0.02},
                 {"claim": "gap-grows", "what": "exact", "value": float(holds), "bound": None, "direction": "is true",
                  "unit": "", "margin": None, "passes": holds}]
        return {"notebook": "06_negative_transfer.ipynb", "seed": seed, "kernel": kernel, "digest": "x",
                "seconds": 1.0, "date": "2026-12-04", "error": None, "tests": tests}

    runs = [run(0, "avx512", 0.10), run(1, "avx512", 0.08), run(0, "avx2", 0.015, holds=False)]
    records = tmp_path / "m.json"
    robustness.save_records(runs, records)
    assert robustness.load_records(records) == runs
    rows = {r["test"]: r for r in robustness.summarise(runs)}
    growth = rows["mean growth"]
    assert growth["runs"] == 3 and growth["fails"] == 1 and growth["verdict"] == "fails"
    assert growth["smallest"] == pytest.approx(-0.5) and growth["at"] == "avx2/0" and growth["median"] == pytest.approx(6.0)
    assert rows["exact"]["fails"] == 1 and rows["exact"]["smallest"] is None
    assert robustness.verdict({"fails": 0, "smallest": 1.0, "spread": 2.0, "runs": 5}) == "thin"
    assert robustness.verdict({"fails": 0, "smallest": 3.0, "spread": 2.0, "runs": 5}) == "firm"
    assert robustness.verdict({"fails": 0, "smallest": None, "spread": None, "runs": 1}) == "exact"
    assert robustness.verdict({"fails": 0, "smallest": 3.0, "spread": 0.0, "runs": 1}) == "one run"
    text = robustness.write_table(runs, tmp_path / "m.md")
    table = [line for line in text.splitlines() if line.startswith("| 06")]
    assert len(table) == 2 and all(line.count("|") == 9 for line in table)
    assert "-0.5 points (avx2/0)" in table[1] and "held in 2 of 3" in table[0]


def test_a_withdrawn_claim_leaves_the_table_once_the_chapter_runs_without_it():
    def run(seed, claims):
        return {"notebook": "04_x.ipynb", "seed": seed, "kernel": "avx512", "digest": str(seed), "seconds": 1.0,
                "date": "2026-12-05", "error": None,
                "tests": [{"claim": c, "what": "t", "value": 1.0, "bound": 0.0, "direction": ">=", "unit": "",
                           "margin": 1.0, "passes": True} for c in claims]}

    old, new = run(0, ["kept", "withdrawn"]), run(1, ["kept"])
    left = robustness.withdrawn_left_out([old, new], current={id(new)})
    assert [[t["claim"] for t in r["tests"]] for r in left] == [["kept"], ["kept"]]
    assert robustness.withdrawn_left_out([old, new], current=set()) == [old, new]  # no run on the present code yet


def test_the_sweep_lines_say_what_each_chapter_lacks():
    def run(notebook, kernel, seed, error=None):
        return {"notebook": notebook, "seed": seed, "kernel": kernel, "digest": "x", "seconds": 1.0,
                "date": "2026-12-05", "error": error, "tests": []}

    full = [run("01_a.ipynb", "avx512", s) for s in range(5)] + [run("01_a.ipynb", k, s) for k in ("avx2", "default") for s in (0, 1)]
    part = [run("02_b.ipynb", "avx512", 0), run("02_b.ipynb", "avx2", 1), run("02_b.ipynb", "avx512", 1, error="stopped")]
    stale = [run("02_b.ipynb", "avx512", 2), run("03_c.ipynb", "avx512", 0)]  # runs on older code
    runs = full + part + stale
    lines = robustness.sweep_lines(runs, current={id(r) for r in full + part})
    assert lines[0] == "- 01_a: seeds avx512 0, 1, 2, 3, 4; avx2 0, 1; default 0, 1; the sweep is complete."
    assert lines[1] == "- 02_b: seeds avx512 0; avx2 1; lacks avx512 1, 2, 3, 4; avx2 0; default 0, 1."  # stopped or stale: lacking
    assert lines[2] == "- 03_c: no complete run on its present code yet."
    mostly_avx2 = [run("04_d.ipynb", "avx2", s) for s in range(3)] + [run("04_d.ipynb", "sve256", 0)]  # a kernel named elsewhere
    line = robustness.sweep_lines(mostly_avx2, {id(r) for r in mostly_avx2})[0]
    assert line == "- 04_d: seeds avx2 0, 1, 2; sve256 0; lacks avx2 3, 4; sve256 1."  # the kernel with most seeds is the main one
    assert "the sweep is complete" in robustness.sweep_lines(full, {id(r) for r in full}, seeds=2)[0]


def test_the_published_margin_table_parses():
    runs = robustness.load_records()
    assert runs, "book/_margins.json holds the robustness runs (scripts/robustness.py)"
    assert {"notebook", "seed", "kernel", "tests"} <= set(runs[0])
    text = robustness.TABLE.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| chapter")]
    assert rows and all(line.count("|") == 9 for line in rows)


def test_the_kernels_start_with_this_machines_own():
    kernels = robustness.kernels_here()
    assert kernels[0] == robustness.native_kernel() and len(set(kernels)) == len(kernels)
    assert "default" in kernels


def test_a_record_covers_every_file_of_a_subpackage_it_used():
    files = robustness.module_files(["data", "advise", "exercises"])
    names = {f.relative_to(robustness.ROOT / "tl_utils").as_posix() for f in files}
    assert {"data.py", "advise/pipeline.py", "advise/report.py", "exercises/chapters_06_10.py"} <= names
    assert all(f.is_file() for f in files)


def test_a_run_that_reproduces_a_record_on_changed_code_carries_its_siblings_over():
    def run(seed, digest, value, seconds=1.0, kernel="avx512"):
        tests = [{"claim": "c", "what": "accuracy", "value": value, "bound": 0.5, "direction": ">=", "unit": "points",
                  "margin": 100 * (value - 0.5), "passes": value >= 0.5},
                 {"claim": "c", "what": "speed-up", "value": 10 / seconds, "bound": 2.0, "direction": ">=", "unit": "x",
                  "margin": 10 / seconds - 2, "passes": True}]
        return {"notebook": "x.ipynb", "seed": seed, "kernel": kernel, "digest": digest, "seconds": seconds,
                "date": "2026-12-05", "error": None, "tests": tests}

    old = [run(0, "old", 0.7), run(1, "old", 0.8), run(2, "older", 0.9), run(3, "old", 0.6), run(0, "old", 0.7, kernel="avx2")]
    digests = lambda runs: [(r["kernel"], r["seed"], r["digest"]) for r in runs]  # noqa: E731
    merged = robustness.merge(old, [run(0, "new", 0.7, seconds=2.0)])  # same accuracy; a timing differs
    assert digests(merged) == [("avx2", 0, "old"), ("avx512", 0, "new"), ("avx512", 1, "new"), ("avx512", 2, "older"),
                               ("avx512", 3, "new")]  # another kernel is not carried over
    assert merged[2]["verified_by"] == "avx512/0 (2026-12-05)" and "verified_by" not in merged[3]
    moved = robustness.merge(old, [run(0, "new", 0.7000001)])  # a number moved: nothing carried over
    assert [d for _, _, d in digests(moved)] == ["old", "new", "old", "older", "old"]
    mixed = robustness.merge(old, [run(0, "new", 0.7), run(1, "new", 0.85)])  # one reproduces, one moved
    assert [d for _, _, d in digests(mixed)] == ["old", "new", "new", "older", "old"]
    assert robustness.merge(old, [run(0, "old", 0.6)])[2]["digest"] == "old"  # same code: a plain replacement
