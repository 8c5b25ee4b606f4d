"""Save / load a model directory: model.safetensors + config.json (+ tokenizer.json beside them).

config.json describes the checkpoint completely: format version, code version, kind ('mlm', 'clm', 'classifier',
'tagger', 'multitask', 'embedder', 'encoder', or 'seq2seq' for an encoder-decoder), the resolved ModelConfig, and for fine-tuned
encoders every head (kind, task type, head config, label names).
Weights are loaded with safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from budgetlm.atomic import fsync_dir, replace_dir
from budgetlm.config import from_dict
from budgetlm.errors import UserError
from budgetlm.models.config import ModelConfig
from budgetlm.models.encoder_decoder import EncoderDecoderModel
from budgetlm.models.kinds import build_kind
from budgetlm.models.model import Model
from budgetlm.runtime import check_fits_in_memory
from budgetlm.version import __version__

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"


def model_meta(model: Model | EncoderDecoderModel, kind: str, **extra) -> dict:
    meta = {
        "format": "budgetlm",
        "format_version": FORMAT_VERSION,
        "budgetlm_version": __version__,
        "kind": kind,
        "model": dataclasses.asdict(model.cfg),
    }
    meta.update(extra)
    return meta


def build_from_meta(meta: dict) -> Model | EncoderDecoderModel:
    """A fresh model of the kind config.json names (models/kinds.py), with its resolved ModelConfig."""
    cfg = from_dict(ModelConfig, meta["model"], prefix="model.")
    cfg.validate()
    check_fits_in_memory(cfg)  # the size check validate() did before budgetlm/runtime.py held it
    return build_kind(meta["kind"], cfg, meta)


def cpu_state_dict(model) -> dict:
    """The model's weights as contiguous CPU tensors, the form safetensors writes."""
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}


def save_model(model: Model | EncoderDecoderModel, out_dir: str | Path, meta: dict, tokenizer_file: str | Path | None) -> Path:
    """Write atomically: everything goes to `<out_dir>.tmp` first, then one rename."""
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(cpu_state_dict(model), str(tmp / WEIGHTS), metadata={"format": "pt"})
    (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
    if tokenizer_file is not None:
        shutil.copyfile(tokenizer_file, tmp / TOKENIZER)
    fsync_dir(tmp)
    replace_dir(tmp, out)
    return out


def is_model_dir(path: str | Path) -> bool:
    p = Path(path)
    if not (p / CONFIG).is_file() or not (p / WEIGHTS).is_file():
        return False
    try:
        meta = json.loads((p / CONFIG).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == "budgetlm"


def resolve_model_dir(path: str | Path) -> Path | None:
    """The model directory for a path that is one, or a run directory holding one in `model/`."""
    for candidate in (Path(path), Path(path) / "model"):
        if is_model_dir(candidate):
            return candidate
    return None


def load_model(path: str | Path) -> tuple[Model | EncoderDecoderModel, dict]:
    p = Path(path)
    try:
        meta = json.loads((p / CONFIG).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read model config ({e})", path=str(p / CONFIG)) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict) or "kind" not in meta:
        raise UserError("not a budgetlm model config (needs `kind` and a `model` mapping)", path=str(p / CONFIG))
    version = meta.get("format_version", 0)
    if not isinstance(version, int):
        raise UserError(f"format_version {version!r} is not an integer", path=str(p / CONFIG))
    if version > FORMAT_VERSION:
        raise UserError(f"model format {version} is newer than this budgetlm understands", path=str(p))
    model = build_from_meta(meta)
    try:
        state = load_file(str(p / WEIGHTS))
    except Exception as e:  # safetensors raises several types for corrupt files
        raise UserError(f"cannot read weights ({e})", path=str(p / WEIGHTS)) from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"weights do not match config: missing {missing[:3]}, unexpected {unexpected[:3]}", path=str(p))
    model.eval()
    return model, meta
