"""`budgetlm fill-mask`: top-k predictions for every [MASK] in a sentence."""

from __future__ import annotations

from pathlib import Path

import torch

from budgetlm.errors import UserError
from budgetlm.models.load import load
from budgetlm.tokenizer import MASK, load_tokenizer


@torch.no_grad()
def fill_mask(model_path: str | Path, text: str, top_k: int = 5, trust_pickle: bool = False) -> list[list[tuple[str, float]]]:
    model, meta, tok_file = load(model_path, trust_pickle)
    if "mlm" not in model.heads:
        raise UserError(f"this model has no masked-LM head (kind: {meta.get('kind')}); use a pre-trained model", path=str(model_path))
    tok = load_tokenizer(tok_file)
    ids = tok.encode(text).ids[: model.cfg.max_seq_len]
    positions = [i for i, t in enumerate(ids) if t == MASK]
    if not positions:
        raise UserError("the text has no [MASK] token")
    x = torch.tensor([ids])
    hidden = model.encoder(x)[0, positions]  # (M, D)
    probs = model.heads["mlm"](hidden).softmax(-1)  # (M, V)
    top = probs.topk(top_k, dim=-1)
    return [[(tok.id_to_token(int(i)), float(p)) for p, i in zip(ps, is_)] for ps, is_ in zip(top.values, top.indices)]
