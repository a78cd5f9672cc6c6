"""Batched inference outside training: a model's raw logits for an encoded dataset, in dataset order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from kgreason.tasks.base import EncodedDataset


def predict_logits(
    model: Any,
    dataset: EncodedDataset,
    *,
    collator: Any,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    desc: str = "predict",
    progress: bool = False,
) -> torch.Tensor:
    """Logits of every example, ``(N, L)`` for classification heads, rows in ``dataset`` order.

    Batches are formed from length-sorted examples (little padding) and put back in order. ``precision`` is
    the trainer's (``fp32``, ``bf16``, ``auto``...).
    """
    from tqdm.auto import tqdm

    from kgreason.core.device import resolve_device
    from kgreason.training.precision import resolve_precision
    from kgreason.training.sampler import sorted_batches

    if len(dataset) == 0:
        return torch.zeros(0, 0)
    device = resolve_device(device)
    mixed = resolve_precision(precision, device=device)
    model = model.to(device)
    batches = sorted_batches(dataset.lengths, batch_size=batch_size, rank=0, world_size=1)
    rows: list[torch.Tensor | None] = [None] * len(dataset)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for positions in tqdm(batches, desc=desc, leave=False, disable=not progress):
                batch = collator([dataset[i] for i in positions]).to(device)
                with mixed.autocast():
                    logits = model(batch).logits.float().cpu()  # (b, L)
                for position, row in zip(positions, logits, strict=True):
                    rows[position] = row
    finally:
        model.train(was_training)
    return torch.stack(rows)  # (N, L)
