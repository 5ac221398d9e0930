"""Extract a frozen backbone's features once, cache them on disk, train heads on them (chapter 2).

A frozen backbone gives the same output for the same image every epoch, so computing it
once and training the head on the stored vectors is the same model at a fraction of the
cost. The cache key covers everything that changes the output: the backbone and the exact
values of its weights, the data (name, split and a hash of its contents) and the
preprocessing. Change any of them and the features are extracted again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .data import DataSplit
from .models import Preprocess
from .models import stages as _stages
from .runtime import cache_dir, get_device
from .train import fit, progress


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


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            h.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def cache_key(model: nn.Module, data: DataSplit, preprocess: Preprocess, stage: int | None = None) -> str:
    """A key that changes whenever the backbone, its weights, the data, the preprocessing or
    the layer the features are taken from do."""
    weights = _digest(*model.state_dict().values())
    name = getattr(model, "tl_name", type(model).__name__)
    parts = (name, weights, data.name, data.split, data.x, data.y, preprocess)
    return _digest(*parts) if stage is None else _digest(*parts, "stage", stage)


@torch.inference_mode()
def pooled(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's pooled features (N, D): everything except the classification head."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


def _cache_path(model: nn.Module, data: DataSplit, preprocess: Preprocess, stage: int | None,
                cache: Path | str | None) -> Path:
    folder = Path(cache) if cache else cache_dir() / "features"
    where = "" if stage is None else f"-stage{stage}"
    key = cache_key(model, data, preprocess, stage)
    return folder / f"{getattr(model, 'tl_name', 'model')}{where}-{data.name}-{data.split}-{key[:16]}.safetensors"


def _load(path: Path, seconds_from: float) -> Features:
    stored = load_file(path)
    return Features(stored["x"], stored["y"], _classes(path), path, True, time.perf_counter() - seconds_from)


def _save(path: Path, x: torch.Tensor, data: DataSplit) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({"x": x.contiguous(), "y": data.y.clone()}, tmp, metadata={"classes": json.dumps(data.classes)})
    tmp.replace(path)  # atomic: an interrupted extraction never leaves a half-written cache file


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
    if path.is_file():
        return _load(path, start)
    device = torch.device(device) if device else get_device()
    model = model.to(device).eval()
    chunks = []
    for i in progress(range(0, len(data), batch_size), desc=f"features of {data.name}/{data.split}"):
        chunks.append(pooled(model, preprocess(data.x[i : i + batch_size].to(device))).float().cpu())
    x = torch.cat(chunks)
    _save(path, x, data)
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
    out = {k: _load(path, start) for k, path in paths.items() if path.is_file()}
    missing = sorted(set(stages) - set(out))
    if missing:
        device = torch.device(device) if device else get_device()
        model = model.to(device).eval()
        chunks: dict[int, list[torch.Tensor]] = {k: [] for k in missing}
        for i in progress(range(0, len(data), batch_size), desc=f"stage outputs of {data.name}/{data.split}"):
            with torch.inference_mode():
                h = preprocess(data.x[i : i + batch_size].to(device))
                for k, stage in enumerate(trunk[: max(missing)], start=1):
                    h = stage(h)
                    if k in chunks:
                        chunks[k].append(h.float().cpu())
        for k in missing:
            x = torch.cat(chunks[k])
            _save(paths[k], x, data)
            out[k] = Features(x, data.y.clone(), list(data.classes), paths[k], False, time.perf_counter() - start)
    return {k: out[k] for k in stages}


def _classes(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return json.loads(f.metadata()["classes"])


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


def knn_accuracy(train, test, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote by cosine similarity: a probe with no training.

    train, test: Features, or a DataSplit of images (then the raw pixels are compared).
    """
    if len(train.y) == 0:
        raise ValueError("train has no examples")
    n_classes = len(train.classes)
    a = nn.functional.normalize(train.x.flatten(1).float(), dim=1)
    b = nn.functional.normalize(test.x.flatten(1).float(), dim=1)
    neighbours = (b @ a.T).topk(min(k, len(a)), dim=1).indices  # (N_test, k)
    votes = nn.functional.one_hot(train.y[neighbours], n_classes).sum(dim=1).float()  # (N_test, K)
    votes += 1e-3 * nn.functional.one_hot(train.y[neighbours[:, 0]], n_classes)  # ties: the nearest wins
    return (votes.argmax(dim=1) == test.y).float().mean().item()


@torch.inference_mode()
def embed_texts(
    tokenizer, model: nn.Module, texts: list[str], *, max_length: int = 64, batch_size: int = 64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings (N, D) from a BERT-family encoder."""
    device = torch.device(device) if device else get_device()
    encoder = getattr(model, "base_model", model).to(device).eval()
    out = []
    for i in progress(range(0, len(texts), batch_size), desc="embedding texts"):
        batch = tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        hidden = encoder(**batch).last_hidden_state  # (B, T, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        out.append(nn.functional.normalize(mean, dim=-1).float().cpu())
    return torch.cat(out)
