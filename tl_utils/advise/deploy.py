"""A trained classifier as files: saved, loaded back, exported to ONNX (chapter 10; `predict` runs it on files).

A saved model is a folder:

    model.safetensors   the weights (safetensors: plain tensors, nothing pickled, nothing executed)
    model.json          what to rebuild around them: architecture, head, classes, input size,
                        normalisation; written last, so a folder without it is not a model
    model.onnx          the same network for ONNX runtimes (`export_onnx`), if exported
    text/               a text model's tokenizer (tokenizer.json) and encoder configuration

An image model takes what `imagefiles.to_square_rgb` gives, uint8 images (N, 3, S, S); a text
model takes its tokenizer's `input_ids` and `attention_mask` (N, T). Both return class
probabilities: preprocessing is part of the model, so a deployment cannot get it wrong. `save` writes into a temporary folder and renames it into place when everything is
written: an interrupted run leaves no folder that `load` would accept.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .. import models, onnxmodels, textmodels
from ..knn import BackboneWithKNN, KNNHead
from ..train import predict
from . import owned
from .result import AdviseError

__all__ = ["Deployed", "DeployedText", "deployable", "deployable_text", "save", "load",
           "load_tokenizer", "replace_folder", "probabilities", "export_onnx", "onnx_feed", "onnx_probabilities",
           "FORMAT"]

FORMAT = "tl-hands-on/classifier/1"
ARCHITECTURES = ("efficientnet-lite0", "small-cnn")
TEXT_ARCHITECTURES = ("minilm-l6", "tfidf")
TEXT_FOLDER = "text"  # inside a saved text model: the tokenizer and the encoder's configuration


def _outputs(head: str) -> str:
    """What a network with this head returns: a k-NN vote gives probabilities, a linear head logits."""
    return "probabilities" if head == "knn" else "logits"


class _Classifier(nn.Module):
    """A network whose outputs (`outputs`: "logits" or "probabilities") become probabilities."""

    def __init__(self, net: nn.Module, outputs: str):
        super().__init__()
        if outputs not in ("logits", "probabilities"):
            raise ValueError(f"outputs must be 'logits' or 'probabilities', got {outputs!r}")
        self.net, self.outputs = net, outputs

    def probabilities(self, out: torch.Tensor) -> torch.Tensor:
        return out.softmax(dim=1) if self.outputs == "logits" else out


class Deployed(_Classifier):
    """uint8 images (N, 3, S, S) -> class probabilities: scaling, normalisation and the network."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], outputs: str):
        super().__init__(net, outputs)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.probabilities(self.net((images.float() / 255.0 - self.mean) / self.std))


class DeployedText(_Classifier):
    """input_ids, attention_mask (N, T) -> class probabilities."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.probabilities(self.net(input_ids, attention_mask))


def _empty_knn(config: dict, width: int) -> KNNHead:
    """A KNNHead of the saved shape, its bank of features to be loaded."""
    examples = config["knn_examples"]
    return KNNHead(torch.zeros(examples, width), torch.zeros(examples, dtype=torch.long), len(config["classes"]),
                   config["knn_k"])


def _build_text(config: dict, folder: Path) -> DeployedText:
    n = len(config["classes"])
    if config["architecture"] == "tfidf":
        v = config["vocabulary"]
        net = textmodels.TfidfLinear(torch.zeros(v), torch.zeros(n, v), torch.zeros(n))
    else:
        from transformers import AutoConfig, AutoModel

        encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder / TEXT_FOLDER))
        width = encoder.config.hidden_size
        head = _empty_knn(config, width) if config["head"] == "knn" else nn.Linear(width, n)
        net = textmodels.TextClassifier(encoder, head)
    return DeployedText(net, _outputs(config["head"])).eval()


def _build(config: dict, folder: Path) -> Deployed | DeployedText:
    """The architecture `config` describes, with untrained weights."""
    if config.get("input") == "texts":
        return _build_text(config, folder)
    n = len(config["classes"])
    if config["architecture"] == "small-cnn":
        net = models.small_cnn(n, in_channels=3)
    elif config["head"] == "knn":
        backbone = models.load_backbone(config["architecture"], num_classes=0, check_inputs=False, pretrained=False)
        net = BackboneWithKNN(backbone, _empty_knn(config, backbone.num_features))
    else:
        net = models.load_backbone(config["architecture"], num_classes=n, check_inputs=False, pretrained=False)
    return Deployed(net, config["mean"], config["std"], _outputs(config["head"])).eval()


def deployable(net: nn.Module, *, architecture: str, head: str, classes: Sequence[str], size: int,
               mean: Sequence[float], std: Sequence[float]) -> tuple[Deployed, dict]:
    """(module, config) for `save`: `net` maps normalised images to logits (or, for a k-NN head,
    is a BackboneWithKNN)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    config = {"format": FORMAT, "architecture": architecture, "head": head, "classes": list(classes),
              "size": int(size), "mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    if head == "knn":
        config |= {"knn_k": net.head.k, "knn_examples": len(net.head.bank)}
    return Deployed(net, mean, std, _outputs(head)).eval(), config


def deployable_text(net: nn.Module, *, architecture: str, head: str, classes: Sequence[str], max_length: int,
                    text_column: str = "text") -> tuple[DeployedText, dict]:
    """(module, config) for `save`: `net` maps input_ids and attention_mask to logits (or, for a
    k-NN head, to probabilities): a textmodels.TextClassifier or TfidfLinear."""
    if architecture not in TEXT_ARCHITECTURES:
        raise ValueError(f"architecture must be one of {TEXT_ARCHITECTURES}, got {architecture!r}")
    config = {"format": FORMAT, "input": "texts", "architecture": architecture, "head": head,
              "classes": list(classes), "max_length": int(max_length), "text_column": text_column}
    if head == "knn":
        config |= {"knn_k": net.head.k, "knn_examples": len(net.head.bank)}
    if architecture == "tfidf":
        config["vocabulary"] = len(net.idf)
    return DeployedText(net, _outputs(head)).eval(), config


def save(model: Deployed | DeployedText, config: dict, folder: Path | str, *, onnx: bool = True,
         tokenizer=None) -> Path:
    """Write `model`, `config` (and model.onnx) into `folder`, replacing a model there, atomically.

    Everything goes into a temporary folder first, model.json last, and is moved into place at the
    end (owned.publish: only files an earlier save wrote are replaced); an error or Ctrl-C at any
    point leaves the folder as it was.
    tokenizer: a text model's (saved in text/, with the encoder's configuration).
    """
    if config.get("input") == "texts" and tokenizer is None:
        raise ValueError("a text model needs its tokenizer: save(..., tokenizer=tokenizer)")
    folder = Path(folder)
    if folder.exists() and not (folder / "model.json").is_file() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not a saved model: choose another folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / "model.safetensors")
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp / TEXT_FOLDER)
            if isinstance(model.net, textmodels.TextClassifier):
                model.net.encoder.config.save_pretrained(tmp / TEXT_FOLDER)
        if onnx:
            export_onnx(model, config, tmp / "model.onnx")
        (tmp / "model.json").write_text(json.dumps(config, indent=2), encoding="utf-8")  # last: its presence means complete
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def replace_folder(new: Path, target: Path) -> None:
    """Move the files of `new` into `target`, replacing only what tl_utils wrote there before
    (owned.publish): a learner's own files in `target` stay, and a failure restores it."""
    owned.publish(new, target, legacy=(target / "model.json").is_file())


def load(folder: Path | str) -> tuple[Deployed | DeployedText, dict]:
    """(model, config) from a folder written by `save`; a clear error for anything else."""
    folder = Path(folder)
    config_file, weights = folder / "model.json", folder / "model.safetensors"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder tl-advise wrote (it holds model.json)")
    if not config_file.is_file() or not weights.is_file():
        raise AdviseError(f"{folder} is not a complete saved model (model.json and model.safetensors are needed); "
                         "an interrupted tl-advise leaves none: run it again")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise AdviseError(f"{config_file} is damaged ({error}): run tl-advise again") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise AdviseError(f"{config_file} has format {found!r}; this version of tl_utils reads {FORMAT!r}")
    try:
        model = _build(config, folder)
        model.load_state_dict(load_file(weights))
    except (SafetensorError, RuntimeError, OSError, KeyError, ValueError) as error:  # ValueError: a config we cannot build
        raise AdviseError(f"{weights} cannot be read as this model's weights ({error}): run tl-advise again") from None
    return model, config


def load_tokenizer(folder: Path | str):
    """The tokenizer saved with a text model."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(folder) / TEXT_FOLDER, local_files_only=True)


def probabilities(model: Deployed | DeployedText, inputs: torch.Tensor | dict[str, torch.Tensor],
                  batch_size: int = 64) -> torch.Tensor:
    """Class probabilities (N, K) of uint8 images (or tokenised texts), on the CPU, in batches."""
    n = len(inputs["input_ids"]) if isinstance(inputs, dict) else len(inputs)
    if n == 0:
        return torch.zeros(0, 0)
    return predict(model, inputs, batch_size=batch_size, device="cpu")


def export_onnx(model: Deployed | DeployedText, config: dict, path: Path | str) -> Path:
    """Write the network to `path` in ONNX, for any batch size of uint8 (N, 3, S, S) images (of
    texts: any batch size and length of input_ids and attention_mask)."""
    if config.get("input") == "texts":
        batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
        example = (torch.full((2, 8), 100, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
        return onnxmodels.export(model, example, path, input_names=["input_ids", "attention_mask"],
                                 dynamic_shapes={"input_ids": {0: batch, 1: length},
                                                 "attention_mask": {0: batch, 1: length}})
    example = (torch.zeros(2, 3, config["size"], config["size"], dtype=torch.uint8),)
    return onnxmodels.export(model, example, path, input_names=["images"])


def onnx_feed(inputs: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """What an exported model's session takes: {"images": uint8 (N, 3, S, S)}, or the texts'
    {"input_ids", "attention_mask"}."""
    return ({k: inputs[k].numpy() for k in ("input_ids", "attention_mask")} if isinstance(inputs, dict)
            else {"images": inputs.numpy()})


def onnx_probabilities(model, inputs: torch.Tensor | dict[str, torch.Tensor]) -> np.ndarray:
    """Run an exported model with onnxruntime: (N, K) probabilities of uint8 images (N, 3, S, S),
    or of tokenised texts ({"input_ids", "attention_mask"}). model: the .onnx file's path, or an
    `onnxmodels.session` of it."""
    session = onnxmodels.session(model) if isinstance(model, (str, Path)) else model
    return session.run(None, onnx_feed(inputs))[0]
