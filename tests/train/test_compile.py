"""train.compile: compiled blocks and MLM head train like eager ones; without a C++ compiler it warns and stays off."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from budgetlm import runtime
from budgetlm.stages.pretrain import pretrain
from budgetlm.train import compile as compile_mod
from budgetlm.train.config import TrainConfig

from test_loop import inputs, make_config, weights  # noqa: F401 (inputs is a fixture)

needs_compiler = pytest.mark.skipif(not compile_mod.compiler_available(), reason="inductor cannot compile without a C++ compiler")


@needs_compiler
def test_compiled_pretraining_matches_eager_and_saves_the_same_keys(inputs, tmp_path):
    counters.clear()
    runs = {c: pretrain(make_config(inputs, f"train.compile={c}", "model.dropout=0", budget="4steps"), tmp_path / c)
            for c in ("false", "true")}
    assert counters["stats"]["unique_graphs"] >= 2  # the compiled run really compiled (blocks and head loss)
    # same seed, same data, fp32: only the fused kernels' summation order differs
    assert abs(runs["true"]["mlm_loss"] - runs["false"]["mlm_loss"]) < 1e-3, runs
    eager, compiled = weights(tmp_path / "false"), weights(tmp_path / "true")
    assert compiled.keys() == eager.keys()  # regional compilation keeps the state dict's names
    assert all(torch.allclose(compiled[k], eager[k], atol=1e-4) for k in eager)


def test_compile_without_a_cxx_compiler_warns_and_runs_uncompiled(monkeypatch, capsys):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compile_mod.shutil, "which", lambda name: None)
    cfg = TrainConfig(compile=True)
    runtime.resolve(cfg)
    assert cfg.compile is False  # config.json records what ran
    assert "needs a C++ compiler" in capsys.readouterr().err
