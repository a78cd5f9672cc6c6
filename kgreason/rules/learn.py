"""Learning composition rules from (story graph, query, answer) triples alone: no proofs, no hand-written file.

A story whose facts form one path from the query's head to its tail, ``r1(x0, x1), ..., rk(x(k-1), xk)``, with
answer ``r(x0, xk)``, says that the path composes to ``r``. :func:`learn_composition_rules` builds a table
``(a, b) -> c`` (the rule ``c(X, Z) :- a(X, Y), b(Y, Z), X != Z.``) in rounds: two-fact stories count directly;
a longer story is reduced with the table so far, from the left and from the right, and the pair that is left
counts toward its answer. A pair becomes a rule when its most frequent answer has at least ``min_support``
stories and a ``min_confidence`` share of them; rounds stop when the table no longer changes. The rules are
written in kgreason's rule language (:meth:`LearnedRules.to_text`), so every rule consumer reads them.

Relation names are the vocabulary's own (any domain); characters the rule language does not allow in a name
become ``_`` (``daughter-in-law`` -> ``daughter_in_law``, as the fact loader reads them).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from kgreason.core.example import Example

_NOT_NAME = re.compile(r"[^a-z0-9_]")


def rule_name(relation: str) -> str:
    """``relation`` as a rule-language predicate name (lower case; other characters ``_``; never empty)."""
    name = _NOT_NAME.sub("_", relation.lower())
    if not name or not name[0].isalpha():
        name = "r_" + name
    return name


def story_path(
    facts: Iterable[tuple[Hashable, str, Hashable]], query: tuple[Hashable, Hashable]
) -> list[str] | None:
    """The relations along the facts' one simple path from ``query[0]`` to ``query[1]`` (every fact on it),
    or ``None`` when the facts are not such a path."""
    facts = list(facts)
    following: dict[Hashable, list[tuple[str, Hashable]]] = defaultdict(list)
    for head, relation, tail in facts:
        following[head].append((relation, tail))
    node, target = query
    seen, relations = {node}, []
    while node != target:
        if len(following[node]) != 1:
            return None
        relation, node = following[node][0]
        if node in seen:
            return None
        seen.add(node)
        relations.append(relation)
    return relations if len(relations) == len(facts) else None


@dataclass
class LearnedRules:
    """A learned composition table with the evidence for each entry.

    Attributes:
        table: ``(a, b) -> c``: a path ``a`` then ``b`` composes to ``c``.
        support: stories behind each entry's answer; ``confidence``: their share of the pair's stories.
        relations: every relation seen (facts and answers), declared in the rule file.
        attributes: one-place predicates the stories state (the genders of ``metadata["genders"]``), declared so
            the rules can read facts that carry them.
        used, skipped: stories whose facts formed one path (used) or did not (skipped).
        rounds: rounds until the table stopped changing.
    """

    table: dict[tuple[str, str], str]
    support: dict[tuple[str, str], int] = field(default_factory=dict)
    confidence: dict[tuple[str, str], float] = field(default_factory=dict)
    relations: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    used: int = 0
    skipped: int = 0
    rounds: int = 0

    def to_text(self, *, header: str = "") -> str:
        """The rules as a rule-language file (typed ``person``, one line per composition)."""
        names = sorted({rule_name(r) for r in self.relations})
        lines = [f"% {line}".rstrip() for line in header.splitlines()]
        lines += ["type person.", ""]
        lines += [f"pred {rule_name(a)}(person)." for a in sorted(self.attributes)]
        lines += [f"pred {name}(person, person)." for name in names]
        lines.append("")
        for (a, b), c in sorted(self.table.items()):
            evidence = f"  % support {self.support.get((a, b), 0)}, confidence {self.confidence.get((a, b), 1.0):.3f}"
            lines.append(
                f"{rule_name(c)}(X, Z) :- {rule_name(a)}(X, Y), {rule_name(b)}(Y, Z), X != Z.{evidence}"
            )
        return "\n".join(lines) + "\n"


def _reduce(
    path: Sequence[str], table: dict[tuple[str, str], str], *, from_left: bool
) -> tuple[str, str] | None:
    """The last pair of ``path`` once the table has composed the rest (``None`` if it cannot)."""
    rest = list(path)
    while len(rest) > 2:
        pair = (rest[0], rest[1]) if from_left else (rest[-2], rest[-1])
        if pair not in table:
            return None
        rest = [table[pair], *rest[2:]] if from_left else [*rest[:-2], table[pair]]
    return rest[0], rest[1]


def learn_composition_rules(
    examples: Sequence[Example],
    *,
    min_support: int = 2,
    min_confidence: float = 0.6,
    max_rounds: int = 10,
    vocabulary: Iterable[str] = (),
) -> LearnedRules:
    """Learn the composition table from training stories (``facts``, ``metadata["query"]``, ``label``).

    ``vocabulary``: more relations to declare (e.g. every relation name of the dataset), so facts the training
    stories never show still load.
    """
    if min_support < 1 or not 0.0 < min_confidence <= 1.0 or max_rounds < 1:
        raise ValueError("expected min_support >= 1, 0 < min_confidence <= 1 and max_rounds >= 1")
    paths: list[tuple[list[str], str]] = []
    relations: set[str] = set(vocabulary)
    attributes: set[str] = set()
    skipped = 0
    for example in examples:
        attributes.update(str(v) for v in (example.metadata.get("genders") or {}).values())
        query = tuple(example.metadata.get("query", ())[:2])
        path = story_path(example.facts or (), query) if len(query) == 2 else None
        if not path or len(path) < 2 or example.label is None:
            skipped += 1
            continue
        paths.append((path, str(example.label)))
        relations.update(path)
        relations.add(str(example.label))
    learned = LearnedRules(
        table={}, relations=sorted(relations), attributes=sorted(attributes), used=len(paths), skipped=skipped
    )
    for round_ in range(1, max_rounds + 1):
        counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for path, answer in paths:
            pairs = {
                _reduce(path, learned.table, from_left=True),
                _reduce(path, learned.table, from_left=False),
            }
            for pair in pairs - {None}:
                counts[pair][answer] += 1
        table, support, confidence = {}, {}, {}
        for pair, answers in counts.items():
            answer, n = answers.most_common(1)[0]
            share = n / sum(answers.values())
            if n >= min_support and share >= min_confidence:
                table[pair], support[pair], confidence[pair] = answer, n, share
        learned.rounds = round_
        if table == learned.table:
            break
        learned.table, learned.support, learned.confidence = table, support, confidence
    return learned
