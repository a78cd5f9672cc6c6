"""The story reader: layout (people, mentions, candidate pairs), gold targets, joint decoding, the model on a
tiny random encoder, save / load, reader quality, and the layout on real CLUTRR stories."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kgreason.core.example import Example
from kgreason.data.story_graph import IGNORE, story_layout, story_targets
from kgreason.rules.kinship import FAMILIES, INVERSE_INDEX
from kgreason.rules.story_decode import decode_story


def story(sentences, facts, *, people, genders, query, untyped=()):
    return Example(
        text=" ".join(sentences),
        label="x",
        facts=list(facts),
        metadata={
            "people": list(people),
            "sentences": list(sentences),
            "genders": dict(genders),
            "query": list(query),
            "depth": len(facts),
            "untyped_edges": [list(p) for p in untyped],
        },
    )


ANN = story(
    ["Ann took her son Bob to the zoo.", "Bob went fishing with his brother.", "His name is Carl."],
    [("Ann", "son", "Bob"), ("Bob", "brother", "Carl")],
    people=["Ann", "Bob", "Carl"],
    genders={"Ann": "female", "Bob": "male", "Carl": "male"},
    query=["Ann", "Carl"],
)


def test_layout_pairs_people_named_together_and_joins_a_lonely_sentence():
    layout = story_layout(ANN)
    assert layout.people == ["Ann", "Bob", "Carl"]
    assert [(m.person, m.sentence) for m in layout.mentions] == [(0, 0), (1, 0), (1, 1), (2, 2)]
    # a sentence naming one person is read with the sentence before it: "His name is Carl." with Bob's
    assert layout.joins == [(0, 1), (1, 2)]
    assert layout.pairs == [(0, 1), (1, 2)]
    assert story_layout(ANN, window=0).pairs == [(0, 1)]


def test_targets_are_families_in_first_mention_order_with_inverses():
    flipped = story(
        ["Bob is the son of Ann."],
        [("Bob", "mother", "Ann")],
        people=["Bob", "Ann"],
        genders={"Ann": "female", "Bob": "male"},
        query=["Bob", "Ann"],
    )
    layout = story_layout(flipped)
    assert layout.pairs == [(0, 1)]
    assert story_targets(flipped, layout).families == [FAMILIES.index("parent")]
    # stored the other way round, the same pair reads as the inverse family
    reversed_fact = story(
        ["Bob is the son of Ann."],
        [("Ann", "son", "Bob")],
        people=["Bob", "Ann"],
        genders={},
        query=["Bob", "Ann"],
    )
    targets = story_targets(reversed_fact, story_layout(reversed_fact))
    assert targets.families == [FAMILIES.index("parent")]
    assert targets.genders == [IGNORE, IGNORE]


def test_targets_ignore_untyped_edges_and_count_uncovered_facts():
    example = story(
        ["Ann met Bob.", "Carl met Dan."],
        [("Ann", "wife", "Dan")],
        people=["Ann", "Bob", "Carl", "Dan"],
        genders={"Ann": "female", "Bob": "male", "Carl": "male", "Dan": "male"},
        query=["Ann", "Dan"],
        untyped=[("Ann", "Bob")],
    )
    layout = story_layout(example)
    targets = story_targets(example, layout)
    assert layout.pairs == [(0, 1), (2, 3)]
    assert targets.families == [IGNORE, 0]
    assert targets.uncovered == 1
    assert targets.genders == [1, 0, 0, 0]


def test_inverse_index_is_an_involution():
    assert all(INVERSE_INDEX[INVERSE_INDEX[i]] == i for i in range(len(FAMILIES)))
    assert FAMILIES[INVERSE_INDEX[FAMILIES.index("child")]] == "parent"


def _logp(best: str, *, confidence: float = 0.9) -> np.ndarray:
    p = np.full(len(FAMILIES), (1 - confidence) / (len(FAMILIES) - 1))
    p[FAMILIES.index(best)] = confidence
    return np.log(p)


def test_decode_genders_facts_by_the_person_they_describe_and_follows_the_chain():
    genders = np.log(np.array([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3]]))  # Ann female, Bob male, Carl male
    families = np.stack([_logp("child"), _logp("sibling")])
    decoded = decode_story(
        people=["Ann", "Bob", "Carl"],
        pairs=[(0, 1), (1, 2)],
        families=families,
        genders=genders,
        query=("Carl", "Ann"),
    )
    assert decoded.genders == {"Ann": "female", "Bob": "male", "Carl": "male"}
    assert decoded.facts == [("Ann", "son", "Bob"), ("Bob", "brother", "Carl")]
    # walked from Carl to Ann: the inverses, gendered by the person each fact describes
    assert decoded.path == [("Carl", "brother", "Bob"), ("Bob", "mother", "Ann")]


def test_decode_bridges_a_pair_read_as_none_and_skips_a_noise_pair():
    genders = np.log(np.full((4, 2), 0.5) + np.array([[0.4, -0.4]] * 4))  # everyone male
    families = np.stack([_logp("none", confidence=0.6), _logp("sibling"), _logp("spouse", confidence=0.99)])
    decoded = decode_story(
        people=["A", "B", "C", "D"],
        pairs=[(0, 1), (1, 2), (0, 3)],
        families=families,
        genders=genders,
        query=("A", "C"),
    )
    assert ("A", "husband", "D") in decoded.facts and len(decoded.facts) == 2  # (A, B) read as none
    # the chain still crosses (A, B), as its most likely family (ties: the first, child); D is off the chain
    assert decoded.path == [("A", "son", "B"), ("B", "brother", "C")]
    nowhere = decode_story(
        people=["A", "B"], pairs=[], families=np.zeros((0, 9)), genders=genders[:2], query=("A", "Z")
    )
    assert nowhere.path == [] and nowhere.facts == []


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.sampled_from(["Ann", "Bob", "Cy", "Dee", "Eve", "Flo"]), min_size=1, max_size=12),
    cut=st.lists(st.integers(0, 11), max_size=4),
)
def test_layout_pairs_are_named_together(names, cut):
    """Property: every candidate pair's people are both named in one sentence or in a join."""
    sentences, current = [], []
    for i, name in enumerate(names):
        current.append(name)
        if i in cut:
            sentences.append(" and ".join(current) + " met.")
            current = []
    if current:
        sentences.append(" and ".join(current) + " met.")
    people = list(dict.fromkeys(names))
    example = story(sentences, [], people=people, genders={}, query=[people[0], people[-1]])
    layout = story_layout(example)
    where: dict[int, set[int]] = {}
    for m in layout.mentions:
        where.setdefault(m.person, set()).add(m.sentence)
    assert len(layout.mentions) == len(names)
    for a, b in layout.pairs:
        together = where[a] & where[b]
        joined = any({s, t} <= where[a] | where[b] for s, t in layout.joins)
        assert a < b and (together or joined)


@pytest.fixture(scope="module")
def tiny_reader(tiny_encoder: Path):
    from kgreason.models.story_reader import StoryReaderConfig, build_story_reader

    torch.manual_seed(0)
    return build_story_reader(StoryReaderConfig(encoder=str(tiny_encoder), max_length=64))


def test_reader_reads_every_pair_and_person_and_inverse_consistency_holds(tiny_reader):
    features = tiny_reader.featurize(ANN, targets=True)
    assert len(features.segments) == 5  # three sentences and the two joins
    assert [len(x) for x in features.instances] == [1, 1]
    assert features.families == [FAMILIES.index("child"), FAMILIES.index("sibling")]
    out = tiny_reader.eval()([features])
    assert out.families[0].shape == (2, len(FAMILIES)) and out.genders[0].shape == (3, 2)
    assert torch.allclose(out.families[0].exp().sum(-1), torch.ones(2))
    assert out.loss is not None and math.isfinite(float(out.loss))


def test_reader_learns_a_tiny_story_set_and_round_trips(tiny_reader, tmp_path):
    from kgreason.models.story_reader import StoryReader
    from kgreason.training.story_reader import ReaderTrainingConfig, dev_pair_accuracy, train_story_reader

    stories = [ANN] * 8
    before = float(tiny_reader([tiny_reader.featurize(ANN, targets=True)]).loss)
    result = train_story_reader(
        tiny_reader,
        stories,
        stories[:2],
        config=ReaderTrainingConfig(epochs=6, batch_size=4, lr=1e-3),
        progress=False,
    )
    after = float(result.reader.eval()([result.reader.featurize(ANN, targets=True)]).loss)
    assert after < before / 2
    assert dev_pair_accuracy(result.reader, stories[:2]) == 1.0
    result.reader.save_pretrained(tmp_path / "reader")
    loaded = StoryReader.from_pretrained(tmp_path / "reader")
    a, b = result.reader.read([ANN])[0], loaded.read([ANN])[0]
    assert np.allclose(a.families, b.families, atol=1e-5) and np.allclose(a.genders, b.genders, atol=1e-5)


def test_reader_quality_counts_inverse_readings_as_right():
    from kgreason.bench.reading import reader_quality
    from kgreason.rules.story_decode import DecodedStory

    right = DecodedStory(
        facts=[("Ann", "son", "Bob"), ("Carl", "brother", "Bob")],
        path=[],
        genders={"Ann": "female", "Bob": "male", "Carl": "male"},
    )
    wrong = DecodedStory(
        facts=[("Ann", "husband", "Bob")], path=[], genders={"Ann": "male", "Bob": "male", "Carl": "male"}
    )
    quality = reader_quality([ANN, ANN], [None, None], [right, wrong])[2]
    assert quality["relation_accuracy"] == pytest.approx(2 / 4)
    assert quality["pair_recall"] == pytest.approx(3 / 4) and quality["pair_precision"] == pytest.approx(1.0)
    assert quality["gender_accuracy"] == pytest.approx(5 / 6)
    assert quality["story_exact"] == pytest.approx(0.5)


def test_layout_covers_the_gold_facts_of_real_clutrr_stories(shared_data):
    from kgreason.data.clutrr import read_clutrr_file

    rows = read_clutrr_file(shared_data / "clutrr" / "data_089907f8" / "1.10_test.csv")[:60]
    facts = uncovered = 0
    for row in rows:
        example = row.example
        layout = story_layout(example)
        assert set(layout.people) == set(example.metadata["genders"])  # the marked names are the people
        targets = story_targets(example, layout)
        facts += len(example.facts)
        uncovered += targets.uncovered
    assert facts == 600 and uncovered <= 6


def test_marked_reader_reads_each_pair_with_its_people_marked(tiny_encoder: Path):
    from kgreason.models.story_reader import StoryReaderConfig, build_story_reader

    torch.manual_seed(0)
    reader = build_story_reader(StoryReaderConfig(encoder=str(tiny_encoder), max_length=64, context="marked"))
    features = reader.featurize(ANN, targets=True)
    # (Ann, Bob) from the sentence naming both; (Bob, Carl) from the join of sentences 2 and 3
    assert [(pair, len(features.segments[g]) > 0) for g, pair, _, _ in features.marked] == [
        (0, True),
        (1, True),
    ]
    text = reader.tokenizer.decode(features.segments[0])
    assert "@ ann @" in text and "# bob #" in text
    for g, _, a, b in features.marked:
        assert reader.tokenizer.convert_ids_to_tokens(features.segments[g][a]) == "@"
        assert reader.tokenizer.convert_ids_to_tokens(features.segments[g][b]) == "#"
    out = reader.eval()([features])
    assert out.families[0].shape == (2, len(FAMILIES)) and out.genders[0].shape == (3, 2)
    assert torch.allclose(out.genders[0].exp().sum(-1), torch.ones(3))
