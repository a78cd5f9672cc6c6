"""Examples as rule worlds: the atoms the rules see for one example, and the (head, tail) pair it asks about.

Type-level worlds hold only the people's genders (``metadata["genders"]``); with ``facts=True`` they also hold
the story's own facts, from which forward chaining alone answers a clean story.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
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
    """A registered rule set (:data:`~kgreason.rules.sets.rule_sets`: ``kinship``) or the path of a rule file.

    Raises:
        RegistryError: neither a registered name nor an existing file (with a did-you-mean).
    """
    from kgreason.rules.language import load_rules
    from kgreason.rules.sets import rule_sets

    if name_or_path in rule_sets:
        return rule_sets.get(name_or_path)()
    if Path(name_or_path).is_file():
        return load_rules(name_or_path)
    return rule_sets.get(name_or_path)()  # raises: unknown name, with the registered ones listed
