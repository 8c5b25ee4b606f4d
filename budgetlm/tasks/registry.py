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
    train_more: tuple[tuple[str, ...], ...] = ()  # further training files, read after `train` as one training set
    main_metric: str = ""  # the figure the task is judged by (keep-best, search); "" = its task type's main_metric


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
    # RuSentiment (Rogers et al. 2018): Russian VKontakte posts, 5 classes. The official training set is the random
    # sample + the preselected posts (28,218); every 10th of them (index % 10 == 0, 2,822) is held out for validation;
    # the test set is the official one (2,967). The paper reports weighted F1 (72.8; XLM-R-Large 78.3)
    "rusentiment": BuiltinTask("sentence", ("rusentiment", "rusentiment_random_posts.csv"), None,
                               ("rusentiment", "rusentiment_test.csv"), valid_every=10, text_column="text",
                               train_more=(("rusentiment", "rusentiment_preselected_posts.csv"),),
                               main_metric="weighted_f1"),
}
