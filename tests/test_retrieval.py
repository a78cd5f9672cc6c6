"""Retrieval: subgraphs around linked entities, faiss fact retrieval (flat, HNSW, IVF), index persistence."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from kgreason.encoders.sentence import SentenceEncoder
from kgreason.kb import TripleStore, TripleStoreBuilder
from kgreason.retrieval import (
    FactIndex,
    FactRetriever,
    KnowledgeContext,
    KnowledgeRetriever,
    SubgraphRetriever,
    choose_index,
)
from kgreason.retrieval.facts import STORE_SUBDIR, fingerprint_facts

PEOPLE = {
    "alice": "Alice Smith",
    "bob": "Bob Smith",
    "carol": "Carol Smith",
    "david": "David Jones",
    "emma": "Emma Jones",
    "frank": "Frank Jones",
}
PLACES = {"london": "London", "paris": "Paris", "oslo": "Oslo", "rome": "Rome"}
TEMPLATES = {
    "hasMother": "{tail} is the mother of {head}.",
    "hasFather": "{tail} is the father of {head}.",
    "hasSpouse": "{head} is married to {tail}.",
    "livesIn": "{head} lives in {tail}.",
    "bornIn": "{head} was born in {tail}.",
}
FACTS = [
    ("carol", "hasMother", "alice"),
    ("carol", "hasFather", "bob"),
    ("alice", "hasSpouse", "bob"),
    ("frank", "hasMother", "emma"),
    ("frank", "hasFather", "david"),
    ("emma", "hasSpouse", "david"),
    ("carol", "hasSpouse", "frank"),
    ("alice", "livesIn", "london"),
    ("bob", "livesIn", "london"),
    ("carol", "livesIn", "paris"),
    ("frank", "livesIn", "paris"),
    ("david", "livesIn", "oslo"),
    ("emma", "bornIn", "rome"),
]


def family_kb(
    extra: list[tuple[str, str, str]] | None = None, *, alice_label: str = "Alice Smith"
) -> TripleStore:
    """A 10-entity family graph with labels, aliases and relation templates."""
    b = TripleStoreBuilder(name="family10")
    b.add_many(FACTS + (extra or []), split="train")
    b.add("emma", "livesIn", "oslo", split="test")  # held out: not walked, not indexed
    for key, label in {**PEOPLE, **PLACES}.items():
        b.add_label(key, alice_label if key == "alice" else label, preferred=True)
    b.add_label("alice", "Grandma", preferred=False)
    b.add_label("emma", "Grandma", preferred=False)
    for relation, template in TEMPLATES.items():
        b.relation_templates[b.relation(relation)] = template
    return b.build()


class CountingEncoder:
    """Wraps an encoder and counts the texts it encodes."""

    def __init__(self, inner: SentenceEncoder) -> None:
        self.inner = inner
        self.texts = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def identity(self) -> str:
        return self.inner.identity

    def encode(self, texts, *, progress=None):
        texts = [texts] if isinstance(texts, str) else list(texts)
        self.texts += len(texts)
        return self.inner.encode(texts, progress=progress)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(device="cpu")


@pytest.fixture
def kb() -> TripleStore:
    return family_kb()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KGREASON_CACHE", str(tmp_path / "cache"))


def eid(kb: TripleStore, key: str) -> int:
    return kb.entity_id(key)


# ---------------------------------------------------------------------------------------------- subgraphs
def test_subgraph_around_a_linked_entity_matches_networkx(kb):
    result = SubgraphRetriever(kb=kb, hops=2, max_nodes=None).retrieve("Where does Alice Smith live?")
    assert [m.surface for m in result.mentions] == ["Alice Smith"]
    alice = eid(kb, "alice")
    assert result.seeds == {alice: 1.0}
    graph = result.subgraph
    assert int(graph.n_id[0]) == alice and graph.seed_mask.tolist()[0] and graph.seed_mask.sum() == 1
    # independent check: undirected ego graph of radius 2 over the train triples only
    g = nx.MultiDiGraph()
    for h, r, t in kb.triples("train").tolist():
        g.add_edge(h, t, key=r)
    ego = nx.ego_graph(g, alice, radius=2, undirected=True)
    assert set(graph.n_id.tolist()) == set(ego.nodes)
    got = {
        (int(graph.n_id[h]), int(r), int(graph.n_id[t]))
        for (h, t), r in zip(graph.edge_index.t().tolist(), graph.edge_type.tolist(), strict=True)
    }
    assert got == {(h, r, t) for h, t, r in ego.edges(keys=True)}
    # the held-out test triple (emma livesIn oslo) is not walked
    assert (eid(kb, "emma"), kb.relation_id("livesIn"), eid(kb, "oslo")) not in got


def test_hops_and_node_cap(kb):
    one = SubgraphRetriever(kb=kb, hops=1, max_nodes=None).retrieve("Tell me about Bob Smith.").subgraph
    bob = eid(kb, "bob")
    assert set(one.n_id.tolist()) == {bob, eid(kb, "alice"), eid(kb, "carol"), eid(kb, "london")}
    assert one.hop.max() == 1
    capped = SubgraphRetriever(kb=kb, hops=3, max_nodes=3).retrieve("Tell me about Bob Smith.").subgraph
    assert capped.num_nodes == 3 and int(capped.n_id[0]) == bob


def test_ambiguous_alias_link_scores_and_thresholds(kb):
    text = "Is Grandma in Paris?"
    default = SubgraphRetriever(kb=kb).retrieve(text)
    grandma = default.mentions[0]
    assert grandma.surface == "Grandma" and {c.entity for c in grandma.candidates} == {
        eid(kb, "alice"),
        eid(kb, "emma"),
    }
    assert len(default.seeds) == 2  # best Grandma candidate and Paris
    both = SubgraphRetriever(kb=kb, max_candidates=2).retrieve(text)
    assert set(both.seeds) == {eid(kb, "alice"), eid(kb, "emma"), eid(kb, "paris")}
    strict = SubgraphRetriever(kb=kb, min_link_score=0.9, max_candidates=2).retrieve(text)
    assert set(strict.seeds) == {eid(kb, "paris")}  # Grandma candidates score < 0.9 each


def test_no_mention_gives_an_empty_graph(kb):
    result = SubgraphRetriever(kb=kb).retrieve("Nothing to see here.")
    assert result.mentions == [] and result.seeds == {}
    assert result.subgraph.num_nodes == 0 and result.subgraph.edge_index.shape == (2, 0)
    with pytest.raises(ValueError, match="hops"):
        SubgraphRetriever(kb=kb, hops=-1)


def test_subgraph_retriever_on_fb15k237(shared_data):
    from kgreason.kb.sources import open_kb

    kb = open_kb(shared_data / "kg" / "FB15k-237")
    result = SubgraphRetriever(kb=kb, hops=1, max_nodes=None).retrieve("Where was Barack Obama born?")
    (obama,) = result.seeds
    assert kb.entity_label(obama) == "Barack Obama"
    train = kb.triples("train").numpy()
    touching = train[(train[:, 0] == obama) | (train[:, 2] == obama)]
    assert set(result.subgraph.n_id.tolist()) == set(touching[:, [0, 2]].ravel().tolist()) | {obama}
    capped = SubgraphRetriever(kb=kb, hops=2, max_nodes=200).retrieve("Where was Barack Obama born?")
    assert capped.subgraph.num_nodes == 200


# ---------------------------------------------------------------------------------------------- facts
def test_choose_index():
    assert choose_index(10).kind == "flat"
    assert choose_index(60_000).kind == "hnsw"
    assert choose_index(100, hnsw_threshold=50).kind == "hnsw"
    assert choose_index(0, index_type="hnsw").kind == "flat"
    ivf = choose_index(1_000_000, index_type="ivf")
    assert ivf.kind == "ivf" and ivf.ivf_nlist == 1000
    assert choose_index(200, index_type="IVF").ivf_nlist == 5  # at most n / 39 lists
    with pytest.raises(ValueError, match="index_type must be one of"):
        choose_index(10, index_type="annoy")


def test_relevant_fact_comes_first_and_index_is_reused(kb, encoder, tmp_path):
    counting = CountingEncoder(encoder)
    first = FactRetriever(kb=kb, encoder=counting, index_dir=tmp_path / "idx")
    n = kb.triples("train").shape[0]
    assert first.report.built and counting.texts == n and len(first) == n
    top = first.search("Where does Alice Smith live?", k=3)
    assert top[0].triple == (eid(kb, "alice"), kb.relation_id("livesIn"), eid(kb, "london"))
    assert top[0].text == "Alice Smith lives in London."
    assert top[0].score > top[1].score >= top[2].score
    batch = first.search(["Who is Frank Jones's mother?", "Where was Emma Jones born?"], k=2)
    assert batch[0][0].text == "Emma Jones is the mother of Frank Jones."
    assert batch[1][0].text == "Emma Jones was born in Rome."
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["num_facts"] == n and meta["dim"] == 384 and meta["params"]["kind"] == "flat"
    assert meta["fingerprint"] == first.fingerprint and meta["encoder"] == encoder.identity
    assert not list((tmp_path / "idx").glob("*.tmp"))

    counting.texts = 0
    second = FactRetriever(kb=family_kb(), encoder=counting, index_dir=tmp_path / "idx")
    assert not second.report.built and second.report.reason == "reused"
    assert counting.texts == 0  # nothing re-encoded
    assert second.search("Where does Alice Smith live?", k=3) == top
    assert counting.texts == 1  # only the query


def test_fingerprint_change_rebuilds(encoder, tmp_path):
    counting = CountingEncoder(encoder)
    FactRetriever(kb=family_kb(), encoder=counting, index_dir=tmp_path)
    grown = family_kb([("emma", "livesIn", "rome")])
    counting.texts = 0
    again = FactRetriever(kb=grown, encoder=counting, index_dir=tmp_path)
    assert again.report.built and "fingerprint" in again.report.reason
    assert counting.texts == grown.triples("train").shape[0]
    # same triples, another label: the sentences change, so the index must too
    relabelled = family_kb([("emma", "livesIn", "rome")], alice_label="Alicia Smith")
    assert FactRetriever(kb=relabelled, encoder=counting, index_dir=tmp_path).report.built
    assert fingerprint_facts(np.zeros((1, 3)), ["a"], "m") != fingerprint_facts(np.zeros((1, 3)), ["a"], "m2")


def test_default_locations_store_then_cache(encoder, tmp_path):
    store = family_kb().save(tmp_path / "store")
    loaded = TripleStore.load(store)
    beside = FactRetriever(kb=loaded, encoder=encoder)
    assert beside.report.directory == store / STORE_SUBDIR / beside.fingerprint
    assert (beside.report.directory / "index.faiss").is_file()
    assert not FactRetriever(kb=TripleStore.load(store), encoder=encoder).report.built
    cached = FactRetriever(kb=family_kb(), encoder=encoder)  # built in memory: no folder of its own
    assert cached.report.directory == tmp_path / "cache" / "index" / cached.fingerprint
    # a store whose index folder cannot be created falls back to the cache
    other = family_kb([("bob", "bornIn", "rome")]).save(tmp_path / "store2")
    (other / STORE_SUBDIR).write_text("not a folder")
    fallback = FactRetriever(kb=TripleStore.load(other), encoder=encoder)
    assert fallback.report.directory.parent == tmp_path / "cache" / "index"


def test_hnsw_and_ivf_paths(kb, encoder, tmp_path):
    import faiss

    hnsw = FactRetriever(kb=kb, encoder=encoder, index_dir=tmp_path / "h", hnsw_threshold=10, ef_search=32)
    assert hnsw.params.kind == "hnsw" and isinstance(hnsw.index.index, faiss.IndexHNSWFlat)
    assert hnsw.index.index.metric_type == faiss.METRIC_INNER_PRODUCT
    flat = FactRetriever(kb=kb, encoder=encoder, save=False)
    query = "Where does Alice Smith live?"
    assert [f.triple for f in hnsw.search(query, k=5)] == [f.triple for f in flat.search(query, k=5)]
    reloaded = FactIndex.load(tmp_path / "h")
    assert isinstance(reloaded.index, faiss.IndexHNSWFlat) and reloaded.index.hnsw.efSearch == 32
    # another index type under the same folder is a rebuild, not a silent reuse
    ivf = FactRetriever(kb=kb, encoder=encoder, index_dir=tmp_path / "h", index_type="ivf")
    assert ivf.report.built and "parameters changed" in ivf.report.reason
    assert ivf.search(query, k=1)[0].triple == flat.search(query, k=1)[0].triple
    assert len(flat.search(query, k=100)) == len(flat)  # k larger than the index


def test_empty_kb_returns_no_facts(encoder):
    b = TripleStoreBuilder(name="empty")
    b.entity("lonely")
    empty = FactRetriever(kb=b.build(), encoder=encoder, save=False)
    assert len(empty) == 0 and empty.search("anything") == [] and empty.search(["a", "b"]) == [[], []]


# ---------------------------------------------------------------------------------------------- together
def test_knowledge_retriever_combines_both(kb, encoder, tmp_path):
    retriever = KnowledgeRetriever(kb=kb, hops=1, max_nodes=50, top_k=2, encoder=encoder, index_dir=tmp_path)
    context = retriever.retrieve("Where does Carol Smith live?")
    assert isinstance(context, KnowledgeContext)
    assert context.seeds == {eid(kb, "carol"): 1.0}
    assert context.facts[0].text == "Carol Smith lives in Paris." and len(context.facts) == 2
    assert context.subgraph.num_nodes == 5  # carol, alice, bob, frank, paris
    payload = json.loads(json.dumps(context.to_dict()))
    assert payload["facts"][0]["text"] == "Carol Smith lives in Paris."
    batch = retriever.retrieve_batch(["Where does Carol Smith live?", "Who is David Jones married to?"])
    assert [(f.triple, f.text) for f in batch[0].facts] == [(f.triple, f.text) for f in context.facts]
    assert batch[0].facts[0].score == pytest.approx(context.facts[0].score, abs=1e-5)
    assert batch[1].facts[0].text == "Emma Jones is married to David Jones."


def test_knowledge_retriever_without_facts_loads_no_encoder(kb):
    retriever = KnowledgeRetriever(kb=kb, facts=False)
    context = retriever.retrieve("Where does Alice Smith live?")
    assert context.facts == [] and context.subgraph.num_nodes > 1
    assert "facts" not in retriever.__dict__  # the fact index was never built
    with pytest.raises(ValueError, match="top_k"):
        KnowledgeRetriever(kb=kb, top_k=0)
