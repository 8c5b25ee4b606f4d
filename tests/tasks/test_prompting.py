"""Prompt scoring: each verbaliser's score is its summed log-probability after the prompt, batching aside."""

import torch

from budgetlm.models import build_lm_model
from budgetlm.objectives.clm import lm_logits
from budgetlm.tasks.config import PromptConfig
from budgetlm.tasks.prompting import score_labels
from budgetlm.tokenizer import SEP, encode_plain


def test_scores_are_verbaliser_log_probabilities(tiny_model_config, tiny_tokenizer):
    torch.manual_seed(0)
    model = build_lm_model(tiny_model_config(family="decoder", type_vocab_size=0, max_seq_len=128)).eval()
    cfg = PromptConfig(template="{text} it was")
    texts, words = ["the cat sees a dog .", "a big old king likes the red house quickly ."], ["happy", "dark"]
    scores, truncated = score_labels(model, tiny_tokenizer, cfg, "the tree . it was happy ", texts, words, batch_size=3)
    assert truncated == 0 and scores.shape == (2, 2)
    for i, text in enumerate(texts):
        prompt = [SEP] + encode_plain(tiny_tokenizer, ["the tree . it was happy " + text + " it was"])[0]
        for j, word in enumerate(words):
            w = encode_plain(tiny_tokenizer, [" " + word])[0]
            logp = lm_logits(model, torch.tensor([prompt + w])).detach().log_softmax(-1)[0]
            expected = sum(float(logp[len(prompt) - 1 + n, t]) for n, t in enumerate(w))
            assert abs(float(scores[i, j]) - expected) < 1e-4


def test_long_prompts_are_cut_from_the_left(tiny_model_config, tiny_tokenizer):
    model = build_lm_model(tiny_model_config(family="decoder", type_vocab_size=0, max_seq_len=16)).eval()
    scores, truncated = score_labels(model, tiny_tokenizer, PromptConfig(), "the cat sees a dog . " * 5, ["a dog"], ["happy"])
    assert truncated == 1 and torch.isfinite(scores).all()
