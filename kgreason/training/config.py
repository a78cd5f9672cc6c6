"""Trainer settings (one dataclass, read from the ``trainer:`` section of an experiment config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kgreason.core.config import SEED_MAX, check_device_name, setting
from kgreason.models.peft import PeftConfig
from kgreason.training.precision import PRECISIONS


@dataclass
class TrainerConfig:
    """How to train.

    Attributes:
        epochs: passes over the training data (``max_steps`` > 0 stops earlier).
        max_steps: optimizer steps to stop after (0: no limit).
        batch_size: examples per forward pass (per process under torchrun).
        eval_batch_size: examples per forward pass at evaluation.
        grad_accumulation: forward passes per optimizer step.
        learning_rate: peak AdamW learning rate of the encoder.
        head_learning_rate: peak learning rate of the non-encoder parameters (GNN, heads); ``None``: same.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        warmup_ratio: share of steps with linear warm-up; the rest decays linearly to 0.
        max_grad_norm: gradient clipping norm (0: off).
        precision: ``auto`` (bf16 autocast where supported: CPU, and CUDA with bf16), ``fp32``, ``bf16``, ``fp16``
            (CUDA only, with a gradient scaler).
        length_bucketing: batch examples of similar length together (shuffled bucket order) to cut padding.
        eval_every: evaluate on dev every this many optimizer steps (0: at the end of each epoch).
        early_stopping_patience: stop after this many evaluations without improvement (0: never stop early).
        metric: dev metric for model selection (default: the task's primary metric); higher is better.
        save_every: write a resumable checkpoint every this many optimizer steps (0: at each evaluation).
        seed: seed of every random generator (data order, dropout, initialisation).
        device: ``auto`` (cuda when present), ``cpu``, ``cuda``, ``cuda:1``, ...
        num_workers: DataLoader worker processes.
        tensorboard: write TensorBoard event files under ``<run>/tensorboard``.
        log_every: log loss / learning rate every this many optimizer steps.
        progress: show tqdm progress bars.
        peft: parameter-efficient fine-tuning (see :class:`PeftConfig`).
    """

    epochs: int = setting(3, ge=0)
    max_steps: int = setting(0, ge=0, note="0: no limit")
    batch_size: int = setting(32, ge=1)
    eval_batch_size: int = setting(64, ge=1)
    grad_accumulation: int = setting(1, ge=1)
    learning_rate: float = setting(5e-5, gt=0)
    head_learning_rate: float | None = setting(1e-3, gt=0, note="or null: the encoder's")
    weight_decay: float = setting(0.01, ge=0)
    warmup_ratio: float = setting(0.1, ge=0, le=1)
    max_grad_norm: float = setting(1.0, ge=0, note="0: off")
    precision: str = setting("auto", choices=PRECISIONS)
    length_bucketing: bool = True
    eval_every: int = setting(0, ge=0, note="0: each epoch")
    early_stopping_patience: int = setting(0, ge=0, note="0: never")
    metric: str | None = None
    save_every: int = setting(0, ge=0, note="0: at each evaluation")
    seed: int = setting(13, ge=0, le=SEED_MAX)
    device: str = setting("auto", validate=check_device_name)
    num_workers: int = setting(0, ge=0)
    tensorboard: bool = True
    log_every: int = setting(20, ge=0)
    progress: bool = True
    peft: PeftConfig = field(default_factory=PeftConfig)
