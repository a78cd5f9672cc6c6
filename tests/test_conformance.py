"""Conformance checks: they pass on sound KBs (tiny and real) and each one catches the defect it is about."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from kgreason.core.records import EntityCandidate, KBSummary, Mention
from kgreason.kb.base import KnowledgeBase
from kgreason.kb.conformance import (
    CHECKS,
    ConformanceError,
    KnowledgeBaseTestCase,
    check_knowledge_base,
    run_check,
)
from kgreason.kb.sources import open_kb

REPO = Path(__file__).resolve().parents[1]


class Tiny(KnowledgeBase):
    """A sound four-entity KB with train/test splits, written against the bare contract."""

    name = "tiny"
    keys = ("ada", "bruno", "claire", "lyon")
    labels = ("Ada Moreau", "Bruno Moreau", "Claire Moreau", "Lyon")

    def __init__(self) -> None:
        self.rows = {
            "train": torch.tensor([[0, 0, 1], [2, 1, 0], [0, 2, 3], [1, 2, 3]]),  # (4, 3)
            "test": torch.tensor([[2, 2, 3]]),  # (1, 3)
        }

    @property
    def num_entities(self) -> int:
        return 4

    @property
    def num_relations(self) -> int:
        return 3

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def entity_key(self, entity: int) -> str:
        return self.keys[entity]

    def relation_key(self, relation: int) -> str:
        return ("spouse", "mother", "livesIn")[relation]

    def entity_label(self, entity: int) -> str:
        return self.labels[entity]

    def has_label(self, entity: int) -> bool:
        return True

    def triples(self, split: str | None = None) -> torch.Tensor:
        if split is None:
            return torch.cat([self.rows["train"], self.rows["test"]])
        return self.rows[split]


class DuplicateKeys(Tiny):
    keys = ("ada", "ada", "claire", "lyon")


class EmptyKey(Tiny):
    keys = ("ada", "bruno", " ", "lyon")


class Int32Triples(Tiny):
    def triples(self, split=None):
        return super().triples(split).to(torch.int32)


class FlatTriples(Tiny):
    def triples(self, split=None):
        return super().triples(split).reshape(-1)


class OutOfRange(Tiny):
    def triples(self, split=None):
        rows = super().triples(split).clone()
        rows[-1, 2] = 9
        return rows


class MissingSplitRows(Tiny):
    def triples(self, split=None):
        return self.rows["train"] if split is None else self.rows[split]


class NonStrLabel(Tiny):
    def entity_label(self, entity):
        return entity


class LabelNotKept(Tiny):
    def has_label(self, entity):
        return False  # but entity_label is not derived from the key: save/load loses it


class WrongRoundTrip(Tiny):
    def entity_id(self, key):
        return 0


class BadSpans(Tiny):
    def link(self, text):
        if not text:
            return []
        cand = EntityCandidate(entity=0, key="ada", label="Ada Moreau", score=1.0)
        return [Mention(start=1, end=len(text), surface=text, candidates=(cand,))]


class LinksNothing(Tiny):
    def link(self, text):
        return []


class WorstFirst(Tiny):
    def link(self, text):
        found = super().link(text)
        low = EntityCandidate(entity=3, key="lyon", label="Lyon", score=0.0)
        return [Mention(m.start, m.end, m.surface, (low, *m.candidates)) for m in found]


class ForeignEdges(Tiny):
    def subgraph(self, seeds, *, hops=2, max_nodes=200):
        data = super().subgraph(seeds, hops=hops, max_nodes=max_nodes)
        if data.edge_type.numel():
            data.edge_type = (data.edge_type + 1) % self.num_relations
        return data


class IgnoresMaxNodes(Tiny):
    def subgraph(self, seeds, *, hops=2, max_nodes=200):
        return super().subgraph(seeds, hops=hops, max_nodes=None)


class DropsSeeds(Tiny):
    def subgraph(self, seeds, *, hops=2, max_nodes=200):
        return super().subgraph([3], hops=0, max_nodes=max_nodes)


class ShortVerbalize(Tiny):
    def verbalize(self, triples):
        return super().verbalize(triples)[:-1]


class WrongSummary(Tiny):
    def summary(self, **kwargs) -> KBSummary:
        summary = super().summary(**kwargs)
        summary.triples_per_split["test"] += 1
        return summary


class Crashes(Tiny):
    def verbalize(self, triples):
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("kb_class", "check", "message"),
    [
        (DuplicateKeys, "keys", "entity key 'ada' is used by ids 0 and 1"),
        (EmptyKey, "keys", r"entity_key\(2\) is empty"),
        (Int32Triples, "triples", "dtype torch.int32, expected torch.int64"),
        (FlatTriples, "triples", r"expected \(n, 3\)"),
        (OutOfRange, "triples", "entity id 9 >= num_entities 4"),
        (MissingSplitRows, "triples", "triples\\(\\) has 4 rows but the splits add up to 5"),
        (NonStrLabel, "labels", r"entity_label\(0\) is 0"),
        (WrongRoundTrip, "key_roundtrip", r"entity_id\('bruno'\) is 0, expected 1"),
        (BadSpans, "link", r"text\[1:\d+\] != surface"),
        (LinksNothing, "link", "does not give entity"),
        (WorstFirst, "link", "not best first"),
        (ForeignEdges, "subgraph", "is not a triple of graph_triples"),
        (IgnoresMaxNodes, "subgraph", "max_nodes=1 must give the seed alone"),
        (DropsSeeds, "subgraph", "are not all in n_id"),
        (ShortVerbalize, "verbalize", "sentences for"),
        (Crashes, "verbalize", "raised RuntimeError: boom"),
        (WrongSummary, "summary", "summary says 2 triples in 'test', the split has 1"),
        (LabelNotKept, "save_load", "entity 0: label changed"),
    ],
)
def test_each_check_catches_its_defect(kb_class, check, message):
    assert check_knowledge_base(Tiny()).ok  # the sound parent passes
    report = check_knowledge_base(kb_class())
    assert not report.ok
    result = next(r for r in report.results if r.name == check)
    assert not result.passed, report.to_text()
    assert re.search(message, result.detail), result.detail


def test_report_lists_every_check():
    report = check_knowledge_base(Tiny(), sample=2)
    assert [r.name for r in report.results] == list(CHECKS)
    assert report.ok and report.failed == []
    text = report.to_text()
    assert text.startswith("conformance of tiny (Tiny)")
    assert f"OK: {len(CHECKS)}/{len(CHECKS)} checks passed" in text
    broken = check_knowledge_base(ShortVerbalize())
    assert [r.name for r in broken.failed] == ["verbalize"]
    assert "FAIL  verbalize" in broken.to_text() and "FAILED: 9/10" in broken.to_text()


def test_run_check_and_raw_check():
    assert run_check("keys", DuplicateKeys()).passed is False
    with pytest.raises(ConformanceError, match="used by ids"):
        CHECKS["keys"](DuplicateKeys())
    assert issubclass(ConformanceError, AssertionError)  # pytest shows it as a failed assertion


def test_kb_without_triples_passes():
    class Lonely(Tiny):
        def __init__(self) -> None:
            self.rows = {"train": torch.zeros((0, 3), dtype=torch.int64), "test": torch.zeros((0, 3)).long()}

    assert check_knowledge_base(Lonely()).ok, check_knowledge_base(Lonely()).to_text()


# ------------------------------------------------------------------------------------------------- test case
def test_base_test_case_is_not_collected_subclasses_are():
    assert KnowledgeBaseTestCase.__test__ is False

    class Intermediate(KnowledgeBaseTestCase):
        sample = 5

    class Concrete(Intermediate):
        def make_kb(self):
            return Tiny()

    class OptedOut(KnowledgeBaseTestCase):
        __test__ = False

        def make_kb(self):
            return Tiny()

    assert Intermediate.__test__ is False  # make_kb still abstract
    assert Concrete.__test__ is True
    assert OptedOut.__test__ is False
    tests = sorted(name for name in dir(Concrete) if name.startswith("test_"))
    assert tests == sorted(f"test_{name}" for name in CHECKS)


def test_test_case_builds_once_and_raises_on_defects():
    built = []

    class Broken(KnowledgeBaseTestCase):
        def make_kb(self):
            built.append(1)
            return ShortVerbalize()

    Broken().test_counts()
    Broken().test_keys()
    with pytest.raises(ConformanceError, match="sentences for"):
        Broken().test_verbalize()
    assert len(built) == 1

    class NotAKB(KnowledgeBaseTestCase):
        def make_kb(self):
            return object()

    with pytest.raises(TypeError, match="not a KnowledgeBase"):
        NotAKB().test_counts()


def test_pytest_collects_one_test_per_check_and_reports_failures(tmp_path):
    (tmp_path / "test_plugin_kb.py").write_text(
        textwrap.dedent(
            """
            from kgreason.kb.conformance import KnowledgeBaseTestCase
            from kgreason.kb.loaders.tsv import load_tsv

            class TestGood(KnowledgeBaseTestCase):
                def make_kb(self):
                    path = __import__("pathlib").Path(__file__).with_name("kg.tsv")
                    path.write_text("ada\\tmother_of\\tclaire\\nclaire\\tmother_of\\tgabe\\n")
                    return load_tsv(path)

            class TestBroken(KnowledgeBaseTestCase):
                def make_kb(self):
                    kb = TestGood().make_kb()
                    kb.verbalize = lambda triples: []
                    return kb
            """
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plugin_kb.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed, 19 passed" in out, out
    assert "TestBroken::test_verbalize" in out and "ConformanceError" in out


# ------------------------------------------------------------------------------------------------- real data
@pytest.mark.parametrize("folder", ["kg/FB15k-237", "kg/WN18RR", "kg/umls", "kg/kinship"])
def test_real_benchmarks_conform(shared_data, folder):
    kb = open_kb(shared_data / folder, progress=False)
    report = check_knowledge_base(kb, sample=100)
    print(report.to_text())
    assert report.ok, report.to_text()


def test_rdf_example_conforms():
    kb = open_kb(REPO / "knowledge" / "examples" / "family.ttl")
    report = check_knowledge_base(kb)
    assert report.ok, report.to_text()
