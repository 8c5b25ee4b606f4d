"""Pre-training objectives: pure functions from token ids to (inputs, labels). Ignored labels are -100.

Every masking function takes (ids, special_mask, generator, cfg, vocab_size, mask_token_id, n_special,
word_starts=None); those in WORD_MASKINGS need `word_starts` (the token cache stores them on request), and
"pmi" also needs `ngrams=` (bind it with functools.partial; see stages/pretrain.py).

Each objective's evaluator lives beside it: mlm_eval.py (masked-LM loss/accuracy, pseudo-perplexity), clm_eval.py
(next-token loss, perplexity), rtd_eval.py (ELECTRA), seq2seq.py (teacher-forced loss, denoisers, denoising eval).
"""

from budgetlm.objectives.infill import infill
from budgetlm.objectives.clm import document_ids, next_token_targets
from budgetlm.objectives.mlm import IGNORE_INDEX, mask_tokens
from budgetlm.objectives.pmi import mask_pmi
from budgetlm.objectives.span import corrupt_spans, sentinel_tokens
from budgetlm.objectives.spanbert import mask_spans
from budgetlm.objectives.wwm import mask_whole_words

MASKING_FUNCTIONS = {"random": mask_tokens, "wwm": mask_whole_words, "pmi": mask_pmi, "spanbert": mask_spans}
WORD_MASKINGS = frozenset({"wwm", "pmi", "spanbert"})

__all__ = ["IGNORE_INDEX", "mask_tokens", "MASKING_FUNCTIONS", "WORD_MASKINGS", "corrupt_spans", "infill", "sentinel_tokens",
           "next_token_targets", "document_ids"]
