"""The one training loop, for pre-training and fine-tuning alike.

Stages differ only in what they pass in: a batch source (resumable iterator of dicts), a `step_fn`
(model, batch, step, micro) -> (loss, n_tokens, extra) that holds the objective or task loss, and an
`evaluate` callback. The loop owns everything else: AdamW, the budget-driven LR schedule, gradient
accumulation and clipping, logging, progress, bad-step guards, checkpoints, resume, Ctrl-C, and
data-parallel training under torchrun (train/distributed.py).

Budgets count *training* time only (batches, forward, backward and the optimizer update); evaluation and
checkpointing pause the clock (as Cramming does).

Under torchrun every rank runs this loop on its shard of each global batch (batch_size x world x grad_accum
sequences per optimizer step). `micro` passed to step_fn is the micro-batch's index among the step's
world x grad_accum micro-batches, so randomness seeded from (step, micro) differs between ranks. Losses,
token counts, time and stop requests are all-reduced every step, so all ranks stop on the same step; only
rank 0 writes.
"""

from __future__ import annotations

import math
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from budgetlm.errors import UserError
from budgetlm.train import distributed, precision
from budgetlm.train.checkpoint import list_checkpoints, load_best, load_latest, save_best, save_checkpoint
from budgetlm.train.compile import compile_blocks
from budgetlm.train.config import Budget, TrainConfig
from budgetlm.train.logs import MetricsLog
from budgetlm.train.memory import tune_allocator
from budgetlm.train.optim import build_optimizer
from budgetlm.train.schedule import lr_at


class TrainingDiverged(UserError):
    """Loss or gradients stayed NaN/inf for too many steps in a row; the last good checkpoint is kept."""


class Interrupted(Exception):
    """Ctrl-C: a checkpoint was saved; the run can be resumed."""


@dataclass
class LoopState:
    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0  # training seconds on train.clock (evaluation and checkpointing excluded)
    # clock time a step spends after its time is all-reduced (optimizer update, logging), counted with the next step
    pending: float = 0.0
    last_checkpoint: float = 0.0  # budget units at the last checkpoint
    data: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # evaluation results
    skipped_steps: int = 0  # steps whose update was dropped (non-finite loss/gradients, loss spikes)
    bad_in_a_row: int = 0
    loss_ema: float = 0.0  # running mean of accepted step losses (loss-spike guard)
    good_steps: int = 0
    global_batch: int = 0  # sequences per optimizer step over all ranks
    best: dict = field(default_factory=dict)  # train.keep_best: {"step", "value"} of the best evaluation so far

    def last_eval(self) -> dict:
        """The final evaluation's figures, without the `eval_` prefix they carry in metrics.jsonl."""
        return {k.removeprefix("eval_"): v for k, v in (self.history[-1] if self.history else {}).items()}

    def consumed(self, budget: Budget) -> float:
        return {"seconds": self.elapsed, "steps": self.step, "tokens": self.tokens}[budget.kind]


# train.clock: what `elapsed` (and a time budget) counts; CPU time is immune to other jobs on a shared machine
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}

StepFn = Callable[[torch.nn.Module, dict, int, int], tuple[torch.Tensor, int, dict]]

LOSS_EMA_BETA = 0.9
SPIKE_GUARD_AFTER = 10  # accepted steps before the loss-spike guard has a baseline to compare against


def train(
    model: torch.nn.Module,
    batches,
    step_fn: StepFn,
    cfg: TrainConfig,
    run_dir: Path,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    resume: bool = False,
    desc: str = "training",
) -> LoopState:
    run = _setup(model, batches, step_fn, cfg, Path(run_dir), evaluate, resume, desc)
    run.model.train()
    with _stop_on_signals() as stop:
        try:
            while run.state.consumed(run.budget) < run.budget.amount:
                stops = _step(run, stop)
                _between_steps(run)
                if stops:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            _interrupted(run)
        except TrainingDiverged:
            run.close()
            raise
    return _finish(run)


@dataclass
class _Window:
    """Accepted steps since the last log line: their mean loss and throughput go into the next record."""
    tokens: int = 0
    time: float = 0.0
    loss: float = 0.0
    n: int = 0


@dataclass
class _Run:
    """Everything one `train` call holds between its pieces."""
    model: torch.nn.Module
    batches: object
    run_step: Callable
    cfg: TrainConfig
    run_dir: Path
    evaluate: Callable[[torch.nn.Module], dict] | None
    world: object
    budget: Budget
    ckpt_every: Budget
    clock: Callable[[], float]
    opt: torch.optim.Optimizer
    state: LoopState
    log: MetricsLog | None
    bar: tqdm
    window: _Window = field(default_factory=_Window)
    step_start: tuple | None = None  # (data position, RNG state) while a step is in flight

    def checkpoint(self) -> Path | None:
        self.state.data = self.batches.state_dict()
        self.state.last_checkpoint = self.state.consumed(self.ckpt_every)
        path = None
        if self.world.is_main:
            path = _save(self.run_dir, self.state, self.model, self.opt, self.cfg.keep_checkpoints)
        distributed.barrier()  # the others wait, so the time spent saving is not counted as training
        return path

    def close(self) -> None:
        self.bar.close()
        if self.log:
            self.log.close()


def _setup(model, batches, step_fn: StepFn, cfg: TrainConfig, run_dir: Path, evaluate, resume: bool, desc: str) -> _Run:
    """Threads, allocator, sharding, disk check, optimizer, seed or resumed state, compilation, log, progress bar."""
    world = distributed.world()
    budget, ckpt_every = cfg.budget, cfg.checkpoint_every  # Budgets: parsed when the config was built
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.tune_allocator:
        tune_allocator()
    if world.distributed:
        if not hasattr(batches, "shard"):
            raise UserError(f"{type(batches).__name__} cannot be sharded over ranks; run this stage in one process")
        batches.shard(world.rank, world.size)
    if world.is_main:
        check_free_space(run_dir, model, cfg.keep_checkpoints)
    opt = build_optimizer(model, cfg)
    clock = CLOCKS[cfg.clock]
    state = LoopState(global_batch=cfg.batch_size * cfg.grad_accum * world.size)
    resume = starts_from_checkpoint(run_dir, resume)
    if resume:
        state = _resume(run_dir, model, opt, batches, cfg, world, state.global_batch)
    else:
        torch.manual_seed(_rank_seed(cfg.seed, world.rank, 0))
    if cfg.compile:
        compile_blocks(model, cpu_clock=cfg.clock == "cpu")
    run_step = distributed.wrap_step(model, step_fn)
    log = MetricsLog(run_dir, resume_step=state.step if resume else 0) if world.is_main else None
    total = budget.amount
    bar = tqdm(total=total, desc=desc, unit="" if budget.kind == "steps" else budget.kind[0], mininterval=2.0,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}{postfix}]", file=sys.stderr,
               disable=not world.is_main)
    bar.update(min(state.consumed(budget), total))
    return _Run(model, batches, run_step, cfg, run_dir, evaluate, world, budget, ckpt_every, clock, opt, state, log, bar)


def _resume(run_dir: Path, model, opt, batches, cfg: TrainConfig, world, global_batch: int) -> LoopState:
    """The loop state, weights, optimizer, data position and RNG of the run's last intact checkpoint."""
    restored = load_latest(run_dir, model, opt)
    if restored is None:
        raise UserError("--resume: no intact checkpoint to resume from", path=str(run_dir))
    restored.pop("checkpoint", None)
    known = {k: v for k, v in restored.items() if k in LoopState.__dataclass_fields__}
    saved_batch = known.pop("global_batch", 0)
    state = LoopState(**{**known, "global_batch": global_batch})
    if saved_batch and saved_batch != state.global_batch:
        print(f"warning: the global batch changed from {saved_batch} to {state.global_batch} sequences "
              "(batch_size x grad_accum x ranks); the run continues but will not match an uninterrupted one",
              file=sys.stderr)
    batches.load_state_dict(state.data)
    if world.rank:  # the checkpoint holds rank 0's RNG; other ranks draw their own dropout
        torch.manual_seed(_rank_seed(cfg.seed, world.rank, state.step))
    if world.is_main:
        print(f"resumed from step {state.step} ({state.tokens:,} tokens, {state.elapsed:.0f}s trained)", file=sys.stderr)
    return state


def _step(run: _Run, stop: threading.Event) -> float:
    """One optimizer step: forward/backward over the micro-batches, one all-reduce, the update (or a skipped one),
    then the bookkeeping and the log line. Returns the ranks' stop requests (> 0: stop after this step)."""
    state, cfg, opt, clock = run.state, run.cfg, run.opt, run.clock
    t0 = clock()
    run.step_start = (run.batches.state_dict(), torch.get_rng_state())
    progress = state.consumed(run.budget) / run.budget.amount
    lr = lr_at(progress, cfg)
    for g in opt.param_groups:
        g["lr"] = lr
    step_loss, step_tokens, finite_loss, extra = _forward_backward(run)
    # gradients are already averaged over ranks, so the norm (and what it decides) agrees everywhere
    norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm or math.inf)
    t_reduce = clock()
    dt = t_reduce - t0 + state.pending
    # one all-reduce per step: every rank then knows the global loss, tokens, time and stop request
    loss_sum, step_tokens, bad_loss, stops, dt_sum = distributed.all_reduce(
        [step_loss, step_tokens, float(not finite_loss), float(stop.is_set()), dt])
    step_loss, step_tokens, dt = loss_sum / run.world.size, int(step_tokens), dt_sum / run.world.size
    problem = _bad_step(bad_loss > 0, bool(torch.isfinite(norm)), step_loss, state, cfg)
    if problem:
        opt.zero_grad(set_to_none=True)
        _note_bad_step(problem, state, cfg, run.run_dir, run.bar)
    else:
        opt.step()
        opt.zero_grad(set_to_none=True)
        state.bad_in_a_row = 0
        state.good_steps += 1
        state.loss_ema = step_loss if state.good_steps == 1 else (
            LOSS_EMA_BETA * state.loss_ema + (1 - LOSS_EMA_BETA) * step_loss)
    before = state.consumed(run.budget)
    state.step += 1
    run.step_start = None
    state.tokens += step_tokens
    state.elapsed += dt
    run.bar.update(min(state.consumed(run.budget), run.budget.amount) - min(before, run.budget.amount))
    if not problem:
        run.window.tokens += step_tokens
        run.window.time += dt
        run.window.loss += step_loss
        run.window.n += 1
    if state.step % cfg.log_every == 0 and run.window.n:
        _log_step(run, lr, extra)
    state.pending = clock() - t_reduce  # ranks differ here; it reaches `elapsed` through the next all-reduce
    return stops


def _forward_backward(run: _Run) -> tuple[float, int, bool, dict]:
    """The step's grad_accum micro-batches: (mean loss, tokens, every loss finite, the last micro-batch's extras)."""
    cfg = run.cfg
    step_loss, step_tokens, finite_loss, extra = 0.0, 0, True, {}
    for micro in range(cfg.grad_accum):
        batch = next(run.batches)
        with precision.autocast(cfg.precision):
            loss, n_tokens, extra = run.run_step(batch, run.state.step, run.world.rank * cfg.grad_accum + micro,
                                                 sync=micro == cfg.grad_accum - 1)
        finite_loss &= bool(torch.isfinite(loss))
        # backward even through a bad loss: under DDP every rank must join the gradient all-reduce
        (loss / cfg.grad_accum).backward()
        step_loss += float(loss.detach()) / cfg.grad_accum
        step_tokens += n_tokens
    return step_loss, step_tokens, finite_loss, extra


def _log_step(run: _Run, lr: float, extra: dict) -> None:
    """One metrics.jsonl record (and the progress bar's postfix) for the steps since the last one."""
    state, window = run.state, run.window
    record = {
        "step": state.step, "tokens": state.tokens, "loss": round(window.loss / window.n, 5),
        "lr": lr, "tokens_per_s": round(window.tokens / max(window.time, 1e-9), 1),
        "elapsed_s": round(state.elapsed, 2),
    }
    if state.skipped_steps:
        record["skipped_steps"] = state.skipped_steps
    record.update({k: v for k, v in extra.items() if isinstance(v, (int, float))})
    if run.log:
        run.log.log(record)
    run.bar.set_postfix_str(f"loss {record['loss']:.3f} {record['tokens_per_s']:.0f} tok/s", refresh=False)
    run.window = _Window()


def _between_steps(run: _Run) -> None:
    """train.eval_every evaluations (and train.keep_best), then a checkpoint when one is due; neither after the
    last step, which _finish handles."""
    state, cfg = run.state, run.cfg
    finished = state.consumed(run.budget) >= run.budget.amount
    if run.evaluate is not None and cfg.eval_every and state.step % cfg.eval_every == 0 and not finished:
        _run_eval(run.model, run.evaluate, state, run.log)
        if cfg.keep_best:
            _track_best(run.model, state, cfg.keep_best, run.run_dir, run.checkpoint)
    due = state.consumed(run.ckpt_every) - state.last_checkpoint >= run.ckpt_every.amount
    if due and not finished and not state.bad_in_a_row:  # never checkpoint in the middle of trouble
        run.checkpoint()


def _interrupted(run: _Run) -> None:
    """Ctrl-C / SIGTERM: save a checkpoint to resume from (a step in flight is rewound first) and raise Interrupted."""
    run.bar.close()
    if run.step_start is not None:  # interrupted inside a step: rewind it, so resume replays it exactly
        run.batches.load_state_dict(run.step_start[0])
        torch.set_rng_state(run.step_start[1])
        run.opt.zero_grad(set_to_none=True)
    path = _save(run.run_dir, run.state, run.model, run.opt, run.cfg.keep_checkpoints, run.batches) \
        if run.world.is_main else None
    if run.log:
        run.log.close()
    raise Interrupted(f"interrupted at step {run.state.step}; checkpoint saved to {path}; continue with --resume") from None


def _finish(run: _Run) -> LoopState:
    """The final evaluation (with train.keep_best: back to the best weights, re-evaluated) and checkpoint."""
    state, cfg = run.state, run.cfg
    run.bar.close()
    if run.evaluate is not None:
        _run_eval(run.model, run.evaluate, state, run.log)
        if cfg.keep_best and not _track_best(run.model, state, cfg.keep_best, run.run_dir, run.checkpoint) and state.best:
            if _restore_best(run.model, state, cfg.keep_best, run.run_dir):  # the figures (and last_eval) of the kept weights
                _run_eval(run.model, run.evaluate, state, run.log, {"kept_step": state.best["step"]})
    run.checkpoint()
    if run.log:
        run.log.close()
    return state


def _rank_seed(seed: int, rank: int, step: int) -> int:
    """Rank 0 of a fresh run seeds with `seed` itself (the single-process behaviour); other ranks differ."""
    return seed if rank == 0 and step == 0 else int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def _save(run_dir, state: LoopState, model, opt, keep: int, batches=None) -> Path:
    if batches is not None:
        state.data = batches.state_dict()
    try:
        return save_checkpoint(run_dir, state.step, model, opt, dict(state.__dict__), keep)
    except OSError as e:
        ckpts = list_checkpoints(run_dir)
        kept = f"the last good checkpoint {ckpts[-1]} is intact" if ckpts else "no checkpoint was written yet"
        raise UserError(f"cannot write a checkpoint at step {state.step} ({e.strerror or e}); {kept}",
                        path=str(run_dir)) from None


def _bad_step(bad_loss: bool, finite_norm: bool, loss: float, state: LoopState, cfg: TrainConfig) -> str | None:
    """Why this step's update must be dropped, or None."""
    if bad_loss:
        return "loss became NaN/inf"
    if not finite_norm:
        return "gradient norm became NaN/inf"
    if cfg.loss_spike_factor and state.good_steps >= SPIKE_GUARD_AFTER and loss > cfg.loss_spike_factor * state.loss_ema:
        return f"loss spiked to {loss:.4g} (over {cfg.loss_spike_factor:g} x the running mean {state.loss_ema:.4g})"
    return None


def _note_bad_step(problem: str, state: LoopState, cfg: TrainConfig, run_dir: Path, bar) -> None:
    state.skipped_steps += 1
    state.bad_in_a_row += 1
    if state.bad_in_a_row >= cfg.max_bad_steps:
        ckpts = list_checkpoints(run_dir)
        kept = f"last good checkpoint: {ckpts[-1]}" if ckpts else "no checkpoint was written yet"
        first = state.step - state.bad_in_a_row + 1
        raise TrainingDiverged(
            f"{problem} at step {state.step}; {state.bad_in_a_row} bad step(s) in a row since step {first} "
            f"(train.max_bad_steps={cfg.max_bad_steps}); stopped ({kept}). Try a lower train.lr or train.max_grad_norm")
    if distributed.is_main():
        tqdm.write(f"warning: {problem} at step {state.step}; update skipped "
                   f"({state.bad_in_a_row} in a row, {state.skipped_steps} in total)", file=sys.stderr)


@contextmanager
def _stop_on_signals():
    """First Ctrl-C (or SIGTERM, as schedulers send before preempting) asks the loop to stop at the next step
    boundary, with a checkpoint; a second Ctrl-C interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        if distributed.is_main():
            tqdm.write("stopping after this step (Ctrl-C again to stop now)", file=sys.stderr)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _run_eval(model, evaluate, state: LoopState, log: MetricsLog | None, extra: dict | None = None) -> None:
    """Rank 0 evaluates; every rank gets its result, so all hold the same history."""
    result = None
    if distributed.is_main():
        model.eval()
        with torch.no_grad():
            result = evaluate(model)
        model.train()
    result = distributed.broadcast(result)
    record = {"step": state.step, "tokens": state.tokens, "elapsed_s": round(state.elapsed, 2)}
    record.update({f"eval_{k}": v for k, v in {**result, **(extra or {})}.items()})
    state.history.append(record)
    if log:
        log.log(record)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in result.items() if isinstance(v, (int, float)))
        tqdm.write(f"step {state.step}: {shown}", file=sys.stderr)


def _track_best(model, state: LoopState, key: str, run_dir: Path, checkpoint) -> bool:
    """train.keep_best: after an evaluation, keep the weights if they score best so far; True if they did."""
    result = state.last_eval()
    if not isinstance(result.get(key), (int, float)):
        checkpoint()  # no work is lost: fix the setting and --resume
        figures = ", ".join(k for k, v in result.items() if isinstance(v, (int, float)))
        raise UserError(f"train.keep_best={key}: the evaluation reports no such figure (it reports {figures}); "
                        "a checkpoint was saved, continue with --resume and another train.keep_best")
    value = float(result[key])
    if math.isnan(value) or (state.best and not value > state.best["value"]):
        return False
    state.best = {"step": state.step, "value": value}
    if distributed.is_main():
        save_best(run_dir, model, state.step)
    return True


def _restore_best(model, state: LoopState, key: str, run_dir: Path) -> bool:
    """Load the best evaluation's weights back into the model; False (with a warning) if they are gone."""
    restored = load_best(run_dir, model, state.best["step"])
    if distributed.is_main():
        last = state.last_eval()[key]
        tqdm.write(f"train.keep_best: keeping the weights of step {state.best['step']} ({key} {state.best['value']:.4g}) "
                   f"over the last step's ({last:.4g})" if restored else
                   f"warning: train.keep_best: the weights of step {state.best['step']} are missing or damaged; "
                   "keeping the last step's", file=sys.stderr)
    return restored


def check_free_space(run_dir: Path, model: torch.nn.Module, keep: int) -> None:
    """Refuse to start when the disk cannot hold the checkpoints the run will write.

    A checkpoint holds the weights and AdamW's two moments (3x the parameter bytes); `keep` of them stay and one
    more is written before the oldest is pruned; the final model directory adds the weights once more.
    """
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    need = param_bytes * (3 * (keep + 1) + 1)
    probe = Path(run_dir)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise UserError(f"only {free / 1e6:,.1f} MB free, but {keep} checkpoint(s) of this model and its final copy "
                        f"need about {need / 1e6:,.1f} MB; free some space or lower train.keep_checkpoints",
                        path=str(run_dir))


def existing_run_problem(run_dir: Path, resume: bool) -> str | None:
    """Refuse to overwrite a run: a run dir with checkpoints needs --resume (or another --out), and a finished
    run (results.json) with no checkpoint left is never started again, even with --resume."""
    finished = (Path(run_dir) / "results.json").exists()
    if list_checkpoints(run_dir):
        return None if resume else f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
    if finished:
        return (f"{run_dir} holds a finished run (results.json) and no checkpoint to resume from; choose another --out"
                if resume else f"{run_dir} already holds a run; choose another --out")
    return None


def starts_from_checkpoint(run_dir: Path, resume: bool) -> bool:
    """--resume continues from a checkpoint; with none yet (a run killed before its first one, issue 23) the run
    starts from the beginning and says so, so a retry loop gets somewhere. Damaged checkpoints still count: the
    loop reports them rather than quietly training over them."""
    if not resume or list_checkpoints(run_dir):
        return resume
    if distributed.is_main():
        print(f"--resume: {run_dir} has no checkpoint yet; starting the run from the beginning", file=sys.stderr)
    return False
