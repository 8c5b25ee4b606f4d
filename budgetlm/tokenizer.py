"""Train and load tokenizers with HF `tokenizers`: WordPiece, BPE (byte-level), Unigram and character-level.

Every kind uses the same BERT-style special tokens at fixed ids, so objectives and heads need not care
which kind produced the ids. The saved `tokenizer.json` loads in `transformers.PreTrainedTokenizerFast`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from budgetlm.errors import UserError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))


@dataclass
class TokenizerOptions:
    lowercase: bool = True
    nfkc: bool = True
    strip_accents: bool = False
    min_frequency: int = 2


def _normalizer(opts: TokenizerOptions):
    steps = []
    if opts.nfkc:
        steps.append(normalizers.NFKC())
    if opts.strip_accents:
        steps += [normalizers.NFD(), normalizers.StripAccents()]
    if opts.lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _wordpiece(vocab_size: int, opts: TokenizerOptions):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=opts.min_frequency, special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
    )
    return tok, trainer


def _bpe(vocab_size: int, opts: TokenizerOptions):
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=opts.min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    return tok, trainer


def _unigram(vocab_size: int, opts: TokenizerOptions):
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="[UNK]")
    return tok, trainer


def _char(vocab_size: int, opts: TokenizerOptions):
    """One token per character (nanoGPT's Tiny Shakespeare setup): a WordLevel vocabulary over single
    characters, whitespace and newlines included; `vocab_size` caps it to the most frequent characters."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"(?m)."), behavior="isolated")  # Oniguruma: (?m) lets . match a newline
    tok.decoder = decoders.Fuse()  # concatenate, no spaces between tokens
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS)
    return tok, trainer


KINDS: dict[str, Callable] = {"wordpiece": _wordpiece, "bpe": _bpe, "unigram": _unigram, "char": _char}


def train_tokenizer(kind: str, vocab_size: int, texts: Iterable[str], opts: TokenizerOptions | None = None) -> Tokenizer:
    if kind not in KINDS:
        raise UserError(f"unknown tokenizer kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if vocab_size < len(SPECIAL_TOKENS) + 10:
        raise UserError(f"--vocab-size {vocab_size} is too small: the {len(SPECIAL_TOKENS)} special tokens need room")
    opts = opts or TokenizerOptions()
    tok, trainer = KINDS[kind](vocab_size, opts)
    tok.normalizer = _normalizer(opts)
    tok.train_from_iterator(_batched(texts), trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(s) != i:
            raise RuntimeError(f"special token {s} did not get id {i}")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)],
    )
    return tok


def _batched(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    batch = []
    for t in texts:
        batch.append(t)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def tokenizer_path(path: str | Path) -> Path:
    """Accept a directory holding tokenizer.json, or the file itself."""
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise UserError("no tokenizer.json here (train one with `budgetlm tokenizer`)", path=str(path))
    return p


def load_tokenizer(path: str | Path) -> Tokenizer:
    p = tokenizer_path(path)
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as e:  # tokenizers raises a generic Exception on bad JSON
        raise UserError(f"not a valid tokenizer file ({str(e).splitlines()[0]})", path=str(p)) from None
    for i, s in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(s) != i:
            raise UserError(f"tokenizer lacks {s} at id {i}; train it with `budgetlm tokenizer`", path=str(p))
    return tok


def encode_plain(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Ids without [CLS]/[SEP], batched across all cores by the Rust encoder."""
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def save_for_transformers(tok_file: str | Path, out_dir: str | Path, model_max_length: int, decoder: bool = False) -> None:
    """Write tokenizer.json + tokenizer_config.json so `AutoTokenizer.from_pretrained(out_dir)` works offline.

    For a decoder, [SEP] is the end-of-text token and `tokenizer(text)` gives `[SEP] text`: a prompt opens a new
    document, as in pre-training and `budgetlm generate` (not `[CLS] text [SEP]`, which would end it).
    """
    from transformers import PreTrainedTokenizerFast

    tok = load_tokenizer(tok_file)
    extra = {}
    if decoder:
        tok.post_processor = processors.TemplateProcessing(single="[SEP] $A", pair="[SEP] $A $B:1", special_tokens=[("[SEP]", SEP)])
        extra = dict(eos_token="[SEP]", bos_token="[SEP]")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length, **extra,
    )
    fast.save_pretrained(str(out_dir))


def conform_tokenizer_json(data: dict) -> tuple[dict, list[int] | None]:
    """Make a transformers tokenizer.json follow budgetlm's conventions: the special tokens at ids 0-4 and no
    built-in padding or truncation (budgetlm pads and truncates itself).

    Returns (new data, `inv`) where new id i was old id inv[i]; `inv` is None when no id moved. An imported
    model's embedding rows are permuted with the same `inv` (BERT's vocab puts [UNK] [CLS] [SEP] [MASK] at
    100-103, for example), so it computes exactly what it did before.
    """
    data = dict(data, padding=None, truncation=None)
    model = dict(data["model"])
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        old_ids = dict(vocab)
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...], id = position
        old_ids = {piece: i for i, (piece, _score) in enumerate(vocab)}
    else:
        raise UserError(f"cannot read the vocabulary of a {model.get('type')} tokenizer")
    for t in data.get("added_tokens") or []:
        old_ids.setdefault(t["content"], t["id"])
    missing = [s for s in SPECIAL_TOKENS if s not in old_ids]
    if missing:
        raise UserError(f"the tokenizer lacks special tokens {', '.join(missing)} that budgetlm needs")
    size = max(old_ids.values()) + 1
    pos, inv = list(range(size)), list(range(size))  # pos[old] = new, inv[new] = old
    for i, s in enumerate(SPECIAL_TOKENS):
        old, cur = old_ids[s], pos[old_ids[s]]
        if cur != i:
            other = inv[i]
            pos[old], pos[other], inv[i], inv[cur] = i, cur, old, other
    if inv == list(range(size)):
        return data, None
    if isinstance(vocab, dict):
        model["vocab"] = {piece: pos[i] for piece, i in vocab.items()}
    else:
        model["vocab"] = [vocab[old] for old in inv]
        if model.get("unk_id") is not None:
            model["unk_id"] = pos[model["unk_id"]]
    data["model"] = model
    data["added_tokens"] = [dict(t, id=pos[t["id"]]) for t in data.get("added_tokens") or []]
    data["post_processor"] = _remap_post_processor(data.get("post_processor"), pos)
    return data, inv


def _remap_post_processor(proc: dict | None, pos: list[int]) -> dict | None:
    if proc is None:
        return None
    kind = proc.get("type")
    if kind == "TemplateProcessing":
        special = {k: dict(v, ids=[pos[i] for i in v["ids"]]) for k, v in proc["special_tokens"].items()}
        return dict(proc, special_tokens=special)
    if kind in ("BertProcessing", "RobertaProcessing"):
        return dict(proc, sep=[proc["sep"][0], pos[proc["sep"][1]]], cls=[proc["cls"][0], pos[proc["cls"][1]]])
    if kind == "Sequence":
        return dict(proc, processors=[_remap_post_processor(p, pos) for p in proc["processors"]])
    if kind == "ByteLevel":
        return proc
    raise UserError(f"cannot renumber special tokens in a {kind} post-processor")
