"""tl-advise --int8: an int8 copy kept only within a tolerance on validation, refused otherwise,
runnable without the course's code; tl-predict --int8 runs it."""

import csv
import functools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from tl_utils import advise, data, models
from tl_utils.advise import cli, deploy, int8

SIZE = 64


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A Lite0 probe saved as tl-advise saves it, with clip-art images labelled by the float model itself."""
    torch.manual_seed(0)
    net = models.load_backbone(num_classes=3, check_inputs=False)
    spec = models.preprocessing(size=SIZE)
    model, config = deploy.deployable(net, architecture="efficientnet-lite0", head="linear", classes=["a", "b", "c"],
                                      size=SIZE, mean=spec.mean, std=spec.std)
    folder = deploy.save(model, config, tmp_path_factory.mktemp("int8") / "model")
    images = TF.resize(data.load("clipart", "train").x[:160], [SIZE, SIZE], antialias=True)  # uint8, as tl-advise reads
    labels = deploy.probabilities(model, images).argmax(1)  # the float model is right by definition
    return folder, config, images, labels


def test_a_good_calibration_is_kept_and_agrees_with_the_float_model(saved):
    folder, config, images, labels = saved
    result = int8.quantize(folder, config, images[96:], labels[96:], images[:96], tolerance=0.2)
    assert result.kept and (folder / int8.FILE).is_file()
    assert result.float_acc == 1.0 and result.int8_acc >= 0.8  # agrees with the float model on most images
    assert result.int8_mb < result.float_mb / 3
    assert "kept as model/model.int8.onnx" in result.sentence()


def test_a_broken_calibration_is_refused_and_leaves_no_file(saved, monkeypatch):
    folder, config, images, labels = saved
    (folder / int8.FILE).unlink(missing_ok=True)
    blank = [{"images": np.zeros((8, 3, SIZE, SIZE), dtype=np.uint8)}]  # ranges set on black images only
    monkeypatch.setattr(int8, "calibration_batches", lambda inputs: blank)
    result = int8.quantize(folder, config, images[96:], labels[96:], images[:96], tolerance=0.2)
    assert not result.kept and not (folder / int8.FILE).exists()
    assert result.int8_acc < result.float_acc - 0.2
    assert "not kept" in result.sentence() and "20 percentage points" in result.sentence()


def test_a_model_the_quantizer_cannot_handle_is_said_and_leaves_no_file(saved, monkeypatch):
    folder, config, images, labels = saved
    (folder / int8.FILE).unlink(missing_ok=True)

    def refuses(src, dst, *args, **kwargs):
        dst.write_bytes(b"half a file")  # what an interrupted quantization could leave
        raise RuntimeError("Unsupported operator TopK\nmore lines")

    monkeypatch.setattr(int8.onnxmodels, "static", refuses)
    result = int8.quantize(folder, config, images[96:], labels[96:], images[:96])
    assert not result.kept and result.error == "RuntimeError: Unsupported operator TopK"
    assert not (folder / int8.FILE).exists() and (folder / "model.onnx").is_file()
    assert "could not quantize" in result.sentence() and "unaffected" in result.sentence()


def test_the_int8_file_runs_without_the_course(saved, tmp_path):
    folder, config, images, labels = saved
    int8.quantize(folder, config, images[96:], labels[96:], images[:96], tolerance=1.0)
    np.save(tmp_path / "x.npy", images[:4].numpy())
    script = ("import sys, numpy, onnxruntime; s = onnxruntime.InferenceSession(sys.argv[1]); "
              "p = s.run(None, {'images': numpy.load(sys.argv[2])})[0]; "
              "assert p.shape == (4, 3) and abs(p.sum(1) - 1).max() < 0.02, p; "
              "assert not [m for m in sys.modules if m.startswith(('tl_utils', 'torch'))]; print('ok')")
    out = subprocess.run([sys.executable, "-c", script, str(folder / int8.FILE), str(tmp_path / "x.npy")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_tl_advise_int8_on_texts_writes_report_and_tl_predict_runs_it(tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    rows = []
    for split, n in (("train", 80), ("val", 60), ("test", 40)):
        d = data.load("rotten-tomatoes", split)
        index = np.random.default_rng(0).permutation(len(d))[:n]
        rows += [(d.x[i], d.classes[int(d.y[i])], split) for i in index]
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label", "split"), *rows])
    out = tmp_path / "advice"
    result = advise.advise(path, out, top_epochs=0, int8=True, log=lambda line: None)
    assert result.int8 is not None and result.int8.method == "dynamic"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## int8" in report and result.int8.sentence() in report
    assert (out / "model" / int8.FILE).is_file() == result.int8.kept
    texts = tmp_path / "new.txt"
    texts.write_text("a gorgeous, witty film\na dull, lifeless mess\n", encoding="utf-8")
    capsys.readouterr()
    code = cli.predict_main([str(out / "model"), str(texts), "--int8"])
    printed = capsys.readouterr()
    if result.int8.kept:
        assert code == 0 and len(printed.out.strip().splitlines()) == 2
    else:
        assert code == 2 and "tl-advise with --int8" in printed.err


def test_tl_predict_int8_without_the_file_says_what_to_do(saved, tmp_path, capsys):
    folder, *_ = saved
    (folder / int8.FILE).unlink(missing_ok=True)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.zeros((SIZE, SIZE, 3), dtype=np.uint8)).save(image)
    assert cli.predict_main([str(folder), str(image), "--int8"]) == 2
    assert "has no model.int8.onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one runtime at a time
        cli.predict_main([str(folder), str(image), "--int8", "--onnx"])


def test_the_help_states_the_tolerance_the_code_applies(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert f"within {int8.points(int8.TOLERANCE)} of" in " ".join(capsys.readouterr().out.split())


def test_advise_int8_on_images_then_a_rerun_without_it_leaves_no_int8_file(tmp_path, monkeypatch):
    from tl_utils import folders

    root = tmp_path / "clipart"
    folders.write_folder([data.load("clipart", s) for s in data.SPLITS], root, by_split=True)
    out = tmp_path / "advice"
    monkeypatch.setattr(int8, "quantize", functools.partial(int8.quantize, tolerance=1.0))  # kept, whatever it scores
    first = advise.advise(root, out, size=SIZE, top_epochs=0, scratch_epochs=0, int8=True, log=lambda line: None)
    assert first.int8.method == "static, per channel" and first.int8.kept
    assert (out / "model" / int8.FILE).is_file() and "## int8" in (out / "report.md").read_text(encoding="utf-8")
    assert int8.FILE in json.loads((out / "model" / ".tl-files.json").read_text(encoding="utf-8"))["files"]
    second = advise.advise(root, out, size=SIZE, top_epochs=0, scratch_epochs=0, log=lambda line: None)
    assert second.int8 is None and "## int8" not in (out / "report.md").read_text(encoding="utf-8")
    assert not (out / "model" / int8.FILE).exists()  # no int8 copy of an older model beside the new one
