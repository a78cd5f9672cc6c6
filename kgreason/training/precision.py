"""Mixed precision: which autocast dtype to use on a device, and the gradient scaler fp16 needs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kgreason.core.errors import ConfigError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """A resolved precision setting.

    Attributes:
        name: ``fp32``, ``bf16`` or ``fp16``.
        device_type: ``cpu``, ``cuda``, ... (what ``torch.autocast`` is given).
    """

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, ``None`` for fp32."""
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def uses_scaler(self) -> bool:
        """fp16 needs loss scaling against gradient underflow; bf16 has fp32's exponent range and does not."""
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward-pass context: ``torch.autocast`` for bf16 / fp16, nothing for fp32."""
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled only for fp16 (a disabled scaler passes everything through)."""
        import torch

        return torch.amp.GradScaler(self.device_type, enabled=self.uses_scaler)


def _cuda_bf16(device: torch.device) -> bool:
    import torch

    # native bf16 arithmetic starts with compute capability 8.0 (Ampere)
    return torch.cuda.is_available() and torch.cuda.get_device_properties(device).major >= 8


def resolve_precision(precision: str, *, device: torch.device) -> Precision:
    """``auto``: bf16 on CPU and on CUDA GPUs with native bf16, else fp32; ``fp16`` needs CUDA.

    Raises:
        ConfigError: an unknown name, fp16 off CUDA, or bf16 on a GPU without bf16.
    """
    name = precision.strip().lower()
    if name not in PRECISIONS:
        raise ConfigError(f"trainer.precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    kind = device.type
    if name == "auto":
        name = "bf16" if kind == "cpu" or (kind == "cuda" and _cuda_bf16(device)) else "fp32"
    if name == "fp16" and kind != "cuda":
        raise ConfigError(
            f"trainer.precision fp16 needs a CUDA device (this run is on {device}); use bf16 or fp32"
        )
    if name == "bf16" and kind == "cuda" and not _cuda_bf16(device):
        raise ConfigError(f"trainer.precision bf16: {device} has no native bf16 support; use fp16 or fp32")
    return Precision(name=name, device_type=kind)
