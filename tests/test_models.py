import dataclasses
from pathlib import Path

import pytest
import torch

from tl_utils import features, freezing, models, preprocess, registry


@pytest.fixture(scope="module")
def backbone():
    return models.load_backbone("efficientnet-lite0")


@pytest.fixture(scope="module")
def photos():
    names, images, _ = registry.sample_photos()
    return dict(zip(names, images))


def _top1(model, image, size=224):
    with torch.no_grad():
        return int(model(models.preprocessing(size=size)(image)).argmax())


def test_packaged_backbone_sees_a_cat_and_an_espresso(backbone, photos):
    assert 281 <= _top1(backbone, photos["cat"]) <= 285  # tabby, tiger, Persian, Siamese, Egyptian cat
    assert _top1(backbone, photos["espresso"]) == 967
    assert models.imagenet_classes()[967] == "espresso"


def test_all_296_tensors_are_mapped_with_their_shapes(backbone):
    assert len(backbone.state_dict()) == 296
    bad = dict(backbone.state_dict())
    bad["conv_stem.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="does not fit conv_stem.weight"):
        models._map_weights(bad, backbone.state_dict(), 296)
    with pytest.raises(RuntimeError, match="expected 296 tensors"):
        models._map_weights(dict(list(bad.items())[:10]), backbone.state_dict(), 296)


def test_a_new_head_has_one_output_per_class():
    model = models.load_backbone(num_classes=7)
    assert freezing.head(model).out_features == 7 and model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)


def test_unknown_backbone_lists_the_available_ones():
    with pytest.raises(ValueError, match="Available: efficientnet-lite0"):
        models.load_backbone("resnet-9000")


def test_preprocessing_turns_uint8_into_the_expected_range():
    prep = models.preprocessing("efficientnet-lite0", size=64)
    grey = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    x = prep(grey)
    assert x.shape == (5, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x[:, 0], x[:, 1])  # grey becomes three equal channels
    wide = prep(torch.zeros(3, 40, 80, dtype=torch.uint8))  # one image, not square
    assert wide.shape == (1, 3, 64, 64)


def test_preprocessing_fields_change_what_they_say():
    prep = models.preprocessing(size=32)
    image = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    image[:, 0] = 255  # pure red
    assert prep(image)[0, 0].mean() == 1 and dataclasses.replace(prep, channels="BGR")(image)[0, 2].mean() == 1
    assert dataclasses.replace(prep, scale=1.0)(image).max() == 509


@pytest.mark.parametrize("images, error", [
    (torch.rand(2, 3, 8, 8), "expects uint8"),
    (torch.zeros(2, 4, 8, 8, dtype=torch.uint8), "C = 1 .grey. or 3"),
])
def test_preprocessing_refuses_what_it_cannot_handle(images, error):
    with pytest.raises((TypeError, ValueError), match=error):
        models.preprocessing()(images)


def test_the_backbone_refuses_inputs_its_preprocessing_cannot_produce(backbone):
    good = models.preprocessing(size=64)(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    backbone(good)  # no error
    imagenet = (good * 0.5 + 0.5 - torch.tensor(preprocess.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        preprocess.IMAGENET_STD).view(1, 3, 1, 1)
    for bad, message in [(good * 0.5 * 255, r"unscaled \[0, 255\]"), (imagenet, "ImageNet mean/std"),
                         (good[..., :28, :28], "too small"), (good[:, :1], "RGB batches")]:
        with pytest.raises(ValueError, match=message):
            backbone(bad)
    models.load_backbone(check_inputs=False)(good * 255)  # switched off: silent, like plain timm


def test_freezing_by_stage_and_counting_parameters(backbone):
    model = models.load_backbone(num_classes=3)
    assert len(freezing.stages(model)) == 9
    total = freezing.count_parameters(model)
    freezing.freeze_stages(model, 9)
    assert freezing.count_parameters(model, trainable_only=True) == 1280 * 3 + 3  # the head only
    freezing.freeze_stages(model, 0)
    assert freezing.count_parameters(model, trainable_only=True) == total
    with pytest.raises(ValueError, match="between 0 and 9"):
        freezing.freeze_stages(model, 10)


def test_bn_mode_keeps_frozen_layers_statistics():
    model = models.load_backbone(num_classes=3)
    freezing.freeze_stages(model, 4)
    model.train()
    freezing.set_bn_mode(model, "frozen")
    assert not model.bn1.training and model.bn2.training  # stem frozen, last stage trainable
    freezing.set_bn_mode(model, "eval")
    assert not model.bn2.training
    with pytest.raises(ValueError, match="'train', 'frozen' or 'eval'"):
        freezing.set_bn_mode(model, "off")


def test_feature_maps_shrink_and_widen(backbone):
    maps = models.feature_maps(backbone, torch.zeros(1, 3, 224, 224), blocks=(0, 6))
    assert maps[0].shape == (1, 16, 112, 112) and maps[6].shape == (1, 320, 7, 7)


@pytest.fixture(scope="module")
def minilm():
    return models.load_text_encoder("minilm-l6")


def test_minilm_puts_same_topic_sentences_closer(minilm):
    tokenizer, model = minilm
    texts = ["The striker scored twice in the final match.", "The goalkeeper saved a penalty in the cup game.",
             "Bake the bread for forty minutes until golden.", "Knead the dough and let it rise overnight."]
    e = features.embed_texts(tokenizer, model, texts)
    assert e.shape == (4, 384) and torch.allclose(e.norm(dim=1), torch.ones(4), atol=1e-5)
    sim = e @ e.T
    assert min(sim[0, 1], sim[2, 3]) > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) + 0.2


def test_text_encoder_with_a_classification_head():
    tokenizer, model = models.load_text_encoder("minilm-l6", num_labels=3)
    batch = tokenizer(["fine", "awful film"], padding=True, return_tensors="pt")
    assert model(**batch).logits.shape == (2, 3)
    assert len(freezing.stages(model)) == 7  # embeddings + 6 transformer layers
    with pytest.raises(ValueError, match="Available: minilm-l6"):
        models.load_text_encoder("gpt-5")


def test_check_input_is_available_on_its_own():
    models.check_input(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="unscaled"):
        models.check_input(torch.full((1, 3, 64, 64), 200.0))


def test_pooled_features_skip_the_head(backbone):
    assert features.pooled(backbone, torch.zeros(2, 3, 64, 64)).shape == (2, 1280)


def test_the_text_encoder_folder_is_what_from_pretrained_takes(monkeypatch):
    from transformers import AutoTokenizer

    folder = models.text_encoder_folder("minilm-l6")
    assert Path(folder, "config.json").is_file()  # the packaged copy: no hub needed
    assert AutoTokenizer.from_pretrained(folder, local_files_only=True)("a film").input_ids[0] == 101  # [CLS]
    monkeypatch.setattr(models, "in_package", lambda *args: None)  # the package missing: the hub id instead
    assert models.text_encoder_folder("minilm-l6") == "sentence-transformers/all-MiniLM-L6-v2"
    with pytest.raises(ValueError, match="Available: minilm-l6"):
        models.text_encoder_folder("gpt-5")
