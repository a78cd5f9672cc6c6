"""Text + structure fusion: per-query standardisation, the fused scorer, and weights chosen on dev."""

from __future__ import annotations

import pytest
import torch

from kgreason.kb.store import TripleStore
from kgreason.kge.evaluate import evaluate_link_prediction
from kgreason.models.link_fusion import FusedLinkScorer, standardise
from kgreason.training.link_fusion import MemoScorer, choose_fusion, convex_grid


def test_standardise_is_a_per_row_z_score_over_finite_entries():
    scores = torch.tensor([[1.0, 2.0, 3.0, float("-inf")], [4.0, 4.0, 4.0, 4.0]])
    z = standardise(scores)
    std = (2.0 / 3.0) ** 0.5
    assert torch.allclose(z[0, :3], torch.tensor([-1.0, 0.0, 1.0]) / std)
    assert z[0, 3] == float("-inf")
    assert torch.equal(z[1], torch.zeros(4))


class Table:
    """Fixed (E,) scores per (predict, anchor); counts its calls."""

    def __init__(self, rows: dict[tuple[str, int], list[float]], num_entities: int) -> None:
        self.rows, self.num_entities, self.calls = rows, num_entities, 0

    def score_all(self, anchor, rel, *, predict):
        self.calls += 1
        return torch.tensor([self.rows[(predict, int(a))] for a in anchor])


def test_the_fused_score_is_the_weighted_sum_of_standardised_parts():
    a = Table({("tail", 0): [0.0, 1.0, 2.0]}, 3)
    b = Table({("tail", 0): [10.0, 0.0, -10.0]}, 3)
    fused = FusedLinkScorer(parts={"a": a, "b": b}, weights={"a": 0.75, "b": 0.25})
    got = fused.score_all(torch.tensor([0]), torch.tensor([0]), predict="tail")
    unit = (2.0 / 3.0) ** 0.5
    want = 0.75 * torch.tensor([-1.0, 0.0, 1.0]) / unit + 0.25 * torch.tensor([1.0, 0.0, -1.0]) / unit
    assert torch.allclose(got, want.unsqueeze(0))
    only_b = FusedLinkScorer(parts={"a": a, "b": b}, weights={"b": 1.0})
    calls = a.calls
    only_b.score_all(torch.tensor([0]), torch.tensor([0]), predict="tail")
    assert a.calls == calls  # a part of weight 0 is not scored
    with pytest.raises(ValueError, match="unknown parts"):
        FusedLinkScorer(parts={"a": a}, weights={"c": 1.0})
    with pytest.raises(ValueError, match="different entity sets"):
        FusedLinkScorer(parts={"a": a, "short": Table({}, 2)}, weights={"a": 1.0})


def test_convex_grid_covers_the_simplex():
    grid = convex_grid(["text", "kge"], steps=4)
    assert grid[0] == {"text": 0.0, "kge": 1.0} and grid[-1] == {"text": 1.0, "kge": 0.0} and len(grid) == 5
    assert len(convex_grid(["a", "b", "c"], steps=2)) == 6


class Oracle:
    """Scores 1 for every entity that forms a known triple with the query, else 0; plus seeded noise."""

    def __init__(self, kb: TripleStore, *, noise: float, seed: int) -> None:
        self.num_entities = kb.num_entities
        self.known = {tuple(t) for t in kb.triples().tolist()}
        self.noise, self.generator = noise, torch.Generator().manual_seed(seed)

    def score_all(self, anchor, rel, *, predict):
        rows = torch.zeros(anchor.numel(), self.num_entities)
        for i, (a, r) in enumerate(zip(anchor.tolist(), rel.tolist(), strict=True)):
            for e in range(self.num_entities):
                triple = (a, r, e) if predict == "tail" else (e, r, a)
                rows[i, e] = float(triple in self.known)
        return rows + self.noise * torch.randn(rows.shape, generator=self.generator)


def _kb() -> TripleStore:
    g = torch.Generator().manual_seed(0)
    rows = torch.stack([torch.randint(30, (240,), generator=g), torch.randint(3, (240,), generator=g),
                        torch.randint(30, (240,), generator=g)], dim=1)  # fmt: skip
    rows = rows[rows[:, 0] != rows[:, 2]]
    splits = {"train": rows[:160].numpy(), "valid": rows[160:200].numpy(), "test": rows[200:].numpy()}
    return TripleStore(
        name="toy",
        entity_keys=[f"e{i}" for i in range(30)],
        relation_keys=["r0", "r1", "r2"],
        split_triples=splits,
    )


def test_choose_fusion_weights_the_informative_part_and_reuses_part_scores():
    kb = _kb()
    informative, noise = Oracle(kb, noise=0.3, seed=1), Oracle(kb, noise=100.0, seed=2)
    choice = choose_fusion(
        {"good": informative, "noise": noise}, kb, max_triples=30, priors=[(0, 0.0), (1, 0.5)]
    )
    assert choice.weights["good"] >= 0.8
    assert len(choice.tried) == 11 * 2
    alone = {t["weights"]["good"]: t["dev_mrr"] for t in choice.tried if t["hops"] == 0}
    assert choice.dev_mrr >= alone[1.0] and alone[1.0] > alone[0.0] + 0.3
    # the chosen scorer on test beats the noisy part alone
    fused = choice.scorer(
        {"good": informative, "noise": noise}, known=kb.triple_array("train"), num_entities=30
    )
    test = evaluate_link_prediction(fused, triples=kb.triples("test"), filter_triples=kb.triples())
    noisy = evaluate_link_prediction(noise, triples=kb.triples("test"), filter_triples=kb.triples())
    assert test.mrr > noisy.mrr + 0.3


def test_memo_scorer_answers_a_repeated_batch_without_scoring_again():
    table = Table({("tail", 0): [0.0, 1.0, 2.0], ("tail", 1): [2.0, 1.0, 0.0]}, 3)
    memo = MemoScorer(table)
    first = memo.score_all(torch.tensor([0, 1]), torch.tensor([0, 0]), predict="tail")
    again = memo.score_all(torch.tensor([0, 1]), torch.tensor([0, 0]), predict="tail")
    assert table.calls == 1 and torch.equal(first, again)
    memo.score_all(torch.tensor([1, 0]), torch.tensor([0, 0]), predict="tail")
    assert table.calls == 2
