"""Training arithmetic: fp32, or bf16 autocast on CPUs that do bfloat16 natively.

Under `train.precision=bf16` the forward pass and loss run inside `torch.autocast("cpu", torch.bfloat16)`:
matmuls (linear, attention) take bf16 inputs and accumulate in fp32, while PyTorch keeps the ops that need range
(cross-entropy, norms' statistics, softmax reductions) in fp32. Weights, gradients and the AdamW state stay fp32,
so there is no loss scaling to tune (bf16 has fp32's exponent range) and checkpoints are the same as fp32 ones.
On a CPU without AVX512-BF16 or AMX bf16 is emulated and slower than fp32, so it is refused there.
"""

from __future__ import annotations

import contextlib

import torch

from budgetlm.errors import UserError


def bf16_supported() -> bool:
    """True when oneDNN runs bfloat16 matmuls natively on this CPU (AVX512-BF16 / AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve(precision: str) -> str:
    """'auto' -> 'bf16' where this CPU does bfloat16 natively, else 'fp32'; other values unchanged."""
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    return precision


def check_supported(precision: str) -> None:
    if precision == "bf16" and not bf16_supported():
        raise UserError("train.precision=bf16: this CPU has no native bfloat16 arithmetic (AVX512-BF16 or AMX), "
                        "so bf16 would be slower than fp32; use train.precision=fp32")


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """The context a training step's forward pass and loss run in."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
