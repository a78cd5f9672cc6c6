"""TripleStore: building, duplicates, persistence (atomic, checksummed, memory-mapped) and k-hop subgraphs."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch

from kgreason.core.errors import KBFormatError
from kgreason.kb import TripleStore, TripleStoreBuilder
from kgreason.kb.adjacency import Adjacency


@pytest.fixture
def family() -> TripleStore:
    b = TripleStoreBuilder(name="family")
    b.add_many(
        [
            ("claire", "mother", "ada"),
            ("emile", "mother", "ada"),
            ("gabriel", "mother", "claire"),
            ("gabriel", "father", "daniel"),
            ("claire", "spouse", "daniel"),
            ("claire", "mother", "ada"),  # duplicate
            ("ada", "knows", "ada"),  # self-loop
        ],
        split="train",
    )
    b.add("emile", "sibling", "claire", split="test")
    b.add_label("ada", "Ada Moreau", preferred=True)
    b.add_label("ada", "Grandma Ada", preferred=False)
    return b.build()


def test_builder_dedupes_and_counts(family):
    assert family.splits == ("train", "test")
    assert family.triples("train").shape == (6, 3)
    assert family.triples().shape == (7, 3)
    assert family.triples().dtype == torch.int64
    assert family.duplicates_dropped() == {"train": 1}
    summary = family.summary()
    assert summary.self_loops == 1
    assert summary.duplicates_dropped == {"train": 1}
    assert summary.entities_without_labels == family.num_entities - 1
    assert summary.triples_per_split == {"train": 6, "test": 1}
    assert family.entity_label(family.entity_id("ada")) == "Ada Moreau"
    assert family.entity_aliases(family.entity_id("ada")) == ("Grandma Ada",)
    report = family.summary().to_text()
    assert "Ada Moreau" not in report and "Grandma Ada" not in report  # labels are not part of the report
    assert f"unlabelled entities {family.num_entities - 1}\n" in report  # only counted
    with pytest.raises(KeyError, match="no split 'dev'"):
        family.triples("dev")


def test_save_load_roundtrip_is_exact(family, tmp_path):
    path = family.save(tmp_path / "kb")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["splits"]["train"]["count"] == 6
    assert set(manifest["sha256"]) >= {"entities.txt", "triples.train.npy", "names.jsonl"}
    loaded = TripleStore.load(path, verify=True)
    assert loaded.entity_keys == family.entity_keys
    assert torch.equal(loaded.triples(), family.triples())
    assert loaded.entity_aliases(loaded.entity_id("ada")) == ("Grandma Ada",)
    assert loaded.duplicates_dropped() == {"train": 1}
    # saving over an existing store replaces it whole and leaves no temporary folders
    family.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]


def test_load_detects_corruption(family, tmp_path):
    path = family.save(tmp_path / "kb")
    original = (path / "entities.txt").read_text()
    (path / "entities.txt").write_text(original.replace("ada", "bob", 1))  # same size, other content
    with pytest.raises(KBFormatError, match=r"kb/entities\.txt: checksum mismatch"):
        TripleStore.load(path)  # sha256s are checked by default
    (path / "entities.txt").write_text("x\n")
    with pytest.raises(KBFormatError, match=r"kb/entities\.txt: has 2 bytes, manifest\.json says"):
        TripleStore.load(path, verify=False)  # sizes are checked even without hashing
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["bytes"]  # a manifest without sizes: the key count still disagrees
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KBFormatError, match="manifest says"):
        TripleStore.load(path, verify=False)
    with pytest.raises(KBFormatError, match="manifest.json is missing"):
        TripleStore.load(tmp_path)


def test_failed_save_leaves_nothing(tmp_path):
    b = TripleStoreBuilder(name="bad")
    b.add("a\nb", "r", "c")
    with pytest.raises(ValueError, match="line breaks"):
        b.build().save(tmp_path / "kb")
    assert list(tmp_path.iterdir()) == []


def test_subgraph_matches_networkx_ego_graph():
    rng = np.random.default_rng(0)
    n, e = 300, 900
    triples = np.stack([rng.integers(0, n, e), rng.integers(0, 5, e), rng.integers(0, n, e)], axis=1)
    adjacency = Adjacency(triples=triples, num_entities=n)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(triples[:, [0, 2]].tolist())
    for seeds in ([0], [5, 17, 42], [299]):
        sub = adjacency.k_hop(seeds, hops=2)
        expected = set()
        for s in seeds:
            expected |= set(nx.ego_graph(graph, s, radius=2))
        assert set(sub.nodes.tolist()) == expected
        # induced edges: every triple whose ends are both inside
        inside = np.isin(triples[:, 0], sub.nodes) & np.isin(triples[:, 2], sub.nodes)
        assert sorted(sub.edge_ids.tolist()) == np.flatnonzero(inside).tolist()
        heads = sub.nodes[sub.edge_index[0]]
        assert np.array_equal(heads, triples[sub.edge_ids, 0])
        assert np.array_equal(sub.edge_type, triples[sub.edge_ids, 1])
        assert set(sub.nodes[sub.hop == 0].tolist()) == set(seeds)


def test_subgraph_cap_keeps_seeds_and_best_connected(family):
    ada = family.entity_id("ada")
    data = family.subgraph([ada], hops=2, max_nodes=2)
    assert data.num_nodes == 2
    assert data.n_id[0].item() == ada and bool(data.seed_mask[0])
    # claire touches ada twice? no: 'claire mother ada' once, 'emile mother ada' once; 'ada knows ada' is a loop
    assert data.edge_index.max().item() < data.num_nodes
    full = family.subgraph([ada], hops=2, max_nodes=None)
    assert full.num_nodes == 5  # ada, claire, emile (hop 1); gabriel, daniel (hop 2); test edge excluded
    assert sorted(full.hop.tolist()) == [0, 1, 1, 2, 2]
    with pytest.raises(IndexError):
        family.subgraph([999])
