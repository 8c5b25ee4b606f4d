"""The task types `finetune` knows, and the built-in data sets it resolves by name in the data root."""

from __future__ import annotations

from dataclasses import dataclass

from budgetlm.tasks.base import TaskType
from budgetlm.tasks.classification import SequenceClassification
from budgetlm.tasks.embedding import SentenceEmbedding
from budgetlm.tasks.regression import Regression
from budgetlm.tasks.token_classification import TokenClassification

TASK_TYPES: dict[str, TaskType] = {
    "sentence": SequenceClassification("sentence", pair=False),
    "pair": SequenceClassification("pair", pair=True),
    "regression": Regression(),
    "token": TokenClassification(),
    "embedding": SentenceEmbedding(),  # trained by its own fine-tuning method (TaskType.method)
}


# built-in classification tasks' label words: the targets of text-to-text fine-tuning and the words a prompted decoder
# scores (prompt.verbalisers overrides them)
VERBALISERS = {"sst2": {"0": "negative", "1": "positive"}}


@dataclass(frozen=True)
class BuiltinTask:
    task_type: str
    train: tuple[str, ...]  # path parts inside the data root
    valid: tuple[str, ...] | None  # None: hold out every `valid_every`-th training example
    test: tuple[str, ...] | None = None
    valid_every: int = 0
    text_column: str = ""
    text_b_column: str = ""
    label_column: str = "label"
    header: tuple[str, ...] | None = None  # column names for files without a header row


BUILTIN_TASKS = {
    # GLUE SST-2: dev is the public evaluation split (test labels are not public)
    "sst2": BuiltinTask("sentence", ("sst2", "train.tsv"), ("sst2", "dev.tsv"), text_column="sentence"),
    # AG News (descriptions only): the data root has a 10k training sample and the official test set
    "agnews": BuiltinTask("sentence", ("agnews", "dev.tsv"), ("agnews", "test.tsv"), text_column="text",
                          header=("text", "label")),
    # MRPC original release (BOM, CRLF). GLUE's dev ids are not available: every 10th training pair
    # (index % 10 == 0, 408 of 4,076 -- the size of GLUE's dev split) is held out; the test set is the official one
    "mrpc": BuiltinTask("pair", ("mrpc", "msr_paraphrase_train.txt"), None, ("mrpc", "msr_paraphrase_test.txt"),
                        valid_every=10, text_column="#1 String", text_b_column="#2 String", label_column="Quality"),
    # WikiANN English (Rahimi et al. 2019 splits), `en:` token prefix, IOB2
    "wikiann": BuiltinTask("token", ("ner-wikiann-en", "train"), ("ner-wikiann-en", "dev"), ("ner-wikiann-en", "test")),
    # WNUT-17 emerging and rare entities, IOB2, 6 types
    "wnut17": BuiltinTask("token", ("ner-wnut17", "wnut17train.conll"), ("ner-wnut17", "emerging.dev.conll"),
                          ("ner-wnut17", "emerging.test.annotated")),
    # STS Benchmark: sentence pairs scored 0-5, for sentence embeddings
    "stsb": BuiltinTask("embedding", ("stsb", "sts-train.csv"), ("stsb", "sts-dev.csv"), ("stsb", "sts-test.csv")),
}


# the figure a task is judged by, when it is not its type's `main_metric` (e.g. weighted F1 for a class-imbalanced
# built-in task): task name -> results key. train.keep_best=main and `finetune --search` read it through main_metric.
MAIN_METRICS: dict[str, str] = {}


def main_metric(task: str, task_type: str) -> str:
    """The results key a task is judged by (higher is better): its own entry in MAIN_METRICS, else its type's."""
    return MAIN_METRICS.get(task) or TASK_TYPES[task_type].main_metric
