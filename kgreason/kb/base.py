"""The knowledge-base contract: what every knowledge base gives, and defaults for all but the essentials.

A plug-in implements five members (``num_entities``, ``num_relations``, ``entity_key``, ``relation_key`` and
``triples``) and inherits the rest: labels and aliases, linking, k-hop subgraphs, verbalisation, summaries,
batch forms and persistence in kgreason's store format. Override any default to do better.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

from kgreason.core.records import DegreeStats, KBSummary, Mention
from kgreason.kb.adjacency import Adjacency

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from kgreason.kb.linker import EntityLinker
    from kgreason.kb.verbalizer import Verbalizer

#: The split that holds the knowledge when a KB has train/valid/test splits.
GRAPH_SPLIT = "train"


@runtime_checkable
class KnowledgeBaseProtocol(Protocol):
    """The structural contract; :class:`KnowledgeBase` implements it with defaults."""

    @property
    def num_entities(self) -> int: ...
    @property
    def num_relations(self) -> int: ...
    @property
    def splits(self) -> tuple[str, ...]: ...
    def entity_key(self, entity: int) -> str: ...
    def entity_label(self, entity: int) -> str: ...
    def entity_aliases(self, entity: int) -> tuple[str, ...]: ...
    def relation_key(self, relation: int) -> str: ...
    def relation_label(self, relation: int) -> str: ...
    def triples(self, split: str | None = None) -> torch.Tensor: ...
    def link(self, text: str) -> list[Mention]: ...
    def subgraph(self, seeds: Sequence[int], *, hops: int = 2, max_nodes: int | None = 200) -> Data: ...
    def verbalize(self, triples: torch.Tensor | np.ndarray | Sequence[Sequence[int]]) -> list[str]: ...
    def summary(self) -> KBSummary: ...
    def save(self, directory: str | Path) -> Path: ...


_IRI_TAIL = re.compile(r"[#/:]([^#/:>]+)/?>?$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def readable_name(key: str) -> str:
    """A readable fallback label from an id: IRI local name, ``_``/camelCase split into words.

    >>> readable_name("<http://example.org/hasMother>")
    'has mother'
    >>> readable_name("/people/person/nationality")
    'people person nationality'
    """
    text = key.strip()
    if text.startswith("<") and text.endswith(">"):
        match = _IRI_TAIL.search(text)
        text = match.group(1) if match else text.strip("<>")
    elif text.startswith('"'):
        end = text.rfind('"')
        text = text[1:end] if end > 0 else text.strip('"')
    text = _CAMEL.sub(" ", text)
    text = re.sub(r"[_/.\-\s]+", " ", text).strip()
    return text.lower() if text and not text.isupper() else (text or key)


class KnowledgeBase(abc.ABC):
    """Base class of every knowledge base, with defaults for everything but ids and triples.

    Ids are dense: entities are ``0..num_entities-1`` and relations ``0..num_relations-1``. ``triples(split)``
    returns an ``(n, 3)`` int64 tensor of ``(head, relation, tail)``; ``split=None`` means all splits.
    """

    name: str = "knowledge-base"

    # ----------------------------------------------------------------------------------- required
    @property
    @abc.abstractmethod
    def num_entities(self) -> int:
        """Number of entities."""

    @property
    @abc.abstractmethod
    def num_relations(self) -> int:
        """Number of relations."""

    @abc.abstractmethod
    def entity_key(self, entity: int) -> str:
        """The stable external id of an entity (an IRI in N-Triples form, a MID, a name)."""

    @abc.abstractmethod
    def relation_key(self, relation: int) -> str:
        """The stable external id of a relation."""

    @abc.abstractmethod
    def triples(self, split: str | None = None) -> torch.Tensor:
        """(n, 3) int64 tensor of ``(head, relation, tail)`` ids of one split, or of all splits."""

    # ----------------------------------------------------------------------------------- labels
    @property
    def splits(self) -> tuple[str, ...]:
        """Names of the triple splits (``("all",)`` for a KB without splits)."""
        return ("all",)

    def entity_label(self, entity: int) -> str:
        """Preferred name of an entity; defaults to a readable form of its key."""
        return readable_name(self.entity_key(entity))

    def entity_aliases(self, entity: int) -> tuple[str, ...]:
        """Other names of an entity (not including its label)."""
        return ()

    def entity_description(self, entity: int) -> str | None:
        """A longer text about the entity (a gloss, an abstract), when the KB has one."""
        return None

    def has_label(self, entity: int) -> bool:
        """Whether the entity has a label of its own (not one derived from its key).

        By default: whether the subclass overrides :meth:`entity_label`.
        """
        return type(self).entity_label is not KnowledgeBase.entity_label

    def relation_label(self, relation: int) -> str:
        """Readable name of a relation; defaults to a readable form of its key."""
        return readable_name(self.relation_key(relation))

    @cached_property
    def _entity_index(self) -> dict[str, int]:
        return {self.entity_key(i): i for i in range(self.num_entities)}

    @cached_property
    def _relation_index(self) -> dict[str, int]:
        return {self.relation_key(i): i for i in range(self.num_relations)}

    def entity_id(self, key: str) -> int:
        """Id of the entity whose key is ``key`` (``KeyError`` if absent)."""
        try:
            return self._entity_index[key]
        except KeyError:
            raise KeyError(f"no entity with key {key!r} in {self.name}") from None

    def relation_id(self, key: str) -> int:
        """Id of the relation whose key is ``key`` (``KeyError`` if absent)."""
        try:
            return self._relation_index[key]
        except KeyError:
            raise KeyError(f"no relation with key {key!r} in {self.name}") from None

    # ----------------------------------------------------------------------------------- graph
    def graph_triples(self) -> torch.Tensor:
        """The triples that retrieval walks: the ``train`` split when there is one, else all.

        Keeping valid/test triples out of the walk means link-prediction evaluation cannot leak through
        retrieved subgraphs.
        """
        return self.triples(GRAPH_SPLIT if GRAPH_SPLIT in self.splits else None)

    @cached_property
    def adjacency(self) -> Adjacency:
        """Both-direction CSR index of :meth:`graph_triples` (built on first use)."""
        return Adjacency(triples=self.graph_triples().numpy(), num_entities=self.num_entities)

    def subgraph(self, seeds: Sequence[int], *, hops: int = 2, max_nodes: int | None = 200) -> Data:
        """The ``hops``-hop subgraph around ``seeds`` as a ``torch_geometric.data.Data``.

        Attributes: ``edge_index`` (2, e) local, ``edge_type`` (e,), ``n_id`` (n,) global entity ids,
        ``e_id`` (e,) rows of :meth:`graph_triples`, ``hop`` (n,), ``seed_mask`` (n,) bool, ``num_nodes``.
        """
        from torch_geometric.data import Data

        sub = self.adjacency.k_hop(np.asarray(list(seeds), dtype=np.int64), hops=hops, max_nodes=max_nodes)
        hop = torch.from_numpy(sub.hop)
        return Data(
            edge_index=torch.from_numpy(sub.edge_index),
            edge_type=torch.from_numpy(sub.edge_type),
            n_id=torch.from_numpy(sub.nodes),
            e_id=torch.from_numpy(sub.edge_ids),
            hop=hop,
            seed_mask=hop == 0,
            num_nodes=int(sub.nodes.size),
        )

    def subgraph_batch(
        self, seeds: Sequence[Sequence[int]], *, hops: int = 2, max_nodes: int | None = 200
    ) -> list[Data]:
        """:meth:`subgraph` for several seed sets."""
        return [self.subgraph(s, hops=hops, max_nodes=max_nodes) for s in seeds]

    # ----------------------------------------------------------------------------------- text
    @cached_property
    def linker(self) -> EntityLinker:
        """Alias index over labels and aliases (built on first use)."""
        from kgreason.kb.linker import EntityLinker

        return EntityLinker.from_kb(self)

    def link(self, text: str) -> list[Mention]:
        """Entity mentions in ``text``, longest match first-come, ambiguous ones with scored candidates."""
        return self.linker.link(text)

    def link_batch(self, texts: Iterable[str]) -> list[list[Mention]]:
        """:meth:`link` for several texts."""
        return [self.link(t) for t in texts]

    @cached_property
    def verbalizer(self) -> Verbalizer:
        """Turns triples into sentences (relation templates when the KB has them)."""
        from kgreason.kb.verbalizer import Verbalizer

        return Verbalizer.from_kb(self)

    def verbalize(self, triples: torch.Tensor | np.ndarray | Sequence[Sequence[int]]) -> list[str]:
        """One sentence per ``(head, relation, tail)`` row."""
        return self.verbalizer.verbalize(triples)

    # ----------------------------------------------------------------------------------- reports
    def duplicates_dropped(self) -> dict[str, int]:
        """Duplicate triples dropped at load time, per split (none for a plug-in that does not count)."""
        return {}

    def summary(self, *, load_seconds: float | None = None, memory_bytes: int | None = None) -> KBSummary:
        """Sizes, relation histogram, degree statistics and data problems of this KB."""
        per_split = {s: int(self.triples(None if s == "all" else s).shape[0]) for s in self.splits}
        everything = self.triples(None)
        counts = np.bincount(everything[:, 1].numpy(), minlength=self.num_relations)  # (R,)
        order = np.argsort(-counts, kind="stable")
        histogram = [(self.relation_label(int(r)), int(counts[r])) for r in order if counts[r]]
        degree = np.bincount(everything[:, [0, 2]].reshape(-1).numpy(), minlength=self.num_entities)
        stats = DegreeStats()
        if degree.size:
            stats = DegreeStats(
                min=int(degree.min()),
                mean=float(degree.mean()),
                median=float(np.median(degree)),
                p99=float(np.percentile(degree, 99)),
                max=int(degree.max()),
                isolated=int((degree == 0).sum()),
            )
        unlabelled = sum(1 for i in range(self.num_entities) if not self.has_label(i))
        return KBSummary(
            name=self.name,
            num_entities=self.num_entities,
            num_relations=self.num_relations,
            triples_per_split=per_split,
            relation_histogram=histogram,
            degree=stats,
            self_loops=int((everything[:, 0] == everything[:, 2]).sum()),
            duplicates_dropped=self.duplicates_dropped(),
            entities_without_labels=unlabelled,
            load_seconds=load_seconds,
            memory_bytes=memory_bytes,
        )

    # ----------------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path, *, force: bool = False) -> Path:
        """Write this KB in kgreason's store format (atomically); ``TripleStore.load`` reads it back.

        An existing ``directory`` that is not a kgreason store is replaced only with ``force``.
        """
        from kgreason.kb.store import TripleStore

        return TripleStore.from_kb(self).save(directory, force=force)

    @classmethod
    def load(cls, directory: str | Path) -> KnowledgeBase:
        """Read a KB written by :meth:`save` (a :class:`~kgreason.kb.store.TripleStore`)."""
        from kgreason.kb.store import TripleStore

        return TripleStore.load(directory)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, entities={self.num_entities}, "
            f"relations={self.num_relations}, splits={self.splits})"
        )


def as_triple_array(triples: torch.Tensor | np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """(n, 3) int64 numpy view of triples given as a tensor, an array or nested sequences."""
    if isinstance(triples, torch.Tensor):
        array = triples.detach().cpu().numpy()
    else:
        array = np.asarray(triples, dtype=np.int64)
    array = array.reshape(-1, 3) if array.size else np.zeros((0, 3), dtype=np.int64)
    return array.astype(np.int64, copy=False)
