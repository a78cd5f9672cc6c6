"""Conformance checks of the knowledge-base contract, as a report and as a test case plug-in authors subclass.

:func:`check_knowledge_base` runs every check and returns a :class:`ConformanceReport` (``kgreason kb validate``
prints it). :class:`KnowledgeBaseTestCase` runs the same checks as pytest tests, one test per check::

    class TestMyKB(KnowledgeBaseTestCase):
        def make_kb(self):
            return MyKB()

Checks that look at single entities use a fixed-seed sample of ``sample`` of them, so a run is repeatable and
takes seconds even on large KBs.
"""

from __future__ import annotations

import abc
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kgreason.core.records import EntityCandidate, Mention
from kgreason.kb.base import KnowledgeBase


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: its name, whether it passed, and what was seen (or what went wrong)."""

    name: str
    passed: bool
    detail: str


@dataclass
class ConformanceReport:
    """All check results for one knowledge base."""

    kb_name: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def to_text(self) -> str:
        """One line per check, then a verdict."""
        width = max((len(r.name) for r in self.results), default=0)
        lines = [f"conformance of {self.kb_name}"]
        lines += [f"  {'PASS' if r.passed else 'FAIL'}  {r.name:<{width}}  {r.detail}" for r in self.results]
        passed = sum(r.passed for r in self.results)
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"{verdict}: {passed}/{len(self.results)} checks passed in {self.seconds:.2f} s")
        return "\n".join(lines)


class ConformanceError(AssertionError):
    """A knowledge base broke the contract (raised by the checks, reported by :func:`check_knowledge_base`)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def _sample_ids(count: int, sample: int, seed: int) -> np.ndarray:
    """(k,) sorted ids drawn without replacement from ``range(count)``; all of them when ``count <= sample``."""
    if count <= sample:
        return np.arange(count, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, size=sample, replace=False)).astype(np.int64)


# ----------------------------------------------------------------------------------------------- the checks
# Each check returns a one-line description of what it saw, or raises ConformanceError.


def check_counts(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """``num_entities`` / ``num_relations`` are non-negative ints; ``splits`` is a non-empty tuple of names."""
    n, r = kb.num_entities, kb.num_relations
    for name, value in (("num_entities", n), ("num_relations", r)):
        _require(isinstance(value, int) and not isinstance(value, bool), f"{name} is {type(value).__name__}")
        _require(value >= 0, f"{name} is negative ({value})")
    splits = kb.splits
    _require(
        isinstance(splits, tuple) and len(splits) > 0, f"splits must be a non-empty tuple, got {splits!r}"
    )
    _require(all(isinstance(s, str) and s for s in splits), f"split names must be non-empty str: {splits!r}")
    _require(len(set(splits)) == len(splits), f"split names repeat: {splits!r}")
    return f"{n:,} entities, {r:,} relations, splits {', '.join(splits)}"


def check_triples(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """Every split is an (n, 3) int64 tensor with ids in range (dense ids); ``triples(None)`` holds them all."""
    n, r = kb.num_entities, kb.num_relations
    total = 0
    for split in (*kb.splits, None):
        rows = kb.triples(None if split in ("all", None) else split)
        what = "triples()" if split is None else f"triples({split!r})"
        _require(isinstance(rows, torch.Tensor), f"{what} returned {type(rows).__name__}, not a torch.Tensor")
        _require(rows.dtype == torch.int64, f"{what} has dtype {rows.dtype}, expected torch.int64")
        _require(
            rows.dim() == 2 and rows.shape[1] == 3, f"{what} has shape {tuple(rows.shape)}, expected (n, 3)"
        )
        if rows.shape[0]:
            lo, hi = rows.min(dim=0).values.tolist(), rows.max(dim=0).values.tolist()
            _require(min(lo) >= 0, f"{what} holds a negative id")
            _require(max(hi[0], hi[2]) < n, f"{what}: entity id {max(hi[0], hi[2])} >= num_entities {n}")
            _require(hi[1] < r, f"{what}: relation id {hi[1]} >= num_relations {r}")
        if split is not None:
            total += int(rows.shape[0])
    everything = int(kb.triples(None).shape[0])
    _require(everything == total, f"triples() has {everything:,} rows but the splits add up to {total:,}")
    return f"{total:,} triples, ids in range in every split"


def check_keys(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """Entity and relation keys are non-empty str and unique."""
    for kind, count, key_of in (
        ("entity", kb.num_entities, kb.entity_key),
        ("relation", kb.num_relations, kb.relation_key),
    ):
        seen: dict[str, int] = {}
        for i in range(count):
            key = key_of(i)
            _require(isinstance(key, str), f"{kind}_key({i}) is {type(key).__name__}, not str")
            _require(bool(key.strip()), f"{kind}_key({i}) is empty")
            _require(key not in seen, f"{kind} key {key!r} is used by ids {seen.get(key)} and {i}")
            seen[key] = i
    return f"{kb.num_entities:,} entity and {kb.num_relations:,} relation keys unique and non-empty"


def check_labels(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """Labels are non-empty str, aliases a tuple of str, ``has_label`` a bool (sampled entities, all relations)."""
    ids = _sample_ids(kb.num_entities, sample, seed)
    for i in ids.tolist():
        label = kb.entity_label(i)
        _require(isinstance(label, str) and bool(label.strip()), f"entity_label({i}) is {label!r}")
        aliases = kb.entity_aliases(i)
        _require(isinstance(aliases, tuple), f"entity_aliases({i}) is {type(aliases).__name__}, not tuple")
        _require(
            all(isinstance(a, str) for a in aliases), f"entity_aliases({i}) holds a non-str: {aliases!r}"
        )
        _require(isinstance(kb.has_label(i), bool), f"has_label({i}) is not a bool")
    for rel in range(kb.num_relations):
        label = kb.relation_label(rel)
        _require(isinstance(label, str) and bool(label.strip()), f"relation_label({rel}) is {label!r}")
    labelled = sum(kb.has_label(i) for i in ids.tolist())
    return f"{ids.size} sampled entities ({labelled} with own labels), {kb.num_relations} relations"


def check_key_roundtrip(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """``entity_id(entity_key(i)) == i`` on a sample and ``relation_id(relation_key(r)) == r`` for all."""
    ids = _sample_ids(kb.num_entities, sample, seed)
    for i in ids.tolist():
        key = kb.entity_key(i)
        _require(kb.entity_id(key) == i, f"entity_id({key!r}) is {kb.entity_id(key)}, expected {i}")
    for rel in range(kb.num_relations):
        key = kb.relation_key(rel)
        _require(kb.relation_id(key) == rel, f"relation_id({key!r}) is {kb.relation_id(key)}, expected {rel}")
    absent = "\x00no such key\x00"
    try:
        kb.entity_id(absent)
    except KeyError:
        pass
    else:
        raise ConformanceError("entity_id of an absent key must raise KeyError")
    return f"{ids.size} entity keys and {kb.num_relations} relation keys map back to their ids"


def check_subgraph(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """``subgraph`` returns a valid ``torch_geometric`` ``Data`` whose edges are graph triples."""
    from torch_geometric.data import Data

    graph = kb.graph_triples().numpy()  # (E, 3)
    if graph.shape[0] == 0:
        _require(kb.num_entities == 0 or isinstance(kb.subgraph([0], hops=1), Data), "subgraph is not a Data")
        return "no graph triples; a lone seed gives a Data"
    rows = _sample_ids(graph.shape[0], 2, seed)
    seeds = sorted({int(graph[rows[0], 0]), int(graph[rows[-1], 2])})
    max_nodes = 40
    data = kb.subgraph(seeds, hops=2, max_nodes=max_nodes)
    _require(isinstance(data, Data), f"subgraph returned {type(data).__name__}, not torch_geometric Data")
    for name in ("edge_index", "edge_type", "n_id"):
        _require(isinstance(getattr(data, name, None), torch.Tensor), f"subgraph Data has no tensor {name!r}")
    num_nodes = int(data.num_nodes)
    edge_index, edge_type, n_id = data.edge_index, data.edge_type, data.n_id
    e = int(edge_index.shape[1]) if edge_index.dim() == 2 else -1
    _require(
        edge_index.dim() == 2 and edge_index.shape[0] == 2, f"edge_index shape {tuple(edge_index.shape)}"
    )
    _require(edge_index.dtype == torch.int64, f"edge_index dtype {edge_index.dtype}, expected torch.int64")
    _require(tuple(edge_type.shape) == (e,), f"edge_type shape {tuple(edge_type.shape)}, expected ({e},)")
    _require(tuple(n_id.shape) == (num_nodes,), f"n_id shape {tuple(n_id.shape)}, num_nodes {num_nodes}")
    _require(num_nodes <= max_nodes, f"{num_nodes} nodes returned for max_nodes={max_nodes}")
    nodes = n_id.numpy()
    _require(np.unique(nodes).size == nodes.size, "n_id repeats a node")
    _require(nodes.size == 0 or (nodes.min() >= 0 and nodes.max() < kb.num_entities), "n_id out of range")
    _require(set(seeds) <= set(nodes.tolist()), f"seeds {seeds} are not all in n_id")
    if e:
        _require(
            int(edge_index.min()) >= 0 and int(edge_index.max()) < num_nodes,
            "edge_index points past num_nodes",
        )
        types = edge_type.numpy()
        _require(types.min() >= 0 and types.max() < kb.num_relations, "edge_type out of range")
        heads, tails = nodes[edge_index[0].numpy()], nodes[edge_index[1].numpy()]  # (e,), (e,)
        near = graph[np.isin(graph[:, 0], heads)]  # (m, 3) graph triples from these heads
        known = set(map(tuple, near.tolist()))
        for triple in zip(heads.tolist(), types.tolist(), tails.tolist(), strict=True):
            _require(triple in known, f"edge {triple} (global ids) is not a triple of graph_triples()")
    one = kb.subgraph(seeds[:1], hops=1, max_nodes=1)
    _require(
        int(one.num_nodes) == 1 and one.n_id.tolist() == seeds[:1], "max_nodes=1 must give the seed alone"
    )
    return f"seeds {seeds}: {num_nodes} nodes, {e} edges, all edges are graph triples"


def check_verbalize(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """``verbalize`` returns one non-empty str per triple (and ``[]`` for none)."""
    rows = kb.triples(None)
    picked = rows[torch.from_numpy(_sample_ids(int(rows.shape[0]), sample, seed))]  # (k, 3)
    sentences = kb.verbalize(picked)
    _require(isinstance(sentences, list), f"verbalize returned {type(sentences).__name__}, not list")
    _require(len(sentences) == picked.shape[0], f"{len(sentences)} sentences for {picked.shape[0]} triples")
    _require(
        all(isinstance(s, str) and s.strip() for s in sentences), "verbalize returned an empty or non-str"
    )
    _require(kb.verbalize(torch.zeros((0, 3), dtype=torch.int64)) == [], "verbalize of no triples must be []")
    example = f"; e.g. {sentences[0]!r}" if sentences else ""
    return f"{len(sentences)} sentences{example}"


def _check_mentions(kb: KnowledgeBase, text: str, mentions: object) -> list[Mention]:
    _require(isinstance(mentions, list), f"link returned {type(mentions).__name__}, not list")
    for m in mentions:  # type: ignore[union-attr]
        _require(isinstance(m, Mention), f"link returned a {type(m).__name__}, not a Mention")
        _require(0 <= m.start < m.end <= len(text), f"span {m.start}:{m.end} is outside {text!r}")
        _require(text[m.start : m.end] == m.surface, f"text[{m.start}:{m.end}] != surface {m.surface!r}")
        _require(len(m.candidates) > 0, f"mention {m.surface!r} has no candidates")
        scores = []
        for c in m.candidates:
            _require(isinstance(c, EntityCandidate), f"candidate {c!r} is not an EntityCandidate")
            _require(0 <= c.entity < kb.num_entities, f"candidate entity {c.entity} out of range")
            _require(
                c.key == kb.entity_key(c.entity), f"candidate key {c.key!r} is not entity {c.entity}'s key"
            )
            _require(math.isfinite(c.score), f"candidate score {c.score} is not finite")
            scores.append(c.score)
        _require(scores == sorted(scores, reverse=True), f"candidates of {m.surface!r} are not best first")
    return mentions  # type: ignore[return-value]


def check_link(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """Linking a sampled entity's label finds it among the candidates, with spans that match the text."""
    from kgreason.kb.linker import alias_skip_reason

    _require(kb.link("") == [], "link('') must be []")
    ids = _sample_ids(kb.num_entities, sample, seed)
    labelled = [i for i in ids.tolist() if kb.has_label(i)] or ids.tolist()
    tried = found = 0
    for i in labelled:
        label = kb.entity_label(i)
        if alias_skip_reason(label) is not None:
            continue  # too short or stop words only: the default linker does not index it
        tried += 1
        mentions = _check_mentions(kb, label, kb.link(label))
        hit = any(c.entity == i for m in mentions for c in m.candidates)
        _require(hit, f"linking the label {label!r} of entity {i} does not give entity {i} as a candidate")
        found += 1
    sentence = " and ".join(kb.entity_label(i) for i in labelled[:3])
    _check_mentions(kb, sentence, kb.link(sentence))
    return f"{found}/{tried} sampled labels link back to their entity; spans match the text"


def check_summary(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """``summary()`` counts equal the KB's counts and triples."""
    summary = kb.summary()
    _require(summary.num_entities == kb.num_entities, f"summary says {summary.num_entities} entities")
    _require(summary.num_relations == kb.num_relations, f"summary says {summary.num_relations} relations")
    _require(
        list(summary.triples_per_split) == list(kb.splits),
        f"summary splits {list(summary.triples_per_split)} != {list(kb.splits)}",
    )
    for split, count in summary.triples_per_split.items():
        actual = int(kb.triples(None if split == "all" else split).shape[0])
        _require(count == actual, f"summary says {count} triples in {split!r}, the split has {actual}")
    total = int(kb.triples(None).shape[0])
    _require(summary.num_triples == total, f"summary says {summary.num_triples} triples, the KB has {total}")
    return f"{summary.num_triples:,} triples in {len(summary.triples_per_split)} split(s) agree"


def check_save_load(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> str:
    """``save`` then ``TripleStore.load`` keeps counts, keys, triples and labels (in a temporary folder)."""
    from kgreason.kb.store import TripleStore

    with tempfile.TemporaryDirectory(prefix="kgreason-conformance-") as tmp:
        written = kb.save(Path(tmp) / "kb")
        back = TripleStore.load(written, verify=True, mmap=False)
        _require(back.num_entities == kb.num_entities, f"{back.num_entities} entities after loading")
        _require(back.num_relations == kb.num_relations, f"{back.num_relations} relations after loading")
        _require(back.splits == kb.splits, f"splits {back.splits} after loading, {kb.splits} before")
        for i in range(kb.num_entities):
            _require(
                back.entity_key(i) == kb.entity_key(i), f"entity {i} key changed to {back.entity_key(i)!r}"
            )
        for rel in range(kb.num_relations):
            _require(back.relation_key(rel) == kb.relation_key(rel), f"relation {rel} key changed")
            _require(back.relation_label(rel) == kb.relation_label(rel), f"relation {rel} label changed")
        for split in kb.splits:
            name = None if split == "all" else split
            _require(torch.equal(back.triples(name), kb.triples(name)), f"triples of {split!r} changed")
        for i in _sample_ids(kb.num_entities, sample, seed).tolist():
            _require(back.has_label(i) == kb.has_label(i), f"entity {i}: has_label changed")
            _require(back.entity_label(i) == kb.entity_label(i), f"entity {i}: label changed")
            _require(back.entity_aliases(i) == kb.entity_aliases(i), f"entity {i}: aliases changed")
    return (
        f"round trip through {type(back).__name__} keeps keys, labels and {back.triples().shape[0]:,} triples"
    )


#: Every check, by name, in the order they run.
CHECKS: dict[str, Callable[..., str]] = {
    "counts": check_counts,
    "triples": check_triples,
    "keys": check_keys,
    "labels": check_labels,
    "key_roundtrip": check_key_roundtrip,
    "subgraph": check_subgraph,
    "verbalize": check_verbalize,
    "link": check_link,
    "summary": check_summary,
    "save_load": check_save_load,
}


def run_check(name: str, kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> CheckResult:
    """Run one check; a broken contract or any exception becomes a failed :class:`CheckResult`."""
    try:
        detail = CHECKS[name](kb, sample=sample, seed=seed)
    except ConformanceError as err:
        return CheckResult(name=name, passed=False, detail=str(err))
    except Exception as err:
        return CheckResult(name=name, passed=False, detail=f"raised {type(err).__name__}: {err}")
    return CheckResult(name=name, passed=True, detail=detail)


def check_knowledge_base(kb: KnowledgeBase, *, sample: int = 50, seed: int = 0) -> ConformanceReport:
    """Run every conformance check on ``kb``; ``sample`` entities (fixed ``seed``) for per-entity checks."""
    started = time.perf_counter()
    results = [run_check(name, kb, sample=sample, seed=seed) for name in CHECKS]
    return ConformanceReport(
        kb_name=f"{kb.name} ({type(kb).__name__})", results=results, seconds=time.perf_counter() - started
    )


class KnowledgeBaseTestCase(abc.ABC):
    """pytest test case of the knowledge-base contract: subclass it and implement :meth:`make_kb`.

    The base class is not collected (``__test__ = False``); a subclass that implements ``make_kb`` is. The KB is
    built once per class. Set ``sample`` to look at more (or fewer) entities.
    """

    __test__ = False
    sample: int = 50
    seed: int = 0

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = not getattr(cls.make_kb, "__isabstractmethod__", False)

    @abc.abstractmethod
    def make_kb(self) -> KnowledgeBase:
        """Build the knowledge base under test."""

    def knowledge_base(self) -> KnowledgeBase:
        """The KB under test, built by :meth:`make_kb` once per class."""
        cls = type(self)
        kb = cls.__dict__.get("_kgreason_kb")
        if kb is None:
            kb = self.make_kb()
            if not isinstance(kb, KnowledgeBase):
                raise TypeError(f"{cls.__name__}.make_kb returned {type(kb).__name__}, not a KnowledgeBase")
            cls._kgreason_kb = kb
        return kb

    def _check(self, name: str) -> None:
        CHECKS[name](self.knowledge_base(), sample=self.sample, seed=self.seed)

    def test_counts(self) -> None:
        self._check("counts")

    def test_triples(self) -> None:
        self._check("triples")

    def test_keys(self) -> None:
        self._check("keys")

    def test_labels(self) -> None:
        self._check("labels")

    def test_key_roundtrip(self) -> None:
        self._check("key_roundtrip")

    def test_subgraph(self) -> None:
        self._check("subgraph")

    def test_verbalize(self) -> None:
        self._check("verbalize")

    def test_link(self) -> None:
        self._check("link")

    def test_summary(self) -> None:
        self._check("summary")

    def test_save_load(self) -> None:
        self._check("save_load")
