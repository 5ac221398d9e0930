"""tl-advise and tl-predict on a folder they have never seen, and on every kind of bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tl_utils import advise, data, folders, imagefiles, models, splits, stats
from tl_utils.advise import checks, cli, deploy, kinds, ladder, owned, pipeline, predict
from tl_utils.advise.recommend import recommend


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Clip art written out as train/ val/ test/ folders, with the troubles a real folder has."""
    root = tmp_path_factory.mktemp("advise") / "clipart"
    folders.write_folder([data.load("clipart", s, size=64) for s in data.SPLITS], root, by_split=True)
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
    folder = folders.read_folder(planted, 64)
    codes = checks.without_leaks(folder, result.findings)
    where = {f.name: code for f, code in zip(folder.files, codes)}
    assert where["copied.png"] == where["resaved.jpg"] == -1 and where[train_image] == 0  # training keeps its copy
    assert result.sizes == {s: int((codes == i).sum()) for i, s in enumerate(data.SPLITS)}


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
    assert result.chosen is ladder.choose(result.rungs, result.val_labels)
    assert result.reasons[0].startswith(f"Use the {result.chosen.name}: {result.chosen.val_acc:.1%}")
    named = [line.split("] ", 1)[1].split(":")[0] for line in lines if line.startswith("[")]
    assert named == list(pipeline.STAGES) and lines[0].startswith(f"[1/{len(named)}] read:")  # every stage, in order
    assert " → ".join(pipeline.STAGES) in report and "temporary folder, deleted" in report


def test_the_saved_model_reproduces_the_chosen_method_and_onnx_agrees(advised, planted):
    result, _ = advised
    model, config = deploy.load(result.out / "model")
    images, _, _ = predict.read_images(sorted((planted / "val").rglob("*.png"))[:16], 64)
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
    status = cli.predict_main([str(result.out / "model"), *map(str, files)])
    torch_out = capsys.readouterr()
    assert status == 2 and "skipped" in torch_out.err and "broken.jpg" in torch_out.err  # one file was not an image
    rows = [line.split("\t") for line in torch_out.out.splitlines()]
    assert [r[0] for r in rows] == [str(f) for f in files[:3]]
    assert all(r[1] in data.load("clipart", "test").classes and 0 < float(r[2]) <= 1 for r in rows)
    assert cli.predict_main([str(result.out / "model"), *map(str, files[:3]), "--onnx"]) == 0
    onnx_rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[1] for r in onnx_rows] == [r[1] for r in rows]


def test_a_small_budget_skips_the_dear_methods_and_says_so(tmp_path):
    two = [data.select_classes(data.load("clipart", s), [0, 1]) for s in data.SPLITS]
    root = folders.write_folder(two, tmp_path / "two", by_split=True)
    result = advise.advise(root, tmp_path / "out", minutes=0.001, size=64, log=lambda line: None)
    assert [r.kind for r in result.rungs] == ["knn", "probe"]
    assert set(result.skipped_methods) == {"fine-tuned top stages", "small CNN from scratch"}
    assert any(line.startswith("Not run: small CNN from scratch (one epoch takes about") for line in result.reasons)
    roomy = kinds.epochs_that_fit(models.small_cnn(2), (torch.zeros(4, 3, 64, 64), torch.tensor([0, 1, 0, 1])),
                                    n_train=8, n_val=4, seconds=3600, cap=7)
    assert roomy[0] == 7 and roomy[1] > 0  # the cap holds when everything fits


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
    (lambda p: (p / "photo.jpg").write_bytes(b"\xff\xd8") and p / "photo.jpg", "neither CSV nor JSON lines"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "at least 2"),
    (lambda p: _classes(p / "one", {"cats": 20}), "at least 2"),
    (lambda p: _classes(p / "tiny", {"cats": 20, "dogs": 1}), "too few images in class(es) {'dogs': 1}"),
    (lambda p: _classes(p / "nothing", {"a": 0, "b": 0}) and [(p / "nothing" / c / "x.png").write_text("?")
                                                              for c in "ab"] and p / "nothing", "No readable images"),
])
def test_bad_input_gets_a_message_and_exit_status_2_and_writes_nothing(tmp_path, capsys, make, message):
    path = make(tmp_path)
    out = tmp_path / "out"
    assert cli.main([str(path), "--out", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith("tl-advise: ") and message in last
    assert not out.exists()


def test_tl_predict_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.safetensors").write_bytes(b"")
    assert cli.predict_main([str(tmp_path / "half"), "x.png"]) == 2
    assert "not a complete saved model" in capsys.readouterr().err


def _rung(kind, right):
    """A rung whose validation predictions are right on the examples marked True."""
    labels = torch.arange(len(right)) % 2
    pred = torch.where(torch.tensor(right), labels, 1 - labels)
    name = {"knn": "k-NN", "probe": "linear probe", "top": "fine-tuned top 2 stages", "scratch": "small CNN from scratch"}
    return ladder.Rung(kind, name[kind], float(torch.tensor(right).float().mean()), 1.0, 0, None, "", "linear", pred)


def test_recommend_gives_reasons_with_numbers():
    n = 400
    labels = torch.arange(n) % 2
    probe = _rung("probe", [i < 280 for i in range(n)])  # 70%
    top = _rung("top", [i < 340 for i in range(n)])  # 85%, right on everything the probe gets right
    cnn = _rung("scratch", [i < 200 for i in range(n)])  # 50%
    curve = [{"fraction": 0.5, "images": 50, "val_acc": 0.6, "val_pred": _rung("probe", [i < 240 for i in range(n)]).val_pred},
             {"fraction": 1.0, "images": 100, "val_acc": 0.7, "val_pred": probe.val_pred}]
    lines = recommend([probe, top, cnn], ladder.choose([probe, top, cnn], labels), labels, curve)
    assert lines[0].startswith("Use the fine-tuned top 2 stages: 85.0% on validation (±")
    assert any("gains 15.0 points over the linear probe, more than the noise" in line for line in lines)
    assert any(line.startswith("Transfer beats the small CNN trained from scratch by 35.0 points") for line in lines)
    assert any("gained 10.0 points from 50% to all of the labels: more labels are likely to help" in line for line in lines)
    assert not any(line.startswith("Caution") for line in lines)

    small = torch.arange(40) % 2
    probe = _rung("probe", [i < 32 for i in range(40)])  # 80%
    top = _rung("top", [i < 32 or i == 39 for i in range(40)])  # 82.5%: one image more
    cnn = _rung("scratch", [i < 31 or i in (38, 39) for i in range(40)])  # 82.5%
    flat = [{"fraction": 0.5, "images": 5, "val_acc": 0.8, "val_pred": probe.val_pred},
            {"fraction": 1.0, "images": 10, "val_acc": 0.8, "val_pred": probe.val_pred}]
    chosen = ladder.choose([probe, top, cnn], small)
    lines = recommend([probe, top, cnn], chosen, small, flat)
    # 2.5 points behind the best, within the noise: the cheaper probe, and the reason says exactly that
    assert chosen is probe and lines[0].startswith("Use the linear probe: 80.0% on validation")
    assert "the best, the fine-tuned top 2 stages (82.5%), is 2.5 points ahead, within the noise" in lines[0]
    assert any("within the noise" in line and "cannot tell them apart" in line for line in lines)
    assert any("within the noise of transfer" in line and "chapter 6" in line for line in lines)
    assert any("cannot tell whether more labels would help" in line for line in lines)
    assert any(line.startswith("Caution: the validation split has 40 images") for line in lines)


def test_ties_go_to_the_method_with_less_training_whatever_the_seconds():
    right = [True, False] * 10
    knn, top = _rung("knn", right), _rung("top", right)
    knn.seconds, top.seconds = 5.0, 1.0
    assert ladder.choose([top, knn], torch.arange(20) % 2) is knn


def test_the_choice_and_its_reason_come_from_the_same_paired_comparison():
    n = 400
    labels = torch.arange(n) % 2
    knn = _rung("knn", [i < 260 for i in range(n)])  # 65%
    top = _rung("top", [i < 300 for i in range(n)])  # 75%, right wherever k-NN is: 10 points, beyond the noise
    probe = _rung("probe", [i < 292 or i in (396, 397) for i in range(n)])  # 73.5%: 1.5 points behind, within it
    chosen = ladder.choose([knn, probe, top], labels)
    assert chosen is probe and not ladder.close_to_best(top, knn, labels)
    gap, noise = stats.paired_interval(top.val_pred, probe.val_pred, labels)
    line = recommend([knn, probe, top], chosen, labels, [])[0]
    assert f"is {100 * gap:.1f} points ahead, within the noise (± {100 * noise:.1f} points)" in line


def test_scores_that_are_the_best_of_several_settings_are_called_optimistic():
    n = 400
    labels = torch.arange(n) % 2
    probe = _rung("probe", [i < 280 for i in range(n)])  # 70%, one setting
    knn = _rung("knn", [i < 280 for i in range(n)])
    assert not any(line.startswith("Optimism") for line in recommend([probe], probe, labels, []))
    knn.tried = 4  # k among four
    assert ladder.selection_lift(probe, n) == 0.0
    assert ladder.selection_lift(knn, n) == pytest.approx((0.7 * 0.3 / n) ** 0.5 * 1.03, rel=0.03)  # E[max of 4] = 1.029
    line = next(line for line in recommend([knn, probe], knn, labels, []) if line.startswith("Optimism"))
    assert "(the k-NN, 4)" in line and f"{100 * ladder.selection_lift(knn, n):.1f} points for the k-NN" in line


def test_a_copy_across_splits_is_left_out_and_counted_once(tmp_path):
    clipart = data.load("clipart", "train")
    two = data.select_classes(clipart, [0, 1])
    root = folders.write_folder([two], tmp_path / "pets")  # no split folders: 80/10/10 by name
    folder = folders.read_folder(root, 64)
    test_image = folder.files[int(np.flatnonzero(folder.codes == 2)[0])]
    train_image = folder.files[int(np.flatnonzero(folder.codes == 0)[0])]
    (train_image.parent / f"zz-{test_image.name}").write_bytes(test_image.read_bytes())  # the test image, twice
    folder = folders.read_folder(root, 64)
    findings = checks.check_folder(folder)
    codes = checks.without_leaks(folder, findings)
    index = {f.name: i for i, f in enumerate(folder.files)}
    copy, original = index[f"zz-{test_image.name}"], index[test_image.name]
    assert any({c.first, c.second} == {copy, original} and c.exact for c in findings.copies)
    later = max((copy, original), key=lambda i: folder.codes[i])
    if folder.codes[copy] != folder.codes[original]:
        assert later in findings.left_out and codes[later] == -1
    assert len(findings.left_out) == len(set(findings.left_out)) <= len(findings.leaks)


def test_split_folders_are_found_in_any_case_and_strays_are_listed(tmp_path):
    clipart = [data.select_classes(data.load("clipart", s), [0, 1]) for s in data.SPLITS]
    root = folders.write_folder(clipart, tmp_path / "mine", by_split=True)
    (root / "train").rename(root / "Train")
    (root / "val").rename(root / "Validation")
    (root / "extra" / "cats").mkdir(parents=True)
    folder = folders.read_folder(root, 64)
    assert folder.classes == sorted(clipart[0].classes)
    assert [int((folder.codes == i).sum()) for i in range(3)] == [len(s) for s in clipart]
    assert [(s.path.name, s.reason.split(":")[0]) for s in folder.skipped] == [("extra", "a folder beside the split folders")]


def test_splits_by_name_barely_move_when_a_file_is_added():
    names = [f"img_{i:03d}.jpg" for i in range(200)]
    y = np.zeros(200, dtype=np.int64)
    before = splits.split_by_name(y, names)
    after = splits.split_by_name(np.zeros(201, dtype=np.int64), [*names, "img_new.jpg"])
    assert [int((before == c).sum()) for c in range(3)] == [160, 20, 20]
    assert int((before != after[:200]).sum()) <= 2


def test_a_bad_onnx_export_saves_nothing(planted, tmp_path, monkeypatch):
    monkeypatch.setattr(deploy, "onnx_probabilities", lambda path, images: np.zeros((len(images), 12)))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="ONNX export disagrees"):  # ours, not the learner's: exit status 1
        advise.advise(planted, out, size=64, top_epochs=0, scratch_epochs=0, log=lambda line: None)
    assert list(tmp_path.iterdir()) == []  # no output folder, no temporary one


def test_the_same_seed_gives_the_same_advice(planted, tmp_path):
    runs = [advise.advise(planted, tmp_path / f"out{i}", size=64, top_epochs=1, scratch_epochs=1,
                          log=lambda line: None) for i in range(2)]
    assert [r.val_acc for r in runs[0].rungs] == [r.val_acc for r in runs[1].rungs]
    untimed = [[re.sub(r"trained in [\d.]+ s", "trained in ... s", line) for line in r.reasons] for r in runs]
    assert untimed[0] == untimed[1]  # the same reasons, but for the seconds each run took
    a, b = (deploy.load(r.out / "model")[0].state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_out_inside_the_folder_or_someone_elses_folder_is_refused(planted, tmp_path, capsys):
    assert cli.main([str(planted), "--out", str(planted / "advice")]) == 2
    assert "inside" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("\\begin{document}")
    assert cli.main([str(planted), "--out", str(tmp_path / "mine")]) == 2
    assert "was not written by tl-advise" in capsys.readouterr().err
    assert (tmp_path / "mine" / "thesis.tex").is_file()


def test_a_rerun_keeps_the_learners_files_and_refuses_a_data_folder_inside_its_output(planted, tmp_path, capsys,
                                                                                       monkeypatch):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))  # the learner's cache: nothing may land there
    out = tmp_path / "advice"
    quick = ["--top-epochs", "0", "--scratch-epochs", "0", "-q"]
    assert cli.main([str(planted), "--out", str(out), *quick]) == 0
    (out / "notes.md").write_text("tried 64 px first")
    kept = _classes(out / "more photos", {"cats": 12, "dogs": 12})  # a data folder kept in the advice folder
    assert cli.main([str(kept), "--out", str(out), *quick]) == 2
    assert "is inside the output folder" in capsys.readouterr().err
    assert cli.main([str(planted), "--out", str(out), *quick]) == 0  # a second run into the same folder
    assert (out / "notes.md").read_text() == "tried 64 px first"
    assert len(list(kept.rglob("*.png"))) == 24 and (out / "report.md").is_file() and (out / "model" / "model.json").is_file()
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # features went to a temporary folder


def test_ctrl_c_exits_130_without_a_traceback_and_leaves_the_old_folder(planted, tmp_path, capsys, monkeypatch):
    out = tmp_path / "advice"
    quick = ["--top-epochs", "0", "--scratch-epochs", "0", "-q"]
    assert cli.main([str(planted), "--out", str(out), *quick]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    moves, move = [], owned._move

    def interrupted(src, dst):  # Ctrl-C while the files are being moved into place
        moves.append(src)
        if len(moves) == 4:
            raise KeyboardInterrupt
        move(src, dst)

    monkeypatch.setattr(owned, "_move", interrupted)
    status, err = cli.main([str(planted), "--out", str(out), *quick]), capsys.readouterr().err
    assert status == 130, err
    assert "interrupted; nothing was written" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["advice"]  # no temporary folder left


@pytest.mark.parametrize("args, message", [
    (["--minutes", "-1"], "--minutes must be at least"),
    (["--top-epochs", "-2"], "--top-epochs must be at least 0"),
    (["--size", "abc"], "'abc' is not a number"),
])
def test_arguments_out_of_range_are_refused_by_the_parser(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(tmp_path), *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_help_documents_the_exit_codes_and_version_and_debug_show_what_they_say(capsys, monkeypatch, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert all(f"  {code}  " in text or f"  {code}    " in text for code in ("0", "1", "2", "130"))
    with pytest.raises(SystemExit):
        cli.predict_main(["--version"])
    assert capsys.readouterr().out.startswith("tl-predict ")

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(pipeline, "advise", bug)
    assert cli.main([str(tmp_path)]) == 1
    assert "internal failure (ZeroDivisionError: a bug). Run again with --debug" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        cli.main([str(tmp_path), "--debug"])


def test_tl_predict_reads_folders_recursively_and_prints_json(advised, planted, capsys):
    result, _ = advised
    folder = planted / "test"
    status = cli.predict_main([str(result.out / "model"), str(folder), "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = sorted(p for p in folder.rglob("*") if p.suffix.lower() in imagefiles.IMAGE_SUFFIXES)
    assert status == 0 and [r["file"] for r in rows] == [str(p) for p in expected]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 and r["label"] in r["probabilities"] for r in rows)


def test_predictions_come_batch_by_batch_as_the_files_are_read(advised, planted):
    result, _ = advised
    files = sorted((planted / "test" / "boat").iterdir())[:5]
    batches = list(predict.iter_predictions(result.out / "model", files, batch_size=2))
    assert [len(rows) for rows, _ in batches] == [2, 2, 1]
    assert [r for rows, _ in batches for r in rows] == predict.predict_files(result.out / "model", files)[0]


def test_a_folder_a_killed_run_left_halfway_is_reported_before_any_work(planted, tmp_path, capsys):
    out = tmp_path / "advice"
    (out / ".tl-previous-x1").mkdir(parents=True)
    (out / ".tl-previous-x1" / "report.md").write_text("the earlier report")
    (out / "report.md").write_text("half of a new one")  # no manifest: it had been set aside too
    assert cli.main([str(planted), "--out", str(out), "--top-epochs", "0", "--scratch-epochs", "0"]) == 2
    assert "stopped while it replaced its files" in capsys.readouterr().err
    assert (out / ".tl-previous-x1" / "report.md").read_text() == "the earlier report"


def test_negative_epochs_from_python_are_refused(planted, tmp_path):
    with pytest.raises(advise.AdviseError, match="--scratch-epochs -1"):
        advise.advise(planted, tmp_path / "out", scratch_epochs=-1, log=lambda line: None)
