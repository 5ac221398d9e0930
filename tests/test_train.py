import pytest
import torch
from interrupt import CRASH, zero_or_crash
from torch import nn

from tl_utils import data, runtime, train


@pytest.fixture(scope="module")
def digits(mnist_vectors):
    """A small slice of real digits: 30 per class to train on, 20 to validate."""
    return mnist_vectors("train", 30), mnist_vectors("val", 20)


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

    CRASH.update(at=2 * 19 + 5, calls=0)  # mid-epoch 3: 300 examples / 16 = 19 steps per epoch
    with pytest.raises(KeyboardInterrupt):
        train.fit(_model(), train_set, val=val_set, epochs=4, batch_size=16, seed=2,
                  penalty=zero_or_crash, checkpoint_dir=tmp_path)
    (saved,) = tmp_path.glob("run-*.pt")
    assert torch.load(saved, weights_only=True)["epoch"] == 2

    CRASH.update(at=None, calls=0)
    resumed = _model()  # a fresh process builds the same starting model
    history = train.fit(resumed, train_set, val=val_set, epochs=4, batch_size=16, seed=2,
                        penalty=zero_or_crash, checkpoint_dir=tmp_path)
    drop = ("seconds",)  # wall time differs, everything else must not
    assert [{k: v for k, v in r.items() if k not in drop} for r in history] == \
           [{k: v for k, v in r.items() if k not in drop} for r in expected]
    for a, b in zip(resumed.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)
    assert CRASH["calls"] == 2 * 19  # epochs 1-2 came from the checkpoint, only 3-4 ran again


def test_a_finished_run_is_not_trained_again(digits, tmp_path):
    first = train.fit(_model(), digits[0], epochs=2, checkpoint_dir=tmp_path)
    again = _model()
    calls = []
    again.register_forward_hook(lambda *args: calls.append(1))
    assert train.fit(again, digits[0], epochs=2, checkpoint_dir=tmp_path) == first
    assert calls == []  # read back, not trained


def _double(x):
    return 2 * x


def _smooth_loss(logits, labels):
    return nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)


def _l2(model, inputs, logits):
    return 1e-3 * sum((p**2).sum() for p in model.parameters())


@pytest.mark.parametrize("change", ["data", "val", "transform", "augment", "loss_fn", "penalty", "schedule",
                                    "starting weights", "trainable weights", "lr", "epochs", "bn_mode"])
def test_a_changed_setting_trains_afresh_and_says_what_changed(digits, tmp_path, change, capsys):
    (x, y), val = digits

    def run(change=None):
        model = _model(seed=1 if change == "starting weights" else 0)
        if change == "trainable weights":
            model[0].requires_grad_(False)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      lr=2e-3 if change == "lr" else 1e-3)
        factor = 0.5 if change == "schedule" else 1.0
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor)
        return train.fit(
            model, (x.flip(0) if change == "data" else x, y.flip(0) if change == "data" else y),
            val=(val[0][:50], val[1][:50]) if change == "val" else val, optimizer=optimizer, scheduler=scheduler,
            epochs=2 if change == "epochs" else 1, transform=_double if change == "transform" else None,
            augment=_double if change == "augment" else None, loss_fn=_smooth_loss if change == "loss_fn" else None,
            penalty=_l2 if change == "penalty" else None, bn_mode="eval" if change == "bn_mode" else "frozen",
            checkpoint_dir=tmp_path)

    first = run()
    capsys.readouterr()
    second = run(change)
    assert second != first and len(list(tmp_path.glob("run-*.pt"))) == 2
    assert "training afresh" in capsys.readouterr().out
    assert run(change) == second  # and that run, too, is read back when asked for again


def test_a_loss_module_with_other_settings_trains_afresh(digits, tmp_path):
    first = train.fit(_model(), digits[0], epochs=1, loss_fn=nn.CrossEntropyLoss(), checkpoint_dir=tmp_path)
    smoothed = train.fit(_model(), digits[0], epochs=1, loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1),
                         checkpoint_dir=tmp_path)
    assert smoothed != first and len(list(tmp_path.glob("run-*.pt"))) == 2


def test_the_message_names_the_setting_that_changed(digits, tmp_path, capsys):
    train.fit(_model(), digits[0], epochs=1, checkpoint_dir=tmp_path)
    train.fit(_model(), digits[0], epochs=1, transform=_double, checkpoint_dir=tmp_path)
    out = capsys.readouterr().out
    assert "(transform)" in out and str(tmp_path) in out


def test_an_empty_validation_split_is_explained(digits):
    x, y = digits[0]
    with pytest.raises(ValueError, match="validation split is empty"):
        train.fit(_model(), (x, y), val=(x[:0], y[:0]))
    with pytest.raises(ValueError, match="no examples to predict"):
        train.evaluate(_model(), (x[:0], y[:0]))


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
    assert runtime.progress(range(3)).disable
    monkeypatch.setenv("TL_PROGRESS", "1")
    assert not runtime.progress(range(3)).disable
