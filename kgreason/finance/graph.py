"""CompanyGraph: a domain graph of companies and the people and groups around them, with outcomes.

Every finance loader (CSV, RDF, SMEsD) and the company-graph generator return one. Nodes are companies,
people, industries and regions (one index space); edges are typed ``(head, relation, tail)`` rows; each company
row carries tabular features, news / filing sentences, lawsuits, an outcome and the split it belongs to::

    graph.nodes[i]            node key (unique)             graph.kinds[i]      index into NODE_KINDS
    graph.edges[m]            (head, relation, tail) ids    graph.relations[r]  relation name
    graph.companies[c]        node id of company row c      graph.features[c]   tabular features (F,)
    graph.labels[c]           1 default, 0 survived, -1 unknown
    graph.splits[c]           "train" | "dev" | "test" | "" (unassigned)
    graph.texts[c]            sentences about the company   graph.lawsuits[c]   its lawsuits
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from kgreason.core.errors import KGReasonError

if TYPE_CHECKING:
    from kgreason.kb.store import TripleStore

#: Node kinds, in ``CompanyGraph.kinds`` order (the ontology classes of ``knowledge/finance/finance.ttl``).
NODE_KINDS = ("Company", "Person", "Industry", "Region")
COMPANY, PERSON, INDUSTRY, REGION = range(4)
#: Outcome values of ``CompanyGraph.labels``.
DEFAULT, SURVIVED, UNKNOWN = 1, 0, -1
SPLITS = ("train", "dev", "test")


class CompanyGraphError(KGReasonError, ValueError):
    """A company graph that breaks its own invariants (duplicate ids, dangling edges, bad shapes)."""


@dataclass(frozen=True)
class Lawsuit:
    """One lawsuit of a company.

    Attributes:
        role: ``plaintiff`` or ``defendant`` (the company's side).
        cause: cause category (e.g. ``loan contract``).
        court: court level (e.g. ``grassroots``).
        outcome: ``won`` or ``lost`` (for the company).
        months_before: months between the judgement and the observation date (smaller = more recent).
    """

    role: str
    cause: str
    court: str
    outcome: str
    months_before: int


@dataclass
class CompanyGraph:
    """See the module docstring. Arrays are numpy; construct through loaders, then call :meth:`validate`.

    Shapes:
        kinds: (N,) int8 node kinds
        edges: (M, 3) int64 ``(head, relation, tail)`` node / relation ids
        edge_weight: (M,) float32 (ownership share, guarantee amount...; 1.0 when the source has none)
        companies: (C,) int64 node id of each company row
        features: (C, F) float32 tabular features (``nan`` where missing)
        labels: (C,) int8
        splits: (C,) str
        periods: (C,) int32 observation year (0 when unknown)
    """

    name: str
    nodes: list[str]
    kinds: np.ndarray
    relations: list[str]
    edges: np.ndarray
    edge_weight: np.ndarray
    companies: np.ndarray
    feature_names: list[str]
    features: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    periods: np.ndarray
    texts: list[list[str]]
    lawsuits: list[list[Lawsuit]]
    #: Where the graph came from and anything a source adds (SMEsD hyperedge names, generator's true effects).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Feature name -> +1 (risk must not fall as it grows) or -1 (must not rise); the monotone rules read it.
    monotone: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ lookups
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_companies(self) -> int:
        return int(self.companies.shape[0])

    def node_index(self) -> dict[str, int]:
        """Node key -> node id."""
        return {key: i for i, key in enumerate(self.nodes)}

    def company_rows(self) -> dict[str, int]:
        """Company key -> company row."""
        return {self.nodes[int(node)]: row for row, node in enumerate(self.companies)}

    def company_ids(self) -> list[str]:
        """Company keys in row order."""
        return [self.nodes[int(node)] for node in self.companies]

    def rows(self, split: str) -> np.ndarray:
        """Company rows of ``split`` (``train``, ``dev``, ``test``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return np.flatnonzero(self.splits == split)  # (n,)

    def labelled_rows(self, split: str) -> np.ndarray:
        """Company rows of ``split`` whose outcome is known (label 0 or 1)."""
        rows = self.rows(split)
        return rows[self.labels[rows] >= 0]  # (n,)

    def relation_id(self, name: str) -> int:
        try:
            return self.relations.index(name)
        except ValueError:
            raise KeyError(f"no relation {name!r}; relations: {', '.join(self.relations)}") from None

    def edges_of(self, relation: str) -> np.ndarray:
        """``(m, 2)`` head / tail node ids of one relation."""
        rows = self.edges[self.edges[:, 1] == self.relation_id(relation)]  # (m, 3)
        return rows[:, [0, 2]]

    # --------------------------------------------------------------------------------------- invariants
    def validate(self) -> CompanyGraph:
        """Check shapes, unique keys and edge ends; returns ``self``.

        Raises:
            CompanyGraphError: naming the first broken invariant.
        """
        n, c = len(self.nodes), int(self.companies.shape[0])
        if len(set(self.nodes)) != n:
            seen: set[str] = set()
            dup = next(k for k in self.nodes if k in seen or seen.add(k))
            raise CompanyGraphError(f"{self.name}: duplicate node id {dup!r}")
        if self.kinds.shape != (n,):
            raise CompanyGraphError(f"{self.name}: kinds has shape {self.kinds.shape}, expected ({n},)")
        if self.edges.ndim != 2 or self.edges.shape[1] != 3:
            raise CompanyGraphError(f"{self.name}: edges has shape {self.edges.shape}, expected (M, 3)")
        if self.edge_weight.shape != (self.edges.shape[0],):
            raise CompanyGraphError(f"{self.name}: edge_weight does not match edges")
        if self.edges.size:
            ends = self.edges[:, [0, 2]]
            if ends.min() < 0 or ends.max() >= n:
                raise CompanyGraphError(f"{self.name}: an edge points outside the {n} nodes")
            if self.edges[:, 1].min() < 0 or self.edges[:, 1].max() >= len(self.relations):
                raise CompanyGraphError(f"{self.name}: an edge has an unknown relation id")
        if c and (self.companies.min() < 0 or self.companies.max() >= n):
            raise CompanyGraphError(f"{self.name}: a company row points outside the nodes")
        if c and np.any(self.kinds[self.companies] != COMPANY):
            raise CompanyGraphError(f"{self.name}: a company row points at a node that is not a Company")
        if len(np.unique(self.companies)) != c:
            raise CompanyGraphError(f"{self.name}: a company node appears in two rows")
        if self.features.shape != (c, len(self.feature_names)):
            raise CompanyGraphError(
                f"{self.name}: features has shape {self.features.shape}, expected ({c}, {len(self.feature_names)})"
            )
        for attr in ("labels", "splits", "periods"):
            if getattr(self, attr).shape != (c,):
                raise CompanyGraphError(f"{self.name}: {attr} must have one entry per company ({c})")
        if len(self.texts) != c or len(self.lawsuits) != c:
            raise CompanyGraphError(f"{self.name}: texts and lawsuits need one list per company ({c})")
        bad = set(np.unique(self.labels).tolist()) - {DEFAULT, SURVIVED, UNKNOWN}
        if bad:
            raise CompanyGraphError(f"{self.name}: labels must be 1, 0 or -1, found {sorted(bad)}")
        unknown_split = set(np.unique(self.splits).tolist()) - {*SPLITS, ""}
        if unknown_split:
            raise CompanyGraphError(f"{self.name}: unknown split names {sorted(unknown_split)}")
        for name in self.monotone:
            if name not in self.feature_names:
                raise CompanyGraphError(f"{self.name}: monotone feature {name!r} is not a feature")
        return self

    # ----------------------------------------------------------------------------------------- editing
    def with_edges(self, edges: np.ndarray, edge_weight: np.ndarray | None = None) -> CompanyGraph:
        """A copy with other edges (interventions: drop, add, rewire)."""
        weight = np.ones(len(edges), dtype=np.float32) if edge_weight is None else edge_weight
        return replace(self, edges=np.asarray(edges, dtype=np.int64).reshape(-1, 3), edge_weight=weight)

    def with_labels(self, labels: np.ndarray) -> CompanyGraph:
        """A copy with other outcomes (e.g. "if its guarantor defaulted")."""
        return replace(self, labels=np.asarray(labels, dtype=np.int8))

    def with_features(self, features: np.ndarray) -> CompanyGraph:
        return replace(self, features=np.asarray(features, dtype=np.float32))

    # ------------------------------------------------------------------------------------- conversions
    def to_triple_store(self) -> TripleStore:
        """The graph as a :class:`~kgreason.kb.store.TripleStore` (entity keys = node keys)."""
        from kgreason.kb.store import TripleStoreBuilder

        builder = TripleStoreBuilder(name=self.name)
        for key in self.nodes:
            builder.entity(key)
        for name in self.relations:
            builder.relation(name)
        rows = builder.split_rows("train")
        rows.extend(int(v) for v in self.edges.reshape(-1))
        return builder.build()

    def summary(self) -> dict[str, Any]:
        kinds = {name: int((self.kinds == i).sum()) for i, name in enumerate(NODE_KINDS)}
        per_relation = np.bincount(self.edges[:, 1], minlength=len(self.relations)) if self.edges.size else []
        return {
            "name": self.name,
            "nodes": kinds,
            "edges": int(self.edges.shape[0]),
            "relations": {r: int(k) for r, k in zip(self.relations, per_relation, strict=False)},
            "companies": self.num_companies,
            "features": list(self.feature_names),
            "labels": {
                split or "unassigned": {
                    "default": int(((self.splits == split) & (self.labels == DEFAULT)).sum()),
                    "survived": int(((self.splits == split) & (self.labels == SURVIVED)).sum()),
                }
                for split in [*SPLITS, ""]
                if (self.splits == split).any()
            },
            "with_text": int(sum(1 for t in self.texts if t)),
            "with_lawsuits": int(sum(1 for s in self.lawsuits if s)),
        }


def empty_arrays(num_companies: int, num_features: int) -> dict[str, np.ndarray]:
    """Default per-company arrays for a loader to fill in (labels unknown, no split, no period)."""
    return {
        "features": np.full((num_companies, num_features), np.nan, dtype=np.float32),
        "labels": np.full(num_companies, UNKNOWN, dtype=np.int8),
        "splits": np.full(num_companies, "", dtype=object),
        "periods": np.zeros(num_companies, dtype=np.int32),
    }


def lawsuit_counts(lawsuits: Sequence[Lawsuit], *, within_months: int | None = None) -> dict[str, int]:
    """Counts a risk model reads from a company's lawsuits: total, as defendant, lost, lost as defendant."""
    recent = [s for s in lawsuits if within_months is None or s.months_before <= within_months]
    return {
        "lawsuits": len(recent),
        "lawsuits_defendant": sum(s.role == "defendant" for s in recent),
        "lawsuits_lost": sum(s.outcome == "lost" for s in recent),
        "lawsuits_lost_defendant": sum(s.role == "defendant" and s.outcome == "lost" for s in recent),
    }
