import dataclasses

import pytest
import torch

from tl_utils import data, features, models


@pytest.fixture(scope="module")
def setup():
    model = models.load_backbone()
    prep = models.preprocessing(size=64)
    train = data.load("mnist-5k", "train", n_per_class=6, seed=0)
    val = data.load("mnist-5k", "val", n_per_class=20, seed=0)
    return model, prep, train, val


def test_the_second_extraction_is_a_cache_hit(setup, tmp_path):
    model, prep, train, _ = setup
    first = features.extract(model, train, prep, cache=tmp_path)
    second = features.extract(model, train, prep, cache=tmp_path)
    assert (first.cached, second.cached) == (False, True)
    assert first.x.shape == (60, 1280) and torch.equal(first.x, second.x) and torch.equal(second.y, train.y)
    assert second.classes == train.classes and second.path == first.path
    assert len(list(tmp_path.iterdir())) == 1  # no temporary file left behind


def test_the_key_changes_with_weights_data_and_preprocessing(setup, tmp_path):
    model, prep, train, val = setup
    key = features.cache_key(model, train, prep)
    assert features.cache_key(model, train, dataclasses.replace(prep, size=96)) != key
    assert features.cache_key(model, val, prep) != key
    assert features.cache_key(model, train.subset(range(10)), prep) != key
    tuned = models.load_backbone()
    with torch.no_grad():
        tuned.blocks[6][0].bn1.bias[0] += 1  # any change to the weights below the features
    assert features.cache_key(tuned, train, prep) != key
    assert features.cache_key(models.load_backbone(), train, prep) == key  # same weights, same key


def test_the_key_ignores_the_head_the_labels_and_the_name(setup):
    model, prep, train, _ = setup
    key = features.cache_key(model, train, prep)
    assert features.cache_key(models.load_backbone(num_classes=3), train, prep) == key  # a new head
    relabelled = dataclasses.replace(train, y=(train.y + 1) % 10, name="renamed")
    assert features.cache_key(model, relabelled, prep) == key


def test_the_key_covers_what_changes_features_without_changing_weights(setup, monkeypatch):
    import timm

    model, prep, train, _ = setup
    key = features.cache_key(model, train, prep)
    avg_max = timm.create_model("tf_efficientnet_lite0", global_pool="avgmax")
    avg_max.load_state_dict(model.state_dict())  # the same weights, another pooling
    assert features.cache_key(avg_max, train, prep) != key
    drop_path = timm.create_model("tf_efficientnet_lite0", drop_path_rate=0.2)
    drop_path.load_state_dict(model.state_dict())
    assert features.cache_key(drop_path, train, prep) != key
    monkeypatch.setattr(timm, "__version__", "0.0.1")
    assert features.cache_key(model, train, prep) != key
    monkeypatch.undo()
    monkeypatch.setattr(features, "pooled", lambda model, x: model.forward_features(x).mean((2, 3)))
    assert features.cache_key(model, train, prep) != key  # the code that computes them


def test_a_cache_hit_returns_the_labels_of_the_data_asked_for(setup, tmp_path):
    model, prep, train, _ = setup
    features.extract(model, train, prep, cache=tmp_path)
    relabelled = dataclasses.replace(train, y=(train.y + 1) % 10, classes=[f"c{i}" for i in range(10)])
    hit = features.extract(model, relabelled, prep, cache=tmp_path)
    assert hit.cached and torch.equal(hit.y, relabelled.y) and hit.classes == relabelled.classes


def test_text_embeddings_are_cached_and_keyed(tmp_path):
    tokenizer, encoder = models.load_text_encoder("minilm-l6")
    texts = ["a fine film", "a dull film", "the plane was late"]
    first = features.embed_texts(tokenizer, encoder, texts, cache=tmp_path)
    _, classifier = models.load_text_encoder("minilm-l6", num_labels=2)  # same encoder, a head on top
    calls = []
    for model in (encoder, classifier.base_model):
        model.register_forward_hook(lambda *args: calls.append(1))
    assert torch.equal(features.embed_texts(tokenizer, encoder, texts, cache=tmp_path), first)
    assert torch.equal(features.embed_texts(tokenizer, classifier, texts, cache=tmp_path), first)
    assert calls == []  # both read from the cache
    shorter = features.embed_texts(tokenizer, encoder, texts, max_length=2, cache=tmp_path)
    assert not torch.equal(shorter, first) and len(list(tmp_path.iterdir())) == 2


def test_a_head_trained_on_cached_features_learns(setup, tmp_path):
    model, prep, train, val = setup
    head, history = features.train_head(features.extract(model, train, prep, cache=tmp_path),
                                        features.extract(model, val, prep, cache=tmp_path))
    assert isinstance(head, torch.nn.Linear) and head.out_features == 10
    assert len(history) == 300  # 60 examples = one batch per epoch: at least 300 steps
    assert history[-1]["val_acc"] > 0.4  # 6 labelled digits per class; chance is 0.1


def test_texts_are_not_images(setup):
    model, prep, _, _ = setup
    with pytest.raises(TypeError, match="embed_texts"):
        features.extract(model, data.load("rotten-tomatoes", "val", n_per_class=2), prep)


def test_the_key_covers_module_settings_that_repr_does_not_show():
    from torch import nn

    from tl_utils import keys

    assert keys.digest(nn.CrossEntropyLoss(label_smoothing=0.1)) != keys.digest(nn.CrossEntropyLoss())
    assert keys.digest(nn.CrossEntropyLoss()) == keys.digest(nn.CrossEntropyLoss())
