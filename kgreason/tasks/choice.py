"""Multiple choice: a question / context and candidate answers -> the index of the right answer.

The text is paired with each choice (``[CLS] text [SEP] choice [SEP]``), giving one token sequence per choice;
the choice head scores each sequence and the highest score wins. Examples may have different numbers of choices:
the collator pads missing choices with empty (fully masked) rows, which decoding never picks.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kgreason.core.batch import EncodedExample
from kgreason.tasks.base import LabelError, Task, TaskMetrics
from kgreason.tasks.sequence import (
    ExampleError,
    check_max_length,
    describe,
    encode_text,
    gold_labels,
    require_text,
)

if TYPE_CHECKING:
    from torch import Tensor

    from kgreason.core.batch import Batch
    from kgreason.core.example import Example


class MultipleChoiceTask(Task):
    """``text`` + ``choices`` -> ``label`` (the index of the right choice); scored by accuracy.

    Args:
        labels: not used (choices are per example); kept so that every task is built the same way.
    """

    name = "multiple_choice"
    head = "choice"
    primary_metric = "accuracy"

    def __init__(self, *, labels: Sequence[str] = ()) -> None:
        super().__init__(labels=labels)

    @staticmethod
    def choice_index(example: Example, index: int) -> int | None:
        """The example's label as a choice index, checked against its number of choices."""
        if example.label is None:
            return None
        count = len(example.choices or ())
        try:
            if isinstance(example.label, bool):
                raise TypeError
            label = operator.index(example.label)
        except TypeError:
            raise LabelError(
                f"{describe(example, index)}: label {example.label!r} is not a choice index; expected an int in "
                f"0..{count - 1}"
            ) from None
        if not 0 <= label < count:
            raise LabelError(
                f"{describe(example, index)}: label {label} is not a choice index; the example has {count} choices "
                f"(0..{count - 1})"
            )
        return label

    def encode(self, example: Example, *, tokenizer: Any, max_length: int, index: int = 0) -> EncodedExample:
        text = require_text(example.text, field="text", example=example, index=index)
        choices = example.choices
        if choices is None or isinstance(choices, str) or len(choices) < 2:
            got = (
                "no choices"
                if choices is None
                else f"{1 if isinstance(choices, str) else len(choices)} choice(s)"
            )
            raise ExampleError(f"{describe(example, index)}: {got}; expected at least 2")
        choices = [
            require_text(choice, field=f"choice {c}", example=example, index=index)
            for c, choice in enumerate(choices)
        ]
        label = self.choice_index(example, index)
        check_max_length(tokenizer, max_length, pair=True, minimum=2)
        input_ids: list[list[int]] = []
        type_ids: list[list[int]] | None = []
        truncated = False
        for choice in choices:
            encoding, cut = encode_text(tokenizer, text, choice, max_length=max_length)
            truncated |= cut
            input_ids.append(list(encoding["input_ids"]))
            if "token_type_ids" in encoding and type_ids is not None:
                type_ids.append(list(encoding["token_type_ids"]))
            else:
                type_ids = None
        return EncodedExample(
            input_ids=input_ids, token_type_ids=type_ids, labels=label, index=index, truncated=truncated
        )

    def decode(self, logits: Tensor, batch: Batch) -> list[int]:
        """The index of the best real choice of each example, from ``(B, C)`` logits (padded choices excluded)."""
        if logits.dim() != 2:
            raise ValueError(f"expected logits of shape (B, C), got {tuple(logits.shape)}")
        real = batch.attention_mask.sum(dim=-1) > 0 if batch.attention_mask.dim() == 3 else None  # (B, C)
        if real is not None:
            if real.shape != logits.shape:
                raise ValueError(
                    f"logits {tuple(logits.shape)} do not match the batch's choices {tuple(real.shape)}"
                )
            logits = logits.masked_fill(~real, float("-inf"))  # (B, C)
        return logits.argmax(dim=-1).tolist()  # (B,)

    def metrics(self, predictions: Sequence[int], examples: Sequence[Example]) -> TaskMetrics:
        gold_labels(examples, predictions)
        gold = [self.choice_index(example, i) for i, example in enumerate(examples)]
        correct = sum(int(p) == g for p, g in zip(predictions, gold, strict=True))
        values = {"accuracy": correct / len(gold) if gold else 0.0}
        return TaskMetrics(
            values=values, primary=self.primary_metric, extra={"count": len(gold), "correct": correct}
        )
