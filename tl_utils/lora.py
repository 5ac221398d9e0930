"""LoRA from scratch: a frozen layer plus a trainable low-rank update.

A LoRA layer keeps a pretrained layer's weight W (out x in) frozen and learns an update of rank r:

    y = W x + b + (alpha / r) * B (A x),    A: r x in,   B: out x r.

B starts at zero, so before the first step the model computes exactly what the pretrained model
computed. Per layer, r * (in + out) numbers train instead of in * out. After training the update
can be written into the weight, W + (alpha / r) B A (`merge`), and inference costs what it cost
before. Only the update and the new head need storing per task (`save_adapter`), so one frozen
base serves many tasks (`load_adapter` swaps them).

The layout follows the `peft` library (`lora_A`, `lora_B`, `scaling = alpha / r`, A initialised
like a linear layer's weight, B at zero), so the two can be compared weight for weight. Linear
layers and pointwise (1x1) convolutions are supported: a 1x1 convolution is a linear layer
applied at every pixel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from . import files, keys


def _is_pointwise(layer: nn.Module) -> bool:
    return (isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1) and layer.stride == (1, 1)
            and layer.groups == 1 and layer.padding in ((0, 0), "valid"))


def _supported(layer: nn.Module) -> bool:
    return isinstance(layer, nn.Linear) or _is_pointwise(layer)


class LoRALayer(nn.Module):
    """`base` frozen, plus a trainable update of rank `r` scaled by `alpha / r`."""

    def __init__(self, base: nn.Module, r: int, alpha: float | None = None, dropout: float = 0.0):
        super().__init__()
        if not _supported(base):
            raise TypeError(f"LoRA here wraps nn.Linear and pointwise (1x1, stride 1, groups 1) nn.Conv2d "
                            f"layers, got {base!r}")
        if not isinstance(r, int) or isinstance(r, bool) or r < 1:
            raise ValueError(f"the rank r must be a positive whole number, got {r!r}")
        out_features, in_features = base.weight.shape[:2]
        if r > min(in_features, out_features):
            raise ValueError(f"rank {r} is more than this layer's {out_features} x {in_features} weight can have: "
                             f"choose r <= {min(in_features, out_features)}")
        self.base = base
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        self.r = r
        self.alpha = float(r if alpha is None else alpha)
        self.scaling = self.alpha / r
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(out_features, r, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # what nn.Linear does to its weight
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def update(self, x: torch.Tensor) -> torch.Tensor:
        """What the low-rank path adds to the frozen layer's output."""
        x = self.dropout(x)
        if isinstance(self.base, nn.Conv2d):
            return F.conv2d(F.conv2d(x, self.lora_A[:, :, None, None]), self.lora_B[:, :, None, None]) * self.scaling
        return F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.update(x)

    def delta_weight(self) -> torch.Tensor:
        """The update as a full weight, (alpha / r) B A, shaped like the base layer's weight."""
        return (self.lora_B @ self.lora_A * self.scaling).reshape(self.base.weight.shape)

    def merged(self) -> nn.Module:
        """A copy of the base layer with the update written into its weight."""
        layer = deepcopy(self.base)
        with torch.no_grad():
            layer.weight += self.delta_weight().to(layer.weight.dtype)
        return layer


def _matches(name: str, targets: Sequence[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def _set(model: nn.Module, name: str, layer: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, layer)


def add_lora(model: nn.Module, targets: Sequence[str], r: int, *, alpha: float | None = None,
             dropout: float = 0.0, train: Sequence[str] = ()) -> list[str]:
    """Wrap every layer whose name ends with one of `targets` in a `LoRALayer`; freeze the rest.

    targets: last parts of module names, e.g. ["query", "value"] for every attention layer's
        query and value projections (names as `model.named_modules()` gives them).
    train: modules that train in full besides the updates, e.g. ["classifier"] for a new head.
    Returns the names of the wrapped layers.
    """
    for what, names in (("targets", targets), ("train", train)):
        if isinstance(names, str):
            raise TypeError(f"{what} is a list of names, e.g. [{names!r}], not a string")
    chosen = [name for name, module in model.named_modules()
              if name and _matches(name, targets) and _supported(module)]
    if not chosen:
        kinds = sorted({name.rpartition(".")[2] for name, m in model.named_modules() if name and _supported(m)})
        raise ValueError(f"no linear or pointwise convolution layer is named {list(targets)}; "
                         f"this model's names of such layers end with: {kinds}")
    kept = [name for name, _ in model.named_modules() if name and _matches(name, train)]
    if train and not kept:
        raise ValueError(f"no module is named {list(train)}: check `train` against model.named_modules()")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for name in chosen:
        _set(model, name, LoRALayer(model.get_submodule(name), r, alpha, dropout))
    for name in kept:
        for parameter in model.get_submodule(name).parameters():
            parameter.requires_grad_(True)
    return chosen


def lora_layers(model: nn.Module) -> dict[str, LoRALayer]:
    """The model's LoRA layers by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALayer)}


def merge(model: nn.Module) -> nn.Module:
    """Write every LoRA update into its layer's weight, in place: plain layers again, same outputs."""
    for name, layer in lora_layers(model).items():
        _set(model, name, layer.merged())
    return model


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What one task adds to the frozen base, by name, copied to the CPU: every parameter that
    trains, and the buffers (e.g. BatchNorm statistics) of the modules that train in full."""
    state = {name: p for name, p in model.named_parameters() if p.requires_grad}
    for module_name in _settings(model)["train"]:
        for name, buffer in model.get_submodule(module_name).named_buffers(recurse=False):
            state[f"{module_name}.{name}"] = buffer
    return {name: t.detach().to("cpu", copy=True).contiguous() for name, t in state.items()}


def _base_digest(model: nn.Module) -> str:
    """A fingerprint of the frozen weights an adapter was trained on (not the update, not the head)."""
    trained = set(adapter_state(model))
    frozen = [(name, p) for name, p in model.named_parameters() if name not in trained]
    return keys.digest(*[(name.replace(".base.", "."), p.detach()) for name, p in frozen])


def _settings(model: nn.Module) -> dict:
    """How `model` was wrapped: each LoRA layer's rank, alpha and dropout, and what trains in full."""
    layers = {name: {"r": m.r, "alpha": m.alpha, "dropout": m.dropout.p if isinstance(m.dropout, nn.Dropout) else 0.0}
              for name, m in lora_layers(model).items()}
    full = [name.rpartition(".")[0] for name, p in model.named_parameters()
            if p.requires_grad and not name.rpartition(".")[2].startswith("lora_")]
    if "" in full:
        raise ValueError("a parameter that trains sits on the model itself, not in a submodule: put it in a "
                         "module (e.g. nn.Linear) so that the adapter can name what trains")
    return {"layers": layers, "train": list(dict.fromkeys(full))}


def save_adapter(model: nn.Module, path: str | Path) -> Path:
    """Save what trains (the updates and the head, not the frozen base) to a safetensors file."""
    if not lora_layers(model):
        raise ValueError("this model has no LoRA layers: call lora.add_lora(model, ...) before training")
    path = Path(path)
    settings = _settings(model) | {"base": _base_digest(model)}
    with files.atomic_path(path) as tmp:  # never a half-written adapter under the real name
        save_file(adapter_state(model), tmp, metadata={"lora": json.dumps(settings)})
    return path


def read_settings(path: str | Path) -> dict:
    """How the model an adapter file came from was wrapped (see `_settings`)."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if "lora" not in metadata:
        raise ValueError(f"{path} is a safetensors file but not an adapter saved by lora.save_adapter")
    return json.loads(metadata["lora"])


def load_adapter(model: nn.Module, path: str | Path) -> nn.Module:
    """Put a saved adapter into `model`: the same base, wrapped by `add_lora` with the same settings.

    A model without LoRA layers yet is wrapped first, with the settings stored in the file; one
    that has them gets its update and head replaced, so one base can switch between tasks. An
    adapter that does not fit (another base, other settings) is refused before anything changes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no adapter file at {path}: save one with lora.save_adapter(model, path)")
    settings = read_settings(path)
    tensors = load_file(path)
    wrapped = lora_layers(model)
    if wrapped and _settings(model) != {k: v for k, v in settings.items() if k != "base"}:
        raise ValueError(f"the adapter in {path.name} was saved from a model wrapped otherwise: "
                         f"load it into a fresh base model, which it wraps the same way")
    if not wrapped:
        _check_fits(model, settings, tensors, path)
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for name, layer in settings["layers"].items():
            _set(model, name, LoRALayer(model.get_submodule(name), layer["r"], layer["alpha"], layer["dropout"]))
        for name in settings["train"]:
            for parameter in model.get_submodule(name).parameters():
                parameter.requires_grad_(True)
    expected = adapter_state(model)
    if tensors.keys() != expected.keys() or any(t.shape != expected[k].shape for k, t in tensors.items()):
        raise ValueError(f"the adapter in {path.name} does not fit this model (its tensors' names or shapes "
                         f"differ): load it into the base model it was trained on")
    if "base" in settings and _base_digest(model) != settings["base"]:
        raise ValueError(f"the adapter in {path.name} was trained on another base model (its frozen weights "
                         f"differ): load it into the base it was trained on")
    state = dict(model.named_parameters()) | dict(model.named_buffers())
    with torch.no_grad():
        for name, value in tensors.items():
            state[name].copy_(value)
    return model


def _check_fits(model: nn.Module, settings: dict, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse, before wrapping anything, an adapter whose layers or tensors this model lacks."""
    modules = dict(model.named_modules())
    for name, layer in settings["layers"].items():
        if name not in modules or not _supported(modules[name]):
            raise ValueError(f"the adapter in {path.name} updates a layer {name!r} that this model lacks: "
                             f"load it into the base model it was trained on")
        out_features, in_features = modules[name].weight.shape[:2]
        wanted = {f"{name}.lora_A": (layer["r"], in_features), f"{name}.lora_B": (out_features, layer["r"])}
        for key, shape in wanted.items():
            if key not in tensors or tuple(tensors[key].shape) != shape:
                found = tuple(tensors[key].shape) if key in tensors else "nothing"
                raise ValueError(f"{key}: the adapter has {found}, this model needs {shape} "
                                 f"(another base model?)")
    state = dict(model.named_parameters()) | dict(model.named_buffers())
    for name in settings["train"]:
        if name not in modules:
            raise ValueError(f"the adapter in {path.name} trains a module {name!r} that this model lacks")
    for key, value in tensors.items():
        if "lora_" not in key and (key not in state or state[key].shape != value.shape):
            found = tuple(state[key].shape) if key in state else "nothing"
            raise ValueError(f"{key}: the adapter has shape {tuple(value.shape)}, the model {found} "
                             f"(another base model or head size?)")
