"""`budgetlm finetune`: a pre-trained model trained (or prompted) for a task, by one of the methods in `METHODS`.

The method is the task type's own when it has one (embedding: tasks/registry.py), else `method` (--method),
else the model family's default (`DEFAULT_METHODS`). Each method is one file, run through the stage skeleton
(stages/skeleton.py) unless it trains nothing (prompt); a new method is that file plus one entry here.
`search.param` (--search lr) runs the method several times through stages/search.py.
"""

from __future__ import annotations

from pathlib import Path

from budgetlm import runtime
from budgetlm.errors import UserError
from budgetlm.stages import finetune_embedding, finetune_head, prompt, text2text
from budgetlm.stages.config import FinetuneConfig
from budgetlm.stages.method import Method, Start
from budgetlm.stages.search import check_validation_data, search_lr
from budgetlm.tasks.registry import BUILTIN_TASKS, TASK_TYPES

METHODS: dict[str, Method] = {
    "head": Method(finetune_head.finetune_head, finetune_head.FAMILIES, finetune_head.head_input_files,
                   data_options=("select_every", "group_by_length"), main_metric=finetune_head.head_main_metric),
    "embedding": Method(finetune_embedding.finetune_embedding, finetune_embedding.FAMILIES,
                        finetune_embedding.embedding_input_files, data_options=("group_by_length",),
                        main_metric=lambda cfg: finetune_embedding.MAIN_METRIC),
    "text2text": Method(text2text.finetune_text2text, text2text.FAMILIES, text2text.text2text_input_files,
                        main_metric=lambda cfg: text2text.MAIN_METRIC),
    "prompt": Method(prompt.finetune_prompt, prompt.FAMILIES, prompt.prompt_input_files),
}
DEFAULT_METHODS = {"encoder": "head", "encoder_decoder": "text2text", "decoder": "prompt"}

# data options only some methods take: the message when another method's run sets one
DATA_OPTION_ERRORS = {
    "select_every": "data.select_every applies to training a classification or tagging head, "
                    "not to embedding, text2text or prompt runs",
    "group_by_length": "data.group_by_length applies to classification, tagging and embedding runs, "
                       "not to text2text or prompt runs",
}


def task_method(cfg: FinetuneConfig) -> str:
    """The method the task's type always uses (embedding), or "" when --method or the model decides."""
    if cfg.tasks:
        return ""
    builtin = BUILTIN_TASKS.get(cfg.data.task)
    task_type = cfg.data.task_type or (builtin.task_type if builtin else "")
    return TASK_TYPES[task_type].method if task_type else ""


def input_files(cfg: FinetuneConfig) -> list[str]:
    """Every data file a run with `cfg` reads (an encoder's method when the model would decide)."""
    return METHODS[task_method(cfg) or cfg.method or DEFAULT_METHODS["encoder"]].input_files(cfg)


def finetune(cfg: FinetuneConfig, model_path: str | Path, run_dir: str | Path, resume: bool = False, scratch: bool = False,
             trust_pickle: bool = False) -> dict:
    runtime.resolve(cfg.train)  # before any data or model is read; each method records it in its config.json
    name = task_method(cfg) or cfg.method
    for option, message in DATA_OPTION_ERRORS.items():  # before any data or model is read
        if getattr(cfg.data, option) and name and option not in METHODS[name].data_options:
            raise UserError(message)
    start = Start(model_path, trust_pickle)
    if cfg.search.param:
        check_validation_data(cfg)  # before the model loads
    if not name:
        name = DEFAULT_METHODS[start.load()[0].cfg.family]
    method = METHODS[name]
    if cfg.search.param:  # --search lr: each trial and the final run are this method's runs
        return search_lr(cfg, Path(run_dir), resume, method.main_metric(cfg),
                         lambda c, d, r: method.run(c, start, d, r, scratch))
    return method.run(cfg, start, Path(run_dir), resume, scratch)
