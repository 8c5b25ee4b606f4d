"""Settings of the pre-training objective (`ObjectiveConfig`, the `objective:` section) and which objective trains
which model family. The masking names come from the registry of masking functions (objectives/__init__.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from budgetlm.errors import UserError
from budgetlm.objectives import MASKING_FUNCTIONS
from budgetlm.schema import choice, positive, setting

MASKINGS = tuple(MASKING_FUNCTIONS)
# pre-training objective -> the model family it trains (the functions are in budgetlm/objectives)
OBJECTIVE_FAMILIES = {"mlm": "encoder", "rtd": "encoder", "next_token": "decoder", "span_corruption": "encoder_decoder",
                      "text_infilling": "encoder_decoder"}
DEFAULT_OBJECTIVES = {"encoder": "mlm", "decoder": "next_token", "encoder_decoder": "span_corruption"}
SENTENCE_TASKS = ("none", "nsp", "sop")


@dataclass
class ObjectiveConfig:
    """Pre-training objective: masked LM or ELECTRA replaced-token detection (encoder), next token (decoder),
    T5 span corruption or BART text infilling (encoder-decoder)."""

    SECTION: ClassVar[str] = "objective"

    name: str = setting("", f"objective, one of {tuple(OBJECTIVE_FAMILIES)}; empty = the family's usual one {DEFAULT_OBJECTIVES}")
    masking: str = setting("random", f"which positions to mask, one of {MASKINGS}: random tokens, whole words, "
                                     "PMI n-grams + whole words (needs objective.pmi_vocab), SpanBERT word spans")
    mask_rate: float = setting(0.15, "fraction of (non-special) positions to predict (0.3-0.4 as in MosaicBERT/ModernBERT also works)")
    mask_token_prob: float = setting(0.8, "of the chosen positions (or units): fraction replaced by [MASK]")
    random_token_prob: float = setting(0.1, "of the chosen positions (or units): fraction replaced by random tokens (rest kept)")
    pmi_vocab: str = setting("", "n-gram vocabulary for masking=pmi, written by `budgetlm pmi-vocab`")
    span_geometric_p: float = setting(0.2, "masking=spanbert: span length in words ~ Geometric(p), restricted to 1..span_max_words")
    span_max_words: int = setting(10, "masking=spanbert: longest span in words")
    noise_density: float = setting(0.15, "span_corruption: fraction of (non-special) tokens corrupted (T5: 0.15)")
    mean_span_length: float = setting(3.0, "span_corruption: mean length of a corrupted span (T5: 3)")
    sentinels: int = setting(100, "span_corruption: sentinel tokens <extra_id_0>.. added to the tokenizer (T5: 100)")
    infill_rate: float = setting(0.3, "text_infilling: fraction of (non-special) tokens masked (BART: 0.3)")
    poisson_lambda: float = setting(3.0, "text_infilling: mean of the Poisson span lengths, 0-length spans included (BART: 3)")
    permute_sentences: bool = setting(False, "text_infilling: shuffle the sentences of each document first (BART's second noise)")
    sentence_task: str = setting("none", f"second pre-training head, one of {SENTENCE_TASKS}: none (RoBERTa-style packed "
                                         "blocks), nsp (next-sentence prediction) or sop (sentence-order prediction)")
    document_mask: bool = setting(False, "next_token: attention does not cross an end-of-text token into the previous document")
    generator_layers: int = setting(1, "rtd: layers of the ELECTRA generator (same width, shares the token embedding)")
    generator_d_ff: int = setting(0, "rtd: feed-forward width of the generator; 0 = model.d_ff")
    rtd_weight: float = setting(50.0, "rtd: weight of the discriminator loss against the generator's masked-LM loss (ELECTRA: 50)")

    def validate(self) -> None:
        if self.name:
            choice(self, "name", tuple(OBJECTIVE_FAMILIES))
        choice(self, "masking", MASKINGS)
        if not 0.0 < self.mask_rate < 1.0:
            raise UserError(f"objective.mask_rate must be in (0, 1), got {self.mask_rate}")
        for name in ("mask_token_prob", "random_token_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"objective.{name} must be in [0, 1]")
        if self.mask_token_prob + self.random_token_prob > 1.0 + 1e-9:
            raise UserError("objective.mask_token_prob + objective.random_token_prob must be <= 1")
        for name in ("noise_density", "infill_rate"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise UserError(f"objective.{name} must be in (0, 1), got {getattr(self, name)}")
        if self.mean_span_length < 1.0:
            raise UserError(f"objective.mean_span_length must be >= 1, got {self.mean_span_length}")
        if self.poisson_lambda <= 0.0:
            raise UserError(f"objective.poisson_lambda must be > 0, got {self.poisson_lambda}")
        positive(self, "sentinels")
        if self.masking == "pmi" and not self.pmi_vocab:
            raise UserError("objective.masking=pmi needs objective.pmi_vocab=FILE (build one with `budgetlm pmi-vocab`)")
        if not 0.0 < self.span_geometric_p <= 1.0:
            raise UserError(f"objective.span_geometric_p must be in (0, 1], got {self.span_geometric_p}")
        positive(self, "span_max_words")
        choice(self, "sentence_task", SENTENCE_TASKS)
        positive(self, "generator_layers")
        if self.generator_d_ff < 0:
            raise UserError(f"objective.generator_d_ff must be >= 0 (0 = model.d_ff), got {self.generator_d_ff}")
        if not self.rtd_weight > 0.0:
            raise UserError(f"objective.rtd_weight must be > 0, got {self.rtd_weight}")
