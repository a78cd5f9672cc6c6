"""Output records of the knowledge-base layer: linked mentions and KB summaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class EntityCandidate:
    """One entity that a mention may refer to."""

    entity: int
    key: str
    label: str
    score: float


@dataclass(frozen=True)
class Mention:
    """A span of text linked to one or more candidate entities, best first.

    ``start``/``end`` are character offsets into the original text (``text[start:end] == surface``).
    """

    start: int
    end: int
    surface: str
    candidates: tuple[EntityCandidate, ...]

    @property
    def best(self) -> EntityCandidate:
        return self.candidates[0]


@dataclass
class DegreeStats:
    """Total (in + out) degree over entities of the graph split."""

    min: int = 0
    mean: float = 0.0
    median: float = 0.0
    p99: float = 0.0
    max: int = 0
    isolated: int = 0


@dataclass
class KBSummary:
    """What ``kgreason kb info`` prints: sizes, relation histogram, degree statistics, load cost and problems."""

    name: str
    num_entities: int
    num_relations: int
    triples_per_split: dict[str, int]
    relation_histogram: list[tuple[str, int]]
    degree: DegreeStats
    self_loops: int = 0
    duplicates_dropped: dict[str, int] = field(default_factory=dict)
    entities_without_labels: int = 0
    load_seconds: float | None = None
    memory_bytes: int | None = None

    @property
    def num_triples(self) -> int:
        return sum(self.triples_per_split.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["num_triples"] = self.num_triples
        out["relation_histogram"] = [list(pair) for pair in self.relation_histogram]
        return out

    def to_text(self, *, top_relations: int = 10) -> str:
        """A human-readable report, one fact per line."""
        lines = [
            f"knowledge base      {self.name}",
            f"entities            {self.num_entities:,}",
            f"relations           {self.num_relations:,}",
            f"triples             {self.num_triples:,}",
        ]
        for split, count in self.triples_per_split.items():
            dropped = self.duplicates_dropped.get(split, 0)
            extra = f"  ({dropped:,} duplicate(s) dropped)" if dropped else ""
            lines.append(f"  {split:<17} {count:,}{extra}")
        d = self.degree
        lines.append(
            f"degree              min {d.min}  mean {d.mean:.2f}  median {d.median:g}  p99 {d.p99:g}  "
            f"max {d.max}  isolated {d.isolated:,}"
        )
        lines.append(f"self-loops          {self.self_loops:,}")
        lines.append(f"unlabelled entities {self.entities_without_labels:,}")
        if self.load_seconds is not None:
            lines.append(f"load time           {self.load_seconds:.3f} s")
        if self.memory_bytes is not None:
            lines.append(f"memory              {self.memory_bytes / 2**20:,.1f} MiB")
        if self.relation_histogram:
            lines.append(f"top relations       (of {self.num_relations:,})")
            width = max(len(name) for name, _ in self.relation_histogram[:top_relations])
            for name, count in self.relation_histogram[:top_relations]:
                lines.append(f"  {name:<{width}}  {count:,}")
        return "\n".join(lines)
