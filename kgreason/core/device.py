"""Which torch device kgreason computes on by default."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu`` (a GPU is never required)."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` or ``"auto"`` means :func:`default_device`."""
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return default_device()
    return torch.device(device.strip().lower() if isinstance(device, str) else device)
