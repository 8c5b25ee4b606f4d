"""The tables a model option chooses from: activations and normalisation layers.

models/config.py validates `model.activation` and `model.norm` against them, models/layers.py and models/heads.py
build from them, and the exporters read each activation's transformers name; a new choice is one entry here.
This module needs only torch, so the config can read it without importing the layers that read the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Activation:
    """An activation function and its name in transformers' ACT2FN (exports write it, imports read it back)."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    hf_name: str


# the one table of activations: feed-forward, heads and every export read it (a new one is one entry here)
ACTIVATIONS = {
    "gelu": Activation(F.gelu, "gelu"),  # exact erf GELU, as BERT / HF "gelu"
    "gelu_tanh": Activation(lambda x: F.gelu(x, approximate="tanh"), "gelu_pytorch_tanh"),
    "relu": Activation(F.relu, "relu"),
    "relu2": Activation(lambda x: F.relu(x).square(), "relu2"),  # ReLU squared (Primer; modded-nanoGPT's MLP)
    "silu": Activation(F.silu, "silu"),
    "tanh": Activation(torch.tanh, "tanh"),  # the classification head's only (BERT's pooler)
}


NORMS = {
    "layernorm": lambda cfg: nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias),
    "rmsnorm": lambda cfg: nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps),  # Llama: no mean, no bias
}
