"""k-NN and subsets of features, the curve plot, and the exercise self-checks."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from tl_utils import data, exercises, features, knn, plots


def _features(x, y, n_classes):
    return features.Features(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y), [str(i) for i in range(n_classes)],
                             Path("unused"), False, 0.0)


def test_knn_votes_by_cosine_similarity():
    train = _features([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], [0, 0, 1, 1], 2)
    test = _features([[5, 0.2], [0.1, 3]], [0, 1], 2)  # lengths differ, directions match
    assert knn.accuracy(train, test, k=3) == 1.0
    assert knn.accuracy(train, dataclasses.replace(test, y=torch.tensor([1, 0])), k=1) == 0.0


def test_knn_works_on_raw_images_too():
    split = data.load("mnist-5k", "val", n_per_class=5)
    assert 0.3 < knn.accuracy(split, split, k=1) <= 1.0  # each image is its own neighbour


def test_subsets_of_features_and_per_class_samples():
    f = _features(torch.arange(12).view(6, 2), [0, 0, 0, 1, 1, 1], 2)
    index = data.sample_per_class(f.y, 2, seed=0)
    assert len(index) == 4 and f.subset(index).y.tolist().count(1) == 2
    assert data.sample_per_class(f.y, 2, seed=0).tolist() == index.tolist()


def test_plot_curves_shows_mean_and_range():
    table = pd.DataFrame({"k": [1, 1, 10, 10] * 2, "acc": [0.1, 0.3, 0.5, 0.7, 0.2, 0.2, 0.4, 0.4],
                          "method": ["a"] * 4 + ["b"] * 4})
    fig = plots.plot_curves(table, "k", "acc", "method", chance=0.1)
    ax = fig.axes[0]
    assert ax.lines[0].get_ydata().tolist() == [0.2, 0.6] and ax.get_xscale() == "log"


def test_plot_curves_without_lines_draws_separate_points_with_their_range():
    table = pd.DataFrame({"k": [4, 4, 10, 10] * 2, "acc": [0.1, 0.3, 0.5, 0.7, 0.2, 0.2, 0.4, 0.4],
                          "method": ["a"] * 4 + ["b"] * 4})
    ax = plots.plot_curves(table, "k", "acc", "method", connect=False).axes[0]
    assert ax.lines and all(line.get_linestyle() == "None" for line in ax.lines)  # points and caps, no trend line
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "10"] and ax.get_xscale() == "linear"


def test_exercise_checks_hint_and_raise_when_strict(capsys, monkeypatch):
    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    exercises.check("02.2", {"a", "b"})
    assert "Not yet (02.2)" in capsys.readouterr().out
    exercises.check("02.2", "b c d")
    assert "Correct (02.2)" in capsys.readouterr().out
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    with pytest.raises(exercises.ExerciseError):
        exercises.check("02.2", {"e"})
    with pytest.raises(KeyError, match="02.1"):
        exercises.check("99.9", 1)


def test_numeric_checks_explain_percentages(monkeypatch, capsys):
    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    exercises.check("02.1", 35.0)
    assert "fraction between 0 and 1" in capsys.readouterr().out
    exercises.check("02.1", "0.3")
    assert "expected a number" in capsys.readouterr().out


def test_numeric_checks_name_the_common_mistake(monkeypatch, capsys):
    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    y = data.load("airline-tweets", "test").y
    exercises.check("05.1", (y == 0).float().mean())  # the neutral tweets left in; a tensor is fine
    assert "remove the neutral tweets first" in capsys.readouterr().out
    exercises.check("05.1", 0.01)
    assert "count the negative tweets" in capsys.readouterr().out
    exercises.check("04.2", torch.tensor(1e-3 / 1.5**9))
    assert "Correct (04.2)" in capsys.readouterr().out
    exercises.check("04.2", 1e-3 / 1.5**8)
    assert "one stage off" in capsys.readouterr().out


def test_every_exercise_in_the_notebooks_has_a_check():
    import re

    ids = set()
    for notebook in Path(__file__).resolve().parents[1].glob("notebooks/*.ipynb"):
        ids |= set(re.findall(r'exercises\.check\(\\?"(\d\d\.\d)', notebook.read_text()))
    assert ids and ids <= set(exercises.available())


def test_a_run_dependent_check_uses_the_learners_own_run(monkeypatch, capsys):
    from sklearn.metrics import f1_score

    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    y_true, y_pred = torch.tensor([0, 0, 0, 0, 1, 1]), torch.tensor([0, 0, 0, 1, 1, 0])
    exercises.check("05.2", f1_score(y_true, y_pred, average="macro"), y_true=y_true, y_pred=y_pred)
    assert "Correct (05.2)" in capsys.readouterr().out
    other = torch.tensor([1, 1, 1, 1, 1, 0])  # another run, another answer: no constant behind the check
    with pytest.raises(exercises.ExerciseError):
        exercises.check("05.2", f1_score(y_true, y_pred, average="macro"), y_true=y_true, y_pred=other)
    monkeypatch.delenv("TL_STRICT_CLAIMS")
    capsys.readouterr()
    exercises.check("05.2", f1_score(y_true, y_pred), y_true=y_true, y_pred=y_pred)
    assert "'fresh' class alone" in capsys.readouterr().out
    with pytest.raises(TypeError, match="05.2.*y_true"):
        exercises.check("05.2", 0.5)


def test_the_fisher_check_recomputes_from_the_learners_fisher(monkeypatch, capsys):
    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    fisher = {"w": torch.tensor([1.0, 0.001, 0.02, 0.0]), "b": torch.tensor([0.03])}  # 3 of 5 above max / 100
    exercises.check("07.2", 0.6, fisher=fisher)
    assert "Correct (07.2)" in capsys.readouterr().out
    exercises.check("07.2", 0.4, fisher=fisher)
    assert "below the threshold" in capsys.readouterr().out
    exercises.check("07.2", 0.2, fisher=fisher)
    assert "compares with the mean" in capsys.readouterr().out


def test_a_direction_check_accepts_what_the_run_shows_and_says_when_it_is_unusual(monkeypatch, capsys):
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    exercises.check("05.3", "lower", fewer=0.70, more=0.77)
    assert "Correct (05.3)" in capsys.readouterr().out
    exercises.check("05.3", "higher", fewer=0.78, more=0.77)  # an unusual run, read honestly
    assert "usually goes the other way" in capsys.readouterr().out
    with pytest.raises(exercises.ExerciseError, match="numbers again"):
        exercises.check("05.3", "higher", fewer=0.70, more=0.77)
    exercises.check("05.3", "lower", fewer=None, more=0.77)  # the stub's placeholder, not filled in yet
    assert "put what your run measured in fewer" in capsys.readouterr().out


def test_macro_f1_is_not_mistaken_for_accuracy_on_a_balanced_set(monkeypatch, capsys):
    from sklearn.metrics import f1_score

    monkeypatch.delenv("TL_STRICT_CLAIMS", raising=False)
    y_true = torch.tensor([0] * 50 + [1] * 50)
    y_pred = torch.cat([torch.zeros(41), torch.ones(9), torch.zeros(7), torch.ones(43)]).long()
    accuracy = (y_true == y_pred).float().mean().item()
    assert abs(accuracy - f1_score(y_true, y_pred, average="macro")) < 0.005  # close, as on the chapter's data
    exercises.check("05.2", accuracy, y_true=y_true, y_pred=y_pred)
    assert "that is the accuracy" in capsys.readouterr().out


def test_the_patience_check_walks_the_learners_history(monkeypatch, capsys):
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    losses = [1.0, 0.8, 0.7, 0.75, 0.72, 0.9, 0.6]
    history = [{"epoch": i + 1, "val_loss": loss} for i, loss in enumerate(losses)]
    exercises.check("08.1", (5, 3), history=history)  # best at 3; epochs 4 and 5 bring no lower loss
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(exercises.ExerciseError, match="other way round"):
        exercises.check("08.1", (3, 5), history=history)
    never = [{"epoch": i + 1, "val_loss": 1 / (i + 1)} for i in range(4)]
    exercises.check("08.1", (4, 4), history=never)  # it never stops early: all epochs, the last kept
    assert "Correct" in capsys.readouterr().out


def test_the_lora_count_check_names_the_usual_slips(monkeypatch, capsys):
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    exercises.check("09.1", 8 * (384 + 1536))
    assert "Correct" in capsys.readouterr().out
    for slip, hint in [(384 * 1536, "whole frozen weight"), (8 * 384, "A alone"), (8 * 1920 + 1536, "bias")]:
        with pytest.raises(exercises.ExerciseError, match=hint):
            exercises.check("09.1", slip)


def test_the_rank_check_follows_the_learners_numbers(monkeypatch, capsys):
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    exercises.check("09.2", "not higher", rank_4=0.80, rank_64=0.81, se=0.02)
    assert "Correct" in capsys.readouterr().out
    exercises.check("09.2", "higher", rank_4=0.70, rank_64=0.80, se=0.02)  # what this run shows, though unusual
    assert "usually goes the other way" in capsys.readouterr().out
    with pytest.raises(exercises.ExerciseError, match="look at your numbers"):
        exercises.check("09.2", "higher", rank_4=0.80, rank_64=0.81, se=0.02)


def test_the_broken_augmentation_check_follows_the_learners_numbers(monkeypatch, capsys):
    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    exercises.check("08.2", "falls", plain=0.85, broken=0.60)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(exercises.ExerciseError, match="look at your numbers"):
        exercises.check("08.2", "rises", plain=0.85, broken=0.60)
    with pytest.raises(exercises.ExerciseError, match="'falls' or 'rises'"):
        exercises.check("08.2", "fall", plain=0.85, broken=0.60)
