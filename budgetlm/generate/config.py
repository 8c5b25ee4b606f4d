"""`GenerateConfig`: how `budgetlm generate` samples from a decoder (generate/decoder.py reads it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from budgetlm.errors import UserError
from budgetlm.schema import setting


@dataclass
class GenerateConfig:
    """Sampling from a decoder (`budgetlm generate`)."""

    max_new_tokens: int = setting(100, "tokens to generate at most (fewer if the model ends the text)")
    temperature: float = setting(0.8, "softmax temperature; 0 = greedy (always the most likely token)")
    top_k: int = setting(0, "sample among the k most likely tokens only; 0 = all")
    top_p: float = setting(1.0, "nucleus sampling: the smallest set of tokens whose probability reaches top_p, in (0, 1]")
    repetition_penalty: float = setting(1.0, "> 1 discourages tokens already in the text (CTRL, Keskar et al. 2019); 1 = off")
    seed: int = setting(0, "sampling seed")

    def validate(self) -> None:
        for name in ("temperature", "top_p", "repetition_penalty"):  # NaN passes every comparison below
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {getattr(self, name)}")
        if self.max_new_tokens < 1:
            raise UserError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise UserError(f"--temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k < 0:
            raise UserError(f"--top-k must be >= 0 (0 = off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise UserError(f"--repetition-penalty must be > 0 (1 = off), got {self.repetition_penalty}")
