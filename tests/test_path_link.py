"""The path GNN (NBFNet): edges removed for a batch, a composed relation learned from paths, the same on a
graph of unseen entities, and resuming."""

from __future__ import annotations

import pytest
import torch

from kgreason.kb.store import TripleStore
from kgreason.kge.evaluate import evaluate_link_prediction
from kgreason.models.path_link import PathGraph, PathLinkConfig, PathLinkPredictor, PathLinkScorer
from kgreason.training.path_link import PathLinkTrainingConfig, train_path_link

PARENT, GRANDPARENT, OTHER = 0, 1, 2


def family(offset: int, *, seed: int, people: int = 40) -> tuple[list[tuple[int, int, int]], list]:
    """Parent facts of random trees over ``people`` entities from ``offset``, with distractor edges; and the
    grandparent triples they imply."""
    g = torch.Generator().manual_seed(seed)
    facts, parent = [], {}
    for child in range(1, people):
        p = int(torch.randint(max(child - 6, 0), child, (1,), generator=g))
        parent[child] = p
        facts.append((offset + p, PARENT, offset + child))
    for _ in range(people // 2):
        a, b = torch.randint(people, (2,), generator=g).tolist()
        if a != b:
            facts.append((offset + a, OTHER, offset + b))
    grand = [(offset + parent[parent[c]], GRANDPARENT, offset + c) for c in parent if parent[c] in parent]
    return facts, grand


def kb_of(facts, grand, *, entities: int, name: str) -> TripleStore:
    n = len(grand)
    splits = {
        "train": torch.tensor(facts + grand[: n // 2]).numpy(),
        "valid": torch.tensor(grand[n // 2 : 3 * n // 4]).numpy(),
        "test": torch.tensor(grand[3 * n // 4 :]).numpy(),
    }
    return TripleStore(
        name=name,
        entity_keys=[f"p{i}" for i in range(entities)],
        relation_keys=["parent", "grandparent", "other"],
        split_triples=splits,
    )


def test_a_batch_reads_the_graph_without_its_own_edges():
    graph = PathGraph.from_triples(
        torch.tensor([[0, 0, 1], [1, 0, 2], [0, 1, 2]]), num_entities=3, num_relations=2
    )
    assert graph.src.tolist() == [0, 1, 0, 1, 2, 2] and graph.edge_type.tolist() == [0, 0, 1, 2, 2, 3]
    less = graph.without(torch.tensor([[1, 0, 2]]))
    kept = set(zip(less.src.tolist(), less.dst.tolist(), less.edge_type.tolist(), strict=True))
    assert kept == {(0, 1, 0), (0, 2, 1), (1, 0, 2), (2, 0, 3)}


def test_the_boundary_condition_makes_scores_depend_on_the_query():
    torch.manual_seed(0)
    model = PathLinkPredictor(config=PathLinkConfig(hidden=8, layers=2), num_relations=2)
    graph = PathGraph.from_triples(torch.tensor([[0, 0, 1], [1, 0, 2]]), num_entities=4, num_relations=2)
    scores = model(graph, torch.tensor([0, 3]), torch.tensor([0, 0]))  # (2, 4)
    assert scores.shape == (2, 4)
    assert not torch.allclose(scores[0], scores[1])  # the same candidates, another query head
    assert not torch.allclose(scores[0, 1], scores[0, 2])  # from anchor 0: one hop vs two hops
    # the boundary is the query relation's vector: another relation from the same head scores differently
    assert not torch.allclose(scores[0], model(graph, torch.tensor([0]), torch.tensor([1]))[0])


def test_the_path_gnn_learns_grandparents_and_ranks_a_graph_of_unseen_people(tmp_path):
    torch.manual_seed(0)
    facts, grand = family(0, seed=1, people=60)
    kb = kb_of(facts, grand, entities=60, name="family")
    model = PathLinkPredictor(config=PathLinkConfig(hidden=16, layers=3), num_relations=3)
    config = PathLinkTrainingConfig(epochs=6, batch_size=16, lr=5e-3, seed=0)
    result = train_path_link(model, kb, config=config, run_dir=tmp_path / "run", progress=False)
    assert result.best_dev_mrr > 0.6
    known = kb.triples("train")
    graph = PathGraph.from_triples(known, num_entities=60, num_relations=3)
    test = evaluate_link_prediction(
        PathLinkScorer(result.model, graph), triples=kb.triples("test"), filter_triples=kb.triples()
    )
    assert test.mrr > 0.6, test.mrr  # random ranking of 60 entities: about 0.08
    # inductive: other people, same relations; the graph holds their parent facts only
    other_facts, other_grand = family(0, seed=7, people=50)
    unseen = PathGraph.from_triples(torch.tensor(other_facts), num_entities=50, num_relations=3)
    ranked = evaluate_link_prediction(
        PathLinkScorer(result.model, unseen),
        triples=torch.tensor(other_grand),
        filter_triples=torch.tensor(other_facts + other_grand),
    )
    assert ranked.mrr > 0.5, ranked.mrr
    # resuming the finished run trains no further and keeps its history
    again = train_path_link(
        PathLinkPredictor(config=PathLinkConfig(hidden=16, layers=3), num_relations=3),
        kb,
        config=config,
        run_dir=tmp_path / "run",
        progress=False,
    )
    assert again.history == result.history and again.best_epoch == result.best_epoch


def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path):
    facts, grand = family(0, seed=3, people=30)
    kb = kb_of(facts, grand, entities=30, name="small")

    def run(epochs: int, folder: str):
        torch.manual_seed(0)
        model = PathLinkPredictor(config=PathLinkConfig(hidden=8, layers=2), num_relations=3)
        cfg = PathLinkTrainingConfig(epochs=epochs, batch_size=8, seed=0)
        return train_path_link(model, kb, config=cfg, run_dir=tmp_path / folder, progress=False)

    whole = run(3, "a")
    run(2, "b")
    resumed = run(3, "b")
    strip = lambda h: [{k: v for k, v in r.items() if "second" not in k} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history)
    for k, v in whole.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k]), k
    with pytest.raises(ValueError, match="hidden >= 1"):
        PathLinkConfig(hidden=0).validate()
