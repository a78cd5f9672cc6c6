"""Atomic output: the target is replaced whole or not at all."""

from __future__ import annotations

import gzip

import pytest

from kgreason.core.atomic import atomic_output, atomic_path, atomic_text_output, atomic_write_text


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
