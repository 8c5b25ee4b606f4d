"""`budgetlm generate`: continue a prompt with a decoder (run dir, model dir or exported transformers dir),
streaming the continuation as it is sampled."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from budgetlm.data.readers import check_input_file
from budgetlm.errors import UserError
from budgetlm.generate import generate
from budgetlm.objectives.clm import END_OF_TEXT
from budgetlm.models.load import load
from budgetlm.generate.config import GenerateConfig
from budgetlm.tokenizer import encode_plain, load_tokenizer


def read_prompt(prompt: str | None, prompt_file: str | None) -> str:
    if (prompt is None) == (prompt_file is None):
        raise UserError("give exactly one of --prompt and --prompt-file")
    if prompt_file is not None:
        p = check_input_file(prompt_file)  # missing, a directory, empty, binary, UTF-16: one clear line
        raw = p.read_bytes()
        try:  # a prompt is used whole, so a stray byte is refused rather than replaced; a BOM is not text
            prompt = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError as e:
            line = raw[:e.start].count(b"\n") + 1
            raise UserError(f"the prompt file is not UTF-8 text (byte {raw[e.start]:#04x})", path=str(p), line=line) from None
    if not prompt.strip():
        raise UserError("the prompt is empty" + (f" ({prompt_file})" if prompt_file else ""))
    return prompt


def generate_text(model_path: str | Path, prompt: str, cfg: GenerateConfig, out: TextIO | None = None,
                  trust_pickle: bool = False) -> str:
    """Print the continuation of `prompt` to `out` token by token; return it. The prompt starts a new
    document: it follows an end-of-text token, as every document did in pre-training."""
    out = out or sys.stdout
    model, meta, tok_file = load(model_path, trust_pickle)
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
