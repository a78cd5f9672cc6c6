"""What a kind of knowledge is worth to a link predictor: the paired change of the test MRR when it is removed.

Both rankings cover the same test triples in the same order (``keep_ranks=True``), so each query's reciprocal
rank is paired with itself and the bootstrap resamples queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from kgreason.probes.effects import ConfidenceInterval, bootstrap_ci

if TYPE_CHECKING:
    from kgreason.kge.evaluate import LinkPredictionMetrics


def reciprocal_ranks(metrics: LinkPredictionMetrics) -> torch.Tensor:
    """``(2n,)`` reciprocal ranks of the tail queries, then the head queries (needs ``keep_ranks=True``)."""
    if "tail" not in metrics.ranks or "head" not in metrics.ranks:
        raise ValueError("these metrics kept no ranks; evaluate with keep_ranks=True")
    return torch.cat([1.0 / metrics.ranks["tail"], 1.0 / metrics.ranks["head"]])


def mrr_change_ci(
    full: LinkPredictionMetrics, ablated: LinkPredictionMetrics, *, seed: int = 0
) -> ConfidenceInterval:
    """Paired bootstrap 95 % interval of ``MRR(ablated) - MRR(full)`` over the same queries."""
    a, f = reciprocal_ranks(ablated), reciprocal_ranks(full)
    if a.shape != f.shape:
        raise ValueError(f"rankings of different query sets: {tuple(a.shape)} vs {tuple(f.shape)}")
    return bootstrap_ci(a.numpy(), minus=f.numpy(), seed=seed)
