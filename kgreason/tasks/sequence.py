"""Sequence classification: a text (optionally with a second text) -> one label.

Also home of what the other tasks share: :class:`ExampleError` for a bad example, :func:`describe` (how an
error names an example) and :func:`classification_scores` (accuracy, macro-F1, per-class scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kgreason.core.batch import EncodedExample
from kgreason.core.errors import KGReasonError
from kgreason.tasks.base import LabelError, Task, TaskMetrics

if TYPE_CHECKING:
    from torch import Tensor

    from kgreason.core.batch import Batch
    from kgreason.core.example import Example


class ExampleError(KGReasonError, ValueError):
    """An example a task cannot encode or score (empty text, bad spans, too few choices, ...)."""


def describe(example: Example, index: int) -> str:
    """How messages name an example: its uid when it has one, else its position."""
    return f"example {example.uid!r} (#{index})" if example.uid else f"example #{index}"


def require_text(value: Any, *, field: str, example: Example, index: int) -> str:
    """``value`` when it is a non-blank string, else :class:`ExampleError` naming the example and the field."""
    if not isinstance(value, str) or not value.strip():
        state = (
            "missing" if value is None else "empty" if isinstance(value, str) else f"a {type(value).__name__}"
        )
        raise ExampleError(f"{describe(example, index)}: {field} is {state}; expected non-blank text")
    return value


def check_max_length(tokenizer: Any, max_length: int, *, pair: bool, minimum: int = 1) -> None:
    """Raise when ``max_length`` leaves fewer than ``minimum`` tokens after the special tokens."""
    special = tokenizer.num_special_tokens_to_add(pair=pair)
    if max_length < special + minimum:
        raise ValueError(
            f"max_length={max_length} is too small: the tokenizer adds {special} special tokens and at least "
            f"{minimum} text token(s) are needed"
        )


def encode_text(tokenizer: Any, text: str, pair: str | None, *, max_length: int) -> tuple[Any, bool]:
    """Tokenise ``text`` (+ ``pair``) to at most ``max_length`` tokens; also say whether anything was cut.

    One tokenizer call with ``max_length + 1`` tells whether the full text is longer than ``max_length`` (it
    is exactly when the result is); only then is the text tokenised again at ``max_length``.
    """
    encoding = tokenizer(text, pair, truncation=True, max_length=max_length + 1)
    if len(encoding["input_ids"]) <= max_length:
        return encoding, False
    return tokenizer(text, pair, truncation=True, max_length=max_length), True


def gold_labels(examples: Sequence[Example], predictions: Sequence[Any]) -> list[Any]:
    """The examples' labels, checked to be present and as many as the predictions."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    gold = []
    for i, example in enumerate(examples):
        if example.label is None:
            raise ExampleError(f"{describe(example, i)} has no label to score against")
        gold.append(example.label)
    return gold


def classification_scores(
    gold: Sequence[str], predicted: Sequence[str], *, labels: Sequence[str], primary: str = "accuracy"
) -> TaskMetrics:
    """Accuracy and macro-F1 (over the labels that occur in gold or predictions), per-class scores in extra.

    Raises:
        LabelError: a gold or predicted label outside ``labels``.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    known = set(labels)
    for kind, values in (("gold", gold), ("predicted", predicted)):
        for value in values:
            if value not in known:
                raise LabelError(f"{kind} label {value!r} is not in the label set {list(labels)}")
    present = [label for label in labels if label in set(gold) | set(predicted)]
    if not gold:
        return TaskMetrics(values={"accuracy": 0.0, "macro_f1": 0.0}, primary=primary, extra={"count": 0})
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=list(labels), zero_division=0
    )
    per_class = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    values = {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, labels=present, average="macro", zero_division=0)),
    }
    extra = {
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(gold, predicted, labels=list(labels)).tolist(),
        "labels": list(labels),
        "count": len(gold),
    }
    return TaskMetrics(values=values, primary=primary, extra=extra)


def argmax_labels(logits: Tensor, *, labels: Sequence[str]) -> list[str]:
    """The label of the highest logit of each row of ``(B, L)`` logits."""
    if logits.dim() != 2 or logits.shape[-1] != len(labels):
        raise ValueError(f"expected logits of shape (B, {len(labels)}), got {tuple(logits.shape)}")
    return [labels[i] for i in logits.argmax(dim=-1).tolist()]  # (B,)


class SequenceClassificationTask(Task):
    """``text`` (+ ``text_pair``) -> ``label``; scored by accuracy and macro-F1 (per-class F1 in ``extra``)."""

    name = "sequence_classification"
    head = "sequence"
    primary_metric = "accuracy"

    def __init__(self, *, labels: Sequence[str]) -> None:
        super().__init__(labels=labels)
        if len(self.labels) < 2:
            raise LabelError(f"{self.name} needs at least 2 labels, got {self.labels}")

    def encode(self, example: Example, *, tokenizer: Any, max_length: int, index: int = 0) -> EncodedExample:
        text = require_text(example.text, field="text", example=example, index=index)
        pair = None
        if example.text_pair is not None:
            pair = require_text(example.text_pair, field="text_pair", example=example, index=index)
        check_max_length(tokenizer, max_length, pair=pair is not None, minimum=1 if pair is None else 2)
        encoding, truncated = encode_text(tokenizer, text, pair, max_length=max_length)
        label = (
            None if example.label is None else self.label_id(example.label, where=describe(example, index))
        )
        return EncodedExample(
            input_ids=list(encoding["input_ids"]),
            token_type_ids=list(encoding["token_type_ids"]) if "token_type_ids" in encoding else None,
            labels=label,
            index=index,
            truncated=truncated,
        )

    def decode(self, logits: Tensor, batch: Batch) -> list[str]:
        """Label names, from ``(B, L)`` logits."""
        return argmax_labels(logits, labels=self.labels)

    def metrics(self, predictions: Sequence[str], examples: Sequence[Example]) -> TaskMetrics:
        gold = gold_labels(examples, predictions)
        return classification_scores(gold, predictions, labels=self.labels, primary=self.primary_metric)
