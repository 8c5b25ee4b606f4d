"""The fine-tuning method table and the pre-training recipe table: one entry each, chosen by lookup."""

from __future__ import annotations

from budgetlm.stages.config import FinetuneConfig
from budgetlm.stages.finetune import DEFAULT_METHODS, METHODS, task_method
from budgetlm.stages.pretrain import RECIPES
from budgetlm.tasks.registry import BUILTIN_TASKS, TASK_TYPES


def test_embedding_is_a_task_type_with_its_own_method():
    assert TASK_TYPES["embedding"].method == "embedding"
    assert BUILTIN_TASKS["stsb"].task_type == "embedding"
    assert all(not t.method for name, t in TASK_TYPES.items() if name != "embedding")


def test_task_method_follows_the_task_type():
    cfg = FinetuneConfig()
    cfg.data.task = "stsb"
    assert task_method(cfg) == "embedding"
    cfg.data.task = "sst2"
    assert task_method(cfg) == ""
    cfg.data.task, cfg.data.task_type = "", "embedding"
    assert task_method(cfg) == "embedding"


def test_every_method_and_default_is_in_the_table():
    assert set(METHODS) == {"head", "embedding", "text2text", "prompt"}
    assert set(DEFAULT_METHODS.values()) <= set(METHODS)
    for family, method in DEFAULT_METHODS.items():
        assert family in METHODS[method].families


def test_every_objective_has_a_recipe():
    assert set(RECIPES) == {"mlm", "rtd", "next_token", "span_corruption", "text_infilling"}
