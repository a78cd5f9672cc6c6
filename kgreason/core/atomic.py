"""Atomic file output: write to a temporary file beside the target, then ``os.replace`` it into place.

A crash or an exception half-way leaves the previous file (or nothing) behind, never half a file. Temporary
files are named ``.<name>.<pid>.<random>.tmp``; one left by a writer that was killed (its process has ended)
is removed by the next write of the same target. :func:`atomic_directory` writes whole folders the same way
(every folder kgreason writes: checkpoints, models, embeddings, triple stores).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal


def new_file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give under the current umask (mkstemp makes 0600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (unknown counts as alive)."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists but belongs to someone else
        return True
    return True


def temporary_prefix(path: Path) -> str:
    """The name prefix of this process's temporary files for ``path`` (``.<name>.<pid>.``)."""
    return f".{path.name}.{os.getpid()}."


def stale_temporary_pid(path: Path, candidate: str, *, suffix: str = ".tmp") -> int | None:
    """The writer's process id when ``candidate`` is named like a temporary of ``path`` (else ``None``)."""
    match = re.fullmatch(rf"\.{re.escape(path.name)}\.(\d+)\.[a-z0-9_]{{8}}{re.escape(suffix)}", candidate)
    return int(match.group(1)) if match else None


def sweep_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary files beside ``path`` that killed writers left; return what was removed.

    Only regular files named like :func:`atomic_path`'s temporaries of this very target whose process has
    ended are removed; nothing else is touched.
    """
    path = Path(path)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        pid = stale_temporary_pid(path, entry.name)
        if pid is None or process_alive(pid) or not entry.is_file(follow_symlinks=False):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary handle to a temporary file that replaces ``path`` when the block succeeds.

    A path ending in ``.gz`` is gzip-compressed reproducibly (no name, ``mtime=0``).
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        if path.name.lower().endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                yield packed  # type: ignore[misc]
        else:
            yield raw


@contextlib.contextmanager
def atomic_text_output(path: str | Path, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """:func:`atomic_output` as a text stream (``newline=""``: the caller writes its own line ends)."""
    with atomic_output(path) as binary:
        text = io.TextIOWrapper(binary, encoding=encoding, newline="")
        try:
            yield text
        finally:
            text.flush()
            text.detach()


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_text_output(path, encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that want a file name (``faiss.write_index``, ``np.save``);
    it replaces ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def backup_of(path: Path) -> Path:
    """Where :func:`atomic_directory` moves the previous ``path`` aside during the swap (``backup="previous"``)."""
    return path.parent / f".{path.name}.previous"


def private_backup_of(path: Path) -> Path:
    """A fresh ``.<name>.<pid>.<random>.old`` beside ``path``: where ``backup="private"`` moves the previous one."""
    return path.with_name(f"{temporary_prefix(path)}{secrets.token_hex(4)}.old")


def _new_dir_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _finish_files(root: Path, *, fsync: bool) -> None:
    """Give every file the usual mode (some writers make 0600 files) and, with ``fsync``, flush it to disk."""
    mode = new_file_mode()
    for file in root.rglob("*"):
        if file.is_file():
            os.chmod(file, mode)
            if not fsync:
                continue
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _discard(path: Path) -> None:
    """Remove what is at ``path``: a folder with all in it, a file or a link (by name, never what it points to)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.unlink(path)


def _swap_in(tmp: Path, path: Path, backup: Path) -> None:
    """Move the folder ``tmp`` to ``path`` by way of ``backup``; a failed second move puts the old one back."""
    if not os.path.lexists(path):
        os.replace(tmp, path)
        return
    os.replace(path, backup)
    try:
        os.replace(
            tmp, path
        )  # from here on ``path`` is the new folder; before, ``path`` or ``backup`` is whole
    except BaseException:
        os.replace(backup, path)
        raise


@contextlib.contextmanager
def atomic_directory(
    path: str | Path, *, backup: Literal["previous", "private"] = "previous", fsync: bool = True
) -> Iterator[Path]:
    """A temporary folder ``.<name>.<pid>.<random>.tmp`` beside ``path`` that replaces ``path`` when the block
    succeeds; on any failure it is removed and ``path`` is left as it was.

    ``os.replace`` cannot replace a non-empty folder, so whatever is at ``path`` (a folder, a file or a link) is
    first moved aside, the new folder moved in (should that fail, the old one is moved back), and the old one
    deleted (a link by name, never what it points to). Where it is moved aside:

    - ``"previous"``: the fixed ``.<name>.previous`` (:func:`backup_of`), so a reader can fall back to it if a
      crash struck between the two moves (:func:`kgreason.training.checkpoint.resolve_checkpoint` does); a
      leftover one is deleted. For folders that only this program writes (checkpoints, models, embeddings).
    - ``"private"``: a fresh ``.<name>.<pid>.<random>.old`` (:func:`private_backup_of`), so concurrent writers
      never collide and nothing this writer did not make is deleted (a user's ``.<name>.previous`` survives);
      a crash leaves it for a sweep of dead writers' leftovers (``kgreason.kb.store`` does this).

    Every file gets the usual mode; ``fsync`` also flushes each one to disk before the swap.
    """
    if backup not in ("previous", "private"):
        raise ValueError(f"backup must be 'previous' or 'private', got {backup!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent))
    aside = backup_of(path) if backup == "previous" else private_backup_of(path)
    try:
        os.chmod(tmp, _new_dir_mode())  # mkdtemp makes 0700 folders
        yield tmp
        _finish_files(tmp, fsync=fsync)
        if backup == "previous" and os.path.lexists(path):
            _discard(aside)  # stale: ``path`` is complete
        _swap_in(tmp, path, aside)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _discard(aside)


def remove_stale_temporaries(path: str | Path) -> int:
    """Delete temporary folders that a killed writer of ``path`` left beside it; returns how many."""
    path = Path(path)
    if not path.parent.is_dir():
        return 0
    stale = [p for p in path.parent.glob(f".{path.name}.*.tmp") if p.is_dir()]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return len(stale)
