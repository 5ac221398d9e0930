"""The course installs the way a learner installs it: `pip install .` into a fresh environment
(no make, no jupyter-book), then both tools run end to end on a folder of images and a CSV."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tl_utils import colab, data, folders

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def _online_env() -> dict:
    """This suite's environment without its offline guard (tests/offline): pip alone may reach the registry."""
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).name != "offline"]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.mark.slow
def test_pip_install_dot_then_both_tools_run_end_to_end(tmp_path):
    reach = subprocess.run([sys.executable, "-c", "import urllib.request; urllib.request.urlopen("
                            "'https://pypi.org/simple/pip/', timeout=10)"], env=_online_env(), capture_output=True)
    if reach.returncode:  # a learner's install needs the registry (pip's cache makes it quick): so does this test
        pytest.skip("the package registry is unreachable, so pip cannot install as a learner would")
    venv = tmp_path / "learner"
    _run(sys.executable, "-m", "venv", venv)
    python, quiet = venv / "bin" / "python", ["--quiet", "--progress-bar", "off", "--disable-pip-version-check"]
    # The lock as constraints keeps the versions (and pip's cache) the course was run with.
    source = tmp_path / "course"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "tl_utils", source / "tl_utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    online = _online_env()
    _run(python, "-m", "pip", "install", *quiet, "-c", ROOT / "requirements-lock.txt", source, env=online)
    _run(python, "-m", "pip", "install", *quiet, "--no-deps", *colab.DATA_PACKAGES, env=online)  # as the Colab cell
    # from here on offline again: the tools must run without the network
    assert subprocess.run([python, "-c", "import jupyter_book"], capture_output=True).returncode != 0  # nothing extra

    images = folders.write_folder([data.select_classes(data.load("clipart", s), [0, 1]) for s in data.SPLITS],
                               tmp_path / "my drawings", by_split=True)
    rows = []
    for split, n in (("train", 40), ("val", 20), ("test", 20)):
        d = data.load("rotten-tomatoes", split)
        rows += [(d.x[i], d.classes[int(d.y[i])], split) for i in np.random.default_rng(0).permutation(len(d))[:n]]
    texts = tmp_path / "avis.csv"
    with texts.open("w", newline="", encoding="utf-8-sig") as f:  # as a spreadsheet saves "CSV UTF-8"
        csv.writer(f, delimiter=";").writerows([("review", "verdict", "split"), *rows])

    env = {**os.environ, "TL_CACHE_DIR": str(tmp_path / "cache")}
    bin_ = venv / "bin"
    for source, out in ((images, tmp_path / "image advice"), (texts, tmp_path / "text advice")):
        done = _run(bin_ / "tl-advise", source, "--out", out, "--top-epochs", "0", "--scratch-epochs", "0", "-q",
                    env=env, cwd=tmp_path)
        assert "validation" in done.stdout and (out / "report.md").is_file()
    drawings = sorted((images / "test").rglob("*.png"))[:2]
    done = _run(bin_ / "tl-predict", tmp_path / "image advice" / "model", *drawings, env=env)
    assert [line.split("\t")[0] for line in done.stdout.splitlines()] == [str(p) for p in drawings]
    (tmp_path / "new.txt").write_text("A moving film.\nA dull, lifeless mess.\n", encoding="utf-8")
    done = _run(bin_ / "tl-predict", tmp_path / "text advice" / "model", tmp_path / "new.txt", env=env)
    assert len(done.stdout.splitlines()) == 2


def test_make_lab_passes_allow_root_only_as_root():
    done = _run("make", "-n", "lab", cwd=ROOT)
    command = [line for line in done.stdout.splitlines() if line.startswith(".venv/bin/jupyter lab")]
    assert len(command) == 1 and ("--allow-root" in command[0]) == (os.geteuid() == 0)
