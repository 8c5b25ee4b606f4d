"""`export_hf`: a budgetlm run or model directory -> the export its model kind names, written atomically.

models/kinds.py gives each kind an export format (`Kind.export`); `EXPORTERS` maps the format to its writer:
a stock transformers class (hf.py), a sentence-transformers pipeline (sentence_transformers.py) or BART / mBART
(hf_seq2seq.py). A new format is one writer here and one table entry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from budgetlm.atomic import replace_dir
from budgetlm.errors import UserError
from budgetlm.exporters import hf_seq2seq
from budgetlm.exporters.hf import save_hf_dir, to_hf
from budgetlm.exporters.hf_families import EXPORT_NOTE, head_of, select_family
from budgetlm.exporters.sentence_transformers import save_sentence_transformer
from budgetlm.models import Model
from budgetlm.models.io import CONFIG, TOKENIZER, resolve_model_dir
from budgetlm.models.kinds import KINDS as MODEL_KINDS
from budgetlm.models.load import load
from budgetlm.version import __version__


def export_hf(model_dir: str | Path, out_dir: str | Path, verify: bool = True, trust_pickle: bool = False) -> Path:
    """budgetlm run or model dir -> transformers dir (config.json, model.safetensors, tokenizer files), atomically.

    A transformers dir is accepted too and goes through the import first: with `trust_pickle`, this turns a
    legacy pytorch_model.bin into model.safetensors (without it, the pickle is refused)."""
    given, out = Path(model_dir), Path(out_dir)
    if not given.exists():
        raise UserError("model path not found", path=str(given))
    src = resolve_model_dir(given)
    if src is None and not (given.is_dir() and (given / CONFIG).is_file()):
        raise UserError("not a budgetlm run or model directory (needs [model/]config.json + model.safetensors), "
                        "nor a transformers export", path=str(given))
    if src is not None and not (src / TOKENIZER).is_file():
        raise UserError(f"no {TOKENIZER} beside the model; an export needs the tokenizer", path=str(src))
    src = src or given
    if out.resolve() == src.resolve():
        raise UserError("the export directory must differ from the model directory", path=str(out))
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / EXPORT_NOTE).is_file())):
        raise UserError("exists and is not an earlier export; refusing to replace it", path=str(out))
    model, meta, tok_file = load(src, trust_pickle)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        family_name, architecture = _write_export(model, meta, tok_file, tmp, verify)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    note = {
        "source": str(src.resolve()),
        "source_budgetlm_version": meta.get("budgetlm_version"),
        "budgetlm_version": __version__,
        "family": family_name,
        "architecture": architecture,
        "kind": meta["kind"],
    }
    (tmp / EXPORT_NOTE).write_text(json.dumps(note, indent=2))
    replace_dir(tmp, out)
    return out


def _export_sentence_transformers(model: Model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """A sentence-transformers pipeline around the bare encoder."""
    return save_sentence_transformer(model, tok_file, out, verify=verify)


def _export_bart(model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """Encoder-decoders map onto BART / mBART (exporters/hf_seq2seq.py)."""
    hf = hf_seq2seq.to_hf(model, verify=verify)
    save_hf_dir(hf, tok_file, out, model.cfg.max_seq_len, token_types=False)
    return hf_seq2seq.select_family(model.cfg).name, type(hf).__name__


def _export_transformers(model: Model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """One of FAMILIES' transformers classes (an unexportable kind is refused by `head_of`)."""
    hf = to_hf(model, meta, verify=verify)
    family = select_family(model.cfg, meta["kind"], head_of(meta))
    save_hf_dir(hf, tok_file, out, model.cfg.max_seq_len, decoder=meta["kind"] == "clm",
                token_types=family.type_key is not None)
    return family.name, family.classes[meta["kind"]]


# models/kinds.py `Kind.export` -> the writer; a kind without one goes to `_export_transformers`, which refuses it
EXPORTERS = {"transformers": _export_transformers, "sentence-transformers": _export_sentence_transformers,
             "bart": _export_bart}


def _write_export(model: Model, meta: dict, tok_file: Path, out: Path, verify: bool) -> tuple[str, str]:
    """Write the export of `model` into the empty dir `out`; (family name, architecture) for the export note."""
    kind = MODEL_KINDS.get(meta["kind"])
    return EXPORTERS.get(kind.export if kind else None, _export_transformers)(model, meta, tok_file, out, verify)
