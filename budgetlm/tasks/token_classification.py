"""Token classification (NER): word-level tags onto sub-tokens, loss, entity-level P/R/F1 with seqeval.

Each word's tag goes on its first sub-token; the other sub-tokens and the specials get -100 (no loss), as
in BERT's NER recipe. Predictions are read back at the same first sub-tokens, so a word-level tag sequence
comes out; a word cut off by truncation is predicted `O` (it still counts against recall).
"""

from __future__ import annotations

import sys

import torch.nn.functional as F
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

from budgetlm.data.batches import IGNORE_INDEX
from budgetlm.errors import UserError
from budgetlm.tasks.base import Columns, Split, TaskType, predict_logits
from budgetlm.tasks.conll import TaggedSentences, read_conll


def first_subtokens(word_ids: list[int | None], n_words: int) -> list[int]:
    """Position of each word's first sub-token; -1 for a word with no token (truncated or normalised away)."""
    first = [-1] * n_words
    for pos, w in enumerate(word_ids):
        if w is not None and first[w] < 0:
            first[w] = pos
    return first


def align_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """Per-token labels: the word's label on its first sub-token, IGNORE_INDEX elsewhere (specials, continuations)."""
    out = [IGNORE_INDEX] * len(word_ids)
    for w, pos in enumerate(first_subtokens(word_ids, len(word_labels))):
        if pos >= 0:
            out[pos] = word_labels[w]
    return out


def encode_words(tok, sentences: list[list[str]], max_len: int):
    """[CLS] sub-tokens [SEP] per pre-split sentence; returns (ids, word_ids per token)."""
    tok.enable_truncation(max_len)
    encs = tok.encode_batch(sentences, is_pretokenized=True)
    return [e.ids for e in encs], [e.word_ids for e in encs]


def tag_ids(data: TaggedSentences, labels: list[str]) -> list[list[int]]:
    index = {t: i for i, t in enumerate(labels)}
    out = []
    for tags, line in zip(data.tags, data.lines):
        for k, t in enumerate(tags):
            if t not in index:
                raise UserError(f"tag {t!r} does not occur in the training data (tags: {', '.join(labels)})", path=data.path, line=line + k)
        out.append([index[t] for t in tags])
    return out


def tag_names(train: TaggedSentences) -> list[str]:
    names = sorted({t for tags in train.tags for t in tags}, key=lambda t: (t != "O", t[2:], t[:2]))
    if names == ["O"]:
        print(f"warning: {train.path}: every token is tagged O; there are no entities to learn", file=sys.stderr)
    return names


def entity_metrics(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Entity-level (exact span and type) precision / recall / F1, micro-averaged, as conlleval and seqeval."""
    return {
        "f1": f1_score(gold, pred, zero_division=0), "precision": precision_score(gold, pred, zero_division=0),
        "recall": recall_score(gold, pred, zero_division=0), "token_accuracy": accuracy_score(gold, pred),
    }


class TokenClassification(TaskType):
    name = "token"
    description = "token classification"
    head_kind = "token"
    main_metric = "f1"

    def read(self, path: str, columns: Columns) -> TaggedSentences:
        return read_conll(path)

    def label_space(self, train: TaggedSentences) -> list[str]:
        return tag_names(train)

    def encode(self, tok, data: TaggedSentences, labels: list[str], max_len: int) -> Split:
        ids, word_ids = encode_words(tok, data.words, max_len)
        word_labels = tag_ids(data, labels)
        targets = [align_labels(w, l) for w, l in zip(word_ids, word_labels)]
        firsts = [first_subtokens(w, len(words)) for w, words in zip(word_ids, data.words)]
        return Split(data, ids, None, targets, {"first": firsts})

    def loss(self, logits, targets):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)

    def predict(self, model, head: str, split: Split, labels: list[str]) -> list[list[str]]:
        out = []
        for logits, first in zip(predict_logits(model, head, split.ids, split.type_ids), split.extra["first"]):
            best = logits.argmax(-1).tolist()
            out.append([labels[best[p]] if p >= 0 else "O" for p in first])
        return out

    def metrics(self, model, head: str, split: Split, labels: list[str]) -> dict:
        return entity_metrics(split.data.tags, self.predict(model, head, split, labels))


def encode_text_for_tagging(tok, text: str, max_len: int) -> tuple[list[str], Split]:
    """Split raw text into words the way the tokenizer pre-tokenizes (punctuation apart), then encode."""
    from tokenizers.pre_tokenizers import BertPreTokenizer

    words = [w for w, _ in BertPreTokenizer().pre_tokenize_str(text)]
    if not words:
        raise UserError("no words in the text to tag")
    data = TaggedSentences([words], [["O"] * len(words)], [1], "<text>")
    ids, word_ids = encode_words(tok, data.words, max_len)
    return words, Split(data, ids, None, [[IGNORE_INDEX] * len(ids[0])], {"first": [first_subtokens(word_ids[0], len(words))]})

