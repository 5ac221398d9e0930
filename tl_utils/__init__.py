"""tl_utils: the shared package of *Transfer Learning, hands-on*.

One module per idea, each short enough to read beside the chapter that teaches it:

- `data`: load a dataset by name, fixed splits, sampling, your own folders and arrays (all chapters)
- `registry`: where each dataset is read from, and chapter 1's photos
- `sources`: finding packaged weight and data files and folders, checking their sha256
- `models`: pretrained backbones and text encoder, the small CNN baseline (chapters 1, 2, 5, 6)
- `preprocess`: how a backbone wants its input, and the check that refuses the wrong input (chapter 1)
- `freezing`: stages, splits, heads, freezing and BatchNorm modes (chapters 3-7)
- `train`: the one training loop, with checkpoints, exact resume and early stopping (every chapter)
- `augment`: data augmentation on the device, a new random draw per image (chapter 8)
- `lora`: LoRA from scratch: low-rank updates beside frozen weights, merged or saved per task (chapter 9)
- `keys`: fingerprints of what a cached result or a checkpoint depends on
- `features`: frozen features extracted once and cached on disk (chapter 2)
- `schedules`: learning-rate schedules, layer-wise rates, the LR range test (chapters 4, 5)
- `shifts`: distribution shifts for robustness tests (chapters 3, 6)
- `forgetting`: EWC, L2-SP, replay and LwF as pieces of the training loop (chapter 7)
- `exercises`: the self-checks at the end of each chapter
- `colab`: what a chapter's setup cell installs, and a folder that survives a disconnect
- `claims`: `check_claim`, its tests (`at_least`, `at_most`, `is_true`) and their margins, and `glue` (every chapter)
- `plots`: small figure helpers that return figures
- `distributed`: the same training on several processes under torchrun (appendix A)
- `runtime`: the device rule, `seed_everything`, `get_device`, progress bars, `checkpoint_path`

Chapter 10's tool, `tl-advise` (imported on use, not here):

- `imagefiles`: a learner's own image files: which to read, how to decode them, what was wrong
- `textfiles`: a learner's texts and labels from a CSV or JSON-lines file, columns guessed
- `copies`: exact and near copies among images and texts (the registry's splits and `tl-advise` use it)
- `checks`: the data checks on a folder or a text file, and leaving leaked copies out of evaluation
- `textmodels`: the text classifiers it trains (encoder + head, TF-IDF + linear) and tokenising
- `ladder`: k-NN, linear probe, top stages or layers, a baseline from scratch, the label curve; the choice
- `deploy`: a model with its preprocessing (or tokenizer) saved, loaded, run on files, exported to ONNX
- `report`: report.md and its figures
- `owned`: writing a results folder without touching the files in it that the course did not write
- `advise`: the `tl-advise` and `tl-predict` commands
"""

from . import (
    augment,
    claims,
    colab,
    data,
    distributed,
    exercises,
    features,
    forgetting,
    freezing,
    keys,
    lora,
    models,
    plots,
    preprocess,
    registry,
    runtime,
    schedules,
    shifts,
    sources,
    train,
)
from .claims import at_least, at_most, check_claim, glue, is_true
from .runtime import checkpoint_path, describe_environment, get_device, seed_everything

__all__ = [
    "check_claim", "at_least", "at_most", "is_true", "glue", "seed_everything", "get_device", "describe_environment", "checkpoint_path",
    "augment", "claims", "colab", "data", "distributed", "exercises", "features", "forgetting", "freezing", "keys", "lora", "models", "plots",
    "preprocess", "registry", "runtime", "schedules", "shifts", "sources", "train",
]
__version__ = "0.1.0"
