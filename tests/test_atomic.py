"""Atomic output: the target is replaced whole or not at all."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from kgreason.core.atomic import (
    atomic_directory,
    atomic_output,
    atomic_path,
    atomic_text_output,
    atomic_write_text,
)


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_text_output(target) as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_gzip_and_path_writers(tmp_path):
    with atomic_output(tmp_path / "a.txt.gz") as handle:
        handle.write(b"x\n")
    assert gzip.decompress((tmp_path / "a.txt.gz").read_bytes()) == b"x\n"
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"123")
        assert not (tmp_path / "b.bin").exists()
    assert (tmp_path / "b.bin").read_bytes() == b"123"
    assert oct((tmp_path / "b.bin").stat().st_mode & 0o777) != oct(0o600)


def _failing_second_move(monkeypatch):
    """Make the move of the new folder into place fail (the move of the old one aside still works)."""
    real = os.replace

    def replace(src, dst):
        if Path(src).name.endswith(".tmp"):
            raise OSError("disk gone")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("backup", ["previous", "private"])
def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch, backup):
    target = tmp_path / "out"
    with atomic_directory(target, backup=backup) as tmp:
        (tmp / "a.txt").write_text("one")
    _failing_second_move(monkeypatch)
    with pytest.raises(OSError, match="disk gone"), atomic_directory(target, backup=backup) as tmp:
        (tmp / "a.txt").write_text("two")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_private_backup_never_deletes_a_folder_it_did_not_make(tmp_path):
    target = tmp_path / "out"
    (tmp_path / ".out.previous").mkdir()
    (tmp_path / ".out.previous" / "mine.txt").write_text("keep")
    for text in ("one", "two"):
        with atomic_directory(target, backup="private") as tmp:
            (tmp / "a.txt").write_text(text)
    assert (target / "a.txt").read_text() == "two"
    assert (tmp_path / ".out.previous" / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.previous", "out"]


def test_a_file_or_link_in_the_way_is_replaced_by_name(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "file").write_text("x")
    for name in ("link", "file"):
        with atomic_directory(tmp_path / name) as tmp:
            (tmp / "a.txt").write_text(name)
        assert not (tmp_path / name).is_symlink() and (tmp_path / name / "a.txt").read_text() == name
    assert elsewhere.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "file", "link"]
    with pytest.raises(ValueError, match="backup must be"), atomic_directory(tmp_path / "x", backup="old"):  # type: ignore[arg-type]
        pass
