"""Where kgreason finds public benchmark data and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "KGREASON_DATA"
CACHE_ENV = "KGREASON_CACHE"


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The public data folder: ``explicit``, else ``$KGREASON_DATA``, else ``../shared/data`` if it exists.

    The project never ships these files; see the README for where the official copies are.
    """
    if explicit is not None:
        return Path(explicit)
    if env := os.environ.get(DATA_ENV):
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def resolve_data_path(path: str | Path, data: str | Path | None = None) -> Path:
    """``path`` as given when it exists, else relative to :func:`data_dir` (``kg/umls`` works anywhere)."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute():
        return given
    root = data_dir(data)
    if root is not None and (root / given).exists():
        return root / given
    return given


def missing_path_message(path: str | Path, data: str | Path | None = None) -> str:
    """Why ``path`` was found neither as given nor under :func:`data_dir`, and how to point kgreason at data."""
    given = Path(path).expanduser()
    if given.is_absolute():
        return f"{path}: no such file or folder"
    root = data_dir(data)
    if root is None:
        return (
            f"{path}: no such file or folder here, and no data folder was found to look it up in "
            f"(pass --data-dir DIR or set ${DATA_ENV}; the default is ../shared/data)"
        )
    if not root.is_dir():
        return (
            f"{path}: not found here, and the data folder {root} does not exist "
            f"(pass --data-dir DIR or set ${DATA_ENV} to another one)"
        )
    return (
        f"{path}: not found here nor in the data folder {root} (--data-dir DIR or ${DATA_ENV} picks another)"
    )


def cache_dir() -> Path:
    """Folder for derived artefacts (fact indexes of KBs that live in read-only places)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "kgreason"
    )
    return Path(root)


def use_data_dir(path: str | Path | None) -> None:
    """Point :func:`data_dir` at ``path`` for this process (sets ``$KGREASON_DATA``); ``None`` changes nothing."""
    if path is not None:
        os.environ[DATA_ENV] = str(path)
