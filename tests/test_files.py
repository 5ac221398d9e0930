"""The one atomic write (tl_utils.files): whole or nothing, under interruption and concurrency."""

import threading

import numpy as np
import pytest

from tl_utils import files


def test_atomic_path_renames_onto_the_final_name_and_keeps_the_suffix(tmp_path):
    target = tmp_path / "sub" / "x.npy"
    with files.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".npy" and tmp.name.startswith(".")
        np.save(tmp, np.arange(3))  # numpy adds no second suffix
    assert np.array_equal(np.load(target), np.arange(3))
    assert [p.name for p in target.parent.iterdir()] == ["x.npy"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")
    with pytest.raises(error), files.atomic_path(target) as tmp:
        tmp.write_bytes(b"half of the new")
        raise error()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]


def test_temporary_names_differ_between_threads(tmp_path):
    names = []
    worker = threading.Thread(target=lambda: names.append(files.temporary_name(tmp_path / "a.npy")))
    worker.start()
    worker.join()
    assert names[0] != files.temporary_name(tmp_path / "a.npy")
