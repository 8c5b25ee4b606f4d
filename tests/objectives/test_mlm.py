"""mask_tokens is a pure function, so its statistics are tested directly (rates, 80/10/10, specials, labels)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from budgetlm.objectives import MASKING_FUNCTIONS
from budgetlm.objectives.config import ObjectiveConfig
from budgetlm.objectives.mlm import IGNORE_INDEX, mask_tokens, mlm_loss
from budgetlm.tokenizer import MASK, SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)


@st.composite
def masking_inputs(draw):
    B = draw(st.integers(1, 4))
    T = draw(st.integers(1, 48))
    vocab = draw(st.integers(N_SPECIAL + 1, 300))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, T), generator=g)
    # specials: whatever the ids say, plus a random extra set (e.g. padding) that must never be chosen either
    extra = torch.rand(B, T, generator=g) < draw(st.floats(0.0, 0.9))
    special = (ids < N_SPECIAL) | extra
    cfg = ObjectiveConfig(
        mask_rate=draw(st.floats(0.01, 0.99)),
        mask_token_prob=draw(st.floats(0.0, 1.0)),
    )
    cfg.random_token_prob = draw(st.floats(0.0, 1.0 - cfg.mask_token_prob))
    cfg.validate()
    return ids, special, cfg, vocab, seed


def _run(ids, special, cfg, vocab, seed):
    return mask_tokens(ids, special, torch.Generator().manual_seed(seed), cfg, vocab, MASK, N_SPECIAL)


@settings(max_examples=200, deadline=None)
@given(masking_inputs())
def test_mask_tokens_properties(case):
    ids, special, cfg, vocab, seed = case
    ids_before, special_before = ids.clone(), special.clone()
    inputs, labels = _run(*case)
    assert torch.equal(ids, ids_before) and torch.equal(special, special_before)  # pure: inputs untouched
    assert inputs.shape == labels.shape == ids.shape
    assert inputs.dtype == labels.dtype == torch.long
    chosen = labels != IGNORE_INDEX

    # exact count per row: round(rate * candidates), at least one, at most all candidates
    for row in range(ids.shape[0]):
        n_cand = int((~special[row]).sum())
        want = min(max(round(cfg.mask_rate * n_cand), 1), n_cand)
        assert int(chosen[row].sum()) == want

    assert not (chosen & special).any(), "a special position was chosen"
    assert torch.equal(labels[chosen], ids[chosen])
    assert (labels[~chosen] == IGNORE_INDEX).all()
    assert torch.equal(inputs[~chosen], ids[~chosen])
    # chosen positions hold [MASK], a random non-special id, or the original
    changed = chosen & (inputs != ids) & (inputs != MASK)
    assert (inputs[changed] >= N_SPECIAL).all() and (inputs[changed] < vocab).all()


@settings(max_examples=50, deadline=None)
@given(masking_inputs())
def test_same_seed_same_output(case):
    a = _run(*case)
    b = _run(*case)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_different_seeds_choose_differently():
    ids = torch.randint(N_SPECIAL, 500, (4, 64), generator=torch.Generator().manual_seed(0))
    special = torch.zeros_like(ids, dtype=torch.bool)
    cfg = ObjectiveConfig()
    a = _run(ids, special, cfg, 500, 1)[1]
    b = _run(ids, special, cfg, 500, 2)[1]
    assert not torch.equal(a != IGNORE_INDEX, b != IGNORE_INDEX)


def _split_counts(cfg: ObjectiveConfig, draws: int = 20, vocab: int = 1000):
    g = torch.Generator().manual_seed(1234)
    n_mask = n_random = n_kept = 0
    for _ in range(draws):
        ids = torch.randint(N_SPECIAL, vocab, (32, 128), generator=g)
        special = torch.zeros_like(ids, dtype=torch.bool)
        special[:, 0] = True
        inputs, labels = mask_tokens(ids, special, g, cfg, vocab, MASK, N_SPECIAL)
        chosen = labels != IGNORE_INDEX
        n_mask += int((chosen & (inputs == MASK)).sum())
        n_kept += int((chosen & (inputs == ids)).sum())
        n_random += int((chosen & (inputs != MASK) & (inputs != ids)).sum())
    return n_mask, n_random, n_kept


def test_80_10_10_split_statistically():
    n_mask, n_random, n_kept = _split_counts(ObjectiveConfig())
    total = n_mask + n_random + n_kept
    assert total == 20 * 32 * round(0.15 * 127)
    # ~48k chosen positions: the standard error of each fraction is < 0.002; allow 0.01
    assert n_mask / total == pytest.approx(0.8, abs=0.01)
    assert n_random / total == pytest.approx(0.1, abs=0.01)  # includes the ~0.1% that re-draw the original id
    assert n_kept / total == pytest.approx(0.1, abs=0.01)


def test_split_follows_the_config():
    n_mask, n_random, n_kept = _split_counts(ObjectiveConfig(mask_token_prob=1.0, random_token_prob=0.0), draws=3)
    assert n_random == n_kept == 0 and n_mask > 0
    n_mask, n_random, n_kept = _split_counts(ObjectiveConfig(mask_token_prob=0.0, random_token_prob=1.0), draws=3)
    assert n_mask == 0 and n_random > 0.99 * (n_random + n_kept)


def test_random_replacements_are_never_special():
    cfg = ObjectiveConfig(mask_rate=0.5, mask_token_prob=0.0, random_token_prob=1.0)
    ids = torch.full((16, 64), N_SPECIAL + 1)
    special = torch.zeros_like(ids, dtype=torch.bool)
    inputs, labels = mask_tokens(ids, special, torch.Generator().manual_seed(0), cfg, N_SPECIAL + 3, MASK, N_SPECIAL)
    replaced = inputs[labels != IGNORE_INDEX]
    assert replaced.min() >= N_SPECIAL and replaced.max() < N_SPECIAL + 3
    # all three non-special ids turn up: replacements span the whole allowed range
    assert set(replaced.tolist()) == {N_SPECIAL, N_SPECIAL + 1, N_SPECIAL + 2}


def test_row_of_only_specials_is_left_alone():
    ids = torch.tensor([[2, 3, 0, 0], [2, 10, 11, 3]])
    special = ids < N_SPECIAL
    inputs, labels = mask_tokens(ids, special, torch.Generator().manual_seed(0), ObjectiveConfig(), 50, MASK, N_SPECIAL)
    assert (labels[0] == IGNORE_INDEX).all() and torch.equal(inputs[0], ids[0])
    assert int((labels[1] != IGNORE_INDEX).sum()) == 1  # 15% of 2 candidates rounds to 0, but at least one


def test_registry():
    assert MASKING_FUNCTIONS["random"] is mask_tokens


def test_sparse_mlm_loss_equals_dense_loss(tiny_model_config):
    from budgetlm.models import build_mlm_model

    torch.manual_seed(0)
    cfg = tiny_model_config()
    model = build_mlm_model(cfg).eval()
    ids = torch.randint(N_SPECIAL, cfg.vocab_size, (3, 20))
    ids[:, 0] = 2
    inputs, labels = mask_tokens(ids, ids < N_SPECIAL, torch.Generator().manual_seed(0), ObjectiveConfig(mask_rate=0.3),
                                 cfg.vocab_size, MASK, N_SPECIAL)
    loss, n, correct = mlm_loss(model, inputs, labels)
    hidden = model.encoder(inputs)  # (B, T, D)
    dense = model.heads["mlm"](hidden.reshape(-1, cfg.d_model))  # (B*T, V)
    ref = torch.nn.functional.cross_entropy(dense, labels.reshape(-1), ignore_index=IGNORE_INDEX)
    assert n == int((labels != IGNORE_INDEX).sum())
    assert torch.allclose(loss, ref, atol=1e-6)
    selected = labels.reshape(-1) != IGNORE_INDEX
    assert correct == int((dense[selected].argmax(-1) == labels.reshape(-1)[selected]).sum())


def test_count_correct_matches_argmax_and_loss_is_fp32_cross_entropy(tiny_model_config):
    from budgetlm.models import build_mlm_model
    from budgetlm.objectives.mlm import count_correct, vocabulary_loss

    torch.manual_seed(0)
    logits = torch.randn(50, 30)
    targets = logits.argmax(-1)
    targets[::2] = torch.randint(0, 30, (25,))  # half right by construction, the other half mostly wrong
    assert int(count_correct(logits, targets)) == int((logits.argmax(-1) == targets).sum())

    cfg = tiny_model_config()
    model = build_mlm_model(cfg)
    hidden, targets = torch.randn(7, cfg.d_model), torch.randint(0, cfg.vocab_size, (7,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = vocabulary_loss(model.heads["mlm"], hidden, targets)
    assert loss.dtype == torch.float32  # the log-softmax over the vocabulary never runs in bf16
