"""First-sub-token label alignment round-trips to word tags; entity-level metrics on a hand-made example."""

from __future__ import annotations

import pytest
import torch

from budgetlm.data.batches import IGNORE_INDEX as IGNORE
from budgetlm.models.config import HeadConfig
from budgetlm.errors import UserError
from budgetlm.models import Model, TokenClassificationHead
from budgetlm.models.config import HeadConfig
from budgetlm.tasks.conll import TaggedSentences
from budgetlm.tasks.token_classification import (
    TokenClassification, align_labels, encode_words, entity_metrics, first_subtokens, tag_ids, tag_names,
)

SENTENCES = [["the", "gardenquietly", "king", "follows"], ["riverbird", "sees", "a", "dog", "!"]]
TAGS = [["O", "B-PER", "I-PER", "O"], ["B-LOC", "O", "O", "B-ORG", "O"]]


def test_alignment_hand_example():
    word_ids = [None, 0, 1, 1, 1, 2, None]  # [CLS] w0 w1 w1 w1 w2 [SEP]
    assert first_subtokens(word_ids, 3) == [1, 2, 5]
    assert align_labels(word_ids, [7, 8, 9]) == [IGNORE, 7, 8, IGNORE, IGNORE, 9, IGNORE]
    assert first_subtokens([None, 0, None], 2) == [1, -1]  # word 1 truncated away


def test_alignment_round_trips_through_the_tokenizer(tiny_tokenizer):
    data = TaggedSentences(SENTENCES, TAGS, [1, 6], "x")
    labels = tag_names(data)
    ids, word_ids = encode_words(tiny_tokenizer, data.words, 32)
    assert any(len(set(w)) < len(w) for w in word_ids)  # some word really is split into several sub-tokens
    for w_ids, words, gold in zip(word_ids, data.words, tag_ids(data, labels)):
        aligned = align_labels(w_ids, gold)
        assert sum(l != IGNORE for l in aligned) == len(words)
        back = [aligned[p] for p in first_subtokens(w_ids, len(words))]
        assert back == gold


def test_tag_names_put_o_first_and_unseen_tag_names_line():
    data = TaggedSentences(SENTENCES, TAGS, [1, 6], "train")
    names = tag_names(data)
    assert names[0] == "O" and set(names) == {"O", "B-PER", "I-PER", "B-LOC", "B-ORG"}
    dev = TaggedSentences([["a", "b"]], [["O", "B-MISC"]], [10], "dev.conll")
    with pytest.raises(UserError, match=r"dev\.conll:11: tag 'B-MISC' does not occur in the training data"):
        tag_ids(dev, names)


def test_entity_metrics_hand_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    # gold entities: PER(0-1), LOC(3), ORG(0); predicted: PER(0-1) ok, ORG(3) wrong, ORG(0) ok, LOC(1) wrong
    m = entity_metrics(gold, pred)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    assert m["token_accuracy"] == pytest.approx(4 / 6)


def test_predict_and_loss_shapes(tiny_tokenizer, tiny_model_config):
    cfg = tiny_model_config()
    task = TokenClassification()
    data = TaggedSentences(SENTENCES, TAGS, [1, 6], "x")
    labels = task.label_space(data)
    split = task.encode(tiny_tokenizer, data, labels, 32)
    model = Model(cfg, {"tok": TokenClassificationHead(cfg, HeadConfig(), len(labels))})
    pred = task.predict(model, "tok", split, labels)
    assert [len(p) for p in pred] == [len(w) for w in SENTENCES]
    logits = torch.zeros(2, 3, len(labels))
    targets = torch.tensor([[IGNORE, 0, IGNORE], [IGNORE, IGNORE, IGNORE]])
    assert float(task.loss(logits, targets)) == pytest.approx(torch.log(torch.tensor(float(len(labels)))).item())
