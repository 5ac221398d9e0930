"""A folder the course writes into keeps every file the course did not write."""

import json

import pytest

from tl_utils.advise import owned


def _folder(root, files: dict[str, str]):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _contents(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_new_folder_appears_whole_with_its_manifest(tmp_path):
    new = _folder(tmp_path / "new", {"report.md": "r1", "model/model.json": "{}"})
    owned.publish(new, tmp_path / "out")
    assert not new.exists()
    assert owned.owned_files(tmp_path / "out") == ["report.md", "model/model.json"]  # a model's mark moves last


def test_a_second_run_replaces_only_what_the_first_wrote(tmp_path):
    out = tmp_path / "out"
    owned.publish(_folder(tmp_path / "a", {"report.md": "r1", "figures/old.png": "o", "model/w": "1"}), out)
    _folder(out, {"notes.txt": "mine", "figures/my sketch.png": "s", "data/cat/1.png": "c"})  # the learner's
    owned.publish(_folder(tmp_path / "b", {"report.md": "r2", "model/w": "2"}), out)
    assert _contents(out) == {owned.MANIFEST: _contents(out)[owned.MANIFEST], "report.md": "r2", "model/w": "2",
                              "notes.txt": "mine", "figures/my sketch.png": "s", "data/cat/1.png": "c"}
    assert json.loads((out / owned.MANIFEST).read_text())["files"] == ["model/w", "report.md"]


def test_an_emptied_folder_of_ours_is_removed_and_no_backup_is_left(tmp_path):
    out = tmp_path / "out"
    owned.publish(_folder(tmp_path / "a", {"figures/a.png": "a", "report.md": "1"}), out)
    owned.publish(_folder(tmp_path / "b", {"report.md": "2"}), out)
    assert sorted(p.name for p in out.iterdir()) == [owned.MANIFEST, "report.md"]


def test_a_file_of_someone_elses_with_our_name_is_never_replaced(tmp_path):
    out = _folder(tmp_path / "out", {"report.md": "my own report"})
    with pytest.raises(FileExistsError, match="report.md, which tl_utils did not write"):
        owned.publish(_folder(tmp_path / "new", {"report.md": "ours"}), out)
    assert _contents(out) == {"report.md": "my own report"}


def test_a_folder_from_before_manifests_keeps_the_files_with_other_names(tmp_path):
    out = _folder(tmp_path / "out", {"report.md": "old", "notes.txt": "mine"})
    owned.publish(_folder(tmp_path / "new", {"report.md": "new"}), out, legacy=True)
    assert _contents(out)["report.md"] == "new" and _contents(out)["notes.txt"] == "mine"


@pytest.mark.parametrize("fail_at", [1, 3, 5])
def test_a_failure_halfway_puts_everything_back(tmp_path, monkeypatch, fail_at):
    out = tmp_path / "out"
    owned.publish(_folder(tmp_path / "a", {"report.md": "r1", "model/w": "1"}), out)
    _folder(out, {"notes.txt": "mine"})
    before = _contents(out)
    move, calls = owned._move, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == fail_at:
            raise KeyboardInterrupt  # Ctrl-C, or a full disk
        move(src, dst)

    monkeypatch.setattr(owned, "_move", flaky)
    with pytest.raises(KeyboardInterrupt):
        owned.publish(_folder(tmp_path / "b", {"report.md": "r2", "model/w": "2", "figures/f.png": "f"}), out)
    assert _contents(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tl-previous-")]


def test_a_manifest_cannot_reach_outside_its_folder(tmp_path):
    out = _folder(tmp_path / "out", {owned.MANIFEST: json.dumps({"files": ["../victim.txt", "/etc/passwd", "ok"]})})
    assert owned.owned_files(out) == ["ok"]
    (out / owned.MANIFEST).write_text("not json")
    assert owned.owned_files(out) is None


def _killed(tmp_path, moved_out: list[str], moved_in: dict[str, str]):
    """A folder as a publish killed halfway leaves it: of the earlier run's files, `moved_out` are
    in a hidden .tl-previous-* folder (the manifest last), and `moved_in` new files are in place;
    the learner's notes untouched."""
    target = tmp_path / "out"
    owned.publish(_folder(tmp_path / "a", {"report.md": "old", "model/w.bin": "old"}), target)
    (target / "notes.txt").write_text("mine")
    backup = target / ".tl-previous-x1"
    for f in moved_out:
        (backup / f).parent.mkdir(parents=True, exist_ok=True)
        (target / f).rename(backup / f)
    _folder(target, moved_in)
    return target, backup


def test_the_next_run_puts_back_what_a_run_killed_while_setting_aside_had_moved(tmp_path):
    target, backup = _killed(tmp_path, ["model/w.bin"], {})
    with pytest.warns(UserWarning, match="put back 1 file"):
        owned.publish(_folder(tmp_path / "b", {"report.md": "new", "model/w.bin": "new"}), target)
    contents = _contents(target)
    assert contents == {"report.md": "new", "model/w.bin": "new", "notes.txt": "mine", owned.MANIFEST: contents[owned.MANIFEST]}
    assert not backup.exists()


def test_a_run_killed_after_its_new_files_were_in_place_only_leaves_its_backup_to_remove(tmp_path):
    new_manifest = json.dumps({"files": ["model/w.bin", "report.md"]})
    target, backup = _killed(tmp_path, ["model/w.bin", "report.md", owned.MANIFEST],
                             {"model/w.bin": "new", "report.md": "new", owned.MANIFEST: new_manifest})
    assert owned.recover(target) == [] and not backup.exists()
    assert _contents(target) == {"model/w.bin": "new", "report.md": "new", "notes.txt": "mine", owned.MANIFEST: new_manifest}


def test_a_run_killed_while_moving_its_new_files_in_is_reported_not_guessed(tmp_path):
    target, backup = _killed(tmp_path, ["model/w.bin", "report.md", owned.MANIFEST], {"model/w.bin": "half new"})
    with pytest.raises(FileExistsError, match="stopped while it replaced its files"):
        owned.publish(_folder(tmp_path / "b", {"report.md": "new"}), target)
    assert (backup / "model" / "w.bin").read_text() == "old" and (target / "notes.txt").read_text() == "mine"
