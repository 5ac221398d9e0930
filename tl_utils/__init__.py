"""tl_utils: the shared package of *Transfer Learning, hands-on*, in two parts.

**The course's library** (this folder): the building blocks the chapters import, one job per
module, each importing only modules listed above it:

- `lazy`: the package's modules imported on first use (PEP 562)
- `runtime`: the device rule, `seed_everything`, `get_device`, progress bars, `checkpoint_path`
- `files`: the one atomic write (whole or nothing) that every cache, checkpoint and adapter uses
- `keys`: fingerprints of what a cached result or a checkpoint depends on
- `claims`: `check_claim`, its tests (`at_least`, `at_most`, `is_true`) and their margins, and `glue`
- `stats`: 95% intervals of an accuracy, alone or paired (chapters 8, 10)
- `drift`: the MMD between incoming inputs and a reference, and its values on batches without drift (responsible page, chapter 12)
- `plots`: small figure helpers that return figures
- `colab`: what a chapter's setup cell installs, and a folder that survives a disconnect
- `sources`: finding packaged weight and data files and folders, checking their sha256
- `preprocess`: how a backbone wants its input, and the check that refuses the wrong input (chapter 1)
- `models`: pretrained backbones and text encoder, the small CNN baseline (chapters 1, 2, 5, 6)
- `freezing`: stages, splits, heads, freezing and BatchNorm modes (chapters 3-7)
- `knn`: the k-nearest-neighbour vote, a classifier with no training (chapters 2, 10)
- `textmodels`: text classifiers on a tokenizer's output, mean pooling, TF-IDF (chapters 5, 9, 10)
- `imagefiles`: image files: which to read, how to decode them, what was wrong (the registry, chapter 10)
- `copies`: exact and near copies among images and texts (the registry's splits, chapter 10)
- `splits`: what a split is (`DataSplit`), and which examples go to train, val and test
- `folders`: a learner's own folder of images, read with its splits or written from splits
- `registry`: where each dataset is read from, and chapter 1's photos
- `data`: load a dataset by name or a folder, sampling n per class, arrays as a split (all chapters)
- `distributed`: the same training on several processes under torchrun (appendix A)
- `checkpoints`: a training run saved after every epoch and resumed exactly (`train.fit`)
- `train`: the one training loop, with checkpoints, exact resume and early stopping (every chapter)
- `features`: frozen features extracted once and cached on disk (chapter 2)
- `augment`: data augmentation on the device, a new random draw per image (chapter 8)
- `schedules`: learning-rate schedules, layer-wise rates, the LR range test (chapters 4, 5)
- `shifts`: distribution shifts for robustness tests (chapters 3, 6)
- `corruptions`: ImageNet-C's blur, noise, contrast, brightness, JPEG and pixelation at five severities (chapter 12)
- `testtime`: adapting to unlabelled target images: BatchNorm re-estimation and TENT, undoable (chapter 12)
- `priors`: label shift: new class priors estimated without labels (EM, BBSE), predictions corrected (chapter 12)
- `forgetting`: EWC, L2-SP, replay and LwF as pieces of the training loop (chapter 7)
- `lora`: LoRA from scratch: low-rank updates beside frozen weights, merged or saved per task (chapter 9)
- `distill`: knowledge distillation: a teacher's softened outputs as a student's targets (chapter 11)
- `onnxmodels`: ONNX files: export, run with ONNX Runtime, quantize to int8, time (chapters 10, 11)
- `exercises`: the self-checks at the end of each chapter

**The tool** (`tl_utils.advise`): `tl-advise` and `tl-predict`, the application chapter 10
teaches, built on the library and never imported by it; its modules are listed in its docstring.

Modules are imported on first use (PEP 562): `import tl_utils` costs nothing, and
`tl_utils.models` loads timm only when a chapter touches it.
"""

from __future__ import annotations

from . import lazy

__version__ = "0.1.0"

_MODULES = ("advise", "augment", "checkpoints", "claims", "colab", "copies", "corruptions", "data", "distill", "distributed", "drift", "exercises", "features", "files", "folders",
            "forgetting", "freezing", "imagefiles", "keys", "knn", "lazy", "lora", "models", "onnxmodels", "plots", "preprocess", "priors", "registry",
            "runtime", "schedules", "shifts", "sources", "splits", "stats", "testtime", "textmodels", "train")
_NAMES = {"check_claim": "claims", "at_least": "claims", "at_most": "claims", "is_true": "claims", "glue": "claims",
          "seed_everything": "runtime", "get_device": "runtime", "describe_environment": "runtime",
          "checkpoint_path": "runtime"}

__all__ = [*_NAMES, *_MODULES]

__getattr__, __dir__ = lazy.attributes(__name__, _MODULES, _NAMES)
