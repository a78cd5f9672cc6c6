"""The kinship pack: the kinship vocabulary (labels, story relations, gendered forms, inverses, relation words),
the shipped CLUTRR rule file, story triples -> atoms, and rule-based answers."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from kgreason.rules.chaining import FactAtom, RuleEvaluationError, forward_chain
from kgreason.rules.language import RuleSet, load_rules

# ----------------------------------------------------------------------------------------- the vocabulary
# The one home of the kinship vocabulary: data (CLUTRR reader, story generator) and probes (interventions)
# import it from here. A fact ``(head, r, tail)`` says that ``tail`` is ``head``'s ``r``.

#: The 18 CLUTRR target labels (relation names; "tail is head's <label>"), sorted (label-id order).
KINSHIP_LABELS: tuple[str, ...] = (
    "aunt", "brother", "daughter", "daughter-in-law", "father", "father-in-law", "granddaughter", "grandfather",
    "grandmother", "grandson", "mother", "mother-in-law", "nephew", "niece", "sister", "son", "son-in-law", "uncle",
)  # fmt: skip
#: The 14 CLUTRR story edge types (the labels less in-laws and niece / nephew, plus husband and wife).
STORY_RELATIONS: tuple[str, ...] = (
    "aunt", "brother", "daughter", "father", "granddaughter", "grandfather", "grandmother", "grandson", "husband",
    "mother", "sister", "son", "uncle", "wife",
)  # fmt: skip
#: CLUTRR's own spellings of some relation names.
ALIASES: dict[str, str] = {"neice": "niece"}
GENDERS = ("male", "female")
#: Relation family -> (male relation, female relation).
GENDERED_RELATIONS: dict[str, tuple[str, str]] = {
    "spouse": ("husband", "wife"),
    "parent": ("father", "mother"),
    "child": ("son", "daughter"),
    "sibling": ("brother", "sister"),
    "grandparent": ("grandfather", "grandmother"),
    "grandchild": ("grandson", "granddaughter"),
    "auntuncle": ("uncle", "aunt"),
    "niecenephew": ("nephew", "niece"),
    "childinlaw": ("son-in-law", "daughter-in-law"),
    "parentinlaw": ("father-in-law", "mother-in-law"),
}
#: (relation family, gender) -> the relation (``("parent", "female") -> "mother"``).
GENDERED_RELATION: dict[tuple[str, str], str] = {
    (family, gender): pair[i]
    for family, pair in GENDERED_RELATIONS.items()
    for i, gender in enumerate(GENDERS)
}
#: The gender of the person a kinship relation describes (the tail of ``(head, r, tail)``).
KINSHIP_GENDER: dict[str, str] = {relation: gender for (_, gender), relation in GENDERED_RELATION.items()}
#: Relation -> (its family, the family of its inverse), for the story edge types and niece / nephew.
RELATION_FAMILY: dict[str, tuple[str, str]] = {
    "son": ("child", "parent"),
    "daughter": ("child", "parent"),
    "father": ("parent", "child"),
    "mother": ("parent", "child"),
    "husband": ("spouse", "spouse"),
    "wife": ("spouse", "spouse"),
    "brother": ("sibling", "sibling"),
    "sister": ("sibling", "sibling"),
    "grandson": ("grandchild", "grandparent"),
    "granddaughter": ("grandchild", "grandparent"),
    "grandfather": ("grandparent", "grandchild"),
    "grandmother": ("grandparent", "grandchild"),
    "uncle": ("auntuncle", "niecenephew"),
    "aunt": ("auntuncle", "niecenephew"),
    "nephew": ("niecenephew", "auntuncle"),
    "niece": ("niecenephew", "auntuncle"),
}
#: The relation families a pair can hold (``b`` is ``a``'s <family>), ``none`` first.
FAMILIES: tuple[str, ...] = (
    "none", "child", "parent", "spouse", "sibling", "grandchild", "grandparent", "niecenephew", "auntuncle",
)  # fmt: skip
#: Family -> the family of the reversed pair (``child`` of a is ``parent`` of b).
FAMILY_INVERSE: dict[str, str] = {"none": "none", **dict(RELATION_FAMILY.values())}
#: Family index -> the index of its inverse.
INVERSE_INDEX: tuple[int, ...] = tuple(FAMILIES.index(FAMILY_INVERSE[f]) for f in FAMILIES)
#: Relation words in story sentences (lower case, plurals and familiar forms) -> the relation they name.
RELATION_WORDS: dict[str, str] = {
    "son": "son",
    "sons": "son",
    "daughter": "daughter",
    "daughters": "daughter",
    "father": "father",
    "dad": "father",
    "daddy": "father",
    "mother": "mother",
    "mom": "mother",
    "mommy": "mother",
    "husband": "husband",
    "wife": "wife",
    "brother": "brother",
    "brothers": "brother",
    "sister": "sister",
    "sisters": "sister",
    "grandson": "grandson",
    "grandsons": "grandson",
    "granddaughter": "granddaughter",
    "granddaughters": "granddaughter",
    "grandfather": "grandfather",
    "grandpa": "grandfather",
    "grandmother": "grandmother",
    "grandma": "grandmother",
    "uncle": "uncle",
    "aunt": "aunt",
    "nephew": "nephew",
    "niece": "niece",
    "neice": "niece",
}


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
