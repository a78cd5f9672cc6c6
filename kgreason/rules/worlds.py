"""Examples as rule worlds: the atoms the rules see for one example, and the (head, tail) pair it asks about.

Type-level worlds hold only the people's genders (``metadata["genders"]``); with ``facts=True`` they also hold
the story's own facts, from which forward chaining alone answers a clean story.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kgreason.core.example import Example
    from kgreason.rules.language import RuleSet

#: One world: its atoms ``(predicate, args)`` and the queried ``(head, tail)``.
World = tuple[list[tuple[str, tuple[Hashable, ...]]], tuple[Hashable, Hashable]]


def example_worlds(examples: Sequence[Example], *, facts: bool = False) -> list[World]:
    """The rule world of each example (``metadata["query"]`` names the pair; genders and, optionally, facts)."""
    from kgreason.rules.kinship import facts_from_triples

    worlds: list[World] = []
    for n, example in enumerate(examples):
        query = example.metadata.get("query")
        if not query or len(query) < 2:
            raise ValueError(
                f"example {example.uid or n}: rule constraints need metadata['query'] = [head, tail]"
            )
        triples = list(example.facts or []) if facts else []
        atoms = facts_from_triples(triples, genders=example.metadata.get("genders") or {})
        worlds.append((list(atoms), (query[0], query[1])))
    return worlds


def resolve_rules(name_or_path: str) -> RuleSet:
    """``kinship`` (the shipped kinship rules) or the path of a rule file."""
    from kgreason.rules.kinship import kinship_rules
    from kgreason.rules.language import load_rules

    return kinship_rules() if name_or_path == "kinship" else load_rules(name_or_path)
