"""Splitting, freezing schedules, stage caches and memory measurement (chapter 3)."""

import pytest
import torch

from tl_utils import data, features, freezing, models, train


@pytest.fixture(scope="module")
def small():
    return data.load("mnist-5k", "train", n_per_class=3, seed=0), models.preprocessing(size=64)


def test_split_reproduces_the_model_at_every_depth():
    model = models.load_backbone(num_classes=4)
    x = models.preprocessing(size=64)(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    for k in range(10):
        bottom, top = freezing.split(model, k)
        assert torch.allclose(top(bottom(x)), model(x), atol=1e-5)
    with pytest.raises(ValueError, match="0 <= k <= 9"):
        freezing.split(model, 10)


def test_stage_outputs_are_cached_in_one_pass(small, tmp_path):
    split, prep = small
    model = models.load_backbone()
    outs = features.extract_stages(model, split, prep, [3, 7], cache=tmp_path)
    assert outs[3].x.shape == (30, 24, 16, 16) and outs[7].x.shape == (30, 192, 2, 2)
    assert not outs[3].cached and len(list(tmp_path.iterdir())) == 2
    again = features.extract(model, split, prep, stage=7, cache=tmp_path)
    assert again.cached and torch.equal(again.x, outs[7].x)
    with torch.no_grad():
        # equal up to rounding: the cached pass runs in channels-last memory order (runtime.fast_layout)
        assert torch.allclose(freezing.split(model, 3)[0](prep(split.x[:2])), outs[3].x[:2], atol=1e-4)
    with pytest.raises(ValueError, match="between 1 and 9"):
        features.extract_stages(model, split, prep, [0])


def test_unfreezing_schedule_goes_top_down():
    assert freezing.unfreezing_schedule(9, 4, per_epoch=3) == [8, 5, 2, 0]
    assert freezing.unfreezing_schedule(9, 3, first=0) == [9, 8, 7]
    with pytest.raises(ValueError):
        freezing.unfreezing_schedule(9, 0)


def test_fit_follows_a_freezing_schedule(small):
    split, prep = small
    model = models.load_backbone(num_classes=10)
    stem_before = model.conv_stem.weight.detach().clone()
    top_before = model.conv_head.weight.detach().clone()
    train.fit(model, split, epochs=2, transform=prep, frozen_stages=[9, 8], lr=1e-3)
    assert torch.equal(model.conv_stem.weight, stem_before)  # never unfrozen
    assert not torch.equal(model.conv_head.weight, top_before)  # unfrozen in epoch 2
    with pytest.raises(ValueError, match="one per epoch"):
        train.fit(model, split, epochs=3, transform=prep, frozen_stages=[9, 8])


def test_memory_footprint_grows_with_what_trains(small):
    split, prep = small
    model = models.load_backbone(num_classes=10)
    full = train.memory_footprint(model, split.x[:8], transform=prep)
    freezing.freeze_stages(model, 9)
    head_only = train.memory_footprint(model, split.x[:8], transform=prep)
    assert full["parameters"] == head_only["parameters"] > 10  # ~13 MB of float32 weights either way
    assert full["optimizer"] == 2 * full["gradients"]
    assert full["activations"] > 20 * head_only["activations"] and full["gradients"] > 100 * head_only["gradients"]
    bigger = train.memory_footprint(models.load_backbone(num_classes=10), split.x[:16], transform=prep)
    assert bigger["activations"] == pytest.approx(2 * full["activations"], rel=0.1)


def test_memory_footprint_leaves_the_model_as_it_was(small):
    split, prep = small
    model = models.load_backbone(num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train.memory_footprint(model, split.x[:8], transform=prep)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm statistics too


def test_a_random_backbone_is_the_same_architecture():
    random = models.load_backbone(num_classes=3, pretrained=False)
    pretrained = models.load_backbone(num_classes=3)
    assert freezing.count_parameters(random) == freezing.count_parameters(pretrained)
    assert not torch.equal(random.conv_stem.weight, pretrained.conv_stem.weight)


def test_small_cnn_takes_any_size_from_28_pixels():
    cnn = models.small_cnn(5, in_channels=1, width=8)
    assert cnn(torch.zeros(2, 1, 28, 28)).shape == (2, 5) and cnn(torch.zeros(2, 1, 64, 64)).shape == (2, 5)
