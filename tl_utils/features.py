"""Extract a frozen backbone's features once, cache them on disk, train heads on them (chapter 2).

A frozen backbone gives the same output for the same image every epoch, so computing it
once and training the head on the stored vectors is the same model at a fraction of the
cost. The cache key (`cache_key`) covers what the features depend on, and nothing else: the
architecture and weights of the layers below the features (not the head), the pixels, the
preprocessing, the code that computes them, and the torch and timm versions. Change any of
them and the features are extracted again; change the head or the labels and they are not.
Text embeddings (`embed_texts`) are cached the same way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from . import distributed, files, keys
from . import preprocess as _preprocess_module
from .freezing import head as _head
from .freezing import same_modes
from .freezing import stages as _stages
from .preprocess import Preprocess
from .runtime import cache_dir, fast_layout, on_device, progress
from .splits import DataSplit
from .textmodels import mean_pooled
from .train import fit


@dataclass(frozen=True)
class Features:
    """Pooled features of one DataSplit: x (N, D) float32, y (N,), and where they came from."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    path: Path
    cached: bool  # True when read from the cache rather than computed
    seconds: float  # time spent extracting (or loading)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> Features:
        """The features at `index` (e.g. from tl_utils.data.sample_per_class)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return dataclasses.replace(self, x=self.x[index], y=self.y[index])


def _feature_layers(model: nn.Module, stage: int | None) -> list[nn.Module]:
    """The modules the features are computed by: the first `stage` stages, or all but the head."""
    if stage is not None:
        return _stages(model)[:stage]
    return [module for module in model.children() if module is not _head(model)]


def cache_key(model: nn.Module, data: DataSplit, preprocess: Preprocess, stage: int | None = None) -> str:
    """A key that changes whenever the features would: the architecture and weights of the
    layers below them, the images, the preprocessing, the code computing them, the versions.

    The head, the labels and the dataset's name are not in it: they do not change the features.
    """
    code = keys.source_digest(pooled, _stage_outputs, Path(_preprocess_module.__file__))
    return keys.digest(_feature_layers(model, stage), data.x, preprocess, stage, code,
                       torch.__version__, timm.__version__)


@torch.inference_mode()
def pooled(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's pooled features (N, D): everything except the classification head."""
    return model.forward_head(model.forward_features(fast_layout(x)), pre_logits=True)


def _cache_path(model: nn.Module, data: DataSplit, preprocess: Preprocess, stage: int | None,
                cache: Path | str | None) -> Path:
    folder = Path(cache) if cache else cache_dir() / "features"
    where = "pooled" if stage is None else f"stage{stage}"
    key = cache_key(model, data, preprocess, stage)  # the name and split only make the file readable
    return folder / f"{type(model).__name__}-{where}-{data.name}-{data.split}-{key[:16]}.safetensors"


def _load(path: Path, data: DataSplit, seconds_from: float) -> Features:
    """Stored features, with the labels and class names of `data` (they are not in the key)."""
    x = load_file(path)["x"]
    return Features(x, data.y.clone(), list(data.classes), path, True, time.perf_counter() - seconds_from)


def _save(path: Path, x: torch.Tensor) -> None:
    with files.atomic_path(path) as tmp:  # an interrupted extraction never leaves a half-written cache file
        save_file({"x": x.contiguous()}, tmp)


def extract(
    model: nn.Module,
    data: DataSplit,
    preprocess: Preprocess,
    *,
    stage: int | None = None,
    batch_size: int = 256,
    cache: Path | str | None = None,
    device: torch.device | str | None = None,
) -> Features:
    """Pooled features of every image in `data`, from the cache when they are already there.

    stage: instead of the pooled features, the output of the first `stage` stages, (N, C, H, W):
        the input of the top part that stays trainable when the bottom is frozen (chapter 3).
    cache: the folder to keep features in (default: $TL_CACHE_DIR/features).
    """
    if stage is not None:
        return extract_stages(model, data, preprocess, [stage], batch_size=batch_size, cache=cache,
                              device=device)[stage]
    if data.is_text:
        raise TypeError("extract() works on images; for texts use tl_utils.features.embed_texts")
    path = _cache_path(model, data, preprocess, None, cache)
    start = time.perf_counter()
    with distributed.main_first():  # under torchrun, process 0 computes and caches, the others read
        if path.is_file():
            return _load(path, data, start)
        chunks = []
        with on_device(model, device) as device, same_modes(model):
            model.eval()
            for i in progress(range(0, len(data), batch_size), desc=f"features of {data.name}/{data.split}"):
                chunks.append(pooled(model, preprocess(data.x[i : i + batch_size].to(device))).float().cpu())
        x = torch.cat(chunks)
        _save(path, x)
    return Features(x, data.y.clone(), list(data.classes), path, False, time.perf_counter() - start)


def extract_stages(
    model: nn.Module,
    data: DataSplit,
    preprocess: Preprocess,
    stages: Sequence[int],
    *,
    batch_size: int = 256,
    cache: Path | str | None = None,
    device: torch.device | str | None = None,
) -> dict[int, Features]:
    """The output of the first k stages for every k in `stages`, computed in one pass.

    Returns {k: Features with x of shape (N, C, H, W)}; each is cached like `extract`'s.
    """
    if data.is_text:
        raise TypeError("extract_stages() works on images")
    trunk = _stages(model)
    if not all(1 <= k <= len(trunk) for k in stages):
        raise ValueError(f"stages must be between 1 and {len(trunk)}, got {list(stages)}")
    start = time.perf_counter()
    paths = {k: _cache_path(model, data, preprocess, k, cache) for k in stages}
    with distributed.main_first():  # under torchrun, process 0 computes and caches, the others read
        return _stage_features(model, trunk, data, preprocess, paths, batch_size, device, start)


def _stage_features(model, trunk, data: DataSplit, preprocess: Preprocess, paths: dict[int, Path], batch_size: int,
                    device, start: float) -> dict[int, Features]:
    """extract_stages' work: read what is cached, compute the rest in one pass and cache it."""
    stages = list(paths)
    out = {k: _load(path, data, start) for k, path in paths.items() if path.is_file()}
    missing = sorted(set(stages) - set(out))
    if missing:
        chunks: dict[int, list[torch.Tensor]] = {k: [] for k in missing}
        with on_device(model, device) as device, same_modes(model):
            model.eval()
            for i in progress(range(0, len(data), batch_size), desc=f"stage outputs of {data.name}/{data.split}"):
                outputs = _stage_outputs(trunk, preprocess(data.x[i : i + batch_size].to(device)), missing)
                for k, h in outputs.items():
                    chunks[k].append(h.float().cpu())
        for k in missing:
            x = torch.cat(chunks[k])
            _save(paths[k], x)
            out[k] = Features(x, data.y.clone(), list(data.classes), paths[k], False, time.perf_counter() - start)
    return {k: out[k] for k in stages}


@torch.inference_mode()
def _stage_outputs(trunk: Sequence[nn.Module], x: torch.Tensor, wanted: Sequence[int]) -> dict[int, torch.Tensor]:
    """{k: the output of the first k stages} for every k in `wanted`, in one pass."""
    out, x = {}, fast_layout(x)
    for k, stage in enumerate(trunk[: max(wanted)], start=1):
        x = stage(x)
        if k in wanted:
            out[k] = x
    return out


def train_head(
    train: Features,
    val: Features | None = None,
    *,
    epochs: int | None = None,
    lr: float = 1e-2,
    weight_decay: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    checkpoint_dir: Path | str | None = None,
) -> tuple[nn.Linear, list[dict]]:
    """A linear classifier (the new head) trained on cached features; returns (head, history).

    epochs: default 30, and more for tiny sets so that the head gets at least 300 steps. The
    defaults were chosen on the validation splits of chapter 2.
    """
    if epochs is None:
        epochs = max(30, math.ceil(300 / math.ceil(len(train) / batch_size)))
    torch.manual_seed(seed)
    head = nn.Linear(train.x.shape[1], len(train.classes))
    history = fit(
        head, (train.x, train.y), val=(val.x, val.y) if val is not None else None,
        epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size, seed=seed,
        checkpoint_dir=checkpoint_dir,
    )
    return head, history


def embed_texts(
    tokenizer, model: nn.Module, texts: list[str], *, max_length: int = 64, batch_size: int = 64,
    cache: Path | str | None = None, device: torch.device | str | None = None,
) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings (N, D) from a BERT-family encoder.

    Cached like image features (cache: default $TL_CACHE_DIR/features), keyed on the encoder's
    architecture and weights (not a classification head), the tokenizer's vocabulary and
    settings, the texts, `max_length`, this function's code and the library versions.
    """
    import transformers

    encoder = getattr(model, "base_model", model)
    key = keys.digest(encoder, json.dumps(tokenizer.get_vocab(), sort_keys=True), type(tokenizer).__name__,
                      tokenizer.init_kwargs.get("do_lower_case"), list(texts), max_length,
                      keys.source_digest(_embed), keys.source_digest(mean_pooled), torch.__version__, transformers.__version__)
    path = (Path(cache) if cache else cache_dir() / "features") / f"{type(encoder).__name__}-texts-{key[:16]}.safetensors"
    with distributed.main_first():  # under torchrun, process 0 computes and caches, the others read
        if path.is_file():
            return load_file(path)["x"]
        with on_device(encoder, device) as device, same_modes(encoder):
            encoder.eval()
            x = _embed(tokenizer, encoder, texts, max_length, batch_size, device)
        _save(path, x)
    return x


@torch.inference_mode()
def _embed(tokenizer, encoder: nn.Module, texts: list[str], max_length: int, batch_size: int,
           device: torch.device) -> torch.Tensor:
    out = []
    for i in progress(range(0, len(texts), batch_size), desc="embedding texts"):
        batch = tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        hidden = encoder(**batch).last_hidden_state  # (B, T, D)
        out.append(mean_pooled(hidden, batch["attention_mask"]).float().cpu())
    return torch.cat(out)
