"""Saved models: the same probabilities after saving, loading and exporting; nothing half-written."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tl_utils import imagefiles, knn, models, onnxmodels
from tl_utils.advise import deploy, predict
from tl_utils.preprocess import Preprocess

SIZE = 64


def _lite0_probe(n_classes=3, seed=0):
    torch.manual_seed(seed)
    net = models.load_backbone(num_classes=n_classes, check_inputs=False)
    spec = models.preprocessing(size=SIZE)
    return deploy.deployable(net, architecture="efficientnet-lite0", head="linear", classes=["a", "b", "c"][:n_classes],
                             size=SIZE, mean=spec.mean, std=spec.std)


def _images(n=5, seed=0):
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_deployed_model_is_preprocessing_then_the_network():
    model, config = _lite0_probe()
    images = _images()
    prep = Preprocess(SIZE, tuple(config["mean"]), tuple(config["std"]))
    expected = model.net(prep(images)).softmax(dim=1)
    assert torch.allclose(deploy.probabilities(model, images), expected, atol=1e-6)


def test_save_load_and_onnx_give_the_same_probabilities(tmp_path, monkeypatch):
    model, config = _lite0_probe()
    folder = deploy.save(model, config, tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [".tl-files.json", "model.json", "model.onnx", "model.safetensors"]
    loaded, loaded_config = deploy.load(folder)
    images = _images(7)  # another batch size than the export's example
    before = deploy.probabilities(model, images)
    assert torch.equal(deploy.probabilities(loaded, images), before) and loaded_config == config
    onnx = deploy.onnx_probabilities(folder / "model.onnx", images)
    assert np.abs(onnx - before.numpy()).max() < 1e-4

    opened, real = [], onnxmodels.session  # tl-predict --onnx opens the model once, however many batches
    monkeypatch.setattr(onnxmodels, "session", lambda path: opened.append(path) or real(path))
    files = []
    for i in range(5):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(files[-1])
    batches = list(predict.iter_predictions(folder, files, onnx=True, batch_size=2))
    assert len(batches) == 3 and len(opened) == 1 and sum(len(rows) for rows, _ in batches) == 5


def test_a_backbone_with_a_knn_head_saves_and_loads(tmp_path):
    labels = torch.arange(30) % 3
    backbone = models.load_backbone(num_classes=0, check_inputs=False)
    backbone.classifier = torch.nn.Identity()
    net = knn.BackboneWithKNN(backbone, knn.KNNHead(torch.randn(30, backbone.num_features), labels, 3, 5))
    spec = models.preprocessing(size=SIZE)
    model, config = deploy.deployable(net, architecture="efficientnet-lite0", head="knn", classes=["a", "b", "c"],
                                      size=SIZE, mean=spec.mean, std=spec.std)
    loaded, _ = deploy.load(deploy.save(model, config, tmp_path / "knn", onnx=False))
    images = _images()
    assert torch.equal(deploy.probabilities(loaded, images), deploy.probabilities(model, images))
    assert torch.allclose(deploy.probabilities(model, images).sum(1), torch.ones(5))


def test_an_interrupted_save_leaves_no_model_and_keeps_the_old_one(tmp_path, monkeypatch):
    model, config = _lite0_probe()
    deploy.save(model, config, tmp_path / "model", onnx=False)
    before = (tmp_path / "model" / "model.safetensors").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy, "export_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        deploy.save(model, config, tmp_path / "model")
    with pytest.raises(KeyboardInterrupt):
        deploy.save(model, config, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder, no "new"
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == before


def test_what_is_not_a_saved_model_is_refused_with_a_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        deploy.load(tmp_path / "missing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not a complete saved model"):
        deploy.load(tmp_path / "half")
    model, config = _lite0_probe()
    with pytest.raises(FileExistsError, match="not a saved model"):
        deploy.save(model, config, tmp_path / "half")
    folder = deploy.save(model, config, tmp_path / "old", onnx=False)
    (folder / "model.json").write_text(json.dumps(config | {"format": "something/else"}))
    with pytest.raises(ValueError, match="format 'something/else'"):
        deploy.load(folder)
    (folder / "model.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")  # an empty file of tensors
    with pytest.raises(ValueError, match="cannot be read as this model's weights"):
        deploy.load(folder)
    with pytest.raises(ValueError, match="architecture must be one of"):
        deploy.deployable(model.net, architecture="resnet", head="linear", classes=["a"], size=SIZE,
                          mean=config["mean"], std=config["std"])


def test_predict_files_labels_images_and_lists_the_rest(tmp_path):
    model, config = _lite0_probe()
    folder = deploy.save(model, config, tmp_path / "model", onnx=False)
    files = []
    for i, colour in enumerate([(250, 0, 0), (0, 0, 250)]):
        files.append(tmp_path / f"{i}.png")
        Image.new("RGB", (90, 40), colour).save(files[-1])
    (tmp_path / "notes.txt").write_text("no image")
    rows, skipped = predict.predict_files(folder, [*files, tmp_path / "notes.txt", tmp_path / "gone.jpg"])
    assert [r["file"] for r in rows] == [str(f) for f in files]
    images = torch.stack([torch.from_numpy(imagefiles.to_square_rgb(f, SIZE).copy()) for f in files])
    probs = deploy.probabilities(model, images)
    assert [r["label"] for r in rows] == [config["classes"][i] for i in probs.argmax(1)]
    assert [r["probability"] for r in rows] == pytest.approx(probs.max(1).values.tolist())
    assert [(s.path.name, s.reason.split(" (")[0]) for s in skipped] == [
        ("notes.txt", "cannot be decoded as an image"), ("gone.jpg", "no such file")]


def test_expand_searches_folders_and_names_one_with_nothing_to_read(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("b/x.png", ".hidden.png", "notes.txt"):
        (tmp_path / "a" / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    paths, empty = predict.expand([tmp_path / "a", tmp_path / "empty", tmp_path / "z.jpg"], imagefiles.IMAGE_SUFFIXES)
    assert paths == [tmp_path / "a" / "b" / "x.png", tmp_path / "z.jpg"]
    assert [s.path for s in empty] == [tmp_path / "empty"]
