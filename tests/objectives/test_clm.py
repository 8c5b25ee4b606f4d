"""Next-token targets and document ids: pure functions, checked directly."""

import torch
from hypothesis import given, settings, strategies as st

from budgetlm.objectives.clm import IGNORE_INDEX, document_ids, next_token_targets
from budgetlm.tokenizer import PAD, SEP


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), min_size=6, max_size=6), min_size=1, max_size=4))
def test_labels_are_the_next_token(rows):
    ids = torch.tensor(rows)
    inputs, labels = next_token_targets(ids)
    assert inputs.shape == labels.shape == (len(rows), 5)
    assert torch.equal(inputs, ids[:, :-1])
    expected = ids[:, 1:].masked_fill(ids[:, 1:] == PAD, IGNORE_INDEX)
    assert torch.equal(labels, expected)


def test_end_of_text_opens_the_next_document():
    inputs = torch.tensor([[7, 8, SEP, 9, SEP, SEP, 10], [SEP, 5, 6, 7, 8, 9, 10]])
    assert document_ids(inputs).tolist() == [[0, 0, 1, 1, 2, 3, 3], [1, 1, 1, 1, 1, 1, 1]]
