"""Training the story reader on gold story graphs (facts and genders supervise training, never inference).

AdamW with a linear warm-up and decay (the encoder at ``lr``, the fresh heads at ``head_lr``), length-bucketed
batches, bf16 autocast where the device has it. After each epoch the dev stories are read and the epoch with the
best dev pair accuracy (every candidate pair's family and every person's gender right) is kept.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from kgreason.core.example import Example
from kgreason.models.story_reader import StoryReader


@dataclass(kw_only=True)
class ReaderTrainingConfig:
    """How the reader trains."""

    epochs: int = 2
    batch_size: int = 16
    lr: float = 5e-5
    head_lr: float = 1e-3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 13
    precision: str = "auto"
    max_train: int = 0


@dataclass
class ReaderTrainingResult:
    """The trained reader (best dev epoch), per-epoch history and the training time."""

    reader: StoryReader
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def dev_pair_accuracy(reader: StoryReader, examples: Sequence[Example], *, dtype=None) -> float:
    """Share of dev stories whose every labelled candidate pair and every person's gender is read right."""
    from kgreason.data.story_graph import story_targets

    readings = reader.read(examples, dtype=dtype)
    right = 0
    for example, reading in zip(examples, readings, strict=True):
        gold = story_targets(example, reading.layout)
        families = reading.families.argmax(-1).tolist() if len(gold.families) else []
        genders = reading.genders.argmax(-1).tolist() if len(gold.genders) else []
        right += all(g < 0 or g == p for g, p in zip(gold.families, families, strict=True)) and all(
            g < 0 or g == p for g, p in zip(gold.genders, genders, strict=True)
        )
    return right / max(len(examples), 1)


def train_story_reader(
    reader: StoryReader,
    train: Sequence[Example],
    dev: Sequence[Example],
    *,
    config: ReaderTrainingConfig,
    progress: bool = True,
    transform: Callable[[Example, random.Random], Example] | None = None,
) -> ReaderTrainingResult:
    """Fine-tune ``reader`` on ``train`` (see the module docstring); returns the best dev epoch's reader.

    ``transform``: applied to every training story afresh each epoch (e.g. consistent renaming of its people,
    so the reader cannot learn who is whose relative from the names of the training families).
    """
    from tqdm.auto import tqdm

    from kgreason.core.device import default_device
    from kgreason.training.precision import resolve_precision
    from kgreason.training.schedule import linear_warmup_decay, warmup_steps_for
    from kgreason.training.seed import seed_everything

    seed_everything(config.seed)
    device = default_device()
    reader.to(device).train()
    precision = resolve_precision(config.precision, device=device)
    rng = random.Random(config.seed)
    train = list(train)
    if config.max_train and config.max_train < len(train):
        train = rng.sample(train, config.max_train)
    features = [
        reader.featurize(example, targets=True) for example in train
    ]  # epoch 1 (re-made if transform)
    steps_per_epoch = -(-len(train) // config.batch_size)
    total = steps_per_epoch * config.epochs
    encoder_params = [p for p in reader.encoder.parameters() if p.requires_grad]
    head_params = [
        p for n, p in reader.named_parameters() if not n.startswith("encoder.") and p.requires_grad
    ]
    optimizer = torch.optim.AdamW(
        [{"params": encoder_params, "lr": config.lr}, {"params": head_params, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    scheduler = linear_warmup_decay(
        optimizer,
        total_steps=total,
        warmup_steps=warmup_steps_for(total_steps=total, warmup_ratio=config.warmup_ratio),
    )
    result = ReaderTrainingResult(reader=reader)
    best, best_state = -1.0, None
    started = time.perf_counter()
    for epoch in range(config.epochs):
        reader.train()
        if transform is not None:
            features = [reader.featurize(transform(example, rng), targets=True) for example in train]
        order = sorted(
            range(len(features)), key=lambda n: (max(map(len, features[n].segments), default=0), rng.random())
        )
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        rng.shuffle(batches)
        losses = []
        bar = tqdm(batches, desc=f"reader epoch {epoch + 1}/{config.epochs}", disable=not progress)
        for batch in bar:
            with precision.autocast():
                loss = reader([features[n] for n in batch]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reader.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        accuracy = dev_pair_accuracy(reader, dev, dtype=precision.dtype) if dev else 0.0
        result.history.append(
            {"epoch": epoch + 1, "loss": sum(losses) / max(len(losses), 1), "dev": accuracy}
        )
        if accuracy > best:
            best, best_state = accuracy, copy.deepcopy(reader.state_dict())
    if best_state is not None:
        reader.load_state_dict(best_state)
    result.seconds = time.perf_counter() - started
    return result
