"""SubgraphRetriever: link a text's entities and take the k-hop subgraph around them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kgreason.core.errors import ConfigError
from kgreason.core.records import Mention

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from kgreason.kb.base import KnowledgeBase


@dataclass
class SubgraphResult:
    """Mentions linked in a text, the seeds chosen from them and the subgraph around the seeds.

    ``seeds`` maps entity id -> link score, in order of first mention.
    """

    mentions: list[Mention]
    seeds: dict[int, float]
    subgraph: Data


def seeds_from_mentions(
    mentions: Iterable[Mention], *, min_link_score: float = 0.0, max_candidates: int = 1
) -> dict[int, float]:
    """Seed entities of ``mentions``: the top ``max_candidates`` candidates of each scoring ≥ ``min_link_score``.

    An entity mentioned twice keeps its best score.
    """
    seeds: dict[int, float] = {}
    for mention in mentions:
        for candidate in mention.candidates[:max_candidates]:
            if candidate.score < min_link_score:
                continue
            if candidate.score > seeds.get(candidate.entity, -1.0):
                seeds[candidate.entity] = float(candidate.score)
    return seeds


class SubgraphRetriever:
    """Text -> linked mentions -> seed entities -> ``hops``-hop subgraph (``kb.link`` then ``kb.subgraph``).

    Args:
        kb: the knowledge base.
        hops: subgraph radius (edges are followed in both directions).
        max_nodes: cap on subgraph nodes (``None``: no cap); a capped hop keeps its best-connected nodes.
        min_link_score: candidates scoring below this are not seeds.
        max_candidates: seeds taken per mention (best first).
    """

    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        hops: int = 2,
        max_nodes: int | None = 200,
        min_link_score: float = 0.0,
        max_candidates: int = 1,
    ) -> None:
        if hops < 0:
            raise ConfigError(f"hops: expected an integer >= 0, got {hops}")
        if max_nodes is not None and max_nodes < 1:
            raise ConfigError(f"max_nodes: expected an integer >= 1 or None, got {max_nodes}")
        if max_candidates < 1:
            raise ConfigError(f"max_candidates: expected an integer >= 1, got {max_candidates}")
        self.kb = kb
        self.hops = hops
        self.max_nodes = max_nodes
        self.min_link_score = min_link_score
        self.max_candidates = max_candidates

    def retrieve(self, text: str) -> SubgraphResult:
        """Mentions, seeds and the subgraph for one text (an empty graph when nothing links)."""
        mentions = self.kb.link(text)
        seeds = seeds_from_mentions(
            mentions, min_link_score=self.min_link_score, max_candidates=self.max_candidates
        )
        return SubgraphResult(mentions=mentions, seeds=seeds, subgraph=self.around(list(seeds)))

    def retrieve_batch(self, texts: Iterable[str]) -> list[SubgraphResult]:
        """:meth:`retrieve` for several texts."""
        return [self.retrieve(text) for text in texts]

    def around(self, seeds: Sequence[int]) -> Data:
        """The subgraph around given entity ids (no linking)."""
        return self.kb.subgraph(seeds, hops=self.hops, max_nodes=self.max_nodes)
