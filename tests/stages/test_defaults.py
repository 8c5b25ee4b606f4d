"""The settings a run starts from (stages/defaults.py): each task type's tuned preset for `finetune`, the budget
recipe for `pretrain`; explicit options win; the preset is said and recorded; small data is evaluated per epoch
and train.keep_best=main keeps the best evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from budgetlm.cli import main
from budgetlm.config import build_config, from_dict
from budgetlm.errors import UserError
from budgetlm.models.config import ModelConfig
from budgetlm.stages.config import FinetuneConfig, PretrainConfig
from budgetlm.config import preset_path
from budgetlm.stages.defaults import (
    FINETUNE_KEYS, PRETRAIN_KEYS, TYPE_PRESETS, finetune_config, preset_settings, pretrain_config, pretrain_defaults,
)
from budgetlm.tasks.registry import BUILTIN_TASKS, TASK_TYPES
from budgetlm.train.logs import read_metrics
from tests.test_cli import TINY_TRAIN, labelled_rows, run_cli, write_tsv
from tests.test_cli_tasks import conll_sentences, pair_rows

def preset(name: str) -> dict:
    return yaml.safe_load(Path(preset_path(name)).read_text())


@pytest.fixture
def files(tmp_path):
    """One training and one validation file per inferable task type."""
    write_tsv(tmp_path / "sentence.tsv", labelled_rows(0, 12))
    (tmp_path / "pair.tsv").write_text("\n".join(["sentence1\tsentence2\tlabel"] + ["\t".join(r) for r in pair_rows(0, 8)]))
    (tmp_path / "regression.tsv").write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"the cat sees a dog .\tthe dog sees a cat .\t{i / 4 + 0.25}\n" for i in range(8)))
    (tmp_path / "token.conll").write_text(conll_sentences(0, 6))
    (tmp_path / "pairs.txt").write_text("one sentence per line\nanother one\n")
    return tmp_path


def data_overrides(files, task_type: str) -> list[str]:
    train = {"sentence": "sentence.tsv", "pair": "pair.tsv", "regression": "regression.tsv", "token": "token.conll",
             "embedding": "pairs.txt"}[task_type]
    extra = ["data.task_type=embedding"] if task_type == "embedding" else []  # never inferred
    return [f"data.train={files / train}", f"data.valid={files / train}", *extra]


def test_every_task_type_has_a_preset_of_a_builtin_task_of_that_type():
    assert set(TYPE_PRESETS) == set(TASK_TYPES)
    for task_type, name in TYPE_PRESETS.items():
        task = preset(name)["data"]["task"]
        # regression is a head on a pair (MRPC's recipe); the STS-B preset trains a bi-encoder without a head
        assert BUILTIN_TASKS[task].task_type == ("pair" if task_type == "regression" else task_type)


@pytest.mark.parametrize("task_type", list(TYPE_PRESETS))
def test_the_inferred_task_type_picks_its_preset_and_takes_only_training_settings(files, task_type):
    cfg = finetune_config(None, data_overrides(files, task_type))
    name = TYPE_PRESETS[task_type]
    assert cfg.preset == name
    tuned = preset(name)
    assert cfg.train.lr == pytest.approx(tuned["train"]["lr"]) and cfg.train.batch_size == tuned["train"]["batch_size"]
    assert cfg.train.warmup == pytest.approx(tuned["train"].get("warmup", 0.1))
    assert cfg.data.group_by_length == tuned["data"].get("group_by_length", False)
    for key, value in tuned.get("head", {}).items():
        assert getattr(cfg.head, key) == value
    if task_type == "embedding":
        assert cfg.embedding.pooling == tuned["embedding"]["pooling"] and cfg.embedding.regression == "cosent"
        assert cfg.embedding.pairs == []  # the preset's data files are not taken
        assert cfg.data.max_seq_len == 0
    # neither the preset's data, its budget, nor how its figure was measured
    assert cfg.data.task == "" and cfg.train.budget == FinetuneConfig().train.budget
    assert cfg.train.clock == "wall" and cfg.train.threads == 0 and cfg.train.log_every == 10
    assert cfg.train.eval_per_epoch  # small data: evaluated every epoch


def test_a_builtin_task_takes_its_types_preset_without_reading_the_data_root():
    assert finetune_config(None, ["data.task=sst2"]).preset == "sst2-finetune"
    assert finetune_config(None, ["data.task=wikiann"]).train.lr == pytest.approx(1e-3)
    assert finetune_config(None, ["data.task=stsb"]).preset == "stsb-embedding-finetune"


def test_explicit_options_override_the_preset(files):
    cfg = finetune_config(None, data_overrides(files, "sentence") + ["train.lr=5e-5", "head.pooling=cls",
                                                                   "train.eval_per_epoch=false"])
    assert cfg.preset == "sst2-finetune"
    assert cfg.train.lr == pytest.approx(5e-5) and cfg.head.pooling == "cls" and not cfg.train.eval_per_epoch
    assert cfg.head.norm is True  # what the override left alone still comes from the preset


def test_preset_none_gives_the_bare_defaults(files):
    cfg = finetune_config(None, data_overrides(files, "token") + ["preset=none"])
    bare = build_config(FinetuneConfig, None, data_overrides(files, "token"))
    assert cfg.preset == "none" and cfg.train == bare.train and cfg.head == bare.head and not cfg.data.group_by_length


def test_a_named_preset_is_taken_whatever_the_type(files):
    cfg = finetune_config(None, data_overrides(files, "sentence") + ["preset=wikiann-finetune"])
    assert cfg.preset == "wikiann-finetune" and cfg.train.lr == pytest.approx(1e-3) and cfg.data.group_by_length


@pytest.mark.parametrize("name, message", [("no-such-preset", "no preset named .no-such-preset.; the presets are: "), ("../x", "preset='../x'")])
def test_a_bad_preset_name_is_a_user_error(files, name, message):
    with pytest.raises(UserError, match=message):
        finetune_config(None, data_overrides(files, "sentence") + [f"preset={name}"])


def test_a_config_file_is_the_settings_unless_it_asks_for_the_preset(files, tmp_path):
    plain = tmp_path / "mine.yaml"
    plain.write_text("train:\n  budget: 50steps\n")
    cfg = finetune_config(str(plain), data_overrides(files, "sentence"))
    assert cfg.preset == "none" and cfg.train.lr == pytest.approx(FinetuneConfig().train.lr)
    asking = tmp_path / "asking.yaml"
    asking.write_text("preset: auto\ntrain:\n  lr: 1.0e-5\n")
    cfg = finetune_config(str(asking), data_overrides(files, "sentence"))
    assert cfg.preset == "sst2-finetune" and cfg.head.pooling == "mean" and cfg.train.lr == pytest.approx(1e-5)
    # the same with preset=auto given on the command line
    assert finetune_config(str(plain), data_overrides(files, "pair") + ["preset=auto"]).preset == "mrpc-finetune"


def test_no_preset_when_the_type_cannot_be_told(files, tmp_path):
    (tmp_path / "t2t.tsv").write_text("input\ttarget\na\tb\n")
    assert finetune_config(None, [f"data.train={tmp_path / 't2t.tsv'}", f"data.valid={tmp_path / 't2t.tsv'}"]).preset == "none"
    assert finetune_config(None, data_overrides(files, "sentence") + ["method=text2text"]).preset == "none"
    # a missing file is reported by the stage, with its own message; the config still builds
    assert finetune_config(None, [f"data.train={tmp_path / 'missing.tsv'}", "data.valid=x.tsv"]).preset == "none"


def test_pretrain_without_config_is_the_budget_recipe():
    recipe = preset("sst2-budget-pretrain")
    cfg = pretrain_config()
    assert cfg.preset == "sst2-budget-pretrain"
    assert cfg.model == from_dict(ModelConfig, recipe["model"])
    assert cfg.objective.mask_rate == recipe["objective"]["mask_rate"]
    for key in ("lr", "warmup", "decay", "weight_decay", "batch_size", "precision", "compile"):
        assert getattr(cfg.train, key) == recipe["train"][key], key
    assert cfg.train.budget == PretrainConfig().train.budget and cfg.data.train == []  # not its budget or data
    assert pretrain_defaults().model == cfg.model  # what --help lists


def test_pretrain_recipe_yields_to_options_a_config_file_and_other_families(tmp_path):
    assert pretrain_config(None, ["model.d_model=64"]).model.d_model == 64
    assert pretrain_config(None, ["model.d_model=64"]).model.position == "rope"
    assert pretrain_config(None, ["preset=none"]).model == ModelConfig()
    decoder = pretrain_config(None, ["model.family=decoder", "model.type_vocab_size=0"])
    assert decoder.preset == "none" and decoder.model.d_model == ModelConfig().d_model
    assert pretrain_config(None, ["objective.name=rtd"]).preset == "none"
    f = tmp_path / "mine.yaml"
    f.write_text("model:\n  d_model: 64\n")
    assert pretrain_config(str(f)).preset == "none" and pretrain_config(str(f)).model.position == "learned"


def test_preset_keys_name_real_settings():
    """Every key taken from a preset is a field of the config (a typo would silently take nothing)."""
    for cls, keys in ((FinetuneConfig, FINETUNE_KEYS), (PretrainConfig, PRETRAIN_KEYS)):
        for key in keys:
            node = cls()
            for part in key.split("."):
                assert hasattr(node, part), f"{cls.__name__}: {key}"
                node = getattr(node, part)
    head = preset("sst2-finetune")["head"]
    assert preset_settings("sst2-finetune", ("train.lr", "train.nope", "head")) == {"train": {"lr": 3.0e-4}, "head": head}


def test_pretrain_help_lists_the_recipe_values(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    out = capsys.readouterr().out
    assert "model.d_model=128 " in out and "model.position='rope'" in out and "preset='auto'" in out
    assert "objective.name=''" in out  # unresolved: the family's usual objective


def test_a_finetune_run_says_and_records_its_preset_and_evaluates_every_epoch(tiny_encoder, tmp_path, capsys):
    d, out = tiny_encoder, tmp_path / "ft"
    code, _, err = run_cli(capsys, "finetune", "--model", d / "pre", "--train", d / "train.tsv", "--valid", d / "dev.tsv",
                           "--budget", "14steps", "--out", out, *TINY_TRAIN, "train.batch_size=8")
    assert code == 0, err
    assert "settings: the tuned ones of the preset sst2-finetune (" in err and "train.lr=0.0003" in err
    assert json.loads((out / "config.json").read_text())["preset"] == "sst2-finetune"
    results = json.loads((out / "results.json").read_text())
    assert results["preset"] == "sst2-finetune"
    assert results["epochs"] == pytest.approx(14 * 8 / 48, abs=0.01)
    # 48 examples in batches of 8: an evaluation every 6 steps (6, 12), then the final one at 14
    assert [r["step"] for r in read_metrics(out) if "eval_accuracy" in r] == [6, 12, 14]
    assert json.loads((out / "config.json").read_text())["train"]["eval_every"] == 6


def test_keep_best_main_keeps_the_best_evaluated_model(tiny_encoder, tmp_path, capsys, monkeypatch):
    """Per-epoch evaluations scripted to score 0.5, 0.9, 0.6 and (final) 0.7: the saved model is the one evaluated
    second, and results.json reports its figure."""
    scores, seen = [0.5, 0.9, 0.6, 0.7, 0.9], []

    def scripted(model, head, split, labels):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {"accuracy": scores[len(seen) - 1], "macro_f1": 0.0}

    monkeypatch.setattr(TASK_TYPES["sentence"], "metrics", scripted)
    d, out = tiny_encoder, tmp_path / "ft"
    code, _, err = run_cli(capsys, "finetune", "--model", d / "pre", "--train", d / "train.tsv", "--valid", d / "dev.tsv",
                           "--budget", "24steps", "--out", out, *TINY_TRAIN, "train.batch_size=8", "train.keep_best=main")
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["train"]["keep_best"] == "accuracy"  # main: the task's figure
    assert [r["step"] for r in read_metrics(out) if "eval_accuracy" in r] == [6, 12, 18, 24, 24]
    results = json.loads((out / "results.json").read_text())
    assert results["accuracy"] == 0.9 and results["kept_step"] == 12
    saved = load_file(str(out / "model" / "model.safetensors"))
    assert set(saved) == set(seen[1]) and all(torch.equal(saved[k], seen[1][k]) for k in saved)
    assert not torch.equal(seen[1]["encoder.tok_emb.weight"], seen[3]["encoder.tok_emb.weight"])


def test_keep_best_needs_periodic_or_per_epoch_evaluation():
    with pytest.raises(UserError, match="train.eval_every or train.eval_per_epoch"):
        build_config(FinetuneConfig, None, ["train.keep_best=main"])
    assert build_config(FinetuneConfig, None, ["train.keep_best=main", "train.eval_per_epoch=true"]).train.keep_best == "main"
