"""Student notebooks and the instructor key, written under _build/.

    python scripts/classroom.py student     # _build/student/: solutions replaced by stubs
    python scripts/classroom.py solutions   # _build/solutions/: solutions shown, not hidden

A solution is a code cell tagged "solution". In the student version it becomes a stub that
keeps the exercise's self-check, so a learner writes their answer and checks it in place.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = {"student": ROOT / "_build" / "student", "solutions": ROOT / "_build" / "solutions"}


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])


def stub(solution_source: str) -> str:
    """The student's cell: `answer = None`, a placeholder for every number the solution measures
    and passes to the check, and the solution's own call to the self-check."""
    tree = ast.parse(solution_source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "exercises.check"]
    if not calls or not isinstance(calls[0].args[0], ast.Constant):
        raise ValueError(f"a solution cell must call exercises.check: {solution_source[:80]!r}")
    call = calls[0]
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    measured = [k.value.id for k in call.keywords if isinstance(k.value, ast.Name) and k.value.id in assigned]
    also = f" and what your run measured in {', '.join(f'`{m}`' for m in measured)}" if measured else ""
    return "\n".join([f"# Exercise {call.args[0].value}: your code here. Put your answer in `answer`{also},",
                      "# then run this cell.", "answer = None", *[f"{m} = None" for m in measured], "",
                      ast.unparse(call)])


def student_version(nb):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if is_solution(cell):
            cell.source = stub(cell.source)
            cell.metadata["tags"] = ["exercise"]
    return nb


def solutions_version(nb):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if is_solution(cell):
            cell.metadata["tags"] = ["solution"]  # shown, not collapsed
    return nb


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9A][0-9]_*.ipynb"))


def main(kind: str) -> None:
    make = {"student": student_version, "solutions": solutions_version}[kind]
    OUT[kind].mkdir(parents=True, exist_ok=True)
    for path in notebooks():
        nbformat.write(make(nbformat.read(path, as_version=4)), OUT[kind] / path.name)
    print(f"{len(notebooks())} {kind} notebooks in {OUT[kind]}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in OUT:
        sys.exit("usage: python scripts/classroom.py student|solutions")
    main(sys.argv[1])
