"""The built-in kinship story generator: CLUTRR-style stories from random families (kgreason's own, CC0).

A story is a chain of ``k`` facts ``p0 -r1-> p1 -r2-> ... -rk-> pk`` between distinct people of a random family,
each fact one sentence from ``knowledge/templates/kinship_stories.yaml``; the question asks how ``pk`` is related
to ``p0``. The true relation of every pair comes from the family tree itself (parents, spouses, siblings and
what they define), not from the rule file, so the rules can be checked against it; a story is kept only when its
true query relation is one of the 18 CLUTRR labels *and* the kinship rules derive exactly that label from the
story's facts and genders (every story is solvable by composition). Labels are balanced within each depth.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from kgreason.core.example import Example
from kgreason.data.splits import DatasetSplits
from kgreason.rules.kinship import GENDERED_RELATIONS, KINSHIP_LABELS, STORY_RELATIONS

NOISE_KINDS = ("clean", "supporting", "irrelevant", "disconnected")
SOURCE = "kinship-generator"

_PRONOUNS = {
    "male": {"his_her": "his", "he_she": "he", "him_her": "him"},
    "female": {"his_her": "her", "he_she": "she", "him_her": "her"},
}


@dataclass
class Family:
    """A random family tree: people ``0..n-1`` with a gender, their two parents (or ``None``) and a spouse."""

    genders: list[str]
    parents: list[tuple[int, int] | None]
    spouse: list[int | None]
    children: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.children:
            self.children = [[] for _ in self.genders]
            for child, pair in enumerate(self.parents):
                for parent in pair or ():
                    self.children[parent].append(child)

    def __len__(self) -> int:
        return len(self.genders)

    def relation(self, x: int, y: int) -> str | None:
        """The relation ``r`` with "``y`` is ``x``'s ``r``", by definition from the tree; ``None`` if unnamed."""
        kind = self._kind(x, y)
        if kind is None:
            return None
        male, female = GENDERED_RELATIONS[kind]
        return male if self.genders[y] == "male" else female

    def _parents(self, x: int) -> tuple[int, ...]:
        return self.parents[x] or ()

    def _siblings(self, x: int) -> set[int]:
        pair = self.parents[x]
        return set() if pair is None else {c for c in self.children[pair[0]] if c != x}

    def _aunts_uncles(self, x: int) -> set[int]:
        found: set[int] = set()
        for parent in self._parents(x):
            for sibling in self._siblings(parent):
                found.add(sibling)
                if self.spouse[sibling] is not None:
                    found.add(self.spouse[sibling])
        return found

    def _kind(self, x: int, y: int) -> str | None:
        if x == y:
            return None
        if self.spouse[x] == y:
            return "spouse"
        if y in self._parents(x):
            return "parent"
        if x in self._parents(y):
            return "child"
        if y in self._siblings(x):
            return "sibling"
        if any(y in self._parents(p) for p in self._parents(x)):
            return "grandparent"
        if any(x in self._parents(p) for p in self._parents(y)):
            return "grandchild"
        if y in self._aunts_uncles(x):
            return "auntuncle"
        if x in self._aunts_uncles(y):
            return "niecenephew"
        if any(self.spouse[c] == y for c in self.children[x]):
            return "childinlaw"
        if self.spouse[x] is not None and y in self._parents(self.spouse[x]):
            return "parentinlaw"
        return None


def random_family(
    rng: random.Random, *, generations: int = 5, max_children: int = 4, marry: float = 0.85
) -> Family:
    """A family of ``generations`` generations from one couple; children marry people from outside."""
    genders: list[str] = []
    parents: list[tuple[int, int] | None] = []
    spouse: list[int | None] = []

    def person(gender: str, pair: tuple[int, int] | None) -> int:
        genders.append(gender)
        parents.append(pair)
        spouse.append(None)
        return len(genders) - 1

    def wed(a: int) -> int:
        b = person("female" if genders[a] == "male" else "male", None)
        spouse[a], spouse[b] = b, a
        return b

    root = person(rng.choice(("male", "female")), None)
    couples = [(root, wed(root))]
    for generation in range(1, generations):
        next_couples = []
        for a, b in couples:
            for _ in range(rng.randint(1, max_children)):
                child = person(rng.choice(("male", "female")), (a, b))
                if generation < generations - 1 and rng.random() < marry:
                    next_couples.append((child, wed(child)))
        couples = next_couples
    return Family(genders=genders, parents=parents, spouse=spouse)


def templates_path() -> Path:
    """The shipped story templates, ``knowledge/templates/kinship_stories.yaml`` (package data)."""
    from kgreason.core.resources import knowledge_path

    return knowledge_path("templates", "kinship_stories.yaml")


@cache
def _templates() -> dict[str, tuple[str, ...]]:
    import yaml

    with open(templates_path(), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return {relation: tuple(options) for relation, options in data["templates"].items()}


def template_relations() -> list[str]:
    """The relations that have story templates (sorted)."""
    return sorted(_templates())


def render_fact(
    head: str, relation: str, tail: str, *, genders: Mapping[str, str], rng: random.Random
) -> str:
    """One sentence stating that ``tail`` is ``head``'s ``relation`` (a paraphrase drawn with ``rng``)."""
    options = _templates().get(relation)
    if options is None:
        raise KeyError(
            f"no story template for relation {relation!r}; templates: {', '.join(template_relations())}"
        )
    fill = {"head": head, "tail": tail}
    for role, name in (("head", head), ("tail", tail)):
        for key, word in _PRONOUNS[genders[name]].items():
            fill[f"{role}_{key}"] = word
    return rng.choice(options).format(**fill)


@dataclass
class _Candidate:
    family: Family
    chain: list[int]
    label: str
    facts: list[tuple[int, str, int]]  # (person, relation, person), chain facts first
    noise: str


def _edges(family: Family) -> list[list[tuple[int, str]]]:
    """Per person ``x``: every ``(y, r)`` with ``y`` being ``x``'s ``r`` for a story edge type ``r``.

    Built from the tree's links (the same definitions as :meth:`Family.relation`, without an all-pairs scan)."""
    out: list[list[tuple[int, str]]] = []
    for x in range(len(family)):
        kinds: list[tuple[int, str]] = []
        if family.spouse[x] is not None:
            kinds.append((family.spouse[x], "spouse"))
        parents = family._parents(x)
        kinds += [(p, "parent") for p in parents]
        kinds += [(c, "child") for c in family.children[x]]
        kinds += [(s, "sibling") for s in sorted(family._siblings(x))]
        kinds += [(g, "grandparent") for p in parents for g in family._parents(p)]
        kinds += [(g, "grandchild") for c in family.children[x] for g in family.children[c]]
        kinds += [(a, "auntuncle") for a in sorted(family._aunts_uncles(x))]
        out.append([(y, GENDERED_RELATIONS[kind][family.genders[y] != "male"]) for y, kind in kinds])
    return out


def _sample_chain(rng: random.Random, edges: list[list[tuple[int, str]]], depth: int) -> list[int] | None:
    chain = [rng.randrange(len(edges))]
    for _ in range(depth):
        options = [y for y, _ in edges[chain[-1]] if y not in chain]
        if not options:
            return None
        chain.append(rng.choice(options))
    return chain


def _add_noise(
    rng: random.Random, family: Family, edges, chain: list[int], kind: str
) -> list[tuple[int, str, int]]:
    """Extra true facts of ``kind`` (empty when the family offers none)."""
    inside = set(chain)
    if kind == "supporting":  # an alternative path p_i -> z -> p_{i+1} through a new person z
        options = []
        for i in range(len(chain) - 1):
            for z, r1 in edges[chain[i]]:
                if z not in inside:
                    r2 = family.relation(z, chain[i + 1])
                    if r2 in STORY_RELATIONS:
                        options.append([(chain[i], r1, z), (z, r2, chain[i + 1])])
        return rng.choice(options) if options else []
    if kind == "irrelevant":  # a new person hanging off a path person
        options = [(p, r, z) for p in chain for z, r in edges[p] if z not in inside]
        return [rng.choice(options)] if options else []
    if kind == "disconnected":  # two new people, neither related by a story edge type to anyone on the path
        near = inside | {z for p in chain for z, _ in edges[p]}
        near |= {x for x in range(len(family)) if any(y in inside for y, _ in edges[x])}
        options = [
            (x, r, y) for x in range(len(family)) if x not in near for y, r in edges[x] if y not in near
        ]
        return [rng.choice(options)] if options else []
    return []


def _propose(
    rng: random.Random, depth: int, noise: str, families: int = 1, tries: int = 30
) -> list[_Candidate]:
    labels = set(KINSHIP_LABELS)
    out = []
    for _ in range(families):
        family = random_family(rng, generations=5 if depth <= 6 else 6)
        edges = _edges(family)
        for _ in range(tries):
            chain = _sample_chain(rng, edges, depth)
            if chain is None:
                continue
            label = family.relation(chain[0], chain[-1])
            if label not in labels:
                continue
            facts = [(chain[i], family.relation(chain[i], chain[i + 1]), chain[i + 1]) for i in range(depth)]
            extra = _add_noise(rng, family, edges, chain, noise)
            if noise != "clean" and not extra:
                continue
            out.append(_Candidate(family=family, chain=chain, label=label, facts=facts + extra, noise=noise))
    return out


def _rules_accept(candidates: Sequence[_Candidate]) -> list[bool]:
    """For each candidate: do the kinship rules derive exactly its label (among the 18) from its facts?

    One vectorised :func:`kgreason.rules.answers` call for the whole batch."""
    from kgreason.rules import answers, kinship_rules

    derived = answers(
        kinship_rules(),
        facts=[c.facts for c in candidates],
        genders=[{p: c.family.genders[p] for a, _, b in c.facts for p in (a, b)} for c in candidates],
        queries=[(c.chain[0], c.chain[-1]) for c in candidates],
        labels=KINSHIP_LABELS,
    )
    return [label == c.label for label, c in zip(derived, candidates, strict=True)]


def _name_people(rng: random.Random, people: Sequence[int], family: Family, names) -> dict[int, str]:
    pools = {
        g: rng.sample(list(names[g]), k=sum(family.genders[p] == g for p in people))
        for g in ("male", "female")
    }
    return {p: pools[family.genders[p]].pop() for p in people}


def generate_kinship_stories(
    *,
    num_stories: int,
    depths: Sequence[int],
    seed: int,
    noise: str = "clean",
    names: Mapping[str, Sequence[str]] | None = None,
    verify: bool = True,
) -> list[Example]:
    """``num_stories`` stories, spread evenly over ``depths`` and balanced over labels within each depth.

    Args:
        depths: chain lengths ``k`` (number of facts on the reasoning path), each ≥ 1.
        seed: the same seed gives the same stories.
        noise: ``clean``, ``supporting``, ``irrelevant`` or ``disconnected`` (CLUTRR's kinds).
        names: ``{"male": [...], "female": [...]}`` name pools (default :mod:`kgreason.data.names`).
        verify: keep only stories whose label the kinship rules derive uniquely (needs :mod:`kgreason.rules`).
    """
    from tqdm.auto import tqdm

    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {noise!r}")
    depths = [int(d) for d in depths]
    if not depths or min(depths) < 1:
        raise ValueError(f"depths must be positive integers, got {depths}")
    if names is None:
        from kgreason.data.names import FEMALE_NAMES, MALE_NAMES

        names = {"male": MALE_NAMES, "female": FEMALE_NAMES}
    rng = random.Random(seed)
    per_depth = [num_stories // len(depths) + (i < num_stories % len(depths)) for i in range(len(depths))]
    examples: list[Example] = []
    with tqdm(total=num_stories, desc="kinship stories", disable=num_stories < 500, leave=False) as bar:
        for depth, wanted in zip(depths, per_depth, strict=True):
            kept: list[_Candidate] = []
            counts: Counter = Counter()
            cap = max(1, math.ceil(wanted / len(KINSHIP_LABELS)))
            stale = 0
            while len(kept) < wanted:
                batch = [c for _ in range(8) for c in _propose(rng, depth, noise)]
                batch = [c for c in batch if counts[c.label] < cap]
                if batch and verify:
                    batch = [c for c, ok in zip(batch, _rules_accept(batch), strict=True) if ok]
                before = len(kept)
                for c in batch:
                    if len(kept) < wanted and counts[c.label] < cap:
                        kept.append(c)
                        counts[c.label] += 1
                stale = 0 if len(kept) > before else stale + 1
                if stale >= 5:  # the labels still open are rare at this depth: let the others fill up
                    cap += max(1, cap // 4)
                    stale = 0
                bar.update(len(kept) - before)
            examples.extend(_to_example(rng, c, names, uid=f"{SOURCE}:{seed}:{len(examples)}") for c in kept)
    return examples


def _mention_order(text: str, names) -> list[str]:
    """``names`` in order of their first whole-word mention in ``text`` (unmentioned ones left out)."""
    from kgreason.data.story_relations import mention_span

    found = {name: span[0] for name in names if (span := mention_span(text, name))}
    return sorted(found, key=found.__getitem__)


def _to_example(rng: random.Random, c: _Candidate, names, *, uid: str) -> Example:
    people = list(dict.fromkeys([*c.chain, *(p for a, _, b in c.facts for p in (a, b))]))
    name = _name_people(rng, people, c.family, names)
    genders = {name[p]: c.family.genders[p] for p in people}
    facts = [(name[a], r, name[b]) for a, r, b in c.facts]
    sentences = [render_fact(h, r, t, genders=genders, rng=rng) for h, r, t in facts]
    order = list(range(len(sentences)))
    rng.shuffle(order)
    position = {fact: at for at, fact in enumerate(order)}
    head, tail = name[c.chain[0]], name[c.chain[-1]]
    depth = len(c.chain) - 1
    return Example(
        text=" ".join(sentences[i] for i in order),
        text_pair=f"How is {tail} related to {head}?",
        label=c.label,
        facts=facts,
        uid=uid,
        metadata={
            "query": [head, tail],
            "depth": depth,
            "genders": genders,
            "people": _mention_order(" ".join(sentences[i] for i in order), genders),
            "sentences": [sentences[i] for i in order],
            "fact_sentences": [position[i] for i in range(len(facts))],
            "path": list(range(depth)),
            "noise": c.noise,
            "source": SOURCE,
        },
    )


def read_kinship(
    *,
    data_dir: str | Path | None = None,
    train_depths: Sequence[int] = (2, 3),
    test_depths: Sequence[int] = (2, 3, 4, 5, 6, 7, 8, 9, 10),
    train_size: int = 2000,
    dev_size: int = 200,
    test_per_depth: int = 100,
    seed: int = 0,
    noise: str = "clean",
) -> DatasetSplits:
    """Generated kinship stories: train / dev at ``train_depths``, test ``test_per_depth`` per test depth
    (``data_dir`` is ignored: nothing is read). Each split has its own seed derived from ``seed``."""
    train = generate_kinship_stories(
        num_stories=train_size, depths=train_depths, seed=seed * 1000 + 1, noise=noise
    )
    dev = generate_kinship_stories(
        num_stories=dev_size, depths=train_depths, seed=seed * 1000 + 2, noise=noise
    )
    test = generate_kinship_stories(
        num_stories=test_per_depth * len(test_depths), depths=test_depths, seed=seed * 1000 + 3, noise=noise
    )
    info: dict[str, Any] = {
        "license": "CC0 (generated by kgreason)",
        "relations": list(STORY_RELATIONS),  # the story-graph relation vocabulary, fixed
        "labels_by_depth": {
            split: _labels_by_depth(examples) for split, examples in (("train", train), ("test", test))
        },
    }
    return DatasetSplits(
        name="kinship",
        train=train,
        dev=dev,
        test=test,
        labels=list(KINSHIP_LABELS),
        files=[templates_path()],
        options={
            "train_depths": list(train_depths),
            "test_depths": list(test_depths),
            "train_size": train_size,
            "dev_size": dev_size,
            "test_per_depth": test_per_depth,
            "seed": seed,
            "noise": noise,
        },
        info=info,
    )


def _labels_by_depth(examples: Sequence[Example]) -> dict[int, dict[str, int]]:
    out: dict[int, Counter] = {}
    for e in examples:
        out.setdefault(e.metadata["depth"], Counter())[e.label] += 1
    return {d: dict(sorted(c.items())) for d, c in sorted(out.items())}
