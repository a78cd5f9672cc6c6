"""Retrieval: the k-hop subgraph around a text's entities and the facts most similar to the text."""

from kgreason.core.context import KnowledgeContext, RetrievedFact
from kgreason.retrieval.facts import FactIndex, FactRetriever, IndexParams, choose_index
from kgreason.retrieval.retriever import KnowledgeRetriever
from kgreason.retrieval.subgraph import SubgraphResult, SubgraphRetriever

__all__ = [
    "FactIndex",
    "FactRetriever",
    "IndexParams",
    "KnowledgeContext",
    "KnowledgeRetriever",
    "RetrievedFact",
    "SubgraphResult",
    "SubgraphRetriever",
    "choose_index",
]
