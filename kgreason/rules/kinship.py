"""Kinship helpers: the shipped CLUTRR rule file, story triples -> atoms, and rule-based answers."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from kgreason.rules.chaining import FactAtom, RuleEvaluationError, forward_chain
from kgreason.rules.language import RuleSet, load_rules

#: The 18 CLUTRR target labels (relation names; "tail is head's <label>").
KINSHIP_LABELS: tuple[str, ...] = (
    "aunt", "brother", "daughter", "daughter-in-law", "father", "father-in-law", "granddaughter", "grandfather",
    "grandmother", "grandson", "mother", "mother-in-law", "nephew", "niece", "sister", "son", "son-in-law", "uncle",
)  # fmt: skip
#: The 14 CLUTRR story edge types.
STORY_RELATIONS: tuple[str, ...] = (
    "aunt", "brother", "daughter", "father", "granddaughter", "grandfather", "grandmother", "grandson", "husband",
    "mother", "sister", "son", "uncle", "wife",
)  # fmt: skip
#: CLUTRR's own spellings of some relation names.
ALIASES: dict[str, str] = {"neice": "niece"}
GENDERS = ("male", "female")


def kinship_rules_path() -> Path:
    """The shipped ``knowledge/rules/kinship.rules`` (package data)."""
    from kgreason.core.resources import knowledge_path

    return knowledge_path("rules", "kinship.rules")


def kinship_rules(path: str | Path | None = None) -> RuleSet:
    """The kinship rule set (``knowledge/rules/kinship.rules`` unless ``path`` is given); parsed once."""
    return _load_cached(str(Path(path).resolve() if path is not None else kinship_rules_path()))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> RuleSet:
    return load_rules(path)


def _relation(name: str) -> str:
    return ALIASES.get(name, name)


def facts_from_triples(
    triples: Iterable[tuple[Hashable, str, Hashable]],
    *,
    genders: Mapping[Hashable, str] | None = None,
    world: Hashable | None = None,
) -> list[FactAtom]:
    """Atoms for :func:`forward_chain` from ``(head, relation, tail)`` triples and ``{name: "male"|"female"}``.

    With ``world`` set, every constant becomes ``(world, name)`` so that many stories can share one call.
    """

    def c(name: Hashable) -> Hashable:
        return name if world is None else (world, name)

    atoms: list[FactAtom] = []
    for n, triple in enumerate(triples):
        if len(triple) != 3:
            raise RuleEvaluationError(f"triple #{n}: expected (head, relation, tail), got {triple!r}")
        h, r, t = triple
        atoms.append((_relation(r), (c(h), c(t))))
    for name, gender in (genders or {}).items():
        if gender not in GENDERS:
            raise RuleEvaluationError(f"gender of {name!r}: expected 'male' or 'female', got {gender!r}")
        atoms.append((gender, (c(name),)))
    return atoms


def derived_labels(
    rules: RuleSet,
    *,
    facts: Sequence[Iterable[tuple[Hashable, str, Hashable]]],
    genders: Sequence[Mapping[Hashable, str] | None],
    queries: Sequence[tuple[Hashable, Hashable]],
    labels: Sequence[str] = KINSHIP_LABELS,
) -> np.ndarray:
    """``(n, L)`` booleans: which of ``labels`` the rules derive for each story's query, in one chaining call."""
    if not (len(facts) == len(genders) == len(queries)):
        raise ValueError(
            f"expected as many genders and queries as stories, got {len(facts)}, {len(genders)}, {len(queries)}"
        )
    atoms: list[FactAtom] = []
    for w, (story, g) in enumerate(zip(facts, genders, strict=True)):
        atoms.extend(facts_from_triples(story, genders=g, world=w))
    closure = forward_chain(rules, facts=atoms)
    heads = closure.ids((w, q[0]) for w, q in enumerate(queries))
    tails = closure.ids((w, q[1]) for w, q in enumerate(queries))
    pairs = np.stack([heads, tails], axis=1)  # (n, 2)
    if not len(labels):
        return np.zeros((len(queries), 0), dtype=bool)
    return np.stack([closure.holds_many(_relation(lab), pairs) for lab in labels], axis=1)  # (n, L)


def answers(
    rules: RuleSet,
    *,
    facts: Sequence[Iterable[tuple[Hashable, str, Hashable]]],
    genders: Sequence[Mapping[Hashable, str] | None],
    queries: Sequence[tuple[Hashable, Hashable]],
    labels: Sequence[str] = KINSHIP_LABELS,
) -> list[str | None]:
    """:func:`answer` for many stories in one vectorised :func:`forward_chain` call."""
    derived = derived_labels(rules, facts=facts, genders=genders, queries=queries, labels=labels)  # (n, L)
    unique = derived.sum(axis=1) == 1  # (n,)
    best = derived.argmax(axis=1)  # (n,)
    return [labels[int(b)] if u else None for b, u in zip(best.tolist(), unique.tolist(), strict=True)]


def answer(
    rules: RuleSet,
    *,
    facts: Iterable[tuple[Hashable, str, Hashable]],
    genders: Mapping[Hashable, str] | None = None,
    query: tuple[Hashable, Hashable],
    labels: Sequence[str] = KINSHIP_LABELS,
) -> str | None:
    """The unique label among ``labels`` that the rules derive for ``query = (head, tail)``, else None."""
    return answers(rules, facts=[list(facts)], genders=[genders], queries=[query], labels=labels)[0]
