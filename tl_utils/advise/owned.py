"""Write a folder of results without touching anything in it that we did not write.

`tl-advise` and `deploy.save` write into folders a learner may also use (a notes file beside the
report, a data folder kept there). Each such folder gets a manifest listing the files the course
wrote; `publish` moves a freshly written folder into place replacing only those files, and
puts everything back as it was if it fails halfway.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

MANIFEST = ".tl-files.json"


def owned_files(folder: Path) -> list[str] | None:
    """The files (relative, '/'-separated) that an earlier `publish` wrote into `folder`; None if none did."""
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return None
    return [f for f in files if isinstance(f, str) and ".." not in Path(f).parts and not Path(f).is_absolute()]


def own(folder: Path, names: list[str]) -> None:
    """Add files written into `folder` after its `publish` to its manifest, so that the next
    `publish` there replaces or removes them like the others."""
    files = owned_files(folder) or []
    (Path(folder) / MANIFEST).write_text(json.dumps({"files": sorted({*files, *names})}, indent=1), encoding="utf-8")


def _files(folder: Path) -> list[str]:
    files = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(f for f in files if f != MANIFEST)


def publish(new: Path, target: Path, legacy: bool = False) -> None:
    """Move every file of the folder `new` into `target`, which is left with exactly what it had
    besides the files an earlier `publish` wrote there (listed in its manifest), plus the new ones.

    legacy: `target` was written before manifests existed: its files named as new ones are ours.
    A file in `target` that has a new file's name but is not ours is never replaced: FileExistsError.
    If anything fails (Ctrl-C included), `target` is restored and the error is raised; `new` is
    consumed on success. A hard kill halfway (power loss) can leave the previous files in a hidden
    `.tl-previous-*` folder inside `target` (nothing is deleted before every new file is in place);
    the next `publish` puts them back first (`recover`).
    """
    new, target = Path(new), Path(target)
    recover(target)
    files = sorted(_files(new), key=lambda f: Path(f).name == "model.json")  # a model's "complete" mark last
    (new / MANIFEST).write_text(json.dumps({"files": files}, indent=1), encoding="utf-8")
    if not target.exists():
        new.rename(target)  # atomic: the folder appears complete or not at all
        return
    old = owned_files(target)
    if old is None:
        old = files if legacy else []
    old = [f for f in old if (target / f).is_file()]
    clash = [f for f in files if (target / f).exists() and f not in old]
    if clash:
        raise FileExistsError(f"{target} holds {', '.join(clash[:3])}, which tl_utils did not write: nothing was "
                              "replaced. Move those files, or choose another output folder.")
    backup = Path(tempfile.mkdtemp(prefix=".tl-previous-", dir=target))
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for f in [*old, MANIFEST]:
            if (target / f).is_file():
                _move(target / f, backup / f)
                moved_old.append(f)
        for f in [*files, MANIFEST]:
            _move(new / f, target / f)
            moved_new.append(f)
    except BaseException:  # Ctrl-C included: put the previous files back
        for f in reversed(moved_new):
            _move(target / f, new / f)
        for f in reversed(moved_old):
            _move(backup / f, target / f)
        _prune(target, moved_new)
        shutil.rmtree(backup, ignore_errors=True)  # empty now: everything was put back
        raise
    shutil.rmtree(backup, ignore_errors=True)
    _prune(target, [f for f in old if f not in files])


def recover(target: Path) -> list[str]:
    """Put back the files a `publish` killed halfway (a power cut, a killed process) set aside in a
    hidden `.tl-previous-*` folder of `target`; return them. When the killed run had already
    written a file of the same name, nothing is moved and FileExistsError says what to do."""
    restored: list[str] = []
    for backup in sorted(Path(target).glob(".tl-previous-*")) if Path(target).is_dir() else []:
        current = owned_files(target)
        if current is not None and all((target / f).is_file() for f in current):
            shutil.rmtree(backup)  # the killed run had put every new file in place: only its clean-up was left
            continue
        files = _files(backup) + ([MANIFEST] if (backup / MANIFEST).is_file() else [])
        written = [f for f in files if (target / f).exists()]
        if written:
            raise FileExistsError(
                f"{target}: an earlier run was stopped while it replaced its files (a power cut or a killed "
                f"process). The files it replaced are in {backup}, and {', '.join(written[:3])} were already "
                f"written again. Keep the versions you want, delete {backup.name}, and run again.")
        for f in files:
            _move(backup / f, target / f)
        shutil.rmtree(backup)
        restored += files
    if restored:
        warnings.warn(f"{target}: put back {len(restored)} file(s) that an interrupted earlier run had set aside "
                      f"({', '.join(restored[:3])}{', ...' if len(restored) > 3 else ''})", stacklevel=2)
    return restored


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _prune(folder: Path, removed: list[str]) -> None:
    """Remove the folders that `removed` files lived in, where they are now empty."""
    for f in removed:
        parent = (folder / f).parent
        while parent != folder and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
