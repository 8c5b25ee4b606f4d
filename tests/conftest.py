"""Shared fixtures: a tiny synthetic English-like corpus, a tiny WordPiece tokenizer, tiny model configs.

Everything here is small enough for milliseconds on one CPU core. Tests never write outside pytest's tmp dirs:
the token cache ($BUDGETLM_CACHE) points into a session tmp dir, and the data root ($BUDGETLM_DATA) points to an
empty one, so a test that forgets to pass its own files fails fast instead of training on the real data sets.
"""

from __future__ import annotations

import random

import pytest
import torch

from budgetlm.models.config import ModelConfig
from budgetlm.tokenizer import train_tokenizer

DETERMINERS = "the a this that every some".split()
ADJECTIVES = "red blue green small big old young quiet happy dark".split()
NOUNS = "cat dog bird house tree river king queen ship garden child letter".split()
VERBS = "sees likes finds follows watches carries leaves remembers".split()
PREPOSITIONS = "near under over behind beside".split()
ADVERBS = "slowly quickly often never always".split()


def _sentence(rng: random.Random) -> str:
    def np_():
        words = [rng.choice(DETERMINERS)]
        if rng.random() < 0.6:
            words.append(rng.choice(ADJECTIVES))
        words.append(rng.choice(NOUNS))
        return " ".join(words)

    parts = [np_(), rng.choice(VERBS), np_()]
    if rng.random() < 0.4:
        parts += [rng.choice(PREPOSITIONS), np_()]
    if rng.random() < 0.3:
        parts.append(rng.choice(ADVERBS))
    s = " ".join(parts)
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "!", "?"])


def make_corpus(seed: int = 0, paragraphs: int = 40, sentences: tuple[int, int] = (2, 5)) -> str:
    """Blank-line separated paragraphs of grammatical nonsense (a few KB for the defaults)."""
    rng = random.Random(seed)
    paras = [" ".join(_sentence(rng) for _ in range(rng.randint(*sentences))) for _ in range(paragraphs)]
    return "\n\n".join(paras) + "\n"


def make_sentences(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [_sentence(rng) for _ in range(n)]


def pytest_configure(config):
    # the machine is shared with a running benchmark: one intra-op thread avoids oversubscribing 2 cores
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _session_dirs(tmp_path_factory):
    return {"cache": tmp_path_factory.mktemp("token-cache"), "data": tmp_path_factory.mktemp("empty-data-root")}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, _session_dirs):
    monkeypatch.setenv("BUDGETLM_CACHE", str(_session_dirs["cache"]))
    monkeypatch.setenv("BUDGETLM_DATA", str(_session_dirs["data"]))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return make_corpus(seed=0)


@pytest.fixture(scope="session")
def write_text_files(corpus_text):
    """write(d): train.txt (the whole corpus) and valid.txt (its first 8 paragraphs) in d; returns the paragraphs."""

    def write(d) -> list[str]:
        paragraphs = corpus_text.split("\n\n")
        (d / "train.txt").write_text(corpus_text)
        (d / "valid.txt").write_text("\n\n".join(paragraphs[:8]) + "\n")
        return paragraphs

    return write


@pytest.fixture
def corpus_file(tmp_path, corpus_text):
    p = tmp_path / "corpus.txt"
    p.write_text(corpus_text, encoding="utf-8")
    return p


@pytest.fixture
def valid_file(tmp_path):
    p = tmp_path / "valid.txt"
    p.write_text(make_corpus(seed=1, paragraphs=8), encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def tiny_tokenizer_file(tmp_path_factory, corpus_text):
    """A WordPiece tokenizer (vocab ~100) trained once per session on the tiny corpus."""
    tok = train_tokenizer("wordpiece", 100, corpus_text.split("\n\n"))
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_file):
    from budgetlm.tokenizer import load_tokenizer

    return load_tokenizer(tiny_tokenizer_file)


@pytest.fixture
def tiny_model_config(tiny_tokenizer):
    """Factory: a validated tiny ModelConfig (d_model 32, 2 layers, 2 heads, d_ff 64, 32 positions)."""

    def make(**overrides) -> ModelConfig:
        kw = dict(vocab_size=tiny_tokenizer.get_vocab_size(), d_model=32, n_layers=2, n_heads=2, d_ff=64,
                  max_seq_len=32, dropout=0.0)
        kw.update(overrides)
        cfg = ModelConfig(**kw)
        cfg.validate()
        return cfg

    return make


def tiny_train_overrides(budget: str = "6steps") -> list[str]:
    """Dotted overrides that make a pre-training run take a second or two."""
    return [
        "model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32",
        f"train.budget={budget}", "train.batch_size=4", "train.log_every=1", "train.threads=1",
        "train.checkpoint_every=1000steps",
    ]


@pytest.fixture
def tiny_overrides():
    return tiny_train_overrides


def memorised_pairs(vocab_size: int, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n random sources (2..7 tokens, right-padded) and n random targets (1..5 tokens + [SEP], -100 padded)."""
    from budgetlm.tokenizer import PAD, SEP, SPECIAL_TOKENS

    g = torch.Generator().manual_seed(seed)
    low = len(SPECIAL_TOKENS)
    sources = torch.randint(low, vocab_size, (n, 7), generator=g)
    sources[torch.arange(7) >= torch.randint(2, 8, (n, 1), generator=g)] = PAD
    targets = torch.randint(low, vocab_size, (n, 6), generator=g)
    lengths = torch.randint(2, 7, (n,), generator=g)
    targets[torch.arange(n), lengths - 1] = SEP
    return sources, targets.masked_fill(torch.arange(6) >= lengths[:, None], -100)


def train_memorising_model(cfg: ModelConfig, steps: int = 80, seed: int = 0):
    """An encoder-decoder that has memorised `memorised_pairs`: its greedy generations are varied and stop by
    themselves, which random weights never do. About a second of CPU."""
    from budgetlm.models import build_seq2seq_model
    from budgetlm.objectives.seq2seq import seq2seq_loss

    torch.manual_seed(seed)
    model = build_seq2seq_model(cfg).train()
    sources, targets = memorised_pairs(cfg.vocab_size, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss, _, _ = seq2seq_loss(model, sources, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def memorisation():
    """(memorised_pairs, train_memorising_model) for encoder-decoder tests in any folder."""
    return memorised_pairs, train_memorising_model


@pytest.fixture(scope="session")
def sentence_maker():
    """make_sentences(seed, n) for tests in sub-folders (importing `conftest` by name is ambiguous there)."""
    return make_sentences
