"""Choosing a fused link scorer's weights and neighbourhood prior on dev triples.

Every (part weights, prior) of a small grid ranks the same dev triples with the filtered evaluator; the best
dev MRR wins. Part scores are computed once per dev batch and reused across the grid (:class:`MemoScorer`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from kgreason.models.link_fusion import FusedLinkScorer
from kgreason.models.text_link import NeighbourhoodPrior

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase
    from kgreason.kge.evaluate import LinkScorer

#: (hops, weight in standard deviations of the fused score) tried on dev; (0, 0): no prior but the anchor rule.
PRIOR_GRID: tuple[tuple[int, float], ...] = ((0, 0.0), (1, 0.5), (1, 1.0), (1, 2.0), (2, 0.5), (2, 1.0))


class MemoScorer:
    """A scorer that remembers its last answers: the evaluator asks the same batches for every grid point."""

    def __init__(self, part: LinkScorer) -> None:
        self.part = part
        self._memo: dict[tuple[str, bytes, bytes], Tensor] = {}

    @property
    def num_entities(self) -> int:
        return self.part.num_entities

    def score_all(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        key = (predict, anchor.cpu().numpy().tobytes(), rel.cpu().numpy().tobytes())
        if key not in self._memo:
            self._memo[key] = self.part.score_all(anchor, rel, predict=predict).float().cpu()  # (B, E)
        return self._memo[key]


def convex_grid(names: Sequence[str], *, steps: int = 10) -> list[dict[str, float]]:
    """Weights on the simplex in steps of ``1 / steps`` (two parts, 10 steps: 0.0/1.0, 0.1/0.9, ...)."""
    grid = []
    for combo in itertools.product(range(steps + 1), repeat=len(names)):
        if sum(combo) == steps:
            grid.append({n: c / steps for n, c in zip(names, combo, strict=True)})
    return grid


@dataclass(frozen=True, kw_only=True)
class FusionChoice:
    """The chosen weights and prior, their dev MRR, and every grid point tried."""

    weights: dict[str, float]
    hops: int
    prior_weight: float
    dev_mrr: float
    tried: list[dict[str, Any]] = field(default_factory=list)

    def scorer(self, parts: Mapping[str, LinkScorer], *, known: Tensor, num_entities: int) -> FusedLinkScorer:
        """The fused scorer of this choice over ``parts``, the prior built from ``known (n, 3)``."""
        prior = NeighbourhoodPrior.from_triples(
            known, num_entities=num_entities, hops=self.hops, weight=self.prior_weight
        )
        return FusedLinkScorer(parts=parts, weights=self.weights, prior=prior)


def choose_fusion(
    parts: Mapping[str, LinkScorer],
    kb: KnowledgeBase,
    *,
    known: str = "train",
    split: str = "valid",
    max_triples: int = 500,
    weights: Sequence[Mapping[str, float]] | None = None,
    priors: Sequence[tuple[int, float]] = PRIOR_GRID,
    seed: int = 0,
) -> FusionChoice:
    """The grid point with the best filtered MRR on (at most ``max_triples`` of) ``kb``'s ``split`` triples;
    the prior is built from the ``known`` split. ``weights`` default to :func:`convex_grid` over the parts."""
    from kgreason.kge.evaluate import rank_split

    triples = kb.triples(split)  # (n, 3)
    if max_triples and len(triples) > max_triples:
        pick = torch.randperm(len(triples), generator=torch.Generator().manual_seed(seed))[:max_triples]
        triples = triples[pick.sort().values]
    memo = {name: MemoScorer(part) for name, part in parts.items()}
    base = NeighbourhoodPrior.from_triples(kb.triple_array(known), num_entities=kb.num_entities)
    tried: list[dict[str, Any]] = []
    for point in weights or convex_grid(list(parts)):
        for hops, prior_weight in priors:
            scorer = FusedLinkScorer(
                parts=memo, weights=point, prior=base.with_weight(hops=hops, weight=prior_weight)
            )
            metrics = rank_split(scorer, kb, triples=triples, batch_size=256)
            tried.append(
                {"weights": dict(point), "hops": hops, "prior_weight": prior_weight, "dev_mrr": metrics.mrr}
            )
    best = max(tried, key=lambda t: t["dev_mrr"])
    return FusionChoice(
        weights=best["weights"],
        hops=best["hops"],
        prior_weight=best["prior_weight"],
        dev_mrr=best["dev_mrr"],
        tried=tried,
    )
