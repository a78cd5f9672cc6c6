"""What retrieval found for one text: linked mentions, seed entities, the subgraph and the top facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kgreason.core.records import Mention

if TYPE_CHECKING:
    from torch_geometric.data import Data


@dataclass(frozen=True)
class RetrievedFact:
    """One fact of the knowledge base, as ids and as a sentence, with its similarity to the query.

    ``score`` is the inner product of unit vectors (cosine similarity), higher is closer.
    """

    triple: tuple[int, int, int]
    text: str
    score: float


@dataclass
class KnowledgeContext:
    """The knowledge retrieved for one example.

    Attributes:
        text: the text retrieval started from.
        mentions: entity mentions found in ``text`` (kgreason.kb.linker), in reading order.
        seeds: seed entity id -> link score (best candidate score over the mentions), in mention order.
        subgraph: ``torch_geometric.data.Data`` from ``kb.subgraph(seeds)`` (``edge_index``, ``edge_type``,
            ``n_id`` global ids, ``hop``, ``seed_mask``).
        facts: the top-k facts by similarity to ``text``, best first (empty when fact retrieval is off).
    """

    text: str
    mentions: list[Mention]
    seeds: dict[int, float]
    subgraph: Data
    facts: list[RetrievedFact] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (ids and scores; the subgraph as lists)."""
        graph = self.subgraph
        return {
            "text": self.text,
            "mentions": [
                {
                    "span": [m.start, m.end],
                    "surface": m.surface,
                    "candidates": [
                        {"entity": c.entity, "key": c.key, "label": c.label, "score": c.score}
                        for c in m.candidates
                    ],
                }
                for m in self.mentions
            ],
            "seeds": {str(k): v for k, v in self.seeds.items()},
            "subgraph": {
                "num_nodes": int(graph.num_nodes),
                "n_id": graph.n_id.tolist(),
                "edge_index": graph.edge_index.tolist(),
                "edge_type": graph.edge_type.tolist(),
            },
            "facts": [{"triple": list(f.triple), "text": f.text, "score": f.score} for f in self.facts],
        }
