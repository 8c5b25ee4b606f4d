"""`budgetlm tag MODEL "text"`: the entities a fine-tuned token-classification model finds in a text."""

from __future__ import annotations

from pathlib import Path

from budgetlm.errors import UserError
from budgetlm.models.load import load
from budgetlm.tasks.conll import entities
from budgetlm.tasks.registry import TASK_TYPES
from budgetlm.tasks.token_classification import encode_text_for_tagging
from budgetlm.tokenizer import load_tokenizer


def token_head(meta: dict, wanted: str | None) -> str:
    heads = {name: h for name, h in (meta.get("heads") or {}).items() if h.get("head_kind") == "token"}
    if not heads:
        raise UserError(f"this model has no token-classification head (kind {meta.get('kind')!r}); "
                        "fine-tune one on a CoNLL file or --task wikiann first")
    if wanted:
        if wanted not in heads:
            raise UserError(f"no token head {wanted!r}; token heads: {', '.join(heads)}")
        return wanted
    if len(heads) > 1:
        raise UserError(f"the model has several token heads ({', '.join(heads)}); pick one with --head")
    return next(iter(heads))


def tag(model_path: str | Path, text: str, head: str | None = None, trust_pickle: bool = False) -> list[tuple[str, str]]:
    """(entity text, type) pairs in order of appearance."""
    if not text.strip():
        raise UserError("the text to tag is empty")
    model, meta, tok_file = load(model_path, trust_pickle)  # the same checks and messages as every stage
    head = token_head(meta, head)
    labels = meta["heads"][head]["labels"]
    tok = load_tokenizer(tok_file)
    words, split = encode_text_for_tagging(tok, text, model.cfg.max_seq_len)
    (tags,) = TASK_TYPES["token"].predict(model, head, split, labels)
    return entities(words, tags)
