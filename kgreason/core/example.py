"""One task example, shared by every reader, task, model and probe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Example:
    """One example of any task.

    Which fields a task reads:

    * sequence classification: ``text`` (+ optional ``text_pair``), ``label`` (a label name);
    * token classification: ``tokens`` (pre-split words; ``text`` is their space-joined form) and ``label``
      (one tag name per token, e.g. IOB2);
    * relation classification: ``text``, ``spans`` (character spans of the head and the tail entity),
      ``label`` (relation name);
    * multiple choice: ``text`` (the question / context), ``choices`` (candidate answers), ``label`` (index
      of the right choice).

    ``facts`` are per-example (head, relation, tail) facts such as a story's own graph (CLUTRR), used by the
    graph variants next to (or instead of) a knowledge base. ``metadata`` holds anything else (depth, source).
    """

    text: str
    label: Any = None
    text_pair: str | None = None
    tokens: list[str] | None = None
    spans: list[tuple[int, int]] | None = None
    choices: list[str] | None = None
    facts: list[tuple[str, str, str]] | None = None
    uid: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
