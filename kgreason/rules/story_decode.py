"""Decoding a read story into facts the rules compose: the "constrain" stage between a story reader and chaining.

The reader gives, per candidate pair ``(a, b)`` (``a`` mentioned first), log-probabilities over the relation
:data:`~kgreason.rules.kinship.FAMILIES` of ``b`` to ``a`` (``none`` first), and per person log-probabilities of
the two genders. Decoding is joint, under the kinship vocabulary's constraints:

* one family per pair and inverse consistency: ``(b, a)`` holds the inverse family, never an independent guess;
* one gender per person, shared by all of that person's facts: a fact's relation is its family gendered by the
  person it describes (``child`` + ``female`` = ``daughter``), so no fact contradicts the gender denials;
* the query's chain: the most probable path from the query's head to its tail over all candidate pairs
  (edge cost ``-log P(not none)``), so a pair the reader missed can still be bridged and noise facts off the
  chain (irrelevant or disconnected ones) are not composed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kgreason.rules.kinship import FAMILIES, FAMILY_INVERSE, GENDERED_RELATION, GENDERS

Fact = tuple[str, str, str]


@dataclass(frozen=True, kw_only=True)
class DecodedStory:
    """What a story was read as: every pair read as related (``facts``), the query's chain (``path``, facts in
    chain order; empty when the query's people are not both mentioned), and each person's gender."""

    facts: list[Fact]
    path: list[Fact]
    genders: dict[str, str]


def _fact(people: Sequence[str], a: int, b: int, family: str, genders: dict[str, str]) -> Fact:
    """``(people[a], relation, people[b])``: ``b`` is ``a``'s ``family``, gendered by ``b``'s gender."""
    return people[a], GENDERED_RELATION[(family, genders[people[b]])], people[b]


def decode_story(
    *,
    people: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    families: np.ndarray,
    genders: np.ndarray,
    query: tuple[str, str],
) -> DecodedStory:
    """Joint decoding of one story (see the module docstring).

    Args:
        people: the story's people, in mention order.
        pairs: the candidate pairs ``(a, b)``, ``a < b``.
        families: ``(P, F)`` log-probabilities over :data:`FAMILIES` per pair.
        genders: ``(N, 2)`` log-probabilities over :data:`GENDERS` per person.
        query: ``(head, tail)`` names.
    """
    import networkx as nx

    gender_of = {name: GENDERS[int(np.argmax(genders[p]))] for p, name in enumerate(people)}
    best = np.argmax(families[:, 1:], axis=1) + 1 if len(pairs) else np.zeros(0, dtype=int)  # (P,)
    facts = [
        _fact(people, a, b, FAMILIES[int(best[n])], gender_of)
        for n, (a, b) in enumerate(pairs)
        if int(np.argmax(families[n])) != 0
    ]
    graph = nx.Graph()
    for n, (a, b) in enumerate(pairs):
        related = 1.0 - math.exp(float(families[n, 0]))
        graph.add_edge(a, b, cost=-math.log(max(related, 1e-12)), pair=n)
    index = {name: p for p, name in enumerate(people)}
    head, tail = index.get(query[0]), index.get(query[1])
    path: list[Fact] = []
    if head is not None and tail is not None and head in graph and tail in graph:
        try:
            nodes = nx.dijkstra_path(graph, head, tail, weight="cost")
        except nx.NetworkXNoPath:
            nodes = []
        for u, v in itertools.pairwise(nodes):
            n = graph.edges[u, v]["pair"]
            family = FAMILIES[int(best[n])]
            path.append(_fact(people, u, v, family if u < v else FAMILY_INVERSE[family], gender_of))
    return DecodedStory(facts=facts, path=path, genders=gender_of)
