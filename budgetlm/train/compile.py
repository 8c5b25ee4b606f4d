"""train.compile: torch.compile (inductor) on the parts of a training step that eager PyTorch runs slowly on CPU.

Compiled are the repeated transformer blocks (regional compilation: one graph serves every layer of the same
shape, and the model's state dict keeps its keys) and the function a recipe names as its hot spot (the masked-LM
head with its (N, V) cross-entropy: `objectives.mlm.vocabulary_loss`). Inductor fuses the elementwise work
around the matmuls -- RoPE, GeGLU, norms, the bf16 casts and the log-softmax -- into a few C++ loops; the first
steps pay the compilation (~10-15 CPU-s for the small presets, counted in the time budget).

Inductor needs a C++ compiler; without one, validating the config warns and turns train.compile off.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import torch

from budgetlm.models.layers import Block


def compiler_available() -> bool:
    """Whether inductor will find a C++ compiler ($CXX, g++ or clang++)."""
    return bool(os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++"))


def _in_process() -> None:
    # inductor compiles in worker processes by default; their CPU time would escape train.clock=cpu
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1


def compile_blocks(model: torch.nn.Module, cpu_clock: bool) -> None:
    """Compile every transformer block of `model` in place."""
    if cpu_clock:
        _in_process()
    for block in [m for m in model.modules() if isinstance(m, Block)]:
        block.compile()


def compile_fn(fn: Callable, cpu_clock: bool) -> Callable:
    """`fn` compiled for inputs whose sizes change from call to call (e.g. the number of masked positions)."""
    if cpu_clock:
        _in_process()
    return torch.compile(fn, dynamic=True)
