"""A learner's own folder: every awkward file either reads as a viewer shows it or is reported."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

from tl_utils import data, imagefiles


def _two_classes(root, n=10, size=(24, 16)):
    for i, cls in enumerate(["cats", "dogs"]):
        (root / cls).mkdir(parents=True)
        for j in range(n):
            Image.new("RGB", size, (200 * i, 10 * j, 0)).save(root / cls / f"{j}.png")
    return root


def _load_quietly(root, split="train"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = data.load(str(root), split, size=16)
    return loaded, [str(w.message) for w in caught]


def test_hidden_files_and_folders_are_passed_over_without_a_word(tmp_path):
    root = _two_classes(tmp_path / "pets")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "cats" / "._0.png").write_bytes(b"\0\5\26\7 macOS resource fork")  # an image suffix, not an image
    (root / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    _two_classes(root / ".ipynb_checkpoints")  # Jupyter's folder must not become a class
    (root / "__MACOSX" / "cats").mkdir(parents=True)
    (root / "__MACOSX" / "cats" / "x.png").write_bytes(b"junk")
    train, messages = _load_quietly(root)
    assert train.classes == ["cats", "dogs"]
    assert messages == []
    assert len(sum((data.load(str(root), s, size=16).y.tolist() for s in data.SPLITS), [])) == 20


def test_corrupt_and_non_image_files_are_skipped_and_listed_by_path(tmp_path):
    root = _two_classes(tmp_path / "pets")
    (root / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = root / "dogs" / "0.png"
    (root / "dogs" / "cut.png").write_bytes(good.read_bytes()[:60])  # a truncated download
    (root / "dogs" / "notes.txt").write_text("taken at the park")
    (root / "stray.png").write_bytes(good.read_bytes())
    train, messages = _load_quietly(root)
    assert len(messages) == 1
    message = messages[0]
    assert "4 file(s)" in message
    for name, reason in [("broken.jpg", "cannot be decoded"), ("cut.png", "cannot be decoded"),
                         ("notes.txt", "not an image file"), ("stray.png", "not inside a class folder")]:
        line = next(line for line in message.splitlines() if name in line)
        assert str(root) in line and reason in line
    every = sum(len(_load_quietly(root, s)[0]) for s in data.SPLITS)
    assert every == 20  # the 20 good images, nothing else


def test_modes_are_decoded_as_a_viewer_shows_them(tmp_path):
    grey16 = np.zeros((8, 8), np.uint16)
    grey16[:, 4:] = 32768  # mid-grey in 16 bits: the old code clipped it to white
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    Image.new("L", (8, 8), 100).save(tmp_path / "grey.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red in print colours
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.save(tmp_path / "palette.png")
    clear = Image.new("P", (8, 8), 0)
    clear.putpalette([0, 0, 0] * 256)
    clear.save(tmp_path / "clear.gif", transparency=0)
    assert imagefiles.open_rgb(tmp_path / "grey16.png").getpixel((6, 0)) == (128, 128, 128)
    assert imagefiles.open_rgb(tmp_path / "grey16.png").getpixel((0, 0)) == (0, 0, 0)
    assert imagefiles.open_rgb(tmp_path / "grey.png").getpixel((0, 0)) == (100, 100, 100)
    r, g, b = imagefiles.open_rgb(tmp_path / "cmyk.jpg").getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60
    assert imagefiles.open_rgb(tmp_path / "palette.png").getpixel((0, 0)) == (0, 0, 255)
    assert imagefiles.open_rgb(tmp_path / "clear.gif").getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # red on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as a phone held upright writes
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = imagefiles.open_rgb(tmp_path / "phone.jpg")
    assert shown.size == (20, 40)  # upright
    r, _, b = shown.getpixel((10, 5))
    assert r > 200 and b < 60  # the stored left side is now on top


def test_an_enormous_image_is_refused_before_it_is_decoded(tmp_path):
    Image.new("L", (3000, 2000)).save(tmp_path / "poster.png")
    with pytest.raises(imagefiles.ImageError, match=r"3000x2000 pixels \(6 megapixels\).*shrink it"):
        imagefiles.open_rgb(tmp_path / "poster.png", max_pixels=5_000_000)
    assert imagefiles.open_rgb(tmp_path / "poster.png", max_pixels=None).size == (3000, 2000)


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_linked_files_are_read_and_broken_links_reported(tmp_path):
    root = _two_classes(tmp_path / "pets")
    (root / "cats" / "linked.png").symlink_to(root / "dogs" / "0.png")
    (root / "dogs" / "gone.png").symlink_to(tmp_path / "deleted.png")
    images, skipped = imagefiles.list_images(root)
    assert root / "cats" / "linked.png" in images
    assert [(s.path.name, s.reason) for s in skipped] == [("gone.png", "a link to a file that does not exist")]
    assert sum(len(_load_quietly(root, s)[0]) for s in data.SPLITS) == 21


def test_a_class_without_readable_images_is_an_error_that_names_it(tmp_path):
    root = _two_classes(tmp_path / "pets")
    (root / "birds").mkdir()
    (root / "birds" / "0.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"no readable images in the class folder\(s\) \['birds'\]"), \
            pytest.warns(UserWarning, match="0.jpg: cannot be decoded"):
        data.load(str(root), size=16)


def test_a_folder_of_nothing_readable_says_so(tmp_path):
    for cls in ["a", "b"]:
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.png").write_text("text")
    with pytest.raises(ValueError, match="No readable images"), pytest.warns(UserWarning, match="2 file"):
        data.load(str(tmp_path), size=16)


def test_decode_all_keeps_the_order_and_puts_each_failure_in_its_place(tmp_path):
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(np.full((4, 4 + i, 3), 10 * i, dtype=np.uint8)).save(paths[-1])
    paths.insert(5, tmp_path / "missing.png")
    results = imagefiles.decode_all(paths, lambda p: imagefiles.read_square(p, 8)[1])
    assert isinstance(results[5], imagefiles.ImageError) and "no such file" in str(results[5])
    assert [r for r in results if not isinstance(r, imagefiles.ImageError)] == [(4 + i, 4) for i in range(12)]


@pytest.mark.parametrize("width, height", [(40, 20), (20, 40), (30, 30)])
def test_pad_to_square_is_pillows_pad_then_resize(tmp_path, width, height):
    """read_square pads with white, centred, then resizes: Pillow's ImageOps.pad to the longer side,
    then resize. (Not ImageOps.pad straight to the size: that resizes before padding, other pixels;
    and for an odd margin Pillow rounds the offset where we floor it, so ours stays hand-written:
    the registry's decoded clip art, and every number in the chapters, depend on it.)"""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    image.save(tmp_path / "x.png")
    side = max(width, height)
    expected = ImageOps.pad(image, (side, side), color=(255, 255, 255)).resize((16, 16), Image.Resampling.BICUBIC)
    got, own_size = imagefiles.read_square(tmp_path / "x.png", 16)
    assert own_size == (width, height)
    assert np.array_equal(got, np.asarray(expected).transpose(2, 0, 1))
