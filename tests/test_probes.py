"""Effects with bootstrap CIs, and the causal probes run with predictors whose behaviour is known."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest

from kgreason.core.example import Example
from kgreason.probes import (
    Effect,
    bootstrap_ci,
    correctness,
    counterfactual_consistency,
    generalisation_gaps,
    knowledge_ablation,
    name_invariance,
    perturbation_curve,
    train_test_gap,
)
from kgreason.rules import KINSHIP_LABELS, answers, kinship_rules

# ------------------------------------------------------------------------------------------------- effects


def test_bootstrap_ci_of_a_mean():
    rng = np.random.default_rng(0)
    x = (rng.random(400) < 0.7).astype(float)
    ci = bootstrap_ci(x, seed=1)
    assert ci.estimate == pytest.approx(x.mean()) and ci.low < ci.estimate < ci.high and ci.n == 400
    half = 1.96 * math.sqrt(x.mean() * (1 - x.mean()) / 400)  # normal approximation
    assert ci.high - ci.low == pytest.approx(2 * half, rel=0.15)
    assert bootstrap_ci(x, seed=1) == ci  # seeded
    bca = bootstrap_ci(x, method="bca", seed=1)
    assert bca.method == "BCa" and bca.high - bca.low == pytest.approx(2 * half, rel=0.2)
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci(x, method="jackknife")


def test_paired_difference_is_narrower_than_unpaired_for_correlated_samples():
    rng = np.random.default_rng(0)
    base = rng.normal(size=300)
    after = base - 0.1 + rng.normal(scale=0.05, size=300)
    paired = bootstrap_ci(base, minus=after, seed=0)
    unpaired = bootstrap_ci(base, minus=after, paired=False, seed=0)
    assert paired.estimate == pytest.approx(0.1, abs=0.01) == unpaired.estimate
    assert paired.low > 0.08 and paired.high < 0.12  # the pairing removes the shared variation
    assert unpaired.low < 0 < unpaired.high and unpaired.n == 600
    with pytest.raises(ValueError, match="length"):
        bootstrap_ci(base, minus=after[:-1])


def test_degenerate_samples():
    ones = bootstrap_ci(np.ones(20), method="bca")
    assert (ones.estimate, ones.low, ones.high, ones.method) == (1.0, 1.0, 1.0, "percentile")
    one = bootstrap_ci([1.0])
    assert one.estimate == 1.0 and math.isnan(one.low) and math.isnan(one.high)
    assert math.isnan(bootstrap_ci([]).estimate)
    effect = one.effect("x", extra=np.float64(0.5), nested=Effect("y", 1.0, 0.0, 2.0, n=3))
    data = effect.to_dict()
    assert data["ci_low"] is None and data["details"]["extra"] == 0.5 and data["details"]["nested"]["n"] == 3
    json.dumps(data)


# ------------------------------------------------------------------------------------- hand-made examples


def make_examples(n: int) -> list[Example]:
    """Chains a -son-> b -daughter-> c (granddaughter) and a -daughter-> b -son-> c (grandson), depth 2 or 3."""
    examples = []
    for i in range(n):
        a, b, c, d = (f"P{i}q{k}" for k in range(4))
        if i % 2:
            facts, label = [(a, "son", b), (b, "daughter", c)], "granddaughter"
            genders = {a: "female", b: "male", c: "female"}
        else:
            facts, label = [(a, "daughter", b), (b, "son", c)], "grandson"
            genders = {a: "male", b: "female", c: "male"}
        if i % 3 == 0:  # depth 3: add a sibling hop
            sib = d
            facts.append((c, "brother" if label == "granddaughter" else "sister", sib))
            genders[sib] = "male" if label == "granddaughter" else "female"
            label = "grandson" if label == "granddaughter" else "granddaughter"
        sentences = [f"{t} is the {r} of {h}." for h, r, t in facts]
        tail = facts[-1][2]
        examples.append(
            Example(
                text=" ".join(sentences),
                text_pair=f"How is {tail} related to {a}?",
                label=label,
                facts=facts,
                uid=f"toy:{i}",
                metadata={
                    "query": [a, tail],
                    "depth": len(facts),
                    "genders": genders,
                    "sentences": sentences,
                    "fact_sentences": list(range(len(facts))),
                    "path": list(range(len(facts))),
                    "noise": "clean" if i % 4 else "supporting",
                    "source": "toy",
                },
            )
        )
    return examples


class Counting:
    """Wraps a predictor and counts the calls (a probe must call it once)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, examples):
        self.calls += 1
        return self.fn(examples)


def rule_reasoner(examples):
    """Reasons from the facts with the kinship rules: the ideal knowledge-using model."""
    got = answers(
        kinship_rules(),
        facts=[e.facts for e in examples],
        genders=[e.metadata["genders"] for e in examples],
        queries=[tuple(e.metadata["query"]) for e in examples],
    )
    return [g or "unknown" for g in got]


def memoriser(gold):
    """Ignores the facts entirely: answers each uid with the label it memorised."""
    return lambda examples: [gold[e.uid] for e in examples]


def name_guesser(examples):
    """Guesses from the names in the question only."""
    return [KINSHIP_LABELS[zlib.crc32(e.text_pair.encode()) % len(KINSHIP_LABELS)] for e in examples]


@pytest.fixture(scope="module")
def toy():
    return make_examples(60)


def test_knowledge_ablation(toy):
    reasoner = Counting(rule_reasoner)
    effect = knowledge_ablation(reasoner, toy, which="path")
    assert reasoner.calls == 1
    assert effect.details["accuracy_original"] == 1.0 and effect.details["accuracy_ablated"] == 0.0
    assert effect.estimate == 1.0 and effect.n == 60 and effect.name == "knowledge_ablation[path]"
    memo = memoriser({e.uid: e.label for e in toy})
    flat = knowledge_ablation(memo, toy, which="all")
    assert flat.estimate == 0.0 and flat.ci_low == flat.ci_high == 0.0
    # reference predictions: the predictor sees only the ablated copies
    counted = Counting(rule_reasoner)
    again = knowledge_ablation(counted, toy, reference=rule_reasoner(toy))
    assert again.estimate == effect.estimate and counted.calls == 1


def test_counterfactual_consistency(toy):
    rules = kinship_rules()
    reasoner = Counting(rule_reasoner)
    effect = counterfactual_consistency(reasoner, toy, rules=rules, labels=KINSHIP_LABELS, seed=0)
    assert reasoner.calls == 1
    assert effect.estimate == 1.0 and effect.details["n_edited"] + effect.details["n_skipped"] == 60
    assert effect.details["n_edited"] >= 50 and effect.details["share_old_label"] == 0.0
    memo = memoriser({e.uid: e.label for e in toy})
    stuck = counterfactual_consistency(memo, toy, rules=rules, labels=KINSHIP_LABELS, seed=0)
    assert stuck.estimate == 0.0 and stuck.details["share_old_label"] == 1.0
    assert stuck.details["accuracy_original"] == 1.0


def test_perturbation_curve(toy):
    reasoner = Counting(rule_reasoner)
    curve = perturbation_curve(reasoner, toy, kinds=("delete", "relation_swap"), fractions=(0.5, 1.0), seed=0)
    assert reasoner.calls == 1
    deleted = curve.points["delete"]
    assert [p.fraction for p in deleted] == [0.0, 0.5, 1.0]
    assert deleted[0].accuracy == 1.0 and deleted[-1].accuracy == 0.0
    assert curve.effects["delete"].estimate == 1.0
    assert curve.effects["relation_swap"].estimate > 0.5
    memo = memoriser({e.uid: e.label for e in toy})
    flat = perturbation_curve(memo, toy, seed=0)
    assert all(p.accuracy == 1.0 for pts in flat.points.values() for p in pts)
    assert set(flat.points) == {"relation_swap", "rewire", "delete"}
    json.dumps(flat.to_dict())
    with pytest.raises(ValueError, match="perturbation"):
        perturbation_curve(memo, toy, kinds=("shuffle",))


def test_name_invariance(toy):
    reasoner = Counting(rule_reasoner)
    names = {"male": [f"M{i}" for i in range(10)], "female": [f"F{i}" for i in range(10)]}
    effect = name_invariance(reasoner, toy, seed=0, names_by_gender=names)
    assert reasoner.calls == 1 and effect.estimate == 1.0
    assert effect.details["accuracy_renamed"] == 1.0
    guessed = name_invariance(name_guesser, toy, seed=0, names_by_gender=names)
    assert guessed.estimate < 0.3 and guessed.ci_high < 0.5


def test_generalisation_gaps(toy):
    # correct on depth 2, wrong on depth 3
    predictions = [e.label if e.metadata["depth"] == 2 else "aunt" for e in toy]
    report = generalisation_gaps(predictions, toy, train_depths=[2])
    assert report.by_depth[2].estimate == 1.0 and report.by_depth[3].estimate == 0.0
    assert report.iid.estimate == 1.0 and report.ood.estimate == 0.0 and report.gap.estimate == 1.0
    assert report.gap.details["n_iid"] == 40 and report.gap.details["n_ood"] == 20
    assert report.by_noise["clean"].n + report.by_noise["supporting"].n == 60
    assert report.overall.estimate == pytest.approx(40 / 60)
    json.dumps(report.to_dict())
    reasoner = Counting(rule_reasoner)
    same = generalisation_gaps(reasoner, toy, train_depths=[2, 3])
    assert reasoner.calls == 1 and same.iid.estimate == 1.0 and math.isnan(same.ood.estimate)
    with pytest.raises(ValueError, match="predictions"):
        generalisation_gaps(predictions[:-1], toy, train_depths=[2])


def test_train_test_gap():
    gap = train_test_gap(train_correct=np.ones(200), test_correct=np.r_[np.ones(120), np.zeros(80)])
    assert gap.estimate == pytest.approx(0.4) and 0.3 < gap.ci_low < 0.4 < gap.ci_high < 0.5
    assert gap.details["accuracy_test"] == 0.6 and gap.n == 400
    assert correctness(["a", "b"], [Example(text="", label="a"), Example(text="", label="a")]).tolist() == [
        1,
        0,
    ]


# ------------------------------------------------------------------------------------------------ real data


def test_probes_on_real_clutrr(shared_data):
    """The rule reasoner on real CLUTRR test rows: it uses the facts, so ablation hurts and edits are followed."""
    from kgreason.data.clutrr import read_clutrr_file

    rows = read_clutrr_file(shared_data / "clutrr" / "data_089907f8" / "1.4_test.csv")
    examples = [r.example for r in rows]
    base = correctness(rule_reasoner(examples), examples).mean()
    assert base > 0.9
    ablation = knowledge_ablation(rule_reasoner, examples)
    assert ablation.estimate == pytest.approx(base) and ablation.ci_low > 0.8
    cf = counterfactual_consistency(rule_reasoner, examples, rules=kinship_rules(), labels=KINSHIP_LABELS)
    assert cf.estimate == 1.0 and cf.details["n_edited"] > 0.8 * len(examples)
    assert name_invariance(rule_reasoner, examples, seed=0).estimate == 1.0
    gaps = generalisation_gaps(rule_reasoner, examples, train_depths=[2, 3])
    assert list(gaps.by_depth) == [4] and gaps.ood.n == len(examples)
