"""The one training loop, driven through the pre-training stage on a tiny config.

Equivalence: a run interrupted (Ctrl-C) and resumed ends with weights bitwise equal to an uninterrupted run.
Safety: NaN stops the run and keeps earlier checkpoints; a damaged newest checkpoint is skipped on resume.
Reporting: metrics.jsonl, results.json and loss.png.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from budgetlm.config import build_config
from budgetlm.errors import UserError
from budgetlm.stages import skeleton as pretrain_stage  # the stage skeleton calls the loop for pretrain
from budgetlm.stages.config import PretrainConfig
from budgetlm.stages.pretrain import pretrain
from budgetlm.tokenizer import train_tokenizer
from budgetlm.train import loop as loop_mod
from budgetlm.train.checkpoint import list_checkpoints, verify
from budgetlm.train.config import TrainConfig
from budgetlm.train.logs import read_metrics
from budgetlm.train.loop import Interrupted, TrainingDiverged, existing_run_problem, train

STEPS = 12
INTERRUPT_AT = 6  # steps completed when Ctrl-C arrives


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, write_text_files):
    """Corpus, validation text, tokenizer and token cache dir shared by every run in this module."""
    d = tmp_path_factory.mktemp("loop-inputs")
    paragraphs = write_text_files(d)
    train_tokenizer("wordpiece", 100, paragraphs).save(str(d / "tokenizer.json"))
    return d


def make_config(inputs: Path, *extra: str, budget: str = f"{STEPS}steps") -> PretrainConfig:
    # dropout stays on (0.1): resuming must restore the RNG state, not only weights and data order
    return build_config(PretrainConfig, overrides=[
        "model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32",
        "model.dropout=0.1", f"train.budget={budget}", "train.batch_size=4", "train.log_every=1", "train.threads=1",
        "train.checkpoint_every=4steps", "train.keep_checkpoints=5", "train.warmup=0.25",
        f"data.train={inputs / 'train.txt'}", f"data.valid={inputs / 'valid.txt'}",
        f"data.tokenizer={inputs / 'tokenizer.json'}", f"data.cache_dir={inputs / 'cache'}", *extra,
    ])


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    results = pretrain(make_config(inputs), run)
    return run, results


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def interrupt_between_steps(monkeypatch, after_steps: int) -> None:
    """Ctrl-C arriving when `after_steps` steps are done, before the next one starts (lr_at opens every step)."""
    real, calls = loop_mod.lr_at, []

    def lr_at(progress, cfg):
        calls.append(progress)
        if len(calls) == after_steps + 1:
            raise KeyboardInterrupt
        return real(progress, cfg)

    monkeypatch.setattr(loop_mod, "lr_at", lr_at)


def wrap_step_fn(monkeypatch, wrapper) -> None:
    """Replace the pre-training step_fn by wrapper(step_fn) inside the stage (the loop itself is untouched)."""
    real_train = pretrain_stage.train

    def train_with_wrapped_step(model, batches, step_fn, *args, **kwargs):
        return real_train(model, batches, wrapper(step_fn), *args, **kwargs)

    monkeypatch.setattr(pretrain_stage, "train", train_with_wrapped_step)


def run_interrupted(inputs, run, monkeypatch, how: str) -> None:
    if how == "between steps":
        interrupt_between_steps(monkeypatch, INTERRUPT_AT)
    else:
        def wrapper(step_fn):
            def step(model, batch, step_i, micro):
                if step_i == INTERRUPT_AT:
                    raise KeyboardInterrupt  # Ctrl-C during the step, after its batch was drawn
                return step_fn(model, batch, step_i, micro)
            return step
        wrap_step_fn(monkeypatch, wrapper)
    with pytest.raises(Interrupted, match=f"interrupted at step {INTERRUPT_AT}"):
        pretrain(make_config(inputs), run)
    monkeypatch.undo()
    assert [p.name for p in list_checkpoints(run)] == ["step_00000004", f"step_{INTERRUPT_AT:08d}"]
    assert not (run / "results.json").exists()


# ------------------------------------------------------------------------------------------------ resume

def test_uninterrupted_run_produces_a_complete_report(uninterrupted):
    run, results = uninterrupted
    assert results["steps"] == STEPS
    assert json.loads((run / "results.json").read_text()) == json.loads(json.dumps(results))
    for key in ("mlm_loss", "mlm_accuracy", "pseudo_perplexity", "train_tokens", "tokens_per_s", "parameters"):
        assert key in results
    assert results["train_tokens"] == STEPS * 4 * 32
    png = run / "loss.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((run / "config.json").read_text())
    assert config["stage"] == "pretrain" and config["model"]["d_model"] == 32
    assert config["model"]["vocab_size"] > 0  # resolved from the tokenizer
    assert (run / "model" / "tokenizer.json").is_file()
    assert json.loads((run / "model" / "config.json").read_text())["kind"] == "mlm"
    assert [p.name for p in list_checkpoints(run)] == ["step_00000004", "step_00000008", "step_00000012"]


def test_metrics_have_the_required_keys(uninterrupted):
    run, _ = uninterrupted
    records = read_metrics(run)
    train_records = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_records] == list(range(1, STEPS + 1))  # log_every=1
    for r in train_records:
        assert {"step", "tokens", "loss", "lr", "tokens_per_s", "elapsed_s"} <= r.keys()
        assert r["tokens"] == r["step"] * 4 * 32
        assert r["loss"] > 0 and r["tokens_per_s"] > 0 and r["elapsed_s"] >= 0
    lrs = [r["lr"] for r in train_records]
    assert lrs[0] == 0.0 and max(lrs) == pytest.approx(1e-3)  # warm-up from 0 to the peak (default lr)
    evals = [r for r in records if "eval_mlm_loss" in r]
    assert len(evals) == 1 and evals[0]["step"] == STEPS


def test_resume_after_interrupt_between_steps_equals_uninterrupted(inputs, uninterrupted, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    run_interrupted(inputs, run, monkeypatch, "between steps")
    results = pretrain(make_config(inputs), run, resume=True)
    assert f"resumed from step {INTERRUPT_AT}" in capsys.readouterr().err
    assert results["steps"] == STEPS
    assert_same_weights(uninterrupted[0], run)
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == list(range(1, STEPS + 1))  # no duplicates


def test_resume_after_interrupt_inside_a_step_equals_uninterrupted(inputs, uninterrupted, tmp_path, monkeypatch):
    """Ctrl-C usually lands inside a step (forward/backward is where the time goes). The step in flight is lost,
    so the checkpoint must describe the state *before* it: its batch must be drawn again on resume."""
    run = tmp_path / "run"
    run_interrupted(inputs, run, monkeypatch, "inside a step")
    pretrain(make_config(inputs), run, resume=True)
    assert_same_weights(uninterrupted[0], run)


def test_damaged_newest_checkpoint_is_skipped_on_resume(inputs, uninterrupted, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    run_interrupted(inputs, run, monkeypatch, "between steps")
    newest = list_checkpoints(run)[-1]
    weights_file = newest / "model.safetensors"
    with open(weights_file, "r+b") as f:
        f.truncate(weights_file.stat().st_size // 2)
    assert "checksum mismatch" in verify(newest)
    capsys.readouterr()
    pretrain(make_config(inputs), run, resume=True)
    err = capsys.readouterr().err
    assert f"warning: skipping damaged checkpoint {newest}" in err
    assert "resumed from step 4" in err
    assert_same_weights(uninterrupted[0], run)  # replaying steps 5-6 from step 4 gives the same model
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == list(range(1, STEPS + 1))


def test_resume_with_every_checkpoint_damaged_is_a_user_error(inputs, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_interrupted(inputs, run, monkeypatch, "between steps")
    for ckpt in list_checkpoints(run):
        (ckpt / "state.json").write_text("{truncated")
    with pytest.raises(UserError, match="no intact checkpoint"):
        pretrain(make_config(inputs), run, resume=True)


def test_finished_run_is_not_overwritten(inputs, uninterrupted):
    run, _ = uninterrupted
    before = (run / "results.json").read_bytes()
    assert "already holds a run" in existing_run_problem(run, resume=False)
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        pretrain(make_config(inputs), run)
    assert (run / "results.json").read_bytes() == before


def test_keep_checkpoints_prunes_old_ones(inputs, tmp_path):
    run = tmp_path / "run"
    pretrain(make_config(inputs, "train.checkpoint_every=2steps", "train.keep_checkpoints=2", budget="8steps"), run)
    assert [p.name for p in list_checkpoints(run)] == ["step_00000006", "step_00000008"]
    assert all(verify(p) is None for p in list_checkpoints(run))
    assert not any(p.name.startswith(".tmp") for p in (run / "checkpoints").iterdir())


# ------------------------------------------------------------------------------------------------ divergence

def poison_loss(monkeypatch, from_step: int, to_step: int, factor: float = float("nan")) -> None:
    """Multiply the loss of steps from_step..to_step (inclusive) by `factor` (NaN, inf or a spike)."""
    def wrapper(step_fn):
        def step(model, batch, step_i, micro):
            loss, n, extra = step_fn(model, batch, step_i, micro)
            return (loss * factor if from_step <= step_i <= to_step else loss), n, extra
        return step

    wrap_step_fn(monkeypatch, wrapper)


def test_one_nan_step_is_skipped_counted_and_logged(inputs, tmp_path, monkeypatch, capsys):
    poison_loss(monkeypatch, INTERRUPT_AT, INTERRUPT_AT)
    run = tmp_path / "run"
    results = pretrain(make_config(inputs), run)
    assert results["steps"] == STEPS
    assert f"warning: loss became NaN/inf at step {INTERRUPT_AT}; update skipped (1 in a row, 1 in total)" in capsys.readouterr().err
    assert all(torch.isfinite(w).all() for w in weights(run).values())
    logged = {r["step"]: r for r in read_metrics(run) if "loss" in r}
    assert INTERRUPT_AT + 1 not in logged  # log_every=1: the skipped step has no loss line
    assert all(r.get("skipped_steps", 0) == (r["step"] > INTERRUPT_AT) for r in logged.values())


def test_nan_steps_in_a_row_stop_the_run_and_keep_the_good_checkpoint(inputs, uninterrupted, tmp_path, monkeypatch):
    poison_loss(monkeypatch, INTERRUPT_AT, STEPS)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as e:
        pretrain(make_config(inputs, "train.max_bad_steps=3"), run)
    assert isinstance(e.value, UserError)  # the CLI prints it as one line and exits 2
    msg = str(e.value)
    assert f"loss became NaN/inf at step {INTERRUPT_AT + 2}; 3 bad step(s) in a row since step {INTERRUPT_AT}" in msg
    assert "step_00000004" in msg and "train.lr" in msg
    ckpts = list_checkpoints(run)
    assert [p.name for p in ckpts] == ["step_00000004"] and verify(ckpts[0]) is None
    assert not (run / "results.json").exists() and not (run / "model").exists()
    # the kept checkpoint is a sound place to restart from
    monkeypatch.undo()
    pretrain(make_config(inputs), run, resume=True)
    assert_same_weights(uninterrupted[0], run)


def test_nan_gradient_stops_the_run(inputs, tmp_path, monkeypatch):
    def wrapper(step_fn):
        def step(model, batch, step_i, micro):
            loss, n, extra = step_fn(model, batch, step_i, micro)
            if step_i == 2:  # a finite loss whose backward pass yields NaN gradients
                model.encoder.tok_emb.weight.register_hook(lambda g: torch.full_like(g, float("nan")))
            return loss, n, extra
        return step

    wrap_step_fn(monkeypatch, wrapper)
    with pytest.raises(TrainingDiverged, match="gradient norm became NaN/inf at step 2; 1 bad step"):
        pretrain(make_config(inputs, "train.max_bad_steps=1"), tmp_path / "run")


def test_loss_spike_guard_skips_the_spike(inputs, tmp_path, monkeypatch, capsys):
    poison_loss(monkeypatch, 10, 10, factor=10.0)
    pretrain(make_config(inputs, "train.loss_spike_factor=3"), tmp_path / "run")
    assert "warning: loss spiked to" in capsys.readouterr().err
    assert read_metrics(tmp_path / "run")[-2]["skipped_steps"] == 1  # the last training line, before the eval
    poison_loss(monkeypatch, 10, 10, factor=10.0)  # without the guard the spike goes through
    pretrain(make_config(inputs), tmp_path / "run2")
    assert "spiked" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ the bare loop

class CountingBatches:
    """A resumable batch source that hands out its position, so tests can see which batches were used."""

    def __init__(self):
        self.i = 0

    def __next__(self):
        self.i += 1
        return {"x": torch.full((2, 3), float(self.i))}

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state):
        self.i = state["i"]


def _toy_step(seen):
    def step_fn(model, batch, step, micro):
        seen.append((step, micro, int(batch["x"][0, 0])))
        return model(batch["x"]).pow(2).mean(), 10, {"extra": 1.0}
    return step_fn


@pytest.mark.parametrize("budget, steps", [("5steps", 5), ("100tokens", 5), ("2ktokens", 100)])
def test_budget_in_steps_or_tokens_with_grad_accum(budget, steps, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    seen = []
    cfg = TrainConfig(budget=budget, grad_accum=2, log_every=1000, checkpoint_every="1000steps", lr=1e-2)
    state = train(model, CountingBatches(), _toy_step(seen), cfg, tmp_path)  # the stage creates the run dir
    assert state.step == steps
    assert state.tokens == steps * 2 * 10  # 10 tokens per micro-batch, 2 micro-batches per step
    assert [(s, m) for s, m, _ in seen] == [(s, m) for s in range(steps) for m in range(2)]
    assert [b for _, _, b in seen] == list(range(1, 2 * steps + 1))  # every micro-batch is a fresh batch
    assert [p.name for p in list_checkpoints(tmp_path)] == [f"step_{steps:08d}"]  # only the final checkpoint


def test_resume_with_no_checkpoint_starts_from_the_beginning(tmp_path, capsys):
    """Issue 23: a run killed before its first checkpoint is started again by --resume, not refused."""
    assert existing_run_problem(tmp_path, resume=True) is None
    seen = []
    state = train(torch.nn.Linear(3, 1), CountingBatches(), _toy_step(seen), TrainConfig(budget="2steps"), tmp_path,
                  resume=True)
    assert state.step == 2 and [b for _, _, b in seen] == [1, 2]  # from the first batch on
    assert f"--resume: {tmp_path} has no checkpoint yet; starting the run from the beginning" in capsys.readouterr().err
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002"]


def test_resume_never_restarts_a_finished_run_without_checkpoints(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    assert "holds a finished run (results.json) and no checkpoint to resume from" in existing_run_problem(tmp_path, True)
    assert "already holds a run; choose another --out" in existing_run_problem(tmp_path, resume=False)


def test_interrupt_saves_a_resumable_checkpoint(tmp_path, monkeypatch):
    interrupt_between_steps(monkeypatch, 3)
    cfg = TrainConfig(budget="6steps", log_every=1, checkpoint_every="1000steps")
    with pytest.raises(Interrupted, match="--resume"):
        train(torch.nn.Linear(3, 1), CountingBatches(), _toy_step([]), cfg, tmp_path)
    monkeypatch.undo()
    seen = []
    state = train(torch.nn.Linear(3, 1), CountingBatches(), _toy_step(seen), cfg, tmp_path, resume=True)
    assert state.step == 6
    assert [(s, b) for s, _, b in seen] == [(3, 4), (4, 5), (5, 6)]  # continues with the 4th batch


def test_cpu_clock_budget_counts_process_time(inputs, tmp_path, monkeypatch):
    """train.clock=cpu: a time budget counts the process's CPU seconds (a fake clock ticking 1 s per reading)."""
    ticks = iter(range(10_000))
    monkeypatch.setitem(loop_mod.CLOCKS, "cpu", lambda: float(next(ticks)))
    results = pretrain(make_config(inputs, "train.clock=cpu", budget="5s"), tmp_path / "run")
    # a step reads the clock at its start, before the all-reduce and after the update: 1 s, then 2 s per step
    assert results["steps"] == 3


def test_time_budget_counts_the_optimizer_update(tmp_path, monkeypatch):
    """The optimizer step is training time: a 1 s forward/backward plus a 1 s update costs 2 s of the budget."""
    now = [0.0]
    monkeypatch.setitem(loop_mod.CLOCKS, "wall", lambda: now[0])
    build = loop_mod.build_optimizer

    def slow_update(model, cfg):
        opt = build(model, cfg)
        step = opt.step
        def timed_step(*args, **kwargs):
            now[0] += 1.0
            return step(*args, **kwargs)
        opt.step = timed_step
        return opt
    monkeypatch.setattr(loop_mod, "build_optimizer", slow_update)

    def step_fn(model, batch, step, micro):
        now[0] += 1.0
        return model(batch["x"]).pow(2).mean(), 10, {}
    cfg = TrainConfig(budget="6s", log_every=1, checkpoint_every="1000steps")
    state = train(torch.nn.Linear(3, 1), CountingBatches(), step_fn, cfg, tmp_path)
    assert state.step == 4  # elapsed 1, 3, 5, 7 (the first update is counted with the second step); 6 if updates were free
    assert state.elapsed == 7.0 and state.pending == 1.0


def _scripted_eval(scores, snapshots):
    """An evaluation that reports the next scripted score and records the weights it saw."""
    def evaluate(model):
        snapshots.append(model.weight.detach().clone())
        return {"score": scores[len(snapshots) - 1], "other": 0.0}
    return evaluate


def test_keep_best_ends_with_the_best_evaluation_weights(tmp_path, capsys):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    snapshots = []
    cfg = TrainConfig(budget="8steps", eval_every=2, keep_best="score", log_every=1000, checkpoint_every="1000steps", lr=1e-2)
    # evaluations at steps 2, 4, 6, the final one at 8, then the re-evaluation of the kept weights
    state = train(model, CountingBatches(), _toy_step([]), cfg, tmp_path, evaluate=_scripted_eval([0.5, 0.9, 0.7, 0.6, 0.9], snapshots))
    assert len(snapshots) == 5
    assert torch.equal(model.weight, snapshots[1]) and not torch.equal(snapshots[1], snapshots[3])
    assert torch.equal(snapshots[4], snapshots[1])  # the last evaluation saw the step-4 weights
    assert state.best == {"step": 4, "value": 0.9}
    assert state.last_eval()["kept_step"] == 4 and state.last_eval()["score"] == 0.9
    assert "keeping the weights of step 4" in capsys.readouterr().err
    final = list_checkpoints(tmp_path)[-1]  # the final checkpoint holds the kept weights
    assert torch.equal(load_file(str(final / "model.safetensors"))["weight"], snapshots[1])


def test_keep_best_keeps_the_last_weights_when_they_are_best(tmp_path):
    model = torch.nn.Linear(3, 1)
    snapshots = []
    cfg = TrainConfig(budget="4steps", eval_every=2, keep_best="score", log_every=1000, checkpoint_every="1000steps")
    state = train(model, CountingBatches(), _toy_step([]), cfg, tmp_path, evaluate=_scripted_eval([0.5, 0.8], snapshots))
    assert len(snapshots) == 2 and torch.equal(model.weight, snapshots[1])
    assert "kept_step" not in state.last_eval() and state.best == {"step": 4, "value": 0.8}


def test_keep_best_naming_an_unknown_figure_saves_a_checkpoint_and_says_what_exists(tmp_path):
    cfg = TrainConfig(budget="6steps", eval_every=2, keep_best="acuracy", log_every=1000, checkpoint_every="1000steps")
    with pytest.raises(UserError, match=r"acuracy.*score, other.*--resume"):
        train(torch.nn.Linear(3, 1), CountingBatches(), _toy_step([]), cfg, tmp_path, evaluate=_scripted_eval([0.1] * 9, []))
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002"]


def test_keep_best_needs_periodic_evaluation():
    with pytest.raises(UserError, match="train.eval_every"):
        build_config(PretrainConfig, overrides=["train.keep_best=accuracy"])


def test_keep_best_survives_resume(tmp_path, monkeypatch):
    cfg = TrainConfig(budget="8steps", eval_every=2, keep_best="score", log_every=1000, checkpoint_every="1steps")
    scores = [0.5, 0.9, 0.7, 0.6, 0.9]
    interrupt_between_steps(monkeypatch, 5)
    snapshots = []
    with pytest.raises(Interrupted):
        train(torch.nn.Linear(3, 1), CountingBatches(), _toy_step([]), cfg, tmp_path, evaluate=_scripted_eval(scores, snapshots))
    monkeypatch.undo()
    model = torch.nn.Linear(3, 1)
    after = []
    state = train(model, CountingBatches(), _toy_step([]), cfg, tmp_path, resume=True,
                  evaluate=_scripted_eval(scores[2:], after))  # evaluations at 6, 8, then the kept weights
    assert len(after) == 3 and state.best == {"step": 4, "value": 0.9} and torch.equal(model.weight, snapshots[1])


def test_keep_best_never_keeps_a_nan_evaluation(tmp_path):
    model = torch.nn.Linear(3, 1)
    snapshots = []
    cfg = TrainConfig(budget="6steps", eval_every=2, keep_best="score", log_every=1000, checkpoint_every="1000steps")
    nan = float("nan")
    state = train(model, CountingBatches(), _toy_step([]), cfg, tmp_path, evaluate=_scripted_eval([nan, 0.4, 0.3, 0.4], snapshots))
    assert state.best == {"step": 4, "value": 0.4} and torch.equal(model.weight, snapshots[1])
    (tmp_path / "all-nan").mkdir()  # the stage creates the run dir
    state = train(torch.nn.Linear(3, 1), CountingBatches(), _toy_step([]), cfg, tmp_path / "all-nan",
                  evaluate=_scripted_eval([nan] * 3, []))
    assert state.best == {} and state.step == 6  # nothing to keep: the last weights stay
