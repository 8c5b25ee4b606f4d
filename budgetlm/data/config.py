"""Settings of the pre-training text (`DataConfig`, the `data:` section of `pretrain`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from budgetlm.errors import UserError
from budgetlm.schema import choice, setting

DOC_SPLITS = ("blank", "line", "file")
TOKENIZER_KINDS = ("wordpiece", "bpe", "unigram", "char")


@dataclass
class DataConfig:
    """Pre-training text."""

    SECTION: ClassVar[str] = "data"

    train: list[str] = setting([], "training files (.txt, .jsonl, .tsv, .csv, .zip of .txt; 'data:DIR/FILE' = in the data root; a glob such as "
                                 "'data:ruslit/prose/*/*.txt' = every file it matches, sorted); default: the English text in the data root")
    valid: str = setting("", "held-out file for evaluation ('data:DIR/FILE' = in the data root); default: WikiText-2 valid from the data root")
    tokenizer: str = setting("", "tokenizer directory or tokenizer.json; default: train a WordPiece one on the training text")
    text_column: str = setting("", "column/field holding text in .tsv/.csv/.jsonl files (default: text, sentence, ...)")
    doc_split: str = setting("blank", "in .txt files a document is a blank-line separated block ('blank'), one line ('line') or the whole file, blank lines kept ('file')")
    valid_fraction: float = setting(0.0, "hold out the last fraction of the training tokens for evaluation instead of data.valid (nanoGPT's 90/10 = 0.1)")
    cache_dir: str = setting("", "token cache directory (default: $BUDGETLM_CACHE or ~/.cache/budgetlm)")
    vocab_size: int = setting(16384, "vocabulary size when pretrain trains its own tokenizer")
    tokenizer_kind: str = setting("wordpiece", f"kind of tokenizer pretrain trains when none is given, one of {TOKENIZER_KINDS}")
    lowercase: bool = setting(True, "lowercase (and NFKC-normalise) text in the tokenizer pretrain trains")

    def validate(self) -> None:
        choice(self, "doc_split", DOC_SPLITS)
        choice(self, "tokenizer_kind", TOKENIZER_KINDS)
        if not 0.0 <= self.valid_fraction < 1.0:
            raise UserError(f"data.valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.vocab_size < 16:
            raise UserError("data.vocab_size must be >= 16")
