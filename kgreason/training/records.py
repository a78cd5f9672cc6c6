"""What training and evaluation return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgreason.tasks.base import TaskMetrics


@dataclass
class EvalRecord:
    """One dev evaluation during training.

    Attributes:
        step: optimizer steps done when it ran.
        epoch: epochs done, fractional (``step / steps_per_epoch``).
        metrics: the task's dev metrics.
        loss: mean dev loss (``None`` when the model returned none).
        train_loss: mean training loss since the previous evaluation.
        learning_rate: the encoder's learning rate at that step.
        improved: whether this evaluation set a new best.
    """

    step: int
    epoch: float
    metrics: dict[str, float]
    loss: float | None
    train_loss: float | None
    learning_rate: float
    improved: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalRecord:
        return cls(**data)


@dataclass
class EvalResult:
    """The result of :meth:`~kgreason.training.trainer.Trainer.evaluate`.

    Attributes:
        metrics: the task's scores.
        predictions: decoded predictions, in dataset order.
        loss: mean loss over the examples (``None`` when unlabelled).
        seconds: wall time of the evaluation.
        samples_per_s: examples scored per second (over all ranks).
        num_examples: examples scored.
    """

    metrics: TaskMetrics
    predictions: list[Any]
    loss: float | None
    seconds: float
    samples_per_s: float
    num_examples: int


@dataclass
class TrainResult:
    """The result of :meth:`~kgreason.training.trainer.Trainer.train`.

    Attributes:
        metric: name of the dev metric used for model selection.
        best_metric: its best value (``None`` without a dev set).
        best_step: optimizer step of the best evaluation.
        best_metrics: every dev metric of the best evaluation.
        global_steps: optimizer steps done (over the whole run, resumed parts included).
        epochs: epochs done, fractional.
        stopped_early: whether early stopping ended the run.
        train_seconds: time spent in training steps in this session (evaluation and checkpoints excluded).
        train_samples_per_s / train_tokens_per_s: training throughput of this session (all ranks together;
            tokens are real, unpadded tokens).
        wall_seconds: wall time of this ``train()`` call.
        final_train_loss: mean training loss over the last logging window.
        history: every dev evaluation, in order.
        best_checkpoint: ``<run>/best`` (``None`` before any was written).
        last_checkpoint: ``<run>/checkpoints/last``.
    """

    metric: str
    best_metric: float | None
    best_step: int | None
    best_metrics: dict[str, float] | None
    global_steps: int
    epochs: float
    stopped_early: bool
    train_seconds: float
    train_samples_per_s: float
    train_tokens_per_s: float
    wall_seconds: float
    final_train_loss: float | None
    history: list[EvalRecord] = field(default_factory=list)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
