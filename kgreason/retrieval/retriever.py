"""KnowledgeRetriever: the subgraph around a text's entities and the facts most similar to it, together."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from kgreason.core.context import KnowledgeContext
from kgreason.core.errors import ConfigError
from kgreason.retrieval.subgraph import SubgraphRetriever

if TYPE_CHECKING:
    from kgreason.encoders.sentence import TextEncoder
    from kgreason.kb.base import KnowledgeBase
    from kgreason.retrieval.facts import FactRetriever


class KnowledgeRetriever:
    """Text -> :class:`~kgreason.core.context.KnowledgeContext` (mentions, seeds, subgraph, facts).

    The fact index is built (or loaded) on first use, so a retriever with ``facts=False`` never loads an
    encoder.

    Args:
        kb: the knowledge base.
        hops: subgraph radius.
        max_nodes: cap on subgraph nodes (``None``: no cap).
        top_k: facts returned per text.
        facts: retrieve facts (needs an encoder and a faiss index).
        encoder: the sentence encoder for facts and queries (default: the embedded encoder).
        min_link_score: candidates scoring below this are not seeds.
        index_type: ``auto``, ``flat``, ``hnsw`` or ``ivf`` (see :mod:`kgreason.retrieval.facts`).
        index_dir: where to keep the fact index (default: beside the store, else the cache).
    """

    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        hops: int = 2,
        max_nodes: int | None = 200,
        top_k: int = 5,
        facts: bool = True,
        encoder: TextEncoder | None = None,
        min_link_score: float = 0.0,
        index_type: str = "auto",
        index_dir: str | Path | None = None,
    ) -> None:
        from kgreason.core.config import INDEX_TYPES

        if top_k < 1:
            raise ConfigError(f"top_k: expected an integer >= 1, got {top_k}")
        if str(index_type).lower() not in INDEX_TYPES:
            raise ConfigError(f"index_type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}")
        self.kb = kb
        self.subgraphs = SubgraphRetriever(
            kb=kb, hops=hops, max_nodes=max_nodes, min_link_score=min_link_score
        )
        self.top_k = top_k
        self.use_facts = facts
        self._encoder = encoder
        self._index_type = index_type
        self._index_dir = index_dir

    @cached_property
    def facts(self) -> FactRetriever:
        """The fact retriever (its index is built or loaded here, on first use)."""
        from kgreason.retrieval.facts import FactRetriever

        return FactRetriever(
            kb=self.kb, encoder=self._encoder, index_dir=self._index_dir, index_type=self._index_type
        )

    def retrieve(self, text: str) -> KnowledgeContext:
        """Everything retrieved for one text."""
        return self.retrieve_batch([text])[0]

    def retrieve_batch(self, texts: Iterable[str]) -> list[KnowledgeContext]:
        """:meth:`retrieve` for several texts; their queries are encoded in one batch."""
        texts = list(texts)
        found = self.subgraphs.retrieve_batch(texts)
        facts = self.facts.search(texts, k=self.top_k) if self.use_facts and texts else [[] for _ in texts]
        return [
            KnowledgeContext(
                text=text, mentions=sub.mentions, seeds=sub.seeds, subgraph=sub.subgraph, facts=hits
            )
            for text, sub, hits in zip(texts, found, facts, strict=True)
        ]
