"""Training KG embeddings: sampled (or all-entity) negatives, self-adversarial weighting, N3, early stopping.

One epoch visits every training triple once; with reciprocal relations every triple is two queries,
``(h, r, ?)`` and ``(t, r⁻¹, ?)`` (negatives corrupt the answer). Without them each triple is one query whose
side (head or tail) is drawn at random each epoch, as in PyG's and Sun et al.'s samplers; with
``negatives = 0`` (1-vs-all cross-entropy) both sides are always queried. With ``kvsall`` an epoch visits each
distinct query ``(anchor, relation)`` once, with all of its known answers as targets.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from kgreason.kge.evaluate import LinkPredictionMetrics, evaluate_link_prediction
from kgreason.kge.models import (
    LOSSES,
    MODELS,
    KGEModel,
    build_kge_model,
    default_rotate_init,
    n3_penalty_rows,
    negative_sampling_loss,
)

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase
    from kgreason.kge.recipes import KGERecipe


OPTIMIZERS = ("adam", "adagrad")


@dataclass
class KGEConfig:
    """Hyper-parameters of one KGE training run (see :func:`default_config` for the per-model defaults).

    Attributes:
        model: ``transe``, ``distmult``, ``complex`` or ``rotate``.
        dim: embedding width (complex models: ``dim`` complex numbers = ``2 * dim`` reals).
        epochs: passes over the training triples.
        batch_size: positive triples (queries) per step.
        lr: Adam learning rate.
        negatives: sampled negatives per positive; ``0`` scores all entities (1-vs-all, needs ``loss = "ce"``).
        shared_negatives: each batch draws ``negatives`` entities once and scores every positive of the batch
            against all of them with one GEMM (PyTorch-BigGraph / DGL-KE style), instead of ``negatives``
            independent entities per positive. Same count per positive, far cheaper, so large counts pay.
        kvsall: with ``negatives = 0``, one training item per distinct query ``(anchor, relation)`` whose known
            answers are the (uniform soft) targets of the softmax over all entities — KvsAll, Dettmers et al.
            2018's 1-N scoring, PyKEEN's LCWA — instead of one item per triple (1vsAll). Fewer, cheaper steps on
            dense KBs.
        loss: ``nssa`` (logistic with margin, Sun et al. 2019), ``margin`` (pairwise ranking) or ``ce``.
        margin: γ of ``nssa`` / ``margin``.
        adversarial_temperature: α of self-adversarial negative weighting (0: uniform weights).
        reciprocal: learn an inverse relation per relation; head prediction becomes tail prediction.
        n3: weight of the N3 regulariser (DistMult, ComplEx; 0: off).
        p_norm: TransE distance norm.
        seed: seeds initialisation and sampling.
        device: ``cpu``, ``cuda``, ``auto``/None (GPU if visible).
        eval_every: validate every this many epochs (0: only after the last epoch).
        patience: stop after this many validations without a better valid MRR (0: never stop early); the
            best-on-valid parameters are kept.
        time_budget: minutes of training after which the run stops (mid-epoch if need be), validates and keeps
            its best parameters (0: no limit). Counted across resumes.
        valid_sample: validations during training rank at most this many valid triples (a fixed sample drawn
            under ``seed``; 0: all); the kept parameters are reported on the whole valid split.
        eval_batch_size: queries per batch in evaluation.
        sparse: sparse embedding gradients with ``SparseAdam`` (faster steps on KBs with many entities).
        optimizer: ``adam`` or ``adagrad`` (``kbc``'s choice for ComplEx-N3; ``sparse`` needs ``adam``).
    """

    model: str = "rotate"
    dim: int = 500
    epochs: int = 100
    batch_size: int = 1024
    lr: float = 1e-2
    negatives: int = 1024
    shared_negatives: bool = True
    kvsall: bool = False
    loss: str = "nssa"
    margin: float = 3.0
    adversarial_temperature: float = 1.0
    reciprocal: bool = False
    n3: float = 0.0
    p_norm: float = 1.0
    seed: int = 0
    device: str | None = None
    eval_every: int = 0
    patience: int = 0
    time_budget: float = 0.0
    valid_sample: int = 0
    eval_batch_size: int = 256
    sparse: bool = False
    optimizer: str = "adam"

    def validate(self) -> KGEConfig:
        """Check values; returns self."""
        problems = []
        if self.model not in MODELS:
            problems.append(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("dim", "epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "negatives",
            "eval_every",
            "patience",
            "n3",
            "adversarial_temperature",
            "time_budget",
            "valid_sample",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.negatives == 0 and self.loss != "ce":
            problems.append("negatives = 0 (score all entities) needs loss = 'ce'")
        if self.n3 > 0 and self.model not in ("distmult", "complex"):
            problems.append(f"n3 applies to distmult and complex, not {self.model}")
        if self.kvsall and (self.negatives != 0 or self.loss != "ce"):
            problems.append("kvsall needs negatives = 0 and loss = 'ce'")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.sparse and self.optimizer != "adam":
            problems.append("sparse gradients need optimizer = 'adam' (SparseAdam)")
        if self.sparse and self.negatives == 0:
            problems.append("sparse gradients need sampled negatives (negatives >= 1)")
        if self.patience > 0 and self.eval_every == 0:
            problems.append("patience (early stopping) needs eval_every >= 1")
        if problems:
            raise ValueError("invalid KGE config: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _default_recipe(model: str) -> KGERecipe:
    from kgreason.kge.recipes import default_recipe_name, load_recipes

    key = model.strip().lower()
    recipes = load_recipes().recipes
    if key not in MODELS or default_recipe_name(key) not in recipes:
        raise ValueError(f"unknown KGE model {model!r}; expected one of {', '.join(MODELS)}")
    return recipes[default_recipe_name(key)]


def model_defaults(model: str) -> dict[str, Any]:
    """The per-model defaults of ``model``: the KGEConfig fields of recipe ``default-<model>`` (a fresh dict).

    The recipes of the papers behind the anchors, with margins and learning rates checked on Nations, UMLS,
    Kinship and WN18RR; they live, with their citations, in ``knowledge/kge/recipes.yaml``
    (:mod:`kgreason.kge.recipes`).
    """
    return _default_recipe(model).fields()


def default_config(model: str = "rotate", **overrides: Any) -> KGEConfig:
    """The defaults of ``model`` (:func:`model_defaults`) with ``overrides`` (``None`` values are ignored)
    applied, validated."""
    return _default_recipe(model).to_config(**overrides)


def __getattr__(name: str) -> Any:
    if name == "MODEL_DEFAULTS":  # the former dict of per-model defaults, now read from the recipe table
        return {m: {k: v for k, v in model_defaults(m).items() if k != "model"} for m in MODELS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_for(config: KGEConfig, *, num_entities: int, num_relations: int) -> KGEModel:
    """The model a config describes (initialised under ``config.seed``)."""
    torch.manual_seed(config.seed)
    kwargs: dict[str, float] = {}
    if config.model == "transe":
        kwargs["p_norm"] = config.p_norm
    elif config.model == "rotate":
        kwargs["init_range"] = default_rotate_init(margin=config.margin, dim=config.dim)
    return build_kge_model(
        config.model,
        num_entities=num_entities,
        num_relations=num_relations,
        dim=config.dim,
        reciprocal=config.reciprocal,
        sparse=config.sparse,
        **kwargs,
    )


@dataclass
class KGETrainResult:
    """A trained model, its config, per-epoch losses and the metrics of the kept (best-on-valid) parameters."""

    model: KGEModel
    config: KGEConfig
    losses: list[float]
    valid: LinkPredictionMetrics | None
    test: LinkPredictionMetrics | None
    best_epoch: int
    epochs_run: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: ``{"threads": n, "probe_seconds": {count: best seconds per batch}}`` (probe empty unless "auto").
    threads: dict[str, Any] = field(default_factory=dict)

    def metrics_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid.to_dict() if self.valid else None,
            "test": self.test.to_dict() if self.test else None,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "train_seconds": self.train_seconds,
            "history": self.history,
            **({"threads": self.threads} if self.threads else {}),
        }


def _optimizer(
    params: list[torch.nn.Parameter], *, name: str, lr: float, sparse: bool
) -> torch.optim.Optimizer:
    """Adagrad (Lacroix et al.'s ``kbc``), ``SparseAdam`` for sparse gradients, else Adam with the fused kernel
    where torch has one (CPU since torch 2.4: several times faster steps on large embedding tables)."""
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if sparse:
        return torch.optim.SparseAdam(params, lr=lr)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


class KGETrainer:
    """Trains one KGE model on ``(n, 3)`` training triples with Adam; validation drives early stopping."""

    def __init__(
        self,
        model: KGEModel,
        *,
        config: KGEConfig,
        train_triples: Tensor,
        valid_triples: Tensor | None = None,
        filter_triples: Tensor | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.config = config.validate()
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device)
        self.train_triples = torch.as_tensor(train_triples, dtype=torch.long).reshape(-1, 3).to(self.device)
        if self.train_triples.shape[0] == 0:
            raise ValueError("no training triples")
        self.valid_triples = valid_triples
        self.filter_triples = filter_triples
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self._kvsall_cache: tuple[Tensor, ...] | None = None
        self.optimizer = _optimizer(
            list(model.parameters()), name=config.optimizer, lr=config.lr, sparse=config.sparse
        )

    # ------------------------------------------------------------------------------------------ queries
    def _queries(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(anchor, rel, target, is_head)`` of one epoch, each ``(Q,)``."""
        h, r, t = self.train_triples.unbind(dim=1)  # (n,) each
        cfg = self.config
        num_base = self.model.num_base_relations
        if cfg.reciprocal:
            no = torch.zeros(2 * h.numel(), dtype=torch.bool, device=self.device)
            return torch.cat([h, t]), torch.cat([r, r + num_base]), torch.cat([t, h]), no
        if cfg.negatives == 0:
            is_head = torch.cat([torch.zeros_like(h, dtype=torch.bool), torch.ones_like(h, dtype=torch.bool)])
            return torch.cat([h, t]), torch.cat([r, r]), torch.cat([t, h]), is_head
        is_head = torch.rand(h.shape, generator=self.generator, device=self.device) < 0.5  # (n,)
        return torch.where(is_head, t, h), r, torch.where(is_head, h, t), is_head

    def batch_loss(self, anchor: Tensor, rel: Tensor, target: Tensor, is_head: Tensor) -> Tensor:
        """Loss of one batch of queries ``(B,)``; every entity of the batch is looked up once."""
        cfg, model = self.config, self.model
        b, k, num_entities = anchor.numel(), cfg.negatives, model.num_entities
        sampled = None
        if k and cfg.shared_negatives:
            sampled = torch.randint(num_entities, (k,), generator=self.generator, device=self.device)  # (K,)
        elif k:
            sampled = torch.randint(
                num_entities, (b, k), generator=self.generator, device=self.device
            )  # (B, K)
        # Small KBs: score against the whole table and gather (one GEMM); else look the batch's rows up.
        whole_table = k == 0 or (not cfg.shared_negatives and not model.sparse and num_entities <= 2 * k)
        ids = torch.cat(
            [anchor, target] if whole_table or sampled is None else [anchor, target, sampled.flatten()]
        )
        table = model.entity_rows() if whole_table else None  # (E, De)
        rows = table[ids] if table is not None else model.entity_rows(ids)  # (n, De)
        anchor_rows, target_rows = rows[:b], rows[b : 2 * b]  # (B, De)
        rel_rows = model.relation_rows(rel)  # (B, Dr)
        query = model.tail_query_from(anchor_rows, rel_rows)  # (B, D)
        if not cfg.reciprocal and bool(is_head.any()):
            head_q = model.head_query_from(rel_rows, anchor_rows)  # (B, D)
            query = torch.where(is_head.unsqueeze(1), head_q, query)
        if k == 0:
            scores = model.match_all(query, model.as_candidates(table))  # (B, E)
            loss = torch.nn.functional.cross_entropy(scores, target)
        else:
            positive = model.match(query, model.as_candidates(target_rows))  # (B,)
            if table is not None:
                negative = model.match_all(query, model.as_candidates(table)).gather(1, sampled)  # (B, K)
            elif cfg.shared_negatives:
                negative = model.match_all(query, model.as_candidates(rows[2 * b :]))  # (B, K)
            else:
                negative = model.match_each(
                    query, model.as_candidates(rows[2 * b :].view(b, k, -1))
                )  # (B, K)
            loss = negative_sampling_loss(
                positive,
                negative,
                loss=cfg.loss,
                margin=cfg.margin,
                adversarial_temperature=cfg.adversarial_temperature,
            )
        if cfg.n3 > 0:  # N3 sums over head and tail alike, so the query's direction does not matter
            loss = loss + cfg.n3 * n3_penalty_rows(model, anchor_rows, rel_rows, target_rows)
        return loss

    def _kvsall_items(self) -> tuple[Tensor, ...]:
        """Distinct queries ``(anchor, rel, is_head)`` of the training triples, with a CSR of their answers:
        ``(anchor, rel, is_head, starts, counts, answers)``."""
        if self._kvsall_cache is None:
            h, r, t = self.train_triples.unbind(dim=1)  # (n,) each
            num_base = self.model.num_base_relations
            anchor, answer = torch.cat([h, t]), torch.cat([t, h])  # (2n,)
            if self.config.reciprocal:
                rel, is_head = torch.cat([r, r + num_base]), torch.zeros_like(anchor, dtype=torch.bool)
            else:
                rel = torch.cat([r, r])
                is_head = torch.cat(
                    [torch.zeros_like(h, dtype=torch.bool), torch.ones_like(h, dtype=torch.bool)]
                )
            key = (anchor * (2 * num_base) + rel) * 2 + is_head.long()  # (2n,) one key per distinct query
            _, inverse = torch.unique(key, return_inverse=True)
            order = torch.argsort(inverse, stable=True)  # (2n,) triples grouped by query
            counts = torch.bincount(inverse)  # (Q,)
            starts = torch.cumsum(counts, 0) - counts  # (Q,)
            first = order[starts]  # (Q,) one triple of each query
            self._kvsall_cache = (anchor[first], rel[first], is_head[first], starts, counts, answer[order])
        return self._kvsall_cache

    def kvsall_loss(self, items: Tensor) -> Tensor:
        """Softmax cross-entropy of queries ``items (B,)`` against uniform targets over their known answers."""
        cfg, model = self.config, self.model
        q_anchor, q_rel, q_is_head, starts, counts, answers = self._kvsall_items()
        anchor, rel, is_head, lengths = q_anchor[items], q_rel[items], q_is_head[items], counts[items]  # (B,)
        b = items.numel()
        rows = torch.repeat_interleave(torch.arange(b, device=self.device), lengths)  # (m,)
        offsets = torch.arange(rows.numel(), device=self.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        cols = answers[torch.repeat_interleave(starts[items], lengths) + offsets]  # (m,)
        table = model.entity_rows()  # (E, De)
        anchor_rows, rel_rows = table[anchor], model.relation_rows(rel)  # (B, De), (B, Dr)
        query = model.tail_query_from(anchor_rows, rel_rows)  # (B, D)
        if not cfg.reciprocal and bool(is_head.any()):
            query = torch.where(is_head.unsqueeze(1), model.head_query_from(rel_rows, anchor_rows), query)
        log_probs = torch.log_softmax(model.match_all(query, model.as_candidates(table)), dim=1)  # (B, E)
        weights = 1.0 / lengths[rows].to(log_probs.dtype)  # (m,) uniform over each query's answers
        loss = -(weights * log_probs[rows, cols]).sum() / b
        if (
            cfg.n3 > 0
        ):  # cubes per entity once, then gathered: the answers outnumber the entities on dense KBs
            _, relation, entities = model.n3_factors(table[:0], rel_rows, table)
            entity_cubes = entities.pow(3).sum(-1)  # (E,)
            cubes = entity_cubes[anchor].sum() + relation.pow(3).sum() + (weights * entity_cubes[cols]).sum()
            loss = loss + cfg.n3 * cubes / b
        return loss

    def train_epoch(self, *, deadline: float | None = None) -> float:
        """One pass over the training triples (cut short once ``time.perf_counter()`` passes ``deadline``);
        returns the mean batch loss."""
        self.model.train()
        if self.config.kvsall:
            num_items = self._kvsall_items()[0].numel()
        else:
            anchor, rel, target, is_head = self._queries()
            num_items = anchor.numel()
        order = torch.randperm(num_items, generator=self.generator, device=self.device)  # (Q,)
        total, batches = 0.0, 0
        for idx in order.split(self.config.batch_size):
            if self.config.kvsall:
                loss = self.kvsall_loss(idx)
            else:
                loss = self.batch_loss(anchor[idx], rel[idx], target[idx], is_head[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            batches += 1
            if deadline is not None and time.perf_counter() >= deadline:
                break
        return total / max(batches, 1)

    def probe_step(self) -> None:
        """Forward and backward of one training batch that changes nothing (no step; the sampler's state and
        the gradients are restored): what :func:`kgreason.core.device.fastest_threads` times."""
        state = self.generator.get_state()
        batch = torch.arange(min(self.config.batch_size, len(self.train_triples)), device=self.device)  # (B,)
        if self.config.kvsall:
            loss = self.kvsall_loss(batch[: self._kvsall_items()[0].numel()])
        else:
            anchor, rel, target, is_head = (part[batch] for part in self._queries())
            loss = self.batch_loss(anchor, rel, target, is_head)
        loss.backward()
        self.optimizer.zero_grad(set_to_none=True)
        self.generator.set_state(state)

    def _valid_subset(self) -> Tensor | None:
        """The valid triples ranked during training: all, or ``valid_sample`` of them drawn under ``seed``."""
        if self.valid_triples is None or len(self.valid_triples) == 0:
            return None
        triples = torch.as_tensor(self.valid_triples, dtype=torch.long).reshape(-1, 3)  # (n, 3)
        n = self.config.valid_sample
        if n == 0 or n >= len(triples):
            return triples
        pick = torch.randperm(len(triples), generator=torch.Generator().manual_seed(self.config.seed))[:n]
        return triples[pick.sort().values]

    def validate(self, *, sample: bool = False) -> LinkPredictionMetrics | None:
        """Filtered ranks of the valid split (``sample``: of the in-training subset only)."""
        triples = self._valid_subset() if sample else self.valid_triples
        if triples is None or len(triples) == 0:
            return None
        return evaluate_link_prediction(
            self.model,
            triples=triples,
            filter_triples=self.filter_triples,
            batch_size=self.config.eval_batch_size,
            device=self.device,
        )

    # -------------------------------------------------------------------------------------- checkpoints
    def _state(self, progress: dict[str, Any]) -> dict[str, Any]:
        return {
            "config": _resume_key(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            **progress,
        }

    def _save(self, path: Path, progress: dict[str, Any]) -> None:
        from kgreason.core.atomic import atomic_output

        with atomic_output(path) as handle:
            torch.save(self._state(progress), handle)

    def _resume(self, path: Path) -> dict[str, Any] | None:
        """Load ``path`` if it exists (a run of the same config); returns its progress record."""
        from kgreason.core.errors import KGReasonError

        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # any unreadable file is reported the same way
            raise KGReasonError(
                f"{path}: not a kgreason KGE checkpoint ({type(err).__name__}: {err})"
            ) from None
        if not isinstance(state, dict) or state.get("config") != _resume_key(self.config):
            raise KGReasonError(
                f"{path}: checkpoint of another configuration; resume with the same settings "
                "(epochs, time_budget and patience may change) or choose another --out"
            )
        try:
            self.model.load_state_dict(state.pop("model"))
            self.optimizer.load_state_dict(state.pop("optimizer"))
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0]
            raise KGReasonError(
                f"{path}: checkpoint of another KB or model ({first}); choose another --out"
            ) from None
        self.generator.set_state(state.pop("generator").cpu())
        state.pop("config")
        return state

    def fit(self, *, progress: bool = True, checkpoint: Path | None = None) -> KGETrainResult:
        """Train for ``config.epochs`` (or until early stopping or the time budget); keep the best-on-valid
        parameters. With ``checkpoint``, the run's state is written there after every epoch (atomically) and
        a run that finds one resumes from it."""
        from tqdm.auto import tqdm

        cfg = self.config
        saved = self._resume(checkpoint) if checkpoint is not None else None
        run: dict[str, Any] = saved or {
            "epoch": 0,
            "losses": [],
            "history": [],
            "best_mrr": -math.inf,
            "best_epoch": 0,
            "best_state": None,
            "stale": 0,
            "seconds": 0.0,
        }
        losses: list[float] = run["losses"]
        history: list[dict[str, float]] = run["history"]
        start = time.perf_counter() - run["seconds"]
        deadline = start + 60.0 * cfg.time_budget if cfg.time_budget else None
        bar = tqdm(
            range(run["epoch"] + 1, cfg.epochs + 1),
            desc=f"{cfg.model}",
            unit="epoch",
            disable=not progress,
            leave=False,
            initial=run["epoch"],
            total=cfg.epochs,
        )
        epoch = run["epoch"]
        # a resumed run that had stopped stays stopped unless given more patience or time
        done = saved is not None and (
            bool(cfg.patience and run["stale"] >= cfg.patience)
            or (deadline is not None and time.perf_counter() >= deadline)
        )
        for epoch in bar if not done else ():
            loss = self.train_epoch(deadline=deadline)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"{cfg.model}: loss became {loss} at epoch {epoch}; lower lr ({cfg.lr})"
                )
            losses.append(loss)
            bar.set_postfix(loss=f"{loss:.4f}")
            out_of_time = deadline is not None and time.perf_counter() >= deadline
            last = epoch == cfg.epochs or out_of_time
            if cfg.eval_every and (epoch % cfg.eval_every == 0 or last):
                valid = self.validate(sample=True)
                if valid is not None:
                    seconds = time.perf_counter() - start  # training time so far (validations included)
                    history.append({"epoch": epoch, "loss": loss, "valid_mrr": valid.mrr, "seconds": seconds})
                    bar.set_postfix(loss=f"{loss:.4f}", valid_mrr=f"{valid.mrr:.4f}")
                    if valid.mrr > run["best_mrr"]:
                        run.update(best_mrr=valid.mrr, best_epoch=epoch, stale=0)
                        run["best_state"] = {
                            k: v.detach().clone() for k, v in self.model.state_dict().items()
                        }
                    else:
                        run["stale"] += 1
            stop = out_of_time or bool(cfg.patience and run["stale"] >= cfg.patience)
            run.update(epoch=epoch, seconds=time.perf_counter() - start)
            if checkpoint is not None:
                self._save(checkpoint, run)
            if stop:
                break
        seconds = run["seconds"]
        best_epoch = run["best_epoch"] or epoch
        if run["best_state"] is not None and best_epoch != epoch:
            self.model.load_state_dict(run["best_state"])
        final = self.validate()
        subset = self._valid_subset()
        sampled = subset is not None and len(subset) < len(self.valid_triples)
        repeated = bool(history) and history[-1]["epoch"] == best_epoch == epoch and not sampled
        if final is not None and not repeated:  # the kept parameters on the whole valid split
            history.append(
                {
                    "epoch": best_epoch,
                    "loss": losses[best_epoch - 1],
                    "valid_mrr": final.mrr,
                    "all_valid": True,
                }
            )
        return KGETrainResult(
            model=self.model,
            config=cfg,
            losses=losses,
            valid=final,
            test=None,
            best_epoch=best_epoch,
            epochs_run=epoch,
            train_seconds=seconds,
            history=history,
        )


#: Fields a resumed run may change: how long it runs and how it is watched, not what it learns.
_RESUMABLE_CHANGES = ("epochs", "time_budget", "patience", "eval_every", "device", "eval_batch_size")


def _resume_key(config: KGEConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k not in _RESUMABLE_CHANGES}


def train_kge(
    kb: KnowledgeBase,
    *,
    config: KGEConfig,
    evaluate_test: bool = True,
    progress: bool = True,
    checkpoint: Path | None = None,
    threads: int | str | None = None,
) -> KGETrainResult:
    """Train ``config.model`` on ``kb``'s train split; validate on valid, report test once at the end.

    The filter of the filtered metrics is every triple of every split. ``checkpoint``: resumable state file
    (:meth:`KGETrainer.fit`). ``threads``: torch CPU threads, or ``"auto"`` for the fastest count on this
    machine, timed on a few training batches (:func:`kgreason.core.device.fastest_threads`).
    """
    from kgreason.core.device import resolve_device

    config.validate()
    splits = kb.splits
    if "train" not in splits:
        raise ValueError(f"KB {kb.name!r} has no 'train' split (splits: {', '.join(splits)})")
    device = resolve_device(config.device)
    model = model_for(config, num_entities=kb.num_entities, num_relations=kb.num_relations)
    all_triples = kb.triples()  # (n, 3)
    trainer = KGETrainer(
        model,
        config=config,
        train_triples=kb.triples("train"),
        valid_triples=kb.triples("valid") if "valid" in splits else None,
        filter_triples=all_triples,
        device=device,
    )
    thread_times: dict[str, float] = {}
    if threads == "auto" and device.type == "cpu":
        from kgreason.core.device import fastest_threads

        choice = fastest_threads(trainer.probe_step)
        thread_times = {str(n): t for n, t in choice.seconds.items()}
    elif isinstance(threads, int):
        torch.set_num_threads(threads)
    result = trainer.fit(progress=progress, checkpoint=checkpoint)
    result.threads = {"threads": torch.get_num_threads(), "probe_seconds": thread_times}
    if evaluate_test and "test" in splits:
        result.test = evaluate_link_prediction(
            result.model,
            triples=kb.triples("test"),
            filter_triples=all_triples,
            batch_size=config.eval_batch_size,
            device=device,
        )
    return result
