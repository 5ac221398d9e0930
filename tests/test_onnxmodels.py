"""ONNX files: export, sessions, int8 quantization (dynamic and static), sizes and timings."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from tl_utils import onnxmodels


class _Convs(nn.Module):
    """A small network with a depthwise and a pointwise convolution, like EfficientNet's blocks."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pointwise = nn.Conv2d(16, 32, 1)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        x = torch.relu(self.pointwise(torch.relu(self.depthwise(torch.relu(self.stem(x))))))
        return self.head(x.mean((2, 3)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _Convs().eval()
    path = onnxmodels.export(model, (torch.randn(2, 3, 16, 16),), tmp_path_factory.mktemp("onnx") / "m.onnx",
                             input_names=["images"], output_name="logits")
    return model, path


def _feeds(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"images": torch.randn(8, 3, 16, 16, generator=g).numpy()} for _ in range(n)]


def test_export_runs_any_batch_size_and_matches_torch(exported):
    model, path = exported
    session = onnxmodels.session(path, threads=1)
    for n in (1, 5):
        x = torch.randn(n, 3, 16, 16)
        out = session.run(None, {"images": x.numpy()})[0]
        assert np.abs(out - model(x).detach().numpy()).max() < 1e-4


def test_static_int8_is_smaller_and_close_per_channel(exported, tmp_path):
    model, path = exported
    int8 = onnxmodels.static(path, tmp_path / "m.int8.onnx", _feeds(), per_channel=True)
    assert onnxmodels.megabytes(int8) < onnxmodels.megabytes(path)
    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x = _feeds(1, seed=1)[0]
    a = onnxmodels.session(path).run(None, x)[0]
    b = onnxmodels.session(int8).run(None, x)[0]
    assert np.abs(a - b).max() < 0.1 * np.abs(a).max()


def test_static_only_quantizes_the_nodes_asked_for(exported, tmp_path):
    _, path = exported
    int8 = onnxmodels.static(path, tmp_path / "dw.int8.onnx", _feeds(), per_channel=False, only=onnxmodels.is_depthwise)
    graph = onnx.load(int8).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    quantized = [node for node in graph.node if node.op_type == "Conv" and node.input[1] in dequantized]
    assert len(quantized) == 1 and onnxmodels.is_depthwise(quantized[0])


def test_static_refuses_no_calibration_and_unknown_methods(exported, tmp_path):
    _, path = exported
    with pytest.raises(ValueError, match="calibration batch"):
        onnxmodels.static(path, tmp_path / "x.onnx", [])
    with pytest.raises(ValueError, match="method must be one of"):
        onnxmodels.static(path, tmp_path / "x.onnx", _feeds(), method="median")


def test_dynamic_int8_stores_linear_weights_in_a_quarter(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4)).eval()
    path = onnxmodels.export(model, (torch.randn(2, 256),), tmp_path / "mlp.onnx", input_names=["x"])
    int8 = onnxmodels.dynamic(path, tmp_path / "mlp.int8.onnx")
    assert onnxmodels.megabytes(int8) < 0.4 * onnxmodels.megabytes(path)
    x = {"x": torch.randn(3, 256).numpy()}
    a, b = onnxmodels.session(path).run(None, x)[0], onnxmodels.session(int8).run(None, x)[0]
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max() + 1e-3


def test_seconds_per_call_is_the_median_of_the_repeats(monkeypatch):
    calls = []

    class Session:
        def run(self, _, feed):
            calls.append(feed)

    ticks = iter([0.0, 1.0, 1.0, 4.0, 4.0, 6.0])  # runs of 1, 3 and 2 seconds
    monkeypatch.setattr(onnxmodels.time, "perf_counter", lambda: next(ticks))
    assert onnxmodels.seconds_per_call(Session(), {"x": np.zeros(1)}, repeats=3) == 2.0
    assert len(calls) == 4  # one warm-up, then the repeats


def test_quantizing_writes_nothing_where_it_runs(exported, tmp_path, monkeypatch):
    _, path = exported
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    onnxmodels.static(path, tmp_path / "m.int8.onnx", _feeds(1))
    onnxmodels.dynamic(path, tmp_path / "m.dyn.onnx")
    assert list(here.iterdir()) == []
