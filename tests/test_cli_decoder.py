"""The decoder through the CLI: char tokenizer -> pretrain 3 steps -> generate (run dir and export) -> prompt
classification; and the user mistakes of `generate` and `--method prompt` as exit code 2."""

from __future__ import annotations

import json

import pytest

from budgetlm.cli import main
from test_cli import assert_user_error, labelled_rows, run_cli, write_tsv

DECODER = ["model.family=decoder", "model.type_vocab_size=0", "model.embedding_norm=false", "model.d_model=32",
           "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32", "objective.document_mask=true",
           "train.batch_size=4", "train.log_every=1", "train.threads=1", "train.checkpoint_every=1000steps"]


@pytest.fixture(scope="module")
def decoder_run(tmp_path_factory, write_text_files):
    d = tmp_path_factory.mktemp("cli-decoder")
    write_text_files(d)
    write_tsv(d / "train.tsv", labelled_rows(0, 20))
    write_tsv(d / "dev.tsv", labelled_rows(1, 10))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        mp.setenv("BUDGETLM_DATA", str(d / "no-data-root"))
        assert main(["tokenizer", "--kind", "char", "--no-lowercase", "--vocab-size", "100", "--out", str(d / "tok"),
                     str(d / "train.txt")]) == 0
        assert main(["pretrain", "--tokenizer", str(d / "tok"), "--train", str(d / "train.txt"), "--valid",
                     str(d / "valid.txt"), "--budget", "3steps", "--out", str(d / "pre"), *DECODER]) == 0
    return d


def test_pretrain_reports_loss_and_perplexity(decoder_run):
    results = json.loads((decoder_run / "pre" / "results.json").read_text())
    assert results["steps"] == 3 and results["lm_tokens"] > 0
    assert abs(results["perplexity"] - 2.718281828 ** results["lm_loss"]) < 1e-6 * results["perplexity"]
    assert json.loads((decoder_run / "pre" / "model" / "config.json").read_text())["kind"] == "clm"


def test_generate_from_run_and_from_export(decoder_run, tmp_path, capsys):
    args = ["--prompt", "The cat", "--max-new-tokens", "12", "--temperature", "0"]
    code, out, err = run_cli(capsys, "generate", decoder_run / "pre", *args)
    assert code == 0, err
    assert out.endswith("\n") and 0 < len(out.rstrip("\n")) <= 12  # char-level: at most 12 characters
    assert run_cli(capsys, "export", decoder_run / "pre", "--out", tmp_path / "hf")[0] == 0
    code, out_hf, err = run_cli(capsys, "generate", tmp_path / "hf", *args)
    assert code == 0, err
    assert out_hf == out  # the GPT2LMHeadModel export, loaded back, continues identically
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("The cat", encoding="utf-8")
    assert run_cli(capsys, "generate", decoder_run / "pre", "--prompt-file", prompt_file, *args[2:])[1] == out


def test_long_prompt_is_cut_from_the_left_with_a_note(decoder_run, capsys):
    code, out, err = run_cli(capsys, "generate", decoder_run / "pre", "--prompt", "a dog " * 20, "--max-new-tokens", "3")
    assert code == 0 and "only its last 31 are used" in err


@pytest.mark.parametrize("args,message", [
    (["--prompt", ""], "the prompt is empty"),
    (["--prompt", "   \n"], "the prompt is empty"),
    ([], "give exactly one of --prompt and --prompt-file"),
    (["--prompt-file", "/nonexistent/p.txt"], "/nonexistent/p.txt: file not found"),
    (["--prompt", "x", "--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--prompt", "x", "--top-p", "1.5"], "--top-p must be in (0, 1]"),
    (["--prompt", "x", "--temperature", "-1"], "--temperature must be >= 0"),
    (["--prompt", "x", "--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
])
def test_generate_bad_inputs(decoder_run, capsys, args, message):
    assert_user_error(capsys, ["generate", decoder_run / "pre", *args], message)


def test_generate_refuses_an_encoder(pipeline_encoder, capsys):
    assert_user_error(capsys, ["generate", pipeline_encoder, "--prompt", "x"], "cannot generate text", "kind: mlm")


@pytest.fixture
def pipeline_encoder(tmp_path, write_text_files, tiny_tokenizer_file):
    write_text_files(tmp_path)
    assert main(["pretrain", "--tokenizer", str(tiny_tokenizer_file), "--train", str(tmp_path / "train.txt"), "--valid",
                 str(tmp_path / "valid.txt"), "--budget", "1steps", "--out", str(tmp_path / "enc"), *DECODER[3:]]) == 0
    return tmp_path / "enc"


def test_prompt_classification(decoder_run, tmp_path, capsys):
    out_dir = tmp_path / "prompt"
    code, out, err = run_cli(capsys, "finetune", "--model", decoder_run / "pre", "--train", decoder_run / "train.tsv",
                             "--valid", decoder_run / "dev.tsv", "--method", "prompt", "--shots", "1", "--out", out_dir,
                             "prompt.verbalisers=[0=bad, 1=good]", "prompt.template={text} It was")
    assert code == 0, err
    results = json.loads((out_dir / "results.json").read_text())
    assert results["method"] == "prompt" and results["shots"] == 1 and 0.0 <= results["accuracy"] <= 1.0
    assert json.loads((out_dir / "config.json").read_text())["resolved"]["verbalisers"] == {"0": "bad", "1": "good"}
    base = ["finetune", "--model", decoder_run / "pre", "--train", decoder_run / "train.tsv", "--valid",
            decoder_run / "dev.tsv", "--method", "prompt"]
    assert_user_error(capsys, [*base, "--out", tmp_path / "a"], "no verbaliser for label(s) '0', '1'")
    assert_user_error(capsys, [*base, "--out", tmp_path / "b", "prompt.template=no slot"], "{text} exactly once")
    assert_user_error(capsys, [*base, "--out", tmp_path / "c", "--shots", "99", "prompt.verbalisers=[0=a, 1=b]"],
                      "prompt.shots=99 but the train file has 20 examples")
