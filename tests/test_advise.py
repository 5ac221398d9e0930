"""tl-advise and tl-predict on a folder they have never seen, and on every kind of bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tl_utils import advise, checks, data, deploy, ladder, models


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Clip art written out as train/ val/ test/ folders, with the troubles a real folder has."""
    root = tmp_path_factory.mktemp("advise") / "clipart"
    data.write_folder([data.load("clipart", s, size=64) for s in data.SPLITS], root, by_split=True)
    train_image = sorted((root / "train" / "fish").iterdir())[0]
    (root / "test" / "fish" / "copied.png").write_bytes(train_image.read_bytes())  # a test image seen in training
    with Image.open(train_image) as image:  # the same picture, re-saved larger as a JPEG, in validation
        image.convert("RGB").resize((128, 128)).save(root / "val" / "fish" / "resaved.jpg", quality=80)
    (root / "train" / "bird" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 half a download")
    (root / "train" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train" / "bird" / "notes.txt").write_text("where I found these")
    return root


@pytest.fixture(scope="module")
def advised(planted, tmp_path_factory):
    out = tmp_path_factory.mktemp("advice")
    lines = []
    result = advise.advise(planted, out, size=64, top_epochs=2, scratch_epochs=2, log=lines.append)
    return result, lines


def test_the_checks_find_the_planted_troubles(advised, planted):
    result, _ = advised
    leaks = {frozenset(Path(result.findings.names[i]).name for i in (c.first, c.second)) for c in result.findings.leaks}
    train_image = sorted((planted / "train" / "fish").iterdir())[0].name
    assert frozenset({train_image, "copied.png"}) in leaks
    assert frozenset({train_image, "resaved.jpg"}) in leaks
    skipped = {s.path.name: s.reason for s in result.findings.skipped}
    assert set(skipped) == {"broken.jpg", "notes.txt"}  # .DS_Store passed over silently
    n_test = len(data.load("clipart", "test"))
    assert result.sizes["test"] <= n_test  # the copied test image is out of the test split


def test_the_report_says_what_was_found_and_chosen(advised):
    result, lines = advised
    report = (result.out / "report.md").read_text()
    for text in ["copied.png", "resaved.jpg", "across splits", "broken.jpg", "cannot be decoded", "## Recommendation",
                 result.chosen.name, "onnxruntime"]:
        assert text in report, text
    for figure in ["label_efficiency", "recall", "confusion", "errors"]:
        assert (result.out / "figures" / f"{figure}.png").is_file()
        assert f"figures/{figure}.png" in report
    assert [r.kind for r in result.rungs] == ["knn", "probe", "top", "scratch"]
    assert result.chosen is ladder.choose(result.rungs)
    assert result.reasons[0].startswith(f"Use the {result.chosen.name}: {result.chosen.val_acc:.1%}")
    assert lines[0].startswith("[1/5]") and any(line.startswith("[5/5]") for line in lines)


def test_the_saved_model_reproduces_the_chosen_method_and_onnx_agrees(advised, planted):
    result, _ = advised
    model, config = deploy.load(result.out / "model")
    images, _, _ = deploy.read_images(sorted((planted / "val").rglob("*.png"))[:16], 64)
    probs = deploy.probabilities(model, images)
    assert config["classes"] == sorted(data.load("clipart", "val").classes)  # folders sort by name
    assert config["size"] == 64 and result.onnx_difference < 1e-4
    assert np.abs(deploy.onnx_probabilities(result.out / "model" / "model.onnx", images) - probs.numpy()).max() < 1e-4
    with torch.no_grad():
        direct = result.chosen.model(models.preprocessing(size=64)(images))  # the method's own model
    assert torch.allclose(probs, direct if result.chosen.kind == "knn" else direct.softmax(1), atol=1e-5)


def test_tl_predict_prints_labels_and_onnx_gives_the_same(advised, planted, capsys):
    result, _ = advised
    files = sorted((planted / "test" / "boat").iterdir())[:3] + [planted / "train" / "bird" / "broken.jpg"]
    status = advise.predict_main([str(result.out / "model"), *map(str, files)])
    torch_out = capsys.readouterr()
    assert status == 1 and "skipped" in torch_out.err and "broken.jpg" in torch_out.err  # one file was not an image
    rows = [line.split("\t") for line in torch_out.out.splitlines()]
    assert [r[0] for r in rows] == [str(f) for f in files[:3]]
    assert all(r[1] in data.load("clipart", "test").classes and 0 < float(r[2]) <= 1 for r in rows)
    advise.predict_main([str(result.out / "model"), *map(str, files[:3]), "--onnx"])
    onnx_rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[1] for r in onnx_rows] == [r[1] for r in rows]


def test_the_console_scripts_are_installed():
    for command in ("tl-advise", "tl-predict"):
        done = subprocess.run([str(Path(sys.executable).parent / command), "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "usage" in done.stdout


def _classes(root, counts, colour=lambda i, j: (40 * i, 5 * j, 90)):
    for i, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for j in range(n):
            Image.new("RGB", (40, 40), colour(i, j)).save(root / name / f"{j}.png")
    return root


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "texts.csv").write_text("text,label\nhi,a\n") and p / "texts.csv", "is a file"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "at least 2"),
    (lambda p: _classes(p / "one", {"cats": 20}), "at least 2"),
    (lambda p: _classes(p / "tiny", {"cats": 20, "dogs": 1}), "too few images in class(es) {'dogs': 1}"),
    (lambda p: _classes(p / "nothing", {"a": 0, "b": 0}) and [(p / "nothing" / c / "x.png").write_text("?")
                                                              for c in "ab"] and p / "nothing", "No readable images"),
])
def test_bad_input_gets_a_message_and_exit_status_2_and_writes_nothing(tmp_path, capsys, make, message):
    path = make(tmp_path)
    out = tmp_path / "out"
    assert advise.main([str(path), "--out", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith("tl-advise: ") and message in last
    assert not out.exists()


def test_tl_predict_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.safetensors").write_bytes(b"")
    assert advise.predict_main([str(tmp_path / "half"), "x.png"]) == 2
    assert "not a complete saved model" in capsys.readouterr().err


def _rung(kind, acc, seconds):
    return ladder.Rung(kind, {"knn": "k-NN", "probe": "linear probe", "top": "fine-tuned top 2 stages",
                              "scratch": "small CNN from scratch"}[kind], acc, seconds, 0, None, "", "linear")


def test_recommend_gives_reasons_with_numbers():
    curve = [{"fraction": 0.5, "images": 50, "val_acc": 0.70}, {"fraction": 1.0, "images": 100, "val_acc": 0.80}]
    worth = [_rung("knn", 0.60, 0.1), _rung("probe", 0.70, 1.0), _rung("top", 0.85, 20.0), _rung("scratch", 0.50, 30)]
    lines = advise.recommend(worth, ladder.choose(worth), 1000, curve)
    assert lines[0].startswith("Use the fine-tuned top 2 stages: 85.0%")
    assert any("gains 15.0 points over the linear probe, more than the noise" in line for line in lines)
    assert any("Transfer beats the small CNN trained from scratch by 35.0 points" in line for line in lines)
    assert any("gained 10.0 points from 50% to all of the labels: more labels are likely to help" in line for line in lines)
    assert not any(line.startswith("Caution") for line in lines)
    cheap = [_rung("probe", 0.80, 1.0), _rung("top", 0.805, 20.0), _rung("scratch", 0.81, 30)]
    lines = advise.recommend(cheap, ladder.choose(cheap), 60, curve[:1] * 2)
    assert lines[0].startswith("Use the linear probe: 80.0%") and "(small CNN from scratch, 81.0%) for 1/30 of its training time" in lines[0]
    assert any("as good as transfer" in line and "chapter 6" in line for line in lines)
    assert any(line.startswith("Caution: the validation split has 60 images") for line in lines)


def test_leaked_copies_leave_evaluation_and_training_keeps_its_copy(tmp_path):
    root = _classes(tmp_path / "pets", {"cats": 10, "dogs": 10}, colour=lambda i, j: (20 * j, 200 * i, 30 * j))
    folder = data.read_folder(root, size=32)
    train = np.flatnonzero(folder.codes == 0)
    test = np.flatnonzero(folder.codes == 2)
    Image.open(folder.files[train[0]]).save(root / "cats" / "zz-copy.png")  # where the 80/10/10 split puts it varies
    folder = data.read_folder(root, size=32)
    findings = checks.check_folder(folder)
    codes = checks.without_leaks(folder, findings)
    copy = [i for i, f in enumerate(folder.files) if f.name == "zz-copy.png"][0]
    original = [i for i, f in enumerate(folder.files) if f == folder.files[train[0]]][0]
    pairs = {(c.first, c.second) for c in findings.copies}
    assert tuple(sorted((copy, original))) in pairs
    if folder.codes[copy] != folder.codes[original]:
        later = max((copy, original), key=lambda i: folder.codes[i])
        assert codes[later] == -1 and codes[min((copy, original), key=lambda i: folder.codes[i])] >= 0
    assert len(test) >= 2 and findings.counts.to_numpy().sum() == len(folder.files)
