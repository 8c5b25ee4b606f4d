"""Zero-/few-shot classification with a decoder (Brown et al. 2020): no training. For every example, each
label's verbaliser is scored by its log-probability as the continuation of

    [SEP] demo_1 <sep> ... demo_k <sep> template(text)      (demo_i = template(text_i) + " " + verbaliser_i)

and the best-scoring label is the prediction. k demonstrations are drawn once (seeded) from the train file.
"""

from __future__ import annotations

import random
import sys

import torch

from budgetlm.errors import UserError
from budgetlm.objectives.clm import END_OF_TEXT
from budgetlm.tasks.classification import Examples
from budgetlm.tasks.config import PromptConfig
from budgetlm.tasks.registry import VERBALISERS
from budgetlm.tokenizer import PAD, encode_plain


def verbaliser_map(cfg: PromptConfig, labels: list[str], task: str) -> dict[str, str]:
    """label -> word, from prompt.verbalisers or the built-in task's defaults; every label needs one."""
    given = dict(v.split("=", 1) for v in cfg.verbalisers) if cfg.verbalisers else VERBALISERS.get(task, {})
    given = {k.strip(): w.strip() for k, w in given.items()}
    missing = [label for label in labels if label not in given]
    if missing:
        raise UserError(f"no verbaliser for label(s) {', '.join(map(repr, missing))}; set prompt.verbalisers, "
                        f"e.g. {' '.join(f'{label}=WORD' for label in labels)}")
    return {label: given[label] for label in labels}


def demonstrations(cfg: PromptConfig, train: Examples, words: dict[str, str]) -> str:
    if cfg.shots > len(train.texts):
        raise UserError(f"prompt.shots={cfg.shots} but the train file has {len(train.texts)} examples", path=train.path)
    picks = random.Random(cfg.seed).sample(range(len(train.texts)), cfg.shots)
    return "".join(cfg.template.format(text=train.texts[i]) + " " + words[train.labels[i]] + cfg.separator for i in picks)


@torch.no_grad()
def score_labels(model, tok, cfg: PromptConfig, prefix: str, texts: list[str], words: list[str], batch_size: int = 32):
    """(N, L) summed log-probabilities of each verbaliser after each example's prompt; and how many prompts
    were cut from the left to fit model.max_seq_len."""
    model.eval()
    max_len = model.cfg.max_seq_len
    word_ids = encode_plain(tok, [" " + w for w in words])
    if any(not w for w in word_ids):
        raise UserError("a verbaliser encodes to no tokens")
    prompts = encode_plain(tok, [prefix + cfg.template.format(text=t) for t in texts])
    room = max_len - max(len(w) for w in word_ids) - 1  # -1: the leading end-of-text token
    if room < 1:
        raise UserError(f"the verbalisers do not fit in model.max_seq_len={max_len}")
    truncated = sum(len(p) > room for p in prompts)
    prompts = [[END_OF_TEXT] + p[-room:] for p in prompts]
    pairs = [(i, j) for i in range(len(texts)) for j in range(len(words))]
    scores = torch.empty(len(texts), len(words))
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        seqs = [prompts[i] + word_ids[j] for i, j in chunk]
        T = max(map(len, seqs))
        ids = torch.full((len(seqs), T), PAD, dtype=torch.long)  # right padding: causal attention never sees it
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = torch.tensor(s)
        logp = model.heads["lm"](model.decoder(ids)).log_softmax(-1)  # (B, T, V)
        for r, (i, j) in enumerate(chunk):
            n, w = len(prompts[i]), word_ids[j]
            positions = torch.arange(n - 1, n - 1 + len(w))  # the positions that predict the verbaliser
            scores[i, j] = logp[r, positions, torch.tensor(w)].sum()
    return scores, truncated


def warn_truncated(truncated: int, total: int) -> None:
    if truncated:
        print(f"note: {truncated} of {total} prompts were longer than the model's context and lost tokens from the "
              "left (fewer demonstrations, prompt.shots, or a shorter prompt.template avoid it)", file=sys.stderr)
