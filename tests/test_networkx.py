"""networkx graphs to knowledge bases and back."""

from __future__ import annotations

import networkx as nx
import pytest

from kgreason.kb.loaders.networkx import DEFAULT_RELATION, from_networkx, to_networkx
from kgreason.kb.loaders.splits import load_split_folder
from kgreason.kb.sources import open_kb
from kgreason.kb.store import TripleStoreBuilder


def _key_triples(kb, split=None) -> list[tuple[str, str, str]]:
    return [
        (kb.entity_key(h), kb.relation_key(r), kb.entity_key(t)) for h, r, t in kb.triples(split).tolist()
    ]


def test_multidigraph_relations_labels_aliases_and_isolated_nodes():
    g = nx.MultiDiGraph()
    g.add_node("acme", label="Acme Corp", aliases=["ACME", "Acme Inc."])
    g.add_node("bolt", label="Bolt Ltd", aliases="Bolt")
    g.add_node("lonely")
    g.add_edge("acme", "bolt", relation="owns", label="owns shares of")
    g.add_edge("acme", "bolt", relation="supplies")  # parallel edge, other relation
    g.add_edge("bolt", "acme", key="guarantees")  # no attribute: a str key is the relation
    g.add_edge("bolt", "bolt")  # integer key 0: the default relation; self-loop kept
    kb = from_networkx(g, name="firms")
    assert kb.name == "firms"
    assert kb.entity_keys == ["acme", "bolt", "lonely"]
    assert kb.num_entities == 3  # the isolated node is an entity
    assert _key_triples(kb) == [
        ("acme", "owns", "bolt"),
        ("acme", "supplies", "bolt"),
        ("bolt", "guarantees", "acme"),
        ("bolt", DEFAULT_RELATION, "bolt"),
    ]
    acme = kb.entity_id("acme")
    assert kb.entity_label(acme) == "Acme Corp"
    assert kb.entity_aliases(acme) == ("ACME", "Acme Inc.")
    assert kb.entity_aliases(kb.entity_id("bolt")) == ("Bolt",)
    assert not kb.has_label(kb.entity_id("lonely"))
    assert kb.relation_label(kb.relation_id("owns")) == "owns shares of"
    assert kb.summary().self_loops == 1


def test_digraph_graph_and_custom_attributes():
    dg = nx.DiGraph()
    dg.add_edge(1, 2, kind="lends_to")
    dg.add_edge(2, 3)
    dg.nodes[1]["name"] = "One"
    kb = from_networkx(dg, relation_attr="kind", label_attr="name")
    assert _key_triples(kb) == [("1", "lends_to", "2"), ("2", DEFAULT_RELATION, "3")]
    assert kb.entity_label(kb.entity_id("1")) == "One"
    undirected = from_networkx(nx.path_graph(4))
    assert undirected.triples().shape == (3, 3)  # each undirected edge once


def test_nodes_with_the_same_string_key_are_refused():
    g = nx.Graph()
    g.add_nodes_from([1, "1"])
    with pytest.raises(ValueError, match="both have the key '1'"):
        from_networkx(g)


@pytest.fixture
def family():
    b = TripleStoreBuilder(name="family")
    b.add_many([("ada", "mother_of", "claire"), ("claire", "mother_of", "gabriel")], split="train")
    b.add("ada", "grandmother_of", "gabriel", split="test")
    b.add_label("ada", "Ada Moreau", preferred=True)
    b.add_label("ada", "Grandma", preferred=False)
    b.relation_labels[b.relation_ids["mother_of"]] = "is the mother of"
    return b.build()


def test_to_networkx_attributes_and_split_filter(family):
    g = to_networkx(family)
    assert isinstance(g, nx.MultiDiGraph)
    assert g.number_of_nodes() == 3 and g.number_of_edges() == 3
    assert g.nodes["ada"] == {"label": "Ada Moreau", "aliases": ["Grandma"]}
    assert g.nodes["claire"] == {}
    edge = g.edges["ada", "claire", "mother_of"]
    assert edge == {"relation": "mother_of", "label": "is the mother of", "split": "train"}
    only_test = to_networkx(family, split="test")
    assert list(only_test.edges(keys=True, data=True)) == [
        ("ada", "gabriel", "grandmother_of", {"relation": "grandmother_of", "label": "grandmother of"})
    ]
    assert only_test.number_of_nodes() == 3  # all entities, even those without test edges


def test_round_trip_keeps_keys_splits_and_labels(family):
    back = from_networkx(to_networkx(family), name="family")
    assert back.splits == family.splits
    for split in family.splits:
        assert _key_triples(back, split) == _key_triples(family, split)
    assert back.entity_keys == family.entity_keys
    ada = back.entity_id("ada")
    assert (back.entity_label(ada), back.entity_aliases(ada)) == ("Ada Moreau", ("Grandma",))
    assert back.relation_label(back.relation_id("mother_of")) == "is the mother of"
    assert open_kb(to_networkx(family)).num_entities == 3  # open_kb dispatches graphs to from_networkx


def test_real_umls_round_trip(shared_data):
    kb = load_split_folder(shared_data / "kg" / "umls", progress=False)
    g = to_networkx(kb)
    assert (g.number_of_nodes(), g.number_of_edges()) == (135, 5_216 + 652 + 661)
    back = from_networkx(g, name="umls")
    assert (back.num_entities, back.num_relations) == (135, 46)
    for split in ("train", "valid", "test"):
        assert sorted(_key_triples(back, split)) == sorted(_key_triples(kb, split))
    virus = back.entity_id("virus")
    assert back.entity_label(virus) == kb.entity_label(kb.entity_id("virus"))
