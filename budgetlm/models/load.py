"""The one way to load a model: `load(path)` -> (model, meta, tokenizer.json path) from a run directory, a budgetlm
model directory or a transformers / sentence-transformers export. Every stage, the export and the tests call it.

budgetlm's own directories are read by models/io.py; a transformers directory is imported by exporters/hf_import.py
(`import_hf`, imported when needed so that models/ does not depend on exporters/ at import time).
Weights are read from safetensors files; a pickled pytorch_model.bin only with `trust_pickle`.
"""

from __future__ import annotations

from pathlib import Path

from budgetlm.errors import UserError
from budgetlm.models.io import CONFIG, TOKENIZER, load_model, resolve_model_dir

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def load(path: str | Path, trust_pickle: bool = False):
    """(model, meta, tokenizer.json path) from a run dir, a budgetlm model dir, or an exported HF dir."""
    p = Path(path)
    if not p.exists():
        raise UserError("model path not found", path=str(p))
    if p.is_file():
        what = "a pickled PyTorch file, which budgetlm never unpickles" if p.suffix.lower() in PICKLE_SUFFIXES else "a file"
        raise UserError(f"is {what}; give a run dir, a model dir or a transformers dir (config.json + model.safetensors)",
                        path=str(p))
    model_dir = resolve_model_dir(p)
    if model_dir is not None:
        model, meta = load_model(model_dir)
        return model, meta, model_dir / TOKENIZER
    if (p / CONFIG).is_file():
        from budgetlm.exporters.hf_import import import_hf

        return import_hf(p, trust_pickle)
    raise UserError("not a budgetlm run or model directory, nor a transformers export", path=str(p))
