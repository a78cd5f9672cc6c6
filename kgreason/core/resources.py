"""Files that ship inside the package: the repository's ``knowledge/`` and ``benchmarks/suites/``.

Both folders stay where they are in the repository, the one source of truth; ``pyproject.toml`` maps them into
the package as ``kgreason.knowledge`` and ``kgreason.suites``, so a wheel carries them and an editable install
reads them in place. Code reads them through :mod:`importlib.resources` only, never through ``__file__``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from kgreason.core.errors import KGReasonError

KNOWLEDGE_PACKAGE = "kgreason.knowledge"
SUITES_PACKAGE = "kgreason.suites"


class PackageDataError(KGReasonError, FileNotFoundError):
    """A file that should ship with kgreason is missing from this installation."""


def _package_path(package: str, parts: tuple[str, ...]) -> Path:
    try:
        root = files(package)
    except ModuleNotFoundError:
        raise PackageDataError(
            f"package data {package!r} is missing from this kgreason installation; reinstall kgreason"
        ) from None
    target = root.joinpath(*parts)
    path = Path(str(target))
    if not path.exists():
        where = "/".join(parts) or "."
        raise PackageDataError(
            f"{where} is missing from kgreason's package data ({path}); reinstall kgreason "
            "(a wheel built without its package data cannot run this)"
        )
    return path


def knowledge_path(*parts: str) -> Path:
    """A file or folder of the shipped ``knowledge/``: ``knowledge_path("rules", "kinship.rules")``."""
    return _package_path(KNOWLEDGE_PACKAGE, parts)


def suites_path(*parts: str) -> Path:
    """A file or folder of the shipped ``benchmarks/suites/``: ``suites_path("finance")``."""
    return _package_path(SUITES_PACKAGE, parts)


def packaged_names(folder: Path, suffix: str) -> list[str]:
    """Stems of the ``*suffix`` files directly in ``folder`` (sorted; empty if the folder is absent)."""
    return sorted(p.stem for p in folder.glob(f"*{suffix}")) if folder.is_dir() else []


def find_packaged(name_or_path: str | Path, *, folder: tuple[str, ...], suffix: str) -> Path:
    """``name_or_path`` when it is an existing path, else the shipped ``knowledge/<folder>/<name><suffix>``.

    ``kgreason rules check kinship`` thereby works from any folder; a path that exists always wins.
    """
    path = Path(name_or_path)
    if path.exists() or path.suffix == suffix or len(path.parts) > 1:
        return path
    candidate = knowledge_path(*folder) / f"{path.name}{suffix}"
    return candidate if candidate.is_file() else path
