"""A trained classifier as files: saved, loaded back, run on new images, exported to ONNX (chapter 10).

A saved model is a folder:

    model.safetensors   the weights (safetensors: plain tensors, nothing pickled, nothing executed)
    model.json          what to rebuild around them: architecture, head, classes, input size,
                        normalisation; written last, so a folder without it is not a model
    model.onnx          the same network for ONNX runtimes (`export_onnx`), if exported

The network inside takes what `imagefiles.to_square_rgb` gives, uint8 images (N, 3, S, S), and
returns class probabilities: preprocessing is part of the model, so a deployment cannot get
it wrong. `save` writes into a temporary folder and renames it into place when everything is
written: an interrupted run leaves no folder that `load` would accept.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import imagefiles, models

__all__ = ["KNNHead", "BackboneWithKNN", "Deployed", "deployable", "save", "load", "replace_folder", "predict_files", "export_onnx", "onnx_probabilities", "FORMAT"]

FORMAT = "tl-hands-on/classifier/1"
ARCHITECTURES = ("efficientnet-lite0", "small-cnn")


class KNNHead(nn.Module):
    """A k-nearest-neighbour vote on pooled features, as a module: probabilities of each class.

    The neighbours are the training features (normalised, kept as a buffer); the vote is the
    share of the k most similar (cosine) that have each label, the nearest breaking ties.
    """

    def __init__(self, bank: torch.Tensor, labels: torch.Tensor, n_classes: int, k: int):
        super().__init__()
        if not 1 <= k <= len(bank):
            raise ValueError(f"k must be between 1 and the {len(bank)} stored examples, got {k}")
        self.k, self.n_classes = k, n_classes
        self.register_buffer("bank", nn.functional.normalize(bank.float(), dim=1))
        self.register_buffer("votes", nn.functional.one_hot(labels.long(), n_classes).float())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        similarity = nn.functional.normalize(features, dim=1) @ self.bank.T
        nearest = similarity.topk(self.k, dim=1).indices  # (N, k), the most similar first
        votes = self.votes[nearest].sum(dim=1) + 1e-3 * self.votes[nearest[:, 0]]
        return votes / votes.sum(dim=1, keepdim=True)


class Deployed(nn.Module):
    """uint8 images (N, 3, S, S) -> class probabilities: scaling, normalisation and the network."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], outputs: str):
        super().__init__()
        if outputs not in ("logits", "probabilities"):
            raise ValueError(f"outputs must be 'logits' or 'probabilities', got {outputs!r}")
        self.net, self.outputs = net, outputs
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.net((images.float() / 255.0 - self.mean) / self.std)
        return out.softmax(dim=1) if self.outputs == "logits" else out


class BackboneWithKNN(nn.Module):
    """A backbone without its head (`num_classes=0`), then a KNNHead on its pooled features."""

    def __init__(self, backbone: nn.Module, head: KNNHead):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True))


def _build(config: dict) -> Deployed:
    """The architecture `config` describes, with untrained weights."""
    n = len(config["classes"])
    if config["architecture"] == "small-cnn":
        net = models.small_cnn(n, in_channels=3)
    elif config["head"] == "knn":
        backbone = models.load_backbone(config["architecture"], num_classes=0, check_inputs=False, pretrained=False)
        bank = torch.zeros(config["knn_examples"], backbone.num_features)
        net = BackboneWithKNN(backbone, KNNHead(bank, torch.zeros(len(bank), dtype=torch.long), n, config["knn_k"]))
    else:
        net = models.load_backbone(config["architecture"], num_classes=n, check_inputs=False, pretrained=False)
    outputs = "probabilities" if config["head"] == "knn" else "logits"
    return Deployed(net, config["mean"], config["std"], outputs).eval()


def deployable(net: nn.Module, *, architecture: str, head: str, classes: Sequence[str], size: int,
               mean: Sequence[float], std: Sequence[float], knn_k: int | None = None) -> tuple[Deployed, dict]:
    """(module, config) for `save`: `net` maps normalised images to logits (or, for a k-NN head,
    is a backbone with `num_classes=0` whose features feed a KNNHead given as `knn_k` + buffers)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    config = {"format": FORMAT, "architecture": architecture, "head": head, "classes": list(classes),
              "size": int(size), "mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    if head == "knn":
        config |= {"knn_k": net.head.k, "knn_examples": len(net.head.bank)}
    outputs = "probabilities" if head == "knn" else "logits"
    return Deployed(net, mean, std, outputs).eval(), config


def save(model: Deployed, config: dict, folder: Path | str, *, onnx: bool = True,
         extra: dict[str, str] | None = None) -> Path:
    """Write `model`, `config` (and model.onnx) into `folder`, replacing a model there, atomically.

    Everything goes into a temporary folder first, model.json last, and the folder is renamed
    into place at the end: interrupted at any point, no half-written model is left behind.
    extra: more files to put in the folder, {name: text}.
    """
    folder = Path(folder)
    if folder.exists() and not (folder / "model.json").is_file() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not a saved model: choose another folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / "model.safetensors")
        if onnx:
            export_onnx(model, config, tmp / "model.onnx")
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
        (tmp / "model.json").write_text(json.dumps(config, indent=2))  # last: its presence means complete
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def replace_folder(new: Path, target: Path) -> None:
    """Rename `new` to `target`, replacing a folder there: the old one is renamed aside first and
    deleted last, so `target` is at every moment either the old folder or the new one, complete."""
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)


def load(folder: Path | str) -> tuple[Deployed, dict]:
    """(model, config) from a folder written by `save`; a clear error for anything else."""
    folder = Path(folder)
    config_file, weights = folder / "model.json", folder / "model.safetensors"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder tl-advise wrote (it holds model.json)")
    if not config_file.is_file() or not weights.is_file():
        raise ValueError(f"{folder} is not a complete saved model (model.json and model.safetensors are needed); "
                         "an interrupted tl-advise leaves none: run it again")
    config = json.loads(config_file.read_text())  # a damaged file raises a ValueError (JSONDecodeError)
    if config.get("format") != FORMAT:
        raise ValueError(f"{config_file} has format {config.get('format')!r}; this version of tl_utils reads {FORMAT!r}")
    model = _build(config)
    try:
        model.load_state_dict(load_file(weights))
    except (SafetensorError, RuntimeError) as error:
        raise ValueError(f"{weights} cannot be read as this model's weights ({error}): run tl-advise again") from None
    return model, config


def read_images(files: Sequence[Path | str], size: int) -> tuple[torch.Tensor, list[Path], list[imagefiles.Skipped]]:
    """uint8 (N, 3, size, size) of the files that decode, those files, and the others with why."""
    images, used, skipped = [], [], []
    for f in map(Path, files):
        try:
            images.append(imagefiles.to_square_rgb(f, size))
            used.append(f)
        except imagefiles.ImageError as error:
            skipped.append(imagefiles.Skipped(f, str(error)))
    stacked = torch.from_numpy(np.stack(images)) if images else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return stacked, used, skipped


@torch.inference_mode()
def probabilities(model: Deployed, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Class probabilities (N, K) of uint8 images, on the CPU, in batches."""
    model.eval()
    chunks = [model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(chunks) if chunks else torch.zeros(0, 0)


def predict_files(folder: Path | str, files: Sequence[Path | str]) -> tuple[list[dict], list[imagefiles.Skipped]]:
    """[{file, label, probability, probabilities}] for each image file, and the files that were not."""
    model, config = load(folder)
    images, used, skipped = read_images(files, config["size"])
    probs = probabilities(model, images)
    rows = [{"file": str(f), "label": config["classes"][int(p.argmax())], "probability": float(p.max()),
             "probabilities": dict(zip(config["classes"], map(float, p)))} for f, p in zip(used, probs)]
    return rows, skipped


def export_onnx(model: Deployed, config: dict, path: Path | str) -> Path:
    """Write the network to `path` in ONNX, for any batch size of uint8 (N, 3, S, S) images."""
    example = torch.zeros(2, 3, config["size"], config["size"], dtype=torch.uint8)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter reports every step
        torch.onnx.export(model.eval(), (example,), str(path), input_names=["images"], output_names=["probabilities"],
                          dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, dynamo=True,
                          external_data=False)
    return Path(path)


def onnx_probabilities(path: Path | str, images: torch.Tensor) -> np.ndarray:
    """Run an exported model with onnxruntime on uint8 images (N, 3, S, S): (N, K) probabilities."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images.numpy()})[0]
