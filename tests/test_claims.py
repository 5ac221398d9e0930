import numpy as np
import pytest

from tl_utils import claims


def test_a_claim_that_holds_prints_its_verdict(capsys, monkeypatch):
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    claims.check_claim("probe-beats-scratch", True, "80% vs 60%")
    out = capsys.readouterr().out
    assert "Claim 'probe-beats-scratch' holds: 80% vs 60%" in out


def test_a_failed_claim_raises_only_when_strict(capsys, monkeypatch):
    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    claims.check_claim("x", False, "50% vs 60%")
    assert "does not hold: 50% vs 60%" in capsys.readouterr().out
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    with pytest.raises(claims.ClaimError, match="'x' does not hold: 50% vs 60%"):
        claims.check_claim("x", False, "50% vs 60%")


def test_glue_returns_plain_values_and_checks_names():
    assert claims.glue("acc", 0.5) == 0.5
    value = claims.glue("acc", np.float64(0.25))
    assert type(value) is float and value == 0.25
    with pytest.raises(ValueError, match="glue names"):
        claims.glue("bad name!", 1)
