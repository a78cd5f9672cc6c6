"""Data parallelism under ``torchrun``: process-group set-up from the environment, DDP wrapping, collectives.

``torchrun --nproc_per_node N script.py`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`init_distributed`
joins the process group (``nccl`` on CUDA, ``gloo`` on CPU). Rank 0 alone writes checkpoints, logs and progress
bars. Evaluation is sharded: every rank scores a disjoint share of the batches and the predictions are gathered
on every rank, so all ranks compute the same metrics and take the same early-stopping decision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 when not distributed).
        local_rank: rank on this machine (selects the GPU).
        world_size: number of processes.
        backend: ``gloo`` / ``nccl``, or ``None`` when not distributed.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files, logs and progress bars."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(*, device_type: str = "cpu") -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment (no-op when ``WORLD_SIZE`` <= 1).

    Reuses a process group that the caller already initialised.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistributedContext(
            rank=dist.get_rank(),
            local_rank=_env_int("LOCAL_RANK", dist.get_rank()),
            world_size=dist.get_world_size(),
            backend=str(dist.get_backend()),
        )
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistributedContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        import torch

        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size, backend=backend)


def shutdown_distributed() -> None:
    """Leave the process group (call once at the end of a ``torchrun`` script)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, *, ctx: DistributedContext, device: torch.device) -> torch.nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` when distributed, else as it is.

    A model whose forward may leave trainable parameters unused (say, a graph branch on text-only batches) sets
    ``ddp_find_unused_parameters = True``.
    """
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(getattr(model, "ddp_find_unused_parameters", False)),
    )


def all_reduce_sum(tensor: torch.Tensor, *, ctx: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over ranks, in place (no-op when not distributed)."""
    if ctx.enabled:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any, *, ctx: DistributedContext) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` when not distributed."""
    if not ctx.enabled:
        return [obj]
    import torch.distributed as dist

    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, *, ctx: DistributedContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(*, ctx: DistributedContext) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()
