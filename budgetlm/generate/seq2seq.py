"""Generation with the encoder-decoder: encode once, then extend the decoder a token at a time; sampling is
generate/sampling.py's, as for the decoder.

With `use_cache` (the default) each step runs the decoder on the newest token only, reading earlier
self-attention keys/values and the cross-attention keys/values of the source from a `DecoderCache`;
without it every step recomputes the whole prefix (kept for the equivalence test and the speed figure).
`temperature=0` is greedy decoding.
"""

from __future__ import annotations

import torch

from budgetlm.generate.sampling import sample
from budgetlm.models.encoder_decoder import EncoderDecoderModel, source_mask
from budgetlm.tokenizer import CLS, PAD, SEP

DECODER_START = CLS  # first decoder input (T5 starts from pad, BART from </s>; any fixed id works)
EOS = SEP


@torch.inference_mode()  # lighter than no_grad: no version counters on the per-step tensors
def generate(
    model: EncoderDecoderModel,
    input_ids: torch.Tensor,  # (B, S)
    attention_mask: torch.Tensor | None = None,  # (B, S) 1 = token, 0 = padding
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """(B, 1 + n) ids: DECODER_START, then the generated tokens; a row that has emitted EOS continues with PAD.

    Stops when every row has emitted EOS, after max_new_tokens, or at the decoder's last position.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    was_training = model.training
    model.eval()
    B = input_ids.shape[0]
    memory = model.encode(input_ids, attention_mask)  # (B, S, D)
    memory_mask = source_mask(attention_mask)  # once, not per step
    tok_emb = model.encoder.tok_emb
    # a contiguous (D, V) copy of the head's matrix, once per call, for both paths: at batch 1, hidden @ W.T (the
    # head's F.linear) takes a slow MKL matvec path, ~2x the time of hidden @ W_t here (as in generate/decoder.py)
    head_t = model.get_output_embeddings().weight.t().contiguous()  # (D, V)
    out = torch.full((B, 1), DECODER_START, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    cache = model.decoder.new_cache(B) if use_cache else None
    for _ in range(min(max_new_tokens, model.cfg.max_seq_len - 1)):
        step_ids = out[:, -1:] if use_cache else out  # (B, 1) or (B, t)
        hidden = model.decoder(step_ids, tok_emb, memory, memory_mask, cache)[:, -1]  # (B, D)
        token = sample(hidden @ head_t, generator, temperature, top_k)  # (B,)
        token = token.masked_fill(done, PAD)
        out = torch.cat([out, token[:, None]], dim=1)
        done |= token == EOS
        if bool(done.all()):
            break
    model.train(was_training)
    return out


def strip_generated(row: list[int]) -> list[int]:
    """The tokens of one generated row after DECODER_START and before EOS / padding."""
    tokens = []
    for token in row[1:]:
        if token in (EOS, PAD):
            break
        tokens.append(token)
    return tokens
