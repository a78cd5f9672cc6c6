"""A dataset's train / dev / test examples, and the stratified splitting of datasets published as one file."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.core.example import Example

#: Names accepted by :meth:`DatasetSplits.split` for each split.
SPLIT_ALIASES = {
    "train": "train",
    "dev": "dev",
    "valid": "dev",
    "validation": "dev",
    "test": "test",
}


@dataclass
class DatasetSplits:
    """The examples of one dataset, split, with its label set and where it came from.

    Attributes:
        name: the reader's registered name (``conll2003``, ``financial_phrasebank``).
        train, dev, test: the examples of each split.
        labels: the label set in label-id order (what :func:`kgreason.tasks.build_task` gets).
        files: the data files read (their checksums go into a run's record).
        options: the reader options that produced these splits.
        info: counts and notes (sizes, label counts, duplicates, licence, citation).
    """

    name: str
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    labels: list[str]
    files: list[Path] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        """The examples of split ``name`` (``train``, ``dev`` / ``valid`` / ``validation``, ``test``)."""
        try:
            return getattr(self, SPLIT_ALIASES[name])
        except KeyError:
            raise KeyError(f"unknown split {name!r}; expected one of {sorted(SPLIT_ALIASES)}") from None

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)}

    def label_counts(self, split: str) -> dict[str, int]:
        """How many examples of ``split`` have each label (for tag lists: how many tokens have each tag)."""
        counts: Counter = Counter()
        for example in self.split(split):
            if isinstance(example.label, list):
                counts.update(example.label)
            else:
                counts[example.label] += 1
        return {label: counts.get(label, 0) for label in self.labels}


@dataclass
class SplitIndices:
    """Positions (ascending) of the items that go to each split."""

    train: list[int]
    dev: list[int]
    test: list[int]


def subsample(items: Sequence[Any], limit: int, *, seed: int = 0) -> list[Any]:
    """At most ``limit`` items (0: all): a seeded random subset kept in its original order.

    Not a prefix: data files are often sorted (CLUTRR's train file holds every k = 2 story before the k = 3 ones).
    """
    import random

    items = list(items)
    if not limit or limit <= 0 or len(items) <= limit:
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def stratified_split(
    labels: Sequence[Hashable],
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 42,
    groups: Sequence[Hashable] | None = None,
) -> SplitIndices:
    """Split items train / dev / test in ``fractions``, keeping the label proportions in each split.

    Deterministic for a given ``seed`` (scikit-learn ``train_test_split(stratify=...)``, twice). Items with the
    same ``groups`` value (e.g. the same sentence) always land in the same split; a group is stratified by the
    label of its first item.
    """
    from sklearn.model_selection import train_test_split

    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers that sum to 1, got {list(fractions)}")
    if groups is not None and len(groups) != len(labels):
        raise ValueError(f"{len(groups)} groups for {len(labels)} labels")
    keys = list(range(len(labels))) if groups is None else list(groups)
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    units = list(members.values())  # one entry per group, in order of first appearance
    unit_labels = [labels[unit[0]] for unit in units]
    smallest = min(Counter(unit_labels).values(), default=0)
    held_out = fractions[1] + fractions[2]
    if smallest * held_out < 2 or smallest * min(fractions[1], fractions[2]) < 1:
        raise ValueError(
            f"too few items to stratify into three splits: the smallest class has {smallest} "
            f"group(s); dev and test fractions {fractions[1]}, {fractions[2]} need at least "
            f"{max(math.ceil(2 / held_out), math.ceil(1 / min(fractions[1], fractions[2])))}"
        )
    positions = list(range(len(units)))
    train, rest = train_test_split(positions, test_size=held_out, stratify=unit_labels, random_state=seed)
    dev, test = train_test_split(
        rest,
        test_size=fractions[2] / held_out,
        stratify=[unit_labels[p] for p in rest],
        random_state=seed,
    )

    def expand(chosen: Sequence[int]) -> list[int]:
        return sorted(i for p in chosen for i in units[p])

    return SplitIndices(train=expand(train), dev=expand(dev), test=expand(test))
