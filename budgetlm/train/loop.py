"""The one training loop, for pre-training and fine-tuning alike.

Stages differ only in what they pass in: a batch source (resumable iterator of dicts), a `step_fn`
(model, batch, step, micro) -> (loss, n_tokens, extra) that holds the objective or task loss, and an
`evaluate` callback. The loop owns everything else: AdamW, the budget-driven LR schedule, gradient
accumulation and clipping, logging, progress, NaN guards, checkpoints, resume and Ctrl-C.

Budgets count *training* time only; evaluation and checkpointing pause the clock (as Cramming does).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from budgetlm.config import Budget, TrainConfig, parse_budget
from budgetlm.errors import UserError
from budgetlm.train.checkpoint import list_checkpoints, load_latest, save_checkpoint
from budgetlm.train.logs import MetricsLog
from budgetlm.train.memory import tune_allocator
from budgetlm.train.optim import build_optimizer
from budgetlm.train.schedule import lr_at


class TrainingDiverged(UserError):
    """Loss or gradients became NaN/inf; the last good checkpoint is kept."""


class Interrupted(Exception):
    """Ctrl-C: a checkpoint was saved; the run can be resumed."""


@dataclass
class LoopState:
    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0  # training seconds (evaluation and checkpointing excluded)
    last_checkpoint: float = 0.0  # budget units at the last checkpoint
    data: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # evaluation results

    def last_eval(self) -> dict:
        """The final evaluation's figures, without the `eval_` prefix they carry in metrics.jsonl."""
        return {k.removeprefix("eval_"): v for k, v in (self.history[-1] if self.history else {}).items()}

    def consumed(self, budget: Budget) -> float:
        return {"seconds": self.elapsed, "steps": self.step, "tokens": self.tokens}[budget.kind]


StepFn = Callable[[torch.nn.Module, dict, int, int], tuple[torch.Tensor, int, dict]]


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
    run_dir = Path(run_dir)
    budget = parse_budget(cfg.budget, "train.budget")
    ckpt_every = parse_budget(cfg.checkpoint_every, "train.checkpoint_every")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.tune_allocator:
        tune_allocator()
    opt = build_optimizer(model, cfg)
    state = LoopState()
    if resume:
        restored = load_latest(run_dir, model, opt)
        if restored is None:
            raise UserError("--resume: no intact checkpoint to resume from", path=str(run_dir))
        history = restored.pop("history", [])
        restored.pop("checkpoint", None)
        state = LoopState(**restored, history=history)
        batches.load_state_dict(state.data)
        print(f"resumed from step {state.step} ({state.tokens:,} tokens, {state.elapsed:.0f}s trained)", file=sys.stderr)
    else:
        torch.manual_seed(cfg.seed)
    log = MetricsLog(run_dir, resume_step=state.step if resume else 0)

    def checkpoint() -> Path:
        state.data = batches.state_dict()
        state.last_checkpoint = state.consumed(ckpt_every)
        loop_state = {k: v for k, v in state.__dict__.items()}
        return save_checkpoint(run_dir, state.step, model, opt, loop_state, cfg.keep_checkpoints)

    total = budget.amount
    bar = tqdm(total=total, desc=desc, unit="" if budget.kind == "steps" else budget.kind[0], mininterval=2.0,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} [{elapsed}<{remaining}{postfix}]", file=sys.stderr)
    bar.update(min(state.consumed(budget), total))
    window_tokens, window_time, window_loss, window_n = 0, 0.0, 0.0, 0
    model.train()
    step_start = None  # (data position, RNG state) while a step is in flight
    with _stop_on_sigint() as stop:
        try:
            while state.consumed(budget) < total:
                step_start = (batches.state_dict(), torch.get_rng_state())
                t0 = time.perf_counter()
                progress = state.consumed(budget) / total
                lr = lr_at(progress, cfg)
                for g in opt.param_groups:
                    g["lr"] = lr
                step_loss, step_tokens, extra = 0.0, 0, {}
                for micro in range(cfg.grad_accum):
                    batch = next(batches)
                    loss, n_tokens, extra = step_fn(model, batch, state.step, micro)
                    if not torch.isfinite(loss):
                        raise TrainingDiverged(_diverged_msg("loss", state.step, run_dir))
                    (loss / cfg.grad_accum).backward()
                    step_loss += float(loss.detach()) / cfg.grad_accum
                    step_tokens += n_tokens
                if cfg.max_grad_norm > 0:
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    if not torch.isfinite(norm):
                        raise TrainingDiverged(_diverged_msg("gradient norm", state.step, run_dir))
                opt.step()
                opt.zero_grad(set_to_none=True)
                dt = time.perf_counter() - t0
                before = state.consumed(budget)
                state.step += 1
                step_start = None
                state.tokens += step_tokens
                state.elapsed += dt
                bar.update(min(state.consumed(budget), total) - min(before, total))
                window_tokens += step_tokens
                window_time += dt
                window_loss += step_loss
                window_n += 1

                if state.step % cfg.log_every == 0:
                    record = {
                        "step": state.step, "tokens": state.tokens, "loss": round(window_loss / window_n, 5),
                        "lr": lr, "tokens_per_s": round(window_tokens / max(window_time, 1e-9), 1),
                        "elapsed_s": round(state.elapsed, 2),
                    }
                    record.update({k: v for k, v in extra.items() if isinstance(v, (int, float))})
                    log.log(record)
                    bar.set_postfix_str(f"loss {record['loss']:.3f} {record['tokens_per_s']:.0f} tok/s", refresh=False)
                    window_tokens, window_time, window_loss, window_n = 0, 0.0, 0.0, 0

                finished = state.consumed(budget) >= total
                if evaluate is not None and cfg.eval_every and state.step % cfg.eval_every == 0 and not finished:
                    _run_eval(model, evaluate, state, log)
                if not finished and state.consumed(ckpt_every) - state.last_checkpoint >= ckpt_every.amount:
                    checkpoint()
                if stop.is_set():
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            bar.close()
            if step_start is not None:  # interrupted inside a step: rewind it, so resume replays it exactly
                batches.load_state_dict(step_start[0])
                torch.set_rng_state(step_start[1])
                opt.zero_grad(set_to_none=True)
            path = checkpoint()
            log.close()
            raise Interrupted(f"interrupted at step {state.step}; checkpoint saved to {path}; continue with --resume") from None
        except TrainingDiverged:
            bar.close()
            log.close()
            raise
    bar.close()
    if evaluate is not None:
        _run_eval(model, evaluate, state, log)
    checkpoint()
    log.close()
    return state


@contextmanager
def _stop_on_sigint():
    """First Ctrl-C asks the loop to stop at the next step boundary; a second one interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        tqdm.write("stopping after this step (Ctrl-C again to stop now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_eval(model, evaluate, state: LoopState, log: MetricsLog) -> None:
    model.eval()
    with torch.no_grad():
        result = evaluate(model)
    model.train()
    record = {"step": state.step, "tokens": state.tokens, "elapsed_s": round(state.elapsed, 2)}
    record.update({f"eval_{k}": v for k, v in result.items()})
    state.history.append(record)
    log.log(record)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.items() if isinstance(v, (int, float)))
    tqdm.write(f"step {state.step}: {shown}", file=sys.stderr)


def _diverged_msg(what: str, step: int, run_dir: Path) -> str:
    ckpts = list_checkpoints(run_dir)
    kept = f"last good checkpoint: {ckpts[-1]}" if ckpts else "no checkpoint was written yet"
    return f"{what} became NaN/inf at step {step}; stopped ({kept}). Try a lower train.lr or train.max_grad_norm"


def existing_run_problem(run_dir: Path, resume: bool) -> str | None:
    """Refuse to overwrite a run: a run dir with checkpoints needs --resume (or another --out)."""
    if resume:
        return None if list_checkpoints(run_dir) else f"{run_dir}: nothing to resume (no checkpoints)"
    if list_checkpoints(run_dir) or (Path(run_dir) / "results.json").exists():
        return f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
    return None
