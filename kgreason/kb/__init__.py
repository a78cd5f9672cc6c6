"""The knowledge-base layer: the contract, the triple store, loaders, linking and verbalisation."""

from kgreason.core.records import EntityCandidate, KBSummary, Mention
from kgreason.kb.base import KnowledgeBase, KnowledgeBaseProtocol
from kgreason.kb.store import TripleStore, TripleStoreBuilder

__all__ = [
    "EntityCandidate",
    "KBSummary",
    "KnowledgeBase",
    "KnowledgeBaseProtocol",
    "Mention",
    "TripleStore",
    "TripleStoreBuilder",
]
