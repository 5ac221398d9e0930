"""Early stopping in tl_utils.train.fit: when it stops, which weights it keeps, and resume."""

import pytest
import torch
from interrupt import CRASH, zero_or_crash
from torch import nn

from tl_utils import train


@pytest.fixture(scope="module")
def few_digits(mnist_vectors):
    """Three real digits per class to train on (easy to overfit), ten per class to validate."""
    return mnist_vectors("train", 3), mnist_vectors("val", 10)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def _fit(model, digits, **kwargs):
    train_set, val_set = digits
    settings = dict(val=val_set, epochs=40, lr=1e-2, batch_size=10, seed=0, patience=3) | kwargs
    return train.fit(model, train_set, **settings)


def test_it_stops_after_patience_epochs_without_improvement_and_keeps_the_best(few_digits):
    model = _model()
    history = _fit(model, few_digits)
    losses = [row["val_loss"] for row in history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert history[-1]["stopped_early"] and len(history) < 40
    assert history[-1]["epoch"] - history[-1]["best_epoch"] == 3 == len(history) - 1 - best
    assert all(not row["stopped_early"] for row in history[:-1])
    assert train.evaluate(model, few_digits[1])["loss"] == pytest.approx(losses[best], abs=1e-6)


def test_monitoring_accuracy_keeps_the_most_accurate_epoch(few_digits):
    model = _model()
    history = _fit(model, few_digits, monitor="val_acc", patience=5)
    accs = [row["val_acc"] for row in history]
    assert history[-1]["best_epoch"] == 1 + accs.index(max(accs))  # the first epoch with the highest
    assert train.evaluate(model, few_digits[1])["acc"] == pytest.approx(max(accs))


def test_a_run_that_does_not_stop_still_ends_with_its_best_weights(few_digits):
    model = _model()
    history = _fit(model, few_digits, epochs=6, patience=100)
    assert len(history) == 6 and not history[-1]["stopped_early"]
    best = history[-1]["best_epoch"]
    assert train.evaluate(model, few_digits[1])["loss"] == pytest.approx(history[best - 1]["val_loss"], abs=1e-6)


def test_without_patience_the_history_is_as_before(few_digits):
    history = _fit(_model(), few_digits, epochs=3, patience=None)
    assert len(history) == 3 and "best_epoch" not in history[-1] and "stopped_early" not in history[-1]


def test_an_interrupted_run_resumes_to_the_same_stop_and_weights(few_digits, tmp_path):
    reference = _model()
    expected = _fit(reference, few_digits, penalty=zero_or_crash)
    stop = expected[-1]["epoch"]
    assert expected[-1]["best_epoch"] < stop - 1  # the crash below falls after the best epoch

    CRASH.update(at=3 * (stop - 1) + 1, calls=0)  # 30 examples / 10 = 3 steps per epoch: the last epoch
    with pytest.raises(KeyboardInterrupt):
        _fit(_model(), few_digits, penalty=zero_or_crash, checkpoint_dir=tmp_path)
    CRASH.update(at=None, calls=0)
    resumed = _model()
    history = _fit(resumed, few_digits, penalty=zero_or_crash, checkpoint_dir=tmp_path)
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in history] == \
           [{k: v for k, v in r.items() if k not in drop} for r in expected]
    for a, b in zip(resumed.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)  # the best epoch's weights, restored from the checkpoint
    assert CRASH["calls"] == 3  # only the last epoch ran again


def test_a_run_that_stopped_is_read_back_with_its_best_weights(few_digits, tmp_path):
    reference = _model()
    first = _fit(reference, few_digits, checkpoint_dir=tmp_path)
    again = _model()
    calls = []
    again.register_forward_hook(lambda *args: calls.append(1))
    assert _fit(again, few_digits, checkpoint_dir=tmp_path) == first
    assert calls == []  # not trained again
    for a, b in zip(again.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


def test_another_patience_is_another_run(few_digits, tmp_path):
    _fit(_model(), few_digits, epochs=4, checkpoint_dir=tmp_path)
    _fit(_model(), few_digits, epochs=4, patience=2, checkpoint_dir=tmp_path)
    assert len(list(tmp_path.glob("run-*.pt"))) == 2


@pytest.mark.parametrize("settings, message", [
    ({"patience": 0}, "positive number of epochs"),
    ({"patience": 2.5}, "positive number of epochs"),
    ({"monitor": "accuracy"}, "'val_loss' or 'val_acc'"),
    ({"val": None}, "pass val="),
    ({"patience": None, "monitor": "val_acc"}, "pass patience="),
])
def test_settings_that_cannot_work_are_explained(few_digits, settings, message):
    with pytest.raises(ValueError, match=message):
        _fit(_model(), few_digits, **settings)


def test_patience_running_out_on_the_last_epoch_is_not_an_early_stop(few_digits):
    full = _fit(_model(), few_digits, epochs=12, patience=None)
    losses = [row["val_loss"] for row in full]
    best = 1 + min(range(len(losses)), key=losses.__getitem__)
    epochs = best + 2  # two epochs without a lower loss, the second of them the last
    model = _model()
    history = _fit(model, few_digits, epochs=epochs, patience=2)
    assert len(history) == epochs and not history[-1]["stopped_early"] and history[-1]["best_epoch"] == best
    assert train.evaluate(model, few_digits[1])["loss"] == pytest.approx(losses[best - 1], abs=1e-6)


def test_a_nan_score_is_never_the_best(few_digits, monkeypatch):
    real = train.evaluate
    calls = []

    def first_nan(*args, **kwargs):
        scores = real(*args, **kwargs)
        calls.append(1)
        return scores | {"loss": float("nan")} if len(calls) == 1 else scores

    monkeypatch.setattr(train, "evaluate", first_nan)
    history = _fit(_model(), few_digits, epochs=4, patience=10)
    assert history[0]["best_epoch"] == 0 and history[-1]["best_epoch"] >= 2


def test_the_exercise_walks_the_history_as_fit_does(few_digits, monkeypatch):
    from tl_utils import exercises

    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    full = _fit(_model(), few_digits, epochs=15, patience=None)
    stopped = _fit(_model(), few_digits, epochs=15, patience=2)
    exercises.check("08.1", (stopped[-1]["epoch"], stopped[-1]["best_epoch"]), history=full)
