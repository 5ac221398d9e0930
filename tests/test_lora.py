"""LoRA from scratch (tl_utils.lora), checked against the `peft` library and through files."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from tl_utils import lora, models


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _randomise(model: nn.Module, seed: int) -> None:
    """Give every trainable parameter random values, as training would (B starts at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)


def test_a_new_lora_layer_computes_exactly_what_the_base_did():
    torch.manual_seed(0)
    base = nn.Linear(16, 12)
    x = torch.randn(5, 16)
    expected = base(x)
    layer = lora.LoRALayer(base, r=4, alpha=8)
    assert torch.equal(layer(x), expected)
    assert layer.scaling == 2.0
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    assert _trainable(layer) == 4 * (16 + 12)


@pytest.mark.parametrize("make", [lambda: nn.Linear(16, 12), lambda: nn.Conv2d(16, 12, 1)], ids=["linear", "pointwise"])
def test_same_outputs_and_parameter_count_as_peft_on_the_same_weights(make):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = make()
    x = torch.randn(3, 16) if isinstance(base, nn.Linear) else torch.randn(3, 16, 5, 5)
    ours = nn.Sequential(lora.LoRALayer(copy.deepcopy(base), r=4, alpha=8))
    theirs = get_peft_model(nn.Sequential(copy.deepcopy(base)), LoraConfig(r=4, lora_alpha=8, target_modules=["0"]))
    _randomise(ours, seed=1)
    peft_layer = theirs.base_model.model[0]
    with torch.no_grad():
        peft_layer.lora_A["default"].weight.copy_(ours[0].lora_A.reshape(peft_layer.lora_A["default"].weight.shape))
        peft_layer.lora_B["default"].weight.copy_(ours[0].lora_B.reshape(peft_layer.lora_B["default"].weight.shape))
    assert _trainable(ours) == _trainable(theirs) == 4 * (16 + 12)
    assert ours[0].scaling == peft_layer.scaling["default"]
    torch.testing.assert_close(ours(x), theirs(x))
    assert not torch.allclose(ours(x), base(x))  # the update is not zero: the comparison means something


def test_merging_keeps_the_outputs_and_leaves_plain_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    names = lora.add_lora(model, ["0", "2"], r=2)
    assert names == ["0", "2"]
    _randomise(model, seed=2)
    x = torch.randn(4, 8)
    before = model(x)
    lora.merge(model)
    assert not lora.lora_layers(model)
    assert all(type(m) in (nn.Linear, nn.ReLU) for m in model)
    torch.testing.assert_close(model(x), before)


def test_a_pointwise_convolution_merges_too():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(6, 10, 1), nn.ReLU())
    lora.add_lora(model, ["0"], r=3)
    _randomise(model, seed=3)
    x = torch.randn(2, 6, 4, 4)
    before = model(x)
    torch.testing.assert_close(lora.merge(model)(x), before)


def test_only_the_updates_and_the_named_modules_train():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    lora.add_lora(model, ["0"], r=2, train=["2"])
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        "0.lora_A", "0.lora_B", "2.bias", "2.weight"]
    model(torch.randn(4, 8)).sum().backward()
    assert model[0].base.weight.grad is None and model[0].lora_B.grad is not None


def test_bad_settings_say_what_to_change():
    with pytest.raises(ValueError, match="positive whole number"):
        lora.LoRALayer(nn.Linear(4, 4), r=0)
    with pytest.raises(ValueError, match="choose r <= 3"):
        lora.LoRALayer(nn.Linear(4, 3), r=4)
    with pytest.raises(TypeError, match="pointwise"):
        lora.LoRALayer(nn.Conv2d(4, 4, 3), r=1)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with pytest.raises(ValueError, match=r"end with: \['0'\]"):
        lora.add_lora(model, ["query"], r=1)
    with pytest.raises(TypeError, match="not a string"):
        lora.add_lora(model, "0", r=1)
    with pytest.raises(ValueError, match="no module is named"):
        lora.add_lora(model, ["0"], r=1, train=["classifier"])
    assert not lora.lora_layers(model)  # a refused call leaves the model as it was


def _tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))


def test_adapters_round_trip_through_files_and_switch_on_one_base(tmp_path):
    x = torch.randn(5, 6)
    outputs, files = {}, {}
    for task, seed in (("reviews", 10), ("tweets", 11)):
        model = _tiny(0)
        lora.add_lora(model, ["0"], r=2, alpha=4, train=["2"])
        _randomise(model, seed)
        outputs[task] = model(x)
        files[task] = lora.save_adapter(model, tmp_path / f"{task}.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.safetensors", "tweets.safetensors"]  # no temporary left
    assert set(lora.read_settings(files["tweets"])["layers"]) == {"0"}

    base = _tiny(0)  # a fresh base: the file says how to wrap it
    lora.load_adapter(base, files["reviews"])
    torch.testing.assert_close(base(x), outputs["reviews"])
    lora.load_adapter(base, files["tweets"])  # the same base, the other task
    torch.testing.assert_close(base(x), outputs["tweets"])
    lora.load_adapter(base, files["reviews"])
    torch.testing.assert_close(base(x), outputs["reviews"])


def test_an_adapter_that_does_not_fit_is_refused(tmp_path):
    model = _tiny(0)
    lora.add_lora(model, ["0"], r=2)
    saved = lora.save_adapter(model, tmp_path / "a.safetensors")
    other = _tiny(0)
    lora.add_lora(other, ["0"], r=3)
    with pytest.raises(ValueError, match="wrapped otherwise"):
        lora.load_adapter(other, saved)
    with pytest.raises(FileNotFoundError, match="save_adapter"):
        lora.load_adapter(_tiny(0), tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="no LoRA layers"):
        lora.save_adapter(_tiny(0), tmp_path / "b.safetensors")
    wider = nn.Sequential(nn.Linear(6, 7), nn.Tanh(), nn.Linear(7, 2))
    with pytest.raises(ValueError, match="another base model"):
        lora.load_adapter(wider, saved)
    assert not lora.lora_layers(wider) and all(p.requires_grad for p in wider.parameters())  # left as it was
    with pytest.raises(ValueError, match="trained on another base"):
        lora.load_adapter(_tiny(1), saved)  # the same shapes, other frozen weights


def test_an_adapter_keeps_the_statistics_of_what_trains_in_full(tmp_path):
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Linear(6, 2))

    model = net()
    lora.add_lora(model, ["0"], r=2, train=["1", "2"])
    model.train()
    model(torch.randn(16, 6) * 3 + 1)  # moves the running statistics
    model.eval()
    x = torch.randn(4, 6)
    saved = lora.save_adapter(model, tmp_path / "bn.safetensors")
    snapshot = lora.adapter_state(model)
    with torch.no_grad():
        model[2].weight.add_(1.0)
    assert not torch.equal(snapshot["2.weight"], model[2].weight)  # a copy, not the live tensor
    with torch.no_grad():
        model[2].weight.sub_(1.0)
    fresh = net().eval()
    lora.load_adapter(fresh, saved)
    torch.testing.assert_close(fresh(x), model(x))


def test_a_parameter_on_the_model_itself_is_refused():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer, self.scale = nn.Linear(6, 2), nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.layer(x) * self.scale

    model = Scaled()
    lora.add_lora(model, ["layer"], r=1)
    model.scale.requires_grad_(True)
    with pytest.raises(ValueError, match="put it in a module"):
        lora.adapter_state(model)


def test_minilm_gets_the_same_trainable_parameters_as_with_peft():
    from peft import LoraConfig, get_peft_model

    _, ours = models.load_text_encoder("minilm-l6", num_labels=2)
    names = lora.add_lora(ours, ["query", "value"], r=4, train=["classifier"])
    assert len(names) == 12  # six layers, query and value in each
    _, theirs = models.load_text_encoder("minilm-l6", num_labels=2)
    theirs = get_peft_model(theirs, LoraConfig(r=4, lora_alpha=4, target_modules=["query", "value"],
                                               modules_to_save=["classifier"]))
    assert _trainable(ours) == _trainable(theirs) == 12 * 4 * (384 + 384) + 384 * 2 + 2
