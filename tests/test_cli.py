"""The CLI end to end on a tiny corpus (tokenizer -> pretrain -> finetune -> fill-mask), and every user mistake
as exit code 2 with a one-line `error: ...` and no traceback."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from budgetlm.cli import build_parser, main

# preset=none: the bare encoder these tests were written for (the recipe default is tested in tests/stages/test_defaults.py)
TINY_MODEL = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32", "preset=none"]
TINY_TRAIN = ["train.batch_size=4", "train.log_every=1", "train.threads=1", "train.checkpoint_every=1000steps"]
POSITIVE = "happy young quiet".split()
NEGATIVE = "dark old small".split()


def labelled_rows(seed: int, n: int) -> list[str]:
    """'sentence<TAB>label' rows whose label follows the adjective (so the task is learnable in principle)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        adj = rng.choice(POSITIVE if label else NEGATIVE)
        rows.append(f"the {adj} {rng.choice(['cat', 'dog', 'king'])} {rng.choice(['sees', 'likes'])} a tree .\t{label}")
    return rows


def write_tsv(path: Path, rows: list[str], header: str = "sentence\tlabel") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, argv, *fragments, only_output: bool = True) -> str:
    """Exit code 2, no traceback, and one `error: ...` line that ends stderr (with only_output: all of stderr)."""
    code, out, err = run_cli(capsys, *argv)
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("error: "), err
    assert sum(l.startswith("error:") for l in lines) == 1, err
    if only_output:
        assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[-1]
    return lines[-1]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, write_text_files):
    """tokenizer + pretrain through the CLI, once per module."""
    d = tmp_path_factory.mktemp("cli")
    write_text_files(d)
    write_tsv(d / "train.tsv", labelled_rows(0, 40))
    write_tsv(d / "dev.tsv", labelled_rows(1, 12))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        mp.setenv("BUDGETLM_DATA", str(d / "no-data-root"))
        assert main(["tokenizer", "--vocab-size", "100", "--out", str(d / "tok"), str(d / "train.txt")]) == 0
        assert main(["pretrain", "--tokenizer", str(d / "tok"), "--train", str(d / "train.txt"),
                     "--valid", str(d / "valid.txt"), "--budget", "6steps", "--out", str(d / "pre"),
                     *TINY_MODEL, *TINY_TRAIN]) == 0
    return d


def test_tokenizer_stage(pipeline):
    tok = json.loads((pipeline / "tok" / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "WordPiece"
    assert len(tok["model"]["vocab"]) <= 100
    assert [t["content"] for t in tok["added_tokens"][:5]] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_pretrain_stage(pipeline):
    run = pipeline / "pre"
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 6
    assert results["mlm_loss"] > 0 and results["pseudo_perplexity"] > 1
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["d_model"] == 32 and config["train"]["budget"] == "6steps"
    assert config["resolved"]["valid_file"] == str(pipeline / "valid.txt")
    assert (run / "model" / "model.safetensors").is_file() and (run / "loss.png").is_file()
    assert (run / "tokenizer.json").read_bytes() == (pipeline / "tok" / "tokenizer.json").read_bytes()
    assert any((pipeline / "cache").iterdir())  # the token cache went where BUDGETLM_CACHE said


def test_pretrain_prints_a_summary(pipeline, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "pretrain", "--tokenizer", pipeline / "tok", "--train", pipeline / "train.txt",
                           "--valid", pipeline / "valid.txt", "--budget", "2steps", "--out", tmp_path / "run",
                           *TINY_MODEL, *TINY_TRAIN)
    assert code == 0
    assert "pre-training finished" in out and "mlm_loss" in out and "pseudo_perplexity" in out


def test_finetune_stage(pipeline, tmp_path, capsys):
    out_dir = tmp_path / "ft"
    code, out, err = run_cli(capsys, "finetune", "--model", pipeline / "pre", "--train", pipeline / "train.tsv",
                             "--valid", pipeline / "dev.tsv", "--budget", "4steps", "--out", out_dir,
                             "train.batch_size=8", "train.log_every=1", "train.threads=1")
    assert code == 0, err
    assert "fine-tuning finished" in out and "accuracy" in out
    results = json.loads((out_dir / "results.json").read_text())
    assert results["steps"] == 4 and results["labels"] == ["0", "1"]
    assert 0.0 <= results["accuracy"] <= 1.0 and 0.0 <= results["macro_f1"] <= 1.0
    meta = json.loads((out_dir / "model" / "config.json").read_text())
    assert meta["kind"] == "classifier" and meta["labels"] == ["0", "1"]
    # a classifier has no masked-LM head to fill masks with
    assert_user_error(capsys, ["fill-mask", out_dir, "the [MASK] ."], "no masked-LM head", "kind: classifier")


def test_fill_mask(pipeline, capsys):
    code, out, err = run_cli(capsys, "fill-mask", pipeline / "pre", "the cat [MASK] a dog .", "--top-k", "3")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[MASK] #1: ")
    preds = lines[0].removeprefix("[MASK] #1: ").split("  ")
    assert len(preds) == 3
    probs = [float(p.rsplit("(", 1)[1].rstrip(")")) for p in preds]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)


def test_fill_mask_two_masks(pipeline, capsys):
    code, out, _ = run_cli(capsys, "fill-mask", pipeline / "pre", "[MASK] cat sees the [MASK] .")
    assert code == 0
    assert [l.split(":")[0] for l in out.strip().splitlines()] == ["[MASK] #1", "[MASK] #2"]


# ------------------------------------------------------------------------------------------------ user errors

def pretrain_argv(pipeline, out, *, train=None, valid=None, budget="2steps", extra=()):
    return ["pretrain", "--tokenizer", pipeline / "tok", "--train", train or pipeline / "train.txt",
            "--valid", valid or pipeline / "valid.txt", "--budget", budget, "--out", out, *TINY_MODEL, *TINY_TRAIN, *extra]


def test_missing_file(pipeline, tmp_path, capsys):
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", train=tmp_path / "missing.txt"),
                      str(tmp_path / "missing.txt"), "file not found")


def test_empty_file(pipeline, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", train=tmp_path / "empty.txt"), "file is empty")


def test_directory_as_file(pipeline, tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", valid=tmp_path / "adir"), "is a directory")


def test_unknown_config_key(pipeline, tmp_path, capsys):
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", extra=["model.hidden_size=64"]),
                      "unknown config key 'model.hidden_size'", "d_model")


def test_wrong_type(pipeline, tmp_path, capsys):
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", extra=["model.d_model=abc"]),
                      "model.d_model", "expected int", "'abc'")


def test_d_model_not_divisible_by_n_heads(pipeline, tmp_path, capsys):
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", extra=["model.d_model=30", "model.n_heads=4"]),
                      "divisible")
    assert not (tmp_path / "run").exists()  # rejected before anything was written


def test_budget_zero(pipeline, tmp_path, capsys):
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", budget="0steps"), "train.budget", "positive")


def test_unreadable_budget(pipeline, tmp_path, capsys):
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", budget="soon"), "cannot read 'soon'")


def test_vocab_size_too_small_for_special_tokens(pipeline, tmp_path, capsys):
    assert_user_error(capsys, ["tokenizer", "--vocab-size", "10", "--out", tmp_path / "tok", pipeline / "train.txt"],
                      "too small", "special tokens")


def test_existing_out_without_resume(pipeline, capsys):
    before = (pipeline / "pre" / "results.json").read_bytes()
    assert_user_error(capsys, pretrain_argv(pipeline, pipeline / "pre"), "already holds a run", "--resume")
    assert (pipeline / "pre" / "results.json").read_bytes() == before


def test_resume_with_no_checkpoint_starts_and_finishes(pipeline, tmp_path, capsys):
    """Issue 23: --resume on a run killed before its first checkpoint starts it from the beginning and says so."""
    run = tmp_path / "killed-early"
    run.mkdir()
    (run / "tokenizer.json").write_text("{}")  # what a run killed before its first checkpoint may leave behind
    code, out, err = run_cli(capsys, *pretrain_argv(pipeline, run), "--resume")
    assert code == 0, err
    assert f"--resume: {run} has no checkpoint yet; starting the run from the beginning" in err
    assert json.loads((run / "results.json").read_text())["steps"] == 2
    assert "resumed from step" not in err and (run / "model" / "model.safetensors").exists()


def test_resume_refuses_a_finished_run_without_checkpoints(pipeline, tmp_path, capsys):
    run = tmp_path / "finished"
    shutil.copytree(pipeline / "pre", run, ignore=shutil.ignore_patterns("checkpoints"))
    before = (run / "results.json").read_bytes()
    assert_user_error(capsys, [*pretrain_argv(pipeline, run), "--resume"], "holds a finished run", "choose another --out")
    assert (run / "results.json").read_bytes() == before


def test_valid_file_shorter_than_one_block(pipeline, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("The cat sees a dog.\n")
    # found only after tokenizing, so progress output may come first
    assert_user_error(capsys, pretrain_argv(pipeline, tmp_path / "run", valid=short), str(short), only_output=False)


def test_missing_label_column(pipeline, tmp_path, capsys):
    train = write_tsv(tmp_path / "train.tsv", [r for r in labelled_rows(0, 10)], header="sentence\ttarget")
    assert_user_error(capsys, ["finetune", "--model", pipeline / "pre", "--train", train, "--valid", pipeline / "dev.tsv",
                               "--out", tmp_path / "ft", "--budget", "2steps"],
                      str(train), "no label column 'label'", "sentence, target", "--label-column")


def test_dev_label_unseen_in_train(pipeline, tmp_path, capsys):
    dev = write_tsv(tmp_path / "dev.tsv", ["the happy cat sees a tree .\t1", "the dark dog likes a tree .\t7"])
    line = assert_user_error(capsys, ["finetune", "--model", pipeline / "pre", "--train", pipeline / "train.tsv",
                                      "--valid", dev, "--out", tmp_path / "ft", "--budget", "2steps"],
                             "label '7' does not occur in the training data", only_output=False)  # after the inferred task
    assert f"{dev}:3:" in line  # names the file and the line (line 1 is the header)


def test_ragged_labelled_row(pipeline, tmp_path, capsys):
    train = write_tsv(tmp_path / "train.tsv", labelled_rows(0, 5) + ["a row without a label"])
    assert_user_error(capsys, ["finetune", "--model", pipeline / "pre", "--train", train, "--valid", pipeline / "dev.tsv",
                               "--out", tmp_path / "ft", "--budget", "2steps"], f"{train}:7:", "expected 2 columns")


def test_finetune_model_not_found(pipeline, tmp_path, capsys):
    assert_user_error(capsys, ["finetune", "--model", tmp_path / "nope", "--train", pipeline / "train.tsv",
                               "--valid", pipeline / "dev.tsv", "--out", tmp_path / "ft"], "model path not found")


def test_finetune_without_data(pipeline, tmp_path, capsys):
    assert_user_error(capsys, ["finetune", "--model", pipeline / "pre", "--out", tmp_path / "ft"], "--task", "--train")


def test_fill_mask_without_mask_token(pipeline, capsys):
    assert_user_error(capsys, ["fill-mask", pipeline / "pre", "no mask here"], "no [MASK] token")


def test_fill_mask_bad_top_k(pipeline, capsys):
    assert_user_error(capsys, ["fill-mask", pipeline / "pre", "the [MASK] .", "--top-k", "0"], "--top-k")


def test_missing_config_file(pipeline, tmp_path, capsys):
    assert_user_error(capsys, [*pretrain_argv(pipeline, tmp_path / "run"), "--config", tmp_path / "nope.yaml"],
                      "config file not found")


def test_export_then_use_the_export_dir(pipeline, tmp_path, capsys):
    """export --format hf; the exported directory works wherever a run dir does (fill-mask, finetune --model)."""
    hf_dir = tmp_path / "hf"
    code, out, err = run_cli(capsys, "export", pipeline / "pre", "--format", "hf", "--out", hf_dir)
    assert code == 0, err
    assert (hf_dir / "model.safetensors").is_file() and (hf_dir / "tokenizer.json").is_file()
    _, from_run, _ = run_cli(capsys, "fill-mask", pipeline / "pre", "the cat [MASK] a dog .", "--top-k", "3")
    code, from_export, err = run_cli(capsys, "fill-mask", hf_dir, "the cat [MASK] a dog .", "--top-k", "3")
    assert code == 0, err
    assert from_export == from_run  # same tokens, same probabilities to 3 decimals
    code, out, err = run_cli(capsys, "finetune", "--model", hf_dir, "--train", pipeline / "train.tsv",
                             "--valid", pipeline / "dev.tsv", "--budget", "2steps", "--out", tmp_path / "ft",
                             "train.batch_size=8", "train.threads=1")
    assert code == 0, err
    assert json.loads((tmp_path / "ft" / "results.json").read_text())["steps"] == 2


def test_overrides_may_come_between_flags():
    args = build_parser().parse_args(["finetune", "--model", "m", "--task", "sst2", "train.seed=3", "--scratch", "train.threads=1"])
    assert args.scratch and sorted(args.overrides) == ["train.seed=3", "train.threads=1"]


def test_stray_arguments_are_still_refused(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["finetune", "--model", "m", "train.seed=1", "--scratch", "stray", "--bogus"])
    assert e.value.code == 2 and "unrecognized arguments: stray --bogus" in capsys.readouterr().err
