"""Which task a `data` section describes: a built-in name, or files whose task type and columns are inferred.

Inference looks at the training file only and says what it concluded (`TaskSpec.inferred`):
- token-per-line rows ending in IOB tags, with blank-line sentences (or a .conll suffix) -> token classification;
- a table with two text columns (sentence1/sentence2, question/sentence, text_a/text_b, #1 String/#2 String, ...)
  -> pair classification; one text column -> sentence classification;
- a label column holding numbers with fractions (3.8, 0.25) -> regression (on one text or a pair).
`task_type` and the column settings override each guess.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from budgetlm.data.readers import ReadStats, check_input_file, iter_jsonl, pick_text_column, read_table
from budgetlm.data.root import in_root
from budgetlm.errors import UserError
from budgetlm.tasks.base import Columns
from budgetlm.tasks.config import TaskDataConfig
from budgetlm.tasks.conll import looks_like_conll
from budgetlm.tasks.registry import BUILTIN_TASKS, TASK_TYPES

PAIR_COLUMNS = (
    ("sentence1", "sentence2"), ("question", "sentence"), ("text_a", "text_b"), ("#1 String", "#2 String"),
    ("question1", "question2"), ("premise", "hypothesis"), ("sentence_a", "sentence_b"), ("text1", "text2"),
)
LABEL_COLUMNS = ("label", "Quality", "score", "similarity", "gold_label", "labels")
SNIFF_ROWS = 2000


@dataclass(frozen=True)
class TaskSpec:
    name: str
    task_type: str
    train: str
    valid: str  # empty when held out from train (valid_every)
    test: str
    valid_every: int
    columns: Columns
    max_eval_examples: int
    inferred: str  # what was concluded and why, for the user
    select_every: int = 0  # hold out every N-th remaining training example as the selection split (0 = none)
    train_more: tuple[str, ...] = ()  # further training files of the same format, read after `train` as one set
    main_metric: str = ""  # the figure this task is judged by: a key of its evaluations (accuracy, weighted_f1, f1, ...)

    def train_files(self) -> list[str]:
        return [self.train, *self.train_more]

    def files(self) -> list[str]:
        return [f for f in (*self.train_files(), self.valid, self.test) if f]


def resolve_task(cfg: TaskDataConfig) -> TaskSpec:
    if cfg.task:
        if cfg.task not in BUILTIN_TASKS:
            raise UserError(f"unknown --task {cfg.task!r}; built-in tasks: {', '.join(BUILTIN_TASKS)}")
        t = BUILTIN_TASKS[cfg.task]
        columns = Columns(cfg.text_column or t.text_column, cfg.text_b_column or t.text_b_column,
                          cfg.label_column or t.label_column, t.header)
        return TaskSpec(cfg.name or cfg.task, t.task_type, str(in_root(*t.train)), str(in_root(*t.valid)) if t.valid else "",
                        str(in_root(*t.test)) if t.test else "", t.valid_every, columns, cfg.max_eval_examples,
                        f"built-in task {cfg.task}: {TASK_TYPES[t.task_type].description}", cfg.select_every,
                        tuple(str(in_root(*parts)) for parts in t.train_more),
                        t.main_metric or TASK_TYPES[t.task_type].main_metric)
    if not cfg.train or not (cfg.valid or cfg.valid_every):
        raise UserError("give --task NAME, or both --train FILE and --valid FILE")
    check_input_file(cfg.train)
    task_type, columns, why = infer_task(cfg)
    name = cfg.name or Path(cfg.train).stem
    return TaskSpec(name, task_type, cfg.train, cfg.valid, cfg.test, cfg.valid_every, columns, cfg.max_eval_examples,
                    f"{TASK_TYPES[task_type].description} ({why})", cfg.select_every,
                    main_metric=TASK_TYPES[task_type].main_metric)


def infer_task(cfg: TaskDataConfig) -> tuple[str, Columns, str]:
    """(task type, columns, reason) for the training file, honouring every explicit setting in `cfg`."""
    path = Path(cfg.train)
    if cfg.task_type == "token" or (not cfg.task_type and looks_like_conll(path)):
        return "token", Columns(), "given" if cfg.task_type else "token-per-line rows with IOB tags"
    header, labels = _sniff_table(path, cfg.label_column)
    label = cfg.label_column or next((c for c in LABEL_COLUMNS if c in header), "")
    if not label:
        raise UserError(f"no label column 'label'; columns are: {', '.join(header)} (use --label-column)", path=str(path))
    if label not in header:
        raise UserError(f"no label column {label!r}; columns are: {', '.join(header)} (use --label-column)", path=str(path))
    text, text_b = cfg.text_column, cfg.text_b_column
    if not text_b and cfg.task_type != "sentence":
        pair = next((p for p in PAIR_COLUMNS if p[0] in header and p[1] in header and (not text or text == p[0])), None)
        if pair:
            text, text_b = pair
    if text_b and text_b not in header:
        raise UserError(f"no column {text_b!r} for the second text; columns are: {', '.join(header)}", path=str(path))
    if not text:
        text = pick_text_column(header, "", path)
    numeric = _fractional(labels)
    if cfg.task_type:
        task_type, why = cfg.task_type, "given"
    elif numeric:
        task_type, why = "regression", f"numeric labels in {label!r}"
    else:
        task_type, why = ("pair", "two text columns") if text_b else ("sentence", "one text column")
    if task_type == "pair" and not text_b:
        raise UserError("pair classification needs a second text column: pass --text-b-column "
                        f"(columns are: {', '.join(header)})", path=str(path))
    if task_type == "sentence":
        text_b = ""
    cols = f"{text!r} + {text_b!r}" if text_b else repr(text)
    return task_type, Columns(text, text_b, label), f"{why}; text {cols}, label {label!r}"


def _sniff_table(path: Path, label_column: str) -> tuple[list[str], list[str]]:
    """Header (or JSON keys) and the first labels of a table, for inference."""
    stats = ReadStats()
    if path.suffix.lower() == ".jsonl":
        rows = list(itertools.islice(iter_jsonl(path, stats), SNIFF_ROWS))
        if not rows:
            raise UserError("no examples found", path=str(path))
        header = list(rows[0][1])
        label = label_column or next((c for c in LABEL_COLUMNS if c in header), "")
        return header, [str(obj.get(label, "")) for _, obj in rows]
    table = read_table(path, stats)
    label = label_column or next((c for c in LABEL_COLUMNS if c in table.header), "")
    if label not in table.header:
        return table.header, []
    i = table.header.index(label)
    return table.header, [row[i] for _, row in itertools.islice(table.rows, SNIFF_ROWS)]


def _fractional(labels: list[str]) -> bool:
    """All labels are numbers and some have a fraction (0/1 or 1..5 stay classes; 3.8 means a score)."""
    values = []
    for label in labels:
        try:
            values.append(float(label))
        except ValueError:
            return False
    return bool(values) and any(not v.is_integer() for v in values)
