"""The trainer: AdamW with warm-up and linear decay, mixed precision, gradient accumulation and clipping,
length-bucketed dynamic padding, dev evaluation with early stopping, atomic checkpoints with exact resume,
divergence detection, TensorBoard logs, and data parallelism under ``torchrun``.

Run folder::

    <out>/best/                  the best model on dev (``model.save_pretrained`` or model.safetensors)
    <out>/checkpoints/last/      the resumable checkpoint (see :mod:`kgreason.training.checkpoint`)
    <out>/tensorboard/           event files (loss, learning rate, throughput, dev metrics)

A model is an ``nn.Module`` whose ``forward(batch)`` returns a :class:`~kgreason.core.output.ModelOutput` with
``loss`` (mean over the batch) when the batch has labels. Parameters of its ``encoder`` attribute (the
transformer) train at ``learning_rate``, the others at ``head_learning_rate``; biases and normalisation weights
get no weight decay.

When things happen:

* dev evaluation every ``eval_every`` optimizer steps (0: at the end of each epoch), and once more at the end
  when the last step was not evaluated; an improvement writes ``best/``;
* the resumable checkpoint every ``save_every`` steps (0: at each evaluation, or each epoch without a dev set)
  and at the end; an interrupted run resumes from the last one;
* the loss is checked for NaN / inf without a host sync per step: at each log, evaluation and checkpoint, so a
  checkpoint is only ever written from finite losses;
* under ``torchrun`` every rank trains on its share of the batches; evaluation is sharded over the ranks and the
  predictions are gathered on every rank, so call :meth:`Trainer.evaluate` / :meth:`Trainer.predict` on all
  ranks. Rank 0 alone writes checkpoints, TensorBoard logs and progress bars.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgreason.core.errors import ConfigError, KGReasonError
from kgreason.training.records import EvalRecord, EvalResult, TrainResult

if TYPE_CHECKING:
    import torch
    from torch import nn

    from kgreason.core.batch import Collator
    from kgreason.tasks.base import EncodedDataset, Task
    from kgreason.training.config import TrainerConfig

logger = logging.getLogger(__name__)

#: Trainer settings that fix the order of the training data: a checkpoint resumes only when they match (and the
#: number of processes and of training examples).
_ORDER_FIELDS = ("batch_size", "grad_accumulation", "seed", "length_bucketing")


class TrainingDivergedError(KGReasonError, FloatingPointError):
    """The training loss became NaN or infinite.

    Attributes:
        step: the optimizer step (1-based) whose forward pass gave the non-finite loss.
        indices: the dataset indices of that batch's examples (empty when another rank saw it).
        checkpoint: the last good resumable checkpoint, if any was written.
    """

    def __init__(self, *, step: int, indices: Sequence[int], checkpoint: Path | None) -> None:
        self.step = step
        self.indices = list(indices)
        self.checkpoint = checkpoint
        where = f"examples {self.indices}" if self.indices else "a batch on another rank"
        kept = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written yet"
        super().__init__(
            f"training diverged: non-finite loss at optimizer step {step} ({where}); {kept}. "
            "Lower the learning rate, use fp32 or bf16 instead of fp16, or check those examples"
        )


class TrainerCallback:
    """Hooks into :meth:`Trainer.train`; override the ones you need (all receive the trainer)."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first step (after a resumed checkpoint was loaded)."""

    def on_before_optimizer_step(self, trainer: Trainer, *, step: int) -> None:
        """Gradients are accumulated, unscaled and clipped; ``step`` is the step about to be taken (1-based)."""

    def on_step_end(self, trainer: Trainer, *, step: int) -> None:
        """After optimizer step ``step`` and any logging, evaluation and checkpoint that followed it."""

    def on_evaluate(self, trainer: Trainer, *, record: EvalRecord) -> None:
        """After a dev evaluation."""

    def on_save(self, trainer: Trainer, *, path: Path, kind: str) -> None:
        """After a checkpoint was written (``kind``: ``last`` or ``best``), on the writing rank only."""

    def on_train_end(self, trainer: Trainer, *, result: TrainResult) -> None:
        """After training finished (not after an exception)."""


def parameter_groups(
    model: nn.Module, *, learning_rate: float, head_learning_rate: float | None, weight_decay: float
) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters: encoder / head × decay / no decay.

    ``model.encoder`` (when present) is the encoder; biases and the weights of normalisation layers (any module
    whose class name contains ``Norm``) get no weight decay. Empty groups are left out.
    """
    encoder = getattr(model, "encoder", None)
    encoder_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    no_decay_ids: set[int] = set()
    for module in model.modules():
        if "norm" in type(module).__name__.lower():
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    head_lr = learning_rate if head_learning_rate is None else head_learning_rate
    buckets: dict[str, list] = {"encoder": [], "encoder_no_decay": [], "head": [], "head_no_decay": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "encoder" if id(param) in encoder_ids else "head"
        exempt = id(param) in no_decay_ids or name.endswith("bias")
        buckets[part + ("_no_decay" if exempt else "")].append(param)
    groups = []
    for name, params in buckets.items():
        if params:
            groups.append(
                {
                    "name": name,
                    "params": params,
                    "lr": learning_rate if name.startswith("encoder") else head_lr,
                    "weight_decay": 0.0 if name.endswith("no_decay") else weight_decay,
                }
            )
    if not groups:
        raise ConfigError("the model has no trainable parameters")
    return groups


@dataclass
class _RunState:
    """The counters a checkpoint carries (besides optimizer, scheduler, scaler and RNG states)."""

    global_step: int = 0
    epoch: int = 0
    batches_done: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    last_eval_step: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Plan:
    """The shape of a training run: data order and step counts."""

    sampler: Any
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


class _Stopwatch:
    """Training time, with evaluation / checkpoint / logging pauses left out."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._since = time.perf_counter()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        now = time.perf_counter()
        self.seconds += now - self._since
        try:
            yield
        finally:
            self._since = time.perf_counter()

    def total(self) -> float:
        return self.seconds + time.perf_counter() - self._since


class _LossWindow:
    """Micro-batch losses kept on the device (no host sync per step) until the next check."""

    def __init__(self) -> None:
        self.pending: list[tuple[torch.Tensor, int, torch.Tensor]] = []  # (loss, step, example indices)
        self.log_sum = 0.0
        self.log_count = 0
        self.eval_sum = 0.0
        self.eval_count = 0
        self.samples = 0  # since the last log
        self.tokens = 0
        self.session_samples = 0  # since train() began
        self.session_tokens = 0

    def add(self, loss: torch.Tensor, *, step: int, index: torch.Tensor, samples: int, tokens: int) -> None:
        self.pending.append((loss, step, index))
        self.samples += samples
        self.tokens += tokens
        self.session_samples += samples
        self.session_tokens += tokens


class Trainer:
    """Train and evaluate a model on a task (see the module docstring).

    Args:
        model: the model (moved to the trainer's device).
        task: decodes logits and scores predictions.
        config: the trainer settings.
        train: the encoded training set.
        dev: the encoded dev set for evaluation, model selection and early stopping (optional).
        collator: builds padded batches.
        output_dir: the run folder.
        callbacks: hooks (see :class:`TrainerCallback`).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        task: Task,
        config: TrainerConfig,
        train: EncodedDataset,
        dev: EncodedDataset | None = None,
        collator: Collator,
        output_dir: str | Path,
        callbacks: Sequence[TrainerCallback] = (),
    ) -> None:
        import torch

        from kgreason.core.device import resolve_device
        from kgreason.training.distributed import init_distributed
        from kgreason.training.precision import resolve_precision

        _validate(config)
        self.task = task
        self.config = config
        self.train_data = train
        self.dev_data = dev
        self.collator = collator
        self.output_dir = Path(output_dir)
        self.callbacks = list(callbacks)
        device = resolve_device(config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"trainer.device={config.device!r}, but no CUDA device is visible; use auto or cpu"
            )
        self.dist = init_distributed(device_type=device.type)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        self.precision = resolve_precision(config.precision, device=device)
        self.model = model.to(device)
        self.metric = config.metric or task.primary_metric
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.scaler: Any = None
        self.global_step = 0
        self._peft_applied = False
        self._peft_step_hook: Any = None
        self._writer: Any = None
        self._run = _RunState()
        self._window = _LossWindow()
        self._last_loss: float | None = None
        self._last_saved_step = -1
        self._last_log_time = 0.0

    # ----------------------------------------------------------------------------------------------- paths
    @property
    def best_dir(self) -> Path:
        return self.output_dir / "best"

    @property
    def last_dir(self) -> Path:
        return self.output_dir / "checkpoints" / "last"

    # --------------------------------------------------------------------------------------------- training
    def train(self, *, resume: bool = True) -> TrainResult:
        """Train (resuming from ``<out>/checkpoints/last`` when ``resume`` and it exists); see the module docs.

        After training, the model holds the best dev weights when ``<out>/best/model.safetensors`` fits it.
        A resumed run continues exactly where the checkpoint left off (same data order, RNG and optimizer
        state), so it ends with the weights an uninterrupted run would have.

        Raises:
            TrainingDivergedError: the loss became NaN / inf (the last good checkpoint stays on disk).
            CheckpointError: the checkpoint to resume was written with another data order (batch size, seed...).
        """
        wall_start = time.perf_counter()
        plan, params = self._start(resume=resume)
        ddp, loader, bar = self._open_session(plan)
        for callback in self.callbacks:
            callback.on_train_begin(self)
        watch = _Stopwatch()
        self.model.train()
        try:
            while not self._finished(plan.total_steps):
                self._train_epoch(plan, ddp=ddp, loader=loader, params=params, bar=bar, watch=watch)
            train_seconds = watch.total()
            totals = self._finish(plan, bar=bar, watch=watch)
        finally:
            self._close_session(bar)
        result = self._result(plan, totals=totals, train_seconds=train_seconds, wall_start=wall_start)
        for callback in self.callbacks:
            callback.on_train_end(self, result=result)
        return result

    def _start(self, *, resume: bool) -> tuple[_Plan, list]:
        """Plan the run, build the optimizer and reset the counters, then resume or seed.

        Returns the plan and the trained parameters.
        """
        from kgreason.core.atomic import remove_stale_temporaries
        from kgreason.training.checkpoint import resolve_checkpoint
        from kgreason.training.seed import seed_everything

        cfg = self.config
        plan = self._plan()
        self._apply_peft(total_steps=plan.total_steps)
        params = self._build_optimization(plan)
        self._run = _RunState()
        self._window = _LossWindow()
        self._last_loss = None
        self._last_log_time = 0.0
        if self.dist.is_main:
            for folder in (self.last_dir, self.best_dir):
                remove_stale_temporaries(folder)
        found = resolve_checkpoint(self.last_dir) if resume else None
        if found is not None:
            self._restore(found, total_steps=plan.total_steps, warmup=plan.warmup_steps)
        else:
            seed_everything(cfg.seed + self.dist.rank)  # dropout differs per rank; data order does not
        self.global_step = self._run.global_step
        self._last_saved_step = self._run.global_step if found is not None else -1
        return plan, params

    def _open_session(self, plan: _Plan) -> tuple[Any, Any, Any]:
        """The (data-parallel) model, the training loader, the TensorBoard writer and the progress bar.

        Returns ``(ddp, loader, bar)``; the writer is kept in ``self._writer``.
        """
        import torch
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        from kgreason.training.distributed import wrap_model

        cfg = self.config
        step = self._run.global_step
        ddp = wrap_model(self.model, ctx=self.dist, device=self.device)
        loader = DataLoader(
            self.train_data,
            batch_sampler=plan.sampler,
            collate_fn=self.collator,
            num_workers=cfg.num_workers,
            generator=torch.Generator(),  # keeps the global RNG (dropout) untouched by loader start-up
        )
        if self.dist.is_main and cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                log_dir=str(self.output_dir / "tensorboard"),
                purge_step=step,  # drop events that an earlier run wrote after this step
            )
        bar = tqdm(
            total=plan.total_steps,
            initial=min(step, plan.total_steps),
            desc="train",
            unit="step",
            disable=not (cfg.progress and self.dist.is_main),
            dynamic_ncols=True,
        )
        return ddp, loader, bar

    def _finish(self, plan: _Plan, *, bar: Any, watch: _Stopwatch) -> torch.Tensor:
        """A last evaluation of the final weights, a last log and checkpoint, then the best weights back.

        Returns this session's (samples, tokens), summed over the ranks.
        """
        import torch

        from kgreason.training.distributed import all_reduce_sum, barrier

        run = self._run
        if self.dev_data is not None and not run.stopped_early and run.last_eval_step != run.global_step:
            self._evaluate_dev(plan)
        if self._window.pending or self._window.log_count:
            self._log(bar, watch)
        if self._last_saved_step != run.global_step:
            self._save_last()
        if self.dev_data is None:  # no model selection: the best model is the final one
            if self.dist.is_main:
                self._save_best()
            barrier(ctx=self.dist)
        self._restore_best()
        totals = torch.tensor(
            [self._window.session_samples, self._window.session_tokens],
            dtype=torch.float64,
            device=self.device,
        )  # (2,) samples, tokens
        all_reduce_sum(totals, ctx=self.dist)
        return totals

    def _close_session(self, bar: Any) -> None:
        """Close the progress bar and the TensorBoard writer (also after an exception)."""
        bar.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _result(
        self, plan: _Plan, *, totals: torch.Tensor, train_seconds: float, wall_start: float
    ) -> TrainResult:
        """The :class:`TrainResult` of the finished run."""
        run = self._run
        samples_all, tokens_all = totals.tolist()
        return TrainResult(
            metric=self.metric,
            best_metric=run.best_metric,
            best_step=run.best_step,
            best_metrics=run.best_metrics,
            global_steps=run.global_step,
            epochs=run.global_step / plan.steps_per_epoch,
            stopped_early=run.stopped_early,
            train_seconds=train_seconds,
            train_samples_per_s=samples_all / train_seconds if train_seconds > 0 else 0.0,
            train_tokens_per_s=tokens_all / train_seconds if train_seconds > 0 else 0.0,
            wall_seconds=time.perf_counter() - wall_start,
            final_train_loss=self._last_loss,
            history=[EvalRecord.from_dict(item) for item in run.history],
            best_checkpoint=self.best_dir if self.best_dir.exists() else None,
            last_checkpoint=self.last_dir,
        )

    def _plan(self) -> _Plan:
        from kgreason.training.sampler import LengthBucketSampler
        from kgreason.training.schedule import warmup_steps_for

        cfg = self.config
        if len(self.train_data) == 0:
            raise ConfigError("the training set is empty")
        sampler = LengthBucketSampler(
            lengths=self.train_data.lengths,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            bucketing=cfg.length_bucketing,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        steps_per_epoch = math.ceil(sampler.num_batches / cfg.grad_accumulation)
        total_steps = steps_per_epoch * cfg.epochs
        if cfg.max_steps > 0:
            total_steps = min(total_steps, cfg.max_steps)
        if total_steps < 1:
            raise ConfigError(
                f"nothing to train: trainer.epochs={cfg.epochs}, trainer.max_steps={cfg.max_steps}"
            )
        return _Plan(
            sampler=sampler,
            batches_per_epoch=sampler.num_batches,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            warmup_steps=warmup_steps_for(total_steps=total_steps, warmup_ratio=cfg.warmup_ratio),
        )

    def _build_optimization(self, plan: _Plan) -> list:
        """AdamW, the schedule and the gradient scaler; returns the trained parameters."""
        import torch

        from kgreason.training.schedule import linear_warmup_decay

        cfg = self.config
        groups = parameter_groups(
            self.model,
            learning_rate=cfg.learning_rate,
            head_learning_rate=cfg.head_learning_rate,
            weight_decay=cfg.weight_decay,
        )
        # the fused kernel is ~5x faster than the per-tensor loop on CPU too (15 vs 88 ms a step for MiniLM)
        fused = self.device.type in {"cpu", "cuda"} and all(
            p.is_floating_point() for g in groups for p in g["params"]
        )
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=fused or None)
        self.scheduler = linear_warmup_decay(
            self.optimizer, total_steps=plan.total_steps, warmup_steps=plan.warmup_steps
        )
        self.scaler = self.precision.grad_scaler()
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _train_epoch(
        self, plan: _Plan, *, ddp: Any, loader: Any, params: list, bar: Any, watch: _Stopwatch
    ) -> None:
        """Train from ``batches_done`` to the end of the epoch (or until stopped), then close the epoch."""
        import torch

        cfg = self.config
        run = self._run
        accum = cfg.grad_accumulation
        epoch = run.epoch
        plan.sampler.set_epoch(epoch, skip=run.batches_done)
        i = run.batches_done
        for cpu_batch in loader:
            start = (i // accum) * accum
            group = min(accum, plan.batches_per_epoch - start)  # the epoch's last group may be short
            update = i + 1 == start + group
            batch = cpu_batch.to(self.device, non_blocking=True)
            sync = ddp.no_sync() if (ddp is not self.model and not update) else contextlib.nullcontext()
            with sync:
                with self.precision.autocast():
                    output = ddp(batch)
                if output.loss is None:
                    raise ValueError("the model returned no loss for a labelled training batch")
                loss = output.loss.float()
                self.scaler.scale(loss / group).backward()
            self._window.add(
                loss.detach(),
                step=run.global_step + 1,
                index=cpu_batch.index,
                samples=len(cpu_batch),
                tokens=cpu_batch.num_tokens,
            )
            i += 1
            if not update:
                continue
            if self.precision.uses_scaler:
                self.scaler.unscale_(self.optimizer)
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            for callback in self.callbacks:
                callback.on_before_optimizer_step(self, step=run.global_step + 1)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self._peft_step_hook is not None:  # AdaLoRA reads the gradients: before zero_grad
                self._peft_step_hook(self.model, global_step=run.global_step)
            self.optimizer.zero_grad(set_to_none=True)
            run.global_step += 1
            run.batches_done = i
            self.global_step = run.global_step
            bar.update(1)
            with watch.paused():
                self._after_step(plan, bar=bar, watch=watch)
            if run.stopped_early or run.global_step >= plan.total_steps:
                return
        if run.batches_done >= plan.batches_per_epoch:
            run.epoch = epoch + 1
            run.batches_done = 0
            with watch.paused():
                if self.dev_data is not None and cfg.eval_every == 0:
                    self._evaluate_dev(plan)
                    if cfg.save_every == 0 or run.stopped_early:
                        self._save_last()
                elif self.dev_data is None and cfg.save_every == 0:
                    self._save_last()

    def _after_step(self, plan: _Plan, *, bar: Any, watch: _Stopwatch) -> None:
        """Logging, step-wise evaluation and checkpoints due after an optimizer step, then the callbacks."""
        cfg = self.config
        run = self._run
        step = run.global_step
        if cfg.log_every > 0 and step % cfg.log_every == 0:
            self._log(bar, watch)
        saved = False
        if self.dev_data is not None and cfg.eval_every > 0 and step % cfg.eval_every == 0:
            self._evaluate_dev(plan)
            if cfg.save_every == 0 or run.stopped_early:
                self._save_last()
                saved = True
        if cfg.save_every > 0 and step % cfg.save_every == 0 and not saved:
            self._save_last()
        for callback in self.callbacks:
            callback.on_step_end(self, step=step)

    def _finished(self, total_steps: int) -> bool:
        run = self._run
        return run.stopped_early or run.global_step >= total_steps or run.epoch >= self.config.epochs

    def _apply_peft(self, *, total_steps: int) -> None:
        """Wrap the encoder for parameter-efficient fine-tuning (once), before the optimizer is built."""
        peft = self.config.peft
        method = str(peft.method).lower()
        if self._peft_applied or method == "none":
            return
        try:
            from kgreason.models.peft import apply_peft, peft_after_step
        except ImportError as err:
            raise ConfigError(
                f"trainer.peft.method={peft.method!r} needs kgreason.models.peft ({err})"
            ) from err
        try:
            self.model = apply_peft(self.model, peft, total_steps=total_steps).to(self.device)
        except ValueError as err:
            raise ConfigError(f"trainer.peft: {err}") from err
        if method == "adalora":  # re-allocates ranks after every optimizer step
            self._peft_step_hook = peft_after_step
        self._peft_applied = True

    # --------------------------------------------------------------------------------- checks and logging
    def _check_finite(self) -> None:
        """Raise :class:`TrainingDivergedError` if any rank saw a non-finite loss since the last check."""
        import torch

        from kgreason.training.distributed import all_reduce_sum

        window = self._window
        first_bad: tuple[int, list[int]] | None = None
        flag = torch.zeros((), dtype=torch.float32, device=self.device)
        if window.pending:
            losses = torch.stack([loss for loss, _, _ in window.pending])  # (M,)
            finite = torch.isfinite(losses)  # (M,)
            flag = (~finite).any().float()
            if flag.item() > 0:
                bad = int((~finite).nonzero()[0, 0])
                _, step, index = window.pending[bad]
                first_bad = (step, index.tolist() if index is not None else [])
            else:
                total = float(losses.sum())
                window.log_sum += total
                window.eval_sum += total
                window.log_count += len(window.pending)
                window.eval_count += len(window.pending)
            window.pending.clear()
        if self.dist.enabled:
            flag = all_reduce_sum(flag.reshape(1).clone(), ctx=self.dist)[0]
        if first_bad is not None or flag.item() > 0:
            from kgreason.training.checkpoint import resolve_checkpoint

            step, indices = first_bad if first_bad is not None else (self._run.global_step, [])
            raise TrainingDivergedError(
                step=step, indices=indices, checkpoint=resolve_checkpoint(self.last_dir)
            )

    def _mean_over_ranks(self, total: float, count: int) -> float | None:
        import torch

        from kgreason.training.distributed import all_reduce_sum

        if self.dist.enabled:
            both = torch.tensor([total, float(count)], dtype=torch.float64, device=self.device)
            total, count = all_reduce_sum(both, ctx=self.dist).tolist()
        return total / count if count else None

    def _lrs(self) -> dict[str, float]:
        return {g.get("name", str(i)): float(g["lr"]) for i, g in enumerate(self.optimizer.param_groups)}

    def _encoder_lr(self) -> float:
        lrs = self._lrs()
        return lrs.get("encoder", lrs.get("head", next(iter(lrs.values()))))

    def _log(self, bar: Any, watch: _Stopwatch) -> None:
        import torch

        from kgreason.training.distributed import all_reduce_sum

        self._check_finite()
        window = self._window
        stats = torch.tensor(
            [window.log_sum, window.log_count, window.samples, window.tokens],
            dtype=torch.float64,
            device=self.device,
        )
        loss_sum, count, samples, tokens = all_reduce_sum(stats, ctx=self.dist).tolist()
        now = watch.total()
        seconds = now - self._last_log_time
        self._last_log_time = now
        window.log_sum, window.log_count, window.samples, window.tokens = 0.0, 0, 0, 0
        if not count:
            return
        self._last_loss = loss_sum / count
        step = self._run.global_step
        lrs = self._lrs()
        bar.set_postfix(loss=f"{self._last_loss:.4f}", lr=f"{self._encoder_lr():.2e}", refresh=False)
        if self._writer is not None:
            self._writer.add_scalar("train/loss", self._last_loss, step)
            for name, value in lrs.items():
                if not name.endswith("no_decay"):
                    self._writer.add_scalar(f"train/lr_{name}", value, step)
            if seconds > 0:
                self._writer.add_scalar("train/samples_per_s", samples / seconds, step)
                self._writer.add_scalar("train/tokens_per_s", tokens / seconds, step)

    # ------------------------------------------------------------------------------------------ evaluation
    def _evaluate_dev(self, plan: _Plan) -> None:
        from kgreason.training.distributed import barrier

        self._check_finite()
        run = self._run
        cfg = self.config
        result = self.evaluate(self.dev_data, desc="dev")
        values = _plain_metrics(result.metrics.values)
        if self.metric not in values:
            raise ConfigError(
                f"trainer.metric {self.metric!r} is not among the task's metrics {sorted(values)}"
            )
        value = values[self.metric]
        improved = run.best_metric is None or value > run.best_metric
        if improved:
            run.best_metric, run.best_step, run.best_metrics = value, run.global_step, values
            run.bad_evals = 0
            if self.dist.is_main:
                self._save_best()
            barrier(ctx=self.dist)
        else:
            run.bad_evals += 1
            if cfg.early_stopping_patience > 0 and run.bad_evals >= cfg.early_stopping_patience:
                run.stopped_early = True
        train_loss = self._mean_over_ranks(self._window.eval_sum, self._window.eval_count)
        self._window.eval_sum, self._window.eval_count = 0.0, 0
        record = EvalRecord(
            step=run.global_step,
            epoch=run.global_step / plan.steps_per_epoch,
            metrics=values,
            loss=result.loss,
            train_loss=train_loss,
            learning_rate=self._encoder_lr(),
            improved=improved,
        )
        run.history.append(record.to_dict())
        run.last_eval_step = run.global_step
        logger.info(
            "step %d: dev %s=%.4f (best %.4f at step %d)%s",
            run.global_step,
            self.metric,
            value,
            run.best_metric,
            run.best_step,
            "; stopping early" if run.stopped_early else "",
        )
        if self._writer is not None:
            for name, metric in values.items():
                self._writer.add_scalar(f"dev/{name}", metric, run.global_step)
            if result.loss is not None:
                self._writer.add_scalar("dev/loss", result.loss, run.global_step)
            self._writer.add_scalar("dev/samples_per_s", result.samples_per_s, run.global_step)
        for callback in self.callbacks:
            callback.on_evaluate(self, record=record)

    def evaluate(self, dataset: EncodedDataset, *, desc: str = "eval") -> EvalResult:
        """Score ``dataset`` with the task's metrics (sharded over ranks under ``torchrun``)."""
        start = time.perf_counter()
        predictions, loss = self._infer(dataset, desc=desc)
        metrics = self.task.metrics(predictions, dataset.examples)
        seconds = time.perf_counter() - start
        return EvalResult(
            metrics=metrics,
            predictions=predictions,
            loss=loss,
            seconds=seconds,
            samples_per_s=len(dataset) / seconds if seconds > 0 else 0.0,
            num_examples=len(dataset),
        )

    def predict(self, dataset: EncodedDataset) -> list:
        """The task's decoded predictions for ``dataset``, in dataset order (labels are not needed)."""
        predictions, _ = self._infer(dataset, desc="predict")
        return predictions

    def _infer(self, dataset: EncodedDataset, *, desc: str) -> tuple[list, float | None]:
        import torch
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        from kgreason.training.distributed import all_gather_objects
        from kgreason.training.sampler import sorted_batches

        if len(dataset) == 0:
            return [], None
        model = self.model.to(self.device)
        batches = sorted_batches(
            dataset.lengths,
            batch_size=self.config.eval_batch_size,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        loader = DataLoader(
            dataset, batch_sampler=batches, collate_fn=self.collator, num_workers=self.config.num_workers
        )
        found: dict[int, Any] = {}
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        loss_count = 0
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                bar = tqdm(
                    zip(batches, loader, strict=True),
                    total=len(batches),
                    desc=desc,
                    leave=False,
                    disable=not (self.config.progress and self.dist.is_main),
                    dynamic_ncols=True,
                )
                for positions, cpu_batch in bar:
                    batch = cpu_batch.to(self.device, non_blocking=True)
                    with self.precision.autocast():
                        output = model(batch)
                    if output.loss is not None:
                        loss_sum += output.loss.detach().double() * len(positions)
                        loss_count += len(positions)
                    decoded = self.task.decode(output.logits.float(), batch)
                    if len(decoded) != len(positions):
                        raise ValueError(
                            f"{type(self.task).__name__}.decode returned {len(decoded)} predictions "
                            f"for a batch of {len(positions)}"
                        )
                    found.update(zip(positions, decoded, strict=True))
        finally:
            model.train(was_training)
        parts = all_gather_objects((found, float(loss_sum), loss_count), ctx=self.dist)
        merged: dict[int, Any] = {}
        total_loss, total_count = 0.0, 0
        for part, part_loss, part_count in parts:
            merged.update(part)
            total_loss += part_loss
            total_count += part_count
        predictions = [merged[i] for i in range(len(dataset))]
        return predictions, (total_loss / total_count if total_count else None)

    # ----------------------------------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        from kgreason.training.distributed import all_gather_objects
        from kgreason.training.seed import capture_rng_state

        rng = all_gather_objects(capture_rng_state(), ctx=self.dist)
        return {
            "format": 1,
            **dataclasses.asdict(self._run),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "window": {
                "log_sum": self._window.log_sum,
                "log_count": self._window.log_count,
                "eval_sum": self._window.eval_sum,
                "eval_count": self._window.eval_count,
                "last_loss": self._last_loss,
            },
            "world_size": self.dist.world_size,
            "train_size": len(self.train_data),
            "metric": self.metric,
            "config": _plain_config(self.config),
        }

    def _save_last(self) -> None:
        """Write the resumable checkpoint (rank 0), after checking that the loss stayed finite."""
        from kgreason.training.checkpoint import save_training_checkpoint
        from kgreason.training.distributed import barrier

        self._check_finite()
        state = self._state()  # a collective: every rank takes part
        if self.dist.is_main:
            save_training_checkpoint(self.last_dir, model=self.model, state=state)
            for callback in self.callbacks:
                callback.on_save(self, path=self.last_dir, kind="last")
        barrier(ctx=self.dist)
        self._last_saved_step = self._run.global_step

    def _save_best(self) -> None:
        from kgreason.training.checkpoint import save_model_dir

        save_model_dir(self.best_dir, model=self.model)
        for callback in self.callbacks:
            callback.on_save(self, path=self.best_dir, kind="best")

    def _restore(self, directory: Path, *, total_steps: int, warmup: int) -> None:
        from kgreason.training.checkpoint import CheckpointError, load_training_state, load_weights
        from kgreason.training.schedule import refit_resumed_schedule
        from kgreason.training.seed import restore_rng_state

        state = load_training_state(directory)
        config = state.get("config", {})
        saved = {key: config.get(key) for key in _ORDER_FIELDS}
        saved.update(world_size=state.get("world_size"), train_size=state.get("train_size"))
        current = {key: getattr(self.config, key) for key in _ORDER_FIELDS}
        current.update(world_size=self.dist.world_size, train_size=len(self.train_data))
        differ = [key for key in saved if saved[key] != current[key]]
        if differ:
            details = ", ".join(f"{key} {saved[key]!r} -> {current[key]!r}" for key in differ)
            raise CheckpointError(
                f"{directory}: cannot resume, the data order changed ({details}); "
                "train with resume=False or into another output folder"
            )
        load_weights(self.model, directory)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        previous = self.scheduler.lr_lambdas[0].total_steps
        if refit_resumed_schedule(
            self.scheduler, self.optimizer, total_steps=total_steps, warmup_steps=warmup
        ):
            logger.info("resumed schedule: %d -> %d total steps", previous, total_steps)
        rng = state["rng"]
        restore_rng_state(rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0])
        window = state.get("window") or {}
        self._window.log_sum = float(window.get("log_sum", 0.0))
        self._window.log_count = int(window.get("log_count", 0))
        self._window.eval_sum = float(window.get("eval_sum", 0.0))
        self._window.eval_count = int(window.get("eval_count", 0))
        self._last_loss = window.get("last_loss")
        fields = {f.name for f in dataclasses.fields(_RunState)}
        self._run = _RunState(**{key: state[key] for key in fields if key in state})
        logger.info("resumed from %s at step %d", directory, self._run.global_step)

    def _restore_best(self) -> None:
        """Load the best weights back when ``best/model.safetensors`` fits the model."""
        from kgreason.training.checkpoint import WEIGHTS_NAME, CheckpointError, load_weights
        from kgreason.training.distributed import barrier

        barrier(ctx=self.dist)
        if self._run.best_step is None or self._run.best_step == self._run.global_step:
            return
        if not (self.best_dir / WEIGHTS_NAME).is_file():
            logger.info("%s holds no model.safetensors: the model keeps its last weights", self.best_dir)
            return
        try:
            load_weights(self.model, self.best_dir)
        except CheckpointError as err:
            logger.warning("the model keeps its last weights: %s", err)


def _plain_metrics(values: dict[str, Any]) -> dict[str, float]:
    """Metric values as python floats (checkpoint state must be plain types); non-numbers left out."""
    plain = {}
    for name, value in values.items():
        try:
            plain[str(name)] = float(value)
        except (TypeError, ValueError):
            continue
    return plain


def _plain_config(config: TrainerConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _validate(config: TrainerConfig) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ConfigError(f"trainer.{what}")

    need(config.epochs >= 0, f"epochs must be >= 0, got {config.epochs}")
    need(config.max_steps >= 0, f"max_steps must be >= 0, got {config.max_steps}")
    need(config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}")
    need(config.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {config.eval_batch_size}")
    need(config.grad_accumulation >= 1, f"grad_accumulation must be >= 1, got {config.grad_accumulation}")
    need(config.learning_rate > 0, f"learning_rate must be > 0, got {config.learning_rate}")
    need(
        config.head_learning_rate is None or config.head_learning_rate > 0,
        f"head_learning_rate must be > 0 or null, got {config.head_learning_rate}",
    )
    need(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}")
    need(0 <= config.warmup_ratio <= 1, f"warmup_ratio must be in [0, 1], got {config.warmup_ratio}")
    need(config.max_grad_norm >= 0, f"max_grad_norm must be >= 0 (0: off), got {config.max_grad_norm}")
    need(config.eval_every >= 0, f"eval_every must be >= 0, got {config.eval_every}")
    need(config.save_every >= 0, f"save_every must be >= 0, got {config.save_every}")
    need(config.log_every >= 0, f"log_every must be >= 0, got {config.log_every}")
    need(
        config.early_stopping_patience >= 0,
        f"early_stopping_patience must be >= 0, got {config.early_stopping_patience}",
    )
    need(config.num_workers >= 0, f"num_workers must be >= 0, got {config.num_workers}")
