"""Which torch device (and how many CPU threads) kgreason computes on by default."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True)
class ThreadChoice:
    """The torch thread count kept, and the best time of one probe under each count tried."""

    threads: int
    seconds: dict[int, float]


def fastest_threads(
    probe: Callable[[], object], *, candidates: Sequence[int] | None = None, repeats: int = 3
) -> ThreadChoice:
    """Time ``probe`` (one unit of the real work) under each torch thread count, keep the fastest one set.

    ``candidates`` default to 1, 2, 4, ... up to the cores this process may use. Each count runs the probe once
    to warm up, then ``repeats`` times; its best time counts (the least disturbed by other processes). On a
    small, shared machine one thread is often fastest: OpenMP threads wait on a busy core.
    """
    import torch

    cores = cpu_cores()
    counts = sorted(set(candidates or [1 << i for i in range(cores.bit_length()) if 1 << i <= cores]))
    seconds: dict[int, float] = {}
    for n in counts:
        torch.set_num_threads(n)
        probe()
        best = float("inf")
        for _ in range(max(repeats, 1)):
            began = time.perf_counter()
            probe()
            best = min(best, time.perf_counter() - began)
        seconds[n] = best
    threads = min(seconds, key=seconds.__getitem__)
    torch.set_num_threads(threads)
    return ThreadChoice(threads=threads, seconds=seconds)
