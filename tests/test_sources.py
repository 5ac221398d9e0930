import gzip
import hashlib
import urllib.request

import pytest

from tl_utils.sources import (
    IntegrityError,
    MissingSourceError,
    Source,
    in_package,
    package_dir,
    read_source,
)

PAYLOAD = b"hello, transfer learning"


def _source(tmp_path, **changes) -> Source:
    fields = dict(name="toy", filename="toy.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                  places=(tmp_path / "system" / "toy.bin",), install="apt-get install toy",
                  url="https://example.org/toy.bin")
    fields.update(changes)
    return Source(**fields)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TL_DATA_DIR", raising=False)


def test_network_is_blocked_in_the_test_suite():
    with pytest.raises(OSError, match="blocked"):
        urllib.request.urlopen("https://pypi.org/simple/", timeout=5)


def test_reads_a_file_from_its_installed_place(tmp_path):
    place = tmp_path / "system" / "toy.bin"
    place.parent.mkdir()
    place.write_bytes(PAYLOAD)
    assert read_source(_source(tmp_path)) == PAYLOAD


def test_tl_data_dir_is_searched_first(tmp_path, monkeypatch):
    (tmp_path / "mine" / "toy").mkdir(parents=True)
    (tmp_path / "mine" / "toy" / "toy.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "mine"))
    assert read_source(_source(tmp_path)) == PAYLOAD


def test_gunzip_sources_are_checked_on_their_content(tmp_path):
    place = tmp_path / "system" / "toy.bin"
    place.parent.mkdir()
    place.write_bytes(gzip.compress(PAYLOAD))
    assert read_source(_source(tmp_path, gunzip=True)) == PAYLOAD


def test_a_file_with_the_wrong_hash_is_refused(tmp_path):
    place = tmp_path / "system" / "toy.bin"
    place.parent.mkdir()
    place.write_bytes(b"something else")
    with pytest.raises(IntegrityError, match="(?s)sha256.*apt-get install toy"):
        read_source(_source(tmp_path))


def test_a_missing_file_names_every_place_and_the_install_command(tmp_path):
    with pytest.raises(MissingSourceError) as error:
        read_source(_source(tmp_path, places=(tmp_path / "system" / "toy.bin", None)))
    message = str(error.value)
    assert "TL_DATA_DIR (not set)" in message
    assert str(tmp_path / "system" / "toy.bin") in message
    assert "its package (not installed)" in message
    assert str(tmp_path / "cache" / "sources" / "toy" / "toy.bin") in message
    assert "download from https://example.org/toy.bin (failed" in message and "blocked" in message
    assert "apt-get install toy" in message


def test_package_lookup_does_not_import():
    assert package_dir("tl_utils").name == "tl_utils"
    assert package_dir("no_such_package_here") is None
    assert in_package("no_such_package_here", "x") is None
