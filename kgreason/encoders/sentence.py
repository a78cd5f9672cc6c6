"""Sentence embeddings from a BERT-family encoder: pooled token states, L2-normalised.

The pooling follows the model folder's sentence-transformers description when there is one (``modules.json``
naming a ``Pooling`` module whose ``config.json`` sets the mode); all-MiniLM-L6-v2, the embedded default,
uses mean pooling over the attention mask followed by L2 normalisation. Vectors are always unit length, so an
inner product is a cosine similarity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from kgreason.core.device import resolve_device
from kgreason.core.errors import ConfigError
from kgreason.encoders.resolve import ModelSource, load_text_encoder

if TYPE_CHECKING:
    import torch

#: Pooling modes understood (sentence-transformers ``pooling_mode_*_tokens`` names).
POOLING_MODES = ("mean", "cls", "max")
#: Inputs at least this long show a progress bar when ``progress`` is not given.
PROGRESS_MIN_TEXTS = 2_000


@runtime_checkable
class TextEncoder(Protocol):
    """What retrieval needs of an encoder: a name, a dimension and unit-length vectors for texts."""

    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    def encode(self, texts: Sequence[str] | str, *, progress: bool | None = None) -> np.ndarray: ...


def read_pooling_mode(folder: str | Path) -> str:
    """The pooling mode a sentence-transformers folder declares (``"mean"`` when it declares none)."""
    folder = Path(folder)
    modules_path = folder / "modules.json"
    if not modules_path.is_file():
        return "mean"
    modules = json.loads(modules_path.read_text(encoding="utf-8"))
    for module in modules:
        if str(module.get("type", "")).endswith("Pooling"):
            config_path = folder / module.get("path", "") / "config.json"
            if not config_path.is_file():
                return "mean"
            config = json.loads(config_path.read_text(encoding="utf-8"))
            if config.get("pooling_mode_cls_token"):
                return "cls"
            if config.get("pooling_mode_max_tokens"):
                return "max"
            return "mean"
    return "mean"


class SentenceEncoder:
    """Encodes texts into unit-length vectors with a pretrained encoder.

    Args:
        model: ``None``/``"embedded"`` (packaged all-MiniLM-L6-v2), a local folder or a hub id
            (see :mod:`kgreason.encoders.resolve`).
        device: torch device; default cuda when available, else cpu.
        batch_size: texts per forward pass.
        max_length: word pieces kept per text (longer texts are truncated).
        pooling: ``"mean"``, ``"cls"`` or ``"max"``; default: what the model folder declares, else mean.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 128,
        max_length: int = 128,
        pooling: str | None = None,
    ) -> None:
        from kgreason.core.config import check_device

        if batch_size < 1:
            raise ConfigError(f"batch_size: expected an integer >= 1, got {batch_size}")
        if max_length < 2:
            raise ConfigError(f"max_length: expected an integer >= 2, got {max_length}")
        if pooling is not None and pooling not in POOLING_MODES:
            raise ConfigError(f"pooling: expected one of {', '.join(POOLING_MODES)}, got {pooling!r}")
        if isinstance(device, str):
            check_device(device, "device")  # before the model is loaded
        parts = load_text_encoder(model)
        self.source: ModelSource = parts.source
        self.tokenizer = parts.tokenizer
        self.device = resolve_device(device)
        self.model = parts.model.to(self.device).eval()
        if pooling is None:
            pooling = read_pooling_mode(self.source.path) if self.source.kind != "hub" else "mean"
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
        self.pooling = pooling
        self.batch_size = batch_size
        limit = getattr(self.model.config, "max_position_embeddings", None) or max_length
        self.max_length = min(max_length, int(limit))
        self._dim = int(self.model.config.hidden_size)

    @property
    def name(self) -> str:
        """The model's name (the hub id of the embedded default, a folder, or a hub id)."""
        return self.source.name

    @property
    def dim(self) -> int:
        """Length of the vectors."""
        return self._dim

    @property
    def identity(self) -> str:
        """Everything that decides the vectors: model, pooling and truncation (used in index fingerprints)."""
        return f"{self.name}|pooling={self.pooling}|max_length={self.max_length}|l2"

    def __repr__(self) -> str:
        return (
            f"SentenceEncoder(model={self.name!r}, dim={self.dim}, pooling={self.pooling!r}, "
            f"max_length={self.max_length}, device={str(self.device)!r})"
        )

    def encode(self, texts: Sequence[str] | str, *, progress: bool | None = None) -> np.ndarray:
        """(n, dim) float32 unit vectors, one per text (a single string gives one row).

        Texts are tokenised once, sorted by length and batched, so a batch pads to its own longest text.
        ``progress`` shows a bar; by default only for inputs of :data:`PROGRESS_MIN_TEXTS` texts or more.
        """
        import torch
        from tqdm.auto import tqdm

        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)  # (n, d)
        if n == 0:
            return out
        ids = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)  # (n,)
        order = np.argsort(-lengths, kind="stable")  # (n,) longest first
        pad_id = self.tokenizer.pad_token_id or 0
        show = n >= PROGRESS_MIN_TEXTS if progress is None else progress
        starts = range(0, n, self.batch_size)
        bar = tqdm(
            total=n, desc=f"encoding with {self.name.rsplit('/', 1)[-1]}", unit="text", disable=not show
        )
        with torch.inference_mode(), bar:
            for start in starts:
                rows = order[start : start + self.batch_size]  # (B,)
                width = int(lengths[rows[0]])
                input_ids = np.full((rows.size, width), pad_id, dtype=np.int64)  # (B, T)
                mask = np.zeros((rows.size, width), dtype=np.int64)  # (B, T)
                for j, i in enumerate(rows.tolist()):
                    input_ids[j, : lengths[i]] = ids[i]
                    mask[j, : lengths[i]] = 1
                input_t = torch.from_numpy(input_ids).to(self.device)
                mask_t = torch.from_numpy(mask).to(self.device)
                hidden = self.model(input_ids=input_t, attention_mask=mask_t).last_hidden_state  # (B, T, H)
                pooled = self._pool(hidden, mask_t)  # (B, H)
                pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)  # (B, H)
                out[rows] = pooled.cpu().numpy()
                bar.update(rows.size)
        return out

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) token states and (B, T) mask -> (B, H) pooled states."""
        import torch

        if self.pooling == "cls":
            return hidden[:, 0]  # (B, H)
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        if self.pooling == "max":
            return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).amax(dim=1)  # (B, H)
        summed = (hidden * weights).sum(dim=1)  # (B, H)
        return summed / weights.sum(dim=1).clamp(min=1e-9)  # (B, H)
