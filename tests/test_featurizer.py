"""KnowledgeFeaturizer on the family knowledge base that ships in knowledge/examples, and story graphs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgreason.core.batch import Collator, EncodedExample
from kgreason.core.example import Example
from kgreason.kb.sources import open_kb
from kgreason.models.config import GNNConfig, ModelConfig
from kgreason.models.fused import KGReasonModel
from kgreason.models.knowledge import QUERY_KEY, KnowledgeFeaturizer, build_entity_features
from kgreason.retrieval.retriever import KnowledgeRetriever
from kgreason.tasks.base import EncodedDataset

FAMILY = Path(__file__).resolve().parents[1] / "knowledge" / "examples" / "family.ttl"
EX = "http://kgreason.org/example/family#"


@pytest.fixture(scope="module")
def family():
    return open_kb(FAMILY)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KGREASON_CACHE", str(tmp_path / "cache"))


def encoded(examples: list[Example]) -> EncodedDataset:
    """Stand-in token ids: the featurizer reads only the examples and copies the encodings."""
    items = [EncodedExample(input_ids=[101, 7 + i, 102], labels=0, index=i) for i in range(len(examples))]
    return EncodedDataset(examples=examples, encoded=items)


def entity(kb, name: str) -> int:
    return kb.entity_id(f"<{EX}{name}>")


class CountingRetriever(KnowledgeRetriever):
    """A real retriever that counts the texts it was asked about."""

    asked: list[str]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.asked = []
        original = self.subgraphs.retrieve_batch

        def counted(texts):
            texts = list(texts)
            self.asked.extend(texts)
            return original(texts)

        self.subgraphs.retrieve_batch = counted


def test_attach_sets_each_example_graph_from_the_kb(family):
    retriever = CountingRetriever(kb=family, hops=1, max_nodes=50, facts=False)
    featurizer = KnowledgeFeaturizer(retriever=retriever, variant="fused")
    assert featurizer.num_relations == family.num_relations
    texts = [
        "Ada Moreau lives in Lyon.",
        "Nothing here links.",
        "Gabe visits Ada Moreau.",
        "Ada Moreau lives in Lyon.",
    ]
    dataset = encoded([Example(text=t) for t in texts])
    attached = featurizer.attach(dataset)
    assert dataset.encoded[0].graph is None  # the input is not modified
    assert retriever.asked == texts[:3]  # the repeated text came from the cache
    first, empty, third, again = (item.graph for item in attached.encoded)
    ada, lyon, gabriel = entity(family, "ada"), entity(family, "lyon"), entity(family, "gabriel")
    expected = family.subgraph([ada, lyon], hops=1, max_nodes=50)
    assert first.n_id.tolist() == expected.n_id.tolist()
    assert {ada, lyon} == set(first.n_id[first.seed_mask].tolist())
    assert first.edge_index.tolist() == expected.edge_index.tolist()
    assert first.edge_type.tolist() == expected.edge_type.tolist()
    assert set(first.keys()) == {"edge_index", "edge_type", "n_id", "seed_mask", "num_nodes"}
    assert empty.num_nodes == 0 and empty.edge_index.shape == (2, 0)
    assert {ada, gabriel} <= set(third.n_id[third.seed_mask].tolist())
    assert again is first
    assert [item.input_ids for item in attached.encoded] == [item.input_ids for item in dataset.encoded]
    # attached graphs batch and run through a fused model (kb-sized, learned entity vectors)
    config = ModelConfig(
        variant="graph",
        num_entities=family.num_entities,
        num_relations=family.num_relations,
        node_features="learned",
        gnn=GNNConfig(hidden=16),
    )
    batch = Collator(pad_token_id=0)(attached.encoded)
    out = KGReasonModel(config)(batch)
    assert out.logits.shape == (4, 2) and out.graph_attention.shape == (int(batch.graph.num_nodes),)


def test_text_variant_attaches_nothing_and_bad_setups_fail(family):
    retriever = KnowledgeRetriever(kb=family, facts=False)
    dataset = encoded([Example(text="Ada Moreau")])
    assert KnowledgeFeaturizer(retriever=retriever, variant="text").attach(dataset) is dataset
    with pytest.raises(ValueError, match="facts=True"):
        KnowledgeFeaturizer(retriever=retriever, variant="fused_facts")
    with pytest.raises(ValueError, match="variant must be one of"):
        KnowledgeFeaturizer(retriever=retriever, variant="both")
    with pytest.raises(ValueError, match="needs a retriever"):
        KnowledgeFeaturizer(retriever=None, variant="fused")


def test_story_graphs_use_the_relation_vocabulary():
    relations = ["father", "mother", "sister"]
    featurizer = KnowledgeFeaturizer(retriever=None, variant="graph", relations=relations)
    assert featurizer.num_relations == 3
    story = Example(
        text="Ann's father is Bob. Bob's sister is Cat.",
        facts=[("Ann", "father", "Bob"), ("Bob", "sister", "Cat")],
        metadata={"query": ("Ann", "Cat")},
    )
    no_query = Example(text="Dan's mother is Eve.", facts=[("Dan", "mother", "Eve")])
    graphs = [item.graph for item in featurizer.attach(encoded([story, no_query])).encoded]
    assert graphs[0].edge_index.tolist() == [[0, 1], [1, 2]]  # Ann=0, Bob=1, Cat=2
    assert graphs[0].edge_type.tolist() == [0, 2]
    assert graphs[0].seed_mask.tolist() == [True, False, True]
    assert graphs[0].n_id.tolist() == [-1, -1, -1]  # not KB entities
    assert graphs[1].seed_mask.tolist() == [True, True]
    bad = Example(text="x", facts=[("A", "uncle", "B")], uid="s7")
    with pytest.raises(ValueError, match="example s7: fact 0 has relation 'uncle'"):
        featurizer.attach(encoded([bad]))
    with pytest.raises(ValueError, match="no facts and the featurizer has no retriever"):
        featurizer.attach(encoded([Example(text="a story without facts")]))
    # story graphs run through the graph variant: every node is an "unknown" entity
    config = ModelConfig(variant="graph", num_relations=3, node_features="learned", gnn=GNNConfig(hidden=16))
    batch = Collator(pad_token_id=0)(featurizer.attach(encoded([story, no_query])).encoded)
    assert KGReasonModel(config)(batch).logits.shape == (2, 2)


@pytest.fixture(scope="module")
def sentence_encoder():
    from kgreason.encoders.sentence import SentenceEncoder

    return SentenceEncoder()


def test_fused_facts_appends_retrieved_facts(family, sentence_encoder, tmp_path):
    retriever = KnowledgeRetriever(
        kb=family, hops=1, top_k=3, encoder=sentence_encoder, index_dir=tmp_path / "facts"
    )
    featurizer = KnowledgeFeaturizer(retriever=retriever, variant="fused_facts", max_facts=2)
    examples = [
        Example(text="Who is the mother of Claire Moreau?", label="a"),
        Example(text="Ada Moreau", text_pair="works as a physician", label="b"),
        Example(text="Where does Emile live?", choices=["Lyon", "Marseille"], label=1),
        Example(text="Ada Moreau", tokens=["Ada", "Moreau"], label=["B", "I"]),
    ]
    out = featurizer.augment(examples)
    assert examples[0].text_pair is None  # inputs untouched
    facts = [f.text for f in retriever.retrieve("Who is the mother of Claire Moreau?").facts[:2]]
    assert out[0].text_pair == " ".join(facts)
    assert (
        facts[0] == "Claire Moreau has mother Ada Moreau."
    )  # the fact that answers the question comes first
    assert out[1].text_pair == "works as a physician Ada Moreau works as physician. Ada Moreau is a person."
    assert out[2].text.startswith("Where does Emile live? ") and out[2].choices == ["Lyon", "Marseille"]
    assert out[3] is examples[3]
    assert out[1].metadata[QUERY_KEY] == "Ada Moreau works as a physician"
    # the graph is retrieved from the original query, not from the text with facts appended
    attached = featurizer.attach(encoded(out))
    ada, physician = entity(family, "ada"), entity(family, "physician")
    graph = attached.encoded[1].graph
    assert set(graph.n_id[graph.seed_mask].tolist()) == {
        ada,
        physician,
    }  # no "person" from the appended facts
    # entity name encodings for node features (frozen)
    features = build_entity_features(
        ModelConfig(node_features="names", num_entities=family.num_entities),
        kb=family,
        text_encoder=sentence_encoder,
    )
    assert features.names.shape == (family.num_entities, sentence_encoder.dim)
    torch.testing.assert_close(
        features.names[ada], torch.from_numpy(sentence_encoder.encode([family.entity_label(ada)])[0])
    )
