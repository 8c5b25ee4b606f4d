"""Resolves the machine once, when a stage starts: precision, compiler, memory; and records what it found.

Config validation is pure (it compares values with each other); what depends on this machine is decided here:
`train.precision=auto` becomes bf16 or fp32, bf16 is refused on a CPU without native bfloat16, `train.compile`
is turned off (with a warning) without a C++ compiler, and a model too big for this machine's memory is refused.
The fields are rewritten in place, so config.json records what ran; the returned record goes into config.json
too (`resolved.runtime`). Resolving twice is harmless: the second call finds nothing left to change.
"""

from __future__ import annotations

import os
import platform
import sys

import torch

from budgetlm.errors import UserError
from budgetlm.models.config import ModelConfig
from budgetlm.train import precision
from budgetlm.train.compile import compiler_available
from budgetlm.train.config import TrainConfig


def resolve(train_cfg: TrainConfig, model_cfg: ModelConfig | None = None) -> dict:
    """Check and rewrite the machine-dependent fields of `train_cfg` (and size-check `model_cfg`); the record."""
    if model_cfg is not None:
        check_fits_in_memory(model_cfg)
    train_cfg.precision = precision.resolve(train_cfg.precision)  # config.json records what ran
    precision.check_supported(train_cfg.precision)
    if train_cfg.compile and not compiler_available():
        print("warning: train.compile=true needs a C++ compiler (g++ or clang++, or $CXX) and none was found; "
              "training runs uncompiled", file=sys.stderr)
        train_cfg.compile = False  # config.json records what ran
    return {
        "precision": train_cfg.precision,
        "compile": train_cfg.compile,
        "threads": train_cfg.threads or torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "platform": platform.platform(),
    }


def check_fits_in_memory(cfg: ModelConfig) -> None:
    """Refuse sizes that cannot train here: fp32 weights, gradients and two AdamW moments take 16 bytes a parameter."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
        return
    need = 16 * cfg.parameter_estimate()
    if need > ram:
        raise UserError(f"model settings (d_model={cfg.d_model}, n_layers={cfg.n_layers}, d_ff={cfg.d_ff}) give about "
                        f"{cfg.parameter_estimate() / 1e6:,.0f}M parameters, needing about {need / 1e9:,.0f} GB to train; "
                        f"this machine has {ram / 1e9:,.0f} GB of memory")
