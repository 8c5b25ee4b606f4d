"""`budgetlm generate`: continue a prompt with a decoder (run dir, model dir or exported transformers dir),
streaming the continuation as it is sampled."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from budgetlm.config import GenerateConfig
from budgetlm.errors import UserError
from budgetlm.generate import generate
from budgetlm.objectives.clm import END_OF_TEXT
from budgetlm.stages.common import load_any_model
from budgetlm.tokenizer import encode_plain, load_tokenizer


def read_prompt(prompt: str | None, prompt_file: str | None) -> str:
    if (prompt is None) == (prompt_file is None):
        raise UserError("give exactly one of --prompt and --prompt-file")
    if prompt_file is not None:
        p = Path(prompt_file)
        if not p.is_file():
            raise UserError("prompt file not found", path=str(p))
        try:
            prompt = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError("prompt file is not UTF-8 text", path=str(p)) from None
    if not prompt.strip():
        raise UserError("the prompt is empty" + (f" ({prompt_file})" if prompt_file else ""))
    return prompt


def generate_text(model_path: str | Path, prompt: str, cfg: GenerateConfig, out: TextIO | None = None) -> str:
    """Print the continuation of `prompt` to `out` token by token; return it. The prompt starts a new
    document: it follows an end-of-text token, as every document did in pre-training."""
    out = out or sys.stdout
    model, meta, tok_file = load_any_model(model_path)
    if "lm" not in model.heads:
        raise UserError(f"this model cannot generate text (kind: {meta.get('kind')}); give a decoder "
                        "(model.family=decoder) run, model or export", path=str(model_path))
    tok = load_tokenizer(tok_file)
    ids = [END_OF_TEXT] + encode_plain(tok, [prompt])[0]
    if len(ids) == 1:
        raise UserError("the prompt encodes to no tokens")
    keep = model.cfg.max_seq_len - 1
    if len(ids) > keep:
        print(f"note: the prompt has {len(ids)} tokens; model.max_seq_len is {model.cfg.max_seq_len}, so only its "
              f"last {keep} are used", file=sys.stderr)
        ids = ids[-keep:]
    generated: list[int] = []
    shown = ""

    def stream(token: int) -> None:  # print what the newest token adds to the decoded text
        nonlocal shown
        generated.append(token)
        text = tok.decode(generated)
        if text.startswith(shown):
            out.write(text[len(shown):])
            out.flush()
            shown = text

    generate(model, ids, cfg, on_token=stream)
    text = tok.decode(generated)
    out.write(text[len(shown):] + "\n")
    out.flush()
    return text
