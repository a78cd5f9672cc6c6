"""Training the relation composer on (story graph, query, answer) triples: the answer supervises the composition
of the whole chain; no proofs, no per-fact targets. Adam on the transition and readout tables; the epoch with the
best dev accuracy is kept."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from kgreason.core.example import Example
from kgreason.models.composer import RelationComposer


@dataclass(kw_only=True)
class ComposerTrainingConfig:
    """How the composer trains."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    seed: int = 13


@dataclass
class ComposerTrainingResult:
    """The trained composer (best dev epoch), per-epoch history and the training time."""

    composer: RelationComposer
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def composer_accuracy(
    composer: RelationComposer, examples: Sequence[Example], *, batch_size: int = 512, hard: bool = False
) -> float:
    """Share of ``examples`` whose label is the composer's most probable one."""
    right = 0
    with torch.no_grad():
        for lo in range(0, len(examples), batch_size):
            chunk = list(examples[lo : lo + batch_size])
            logits = composer(composer.encode(chunk), hard=hard).logits  # (G, L)
            right += sum(
                composer.config.labels[i] == e.label
                for i, e in zip(logits.argmax(-1).tolist(), chunk, strict=True)
            )
    return right / max(len(examples), 1)


def train_composer(
    composer: RelationComposer,
    train: Sequence[Example],
    dev: Sequence[Example],
    *,
    config: ComposerTrainingConfig,
    progress: bool = True,
) -> ComposerTrainingResult:
    """Fit ``composer`` to the training stories' answers (stories whose label is outside its labels skipped)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    labels = {label: i for i, label in enumerate(composer.config.labels)}
    stories = [e for e in train if e.label in labels and e.facts]
    optimizer = torch.optim.Adam(composer.parameters(), lr=config.lr)
    best, best_state, history = -1.0, copy.deepcopy(composer.state_dict()), []
    for epoch in tqdm(range(1, config.epochs + 1), desc="composer", disable=not progress):
        rng.shuffle(stories)
        total = 0.0
        for lo in range(0, len(stories), config.batch_size):
            chunk = stories[lo : lo + config.batch_size]
            target = torch.tensor([labels[e.label] for e in chunk])  # (G,)
            loss = torch.nn.functional.nll_loss(composer(composer.encode(chunk)).logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(chunk)
        score = composer_accuracy(composer, dev) if dev else 0.0
        history.append({"epoch": epoch, "loss": total / max(len(stories), 1), "dev": score})
        if score > best:
            best, best_state = score, copy.deepcopy(composer.state_dict())
    composer.load_state_dict(best_state)
    return ComposerTrainingResult(composer=composer, history=history, seconds=time.perf_counter() - started)
