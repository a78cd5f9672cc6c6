"""Content digests: of one file, and of a package's source (what a run's reuse check compares)."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in chunks (bounded memory on large files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def source_fingerprint(root: str | os.PathLike[str] | None = None) -> str:
    """Hex sha256 over the relative paths and bytes of every ``.py`` file under ``root`` (default: kgreason).

    It changes when any module of the package changes (a reader, a model, a task), installed or editable.
    """
    base = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for file in sorted(base.rglob("*.py")):
        digest.update(file.relative_to(base).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()
