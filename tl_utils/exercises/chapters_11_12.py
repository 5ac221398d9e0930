"""Checks of the exercises of chapter 11 (shipping: distillation and int8 quantization)."""

from __future__ import annotations

import math

from .answers import exercise, number_answer


# ---------------------------------------------------------------- chapter 11
@exercise("11.1")
def _check_11_1(answer) -> tuple[bool, str]:
    d_in, d_out = 384, 1536  # MiniLM's intermediate.dense
    weights = d_in * d_out
    float_bytes, int8_bytes = 4 * weights, weights + 4 * d_out  # int8 weights and one float32 scale per output
    return number_answer(
        answer, float_bytes / int8_bytes, 0.01,
        f"{weights:,} weights take {float_bytes:,} bytes in float32 and {int8_bytes:,} in int8 with "
        f"{d_out:,} float32 scales: {float_bytes / int8_bytes:.3f} times less, a little under four.",
        [(4.0, "the scales take room too: one float32 (4 bytes) per output channel"),
         (4 * weights / (weights + 4 * d_in), "one scale per output channel: there are as many as outputs, not inputs"),
         (4 * weights / (weights + 4), "per channel, not per tensor: one scale for each of the outputs")],
        "count 4 bytes per float32 weight; in int8, 1 byte per weight plus 4 bytes per channel's scale.")


@exercise("11.2")
def _check_11_2(answer) -> tuple[bool, str]:
    logits, temperature = (3.0, 1.0, 0.0), 4.0

    def second(t: float) -> float:
        exps = [math.exp(v / t) for v in logits]
        return exps[1] / sum(exps)

    return number_answer(
        answer, second(temperature), 0.005,
        f"at T = 1 the second class gets {second(1):.3f}, at T = 4 {second(temperature):.3f}: the softened "
        "targets show the student which wrong answer the teacher finds nearly right.",
        [(second(1), "that is at T = 1: divide the logits by the temperature before the softmax"),
         (math.exp(logits[1]) / sum(math.exp(v) for v in logits) * temperature, "divide the logits, not the "
          "probabilities, by T"),
         (1 / 3, "at a very high temperature every class tends to 1/3; at T = 4 it is not there yet")],
        "softmax of (3, 1, 0) / 4: exponentiate each, divide the second by their sum.")


# ---------------------------------------------------------------- chapter 12
@exercise("12.1")
def _check_12_1(answer) -> tuple[bool, str]:
    p, source, target = 0.6, 0.5, 0.8  # P(complaint | tweet) from a model trained at 50/50; complaints now 80%
    corrected = p * target / source / (p * target / source + (1 - p) * (1 - target) / (1 - source))
    return number_answer(
        answer, corrected, 0.005,
        f"Bayes' rule with the new priors: 0.6 x 0.8/0.5 against 0.4 x 0.2/0.5, normalised: {corrected:.3f}. "
        "The same tweet reads as a complaint more surely where complaints are common.",
        [(p * target / source, "normalise: divide by the sum over both classes of probability x new/old prior"),
         (p * target, "divide by the old prior too: the model's 0.6 already contains the training's 50/50"),
         (target, "the tweet's own evidence still counts: weigh the model's 0.6 by the priors, do not replace it")],
        "multiply each class's probability by its new prior over its old one, then divide by their sum.")


@exercise("12.2")
def _check_12_2(answer) -> tuple[bool, str]:
    joint = ((0.40, 0.15), (0.10, 0.35))  # P(predicted i, true j) on balanced validation
    observed = 0.45  # share of target tweets predicted as class 0
    # joint @ w = (observed, 1 - observed), w = target prior / source prior (source priors: column sums)
    (a, b), (c, d) = joint
    det = a * d - b * c
    w0 = (d * observed - b * (1 - observed)) / det
    w1 = (a * (1 - observed) - c * observed) / det
    s0, s1 = a + c, b + d
    prior0 = w0 * s0 / (w0 * s0 + w1 * s1)
    return number_answer(
        answer, prior0, 0.005,
        f"solving joint x w = (0.45, 0.55) gives w = ({w0:.3f}, {w1:.3f}), the ratios of new to old priors; "
        f"with old priors of one half each, class 0's new prior is {prior0:.3f}, lower than the "
        "0.45 predicted: the model over-predicts class 0, and BBSE takes that out.",
        [(observed, "that is the share predicted as class 0; the model's mistakes have to be undone first"),
         (w0, "that is the ratio of new to old prior; multiply by the old prior (one half) and normalise")],
        "write P(predicted 0) = 0.40 w0 + 0.15 w1 = 0.45 and P(predicted 1) = 0.10 w0 + 0.35 w1 = 0.55, solve for "
        "w, then the new prior of class 0 is w0 x 0.5 over the sum.")
