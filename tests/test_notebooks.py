"""Every chapter executed top to bottom (papermill), offline, with TL_STRICT_CLAIMS=1."""

import nbformat
import pytest
from run_notebooks import EXECUTED, chapters

BUDGET_SECONDS = 240  # each chapter, at its default parameters, on 2 CPU cores


@pytest.mark.slow
@pytest.mark.parametrize("notebook", chapters(), ids=lambda p: p.name)
def test_chapter_runs_and_its_claims_hold(notebook, executions):
    seconds = executions.get(notebook)
    nb = nbformat.read(EXECUTED / notebook.name, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Claim '" in text and "does not hold" not in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "every chapter shows a figure"
    assert seconds <= BUDGET_SECONDS, f"{notebook.name} took {seconds:.0f} s, over the {BUDGET_SECONDS} s budget"
