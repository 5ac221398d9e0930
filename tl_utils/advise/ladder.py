"""The course's ladder of methods on one dataset of images or texts, within a time budget (chapter 10).

From cheapest to dearest: a k-nearest-neighbour vote on frozen features (chapter 2), a linear
probe (chapter 2), fine-tuning the top of the network (images: the top stages on cached stage
outputs, chapter 3; texts: the encoder's top layers, chapter 5), and a baseline trained from
scratch that a transfer must beat (images: chapter 6's small CNN; texts: TF-IDF with logistic
regression); plus the probe at fractions of the labels, a label-efficiency curve. Every choice (k, the method) is made on the
validation split; `Rung.model` is what `deploy` saves.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from .. import features, freezing, models, textmodels
from ..knn import BackboneWithKNN, KNNHead
from ..knn import accuracy as knn_accuracy
from ..runtime import seed_everything
from ..splits import DataSplit
from ..stats import paired_interval
from ..train import fit, predict

__all__ = ["Rung", "knn", "probe", "lite0_heads", "text_heads", "top_stages",
           "top_layers_model", "top_layers", "scratch", "tfidf", "label_curve", "choose", "TOP_K", "TOP_STAGES", "TOP_LAYERS", "KINDS",
           "TEXT_KINDS", "best_of", "close_to_best", "selection_lift"]

TOP_K = 7  # frozen stages of Lite0's 9 when fine-tuning the top (chapter 3's light fine-tuning)
TOP_STAGES = 2  # = 9 - TOP_K, the stages that train
TOP_LAYERS = 2  # of the text encoder's 6 layers, the ones that train
KNN_K = (1, 3, 5, 10)
KINDS = ("knn", "probe", "top", "scratch")  # the ladder for images, from the least training to the most
TEXT_KINDS = ("scratch", "knn", "probe", "top")  # for texts TF-IDF is the cheapest to train and to run: first


@dataclass
class Rung:
    """One method's result: validation accuracy, training seconds, and the whole model.

    `model` maps normalised images at the input size (or a text's input_ids and attention_mask)
    to logits (or, for "knn", to probabilities); `head` names which, for tl_utils.advise.deploy.
    """

    kind: str  # one of KINDS
    name: str
    val_acc: float
    seconds: float
    trainable: int
    model: nn.Module
    architecture: str
    head: str  # "linear" or "knn"
    val_pred: torch.Tensor  # the predicted class of every validation example, for paired comparisons
    note: str = ""
    tried: int = 1  # settings scored on the validation split, of which val_acc is the best (k values, epochs, C)


def _accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions == labels).float().mean())


def lite0_heads(backbone: nn.Module) -> Callable[[nn.Module], nn.Module]:
    """head -> the pretrained backbone with that head: a Linear as its classifier, a KNNHead on
    its pooled features (BackboneWithKNN). What `knn` and `probe` build for images."""
    def attach(head: nn.Module) -> nn.Module:
        if isinstance(head, KNNHead):
            return BackboneWithKNN(_lite0_like(backbone, 0), head)
        net = _lite0_like(backbone, head.out_features)
        net.classifier.load_state_dict(head.state_dict())
        return net
    return attach


def _lite0_like(backbone: nn.Module, num_classes: int) -> nn.Module:
    """A copy of the pretrained backbone, without the input check, with a new head of
    `num_classes` outputs (0: none)."""
    net = models.load_backbone(num_classes=num_classes, check_inputs=False, pretrained=False)
    own = {k: v for k, v in net.state_dict().items() if k.startswith("classifier")}
    net.load_state_dict({k: v for k, v in backbone.state_dict().items() if not k.startswith("classifier")} | own)
    return net.eval()


def knn(train: features.Features, val: features.Features, attach: Callable[[nn.Module], nn.Module],
        architecture: str) -> Rung:
    """k-NN on frozen features, k chosen on validation; no training at all. `attach` puts the
    head on the frozen network (`lite0_heads`, `text_heads`)."""
    start = time.perf_counter()
    ks = [k for k in KNN_K if k <= len(train)]
    scores = {k: knn_accuracy(train, val, k) for k in ks}
    best = max(ks, key=lambda k: (scores[k], -k))
    head = KNNHead(train.x, train.y, len(train.classes), best)
    with torch.no_grad():
        val_pred = head(val.x).argmax(1)
    return Rung("knn", f"k-NN on frozen features (k={best})", scores[best], time.perf_counter() - start, 0,
                attach(head), architecture, "knn", val_pred, f"k chosen on validation among {ks}", len(ks))


def probe(train: features.Features, val: features.Features, seed: int, attach: Callable[[nn.Module], nn.Module],
          architecture: str) -> Rung:
    """A linear head on frozen features (features.train_head's defaults)."""
    start = time.perf_counter()
    head, _ = features.train_head(train, seed=seed)
    val_pred = predict(head, val.x).argmax(1)
    return Rung("probe", "linear probe on frozen features", _accuracy(val_pred, val.y), time.perf_counter() - start,
                sum(p.numel() for p in head.parameters()), attach(head), architecture, "linear", val_pred)


def top_stages(backbone: nn.Module, bottoms: dict[str, features.Features], n_classes: int, epochs: int,
               seed: int) -> Rung:
    """Fine-tune the stages above TOP_K (and a new head) on their cached inputs; keep the best epoch."""
    start = time.perf_counter()
    seed_everything(seed)
    model = _lite0_like(backbone, n_classes)
    freezing.freeze_stages(model, TOP_K)
    top = freezing.split(model, TOP_K).top
    history = fit(top, bottoms["train"], val=bottoms["val"], epochs=epochs, lr=5e-4, weight_decay=1e-4,
                  batch_size=32, seed=seed, patience=max(2, epochs), monitor="val_acc")
    best = max(history, key=lambda r: r["val_acc"])
    val_pred = predict(top, bottoms["val"].x).argmax(1)  # the best epoch's weights, restored by fit
    return Rung("top", f"fine-tuned top {TOP_STAGES} stages", _accuracy(val_pred, bottoms["val"].y),
                time.perf_counter() - start, freezing.count_parameters(model, trainable_only=True),
                model.eval(), "efficientnet-lite0", "linear", val_pred, f"{len(history)} epochs, best epoch {best['epoch']}",
                len(history))


def scratch(train: DataSplit, val: DataSplit, transform: Callable, epochs: int, seed: int) -> Rung:
    """The small CNN of chapter 6, from random weights: what the data alone can teach."""
    start = time.perf_counter()
    seed_everything(seed)
    model = models.small_cnn(len(train.classes), in_channels=3)
    history = fit(model, train, val=val, epochs=epochs, lr=1e-3, weight_decay=1e-4, batch_size=32,
                  transform=transform, seed=seed, patience=max(3, epochs), monitor="val_acc")
    best = max(history, key=lambda r: r["val_acc"])
    val_pred = predict(model, val.x, transform=transform).argmax(1)
    return Rung("scratch", "small CNN from scratch", _accuracy(val_pred, val.y), time.perf_counter() - start,
                freezing.count_parameters(model), model.eval(), "small-cnn", "linear", val_pred,
                f"{len(history)} epochs, best epoch {best['epoch']}", len(history))


def text_heads(encoder: nn.Module) -> Callable[[nn.Module], nn.Module]:
    """head -> a copy of the pretrained text encoder with that head (textmodels.TextClassifier)."""
    return lambda head: textmodels.TextClassifier(copy.deepcopy(encoder), head).eval()


def top_layers_model(probe_rung: Rung) -> nn.Module:
    """A copy of the linear probe's model (encoder and trained head) with only the encoder's top
    TOP_LAYERS layers and the head trainable. Starting from the probe's head, not a random one,
    spares the encoder's features the pull of a random head's early gradients."""
    model = copy.deepcopy(probe_rung.model)
    for p in model.parameters():
        p.requires_grad = False
    for part in (model.encoder.encoder.layer[-TOP_LAYERS:], model.head):
        for p in part.parameters():
            p.requires_grad = True
    return model


def top_layers(model: nn.Module, tokens: dict[str, dict], labels: dict[str, torch.Tensor], epochs: int,
               seed: int) -> Rung:
    """Fine-tune `model` (from `top_layers_model`) on tokenised texts; keep the best epoch."""
    start = time.perf_counter()
    seed_everything(seed)
    history = fit(model, (tokens["train"], labels["train"]), val=(tokens["val"], labels["val"]), epochs=epochs,
                  lr=1e-4, weight_decay=1e-2, batch_size=32, seed=seed, patience=max(2, epochs), monitor="val_acc")
    best = max(history, key=lambda r: r["val_acc"])
    val_pred = predict(model, tokens["val"], batch_size=64).argmax(1)
    return Rung("top", f"fine-tuned top {TOP_LAYERS} encoder layers", _accuracy(val_pred, labels["val"]),
                time.perf_counter() - start, freezing.count_parameters(model, trainable_only=True), model.eval(),
                "minilm-l6", "linear", val_pred, f"{len(history)} epochs, best epoch {best['epoch']}", len(history))


def tfidf(tokens: dict[str, dict], labels: dict[str, torch.Tensor], n_classes: int, tokenizer, seed: int) -> Rung:
    """TF-IDF over word pieces + logistic regression: the from-scratch baseline for texts."""
    net, val_pred, info = textmodels.fit_tfidf(tokens["train"], labels["train"], tokens["val"], labels["val"],
                                              n_classes, len(tokenizer), tokenizer.all_special_ids, seed)
    return Rung("scratch", "TF-IDF + logistic regression from scratch", _accuracy(val_pred, labels["val"]),
                info["seconds"], info["parameters"], net, "tfidf", "linear", val_pred,
                f"C={info['C']:g}, chosen on validation among {list(textmodels.TFIDF_C)}", len(textmodels.TFIDF_C))


def label_curve(train: features.Features, val: features.Features, fractions: Sequence[float],
                seed: int) -> list[dict]:
    """The probe's validation accuracy on a fraction of each class's training images (at least one)."""
    rng = np.random.default_rng(seed)
    labels = train.y.numpy()
    order = {c: rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}  # nested subsets
    rows = []
    for fraction in fractions:
        index = np.sort(np.concatenate([members[:max(1, round(fraction * len(members)))]
                                        for members in order.values()]))
        head, _ = features.train_head(train.subset(index), seed=seed)
        val_pred = predict(head, val.x).argmax(1)
        rows.append({"fraction": fraction, "images": len(index), "val_acc": _accuracy(val_pred, val.y),
                     "val_pred": val_pred})
    return rows


def selection_lift(rung: Rung, n_val: int) -> float:
    """How much choosing the best of `rung.tried` settings on the same validation split can flatter
    its score: one standard error times the expected largest of that many standard normal draws
    (Blom's approximation of it). For independent settings of equal accuracy; settings that move
    together, as successive epochs do, flatter less, so this is an upper estimate. 0 for one setting."""
    if rung.tried <= 1:
        return 0.0
    expected_max = NormalDist().inv_cdf((rung.tried - 0.375) / (rung.tried + 0.25))
    return math.sqrt(rung.val_acc * (1 - rung.val_acc) / max(n_val, 1)) * expected_max


def best_of(rungs: Sequence[Rung]) -> Rung:
    """The method with the highest validation accuracy (the first of them in `rungs` on a tie)."""
    return max(rungs, key=lambda r: r.val_acc)


def close_to_best(best: Rung, rung: Rung, labels: torch.Tensor) -> bool:
    """True when the validation split cannot tell `rung` from `best`: the paired 95% interval of
    their difference includes zero."""
    difference, noise = paired_interval(best.val_pred, rung.val_pred, labels)
    return difference <= noise


def choose(rungs: Sequence[Rung], labels: torch.Tensor, order: Sequence[str] = KINDS) -> Rung:
    """The first method on the ladder (`order`: KINDS for images, TEXT_KINDS for texts, the
    cheapest first) that the validation split cannot tell from the best (`close_to_best`).
    A fixed order, not measured seconds, so a tie always goes the same way."""
    best = best_of(rungs)
    return min((r for r in rungs if close_to_best(best, r, labels)), key=lambda r: order.index(r.kind))
