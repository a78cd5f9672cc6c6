"""Text + structure link prediction as one score: a weighted sum of standardised scorers, then the prior.

Each part (the text bi-encoder's cosine, a KGE model's score, ...) scores every entity for a query; its scores
are standardised per query (zero mean, unit standard deviation over the finite entries), so a weight means the
same thing whatever a part's scale, then summed with the parts' weights. The neighbourhood prior
(:class:`~kgreason.models.text_link.NeighbourhoodPrior`) is applied to the sum. Weights are chosen on dev
(:func:`kgreason.training.link_fusion.choose_fusion`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from kgreason.kge.evaluate import LinkScorer
    from kgreason.models.text_link import NeighbourhoodPrior


def standardise(scores: Tensor) -> Tensor:
    """``(B, E)`` scores as per-row z-scores over their finite entries; non-finite entries stay as they are and
    a constant row becomes zeros."""
    finite = torch.isfinite(scores)  # (B, E)
    count = finite.sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1)
    clean = torch.where(finite, scores, torch.zeros_like(scores))
    mean = clean.sum(dim=1, keepdim=True) / count  # (B, 1)
    var = (torch.where(finite, scores - mean, torch.zeros_like(scores)) ** 2).sum(dim=1, keepdim=True) / count
    std = var.sqrt()  # (B, 1)
    z = (scores - mean) / torch.where(std > 0, std, torch.ones_like(std))
    return torch.where(finite, z, scores)


class FusedLinkScorer:
    """``sum_i weight_i * standardise(part_i)`` (+ the prior): a :class:`~kgreason.kge.evaluate.LinkScorer`.

    ``parts`` and ``weights`` share their names (``{"text": ..., "kge": ...}``); a part of weight 0 is not
    scored. All parts must number the entities alike.
    """

    def __init__(
        self,
        *,
        parts: Mapping[str, LinkScorer],
        weights: Mapping[str, float],
        prior: NeighbourhoodPrior | None = None,
    ) -> None:
        unknown = sorted(set(weights) - set(parts))
        if unknown:
            raise ValueError(f"weights for unknown parts {unknown}; parts: {sorted(parts)}")
        sizes = {name: part.num_entities for name, part in parts.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"parts rank different entity sets: {sizes}")
        self.parts = dict(parts)
        self.weights = {name: float(weights.get(name, 0.0)) for name in parts}
        self.prior = prior

    @property
    def num_entities(self) -> int:
        return next(iter(self.parts.values())).num_entities

    def score_all(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        """``(B, E)`` fused scores of the queries ``anchor (B,)``, ``rel (B,)``."""
        anchor, rel = anchor.cpu(), rel.cpu()
        total = torch.zeros(anchor.numel(), self.num_entities)  # (B, E)
        for name, part in self.parts.items():
            weight = self.weights[name]
            if weight != 0.0:
                total = total + weight * standardise(
                    part.score_all(anchor, rel, predict=predict).float().cpu()
                )
        return self.prior.apply(total, anchor, rel) if self.prior is not None else total
