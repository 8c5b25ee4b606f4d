"""Shared by export tests: offline transformers, and a tiny WordPiece tokenizer trained once per session."""

import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # exports must load from disk alone; never reach for the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from budgetlm.tokenizer import train_tokenizer

WORDS = "the a cat dog bird sat ran flew on under over mat tree house red blue green quickly slowly big small".split()


@pytest.fixture(scope="session")
def tokenizer_file(tmp_path_factory):
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(300)]
    tok = train_tokenizer("wordpiece", 100, texts)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path
