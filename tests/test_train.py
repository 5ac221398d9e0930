import pytest
import torch
from torch import nn

from tl_utils import data, train


@pytest.fixture(scope="module")
def digits():
    """A small slice of real digits, flattened to vectors in [0, 1]."""
    def prepare(split, n):
        d = data.load("mnist-5k", split, n_per_class=n, seed=0)
        return d.x.flatten(1).float() / 255, d.y
    return prepare("train", 30), prepare("val", 20)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))


def test_the_loss_falls_and_accuracy_beats_chance(digits):
    train_set, val_set = digits
    history = train.fit(_model(), train_set, val=val_set, epochs=5, lr=3e-3, batch_size=32)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    assert history[-1]["val_acc"] > 0.6  # ten classes: chance is 0.1
    assert {"lr", "seconds", "val_loss"} <= set(history[-1])


def test_the_same_seed_gives_the_same_numbers(digits):
    runs = [train.fit(_model(), digits[0], epochs=2, batch_size=32, seed=1) for _ in range(2)]
    assert [r["train_loss"] for r in runs[0]] == [r["train_loss"] for r in runs[1]]


def test_an_interrupted_run_resumes_exactly(digits, tmp_path):
    train_set, val_set = digits
    reference = _model()
    expected = train.fit(reference, train_set, val=val_set, epochs=4, batch_size=16, seed=2)

    calls = {"n": 0}

    def crash_in_epoch_3(model, inputs, logits):  # a penalty of zero that "crashes" mid-epoch 3
        calls["n"] += 1
        if calls["n"] == 2 * 19 + 5:  # 300 examples / 16 = 19 steps per epoch
            raise KeyboardInterrupt
        return torch.zeros(())

    model = _model()
    with pytest.raises(KeyboardInterrupt):
        train.fit(model, train_set, val=val_set, epochs=4, batch_size=16, seed=2,
                  penalty=crash_in_epoch_3, checkpoint_dir=tmp_path)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 2

    resumed = _model(seed=99)  # a fresh process would start from other weights
    history = train.fit(resumed, train_set, val=val_set, epochs=4, batch_size=16, seed=2,
                        penalty=lambda m, x, z: torch.zeros(()), checkpoint_dir=tmp_path)
    drop = ("seconds",)  # wall time differs, everything else must not
    assert [{k: v for k, v in r.items() if k not in drop} for r in history] == \
           [{k: v for k, v in r.items() if k not in drop} for r in expected]
    for a, b in zip(resumed.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


def test_a_finished_run_is_not_trained_again(digits, tmp_path):
    first = train.fit(_model(), digits[0], epochs=2, checkpoint_dir=tmp_path)
    again = train.fit(_model(seed=5), digits[0], epochs=2, checkpoint_dir=tmp_path)
    assert again == first


def test_a_checkpoint_from_another_run_is_refused(digits, tmp_path):
    train.fit(_model(), digits[0], epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different run"):
        train.fit(_model(), digits[0], epochs=1, lr=0.5, checkpoint_dir=tmp_path)


def test_a_non_finite_loss_names_the_step_and_rate(digits):
    x, y = digits[0]
    with pytest.raises(FloatingPointError, match=r"nan at epoch 1, step 1 \(learning rate 0.001\).*NaN/inf"):
        train.fit(_model(), (torch.full_like(x, float("nan")), y), epochs=1, batch_size=32)


def test_the_error_reports_the_rate_in_use(digits):
    x, y = digits[0]
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(FloatingPointError, match=r"\(learning rate 0.05\)"):
        train.fit(model, (x * float("inf"), y), epochs=1, optimizer=optimizer)


def test_labels_beyond_the_head_are_explained(digits):
    x, y = digits[0]
    with pytest.raises(ValueError, match="labels go up to 9 but the model has 5 outputs.*num_classes"):
        train.fit(nn.Linear(784, 5), (x, y), epochs=1)


def test_a_fully_frozen_model_is_refused(digits):
    model = _model()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        train.fit(model, digits[0])


def test_texts_must_be_tokenised_first():
    with pytest.raises(TypeError, match="tokenise them first"):
        train.fit(nn.Linear(2, 2), (["a text"], torch.tensor([0])))


def test_dict_inputs_and_model_outputs_with_logits(digits):
    x, y = digits[0]

    class HFStyle(nn.Module):  # takes keyword tensors, returns an object with .logits
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(784, 10)

        def forward(self, pixels):
            return type("Out", (), {"logits": self.net(pixels)})()

    history = train.fit(HFStyle(), ({"pixels": x}, y), val=({"pixels": x}, y), epochs=3, lr=1e-2)
    assert history[-1]["val_acc"] > 0.5
    assert train.predict(HFStyle(), {"pixels": x[:7]}).shape == (7, 10)


def test_penalty_is_added_to_the_loss(digits):
    plain = train.fit(_model(), digits[0], epochs=1, seed=0)
    pulled = train.fit(_model(), digits[0], epochs=1, seed=0, penalty=lambda m, x, z: torch.tensor(5.0))
    assert pulled[0]["train_loss"] == pytest.approx(plain[0]["train_loss"] + 5.0, abs=1e-4)


def test_evaluate_accepts_a_datasplit_with_a_transform():
    split = data.load("mnist-5k", "val", n_per_class=5)
    scores = train.evaluate(nn.Linear(784, 10), split, transform=lambda x: x.flatten(1).float() / 255)
    assert set(scores) == {"loss", "acc"} and 0 <= scores["acc"] <= 1


def test_progress_bars_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("TL_PROGRESS", "0")
    assert train.progress(range(3)).disable
    monkeypatch.setenv("TL_PROGRESS", "1")
    assert not train.progress(range(3)).disable
