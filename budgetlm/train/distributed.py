"""Data-parallel training with `torch.distributed` under `torchrun`: process group, DDP wrapping, collectives.

`torchrun --nproc_per_node N -m budgetlm pretrain ...` starts N copies of the CLI with RANK / WORLD_SIZE /
LOCAL_RANK / MASTER_ADDR / MASTER_PORT set. `session()` joins them into one process group (gloo on CPU, nccl
when CUDA is there); without those variables everything here is a no-op and training runs as one process.

Division of work (docs/guide/scaling.md):
- every rank runs the same step; the loop shards the data (each rank takes its slice of the shared global batch,
  see data/batches.py) and DistributedDataParallel averages the gradients;
- only rank 0 writes: checkpoints, metrics, reports, model dirs, the progress bar (`is_main()`);
- decisions that end or change the run (wall-clock budget, Ctrl-C, skipped steps) are all-reduced, so every
  rank takes the same decision on the same step.
"""

from __future__ import annotations

import datetime
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from budgetlm.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """This process's place in the process group (rank 0 of 1 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def is_main() -> bool:
    return world().is_main


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def session(timeout_minutes: float = 30.0):
    """Join the torchrun process group for the duration of a stage (no-op for a single process)."""
    if not launched_by_torchrun() or dist.is_initialized():
        yield world()
        return
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise UserError(f"WORLD_SIZE is set but {', '.join(missing)} is not; start multi-process runs with torchrun")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    try:
        yield world()
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    if world().distributed:
        dist.barrier()


@contextmanager
def main_first():
    """Rank 0 runs the block first (e.g. builds a cache or writes a file); the others run it after it is done."""
    w = world()
    if w.distributed and not w.is_main:
        dist.barrier()
    yield
    if w.distributed and w.is_main:
        dist.barrier()


def all_reduce(values: list[float], op: str = "sum") -> list[float]:
    """Element-wise sum or max of a few numbers over all ranks (identity when not distributed)."""
    if not world().distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
    return t.tolist()


def broadcast(obj):
    """Rank 0's `obj` on every rank (any picklable value; used for evaluation results)."""
    if not world().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class StepModule(torch.nn.Module):
    """Runs the stage's step_fn as the forward pass, so DistributedDataParallel sees every step.

    DDP synchronises gradients for what runs inside its forward; step functions call the model's parts
    (`model.encoder`, `model.heads[...]`) rather than `model(...)`, so the whole step becomes the forward.
    """

    def __init__(self, model: torch.nn.Module, step_fn):
        super().__init__()
        self.model = model
        self.step_fn = step_fn

    def forward(self, batch: dict, step: int, micro: int):
        return self.step_fn(self.model, batch, step, micro)


def wrap_step(model: torch.nn.Module, step_fn):
    """(run_step(batch, step, micro, sync) -> (loss, n_tokens, extra)) with gradients averaged over ranks.

    `sync=False` skips the gradient all-reduce (accumulation micro-batches before the last one).
    """
    if not world().distributed:
        return lambda batch, step, micro, sync: step_fn(model, batch, step, micro)
    device_ids = [torch.cuda.current_device()] if torch.cuda.is_available() else None
    ddp = torch.nn.parallel.DistributedDataParallel(StepModule(model, step_fn), device_ids=device_ids)

    def run_step(batch, step, micro, sync):
        if sync:
            return ddp(batch, step, micro)
        with ddp.no_sync():
            return ddp(batch, step, micro)

    return run_step
