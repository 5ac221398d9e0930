"""A package's modules imported on first use (PEP 562): `import tl_utils` itself imports nothing.

    __getattr__, __dir__ = lazy.attributes(__name__, ("models", ...), {"glue": "claims", ...})

gives a package the module attribute `__getattr__` that imports `package.models` when
`package.models` is first read, and reads `package.claims.glue` for `package.glue`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping

__all__ = ["attributes"]


def attributes(package: str, modules: Iterable[str], names: Mapping[str, str]) -> tuple[Callable, Callable]:
    """(`__getattr__`, `__dir__`) for `package`: its `modules`, and `names` (name -> the module that holds it)."""
    modules, names = tuple(modules), dict(names)

    def __getattr__(name: str):
        if name in modules:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*modules, *names})

    return __getattr__, __dir__
