"""Text classifiers on a tokenizer's output: chapter 9 adapts one, `tl-advise` trains and saves them (chapter 10).

All take what a BERT tokenizer gives, `input_ids` and `attention_mask` (N, T), so one tokenizer
file serves every saved text model and ONNX runtimes need no Python tokenizer code but its
tokenizer.json:

- `mean_pooled`: a sentence's embedding, the mean of its tokens' (`features.embed_texts` caches them);
- `TextClassifier`: the encoder, `mean_pooled`, then a head (a linear layer, or `knn.KNNHead`);
- `TfidfLinear`: TF-IDF over the tokenizer's word pieces and a linear layer, the from-scratch
  baseline (nothing pretrained but the vocabulary), trained by scikit-learn (`fit_tfidf`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["mean_pooled", "TextClassifier", "TfidfLinear", "tokenise", "too_long", "fit_tfidf", "MAX_LENGTH", "TFIDF_C"]

MAX_LENGTH = 128  # tokens per text; longer texts are cut (the findings count them)
TFIDF_C = (1.0, 10.0, 100.0)  # the logistic regression's inverse regularisation, chosen on validation


def mean_pooled(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, D): the mean of the hidden states (B, T, D) over the real tokens, L2-normalised."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    return nn.functional.normalize(mean, dim=-1)


class TextClassifier(nn.Module):
    """input_ids, attention_mask -> head(mean-pooled, L2-normalised last hidden state)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(mean_pooled(hidden, attention_mask))


class TfidfLinear(nn.Module):
    """input_ids, attention_mask -> logits of a linear layer on the L2-normalised TF-IDF vector.

    `idf` is 0 for word pieces never seen in training (and for [CLS], [SEP] and padding), so
    they count for nothing, as in scikit-learn's TfidfVectorizer.
    """

    def __init__(self, idf: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.register_buffer("idf", idf.float())
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(input_ids.shape[0], self.idf.shape[0], device=input_ids.device)
        counts = counts.scatter_add(1, input_ids, attention_mask.float())
        return self.linear(nn.functional.normalize(counts * self.idf, dim=1))


def tokenise(tokenizer, texts: Sequence[str], max_length: int = MAX_LENGTH) -> dict[str, torch.Tensor]:
    """{"input_ids", "attention_mask"} of `texts`, padded to the longest, cut at `max_length`."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def too_long(tokenizer, texts: Sequence[str], max_length: int = MAX_LENGTH) -> int:
    """How many texts have more than `max_length` tokens (and are cut)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lengths = [len(ids) for ids in tokenizer(list(texts), verbose=False)["input_ids"]]
    return sum(n > max_length for n in lengths)


def _pieces(tokens: dict[str, torch.Tensor], special: set[int]) -> list[list[int]]:
    return [[t for t, m in zip(ids.tolist(), mask.tolist()) if m and t not in special]
            for ids, mask in zip(tokens["input_ids"], tokens["attention_mask"])]


def fit_tfidf(train: dict[str, torch.Tensor], train_y: torch.Tensor, val: dict[str, torch.Tensor],
              val_y: torch.Tensor, n_classes: int, vocabulary: int, special: Sequence[int],
              seed: int = 0) -> tuple[TfidfLinear, torch.Tensor, dict]:
    """TF-IDF + logistic regression on the word pieces (C chosen on validation), as a TfidfLinear.

    Returns (model, its validation predictions, {"C", "seconds", "parameters": the trained weights}).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    absent = sorted(set(range(n_classes)) - set(train_y.tolist()))
    if absent:
        raise ValueError(f"class(es) {absent} have no training text: the model could not learn them")
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer=lambda pieces: pieces)  # the documents are lists of word-piece ids
    x_train = vectorizer.fit_transform(_pieces(train, set(special)))
    x_val = vectorizer.transform(_pieces(val, set(special)))
    fitted = {c: LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x_train, train_y.numpy())
              for c in TFIDF_C}
    scores = {c: (m.predict(x_val) == val_y.numpy()).mean() for c, m in fitted.items()}
    c = max(TFIDF_C, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    model = fitted[c]
    columns = torch.tensor([int(piece) for piece in vectorizer.get_feature_names_out()])  # column -> word piece
    idf = torch.zeros(vocabulary)
    idf[columns] = torch.from_numpy(vectorizer.idf_).float()
    coef = torch.from_numpy(model.coef_).float()
    bias = torch.from_numpy(model.intercept_).float()
    if len(model.classes_) == 2:  # one score, the second class's log-odds: as two logits, 0 and it
        coef, bias = torch.cat([torch.zeros_like(coef), coef]), torch.cat([torch.zeros(1), bias])
    weight = torch.zeros(n_classes, vocabulary)
    weight[:, columns] = coef
    net = TfidfLinear(idf, weight, bias).eval()
    with torch.no_grad():
        val_pred = net(**val).argmax(1)
    return net, val_pred, {"C": c, "seconds": time.perf_counter() - start,
                           "parameters": int(model.coef_.size + model.intercept_.size)}

