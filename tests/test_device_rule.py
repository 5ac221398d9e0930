"""The device rule (tl_utils.runtime): helpers take a model to the work device and bring it back;
penalties follow their parameters. There is no GPU here, so a fake one stands in: every helper
believes the work device is CUDA, every move of a module is recorded, and tensors stay where they
are so the arithmetic still runs. The penalties are checked on PyTorch's "meta" device, a real
second device on which mixing with CPU tensors fails just as mixing with a GPU's would."""

import copy

import pytest
import torch
from torch import nn

from tl_utils import data, features, forgetting, freezing, models, runtime, schedules, train


@pytest.fixture
def fake_gpu(monkeypatch):
    """{module: the device type it was last sent to}, for every module moved during the test."""
    placed: dict[int, list[str]] = {}
    real_module_to, real_tensor_to = nn.Module.to, torch.Tensor.to

    def module_to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is None:
            return real_module_to(self, *args, **kwargs)
        for module in self.modules():
            placed.setdefault(id(module), []).append(torch.device(device).type)
        return self if torch.device(device).type == "cuda" else real_module_to(self, *args, **kwargs)

    def tensor_to(self, *args, **kwargs):
        device, dtype = torch._C._nn._parse_to(*args, **kwargs)[:2]
        if device is not None and torch.device(device).type == "cuda":
            return self if dtype is None else real_tensor_to(self, dtype)
        return real_tensor_to(self, *args, **kwargs)

    monkeypatch.setattr(runtime, "get_device", lambda prefer=None: torch.device("cuda"))
    monkeypatch.setattr(train, "autocast_dtype", lambda device: None)  # no CUDA kernels to autocast with
    monkeypatch.setattr(nn.Module, "to", module_to)
    monkeypatch.setattr(torch.Tensor, "to", tensor_to)
    return placed


def _where(placed, module) -> str:
    """Where a module is now: the last device it was sent to (the CPU if it never moved)."""
    return placed.get(id(module), ["cpu"])[-1]


def _went_to_the_gpu_and_back(placed, module) -> bool:
    return "cuda" in placed.get(id(module), []) and _where(placed, module) == "cpu"


@pytest.fixture(scope="module")
def digits():
    split = data.load("mnist-5k", "train", n_per_class=6, seed=0)
    return split.x.flatten(1).float() / 255, split.y


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))


def test_fit_predict_and_evaluate_bring_the_model_back(fake_gpu, digits):
    model = _net()
    train.fit(model, digits, val=digits, epochs=1, batch_size=16)
    assert _went_to_the_gpu_and_back(fake_gpu, model)
    assert _where(fake_gpu, model[0]) == "cpu"  # chapter 6 calls a part of the model directly
    train.predict(model, digits[0])
    train.evaluate(model, digits)
    assert _where(fake_gpu, model) == "cpu"


def test_frozen_stages_inside_an_augmentation_move_once_per_run(fake_gpu, digits):
    from tl_utils import augment

    x, y = digits
    bottom = nn.Sequential(nn.Linear(784, 32), nn.ReLU()).requires_grad_(False)
    through = augment.ThroughFrozen(lambda batch: batch, lambda batch: batch, bottom)
    train.fit(nn.Linear(32, 10), (x, y), augment=through, epochs=2, batch_size=8)
    assert fake_gpu[id(bottom)].count("cuda") == 1 and _where(fake_gpu, bottom) == "cpu"


def test_memory_footprint_after_fit_runs_where_the_model_is(fake_gpu, digits):
    model = _net()  # chapter 3: fit, then measure memory on CPU tensors
    train.fit(model, digits, epochs=1, batch_size=16)
    memory = train.memory_footprint(model, digits[0][:8])
    assert memory["activations"] > 0 and _where(fake_gpu, model) == "cpu"


def test_feature_extraction_brings_the_backbone_back(fake_gpu, tmp_path):
    backbone = models.load_backbone()
    prep = models.preprocessing(size=64)
    split = data.load("mnist-5k", "val", n_per_class=2, seed=0)
    features.extract(backbone, split, prep, cache=tmp_path)  # chapter 1: extract, then call the model
    features.extract_stages(backbone, split, prep, [3], cache=tmp_path)
    assert _went_to_the_gpu_and_back(fake_gpu, backbone)
    assert not backbone.training


def test_text_embeddings_bring_the_encoder_back(fake_gpu, tmp_path):
    tokenizer, encoder = models.load_text_encoder("minilm-l6")
    features.embed_texts(tokenizer, encoder, ["a fine film", "a dull film"], cache=tmp_path)
    assert _went_to_the_gpu_and_back(fake_gpu, encoder)


def test_the_range_test_and_the_fisher_bring_the_model_back(fake_gpu, digits):
    model = _net()
    schedules.lr_range_test(model, digits, steps=5, batch_size=8)
    assert _went_to_the_gpu_and_back(fake_gpu, model)
    fake_gpu.clear()
    forgetting.fisher_diagonal(model, digits[0][:4], digits[1][:4])
    assert _went_to_the_gpu_and_back(fake_gpu, model)


def _small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


@pytest.mark.parametrize("make", [
    lambda m: forgetting.l2_sp(m, 1.0),
    lambda m: forgetting.ewc(m, {n: torch.ones_like(p) for n, p in m.named_parameters()}, 1.0),
    lambda m: forgetting.lwf(copy.deepcopy(m), slice(0, 3)),
], ids=["l2_sp", "ewc", "lwf"])
def test_penalties_follow_the_device_of_their_parameters(make):
    model = _small()
    penalty = make(model)  # built before training moves the model (tests, chapter 7)
    moved = copy.deepcopy(model).to("meta")  # another device than the one the penalty was built on
    x = torch.randn(5, 4).to("meta")
    assert penalty(moved, x, moved(x)).device.type == "meta"


def test_the_device_rule_holds_for_a_split_model(fake_gpu):
    model = models.load_backbone(num_classes=4)
    top = freezing.split(model, 8).top
    x = torch.randn(6, 320, 2, 2)
    train.fit(top, (x, torch.arange(6) % 4), epochs=1, batch_size=3)
    assert _where(fake_gpu, top) == "cpu" and _where(fake_gpu, model.classifier) == "cpu"


def _bf16(native: bool):
    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or including_emulation  # a T4 supports bfloat16 only through emulation
    return is_bf16_supported


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, torch.float16)], ids=["A100", "T4"])
def test_bfloat16_only_where_native_float16_elsewhere(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", _bf16(native))
    assert runtime.autocast_dtype(torch.device("cuda")) == expected
    assert runtime.autocast_dtype(torch.device("cpu")) is None
    assert runtime.autocast_dtype(torch.device("mps")) is None


def test_float16_training_gets_a_gradient_scaler(monkeypatch):
    monkeypatch.setattr(train, "autocast_dtype", lambda device: torch.float16)
    _, scaler = train._mixed_precision(torch.device("cuda"))
    assert scaler is not None
    monkeypatch.setattr(train, "autocast_dtype", lambda device: torch.bfloat16)
    assert train._mixed_precision(torch.device("cuda"))[1] is None
