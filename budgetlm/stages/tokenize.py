"""`budgetlm tokenizer`: train a WordPiece / BPE / Unigram tokenizer on text files."""

from __future__ import annotations

import sys
from pathlib import Path

from budgetlm.atomic import replacing
from budgetlm.data.readers import ReadStats, check_input_file, read_texts
from budgetlm.errors import UserError
from budgetlm.stages.common import make_output_dir, tidy_on_failure
from budgetlm.tokenizer import TokenizerOptions, train_tokenizer


def train_tokenizer_stage(kind: str, vocab_size: int, files: list[str], out: str | Path, opts: TokenizerOptions,
                          doc_split: str = "blank", text_column: str = "") -> Path:
    paths = [check_input_file(f) for f in files]
    out = Path(out)
    with tidy_on_failure(out):  # a refused file leaves no empty --out behind
        make_output_dir(out)  # before training, which can take a while
        return _train(kind, vocab_size, paths, out, opts, doc_split, text_column)


def _train(kind: str, vocab_size: int, paths: list[Path], out: Path, opts: TokenizerOptions, doc_split: str,
           text_column: str) -> Path:
    stats = ReadStats()
    seen = [0]

    def texts():
        for p in paths:
            for t in read_texts(p, doc_split, text_column, stats):
                seen[0] += 1
                yield t

    tok = train_tokenizer(kind, vocab_size, texts(), opts)
    if not seen[0]:
        raise UserError(f"no text found in {', '.join(str(p) for p in paths)}")
    stats.warn()
    with replacing(out / "tokenizer.json") as tmp:
        tok.save(str(tmp))
    print(f"{kind} tokenizer with {tok.get_vocab_size()} tokens -> {out / 'tokenizer.json'}", file=sys.stderr)
    return out / "tokenizer.json"
