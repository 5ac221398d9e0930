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
        tuned.classifier.bias[0] += 1  # any change to the weights
    assert features.cache_key(tuned, train, prep) != key
    assert features.cache_key(models.load_backbone(), train, prep) == key  # same weights, same key


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
