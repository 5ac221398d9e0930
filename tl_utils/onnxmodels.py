"""ONNX files (chapters 10 and 11; `tl-advise`): export a network, run it with ONNX Runtime,
quantize it to int8, and time it.

Dynamic quantization stores the weights of matrix products as int8 and quantizes activations
on the fly: no calibration, the usual choice for transformers. Static quantization also fixes
every activation's scale beforehand, from a calibration set run through the float model: the
usual choice for convolutional networks. Per-channel scales (one per output channel of a
weight) let channels whose weights differ widely in range each keep their precision; with one
scale per tensor, a small channel can round to a few levels or to zero (chapter 11 measures which
layers lose most).

    onnxmodels.static("model.onnx", "model.int8.onnx", calibration_feeds, per_channel=True)
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["export", "session", "dynamic", "static", "is_depthwise", "megabytes", "seconds_per_call", "METHODS"]

METHODS = ("minmax", "percentile", "entropy")  # how static quantization sets a range from calibration


def export(model: nn.Module, example: tuple[torch.Tensor, ...], path: Path | str, *, input_names: list[str],
           dynamic_shapes: dict | None = None, output_name: str = "probabilities") -> Path:
    """Write `model` (in eval mode) to `path` as one ONNX file, traced on `example` with torch.export.
    dynamic_shapes: the forward argument's name -> {axis: torch.export.Dim} for the axes left free
    (default: the first axis, the batch, of every input)."""
    if dynamic_shapes is None:
        batch = torch.export.Dim("batch")
        dynamic_shapes = tuple({0: batch} for _ in example)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # the exporter reports every step
        warnings.filterwarnings("ignore", message="# The axis name")  # inputs that share the batch axis
        torch.onnx.export(model.eval(), example, str(path), input_names=input_names, output_names=[output_name],
                          dynamic_shapes=dynamic_shapes, dynamo=True, external_data=False)
    return Path(path)


def session(path: Path | str, *, threads: int | None = None):
    """An onnxruntime session of a model file on the CPU: open it once, run it on many batches.
    threads: intra-op threads (default: onnxruntime's choice, the machine's cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _prepared(src: Path, folder: Path) -> Path:
    """`src` with shapes inferred and the graph simplified, as onnxruntime advises before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out, here = folder / "prepared.onnx", os.getcwd()
    os.chdir(folder)  # where onnxruntime leaves a model it could not infer shapes for
    try:
        try:
            quant_pre_process(str(Path(src).resolve()), str(out.resolve()))
        except Exception:  # noqa: BLE001 - onnxruntime's symbolic shape inference gives up on some graphs
            quant_pre_process(str(Path(src).resolve()), str(out.resolve()), skip_symbolic_shape=True)  # (top-k)
    finally:
        os.chdir(here)
    return out


def dynamic(src: Path | str, dst: Path | str) -> Path:
    """Write `src` with int8 weights in its matrix products (activations quantized at run time) to `dst`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return Path(dst)


def is_depthwise(node) -> bool:
    """Whether an ONNX node is a depthwise (grouped) convolution, for `static(only=...)`."""
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


def static(src: Path | str, dst: Path | str, calibration: Iterable[Mapping[str, np.ndarray]], *,
           per_channel: bool = True, method: str = "minmax", only: Callable | None = None) -> Path:
    """Write `src` with int8 weights and activations to `dst`, activation ranges set by running the
    float model on `calibration` (feeds: input name -> batch, e.g. {"images": array}).
    per_channel: one weight scale per output channel (else one per tensor); method: one of METHODS;
    only(node) -> bool: quantize only the graph's nodes it accepts (e.g. `is_depthwise`), the rest
    stay float; default every node that can be."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        quantize_static,
    )

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    feeds = [dict(feed) for feed in calibration]
    if not feeds:
        raise ValueError("static quantization needs at least one calibration batch: give a few hundred "
                         "examples like the ones the model will see, e.g. from its training split.")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as folder:
        prepared = _prepared(Path(src), Path(folder))
        chosen = {}
        if only is not None:
            import onnx

            chosen = {"nodes_to_quantize": [n.name for n in onnx.load(prepared).graph.node if only(n)]}
        quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        calibrate_method=methods[method], **chosen)
    return Path(dst)


def megabytes(path: Path | str) -> float:
    """A file's size in megabytes (10**6 bytes)."""
    return Path(path).stat().st_size / 1e6


def seconds_per_call(run_session, feed: Mapping[str, np.ndarray], *, repeats: int = 5) -> float:
    """The median time of `repeats` runs of `feed` after one untimed warm-up run."""
    feed = dict(feed)
    run_session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
