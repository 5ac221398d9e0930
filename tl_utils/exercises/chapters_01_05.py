"""The exercises' checks of chapters 1 to 5."""

from __future__ import annotations

import torch

from .answers import as_number, conclusion_answer, exercise, letters, number_answer

# ---------------------------------------------------------------- chapter 1


@exercise("01.1")
def _check_01_1(answer) -> tuple[bool, str]:
    from .. import models, registry

    names, photos, _ = registry.sample_photos()
    model, prep = models.load_backbone(), models.preprocessing(size=224)
    with torch.no_grad():
        expected = models.imagenet_classes()[int(model(prep(photos[names.index("camera on tripod")])).argmax())]
    if not isinstance(answer, str):
        return False, "answer with the class name as a string, e.g. 'tripod'"
    if answer.strip().lower() == expected.lower():
        return True, f"'{expected}': the network names the most salient object it knows."
    return False, "run the camera photo through the backbone with preprocessing(size=224) and look up imagenet_classes()."


@exercise("01.2")
def _check_01_2(answer) -> tuple[bool, str]:
    expected = {"b", "d"}
    given = letters(answer)
    if given is None:
        return False, "answer with a set of letters, e.g. {'a', 'c'}"
    if given == expected:
        return True, "values outside [-1, 1] and images under 32 px are caught; BGR and the resize method are not."
    if "a" in given or "c" in given:
        return False, "BGR order and the interpolation method leave the values in range: a check on values cannot see them."
    return False, "which mistakes push values outside what the preprocessing can produce, or make images too small?"


@exercise("01.3")
def _check_01_3(answer, *, fewer: float, more: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"fewer labels": fewer, "the chapter's labels": more},
                  "lower" if fewer < more else "higher", "lower", ("lower", "higher"),
                  "a frozen backbone still needs labels to place its classes; fewer labels, a less certain head.")


# ---------------------------------------------------------------- chapter 2


def _clipart_features(split: str, n_per_class: int | None, seed: int):
    from .. import data, features, models

    model = models.load_backbone()
    return features.extract(model, data.load("clipart", split, n_per_class=n_per_class, seed=seed),
                            models.preprocessing(size=64))


def _nearest_class_mean(train, test) -> float:
    means = torch.stack([train.x[train.y == c].mean(dim=0) for c in range(len(train.classes))])
    sims = torch.nn.functional.normalize(test.x, dim=1) @ torch.nn.functional.normalize(means, dim=1).T
    return (sims.argmax(dim=1) == test.y).float().mean().item()


@exercise("02.1")
def _check_02_1(answer) -> tuple[bool, str]:
    train = _clipart_features("train", 5, 0)
    test = _clipart_features("test", None, 0)
    expected = _nearest_class_mean(train, test)
    return number_answer(
        answer, expected, 0.005, f"nearest class mean reaches {expected:.1%}, with no training at all.",
        [(_nearest_class_mean_unnormalised(train, test),
          "close: compare directions, not lengths. Normalise the features and the means (cosine).")],
        "use clip art, 64 px, n_per_class=5, seed=0 for train and the whole test split; one "
        "mean feature vector per class; predict the class whose mean is most similar.")


def _nearest_class_mean_unnormalised(train, test) -> float:
    means = torch.stack([train.x[train.y == c].mean(dim=0) for c in range(len(train.classes))])
    return (torch.cdist(test.x, means).argmin(dim=1) == test.y).float().mean().item()


@exercise("02.2")
def _check_02_2(answer) -> tuple[bool, str]:
    expected = {"b", "c", "d"}
    given = letters(answer)
    if given is None:
        return False, "answer with the letters, e.g. {'a', 'e'} or 'a e'"
    if given == expected:
        return True, "the key covers weights, data and preprocessing; nothing about the head."
    if given & {"a", "e"}:
        return False, "the head is trained after extraction: nothing about it changes the features."
    return False, "which inputs change what the frozen backbone outputs? Check each one: weights, images, preprocessing."


@exercise("02.3")
def _check_02_3(answer, *, longer: float, probe: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"small CNN, trained longer": longer, "linear probe": probe},
                  "yes" if longer >= probe else "no", "no", ("yes", "no"),
                  "more epochs on the same few drawings do not buy what pretraining on a million photos gave.")


# ---------------------------------------------------------------- chapter 3


@exercise("03.1")
def _check_03_1(answer) -> tuple[bool, str]:
    from .. import freezing, models

    model = models.load_backbone(num_classes=10)
    total = freezing.count_parameters(model)
    freezing.freeze_stages(model, 7)
    expected = freezing.count_parameters(model, trainable_only=True)
    if answer == expected:
        return True, f"{expected:,} of {total:,} parameters train: stages 7 and 8 and the head."
    if answer == total:
        return False, "that is every parameter; count only those with requires_grad (trainable_only=True)."
    if answer == freezing.count_parameters(freezing.head(model)):
        return False, "that is the head alone; with 7 of 9 stages frozen, the last two stages train too."
    return False, "freeze the first 7 stages of a 10-class model, then count the parameters that require gradients."


@exercise("03.2")
def _check_03_2(answer) -> tuple[bool, str]:
    from .. import data, models, train

    model = models.load_backbone(num_classes=10)
    images = data.load("fashion-mnist", "test", n_per_class=100, seed=0).x[:32]
    memory = train.memory_footprint(model, images, transform=models.preprocessing(size=64))
    training = memory["gradients"] + memory["optimizer"] + memory["activations"]
    expected = memory["activations"] / training
    return number_answer(
        answer, expected, 0.02,
        f"activations are {expected:.0%} of it: memory grows with batch and image size, not just model size.",
        [(memory["activations"] / (training + memory["parameters"]),
          "leave the weights themselves out: the table counts gradients, optimizer statistics and activations.")],
        "activations / (gradients + optimizer + activations), for the full model on 32 test images at 64 px.")


@exercise("03.3")
def _check_03_3(answer, *, probe: float, fine_tuned: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"probe under the harder shift": probe, "fine-tuned, statistics updating": fine_tuned},
                  "the probe" if probe > fine_tuned else "fine-tuning", "the probe", ("the probe", "fine-tuning"),
                  "statistics re-estimated on crisp training images normalise the shifted ones badly, and more so "
                  "the harder the shift.")


# ---------------------------------------------------------------- chapter 4


@exercise("04.1")
def _check_04_1(answer) -> tuple[bool, str]:
    from .. import schedules

    curve = schedules.curve(schedules.slanted_triangular(120, cut_frac=0.1, ratio=32), 120)
    peak, last = max(range(120), key=curve.__getitem__), curve[119]
    try:
        step, fraction = answer
    except (TypeError, ValueError):
        return False, "answer with a pair (step, fraction), e.g. (10, 0.5)"
    if step != peak:
        return False, "the rate rises for cut_frac of the steps, counting from step 0; where does the rise end?"
    if abs(fraction - last) > 0.005:
        return False, "at the end the rate falls towards peak / ratio; compute the multiplier at step 119."
    return True, f"the peak is at step {peak}; the last step runs at {last:.1%} of it, close to 1/32."


@exercise("04.2")
def _check_04_2(answer) -> tuple[bool, str]:
    expected, one_off = 1e-3 / 1.5**9, 1e-3 / 1.5**8
    value = as_number(answer)
    if value is None:
        return False, f"expected a number, got {answer!r}"
    if abs(value - expected) <= 0.01 * expected:  # a rate, not an accuracy: the tolerance is relative
        return True, f"1e-3 / 1.5^9 = {expected:.2e}: the stem is the ninth stage below the head."
    if abs(value - one_off) <= 0.01 * one_off:
        return False, "one stage off: the top stage (stage 8) already gets 1e-3 / 1.5."
    return False, "use schedules.layerwise_groups and look for the group named 'stage 0'."


@exercise("04.3")
def _check_04_3(answer, *, new_seeds: list[float]) -> tuple[bool, str]:
    best = max(new_seeds)
    return conclusion_answer(answer, {"best new seed": best}, "yes" if best > 0.2 else "no", "no", ("yes", "no"),
                  "without warm-up and bias correction the first steps are too large at this rate, whatever the seed.")


# ---------------------------------------------------------------- chapter 5


@exercise("05.1")
def _check_05_1(answer) -> tuple[bool, str]:
    from .. import data

    y = data.load("airline-tweets", "test").y
    expected = ((y == 0).sum() / (y != 1).sum()).item()
    return number_answer(
        answer, expected, 0.005, f"{expected:.1%}: a model must beat this before its accuracy means anything here.",
        [((y == 0).float().mean().item(),
          "remove the neutral tweets first: count negatives among negatives and positives only.")],
        "count the negative tweets and divide by the number of negative and positive ones.")


@exercise("05.2")
def _check_05_2(answer, *, y_true, y_pred) -> tuple[bool, str]:
    from sklearn.metrics import f1_score

    y_true, y_pred = (torch.as_tensor(v).numpy() for v in (y_true, y_pred))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length; got {len(y_true)} and {len(y_pred)}")
    expected = f1_score(y_true, y_pred, average="macro")
    return number_answer(
        answer, expected, 1e-6, f"macro F1 {expected:.1%}: on a balanced test set it is close to the accuracy.",
        [(f1_score(y_true, y_pred), "that is the F1 of the 'fresh' class alone; average over both classes (average='macro')."),
         ((y_true == y_pred).mean(), "that is the accuracy; compute f1_score(..., average='macro').")],
        "compute f1_score(y_true, y_pred, average='macro') on the predictions you passed.")


@exercise("05.3")
def _check_05_3(answer, *, fewer: float, more: float) -> tuple[bool, str]:
    return conclusion_answer(answer, {"fewer reviews": fewer, "the chapter's reviews": more},
                  "lower" if fewer < more else "higher", "lower", ("lower", "higher"),
                  "even strong frozen embeddings need enough labels to place the boundary between the classes.")
