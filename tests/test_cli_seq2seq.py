"""The encoder-decoder through the CLI: pretrain (T5 span corruption, BART infilling) from the shipped presets,
text-to-text fine-tuning, export; and its user mistakes as one `error:` line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from budgetlm.cli import main
from budgetlm.models import build_mlm_model
from budgetlm.models.io import model_meta, save_model
from test_cli import TINY_TRAIN, assert_user_error, labelled_rows, run_cli, write_tsv

TINY_ENC_DEC = ["model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.d_ff=64", "model.max_seq_len=32",
                "model.dropout=0.0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, write_text_files):
    """tokenizer, then 3 steps of each encoder-decoder preset, through the CLI once per module."""
    d = tmp_path_factory.mktemp("cli-seq2seq")
    write_text_files(d)
    write_tsv(d / "train.tsv", labelled_rows(0, 24))
    write_tsv(d / "dev.tsv", labelled_rows(1, 8))
    pairs = [row.split("\t") for row in labelled_rows(2, 16)]
    write_tsv(d / "pairs.tsv", [f"{text}\t{'good news' if label == '1' else 'bad'}" for text, label in pairs],
              header="input\ttarget")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        assert main(["tokenizer", "--vocab-size", "100", "--out", str(d / "tok"), str(d / "train.txt")]) == 0
        for preset in ("t5-span-pretrain", "bart-infill-pretrain"):
            assert main(["pretrain", "--config", preset, "--tokenizer", str(d / "tok"),
                         "--train", str(d / "train.txt"), "--valid", str(d / "valid.txt"), "--budget", "3steps",
                         "--out", str(d / preset), *TINY_ENC_DEC, *TINY_TRAIN]) == 0
    return d


@pytest.mark.parametrize("preset", ["t5-span-pretrain", "bart-infill-pretrain"])
def test_pretrain_encoder_decoder(runs, preset):
    run = runs / preset
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 3 and results["denoising_loss"] > 0 and results["denoising_predictions"] > 0
    meta = json.loads((run / "model" / "config.json").read_text())
    assert meta["kind"] == "seq2seq" and meta["model"]["family"] == "encoder_decoder"
    tok = Tokenizer.from_file(str(run / "model" / "tokenizer.json"))
    base = Tokenizer.from_file(str(runs / "tok" / "tokenizer.json")).get_vocab_size()
    assert meta["model"]["vocab_size"] == tok.get_vocab_size()
    if preset.startswith("t5"):  # the 100 sentinels were appended to the run's tokenizer, in order
        assert [tok.token_to_id(f"<extra_id_{i}>") for i in (0, 1, 99)] == [base, base + 1, base + 99]
        assert tok.get_vocab_size() == base + 100
    else:
        assert tok.get_vocab_size() == base and tok.token_to_id("<extra_id_0>") is None
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert "eval_denoising_loss" in records[-1]


def test_text2text_finetune_sst2_style_and_input_target_files(runs, tmp_path, capsys):
    code, out, err = run_cli(capsys, "finetune", "--model", runs / "t5-span-pretrain", "--train", runs / "train.tsv",
                             "--valid", runs / "dev.tsv", "--budget", "3steps", "--out", tmp_path / "ft", *TINY_TRAIN,
                             "max_target_len=4")
    assert code == 0, err
    assert "exact_match" in out
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert results["method"] == "text2text" and 0.0 <= results["exact_match"] <= 1.0 and results["steps"] == 3
    assert json.loads((tmp_path / "ft" / "model" / "config.json").read_text())["kind"] == "seq2seq"

    code, _, err = run_cli(capsys, "finetune", "--model", tmp_path / "ft", "--method", "text2text",
                           "--train", runs / "pairs.tsv", "--valid", runs / "pairs.tsv", "--budget", "2steps",
                           "--out", tmp_path / "ft2", *TINY_TRAIN)
    assert code == 0, err
    resolved = json.loads((tmp_path / "ft2" / "config.json").read_text())["resolved"]
    assert (resolved["input_column"], resolved["target_column"]) == ("input", "target")

    code, out, err = run_cli(capsys, "export", tmp_path / "ft2", "--out", tmp_path / "hf")
    assert code == 0, err
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["MBartForConditionalGeneration"]
    assert_user_error(capsys, ["fill-mask", tmp_path / "ft2", "the [MASK] ."], "no masked-LM head", "kind: seq2seq")


def test_bart_preset_exports_to_bart(runs, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", runs / "bart-infill-pretrain", "--out", tmp_path / "hf")
    assert code == 0, err
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["BartForConditionalGeneration"]


def test_help_lists_the_new_fields(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = capsys.readouterr().out
    for field in ("model.family", "objective.name", "objective.noise_density", "objective.poisson_lambda"):
        assert field in text
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    assert "--method" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ user errors

def _pretrain(runs, out, *extra):
    return ["pretrain", "--tokenizer", runs / "tok", "--train", runs / "train.txt", "--valid", runs / "valid.txt",
            "--budget", "2steps", "--out", out, *TINY_ENC_DEC, *TINY_TRAIN, *extra]


@pytest.mark.parametrize("extra, fragments", [
    (["objective.name=span_corruption"], ["objective.name=span_corruption trains model.family=encoder_decoder"]),
    (["model.family=encoder_decoder", "model.type_vocab_size=0", "objective.name=mlm"],
     ["objective.name=mlm trains model.family=encoder"]),
    (["model.family=encoder_decoder", "objective.name=text_infilling"], ["model.type_vocab_size=0"]),
    (["objective.name=gpt"], ["objective.name='gpt' is not one of: mlm, rtd, next_token, span_corruption, text_infilling"]),
    (["model.family=decoderish"], ["model.family='decoderish' is not one of"]),
    (["model.family=encoder_decoder", "model.type_vocab_size=0", "objective.name=span_corruption",
      "objective.sentinels=1"], ["objective.sentinels=1 is too few"]),
    (["model.family=encoder_decoder", "model.type_vocab_size=0", "objective.name=text_infilling",
      "objective.infill_rate=1.5"], ["objective.infill_rate must be in (0, 1)"]),
    (["model.family=encoder_decoder", "model.type_vocab_size=0", "objective.name=text_infilling",
      "objective.poisson_lambda=0"], ["objective.poisson_lambda must be > 0"]),
])
def test_pretrain_config_mistakes(runs, tmp_path, capsys, extra, fragments):
    assert_user_error(capsys, _pretrain(runs, tmp_path / "run", *extra), *fragments)
    assert not (tmp_path / "run").exists(), "a config error must stop before any work"


def test_finetune_method_mistakes(runs, tmp_path, capsys, tiny_model_config, tiny_tokenizer_file):
    mlm = build_mlm_model(tiny_model_config())
    mlm_dir = save_model(mlm, tmp_path / "mlm", model_meta(mlm, "mlm"), tiny_tokenizer_file)
    data = ["--train", runs / "train.tsv", "--valid", runs / "dev.tsv", "--budget", "2steps", *TINY_TRAIN]
    assert_user_error(capsys, ["finetune", "--model", mlm_dir, "--method", "text2text", "--out", tmp_path / "a", *data],
                      "--method text2text needs a model of family encoder_decoder")
    assert_user_error(capsys, ["finetune", "--model", runs / "t5-span-pretrain", "--method", "head",
                               "--out", tmp_path / "b", *data], "--method head needs a model of family encoder")
    assert_user_error(capsys, ["finetune", "--model", runs / "t5-span-pretrain", "--method", "prompting",
                               "--out", tmp_path / "c", *data], "method='prompting' is not one of")
    assert_user_error(capsys, ["finetune", "--model", runs / "t5-span-pretrain", "--out", tmp_path / "d", *data,
                               "max_target_len=32"], "max_target_len=32 leaves no room")
    assert_user_error(capsys, ["finetune", "--model", runs / "t5-span-pretrain", "--out", tmp_path / "e",
                               "--train", runs / "pairs.tsv", "--valid", runs / "pairs.tsv", "--text-column", "nope",
                               "--budget", "2steps", *TINY_TRAIN], "no column 'nope'", str(runs / "pairs.tsv"))
