"""What every fine-tuning method shares: its table entry (`Method`), the model a run starts from (`Start`, loaded
once on first use and released once copied), the family check, and the files of single-task methods.

The table itself (`METHODS`) and the choice of method are in stages/finetune.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from budgetlm.stages.config import FinetuneConfig
from budgetlm.errors import UserError
from budgetlm.models.load import load
from budgetlm.tasks.resolve import resolve_task


@dataclass
class Start:
    """The model a fine-tuning run starts from: (model, meta, tokenizer.json path), loaded on first use."""

    path: str | Path
    trust_pickle: bool = False
    _loaded: tuple | None = None

    def load(self) -> tuple:
        if self._loaded is None:
            self._loaded = load(self.path, self.trust_pickle)
        return self._loaded

    def release(self) -> None:
        """Drop the pre-trained model once its weights are copied: only the copy being trained lives on."""
        self._loaded = None


# (cfg, start, run_dir, resume, scratch) -> results
MethodFn = Callable[[FinetuneConfig, Start, Path, bool, bool], dict]


@dataclass(frozen=True)
class Method:
    """One fine-tuning method: how it runs, the model families it accepts, the data options that apply to it,
    and every data file it reads (checked before anything trains, e.g. by `budgetlm evaluate`)."""

    run: MethodFn
    families: tuple[str, ...]
    input_files: Callable[[FinetuneConfig], list[str]]
    data_options: tuple[str, ...] = ()  # `data.<option>` settings only this method's runs may set
    # the validation figure a run is judged by (train.keep_best=main, --search); "" = none (several tasks, no training)
    main_metric: Callable[[FinetuneConfig], str] = lambda cfg: ""


def check_family(method: str, families: tuple[str, ...], start: Start) -> None:
    pretrained, meta, _ = start.load()
    family = pretrained.cfg.family
    if family not in families:
        raise UserError(f"--method {method} needs a model of family {' or '.join(families)}; "
                        f"this one is a(n) {family} (kind {meta.get('kind')})", path=str(start.path))


def single_task_files(cfg: FinetuneConfig, method: str) -> tuple:
    """(train, valid, text/input column, label/target column, header) for the text2text and prompt methods."""
    if cfg.tasks:
        raise UserError("multi-task `tasks:` needs --method head (an encoder with one head per task)")
    d = cfg.data
    if d.task:
        spec = resolve_task(d)
        if not spec.valid:
            raise UserError(f"--method {method} needs a validation file; built-in task {d.task} has none")
        return spec.train, spec.valid, spec.columns.text, spec.columns.label, spec.columns.header
    if not d.train or not d.valid:
        raise UserError("give --task NAME, or both --train FILE and --valid FILE")
    return d.train, d.valid, d.text_column, d.label_column or "label", None
