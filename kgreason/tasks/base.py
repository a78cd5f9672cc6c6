"""The task contract: how examples become model inputs, and how predictions are scored.

A task turns an :class:`~kgreason.core.example.Example` into an :class:`EncodedExample` (token ids, label ids,
optionally the example's subgraph), decodes a batch of logits into predictions, and scores predictions against
the examples. The trainer, the models and the benchmarks only talk to tasks through this interface.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from kgreason.core.batch import EncodedExample
from kgreason.core.errors import KGReasonError

if TYPE_CHECKING:
    from torch import Tensor

    from kgreason.core.batch import Batch
    from kgreason.core.example import Example

logger = logging.getLogger(__name__)


class LabelError(KGReasonError, ValueError):
    """A label outside the task's label set."""


@dataclass
class EncodedDataset:
    """Examples and their encodings, index-aligned."""

    examples: list[Example]
    encoded: list[EncodedExample]
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, index: int) -> EncodedExample:
        return self.encoded[index]

    @property
    def lengths(self) -> list[int]:
        return [item.length for item in self.encoded]


@dataclass
class TaskMetrics:
    """Scores of one evaluation (``values``) and the name of the one used for model selection."""

    values: dict[str, float]
    primary: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.values[self.primary]


class Task(ABC):
    """A task definition (see the module docstring).

    Args:
        labels: the label set, in label-id order (tags for token classification, relation names for relation
            classification); multiple choice has none.
    """

    #: Registered name, e.g. ``"sequence_classification"``.
    name: ClassVar[str]
    #: Which head the model needs: ``"sequence"``, ``"token"`` or ``"choice"``.
    head: ClassVar[str]
    #: Metric used for early stopping and model selection.
    primary_metric: ClassVar[str] = "accuracy"

    def __init__(self, *, labels: Sequence[str] = ()) -> None:
        self.labels = list(labels)
        if len(set(self.labels)) != len(self.labels):
            raise LabelError(f"duplicate labels in {self.labels}")
        self._label_ids = {label: i for i, label in enumerate(self.labels)}

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def label_id(self, label: Any, *, where: str = "") -> int:
        """The id of ``label``; raises :class:`LabelError` naming the label set when it is not in it."""
        try:
            return self._label_ids[label]
        except (KeyError, TypeError):
            at = f"{where}: " if where else ""
            raise LabelError(f"{at}label {label!r} is not in the label set {self.labels}") from None

    @abstractmethod
    def encode(self, example: Example, *, tokenizer: Any, max_length: int, index: int = 0) -> EncodedExample:
        """Tokenise one example (labels mapped to ids; truncated to ``max_length`` with ``truncated`` set)."""

    def encode_all(
        self, examples: Sequence[Example], *, tokenizer: Any, max_length: int, desc: str = "encode"
    ) -> EncodedDataset:
        """Encode every example; logs one warning with the number of truncated examples."""
        from tqdm.auto import tqdm

        encoded = [
            self.encode(example, tokenizer=tokenizer, max_length=max_length, index=i)
            for i, example in enumerate(tqdm(examples, desc=desc, leave=False, disable=len(examples) < 2000))
        ]
        truncated = sum(item.truncated for item in encoded)
        if truncated:
            logger.warning(
                "%s: %d of %d examples were longer than max_length=%d tokens and were truncated",
                desc,
                truncated,
                len(encoded),
                max_length,
            )
        return EncodedDataset(examples=list(examples), encoded=encoded, truncated=truncated)

    @abstractmethod
    def decode(self, logits: Tensor, batch: Batch) -> list[Any]:
        """Predictions of a batch, one per example, in the batch's order (label names, tag lists, indices)."""

    @abstractmethod
    def metrics(self, predictions: Sequence[Any], examples: Sequence[Example]) -> TaskMetrics:
        """Score predictions against the examples' labels."""

    def config(self) -> dict[str, Any]:
        """What :func:`kgreason.tasks.build_task` needs to rebuild this task (saved with trained models)."""
        return {"name": self.name, "labels": list(self.labels)}
