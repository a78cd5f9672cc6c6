"""Interventions on reasoning examples: hand-written stories and real CLUTRR rows."""

from __future__ import annotations

import copy
import random
import re

import pytest

from kgreason.core.example import Example
from kgreason.probes.interventions import (
    InterventionError,
    drop_facts,
    edit_fact,
    edit_facts,
    perturb_graph,
    rename_entities,
)
from kgreason.rules import KINSHIP_LABELS, answer, answers, kinship_rules
from kgreason.rules.kinship import KINSHIP_GENDER

NAMES = {
    "male": ["Zed", "Yann", "Xavier", "Walt", "Victor", "Uri"],
    "female": ["Zoe", "Yara", "Wendy", "Vera", "Una", "Tess"],
}


def story() -> Example:
    """Ann's son Bob; Bob's daughter Cid; Cid's brother Dan: Dan is Ann's grandson. One filler sentence."""
    sentences = [
        "Ann took her son Bob to the fair.",
        "The Annual fair was sunny.",
        "Bob has a daughter, Cid.",
        "Cid played with her brother Dan at Bob's house.",
    ]
    return Example(
        text=" ".join(sentences),
        text_pair="How is Dan related to Ann?",
        label="grandson",
        facts=[("Ann", "son", "Bob"), ("Bob", "daughter", "Cid"), ("Cid", "brother", "Dan")],
        uid="hand:1",
        metadata={
            "query": ["Ann", "Dan"],
            "depth": 3,
            "genders": {"Ann": "female", "Bob": "male", "Cid": "female", "Dan": "male"},
            "sentences": sentences,
            "fact_sentences": [0, 2, 3],
            "path": [0, 1, 2],
            "noise": "clean",
            "source": "hand",
        },
    )


def noisy_story() -> Example:
    """``story`` plus Bob's wife Eve, stated in the same sentence as the path fact Ann -son-> Bob."""
    ex = story()
    sentences = ["Ann took her son Bob and his wife Eve to the fair.", *ex.metadata["sentences"][1:]]
    meta = {
        **ex.metadata,
        "sentences": sentences,
        "fact_sentences": [0, 2, 3, 0],
        "genders": {**ex.metadata["genders"], "Eve": "female"},
        "noise": "supporting",
    }
    return Example(
        text=" ".join(sentences),
        text_pair=ex.text_pair,
        label=ex.label,
        facts=[*ex.facts, ("Bob", "wife", "Eve")],
        uid="hand:2",
        metadata=meta,
    )


def check_consistent(ex: Example) -> None:
    meta = ex.metadata
    assert ex.text == " ".join(meta["sentences"])
    assert len(meta["fact_sentences"]) == len(ex.facts)
    for (h, _, t), s in zip(ex.facts, meta["fact_sentences"], strict=True):
        if s is not None:
            assert h in meta["sentences"][s] and t in meta["sentences"][s]
    assert all(0 <= p < len(ex.facts) for p in meta["path"])


# ----------------------------------------------------------------------------------------------- drop facts


def test_drop_path_facts_removes_their_sentences_and_keeps_the_label():
    ex = story()
    before = copy.deepcopy(ex)
    out = drop_facts(ex, which="path")
    assert ex == before  # never mutated
    assert out.text == "The Annual fair was sunny." and out.facts == [] and out.metadata["path"] == []
    assert out.label == "grandson" and out.text_pair == ex.text_pair
    assert out.metadata["intervention"]["dropped_sentences"] == [0, 2, 3]
    check_consistent(out)


def test_drop_cascades_to_facts_sharing_a_sentence():
    ex = noisy_story()
    out = drop_facts(ex, which="path")
    # Eve's fact is stated in the dropped sentence 0, so it goes too
    assert out.facts == [] and "Eve" not in out.text
    assert out.metadata["intervention"]["dropped_facts"] == [0, 1, 2, 3]
    # dropping one path fact whose sentence is not shared keeps the others, re-indexed
    ex.metadata["path"] = [2]
    out = drop_facts(ex, which="path")
    assert out.facts == [("Ann", "son", "Bob"), ("Bob", "daughter", "Cid"), ("Bob", "wife", "Eve")]
    assert out.metadata["fact_sentences"] == [0, 2, 0] and out.metadata["path"] == []
    assert "Dan" not in out.text
    check_consistent(out)


def test_drop_all_and_bad_input():
    out = drop_facts(noisy_story(), which="all")
    assert out.facts == [] and out.text == "The Annual fair was sunny."
    with pytest.raises(ValueError, match="which"):
        drop_facts(story(), which="some")
    ex = story()
    del ex.metadata["sentences"]
    with pytest.raises(InterventionError, match=r"hand:1.*sentences"):
        drop_facts(ex)
    ex = story()
    ex.metadata["fact_sentences"] = [0, 9, 3]
    with pytest.raises(InterventionError, match="sentence 9"):
        drop_facts(ex)


# ------------------------------------------------------------------------------------------------ edit fact


def test_edit_fact_relabels_with_the_rules_and_rerenders_the_sentence():
    rules = kinship_rules()
    ex = story()
    before = copy.deepcopy(ex)
    seen = set()
    for seed in range(6):
        out = edit_fact(ex, rules=rules, labels=KINSHIP_LABELS, rng=seed)
        assert out is not None and ex == before
        change = out.metadata["intervention"]
        i = change["fact"]
        seen.add((i, change["to"]))
        assert [j for j in range(3) if out.facts[j] != ex.facts[j]] == [i]
        assert (
            KINSHIP_GENDER[change["to"]] == KINSHIP_GENDER[change["from"]] and change["to"] != change["from"]
        )
        expected = answer(rules, facts=out.facts, genders=out.metadata["genders"], query=("Ann", "Dan"))
        assert out.label == expected and out.label != "grandson" and out.label in KINSHIP_LABELS
        assert change["original_label"] == "grandson"
        s = out.metadata["fact_sentences"][i]
        assert out.metadata["sentences"][s] != ex.metadata["sentences"][ex.metadata["fact_sentences"][i]]
        check_consistent(out)
    assert len(seen) > 1  # the edit is drawn at random
    again = edit_fact(ex, rules=rules, labels=KINSHIP_LABELS, rng=3)
    assert again == edit_fact(ex, rules=rules, labels=KINSHIP_LABELS, rng=3)  # seeded


def test_edit_fact_rerenders_every_fact_of_a_shared_sentence():
    rules = kinship_rules()
    ex = noisy_story()
    for seed in range(10):
        out = edit_fact(ex, rules=rules, labels=KINSHIP_LABELS, rng=seed)
        if out is not None and out.metadata["intervention"]["fact"] == 0:
            break
    else:
        pytest.fail("no edit of the shared-sentence fact in 10 seeds")
    # sentence 0 stated two facts: it became two rendered sentences, one per fact
    assert len(out.metadata["sentences"]) == len(ex.metadata["sentences"]) + 1
    assert out.metadata["fact_sentences"] == [0, 3, 4, 1]
    assert "Eve" in out.metadata["sentences"][1]
    check_consistent(out)


def test_edit_fact_none_when_no_edit_gives_a_new_answer_in_the_labels():
    rules = kinship_rules()
    assert edit_fact(story(), rules=rules, labels=["grandson"], rng=0) is None
    out = edit_facts([story(), story()], rules=rules, labels=["grandson", "granddaughter"], rng=0)
    assert out == [None, None]  # Dan's gender fixes "grandson"; no edit reaches another label


def test_edit_fact_rejects_edits_that_break_an_integrity_constraint():
    """Bob is married to Eve: making Eve Bob's sister (or Bob's mother ...) would give two relations."""
    rules = kinship_rules()
    for seed in range(8):
        out = edit_fact(noisy_story(), rules=rules, labels=KINSHIP_LABELS, rng=seed)
        assert out is not None
        from kgreason.rules import facts_from_triples, forward_chain

        closure = forward_chain(rules, facts=facts_from_triples(out.facts, genders=out.metadata["genders"]))
        assert closure.violations == []


# --------------------------------------------------------------------------------------------- perturbations


def test_perturb_graph_kinds():
    ex = noisy_story()
    swap = perturb_graph(ex, kind="relation_swap", fraction=0.5, rng=0)
    changed = swap.metadata["intervention"]["changed_facts"]
    assert len(changed) == 2 and swap.text == ex.text and swap.label == ex.label
    for i, (old, new) in enumerate(zip(ex.facts, swap.facts, strict=True)):
        assert (old[0], old[2]) == (new[0], new[2])
        assert (old[1] != new[1]) == (i in changed)
        assert swap.metadata["fact_sentences"][i] == (
            None if i in changed else ex.metadata["fact_sentences"][i]
        )
    rewired = perturb_graph(ex, kind="rewire", fraction=1.0, rng=0)
    people = {"Ann", "Bob", "Cid", "Dan", "Eve"}
    for old, new in zip(ex.facts, rewired.facts, strict=True):
        assert new[:2] == old[:2] and new[2] != old[2] and new[2] in people and new[2] != new[0]
    gone = perturb_graph(ex, kind="delete", fraction=0.25, rng=0)
    assert len(gone.facts) == 3 and gone.text == ex.text
    assert perturb_graph(ex, kind="delete", fraction=1.0, rng=0).facts == []
    assert perturb_graph(ex, kind="delete", fraction=0.0, rng=0).facts == ex.facts
    assert perturb_graph(ex, kind="rewire", fraction=0.5, rng=7) == perturb_graph(
        ex, kind="rewire", fraction=0.5, rng=7
    )
    with pytest.raises(ValueError, match="perturbation"):
        perturb_graph(ex, kind="shuffle", fraction=0.5, rng=0)
    with pytest.raises(ValueError, match="fraction"):
        perturb_graph(ex, kind="delete", fraction=1.5, rng=0)


def test_rewire_prefers_people_not_linked_to_the_head():
    ex = noisy_story()
    ex.metadata["path"] = [1]
    for seed in range(10):
        out = perturb_graph(ex, kind="rewire", fraction=0.25, rng=seed)
        (i,) = out.metadata["intervention"]["changed_facts"]
        head = ex.facts[i][0]
        linked = {b for a, _, b in ex.facts if a == head} | {a for a, _, b in ex.facts if b == head}
        assert out.facts[i][2] not in linked | {head}


# ---------------------------------------------------------------------------------------------- renaming


def test_rename_entities_is_consistent_everywhere():
    ex = noisy_story()
    before = copy.deepcopy(ex)
    out = rename_entities(ex, rng=0, names_by_gender=NAMES)
    assert ex == before
    mapping = out.metadata["intervention"]["names"]
    assert sorted(mapping) == ["Ann", "Bob", "Cid", "Dan", "Eve"] and len(set(mapping.values())) == 5
    for old, new in mapping.items():
        assert new in NAMES[ex.metadata["genders"][old]]
        assert not re.search(rf"\b{old}\b", out.text + out.text_pair)
    assert "Annual" in out.text  # only whole names are replaced
    assert f"{mapping['Bob']}'s house" in out.text
    assert out.text_pair == f"How is {mapping['Dan']} related to {mapping['Ann']}?"
    assert out.facts == [(mapping[h], r, mapping[t]) for h, r, t in ex.facts]
    assert out.metadata["query"] == [mapping["Ann"], mapping["Dan"]]
    assert out.metadata["genders"] == {mapping[k]: g for k, g in ex.metadata["genders"].items()}
    assert out.label == ex.label and out.metadata["path"] == ex.metadata["path"]
    check_consistent(out)


def test_rename_entities_errors():
    with pytest.raises(InterventionError, match="unused female names"):
        rename_entities(story(), rng=0, names_by_gender={"male": NAMES["male"], "female": ["Zoe"]})
    ex = story()
    del ex.metadata["genders"]["Cid"]
    with pytest.raises(InterventionError, match="no gender"):
        rename_entities(ex, rng=0, names_by_gender=NAMES)
    # the default pools are the kinship generator's names
    out = rename_entities(story(), rng=1)
    assert set(out.metadata["genders"]).isdisjoint({"Ann", "Bob", "Cid", "Dan"})


# ------------------------------------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def clutrr_rows(shared_data):
    from kgreason.data.clutrr import read_clutrr_file

    rows = read_clutrr_file(shared_data / "clutrr" / "data_06b8f2a1" / "2.3_test.csv")
    rows += read_clutrr_file(shared_data / "clutrr" / "data_089907f8" / "1.6_test.csv")
    return [r.example for r in rows]


def test_interventions_on_real_clutrr_rows(clutrr_rows):
    rules = kinship_rules()
    examples = clutrr_rows
    before = copy.deepcopy(examples)
    edited = edit_facts(examples, rules=rules, labels=KINSHIP_LABELS, rng=0)
    assert examples == before
    done = [(e, x) for e, x in zip(examples, edited, strict=True) if x is not None]
    assert len(done) >= 0.8 * len(examples)
    expected = answers(
        rules,
        facts=[x.facts for _, x in done],
        genders=[x.metadata["genders"] for _, x in done],
        queries=[tuple(x.metadata["query"]) for _, x in done],
    )
    for (e, x), label in zip(done, expected, strict=True):
        assert x.label == label != e.label
        check_consistent(x)
    rng = random.Random(0)
    for e in examples:
        dropped = drop_facts(e, which="path")
        check_consistent(dropped)
        assert not dropped.metadata["path"]
        for h, r, t in (e.facts[i] for i in e.metadata["path"]):
            assert (h, r, t) not in dropped.facts
        renamed = rename_entities(e, rng=rng)
        check_consistent(renamed)
        for old in e.metadata["genders"]:
            assert not re.search(rf"\b{re.escape(old)}\b", renamed.text)
        for kind in ("relation_swap", "rewire", "delete"):
            perturbed = perturb_graph(e, kind=kind, fraction=0.5, rng=rng)
            assert perturbed.text == e.text and perturbed.label == e.label
