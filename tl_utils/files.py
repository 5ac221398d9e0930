"""Writing a file so that it appears whole or not at all: the one atomic write every module uses.

A cache entry, a checkpoint or an adapter is first written under a temporary name beside its
final one, unique to this process and thread (several processes may write the same cache entry
under torchrun), then renamed onto the final name, which is atomic on one file system. An
interrupted write (Ctrl-C, a full disk, a killed kernel) leaves the old file, or none, never half
of one, and its temporary file is removed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "temporary_name"]


def temporary_name(path: Path) -> Path:
    """Where `path` is written before it is renamed: hidden, beside it, unique to this process and
    thread, and ending in the same suffix (numpy's savers add one when it is missing)."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path to write to; when the block ends without an error it is renamed to `path`.

        with atomic_path(cache / "x.npy") as tmp:
            np.save(tmp, x)

    The parent folder is created. On an error (KeyboardInterrupt included) the temporary file is
    removed, `path` is left as it was, and the error is raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
