"""train.precision=bf16: the forward pass runs in bfloat16 autocast, everything that persists stays fp32."""

from __future__ import annotations

import pytest
import torch

from budgetlm import runtime
from budgetlm.errors import UserError
from budgetlm.train import precision
from budgetlm.train.config import TrainConfig
from budgetlm.train.loop import train

from budgetlm.stages.pretrain import pretrain

from test_loop import CountingBatches, inputs, make_config, weights  # noqa: F401 (inputs is a fixture)

needs_bf16 = pytest.mark.skipif(not precision.bf16_supported(), reason="this CPU has no native bfloat16")


@needs_bf16
def test_bf16_step_computes_in_bf16_and_keeps_fp32_weights_and_grads(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    dtypes = []

    def step_fn(model, batch, step, micro):
        out = model(batch["x"].float())
        dtypes.append(out.dtype)
        return out.float().pow(2).mean(), 1, {}

    train(model, CountingBatches(), step_fn, TrainConfig(budget="3steps", precision="bf16", log_every=1000,
                                                          checkpoint_every="1000steps"), tmp_path)
    assert dtypes == [torch.bfloat16] * 3
    assert all(p.dtype == torch.float32 for p in model.parameters())


@needs_bf16
def test_bf16_pretraining_learns_like_fp32_and_saves_fp32_weights(inputs, tmp_path):
    runs = {p: pretrain(make_config(inputs, f"train.precision={p}", "model.dropout=0", "train.lr=1e-2", budget="60steps"), tmp_path / p)
            for p in ("fp32", "bf16")}
    for p, r in runs.items():
        assert r["mlm_loss"] < 4.4, (p, r["mlm_loss"])  # uniform over the 100-token vocab: ln(100) = 4.61 (both 4.20 here)
    # same seed, same data: bf16 rounding moves the result a little, not a lot
    assert abs(runs["bf16"]["mlm_loss"] - runs["fp32"]["mlm_loss"]) < 0.05, (runs["bf16"]["mlm_loss"], runs["fp32"]["mlm_loss"])
    assert {w.dtype for w in weights(tmp_path / "bf16").values()} == {torch.float32}


def test_bf16_is_refused_without_native_support(monkeypatch):
    monkeypatch.setattr(precision, "bf16_supported", lambda: False)
    with pytest.raises(UserError, match="no native bfloat16"):
        runtime.resolve(TrainConfig(precision="bf16"))


def test_unknown_precision_is_refused():
    with pytest.raises(UserError, match="train.precision"):
        TrainConfig(precision="fp8").validate()


@pytest.mark.parametrize("supported, resolved", [(True, "bf16"), (False, "fp32")])
def test_auto_picks_bf16_only_where_supported(monkeypatch, supported, resolved):
    monkeypatch.setattr(precision, "bf16_supported", lambda: supported)
    cfg = TrainConfig(precision="auto")
    runtime.resolve(cfg)
    assert cfg.precision == resolved
