"""Checkpoints on disk: model weights in safetensors, trainer state loadable with ``weights_only=True``.

A checkpoint is a folder written whole into a temporary folder beside its target and then moved into place with
``os.replace``, so a crash leaves the previous checkpoint (or the new one), never half of one::

    <run>/checkpoints/last/model.safetensors     resumable: weights
    <run>/checkpoints/last/trainer_state.pt      optimizer, scheduler, scaler, RNG states, counters, history
    <run>/checkpoints/last/trainer_state.json    the counters, for people
    <run>/best/                                  the best model (``model.save_pretrained`` or model.safetensors)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgreason.core.atomic import atomic_directory, backup_of
from kgreason.core.errors import KGReasonError

if TYPE_CHECKING:
    import torch

WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "trainer_state.pt"
STATE_SUMMARY_NAME = "trainer_state.json"


class CheckpointError(KGReasonError, ValueError):
    """A checkpoint folder is missing a file or does not fit the model."""


def resolve_checkpoint(path: str | Path) -> Path | None:
    """``path`` when it is a checkpoint folder, else the copy an interrupted swap left aside, else ``None``."""
    path = Path(path)
    for candidate in (path, backup_of(path)):
        if (candidate / STATE_NAME).is_file() and (candidate / WEIGHTS_NAME).is_file():
            return candidate
    return None


def save_weights(model: torch.nn.Module, directory: str | Path) -> Path:
    """Write ``model``'s parameters and buffers to ``<directory>/model.safetensors`` (tied weights once)."""
    from safetensors.torch import save_model

    target = Path(directory) / WEIGHTS_NAME
    save_model(model, str(target))
    return target


def load_weights(model: torch.nn.Module, directory: str | Path) -> None:
    """Load ``<directory>/model.safetensors`` into ``model`` (strict: every key must match)."""
    from safetensors.torch import load_model

    source = Path(directory) / WEIGHTS_NAME
    if not source.is_file():
        raise CheckpointError(f"{source}: no such file (expected the weights of a checkpoint)")
    try:
        missing, unexpected = load_model(model, str(source), strict=False)
    except RuntimeError as err:  # shapes that differ
        raise CheckpointError(
            f"{source}: does not fit the model ({err}); expected weights of the same architecture"
        ) from None
    except Exception as err:  # safetensors' own SafetensorError: a truncated or foreign file
        raise CheckpointError(
            f"{source}: not a readable safetensors file ({err}); expected the complete weights of a checkpoint "
            "(the file may be truncated: train with --no-resume to start over)"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: does not fit the model (missing keys: {sorted(missing)[:5]}, "
            f"unexpected keys: {sorted(unexpected)[:5]}); expected weights of the same architecture"
        )


def save_training_checkpoint(directory: str | Path, *, model: torch.nn.Module, state: dict[str, Any]) -> Path:
    """Atomically write a resumable checkpoint: weights, ``state`` (``torch.save``) and a JSON summary."""
    import torch

    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        save_weights(model, tmp)
        torch.save(state, tmp / STATE_NAME)
        summary = {key: state.get(key) for key in ("global_step", "epoch", "batches_done", "best_metric")}
        summary["best_step"] = state.get("best_step")
        (tmp / STATE_SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return directory


def load_training_state(directory: str | Path) -> dict[str, Any]:
    """The trainer state of a checkpoint folder, loaded with ``weights_only=True`` onto the CPU."""
    import torch

    source = Path(directory) / STATE_NAME
    if not source.is_file():
        raise CheckpointError(f"{source}: no such file (expected a trainer checkpoint)")
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # an unreadable or foreign file
        raise CheckpointError(
            f"{source}: not a readable trainer state ({err}); expected the state a kgreason trainer saved "
            "(train with --no-resume to start over)"
        ) from err


def save_model_dir(directory: str | Path, *, model: torch.nn.Module) -> Path:
    """Atomically write a model folder: through ``model.save_pretrained`` when it has one, else safetensors."""
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        if callable(getattr(model, "save_pretrained", None)):
            model.save_pretrained(tmp)
        else:
            save_weights(model, tmp)
    return directory


@dataclass(kw_only=True)
class EpochProgress:
    """Where an epoch-based run stands: epochs done, the best dev score and its epoch, epochs since it, the
    per-epoch history and the training seconds spent (what the link-prediction trainers checkpoint)."""

    epoch: int = 0
    best: float = float("-inf")
    best_epoch: int = 0
    stale: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def save_epoch_checkpoint(
    directory: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: EpochProgress,
    rng: random.Random,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """:func:`save_training_checkpoint` of an epoch-based run (``extra``: e.g. the scheduler's state)."""
    from kgreason.training.seed import random_state_to_json

    state = {
        "epoch": progress.epoch,
        "optimizer": optimizer.state_dict(),
        "best_metric": progress.best,
        "best_step": progress.best_epoch,
        "stale": progress.stale,
        "seconds": progress.seconds,
        "history": json.dumps(progress.history),
        "rng": random_state_to_json(rng),
        "config": json.dumps(config),
        **(extra or {}),
    }
    return save_training_checkpoint(directory, model=model, state=state)


def load_epoch_checkpoint(
    directory: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, rng: random.Random
) -> tuple[EpochProgress, dict[str, Any]]:
    """Restore what :func:`save_epoch_checkpoint` wrote into ``model``, ``optimizer`` and ``rng``; returns the
    progress and the whole state (for the caller's ``extra`` entries)."""
    from kgreason.training.seed import random_state_from_json

    state = load_training_state(directory)
    load_weights(model, directory)
    optimizer.load_state_dict(state["optimizer"])
    rng.setstate(random_state_from_json(state["rng"]))
    progress = EpochProgress(
        epoch=int(state["epoch"]),
        best=float(state["best_metric"]),
        best_epoch=int(state["best_step"]),
        stale=int(state["stale"]),
        history=json.loads(state["history"]),
        seconds=float(state.get("seconds", 0.0)),
    )
    return progress, state
