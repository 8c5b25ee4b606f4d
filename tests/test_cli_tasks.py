"""Downstream tasks through the CLI on tiny data: pair classification (generic file and built-in MRPC from a
data root), NER + `tag`, multi-task from one YAML, `evaluate`, and bad inputs as exit code 2."""

from __future__ import annotations

import json
import random

import pytest

from budgetlm.cli import main
from tests.test_cli import TINY_MODEL, TINY_TRAIN, assert_user_error, run_cli
from tests.test_cli_embedding import sts_lines
from tests.tasks.test_rusentiment import write_rusentiment

TINY = ["train.batch_size=4", "train.log_every=1", "train.threads=1", "train.checkpoint_every=1000steps"]
# the default pre-training (the budget recipe's encoder: RoPE, GeGLU, ...) at a tiny size, uncompiled and in fp32 so
# that it takes a second; fine-tuning then starts from each task type's preset, as a user's run does
RECIPE_MODEL = [k for k in TINY_MODEL if k != "preset=none"] + ["train.compile=false", "train.precision=fp32"]
PEOPLE, PLACES = ["king", "queen", "child"], ["river", "garden", "house"]


def conll_sentences(seed: int, n: int) -> str:
    """`token<TAB>tag` sentences: people are B-PER, places B-LOC (with an I-LOC 'tree' sometimes)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        rows = [("the", "O"), (rng.choice(PEOPLE), "B-PER"), (rng.choice(["sees", "likes"]), "O"), ("the", "O"),
                (rng.choice(PLACES), "B-LOC")]
        if rng.random() < 0.5:
            rows.append(("tree", "I-LOC"))
        rows.append((".", "O"))
        out.append("\n".join(f"{w}\t{t}" for w, t in rows))
    return "\n\n".join(out) + "\n"


def pair_rows(seed: int, n: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a = f"the {rng.choice(PEOPLE)} {rng.choice(['sees', 'likes'])} a dog ."
        rows.append((a, a if i % 2 else f"a bird {rng.choice(['follows', 'finds'])} the {rng.choice(PLACES)} .", str(i % 2)))
    return rows


def write_mrpc(path, rows):
    lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [f"{l}\t{i}\t{i + 1}\t{a}\t{b}" for i, (a, b, l) in enumerate(rows)]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, write_text_files):
    """A tiny pre-trained model, generic task files, and a data root holding tiny MRPC and WikiANN files."""
    d = tmp_path_factory.mktemp("tasks-cli")
    write_text_files(d)
    root = d / "root"
    (root / "mrpc").mkdir(parents=True)
    write_mrpc(root / "mrpc" / "msr_paraphrase_train.txt", pair_rows(0, 40))
    write_mrpc(root / "mrpc" / "msr_paraphrase_test.txt", pair_rows(1, 12))
    (root / "ner-wikiann-en").mkdir()
    for split, seed, n in [("train", 0, 30), ("dev", 1, 8), ("test", 2, 8)]:
        text = conll_sentences(seed, n)
        (root / "ner-wikiann-en" / split).write_text("\n".join(f"en:{l}" if l else l for l in text.split("\n")))
    (root / "stsb").mkdir()
    for split, seed, n in [("train", 0, 24), ("dev", 1, 12), ("test", 2, 12)]:
        (root / "stsb" / f"sts-{split}.csv").write_text("\n".join(sts_lines(seed, n)) + "\n")
    write_rusentiment(root, n_random=30, n_preselected=10, n_test=10)
    (d / "train.conll").write_text(conll_sentences(0, 30))
    (d / "dev.conll").write_text(conll_sentences(1, 8))
    header = "sentence1\tsentence2\tlabel"
    (d / "pairs-train.tsv").write_text("\n".join([header] + ["\t".join(r) for r in pair_rows(2, 30)]) + "\n")
    (d / "pairs-dev.tsv").write_text("\n".join([header] + ["\t".join(r) for r in pair_rows(3, 8)]) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        mp.setenv("BUDGETLM_DATA", str(root))
        assert main(["tokenizer", "--vocab-size", "100", "--out", str(d / "tok"), str(d / "train.txt")]) == 0
        assert main(["pretrain", "--tokenizer", str(d / "tok"), "--train", str(d / "train.txt"), "--valid", str(d / "valid.txt"),
                     "--budget", "4steps", "--out", str(d / "pre"), *RECIPE_MODEL, *TINY_TRAIN]) == 0
    return d


@pytest.fixture(autouse=True)
def _root(setup, monkeypatch):
    monkeypatch.setenv("BUDGETLM_DATA", str(setup / "root"))


def test_pair_file_is_inferred_and_trained(setup, tmp_path, capsys):
    code, out, err = run_cli(capsys, "finetune", "--model", setup / "pre", "--train", setup / "pairs-train.tsv",
                             "--valid", setup / "pairs-dev.tsv", "--budget", "3steps", "--out", tmp_path / "ft", *TINY)
    assert code == 0, err
    assert "sentence-pair classification (two text columns; text 'sentence1' + 'sentence2', label 'label')" in err
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert {"accuracy", "f1", "macro_f1"} <= set(results) and results["steps"] == 3
    meta = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert meta["kind"] == "classifier" and meta["heads"]["cls"]["task_type"] == "pair"
    # a pair classifier exports like a sentence classifier (the export checks logit parity itself)
    code, out, err = run_cli(capsys, "export", tmp_path / "ft", "--format", "hf", "--out", tmp_path / "hf")
    assert code == 0, err
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["id2label"] == {"0": "0", "1": "1"}


def test_builtin_mrpc_holds_out_every_tenth_pair_and_reports_test(setup, tmp_path, capsys):
    code, out, err = run_cli(capsys, "finetune", "--model", setup / "pre", "--task", "mrpc", "--budget", "2steps",
                             "--out", tmp_path / "ft", *TINY)
    assert code == 0, err
    assert "mrpc: 36 train / 4 valid / 12 test, 2 labels" in err
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert {"test_accuracy", "test_f1", "accuracy"} <= set(results)


def test_selection_split_and_keep_best_with_length_grouped_batches(setup, tmp_path, capsys):
    code, out, err = run_cli(capsys, "finetune", "--model", setup / "pre", "--task", "mrpc", "--budget", "6steps",
                             "--out", tmp_path / "ft", *TINY, "data.select_every=4", "data.group_by_length=true",
                             "train.eval_every=2", "train.keep_best=select_accuracy")
    assert code == 0, err
    assert "mrpc: 27 train / 4 valid / 12 test / 9 held out for selection, 2 labels" in err  # 36 after MRPC's 10% valid
    evals = [r for r in map(json.loads, (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()) if "eval_accuracy" in r]
    assert [r["step"] for r in evals][:3] == [2, 4, 6] and all("eval_select_accuracy" in r for r in evals)
    best = max(evals[:3], key=lambda r: r["eval_select_accuracy"])  # ties: the earliest
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["select_accuracy"] == best["eval_select_accuracy"]
    assert results.get("kept_step", 6) == best["step"]


def test_rusentiment_preset_keeps_the_best_weighted_f1_and_reports_it_on_test(setup, tmp_path, capsys):
    code, out, err = run_cli(capsys, "finetune", "--model", setup / "pre", "--config", "rusentiment-finetune",
                             "--budget", "4steps", "--out", tmp_path / "ft", *TINY, "train.eval_every=2")
    assert code == 0, err
    assert "rusentiment: 36 train / 4 valid / 10 test, 5 labels" in err  # 30 random + 10 preselected posts, every 10th held out
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert {"weighted_f1", "macro_f1", "accuracy", "test_weighted_f1", "test_macro_f1", "test_accuracy"} <= set(results)
    evals = [r for r in map(json.loads, (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()) if "eval_weighted_f1" in r]
    assert results["weighted_f1"] == max(r["eval_weighted_f1"] for r in evals)  # train.keep_best=weighted_f1
    assert results["tasks"]["rusentiment"]["main_metric"] == "weighted_f1"
    assert results["tasks"]["rusentiment"]["more_train_files"][0].endswith("rusentiment_preselected_posts.csv")
    code, out, err = run_cli(capsys, "evaluate", setup / "pre", "--tasks", "rusentiment", "--budget", "2steps",
                             "--out", tmp_path / "ev", *TINY)
    assert code == 0, err
    assert "| rusentiment (test weighted F1) | average |" in out
    (score,) = json.loads((tmp_path / "ev" / "report.json").read_text())["scores"]
    ran = json.loads((tmp_path / "ev" / "rusentiment" / "seed0" / "results.json").read_text())
    assert score["value"] == ran["test_weighted_f1"] and score["extra"]["macro-F1"] == ran["test_macro_f1"]


def test_ner_finetune_then_tag(setup, tmp_path, capsys):
    code, out, err = run_cli(capsys, "finetune", "--model", setup / "pre", "--train", setup / "train.conll",
                             "--valid", setup / "dev.conll", "--budget", "30steps", "--out", tmp_path / "ner",
                             *TINY, "train.lr=3e-3")
    assert code == 0, err
    assert "token classification (token-per-line rows with IOB tags)" in err
    results = json.loads((tmp_path / "ner" / "results.json").read_text())
    assert {"f1", "precision", "recall", "token_accuracy"} <= set(results)
    assert results["f1"] > 0.8, results  # the tiny task is learnable: a person after "the", then a place
    code, out, err = run_cli(capsys, "tag", tmp_path / "ner", "the queen likes the garden .")
    assert code == 0, err
    assert out.splitlines() == ["PER\tqueen", "LOC\tgarden"]


def test_multitask_config(setup, tmp_path, capsys):
    cfg = tmp_path / "mt.yaml"
    cfg.write_text(f"tasks:\n  - task: mrpc\n  - name: ner\n    train: {setup / 'train.conll'}\n    valid: {setup / 'dev.conll'}\n"
                   "multitask:\n  sampling: proportional\n")
    code, out, err = run_cli(capsys, "finetune", "--model", setup / "pre", "--config", cfg, "--budget", "4steps",
                             "--out", tmp_path / "mt", *TINY)
    assert code == 0, err
    results = json.loads((tmp_path / "mt" / "results.json").read_text())
    assert {"mrpc/accuracy", "mrpc/test_accuracy", "ner/f1"} <= set(results)
    meta = json.loads((tmp_path / "mt" / "model" / "config.json").read_text())
    assert meta["kind"] == "multitask" and set(meta["heads"]) == {"mrpc", "ner"}
    code, out, err = run_cli(capsys, "tag", tmp_path / "mt", "the king sees the river .")
    assert code == 0, err  # the only token head is picked


def test_evaluate_writes_table_json_and_chart(setup, tmp_path, capsys):
    code, out, err = run_cli(capsys, "evaluate", setup / "pre", "--tasks", "mrpc,wikiann,stsb", "--budget", "2steps",
                             "--out", tmp_path / "ev", "train.batch_size=4")
    assert code == 0, err
    assert "| mrpc (test accuracy) | wikiann (test entity F1) | stsb (test Spearman) | average |" in out
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert [s["task"] for s in report["scores"]] == ["mrpc", "wikiann", "stsb"]
    assert all(0.0 <= s["value"] <= 1.0 for s in report["scores"][:2])
    stsb = json.loads((tmp_path / "ev" / "stsb" / "seed0" / "results.json").read_text())
    assert report["scores"][2]["value"] == pytest.approx(stsb["test_spearman"] / 100)  # a correlation, not x100
    assert -1.0 <= report["scores"][2]["value"] <= 1.0
    assert (tmp_path / "ev" / "report.png").stat().st_size > 1000
    assert (tmp_path / "ev" / "report.md").read_text().count("| mrpc |") == 1
    # finished runs are reused: a second call trains nothing and reports the same
    code, out2, err = run_cli(capsys, "evaluate", setup / "pre", "--tasks", "mrpc,wikiann,stsb", "--budget", "2steps",
                              "--out", tmp_path / "ev", "train.batch_size=4")
    assert code == 0 and out2 == out and "fine-tuning for" not in err


def test_bad_inputs_exit_2(setup, tmp_path, capsys):
    pre = setup / "pre"
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert_user_error(capsys, ["finetune", "--model", pre, "--train", empty, "--valid", setup / "pairs-dev.tsv",
                               "--out", tmp_path / "a"], f"{empty}: file is empty")
    nolabel = tmp_path / "nolabel.tsv"
    nolabel.write_text("sentence1\tsentence2\ttarget\na\tb\t1\n")
    assert_user_error(capsys, ["finetune", "--model", pre, "--train", nolabel, "--valid", setup / "pairs-dev.tsv",
                               "--out", tmp_path / "b"], "no label column 'label'", "--label-column", only_output=False)
    dev = tmp_path / "dev.conll"
    dev.write_text("the\tO\nking\tB-ORG\n\nthe\tO\n")
    line = assert_user_error(capsys, ["finetune", "--model", pre, "--train", setup / "train.conll", "--valid", dev,
                                      "--out", tmp_path / "c", "--budget", "1steps"],
                             "tag 'B-ORG' does not occur in the training data", only_output=False)
    assert f"{dev}:2:" in line
    ragged = tmp_path / "ragged.conll"
    ragged.write_text("the\tO\nking\tB-PER\n\nthe king\tO\tx\n")
    assert_user_error(capsys, ["finetune", "--model", pre, "--train", ragged, "--valid", dev, "--out", tmp_path / "d"],
                      f"{ragged}:4: expected 2 columns", only_output=False)
    assert_user_error(capsys, ["evaluate", pre, "--tasks", "mrpc,glue9", "--out", tmp_path / "e"], "unknown task(s) glue9")
    assert_user_error(capsys, ["evaluate", pre, "--tasks", "mrpc", "--budgets", "sst2=1m", "--out", tmp_path / "e"],
                      "--budgets names 'sst2'")
    assert_user_error(capsys, ["tag", pre, "the king"], "no token-classification head")
    assert_user_error(capsys, ["finetune", "--model", pre, "--task", "stsb", "--out", tmp_path / "f", "data.select_every=5"],
                      "data.select_every applies to training a classification or tagging head")
    assert_user_error(capsys, ["tag", pre, "  "], "the text to tag is empty")


def test_evaluate_mrpc_probe_needs_no_training(setup, tmp_path, capsys):
    code, out, err = run_cli(capsys, "evaluate", setup / "pre", "--tasks", "mrpc-probe", "--seeds", "2", "--out", tmp_path / "ev")
    assert code == 0, err
    assert "fine-tuning for" not in err and "40 training pairs, 12 test pairs" in err  # no 10% held out: CV chooses C
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    (score,) = report["scores"]
    probe = json.loads((tmp_path / "ev" / "mrpc-probe" / "results.json").read_text())
    assert score["task"] == "mrpc-probe" and score["values"] == [probe["test_accuracy"]]  # one run: nothing is random
    assert 0.0 <= score["value"] <= 1.0 and probe["C"] > 0 and probe["folds"] == 5
    assert_user_error(capsys, ["evaluate", setup / "pre", "--tasks", "mrpc-probe", "--scratch", "--out", tmp_path / "s"],
                      "no --scratch arm")
    assert_user_error(capsys, ["probe", setup / "pre", "--task", "wikiann"], "needs a pair classification task")
