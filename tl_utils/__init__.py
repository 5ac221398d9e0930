"""tl_utils: the shared package of *Transfer Learning, hands-on*.

One module per idea, each short enough to read beside the chapter that teaches it:

- `data`: the dataset registry, fixed splits, your own folders and arrays (all chapters)
- `sources`: finding packaged weight and data files and checking their sha256
- `models`: pretrained backbones, their preprocessing, freezing by stage (chapters 1-3)
- `train`: the one training loop, with checkpoints and exact resume (every chapter)
- `features`: frozen features extracted once and cached on disk (chapter 2)
- `claims`: `check_claim` and `glue`, how a chapter checks what it says (every chapter)
- `plots`: small figure helpers that return figures
- `runtime`: `seed_everything`, `get_device`, the environment summary
"""

from . import claims, data, features, models, plots, runtime, sources, train
from .claims import check_claim, glue
from .runtime import describe_environment, get_device, seed_everything

__all__ = [
    "check_claim", "glue", "seed_everything", "get_device", "describe_environment",
    "claims", "data", "features", "models", "plots", "runtime", "sources", "train",
]
__version__ = "0.1.0"
