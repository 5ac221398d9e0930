"""The timing table of `make bench` and `make test` (scripts/bench.py)."""

import bench


def _result(compare: bool) -> dict:
    runs = {"this": 120.0, "other": 200.0} if compare else {"this": 120.0}
    units = {"this": [3.0, 4.0, 9.0], "other": [5.0, 4.0]} if compare else {"this": [3.0, 4.0, 9.0]}
    return {"chapters": {"01_x.ipynb": runs}, "calibration": units, "machine": "x86_64, 2 cores",
            "date": "2026-01-01"}


def test_the_table_divides_by_the_median_calibration():
    text = bench.table(_result(compare=False))
    assert "| 01_x | 120 | 30.0 |" in text and "median 4.00 s" in text and "make bench" in text
    assert "| all together | 120 | 30.0 |" in text and "is within it" in text


def test_with_a_comparison_the_table_gives_the_ratio_before_and_the_change():
    text = bench.table(_result(compare=True))
    assert "| 01_x | 120 | 30.0 | 200 | 44.4 | 68% |" in text
