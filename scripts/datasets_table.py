"""Write book/_datasets.md, the table of datasets in book/setup.md, from the data themselves.

The counts are computed by loading every split, so the book cannot drift from the data
(tests/test_data.py checks the file is current). Run it after changing the registry:

    python scripts/datasets_table.py
"""

from __future__ import annotations

from pathlib import Path

from tl_utils import data
from tl_utils.registry import REGISTRY

TABLE = Path(__file__).resolve().parents[1] / "book" / "_datasets.md"


def table() -> str:
    """The markdown table: one row per registered dataset, its split sizes counted."""
    lines = ["| name | what | classes | comes from | train / val / test | copies left out |", "|---|---|---|---|---|---:|"]
    for name, info in REGISTRY.items():
        splits = [data.load(name, split) for split in data.SPLITS]
        sizes = " / ".join(f"{len(s):,}".replace(",", " ") for s in splits)
        lines.append(f"| `{name}` | {info.description} | {len(splits[0].classes)} | {info.origin} | {sizes} | {data.left_out(name)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TABLE.write_text("<!-- Written by scripts/datasets_table.py from the data; do not edit. -->\n" + table())
    print(f"wrote {TABLE}")
