"""What a story reader is given and what it is taught: people, their mentions, candidate pairs, gold targets.

The reader's input is the story text and its people (``metadata["people"]``: the names the text marks, in order
of first mention; CLUTRR brackets them), never the gold facts or genders. :func:`story_layout` finds every
whole-word mention of each person, the sentence it sits in, and the candidate pairs: two people mentioned in the
same sentence, or one named alone in a sentence and one in the sentence before it (facts told across a sentence
boundary through a pronoun, "[Tom] went fishing with his brother. His name is [Ann]."). Each candidate pair ``(a, b)`` is ordered by first mention
(``a`` before ``b``); its target is the relation *family* of ``b`` to ``a`` (``child``: ``b`` is ``a``'s child),
or ``none``; the family of ``(b, a)`` is its inverse. A person's target gender comes from the gold genders.
Gold facts and genders are read only by :func:`story_targets` (training and scoring), never by the layout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kgreason.core.example import Example
from kgreason.rules.kinship import FAMILIES, FAMILY_INVERSE, GENDERS, RELATION_FAMILY

#: Target for a candidate pair whose relation the data leave unknown (an untyped noise edge): not scored.
IGNORE = -100


@dataclass(frozen=True, kw_only=True)
class Mention:
    """One whole-word mention of a person: character span in the text and the sentence it is in."""

    person: int
    start: int
    end: int
    sentence: int


@dataclass(frozen=True, kw_only=True)
class StoryLayout:
    """A story's people, their mentions, and its candidate pairs ``(a, b)`` with ``a < b`` (first-mention order)."""

    people: list[str]
    mentions: list[Mention]
    pairs: list[tuple[int, int]]
    sentences: list[tuple[int, int]]  # character span of each sentence in the text
    joins: list[tuple[int, int]]  # adjacent sentences read together (one of them names a single person)


@dataclass(frozen=True, kw_only=True)
class StoryTargets:
    """Gold targets of a layout: family index per candidate pair (``IGNORE`` = unknown), gender index per person
    (``IGNORE`` = unknown), and the gold facts no candidate pair covers (a reader cannot find them)."""

    families: list[int]
    genders: list[int]
    uncovered: int


def _sentence_starts(text: str, sentences: Sequence[str]) -> list[int]:
    """Character offset of each sentence in ``text`` (sentences found in order; unfound ones start where the
    previous one ended)."""
    starts, at = [], 0
    for sentence in sentences:
        found = text.find(sentence, at)
        starts.append(at if found < 0 else found)
        at = at if found < 0 else found + len(sentence)
    return starts


def story_layout(example: Example, *, window: int = 1) -> StoryLayout:
    """People, mentions and candidate pairs of ``example``: people named in one sentence, and (``window`` 1)
    the people of a sentence that names a single person with those of the sentence before it (after it, for
    the first sentence)."""
    text = example.text
    people = list(example.metadata.get("people") or [])
    starts = _sentence_starts(text, example.metadata.get("sentences") or [text]) or [0]
    mentions: list[Mention] = []
    for p, name in enumerate(people):
        for match in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text):
            sentence = sum(1 for s in starts[1:] if s <= match.start())
            mentions.append(Mention(person=p, start=match.start(), end=match.end(), sentence=sentence))
    mentions.sort(key=lambda m: m.start)
    named: dict[int, set[int]] = {}
    for m in mentions:
        named.setdefault(m.sentence, set()).add(m.person)
    pairs: set[tuple[int, int]] = set()
    for people_here in named.values():
        pairs.update((a, b) for a in people_here for b in people_here if a < b)
    joins: list[tuple[int, int]] = []
    if window:  # a sentence naming one person ("His name is Brian.") is read with its neighbour
        for sentence, people_here in sorted(named.items()):
            if len(people_here) == 1:
                other = sentence - 1 if sentence > 0 else sentence + 1
                if other in named:
                    joins.append((min(sentence, other), max(sentence, other)))
                    pairs.update((min(a, b), max(a, b)) for a in people_here for b in named[other] if a != b)
    ends = [*starts[1:], len(text)]
    return StoryLayout(
        people=people,
        mentions=mentions,
        pairs=sorted(pairs),
        sentences=list(zip(starts, ends, strict=True)),
        joins=sorted(set(joins)),
    )


def story_targets(example: Example, layout: StoryLayout) -> StoryTargets:
    """The gold family of every candidate pair and the gold gender of every person of ``layout``."""
    index = {name: p for p, name in enumerate(layout.people)}
    gold: dict[tuple[int, int], int] = {}
    uncovered = 0
    candidates = set(layout.pairs)
    for head, relation, tail in example.facts or []:
        if head not in index or tail not in index or relation not in RELATION_FAMILY:
            continue
        a, b = index[head], index[tail]
        family = RELATION_FAMILY[relation][0]
        if a > b:
            a, b, family = b, a, FAMILY_INVERSE[family]
        if (a, b) not in candidates:
            uncovered += 1
        gold[(a, b)] = FAMILIES.index(family)
    for pair in example.metadata.get("untyped_edges") or []:
        if len(pair) == 2 and pair[0] in index and pair[1] in index:
            a, b = sorted((index[pair[0]], index[pair[1]]))
            gold.setdefault((a, b), IGNORE)
    genders: Mapping[str, str] = example.metadata.get("genders") or {}
    return StoryTargets(
        families=[gold.get(pair, 0) for pair in layout.pairs],
        genders=[GENDERS.index(genders[n]) if genders.get(n) in GENDERS else IGNORE for n in layout.people],
        uncovered=uncovered,
    )
