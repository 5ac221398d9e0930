import pytest
import torch
from torch import nn

import tl_utils as tl
from tl_utils import runtime, train


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


def test_fast_layout_reorders_image_batches_on_the_cpu_only():
    images = torch.rand(2, 3, 8, 8)
    fast = runtime.fast_layout(images)
    assert fast.is_contiguous(memory_format=torch.channels_last) and torch.equal(fast, images)
    for other in (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.rand(2, 8), torch.rand(3, 8, 8),
                  {"input_ids": torch.zeros(2, 4, dtype=torch.long)}):
        assert runtime.fast_layout(other) is other


def test_models_see_channels_last_batches_in_training_and_prediction():
    seen = []
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    model[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous(
        memory_format=torch.channels_last)))
    x, y = torch.rand(8, 3, 6, 6), torch.tensor([0, 1] * 4)
    train.fit(model, (x, y), epochs=1, batch_size=4, device="cpu")
    train.predict(model, x, device="cpu")
    assert seen and all(seen)
