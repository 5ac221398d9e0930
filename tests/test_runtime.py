import pytest
import torch

import tl_utils as tl
from tl_utils import runtime


def test_same_seed_same_numbers():
    tl.seed_everything(3)
    a = torch.randn(5)
    tl.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    tl.seed_everything(4)
    assert not torch.equal(a, torch.randn(5))


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_seed_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        tl.seed_everything(bad)


def test_device_is_chosen_and_can_be_forced(monkeypatch):
    monkeypatch.delenv("TL_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert tl.get_device().type == expected
    monkeypatch.setenv("TL_DEVICE", "cpu")
    assert tl.get_device().type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_missing_cuda_says_what_to_do():
    with pytest.raises(RuntimeError, match="CUDA is not available.*'cpu'"):
        tl.get_device("cuda")


def test_environment_summary_names_versions():
    summary = tl.describe_environment()
    assert {"python", "torch", "timm", "transformers", "device", "hardware"} <= set(summary)
    assert summary["torch"] == torch.__version__


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path))
    assert runtime.cache_dir() == tmp_path
    monkeypatch.delenv("TL_CACHE_DIR")
    assert runtime.cache_dir().name == "tl-course"


def test_the_suite_never_touches_the_learners_cache():
    from pathlib import Path

    learner = Path.home() / ".cache" / "tl-course"
    assert runtime.cache_dir() != learner and learner not in runtime.cache_dir().parents
    assert runtime.cache_dir().name == "test-cache"
