"""Fingerprints of what a stored result depends on (feature caches, checkpoints, decoded data).

A cache is only as good as its key: leave out something the result depends on and a stale
result is served; put in something it does not depend on and the cache misses for nothing.
`digest(*values)` hashes values of every kind a key is made of: tensors (their bytes), modules
(architecture and weights), functions (their source code and the values they close over),
dataclasses, containers and plain values. `source_digest` hashes code, so that editing a
function invalidates what it produced without a version number to remember to bump.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import types
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

_MAX_DEPTH = 8


def digest(*values: object) -> str:
    """A sha256 hex digest of `values`, stable across processes and machines."""
    h = hashlib.sha256()
    for value in values:
        _feed(h, value, 0)
    return h.hexdigest()


def source_digest(*objects: object) -> str:
    """A digest of the source code of functions, classes or modules (or of files, given Paths)."""
    h = hashlib.sha256()
    for obj in objects:
        h.update(Path(obj).read_bytes() if isinstance(obj, Path) else _source(obj).encode())
    return h.hexdigest()


def _source(obj: object) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # defined where no source file exists (e.g. exec)
        code = getattr(obj, "__code__", None)
        return _code_text(code) if code is not None else getattr(obj, "__qualname__", type(obj).__qualname__)


def _code_text(code: types.CodeType) -> str:
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{consts}|{code.co_names}"


def _feed(h, value: object, depth: int) -> None:
    if depth > _MAX_DEPTH:
        h.update(b"<deep>")
        return
    tag = type(value).__qualname__.encode()
    h.update(tag + b":")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, torch.dtype, torch.device)):
        h.update(repr(value).encode())
    elif isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, np.ndarray):
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes() if value.dtype != object else repr(value.tolist()).encode())
    elif isinstance(value, nn.Module):  # architecture, plain settings repr may not show, weights
        h.update(repr(value).encode())
        _feed(h, [_plain_attributes(m) for m in value.modules()], depth + 1)
        _feed(h, dict(value.state_dict()), depth + 1)
    elif isinstance(value, Mapping):
        for key in sorted(value, key=repr):
            _feed(h, key, depth + 1)
            _feed(h, value[key], depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        h.update(str(len(items)).encode())
        for item in items:
            _feed(h, item, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(_source(type(value)).encode())
        _feed(h, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth + 1)
    elif isinstance(value, functools.partial):
        _feed(h, (value.func, value.args, value.keywords), depth + 1)
    elif isinstance(value, types.MethodType):
        _feed(h, (value.__func__, value.__self__), depth + 1)
    elif isinstance(value, types.FunctionType):
        h.update(f"{value.__module__}.{value.__qualname__}".encode())
        h.update(_source(value).encode())
        cells = [c.cell_contents for c in value.__closure__ or () if _filled(c)]
        _feed(h, (value.__defaults__, value.__kwdefaults__, cells), depth + 1)
    elif isinstance(value, (type, types.ModuleType, types.BuiltinFunctionType)):
        h.update(getattr(value, "__qualname__", value.__name__).encode())
    elif isinstance(value, torch.optim.Optimizer):
        _feed(h, [{k: v for k, v in g.items() if k != "params"} | {"sizes": [p.numel() for p in g["params"]]}
                  for g in value.param_groups], depth + 1)
    elif hasattr(value, "__dict__"):  # any other object: its class's code and its attributes
        h.update(_source(type(value)).encode())
        _feed(h, {k: v for k, v in vars(value).items() if not isinstance(v, torch.optim.Optimizer)}, depth + 1)
    else:
        h.update(repr(value).encode())


def _plain_attributes(module: nn.Module) -> dict:
    """A module's public settings of plain types (e.g. CrossEntropyLoss's label_smoothing)."""
    plain = (bool, int, float, str, type(None))
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and isinstance(v, plain)}


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:  # an empty cell: a variable not yet assigned
        return False
    return True
