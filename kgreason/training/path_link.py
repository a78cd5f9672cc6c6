"""Training the path GNN link predictor (:mod:`kgreason.models.path_link`).

Every training triple ``(h, r, t)`` is two queries, ``(h, r, ?)`` and ``(t, r⁻¹, ?)``; a batch's own edges are
removed from the graph it reads. The model scores every entity in one pass, so the loss is the softmax
cross-entropy over all entities with the query's other known training answers masked out (1-vs-all). Adam;
after each epoch the dev triples are ranked (filtered MRR over all entities, both directions) and the best
epoch is kept; with a ``run_dir`` each epoch ends in a checkpoint (``last/``) that a rerun resumes from, and a
time budget stops a run between batches.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from kgreason.models.path_link import PathGraph, PathLinkPredictor, PathLinkScorer

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase
    from kgreason.kge.evaluate import LinkPredictionMetrics


@dataclass(kw_only=True)
class PathLinkTrainingConfig:
    """How the path GNN trains (NBFNet's inductive settings: Adam 5e-3; batch in triples).

    Attributes:
        epochs: passes over the training triples.
        batch_size: triples per step (each two queries).
        lr: Adam learning rate.
        seed: initialisation, batch order and the dev sample.
        dev_triples: dev triples ranked after each epoch (0: all).
        patience: epochs without a better dev MRR before stopping (0: never).
        time_budget: minutes of training after which the run stops between batches (0: no limit).
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0
    dev_triples: int = 500
    patience: int = 0
    time_budget: float = 0.0


@dataclass
class PathLinkTrainResult:
    """The trained model (best dev epoch), the per-epoch history and the time."""

    model: PathLinkPredictor
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_dev_mrr: float = float("nan")
    seconds: float = 0.0


def rank_path_dev(
    model: PathLinkPredictor, kb: KnowledgeBase, *, triples: torch.Tensor, graph: PathGraph
) -> LinkPredictionMetrics:
    """Filtered MRR of ``triples`` over all of ``kb``'s entities, the model reading ``graph``."""
    from kgreason.kge.evaluate import rank_split

    return rank_split(PathLinkScorer(model, graph), kb, triples=triples, batch_size=64)


def path_loss(
    model: PathLinkPredictor, graph: PathGraph, batch: torch.Tensor, known: Any, *, num_relations: int
) -> torch.Tensor:
    """Cross-entropy of the batch's ``(B, 3)`` triples as forward and inverse queries over all entities; the
    graph without the batch's edges; other known answers (``known``: a TripleFilter) masked."""
    h, r, t = batch.unbind(1)
    anchor, rel, answer = torch.cat([h, t]), torch.cat([r, r + num_relations]), torch.cat([t, h])  # (2B,)
    scores = model(graph.without(batch), anchor, rel)  # (2B, N)
    b = h.numel()
    rows_t, ents_t = known.known(h, r, predict="tail")
    rows_h, ents_h = known.known(t, r, predict="head")
    rows, ents = torch.cat([rows_t, rows_h + b]), torch.cat([ents_t, ents_h])
    other = ents != answer[rows]
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[rows[other], ents[other]] = True
    return torch.nn.functional.cross_entropy(scores.masked_fill(mask, float("-inf")), answer)


def train_path_link(
    model: PathLinkPredictor,
    kb: KnowledgeBase,
    *,
    config: PathLinkTrainingConfig,
    run_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
) -> PathLinkTrainResult:
    """Train ``model`` on ``kb``'s ``train`` split (its facts are the graph), select on ``valid``."""
    from tqdm.auto import tqdm

    from kgreason.kge.evaluate import TripleFilter
    from kgreason.training.checkpoint import (
        EpochProgress,
        load_epoch_checkpoint,
        load_weights,
        resolve_checkpoint,
        save_epoch_checkpoint,
        save_model_dir,
    )
    from kgreason.training.seed import seed_everything

    seed_everything(config.seed)
    rng = random.Random(config.seed)
    train = kb.triples("train")  # (n, 3)
    graph = PathGraph.from_triples(train, num_entities=kb.num_entities, num_relations=kb.num_relations)
    known = TripleFilter(triples=train, num_entities=kb.num_entities, num_relations=kb.num_relations)
    dev = kb.triples("valid") if "valid" in kb.splits else torch.empty(0, 3, dtype=torch.long)
    if config.dev_triples and config.dev_triples < len(dev):
        dev = dev[torch.tensor(sorted(rng.sample(range(len(dev)), config.dev_triples)))]
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    result = PathLinkTrainResult(model=model)
    start_epoch, best, stale, spent = 0, float("-inf"), 0, 0.0
    run = Path(run_dir) if run_dir is not None else None
    best_state: dict[str, torch.Tensor] | None = None
    if run is not None and resume and (checkpoint := resolve_checkpoint(run / "last")) is not None:
        progress, _ = load_epoch_checkpoint(checkpoint, model=model, optimizer=optimizer, rng=rng)
        start_epoch, best, stale, spent = progress.epoch, progress.best, progress.stale, progress.seconds
        result.history, result.best_epoch = progress.history, progress.best_epoch
    started = time.perf_counter() - spent
    deadline = started + 60.0 * config.time_budget if config.time_budget else None
    for epoch in range(start_epoch, config.epochs):
        if (config.patience and stale >= config.patience) or (deadline and time.perf_counter() >= deadline):
            break
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        losses = []
        bar = tqdm(
            range(0, len(order), config.batch_size),
            desc=f"path GNN epoch {epoch + 1}/{config.epochs}",
            unit="step",
            disable=not progress,
        )
        epoch_started = time.perf_counter()
        for start in bar:
            batch = train[torch.tensor(order[start : start + config.batch_size])]  # (B, 3)
            loss = path_loss(model, graph, batch, known, num_relations=kb.num_relations)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
            if deadline and time.perf_counter() >= deadline:
                break
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": sum(losses) / max(len(losses), 1),
            "train_seconds": time.perf_counter() - epoch_started,
            "queries_per_second": 2
            * min(len(losses) * config.batch_size, len(order))
            / max(time.perf_counter() - epoch_started, 1e-9),
        }
        if len(dev):
            record["dev_mrr"] = rank_path_dev(model, kb, triples=dev, graph=graph).mrr
        score = record.get("dev_mrr", -record["loss"])
        result.history.append(record)
        if score > best:
            best, stale, result.best_epoch = score, 0, epoch + 1
            if run is not None:
                save_model_dir(run / "best", model=model)
            else:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if run is not None:
            progress = EpochProgress(
                epoch=epoch + 1,
                best=best,
                best_epoch=result.best_epoch,
                stale=stale,
                history=result.history,
                seconds=time.perf_counter() - started,
            )
            save_epoch_checkpoint(
                run / "last",
                model=model,
                optimizer=optimizer,
                progress=progress,
                rng=rng,
                config=asdict(config),
            )
    result.seconds = time.perf_counter() - started
    result.best_dev_mrr = best if result.history and "dev_mrr" in result.history[-1] else float("nan")
    if run is not None and (run / "best").is_dir():
        load_weights(model, run / "best")
    elif best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result
