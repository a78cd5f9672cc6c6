"""Reasoning from the story text alone: the story reader reads the graph, the decoder constrains it, the rules
compose it (:class:`ReaderPredictor`), and how well the reading went (:func:`reader_quality`).

At test time the predictor is given the story text, its marked names (``metadata["people"]``) and the query;
never the gold facts or genders (they only score the reading).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kgreason.bench.predictors import RulePredictor
from kgreason.core.example import Example


@dataclass
class Reading:
    """What the reader made of a list of stories: per story the decoded facts, chain and genders."""

    decoded: list[Any]
    quality: dict[int, dict[str, float]] = field(default_factory=dict)


class ReaderPredictor(RulePredictor):
    """Story reader + joint decoding + forward chaining of ``rules`` over the decoded chain.

    The rules compose the chain the decoder found between the query's people; where that derives nothing (a
    chain the rules cannot compose), every fact read is chained instead. Ambiguous derivations are resolved as
    :class:`RulePredictor` does, from the training stories' gold facts (:meth:`fit`).
    """

    name = "reader"

    def __init__(
        self, *, reader: Any, rules: Any, labels: Sequence[str], name: str = "reader", batch_size: int = 32
    ) -> None:
        super().__init__(rules=rules, labels=labels)
        self.reader = reader
        self.name = name
        self.batch_size = batch_size
        self.last: Reading | None = None

    def read(self, examples: Sequence[Example]) -> Reading:
        """Read and decode ``examples``; scores the reading where the stories carry gold facts."""
        from kgreason.rules.story_decode import decode_story

        dtype = torch.bfloat16 if self.reader.pair_head[0].weight.device.type == "cpu" else None
        readings = self.reader.read(examples, batch_size=self.batch_size, dtype=dtype)
        decoded = [
            decode_story(
                people=r.layout.people,
                pairs=r.layout.pairs,
                families=r.families,
                genders=r.genders,
                query=tuple(e.metadata["query"][:2]),
            )
            for e, r in zip(examples, readings, strict=True)
        ]
        return Reading(decoded=decoded, quality=reader_quality(examples, readings, decoded))

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        examples = list(examples)
        self.last = self.read(examples)
        paths = [d.path for d in self.last.decoded]
        derived = self.derived(examples, paths)  # (N, L)
        empty = ~derived.any(-1)
        if empty.any():
            everything = [d.facts for d in self.last.decoded]
            derived[empty] = self.derived(
                [examples[i] for i in empty.nonzero()[0]], [everything[i] for i in empty.nonzero()[0]]
            )
        return self.scores(derived, self.keys(examples, paths))  # (N, L)


def reader_quality(
    examples: Sequence[Example], readings: Sequence[Any], decoded: Sequence[Any]
) -> dict[int, dict[str, float]]:
    """Per depth: relation accuracy of the gold facts (the decoded relation, in the fact's direction),
    pair recall and precision (pairs read as related vs the gold facts' pairs), gender accuracy, and the share of
    stories whose every fact and gender was read right. Stories without gold facts are skipped."""

    totals: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for example, _reading, story in zip(examples, readings, decoded, strict=True):
        if not example.facts:
            continue
        t = totals[int(example.metadata.get("depth", 0))]
        read = {}
        for head, relation, tail in story.facts:
            read[(head, tail)] = relation
        gold_pairs = {frozenset((h, t_)) for h, _, t_ in example.facts}
        right = 0
        for head, relation, tail in example.facts:
            right += read.get((head, tail)) == relation or _inverse_read(
                read, head, relation, tail, story.genders
            )
        found = {frozenset((h, t_)) for h, _, t_ in story.facts}
        ignored = {frozenset(p) for p in example.metadata.get("untyped_edges") or [] if len(p) == 2}
        genders = example.metadata.get("genders") or {}
        gender_right = sum(story.genders.get(n) == g for n, g in genders.items())
        t["facts"] += len(example.facts)
        t["relation_right"] += right
        t["pairs_found"] += len(gold_pairs & found)
        t["pairs_gold"] += len(gold_pairs)
        t["pairs_read"] += len(found - ignored)
        t["people"] += len(genders)
        t["gender_right"] += gender_right
        t["stories"] += 1
        t["stories_right"] += right == len(example.facts) and gender_right == len(genders)
    out = {}
    for depth, t in sorted(totals.items()):
        out[depth] = {
            "relation_accuracy": t["relation_right"] / max(t["facts"], 1),
            "pair_recall": t["pairs_found"] / max(t["pairs_gold"], 1),
            "pair_precision": t["pairs_found"] / max(t["pairs_read"], 1),
            "gender_accuracy": t["gender_right"] / max(t["people"], 1),
            "story_exact": t["stories_right"] / max(t["stories"], 1),
            "stories": int(t["stories"]),
        }
    return out


def _inverse_read(read: dict, head: str, relation: str, tail: str, genders: dict[str, str]) -> bool:
    """Whether the fact was read in the other direction as its inverse (``(tail, inverse, head)``)."""
    from kgreason.rules.kinship import FAMILY_INVERSE, GENDERED_RELATION, RELATION_FAMILY

    other = read.get((tail, head))
    if other is None or relation not in RELATION_FAMILY or other not in RELATION_FAMILY:
        return False
    family = RELATION_FAMILY[relation][0]
    expected = GENDERED_RELATION.get((FAMILY_INVERSE[family], genders.get(head, "")))
    return other == expected and GENDERED_RELATION.get((family, genders.get(tail, ""))) == relation
