"""Interventions on reasoning examples: pure functions that return NEW examples (the input is never mutated).

Every intervention keeps the text and the facts consistent: ``metadata["sentences"]``, ``["fact_sentences"]``
and ``["path"]`` are updated with the facts, ``text == " ".join(sentences)``, and ``metadata["intervention"]``
records what was done. Examples follow the kinship conventions of :mod:`kgreason.data.clutrr` (a fact
``(head, r, tail)`` says that ``tail`` is ``head``'s ``r``); the kinship specifics (story relations, the gender a
relation describes) come from the kinship pack, :mod:`kgreason.rules.kinship`, as overridable defaults.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from kgreason.core.errors import KGReasonError
from kgreason.core.example import Example
from kgreason.rules.kinship import KINSHIP_GENDER, STORY_RELATIONS

if TYPE_CHECKING:
    from kgreason.rules import RuleSet

#: The perturbations of :func:`perturb_graph` (Raman et al., ICLR 2021).
PERTURBATIONS = ("relation_swap", "rewire", "delete")

Renderer = Callable[..., str]


class InterventionError(KGReasonError, ValueError):
    """An example lacks what an intervention needs (the story's sentences, a person's gender, spare names)."""


# ------------------------------------------------------------------------------------------------ story view


@dataclass(frozen=True)
class _Story:
    facts: list[tuple[str, str, str]]
    sentences: list[str]
    fact_sentences: list[int | None]
    path: list[int]


def _story(example: Example) -> _Story:
    """The example's facts, sentences and links between them, checked."""
    where = f"example {example.uid!r}" if example.uid else "example"
    if example.facts is None:
        raise InterventionError(f"{where} has no facts (expected a reasoning example with a story graph)")
    meta = example.metadata
    facts = [tuple(f) for f in example.facts]
    sentences = meta.get("sentences")
    if sentences is None:
        raise InterventionError(
            f"{where}: metadata has no 'sentences' (expected the story's sentences in order)"
        )
    fact_sentences = meta.get("fact_sentences")
    if fact_sentences is None or len(fact_sentences) != len(facts):
        raise InterventionError(
            f"{where}: metadata 'fact_sentences' must give one sentence index (or None) per fact "
            f"({len(facts)} facts, got {None if fact_sentences is None else len(fact_sentences)})"
        )
    for i, s in enumerate(fact_sentences):
        if s is not None and not 0 <= s < len(sentences):
            raise InterventionError(
                f"{where}: fact {i} points at sentence {s}, but there are {len(sentences)}"
            )
    path = meta.get("path", list(range(len(facts))))
    if any(not 0 <= p < len(facts) for p in path):
        raise InterventionError(f"{where}: metadata 'path' {path} indexes outside the {len(facts)} facts")
    return _Story(facts, list(sentences), list(fact_sentences), list(path))  # type: ignore[arg-type]


def _rebuild(
    example: Example,
    *,
    story: _Story,
    intervention: dict[str, Any],
    label: Any = None,
    keep_label: bool = True,
) -> Example:
    """A new example with ``story``'s facts and sentences; earlier interventions are kept in a list."""
    meta = copy.deepcopy(example.metadata)
    meta["sentences"] = list(story.sentences) or [EMPTY_STORY]  # text encoders need a non-empty input
    meta["fact_sentences"] = list(story.fact_sentences)
    meta["path"] = list(story.path)
    previous = meta.get("intervention")
    meta["intervention"] = intervention if previous is None else {**intervention, "previous": previous}
    return replace(
        example,
        text=" ".join(meta["sentences"]),
        facts=[tuple(f) for f in story.facts],  # type: ignore[misc]
        label=example.label if keep_label else label,
        metadata=meta,
    )


#: The text of a story whose every sentence was removed (text encoders need a non-empty input).
EMPTY_STORY = "Nothing is told about this family."


def _without_facts(story: _Story, dropped: set[int]) -> _Story:
    """``story`` less the facts in ``dropped`` (sentences unchanged)."""
    kept = [i for i in range(len(story.facts)) if i not in dropped]
    new_index = {old: new for new, old in enumerate(kept)}
    return _Story(
        facts=[story.facts[i] for i in kept],
        sentences=story.sentences,
        fact_sentences=[story.fact_sentences[i] for i in kept],
        path=[new_index[p] for p in story.path if p in new_index],
    )


def _splice_sentences(story: _Story, replacements: Mapping[int, Sequence[str]]) -> _Story:
    """Replace sentence ``i`` by the sentences ``replacements[i]`` (none: removed); facts keep pointing at theirs.

    A fact whose sentence is replaced by several points at the first; by none, at ``None``.
    """
    sentences: list[str] = []
    first: dict[int, int | None] = {}
    for i, sentence in enumerate(story.sentences):
        new = [sentence] if i not in replacements else list(replacements[i])
        first[i] = len(sentences) if new else None
        sentences.extend(new)
    return _Story(
        facts=story.facts,
        sentences=sentences,
        fact_sentences=[None if s is None else first[s] for s in story.fact_sentences],
        path=story.path,
    )


# ----------------------------------------------------------------------------------------------- drop facts


def drop_facts(example: Example, *, which: str = "path") -> Example:
    """Remove the facts on the reasoning path (``which="path"``) or all facts, and the sentences stating them.

    A fact whose sentence goes (because the sentence also states a dropped fact) goes too, so the text states
    exactly the facts that remain. The label is kept: a model that reasons from the facts should now fail.
    """
    if which not in ("path", "all"):
        raise ValueError(f"which must be 'path' or 'all', got {which!r}")
    story = _story(example)
    targets = set(story.path) if which == "path" else set(range(len(story.facts)))
    gone_sentences = {story.fact_sentences[i] for i in targets} - {None}
    dropped = targets | {i for i, s in enumerate(story.fact_sentences) if s in gone_sentences}
    new = _splice_sentences(_without_facts(story, dropped), dict.fromkeys(gone_sentences, ()))
    return _rebuild(
        example,
        story=new,
        intervention={
            "kind": "drop_facts",
            "which": which,
            "dropped_facts": sorted(dropped),
            "dropped_sentences": sorted(gone_sentences),  # type: ignore[type-var]
        },
    )


# ------------------------------------------------------------------------------------------------ edit fact


def edit_fact(
    example: Example,
    *,
    rules: RuleSet,
    labels: Sequence[str],
    rng: random.Random | int | None = None,
    relations: Sequence[str] | None = None,
    render: Renderer | None = None,
    relation_gender: Mapping[str, str] = KINSHIP_GENDER,
) -> Example | None:
    """Change the relation of one path fact and relabel the example with the rules' new answer.

    The new relation describes a person of the same gender as the fact's tail (mother -> grandmother, sister,
    aunt, wife, daughter, ...; ``relation_gender`` maps a relation to the gender of the person it describes, default
    the kinship pack's ``kgreason.rules.kinship.KINSHIP_GENDER``), is one of ``relations`` (default: CLUTRR's 14
    story edge types, ``kgreason.rules.kinship.STORY_RELATIONS``), and the fact's
    sentence is re-rendered with ``render`` (default :func:`kgreason.data.kinship.render_fact`). The label becomes
    the unique relation among ``labels`` that ``rules`` derive for the query, which must differ from the old
    label, with no integrity constraint violated. Returns ``None`` when no edit qualifies. See
    :func:`edit_facts` for many examples at once (one forward-chaining call per round).
    """
    return edit_facts(
        [example],
        rules=rules,
        labels=labels,
        rng=rng,
        relations=relations,
        render=render,
        relation_gender=relation_gender,
    )[0]


def edit_facts(
    examples: Sequence[Example],
    *,
    rules: RuleSet,
    labels: Sequence[str],
    rng: random.Random | int | None = None,
    relations: Sequence[str] | None = None,
    render: Renderer | None = None,
    candidates_per_round: int = 8,
    relation_gender: Mapping[str, str] = KINSHIP_GENDER,
) -> list[Example | None]:
    """:func:`edit_fact` for many examples: candidate edits of all examples are checked together.

    Each example's candidate edits (path fact x same-gender relation) are tried in a random order; per round,
    the next ``candidates_per_round`` candidates of every example still without an edit run as independent
    worlds in ONE :func:`kgreason.rules.forward_chain` call, and the first that qualifies is kept (a uniform
    choice among the qualifying edits). Returns one example or ``None`` per input, in order.
    """
    from kgreason.rules import facts_from_triples, forward_chain

    rng = _as_rng(rng)
    if relations is None:
        relations = STORY_RELATIONS
    if render is None:
        from kgreason.data.kinship import render_fact

        render = render_fact
    labels = list(labels)
    stories = [_story(example) for example in examples]
    queues: list[list[tuple[int, str]]] = []
    for example, story in zip(examples, stories, strict=True):
        pairs = [
            (i, r)
            for i in sorted(set(story.path))
            for r in relations
            if r != story.facts[i][1] and _same_gender(r, story.facts[i][1], relation_gender)
        ]
        rng.shuffle(pairs)
        queues.append(pairs)
        _query(example)  # fail early on an example without a query
    chosen: dict[int, tuple[int, str, str]] = {}
    pending = [e for e in range(len(examples)) if queues[e]]
    while pending:
        worlds: list[tuple[int, int, str]] = []  # (example, fact, new relation)
        for e in pending:
            worlds.extend((e, i, r) for i, r in queues[e][:candidates_per_round])
            del queues[e][:candidates_per_round]
        atoms: list[Any] = []
        for w, (e, i, r) in enumerate(worlds):
            facts = list(stories[e].facts)
            facts[i] = (facts[i][0], r, facts[i][2])
            atoms.extend(facts_from_triples(facts, genders=_genders(examples[e]), world=w))
        closure = forward_chain(rules, facts=atoms)
        broken = _violated_worlds(closure)
        queries = [_query(examples[e]) for e, _, _ in worlds]
        pairs = np.stack(
            [
                closure.ids((w, q[0]) for w, q in enumerate(queries)),
                closure.ids((w, q[1]) for w, q in enumerate(queries)),
            ],
            axis=1,
        )  # (worlds, 2)
        derived = np.stack([closure.holds_many(label, pairs) for label in labels], axis=1)  # (worlds, labels)
        for w, (e, i, r) in enumerate(worlds):
            if e in chosen or w in broken or derived[w].sum() != 1:
                continue
            new_label = labels[int(derived[w].argmax())]
            if new_label != examples[e].label:
                chosen[e] = (i, r, new_label)
        pending = [e for e in pending if e not in chosen and queues[e]]
    out: list[Example | None] = []
    for e, (example, story) in enumerate(zip(examples, stories, strict=True)):
        if e not in chosen:
            out.append(None)
            continue
        i, relation, new_label = chosen[e]
        out.append(_apply_edit(example, story, i, relation, new_label, render=render, rng=rng))
    return out


def _apply_edit(
    example: Example,
    story: _Story,
    index: int,
    relation: str,
    new_label: str,
    *,
    render: Renderer,
    rng: random.Random,
) -> Example:
    head, old_relation, tail = story.facts[index]
    facts = list(story.facts)
    facts[index] = (head, relation, tail)
    edited = _Story(facts, story.sentences, story.fact_sentences, story.path)
    genders = _genders(example)
    s = story.fact_sentences[index]
    if s is not None:
        # re-render the sentence, and any other fact it stated, so the text states exactly the facts
        stated = [j for j, fs in enumerate(story.fact_sentences) if fs == s]
        spliced = _splice_sentences(
            edited, {s: [render(*facts[j], genders=genders, rng=rng) for j in stated]}
        )
        offsets = {
            j: k for k, j in enumerate(stated)
        }  # the k-th fact of sentence s gets the k-th new sentence
        edited = replace(
            spliced,
            fact_sentences=[
                fs if j not in offsets or fs is None else fs + offsets[j]
                for j, fs in enumerate(spliced.fact_sentences)
            ],
        )
    return _rebuild(
        example,
        story=edited,
        keep_label=False,
        label=new_label,
        intervention={
            "kind": "edit_fact",
            "fact": index,
            "from": old_relation,
            "to": relation,
            "original_label": example.label,
        },
    )


def _violated_worlds(closure: Any) -> set[Hashable]:
    """The worlds (constants are ``(world, name)``) in which an integrity constraint fires."""
    return {
        constant[0]
        for violation in closure.violations
        for constant in violation.binding.values()
        if isinstance(constant, tuple) and len(constant) == 2
    }


# --------------------------------------------------------------------------------------------- perturbations


def perturb_graph(
    example: Example,
    *,
    kind: str,
    fraction: float,
    rng: random.Random | int | None = None,
    relations: Sequence[str] | None = None,
) -> Example:
    """Perturb a ``fraction`` of the example's facts, after Raman et al. (ICLR 2021); the text is unchanged.

    * ``relation_swap``: the relation of each chosen fact is replaced by a different one from ``relations``
      (default: CLUTRR's 14 story edge types);
    * ``rewire``: the tail of each chosen fact is replaced by another person of the story graph, one not already
      linked to the head where there is one (Raman et al.'s edge rewiring);
    * ``delete``: the chosen facts are removed.

    ``round(fraction * n)`` facts are chosen (at least one when ``fraction > 0``). Changed facts no longer point
    at a sentence (``fact_sentences`` is ``None`` for them); ``metadata["intervention"]`` lists them.
    """
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {list(PERTURBATIONS)}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    rng = _as_rng(rng)
    story = _story(example)
    n = len(story.facts)
    count = min(n, max(round(fraction * n), 1 if fraction > 0 else 0))
    chosen = sorted(rng.sample(range(n), count))
    facts = list(story.facts)
    fact_sentences = list(story.fact_sentences)
    if kind == "delete":
        new = _without_facts(story, set(chosen))
    else:
        if kind == "relation_swap":
            if relations is None:
                relations = STORY_RELATIONS
            for i in chosen:
                h, r, t = facts[i]
                options = [x for x in relations if x != r]
                if options:
                    facts[i] = (h, rng.choice(options), t)
        else:
            people = sorted({p for h, _, t in facts for p in (h, t)} | set(_query(example)))
            for i in chosen:
                h, r, t = facts[i]
                linked = {b for a, _, b in facts if a == h} | {a for a, _, b in facts if b == h}
                options = [p for p in people if p not in linked and p not in (h, t)]
                options = options or [p for p in people if p not in (h, t)]
                if options:
                    facts[i] = (h, r, rng.choice(options))
        for i in chosen:
            if facts[i] != story.facts[i]:
                fact_sentences[i] = None
        new = _Story(facts, story.sentences, fact_sentences, story.path)
    return _rebuild(
        example,
        story=new,
        intervention={
            "kind": "perturb_graph",
            "perturbation": kind,
            "fraction": fraction,
            "changed_facts": chosen,
            "original_facts": [list(f) for f in story.facts],
        },
    )


# ----------------------------------------------------------------------------------------------- renaming


def rename_entities(
    example: Example,
    *,
    rng: random.Random | int | None = None,
    names_by_gender: Mapping[str, Sequence[str]] | None = None,
) -> Example:
    """Rename every person consistently (text, sentences, facts, query, genders, question) to unused names.

    Each person gets a new name of the same gender from ``names_by_gender`` (default: the kinship generator's
    name lists, :mod:`kgreason.data.names`), none of them a name already in the story or a word of its text. The label is unchanged.
    """
    rng = _as_rng(rng)
    if names_by_gender is None:
        from kgreason.data.names import FEMALE_NAMES, MALE_NAMES

        names_by_gender = {"male": MALE_NAMES, "female": FEMALE_NAMES}
    genders = _genders(example)
    story = _story(example)
    people: list[str] = []
    for name in [*genders, *(p for h, _, t in story.facts for p in (h, t)), *_query(example)]:
        if name not in people:
            people.append(name)
    where = f"example {example.uid!r}" if example.uid else "example"
    missing = [p for p in people if p not in genders]
    if missing:
        raise InterventionError(
            f"{where}: no gender for {missing} (expected metadata['genders'] for every person)"
        )
    words = set(re.findall(r"\w+", " ".join([example.text, example.text_pair or ""])))
    mapping: dict[str, str] = {}
    for gender in sorted({genders[p] for p in people}):
        group = [p for p in people if genders[p] == gender]
        pool = sorted({n for n in names_by_gender.get(gender, ()) if n not in words and n not in people})
        if len(pool) < len(group):
            raise InterventionError(
                f"{where}: {len(group)} {gender} people but only {len(pool)} unused {gender} names "
                f"(expected names_by_gender[{gender!r}] to hold enough names)"
            )
        mapping.update(zip(group, rng.sample(pool, len(group)), strict=True))
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(re.escape(p) for p in sorted(people, key=len, reverse=True)) + r")(?!\w)"
    )

    def in_text(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(1)], text)

    meta = _rename_values(copy.deepcopy(example.metadata), mapping)
    meta["sentences"] = [in_text(s) for s in story.sentences]
    previous = meta.get("intervention")
    record = {"kind": "rename_entities", "names": dict(mapping)}
    meta["intervention"] = record if previous is None else {**record, "previous": previous}
    return replace(
        example,
        text=in_text(example.text),
        text_pair=None if example.text_pair is None else in_text(example.text_pair),
        facts=[(mapping.get(h, h), r, mapping.get(t, t)) for h, r, t in story.facts],
        metadata=meta,
    )


def _rename_values(value: Any, mapping: Mapping[str, str]) -> Any:
    """``value`` with every string equal to a person's name (also as a dict key) replaced."""
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, dict):
        return {_rename_values(k, mapping): _rename_values(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_values(v, mapping) for v in value]
    if isinstance(value, tuple):
        return tuple(_rename_values(v, mapping) for v in value)
    return value


# ---------------------------------------------------------------------------------------------------- helpers


def _same_gender(a: str, b: str, relation_gender: Mapping[str, str]) -> bool:
    return relation_gender.get(a) is not None and relation_gender.get(a) == relation_gender.get(b)


def _as_rng(rng: random.Random | int | None) -> random.Random:
    return rng if isinstance(rng, random.Random) else random.Random(rng)


def _query(example: Example) -> tuple[str, str]:
    query = example.metadata.get("query")
    if query is None or len(query) != 2:
        where = f"example {example.uid!r}" if example.uid else "example"
        raise InterventionError(f"{where}: metadata 'query' must be [head, tail], got {query!r}")
    return query[0], query[1]


def _genders(example: Example) -> dict[str, str]:
    return dict(example.metadata.get("genders") or {})
