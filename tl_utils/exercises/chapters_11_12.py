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
