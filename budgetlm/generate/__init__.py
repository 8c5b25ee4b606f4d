"""Generation for every generative family: one sampler (sampling.py), the decoder's loop with its KV cache
(decoder.py) and the encoder-decoder's (seq2seq.py). `generate` here is the decoder's."""

from budgetlm.generate.decoder import generate, sample_next
from budgetlm.generate.sampling import sample

__all__ = ["generate", "sample", "sample_next"]
