"""The package's architecture, checked by walking its imports: the library below, the tool above,
no cycles, no private names across modules, and commands that load only what they use."""

import ast
import subprocess
import sys
from pathlib import Path

import tl_utils

PACKAGE = Path(tl_utils.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return ".".join(p for p in (package if node.level else "", node.module or "") if p)


def _imports(module: str) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import in `module`, in functions too."""
    found = []
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.startswith("tl_utils")]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for a in node.names:
                if f"{base}.{a.name}" in MODULES:
                    found.append((f"{base}.{a.name}", None))
                elif base in MODULES:
                    found.append((base, a.name))
    return [(m, n) for m, n in found if m in MODULES and m != module and m != "tl_utils"]


GRAPH = {m: {i for i, _ in _imports(m)} for m in MODULES if m not in ("tl_utils", "tl_utils.advise")}


def test_the_library_never_imports_the_tool():
    upward = {m: sorted(i for i in deps if i.startswith("tl_utils.advise")) for m, deps in GRAPH.items()
              if not m.startswith("tl_utils.advise")}
    assert {m: d for m, d in upward.items() if d} == {}


def test_no_import_cycles():
    order, state = [], {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join([*path, m])}"
        state[m] = "open"
        for dep in sorted(GRAPH.get(m, ())):
            visit(dep, [*path, m])
        state[m] = "done"
        order.append(m)

    for m in sorted(GRAPH):
        visit(m, [])
    assert len(order) == len(GRAPH)


def test_no_private_name_crosses_a_module():
    crossing = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}  # local name -> tl_utils module it names
        for other, name in _imports(module):
            if name is not None and name.startswith("_") and name != "__version__":
                crossing.append(f"{module} imports {other}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(module, node)
                aliases |= {a.asname or a.name: f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                crossing.append(f"{module} uses {aliases[node.value.id]}.{node.attr}")
    assert crossing == []


def test_every_module_says_its_one_job_first():
    for module, path in MODULES.items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()[0]) > 20, f"{module} has no first line saying what it is for"


def test_the_package_docstrings_list_every_module():
    for package in [m for m, path in MODULES.items() if path.name == "__init__.py"]:
        doc = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8")))
        children = [m.rpartition(".")[2] for m in MODULES if m.rpartition(".")[0] == package and "__" not in m]
        assert [c for c in children if f"`{c}`" not in doc and f"`{package}.{c}`" not in doc] == []


def test_each_package_docstring_lists_its_modules_below_what_they_import():
    upward = []
    for package in ("tl_utils", "tl_utils.advise"):
        doc = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8")))
        listed = [line.split("`")[1] for line in doc.splitlines() if line.startswith("- `")]
        rank = {f"{package}.{m}": i for i, m in enumerate(listed)}
        upward += [f"{m} imports {d}" for m in rank for d in GRAPH[m] if d in rank and rank[d] > rank[m]]
    assert upward == []


def _loaded_by(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint('\\n' + ' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.splitlines()[-1].split())  # the last line: what --help printed comes before


def test_import_tl_utils_loads_no_library():
    loaded = _loaded_by("import tl_utils")
    assert {"torch", "timm", "matplotlib", "pandas"} & loaded == set()


def test_tl_predict_help_loads_neither_torch_nor_matplotlib():
    loaded = _loaded_by("from tl_utils.advise import cli\n"
                        "try:\n    cli.predict_main(['--help'])\nexcept SystemExit:\n    pass")
    assert {"torch", "timm", "matplotlib", "pandas", "onnxruntime"} & loaded == set()
    assert "tl_utils.advise.cli" in loaded
