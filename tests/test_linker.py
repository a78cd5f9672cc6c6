"""Entity linking: normalisation, token-boundary matching, spans in the original text, ranking, real KBs."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kgreason.kb.linker import EntityLinker, alias_skip_reason, fold_token, normalise
from kgreason.kb.sources import open_kb
from kgreason.kb.store import TripleStore


def make_kb(
    labels: dict[str, str],
    *,
    aliases: dict[str, list[str]] | None = None,
    triples: list[tuple[str, str]] = (),
    unlabelled: tuple[str, ...] = (),
) -> TripleStore:
    """A store whose entities are ``labels`` keys (+ ``unlabelled``), linked by ``related`` edges."""
    keys = list(labels) + list(unlabelled)
    ids = {k: i for i, k in enumerate(keys)}
    rows = np.array([[ids[h], 0, ids[t]] for h, t in triples], dtype=np.int64).reshape(-1, 3)  # (n, 3)
    return TripleStore(
        name="tiny",
        entity_keys=keys,
        relation_keys=["related"],
        split_triples={"all": rows},
        entity_labels={ids[k]: v for k, v in labels.items()},
        entity_aliases={ids[k]: tuple(v) for k, v in (aliases or {}).items()},
    )


def spans(mentions) -> list[tuple[str, str]]:
    return [(m.surface, m.best.key) for m in mentions]


@pytest.mark.parametrize(
    ("plural", "singular"),
    [
        ("cities", "city"),
        ("boxes", "box"),
        ("churches", "church"),
        ("dishes", "dish"),
        ("buses", "bus"),
        ("classes", "class"),
        ("cats", "cat"),
        ("Banks", "bank"),
    ],
)
def test_regular_plurals_fold_onto_the_singular(plural, singular):
    assert fold_token(plural) == fold_token(singular)


def test_words_that_are_not_plurals_keep_their_s():
    assert fold_token("glass") == "glass"
    assert fold_token("virus") == "virus"
    assert fold_token("Paris") == "paris"
    assert fold_token("news") != fold_token("new")
    assert fold_token("gas") == "gas"  # three letters or fewer: case-fold only
    assert fold_token("1990s") == "1990s"  # digits: case-fold only
    assert fold_token("Hélène") == "helene"
    assert fold_token("Marie") == "marie"


@pytest.mark.parametrize(
    ("label", "text"),
    [("house", "Two Houses"), ("movie", "old movies"), ("White Horse", "white horses"), ("City", "cities")],
)
def test_plurals_the_rules_cannot_undo_still_link(label, text):
    kb = make_kb({"e": label})
    (mention,) = kb.link(text)
    assert mention.best.key == "e"
    assert text[mention.start : mention.end] == mention.surface


def test_plural_keys_match_plurals_only():
    kb = make_kb({"louise": "Louise", "marie": "Marie", "denise": "Denise"})
    assert (
        kb.link("Louis, Mary and Denis") == []
    )  # "Louise" + s folds to "louis"; a singular "Louis" is no plural
    assert spans(kb.link("the two Louises")) == [("Louises", "louise")]
    assert spans(kb.link("Louise and Marie")) == [("Louise", "louise"), ("Marie", "marie")]


def test_normalise_keeps_each_token_original_span():
    text = "  Hélène-Marie's CATS,\t(and) dogs_of  war"
    norm = normalise(text)
    assert norm.tokens == ("helene", "marie", "s", "cat", "and", "dog", "of", "war")
    assert norm.plural == (False, False, False, True, False, True, False, False)
    assert [text[s:e] for s, e in zip(norm.starts, norm.ends, strict=True)] == [
        "Hélène",
        "Marie",
        "s",
        "CATS",
        "and",
        "dogs",
        "of",
        "war",
    ]
    assert normalise("?!, ;").tokens == ()


def test_case_punctuation_and_plurals_map_back_to_original_spans():
    kb = make_kb({"acme": "Acme Bank", "nyc": "New York City", "ny": "New York", "york": "York"})
    text = "Last year ACME BANKS opened in new-york   city; York?"
    mentions = kb.link(text)
    assert spans(mentions) == [("ACME BANKS", "acme"), ("new-york   city", "nyc"), ("York", "york")]
    for m in mentions:
        assert text[m.start : m.end] == m.surface


def test_longest_match_wins_and_overlaps_are_dropped():
    kb = make_kb({"a": "Bank of America", "b": "America", "c": "Bank", "d": "America Tower"})
    # "Bank of America" (3 tokens) beats "America Tower" (2), which overlaps it on "America".
    assert spans(kb.link("Bank of America Tower")) == [("Bank of America", "a")]
    assert spans(kb.link("the Bank near America Tower")) == [("Bank", "c"), ("America Tower", "d")]


def test_matches_only_whole_tokens():
    kb = make_kb({"ada": "Ada", "paris": "Paris"})
    assert kb.link("Adam went to Parisian cafes in Adaline") == []
    assert spans(kb.link("(Ada) in Paris.")) == [("Ada", "ada"), ("Paris", "paris")]


def test_accents_fold_both_ways():
    kb = make_kb({"helene": "Hélène Roux", "jose": "Jose"})
    assert spans(kb.link("Helene Roux met José")) == [("Helene Roux", "helene"), ("José", "jose")]


def test_shared_alias_keeps_every_candidate_label_first():
    kb = make_kb(
        {"jordan": "Jordan", "mj": "Michael Jordan", "river": "Jordan River"},
        aliases={"mj": ["Jordan"], "river": ["the Jordan"]},
    )
    (mention,) = kb.link("Jordan scored")
    assert [c.key for c in mention.candidates] == ["jordan", "mj"]  # label beats alias
    assert sum(c.score for c in mention.candidates) == pytest.approx(1.0)
    assert mention.candidates[0].score > mention.candidates[1].score
    assert mention.best.label == "Jordan"


def test_exact_case_beats_case_folded_match():
    kb = make_kb({"fruit": "apple", "company": "Apple"})
    assert [c.key for c in kb.link("Apple sells phones")[0].candidates] == ["company", "fruit"]
    assert [c.key for c in kb.link("an apple a day")[0].candidates] == ["fruit", "company"]


def test_degree_breaks_ties():
    kb = make_kb(
        {"s1": "Springfield", "s2": "Springfield", "x": "X Corp", "y": "Y Corp"},
        triples=[("s2", "x"), ("s2", "y"), ("x", "y")],
    )
    (mention,) = kb.link("They moved to Springfield.")
    assert [c.key for c in mention.candidates] == ["s2", "s1"]
    assert mention.candidates[0].score > mention.candidates[1].score
    assert sum(c.score for c in mention.candidates) == pytest.approx(1.0)


def test_short_and_stop_word_aliases_are_skipped_capitals_are_case_sensitive():
    kb = make_kb(
        {"the": "The", "x": "X", "it": "it", "usa": "United States", "eu": "EU"},
        aliases={"usa": ["US"]},
    )
    linker = EntityLinker.from_kb(kb)
    assert linker.stats.skipped == 3  # "The", "X", "it"
    assert spans(linker.link("The US and the EU.")) == [("US", "usa"), ("EU", "eu")]
    assert linker.link("let us see it, the x") == []  # "US" only in capitals; the rest are not indexed
    assert alias_skip_reason("The") == "stop words only"
    assert alias_skip_reason("X") == "fewer than 2 letters or digits"
    assert alias_skip_reason("--") == "no letters or digits"
    assert alias_skip_reason("IT") is None
    stricter = EntityLinker.from_kb(kb, min_alias_chars=3)
    assert spans(stricter.link("The US and the EU.")) == []


def test_custom_stop_words():
    kb = make_kb({"le": "Le", "monde": "Le Monde"})
    assert spans(kb.link("le chat")) == [("le", "le")]  # not an English stop word
    french = EntityLinker.from_kb(kb, stop_words=["le", "la", "les"])
    assert french.link("le chat") == []
    assert spans(french.link("Il lit Le Monde")) == [("Le Monde", "monde")]
    assert french.stats.skipped == 1


def test_unlabelled_entities_link_by_readable_key():
    kb = make_kb({"paris": "Paris"}, unlabelled=("<http://example.org/New_Zealand>",))
    assert spans(kb.link("Flights from Paris to New Zealand")) == [
        ("Paris", "paris"),
        ("New Zealand", "<http://example.org/New_Zealand>"),
    ]


def test_text_without_entities_and_empty_kb():
    kb = make_kb({"paris": "Paris"})
    assert kb.link("nothing to see here") == []
    assert kb.link("") == []
    empty = TripleStore(
        name="empty", entity_keys=[], relation_keys=[], split_triples={"all": np.zeros((0, 3))}
    )
    linker = EntityLinker.from_kb(empty)
    assert len(linker) == 0
    assert linker.link("Paris") == []


def test_link_batch_and_kb_default_use_the_same_linker():
    kb = make_kb({"ada": "Ada Moreau", "lyon": "Lyon"})
    linker = EntityLinker.from_kb(kb)
    texts = ["Ada Moreau lives in Lyon.", "", "Lyon"]
    assert linker.link_batch(texts) == [linker.link(t) for t in texts]
    assert kb.link_batch(texts) == linker.link_batch(texts)


def test_random_texts_spans_always_slice_the_original():
    labels = {f"e{i}": name for i, name in enumerate(["Ada Moreau", "Lyon", "New York", "York", "St. Louis"])}
    kb = make_kb(labels)
    rng = random.Random(7)
    pieces = [*labels.values(), "and", "the", "ADA", "moreau's", "  ", "--", "é", "Yorks", "louis!"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) + rng.choice([" ", ", ", "-", "\n", "; ", ""]) for _ in range(8))
        mentions = kb.link(text)
        ends = [-1]
        for m in mentions:
            assert text[m.start : m.end] == m.surface
            assert m.start >= ends[-1]  # in order, no overlap
            ends.append(m.end)
            assert sum(c.score for c in m.candidates) == pytest.approx(1.0)


def test_fb15k237_links_known_entities(shared_data):
    kb = open_kb(shared_data / "kg" / "FB15k-237", progress=False)
    linker = EntityLinker.from_kb(kb)
    print(f"FB15k-237 linker: {linker.stats}")
    assert linker.stats.entities == 14541
    mentions = linker.link("Jeremy Irons and the Chicago Cubs visited Schleswig-Holstein.")
    assert spans(mentions) == [
        ("Jeremy Irons", "/m/016ywr"),
        ("Chicago Cubs", "/m/01yjl"),
        ("Schleswig-Holstein", "/m/06rf7"),
    ]
    rng = np.random.default_rng(0)
    for entity in rng.choice(kb.num_entities, size=300, replace=False).tolist():
        label = kb.entity_label(entity)
        if alias_skip_reason(label) is None:
            assert any(c.entity == entity for m in linker.link(label) for c in m.candidates), label


def test_wn18rr_ambiguous_lemmas(shared_data):
    kb = open_kb(shared_data / "kg" / "WN18RR", progress=False)
    linker = EntityLinker.from_kb(kb)
    print(f"WN18RR linker: {linker.stats}")
    mentions = linker.link("The land reform of Saxony, and stools.")
    assert spans(mentions)[:2] == [("land reform", "00260881"), ("Saxony", "08769179")]
    stools = mentions[2]
    assert stools.surface == "stools"
    assert {c.key for c in stools.candidates} == {"14854262", "04326896"}  # two senses of "stool"
