"""tl_utils: the shared package of *Transfer Learning, hands-on*.

One module per idea, each short enough to read beside the chapter that teaches it:

- `data`: the dataset registry, fixed splits, your own folders and arrays (all chapters)
- `sources`: finding packaged weight and data files and checking their sha256
- `models`: pretrained backbones, their preprocessing, freezing by stage (chapters 1-3)
- `train`: the one training loop, with checkpoints and exact resume (every chapter)
- `features`: frozen features extracted once and cached on disk (chapter 2)
- `schedules`: learning-rate schedules, layer-wise rates, the LR range test (chapters 4, 5)
- `shifts`: distribution shifts for robustness tests (chapters 3, 6)
- `forgetting`: EWC, L2-SP, replay and LwF as pieces of the training loop (chapter 7)
- `exercises`: the self-checks at the end of each chapter
- `colab`: what a chapter's setup cell installs, and a folder that survives a disconnect
- `claims`: `check_claim` and `glue`, how a chapter checks what it says (every chapter)
- `plots`: small figure helpers that return figures
- `runtime`: `seed_everything`, `get_device`, `checkpoint_path`, the environment summary
"""

from . import (
    claims,
    colab,
    data,
    exercises,
    features,
    forgetting,
    models,
    plots,
    runtime,
    schedules,
    shifts,
    sources,
    train,
)
from .claims import check_claim, glue
from .runtime import checkpoint_path, describe_environment, get_device, seed_everything

__all__ = [
    "check_claim", "glue", "seed_everything", "get_device", "describe_environment", "checkpoint_path",
    "claims", "colab", "data", "exercises", "features", "forgetting", "models", "plots", "runtime",
    "schedules", "shifts", "sources", "train",
]
__version__ = "0.1.0"
