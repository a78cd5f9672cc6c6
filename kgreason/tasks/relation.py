"""Relation classification: the relation between two marked entities of a text.

The head and tail entity character spans (``example.spans``) are marked in the text with punctuation the
vocabulary already has (Zhou & Chen 2021, "typed entity marker (punct)")::

    Bill Gates founded Microsoft .  ->  @ Bill Gates @ founded # Microsoft # .
    with entity types (metadata head_type / tail_type):  @ * person * Bill Gates @ founded # ^ org ^ Microsoft # .

``marker_positions`` are the token positions of the two opening markers (``@`` and ``#``), which the relation
head reads. A text longer than ``max_length`` is cut around the two entities so that both markers survive; when
the entities alone do not fit, encoding raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kgreason.core.batch import EncodedExample
from kgreason.tasks.base import TaskMetrics
from kgreason.tasks.sequence import (
    ExampleError,
    SequenceClassificationTask,
    check_max_length,
    classification_scores,
    describe,
    gold_labels,
    require_text,
)

if TYPE_CHECKING:
    from kgreason.core.example import Example

HEAD_MARKER, HEAD_TYPE_MARKER = "@", "*"
TAIL_MARKER, TAIL_TYPE_MARKER = "#", "^"


@dataclass
class MarkedText:
    """A text with its entities marked, and the character offsets of the markers in it.

    Attributes:
        text: the marked text.
        head: offset of the head's opening marker.
        tail: offset of the tail's opening marker.
        start: offset of the first opening marker.
        end: offset just past the last closing marker.
    """

    text: str
    head: int
    tail: int
    start: int
    end: int


def check_spans(example: Example, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The example's (head, tail) character spans, checked: in range, not blank, not overlapping."""
    spans = example.spans
    where = describe(example, index)
    if spans is None or len(spans) != 2:
        got = "no spans" if spans is None else f"{len(spans)} spans"
        raise ExampleError(
            f"{where}: {got}; expected 2 character spans, (head start, end) and (tail start, end)"
        )
    checked = []
    for role, span in zip(("head", "tail"), spans, strict=True):
        try:
            start, end = (int(x) for x in span)
        except (TypeError, ValueError):
            raise ExampleError(f"{where}: {role} span {span!r} is not a (start, end) pair of ints") from None
        if not 0 <= start < end <= len(example.text):
            raise ExampleError(
                f"{where}: {role} span ({start}, {end}) is out of range; expected 0 <= start < end <= "
                f"{len(example.text)} (the text's length)"
            )
        if not example.text[start:end].strip():
            raise ExampleError(f"{where}: {role} span ({start}, {end}) covers only whitespace")
        checked.append((start, end))
    (hs, he), (ts, te) = checked
    if hs < te and ts < he:
        raise ExampleError(f"{where}: head span ({hs}, {he}) and tail span ({ts}, {te}) overlap")
    return checked[0], checked[1]


def mark_entities(
    text: str,
    head: tuple[int, int],
    tail: tuple[int, int],
    *,
    head_type: str | None = None,
    tail_type: str | None = None,
) -> MarkedText:
    """Insert the entity markers around two non-overlapping character spans of ``text``."""
    pieces: list[str] = []
    cursor = 0
    offsets: dict[str, int] = {}
    length = 0
    for role, (start, end), marker, type_marker, kind in sorted(
        [
            ("head", head, HEAD_MARKER, HEAD_TYPE_MARKER, head_type),
            ("tail", tail, TAIL_MARKER, TAIL_TYPE_MARKER, tail_type),
        ],
        key=lambda item: item[1],
    ):
        before = text[cursor:start]
        if (before or pieces) and not (before or " ")[-1].isspace():
            before += " "
        opening = f"{marker} {type_marker} {kind} {type_marker} " if kind else f"{marker} "
        after = " " if end < len(text) and not text[end].isspace() else ""
        pieces.append(before)
        length += len(before)
        offsets[role] = length
        piece = f"{opening}{text[start:end]} {marker}{after}"
        pieces.append(piece)
        length += len(piece)
        offsets[role + "_end"] = length - len(after)
        cursor = end
    pieces.append(text[cursor:])
    return MarkedText(
        text="".join(pieces),
        head=offsets["head"],
        tail=offsets["tail"],
        start=min(offsets["head"], offsets["tail"]),
        end=max(offsets["head_end"], offsets["tail_end"]),
    )


class RelationClassificationTask(SequenceClassificationTask):
    """``text`` + ``spans`` (head, tail) -> relation ``label``.

    Scored by accuracy, macro-F1 and micro-F1 over the relations other than ``no_relation`` (TACRED style:
    predicting ``no_relation`` is not a positive; when the label set lacks it, micro-F1 covers all labels).

    Args:
        labels: the relation names.
        no_relation: the label that means "no relation".
    """

    name = "relation_classification"
    head = "relation"
    primary_metric = "accuracy"

    def __init__(self, *, labels: Sequence[str], no_relation: str = "no_relation") -> None:
        super().__init__(labels=labels)
        self.no_relation = no_relation

    def encode(self, example: Example, *, tokenizer: Any, max_length: int, index: int = 0) -> EncodedExample:
        text = require_text(example.text, field="text", example=example, index=index)
        head, tail = check_spans(example, index)
        if not getattr(tokenizer, "is_fast", False):
            raise TypeError(
                "relation classification needs a fast tokenizer (character offsets of the markers)"
            )
        check_max_length(tokenizer, max_length, pair=False, minimum=4)
        metadata = example.metadata or {}
        marked = mark_entities(
            text, head, tail, head_type=metadata.get("head_type"), tail_type=metadata.get("tail_type")
        )
        label = (
            None if example.label is None else self.label_id(example.label, where=describe(example, index))
        )
        encoding = tokenizer(marked.text, return_offsets_mapping=True, verbose=False)
        truncated = len(encoding["input_ids"]) > max_length
        offset = 0
        if truncated:
            offset = self._window(tokenizer, marked, max_length=max_length, where=describe(example, index))
            encoding = tokenizer(
                marked.text[offset[0] : offset[1]], return_offsets_mapping=True, verbose=False
            )
            offset = offset[0]
        positions = self._marker_positions(encoding, [marked.head - offset, marked.tail - offset])
        return EncodedExample(
            input_ids=list(encoding["input_ids"]),
            token_type_ids=list(encoding["token_type_ids"]) if "token_type_ids" in encoding else None,
            labels=label,
            marker_positions=(positions[0], positions[1]),
            index=index,
            truncated=truncated,
        )

    @staticmethod
    def _marker_positions(encoding: Any, chars: list[int]) -> list[int]:
        starts = {}
        for position, ((start, _), word) in enumerate(
            zip(encoding["offset_mapping"], encoding.word_ids(), strict=True)
        ):
            if word is not None:
                starts.setdefault(start, position)
        missing = [c for c in chars if c not in starts]
        if missing:
            raise RuntimeError(f"no token starts at the entity marker offset(s) {missing} of the marked text")
        return [starts[c] for c in chars]

    @staticmethod
    def _window(tokenizer: Any, marked: MarkedText, *, max_length: int, where: str) -> tuple[int, int]:
        """Character range of the marked text to keep: whole words around both entities, within the budget."""
        budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
        plain = tokenizer(marked.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = plain["offset_mapping"]
        words = plain.word_ids()
        n = len(offsets)
        first = next(i for i, (s, _) in enumerate(offsets) if s >= marked.start)
        last = max(i for i, (_, e) in enumerate(offsets) if e <= marked.end)
        needed = last - first + 1
        while True:
            if needed > budget:
                raise ExampleError(
                    f"{where}: the two marked entities and the text between them take {needed} tokens, more "
                    f"than max_length={max_length} allows ({budget} after special tokens); raise max_length"
                )
            spare = budget - needed
            left = max(0, first - spare // 2)
            right = min(n, left + budget)
            left = max(0, right - budget)
            while 0 < left < first and words[left] == words[left - 1]:  # do not start inside a word
                left += 1
            while last + 1 < right < n and words[right] == words[right - 1]:  # nor end inside one
                right -= 1
            window = (offsets[left][0], offsets[right - 1][1])
            length = len(tokenizer(marked.text[window[0] : window[1]], verbose=False)["input_ids"])
            if length <= max_length:
                return window
            budget -= length - max_length  # re-tokenising a substring gave more tokens: shrink and retry

    def metrics(self, predictions: Sequence[str], examples: Sequence[Example]) -> TaskMetrics:
        from sklearn.metrics import precision_recall_fscore_support

        gold = gold_labels(examples, predictions)
        result = classification_scores(gold, predictions, labels=self.labels, primary=self.primary_metric)
        positive = [label for label in self.labels if label != self.no_relation]
        precision, recall, f1, _ = precision_recall_fscore_support(
            gold, predictions, labels=positive, average="micro", zero_division=0
        )
        result.values["micro_f1"] = float(f1)
        result.extra["micro"] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "excluded": self.no_relation if self.no_relation in self.labels else None,
        }
        return result

    def config(self) -> dict[str, Any]:
        return {**super().config(), "no_relation": self.no_relation}
