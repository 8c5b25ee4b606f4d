"""Sampling and the decoding loop: options validation, greedy determinism, cache == recompute, end-of-text."""

import pytest
import torch

from budgetlm.errors import UserError
from budgetlm.generate import generate, sample_next
from budgetlm.models import build_lm_model
from budgetlm.generate.config import GenerateConfig
from budgetlm.tokenizer import SEP


@pytest.fixture(params=[True, False], ids=["tied", "untied"])
def lm(request, tiny_model_config):
    torch.manual_seed(0)
    cfg = tiny_model_config(family="decoder", type_vocab_size=0, embedding_norm=False, max_seq_len=16, init_std=0.2,
                            tie_embeddings=request.param)
    return build_lm_model(cfg).eval()


@pytest.mark.parametrize("options,message", [
    (dict(top_p=0.0), "--top-p must be in (0, 1]"),
    (dict(top_p=1.01), "--top-p must be in (0, 1]"),
    (dict(temperature=-0.1), "--temperature"),
    (dict(top_k=-1), "--top-k"),
    (dict(repetition_penalty=0.0), "--repetition-penalty"),
    (dict(max_new_tokens=0), "--max-new-tokens"),
])
def test_bad_sampling_options(options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        GenerateConfig(**options).validate()


def test_sampling_filters():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.0, 3.0, 2.9, -1.0, 1.0])
    assert sample_next(logits, torch.tensor([]), GenerateConfig(temperature=0), g) == 1
    # repetition penalty turns greedy away from a token already in the text
    assert sample_next(logits, torch.tensor([1]), GenerateConfig(temperature=0, repetition_penalty=2.0), g) == 2
    draws = lambda cfg: {sample_next(logits, torch.tensor([], dtype=torch.long), cfg, g) for _ in range(200)}
    assert draws(GenerateConfig(temperature=1.0, top_k=2)) == {1, 2}
    assert draws(GenerateConfig(temperature=1.0, top_p=0.5)) == {1, 2}  # p(token 1) alone is ~0.47 < 0.5
    assert len(draws(GenerateConfig(temperature=5.0))) == 5


def test_top_p_keeps_the_smallest_set_reaching_p():
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    seen = {sample_next(probs.log(), torch.tensor([], dtype=torch.long), GenerateConfig(temperature=1.0, top_p=0.75), g)
            for _ in range(300)}
    assert seen == {0, 1}


def test_kv_cache_generation_equals_recompute(lm):
    """Greedy and sampled, past max_seq_len (the window restarts) and with a prompt filling the context."""
    for cfg in (GenerateConfig(max_new_tokens=40, temperature=0), GenerateConfig(max_new_tokens=40, temperature=1.0, seed=3)):
        for prompt in ([SEP, 10, 11], [SEP] + list(range(20, 35))):
            cached = generate(lm, prompt, cfg, use_cache=True, stop_token=None)
            recomputed = generate(lm, prompt, cfg, use_cache=False, stop_token=None)
            assert cached == recomputed and len(cached) == 40


def test_generate_projects_with_the_lm_head(lm):
    """generate multiplies by its own transposed copy of the head's matrix: it must pick what the head says."""
    prompt = [SEP, 10, 11]
    greedy = GenerateConfig(max_new_tokens=6, temperature=0)
    out = generate(lm, prompt, greedy, stop_token=None)
    with torch.inference_mode():
        for i, token in enumerate(out):
            ids = torch.tensor([prompt + out[:i]])
            logits = lm.heads["lm"](lm.decoder(ids)[0, -1])
            assert token == int(logits.argmax())


def test_same_seed_same_text_and_stop_at_end_of_text(lm):
    cfg = GenerateConfig(max_new_tokens=30, temperature=1.0, seed=7)
    assert generate(lm, [SEP, 12], cfg) == generate(lm, [SEP, 12], cfg)
    full = generate(lm, [SEP, 12], GenerateConfig(max_new_tokens=30, temperature=0), stop_token=None)
    stop = full[3]  # pretend the 4th greedy token is end-of-text: generation must end right before it
    assert generate(lm, [SEP, 12], GenerateConfig(max_new_tokens=30, temperature=0), stop_token=stop) == full[:full.index(stop)]


def test_streaming_callback_sees_every_token(lm):
    seen = []
    out = generate(lm, [SEP, 9], GenerateConfig(max_new_tokens=8, temperature=0), on_token=seen.append, stop_token=None)
    assert seen == out and len(out) == 8
