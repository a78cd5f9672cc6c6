"""Atomic file output: write to a temporary file beside the target, then ``os.replace`` it into place.

A crash or an exception half-way leaves the previous file (or nothing) behind, never half a file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def new_file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give under the current umask (mkstemp makes 0600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
