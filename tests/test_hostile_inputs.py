"""Every CLI stage fed hostile input: one clear `error:` line (naming file and line where one applies), exit code 2,
no traceback, nothing unpickled, and nothing left in --out that looks like a finished run (no results.json, no
model/, no report); stages that write a single file or report leave no output at all.

`test_every_subcommand_and_reader_has_hostile_cases` derives the subcommands from the argparse parser and the task
types from the config, so a new stage or reader without cases here fails the suite.

Inputs that are unusual but valid (a BOM, CRLF line ends, invalid UTF-8 inside text, a 50 MB line of text) must
instead give the same result as their clean versions, with a warning where bytes were replaced.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from budgetlm.cli import build_parser, main
from budgetlm.data.readers import ReadStats, read_table, read_texts
from budgetlm.tasks.classification import read_examples
from budgetlm.tasks.config import TASK_TYPES

from test_cli import TINY_MODEL, TINY_TRAIN, labelled_rows
from test_cli_decoder import DECODER
from test_cli_embedding import sts_lines

FIFTY_MB = 50 * 2**20
CLEAN_TSV = "sentence\tlabel\nthe cat sees a dog .\t1\nthe dark king leaves .\t0\n"


def _noise(n: int, seed: int = 0) -> bytes:
    """Random bytes without NUL: not text, and not caught by a NUL-byte sniff."""
    rng = random.Random(seed)
    return bytes(rng.randrange(1, 256) for _ in range(n))


# name -> file content; written once into the module's directory
HOSTILE_FILES = {
    "empty.txt": b"",
    "empty.tsv": b"",
    "blank.txt": b"   \n\n \t \r\n\n",
    "binary.txt": bytes(range(256)) * 64,
    "binary.tsv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 16,
    "noise.txt": _noise(8192),
    "noise.tsv": _noise(8192, seed=1),
    "utf16.txt": "the cat sees a dog .\n".encode("utf-16"),
    "utf16.tsv": CLEAN_TSV.encode("utf-16"),
    "ragged.tsv": b"sentence\tlabel\nthe cat sees a dog .\t1\nthe dark king leaves .\nthe dog\t0\n",
    "extra-cells.tsv": b"sentence\tlabel\nthe cat\t1\nthe dog\t0\textra\n",
    "label-empty.tsv": b"sentence\tlabel\nthe cat sees a dog .\t1\nthe dark king leaves .\t \n",
    "no-label-column.tsv": b"sentence\tstars\nthe cat\t1\n",
    "no-text-column.tsv": b"id\tlabel\n1\t1\n",
    "header-only.tsv": b"sentence\tlabel\n",
    "unseen-label.tsv": b"sentence\tlabel\nthe cat sees a dog .\t1\nthe dark king leaves .\tmaybe\n",
    "long-row.tsv": b"sentence\tlabel\n" + b"word " * (FIFTY_MB // 5) + b"\t1\n",
    "long-line.jsonl": b'{"text": "' + b"word " * (FIFTY_MB // 5) + b'"}\n',
    "broken.jsonl": b'{"text": "fine"}\n{"text": broken\n',
    "not-objects.jsonl": b'{"text": "fine"}\n[1, 2]\n',
    "no-field.jsonl": b'{"text": "fine"}\n{"body": "where is text"}\n',
    "fake.zip": b"PK\x03\x04 this is not really a zip archive",
    "short.txt": b"too short\n",
    "garbage-tokenizer.json": b'{"version": "1.0", "model": ',
    "list.yaml": b"- a\n- b\n",
    "bad.yaml": b"model: {d_model: [\n",
    "binary.yaml": bytes(range(256)),
    "unknown-key.yaml": b"model:\n  d_modle: 64\n",
    "long-line.txt": b"word " * (FIFTY_MB // 5) + b"\n",  # also linked as long-line.conll / .tsv / .csv below
    # CoNLL (token classification)
    "train.conll": b"".join(b"the\tO\n%s\tB-PER\nsees\tO\nthe\tO\n%s\tB-LOC\n.\tO\n\n" % (w, p)
                            for w in (b"king", b"queen", b"child") for p in (b"river", b"garden", b"house")),
    "ragged.conll": b"the\tO\nking\tB-PER\n\nthe king\tO\tx\n",
    "bad-tag.conll": b"the\tO\nking\tPERSON\n\n",
    "one-column.conll": b"the\nking\n\n",
    "docstart-only.conll": b"-DOCSTART- -X- O O\n\n\n",
    "unseen-tag.conll": b"the\tO\nking\tB-ORG\n\n",
    # sentence-pair classification
    "pairs-ragged.tsv": b"sentence1\tsentence2\tlabel\nthe cat\tthe dog\t1\nthe king leaves\t0\n",
    "pairs-unseen.tsv": b"sentence1\tsentence2\tlabel\nthe cat\tthe dog\t1\nthe king\tthe queen\t2\n",
    "pairs-one-label.tsv": b"sentence1\tsentence2\tlabel\n" + b"the cat\tthe dog\t1\n" * 12,
    # regression
    "reg-train.tsv": b"sentence\tscore\n" + b"".join(b"the %s cat sees a dog .\t%.1f\n" % (a, v) for a, v in
                                                   [(b"old", 0.5), (b"young", 3.8), (b"dark", 1.2), (b"happy", 4.4)] * 4),
    "reg-word-label.tsv": b"sentence\tscore\nthe cat\t0.5\nthe dog\thigh\n",
    "reg-nan-label.tsv": b"sentence\tscore\nthe cat\t0.5\nthe dog\tnan\n",
    # sentence embeddings (pair readers: STS, MRPC, pair tables)
    "sts-bad-score.csv": (sts_lines(0, 1)[0] + "\ng\tf\t2012\t9\tN/A\ta b\tc d\n").encode(),
    "sts-short-row.csv": (sts_lines(0, 1)[0] + "\ng\tf\t2012\t9\t3.0\tonly one\n").encode(),
    "sts-score-7.csv": (sts_lines(0, 1)[0] + "\ng\tf\t2012\t9\t7.5\ta b\tc d\n").encode(),
    "emb-pairs.tsv": b"sentence1\tsentence2\nthe cat sees a dog\ta dog is seen by the cat\n",
    "emb-pairs-ragged.tsv": b"sentence1\tsentence2\nthe cat\tthe dog\nonly one text\n",
    "emb-pairs-missing.jsonl": b'{"sentence1": "the cat", "sentence2": "the dog"}\n{"sentence1": "the king"}\n',
    "emb-pairs-empty-second.tsv": b"sentence1\tsentence2\nthe cat\tthe dog\nthe king\t \n",
    "emb-three-columns.tsv": b"a\tb\tc\nx\ty\tz\n",
    "mrpc-bad-quality.txt": b"Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\nyes\t1\t2\tthe cat\tthe dog\n",
    "mrpc-ragged.txt": b"Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tthe cat\tthe dog\n0\t3\t4\tthe king\n",
    # PMI n-gram vocabularies (objective.pmi_vocab)
    "pmi-ragged.tsv": b"# budgetlm pmi-vocab v1\nthe cat\t5\t1.0\nthe dog\t5\n",
    "pmi-bad-count.tsv": b"the cat\tmany\t1.0\n",
    # prompts
    "prompt-latin1.txt": "the cat\ncaf\u00e9 au lait\n".encode("latin-1"),
    # model directories that are not quite models
    "list-config/config.json": b"[1, 2]",
}
LINKS = {"long-line.conll": "long-line.txt", "long-line-pairs.tsv": "long-line.txt", "long-line-sts.csv": "long-line.txt"}


@pytest.fixture(scope="module")
def fx(tmp_path_factory, write_text_files):
    """Hostile files plus what the stages need to get as far as them: tokenizer, corpus, labelled data (sentences,
    pairs, scores, CoNLL, STS), a data root, an encoder (pre), a decoder (dec), an NER model (ner), damaged model
    dirs, and transformers exports of pre and dec with safetensors (hf-*) or only a pickle (pickled-*)."""
    d = tmp_path_factory.mktemp("hostile")
    write_text_files(d)
    for name, content in HOSTILE_FILES.items():
        (d / name).parent.mkdir(exist_ok=True)
        (d / name).write_bytes(content)
    for name, target in LINKS.items():
        (d / name).symlink_to(d / target)
    (d / "train.tsv").write_text("\n".join(["sentence\tlabel", *labelled_rows(0, 24)]) + "\n")
    (d / "dev.tsv").write_text("\n".join(["sentence\tlabel", *labelled_rows(1, 8)]) + "\n")
    pairs = [f"{a}\t{a if int(l) else 'a bird finds the river .'}\t{l}" for a, l in (r.split("\t") for r in labelled_rows(2, 16))]
    (d / "pairs-train.tsv").write_text("\n".join(["sentence1\tsentence2\tlabel", *pairs]) + "\n")
    (d / "sts-train.csv").write_text("\n".join(sts_lines(0, 16)) + "\n")
    (d / "sts-dev.csv").write_text("\n".join(sts_lines(1, 8)) + "\n")
    root = d / "root"  # the data root: a tiny SST-2 for `evaluate`, and an AG News with a ragged row
    (root / "sst2").mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        (root / "sst2" / name).write_bytes((d / name).read_bytes())
    (root / "agnews").mkdir()
    (root / "agnews" / "dev.tsv").write_text("\n".join(labelled_rows(3, 8)) + "\nthe dark king leaves\n")
    (root / "agnews" / "test.tsv").write_text("\n".join(labelled_rows(4, 8)) + "\n")
    (d / "a-directory").mkdir()
    (d / "a-directory.npy").mkdir()
    (d / "not-a-model").mkdir()
    (d / "not-a-model" / "notes.txt").write_text("hello")
    (d / "a-file").write_text("I am a file")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        assert main(["tokenizer", "--vocab-size", "100", "--out", str(d / "tok"), str(d / "train.txt")]) == 0
        assert main(["pretrain", "--tokenizer", str(d / "tok"), "--train", str(d / "train.txt"), "--valid",
                     str(d / "valid.txt"), "--budget", "2steps", "--out", str(d / "pre"), *TINY_MODEL, *TINY_TRAIN]) == 0
        assert main(["pretrain", "--tokenizer", str(d / "tok"), "--train", str(d / "train.txt"), "--valid",
                     str(d / "valid.txt"), "--budget", "2steps", "--out", str(d / "dec"), *DECODER]) == 0
        assert main(["finetune", "--model", str(d / "pre"), "--train", str(d / "train.conll"), "--valid",
                     str(d / "train.conll"), "--budget", "2steps", "--out", str(d / "ner"), *TINY_TRAIN]) == 0
    for damage in ("truncated-weights", "garbage-config", "no-weights", "kindless-config"):
        bad = d / damage
        bad.mkdir()
        for f in (d / "pre" / "model").iterdir():
            (bad / f.name).write_bytes(f.read_bytes())
    weights = d / "truncated-weights" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    (d / "garbage-config" / "config.json").write_bytes(b'{"format": "budgetlm", "model": {"d_model": "wide"')
    (d / "no-weights" / "model.safetensors").unlink()
    (d / "kindless-config" / "config.json").write_text('{"format": "budgetlm", "model": {}}')
    _pickled_exports(d)
    st_odd = d / "st-layernorm"  # a sentence-transformers dir whose pipeline budgetlm's embedding head cannot hold
    shutil.copytree(d / "hf-mlm", st_odd)
    (st_odd / "1_Pooling").mkdir()
    (st_odd / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (st_odd / "modules.json").write_text(json.dumps([
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{name}"}
        for i, (name, path) in enumerate([("Transformer", ""), ("Pooling", "1_Pooling"), ("LayerNorm", "2_LayerNorm")])]))
    return d


def _pickled_exports(d: Path) -> None:
    """hf-mlm / hf-dec: transformers exports of the encoder and the decoder; pickled-mlm / pickled-dec: the same
    with their weights only as a pytorch_model.bin (the legacy format that --trust-pickle is for)."""
    from budgetlm.exporters.writers import export_hf

    for kind, run in (("mlm", "pre"), ("dec", "dec")):
        export_hf(d / run, d / f"hf-{kind}", verify=False)
        legacy = d / f"pickled-{kind}"
        shutil.copytree(d / f"hf-{kind}", legacy)
        torch.save(load_file(str(legacy / "model.safetensors")), legacy / "pytorch_model.bin")
        (legacy / "model.safetensors").unlink()


def pretrain(d, train="train.txt", valid="valid.txt", tok="tok", extra=(), budget="2steps"):
    argv = ["pretrain", "--train", d / train, "--valid", d / valid, "--budget", budget, "--out", d / "out", *TINY_MODEL, *TINY_TRAIN]
    return argv + (["--tokenizer", d / tok] if tok else []) + list(extra)


def finetune(d, train="train.tsv", valid="dev.tsv", model="pre", extra=(), budget="2steps"):
    return ["finetune", "--model", d / model, "--train", d / train, "--valid", d / valid, "--budget", budget,
            "--out", d / "out", "train.threads=1", *extra]


def tokenizer(d, *files, extra=()):
    return ["tokenizer", "--vocab-size", "100", "--out", d / "out", *[d / f for f in files], *extra]


def ner(d, train="train.conll", valid="train.conll", extra=()):
    return finetune(d, train=train, valid=valid, extra=extra)


def embedding(d, train="sts-train.csv", valid="sts-dev.csv", model="pre", extra=()):
    return finetune(d, train=train, valid=valid, model=model, extra=["--task-type", "embedding", *extra])


def pmi_vocab(d, *files, extra=()):
    return ["pmi-vocab", "--out", d / "out.tsv", *[d / f for f in files], *extra]


def tag(d, model="ner", text="the queen sees the garden .", extra=()):
    return ["tag", d / model, text, *extra]


def evaluate(d, model="pre", tasks="sst2", extra=(), budget="2steps", out=None):
    return ["evaluate", d / model, "--tasks", tasks, "--budget", budget, "--out", out or d / "out", *extra,
            "train.batch_size=4", "train.threads=1"]


def embed(d, model="pre", file="valid.txt", out="out.npy", extra=()):
    return ["embed", d / model, d / file, "--out", d / out, *extra]


def similar(d, model="pre", query="the cat sees a dog", file="valid.txt", extra=()):
    return ["similar", d / model, query, d / file, *extra]


def probe(d, model="pre", train="pairs-train.tsv", test="pairs-train.tsv", extra=()):
    return ["probe", d / model, "--train", d / train, *(["--test", d / test] if test else []), *extra]


def generate(d, model="dec", extra=("--prompt", "the cat")):
    return ["generate", d / model, "--max-new-tokens", "3", *extra]


def prompt_file(d, name, extra=()):
    return generate(d, extra=["--prompt-file", d / name, *extra])


PICKLE_REFUSED = ["pytorch_model.bin", "--trust-pickle"]


# (id, argv builder, fragments the error line must contain; "{d}" stands for the fixture directory)
CASES = [
    # --- files that are not there, or not files
    ("tokenizer: missing file", lambda d: tokenizer(d, "nope.txt"), ["{d}/nope.txt: file not found"]),
    ("tokenizer: a directory", lambda d: tokenizer(d, "a-directory"), ["{d}/a-directory: is a directory"]),
    ("pretrain: missing --train", lambda d: pretrain(d, train="nope.txt"), ["{d}/nope.txt: file not found"]),
    ("pretrain: --train is a directory", lambda d: pretrain(d, train="a-directory"), ["{d}/a-directory: is a directory"]),
    ("pretrain: missing --valid", lambda d: pretrain(d, valid="nope.txt"), ["{d}/nope.txt: file not found"]),
    ("pretrain: missing --tokenizer", lambda d: pretrain(d, tok="nope"), ["nope"]),
    ("pretrain: --config missing", lambda d: pretrain(d, extra=["--config", d / "nope.yaml"]), ["{d}/nope.yaml: config file not found"]),
    ("pretrain: --config is a directory", lambda d: pretrain(d, extra=["--config", d / "a-directory"]), ["config path is not a file"]),
    ("pretrain: --out is a file", lambda d: pretrain(d)[:-len(TINY_MODEL + TINY_TRAIN) - 2] + ["--out", d / "a-file", *TINY_MODEL, *TINY_TRAIN, "--tokenizer", d / "tok"],
     ["{d}/a-file", "not a directory"]),
    ("pretrain: read-only --out", lambda d: [a if a != d / "out" else Path("/sys/budgetlm-out") for a in pretrain(d)],
     ["/sys/budgetlm-out: cannot write to the output directory"]),
    ("finetune: missing --model", lambda d: finetune(d, model="nope"), ["{d}/nope: model path not found"]),
    ("finetune: --model is not a model", lambda d: finetune(d, model="not-a-model"), ["{d}/not-a-model: not a budgetlm run"]),
    ("finetune: --model is a plain file", lambda d: finetune(d, model="a-file"), ["{d}/a-file: is a file"]),
    ("finetune: missing --train", lambda d: finetune(d, train="nope.tsv"), ["{d}/nope.tsv: file not found"]),
    ("finetune: --valid is a directory", lambda d: finetune(d, valid="a-directory"), ["{d}/a-directory: is a directory"]),
    ("export: missing run dir", lambda d: ["export", d / "nope", "--out", d / "out"], ["{d}/nope"]),
    ("export: not a model", lambda d: ["export", d / "not-a-model", "--out", d / "out"], ["{d}/not-a-model: not a budgetlm run"]),
    ("export: --out is a file", lambda d: ["export", d / "pre", "--out", d / "a-file"], ["{d}/a-file"]),
    ("fill-mask: missing model", lambda d: ["fill-mask", d / "nope", "a [MASK] ."], ["{d}/nope: model path not found"]),
    # --- empty, binary, wrongly encoded
    ("tokenizer: empty file", lambda d: tokenizer(d, "empty.txt"), ["{d}/empty.txt: file is empty"]),
    ("tokenizer: only blank lines", lambda d: tokenizer(d, "blank.txt"), ["{d}/blank.txt", "no text"]),
    ("tokenizer: binary file", lambda d: tokenizer(d, "binary.txt"), ["{d}/binary.txt: looks like a binary file"]),
    ("tokenizer: random bytes", lambda d: tokenizer(d, "noise.txt"), ["{d}/noise.txt: is not UTF-8 text"]),
    ("tokenizer: UTF-16", lambda d: tokenizer(d, "utf16.txt"), ["{d}/utf16.txt: is UTF-16 encoded"]),
    ("tokenizer: fake zip", lambda d: tokenizer(d, "fake.zip"), ["{d}/fake.zip: not a valid zip file"]),
    ("pretrain: empty --train", lambda d: pretrain(d, train="empty.txt"), ["{d}/empty.txt: file is empty"]),
    ("pretrain: blank --train", lambda d: pretrain(d, train="blank.txt"), ["{d}/blank.txt", "no text"]),
    ("pretrain: binary --valid", lambda d: pretrain(d, valid="binary.txt"), ["{d}/binary.txt: looks like a binary file"]),
    ("pretrain: random-byte --train", lambda d: pretrain(d, train="noise.txt"), ["{d}/noise.txt: is not UTF-8 text"]),
    ("pretrain: corpus shorter than a block", lambda d: pretrain(d, train="short.txt"), ["{d}/short.txt", "fewer than one block"]),
    ("pretrain: garbage tokenizer.json", lambda d: pretrain(d, tok="garbage-tokenizer.json"), ["{d}/garbage-tokenizer.json: not a valid tokenizer"]),
    ("finetune: empty --train", lambda d: finetune(d, train="empty.tsv"), ["{d}/empty.tsv: file is empty"]),
    ("finetune: binary --train", lambda d: finetune(d, train="binary.tsv"), ["{d}/binary.tsv: looks like a binary file"]),
    ("finetune: random-byte --valid", lambda d: finetune(d, valid="noise.tsv"), ["{d}/noise.tsv: is not UTF-8 text"]),
    ("finetune: UTF-16 --train", lambda d: finetune(d, train="utf16.tsv"), ["{d}/utf16.tsv: is UTF-16 encoded"]),
    ("finetune: truncated weights", lambda d: finetune(d, model="truncated-weights"), ["{d}/truncated-weights/model.safetensors: cannot read weights"]),
    ("finetune: garbage model config", lambda d: finetune(d, model="garbage-config"), ["{d}/garbage-config"]),
    ("fill-mask: truncated weights", lambda d: ["fill-mask", d / "truncated-weights", "a [MASK] ."], ["{d}/truncated-weights/model.safetensors: cannot read weights"]),
    ("pretrain: config not YAML", lambda d: pretrain(d, extra=["--config", d / "bad.yaml"]), ["{d}/bad.yaml: not valid YAML"]),
    ("pretrain: binary config", lambda d: pretrain(d, extra=["--config", d / "binary.yaml"]), ["{d}/binary.yaml"]),
    ("pretrain: config is a list", lambda d: pretrain(d, extra=["--config", d / "list.yaml"]), ["{d}/list.yaml: a config file must be a mapping"]),
    ("pretrain: unknown config key", lambda d: pretrain(d, extra=["--config", d / "unknown-key.yaml"]), ["unknown config key 'model.d_modle'"]),
    # --- malformed rows, with their line numbers
    ("tokenizer: ragged TSV", lambda d: tokenizer(d, "ragged.tsv"), ["{d}/ragged.tsv:3: expected 2 columns"]),
    ("tokenizer: broken JSON line", lambda d: tokenizer(d, "broken.jsonl"), ["{d}/broken.jsonl:2: not valid JSON"]),
    ("tokenizer: JSON line not an object", lambda d: tokenizer(d, "not-objects.jsonl"), ["{d}/not-objects.jsonl:2: each line must be a JSON object"]),
    ("tokenizer: JSON line without text", lambda d: tokenizer(d, "no-field.jsonl"), ["{d}/no-field.jsonl:2: no text field"]),
    ("tokenizer: TSV without a text column", lambda d: tokenizer(d, "no-text-column.tsv"), ["{d}/no-text-column.tsv: cannot tell which column"]),
    ("tokenizer: 50 MB JSON line", lambda d: tokenizer(d, "long-line.jsonl"), ["{d}/long-line.jsonl:1: JSON line is too long"]),
    ("finetune: ragged TSV", lambda d: finetune(d, train="ragged.tsv"), ["{d}/ragged.tsv:3: expected 2 columns"]),
    ("finetune: extra cells", lambda d: finetune(d, valid="extra-cells.tsv"), ["{d}/extra-cells.tsv:3: expected 2 columns", "found 3"]),
    ("finetune: 50 MB row", lambda d: finetune(d, train="long-row.tsv"), ["{d}/long-row.tsv:2: row is too long"]),
    ("finetune: empty label", lambda d: finetune(d, train="label-empty.tsv"), ["{d}/label-empty.tsv:3: empty label"]),
    ("finetune: no label column", lambda d: finetune(d, train="no-label-column.tsv"), ["{d}/no-label-column.tsv: no label column 'label'"]),
    ("finetune: no text column", lambda d: finetune(d, train="no-text-column.tsv"), ["{d}/no-text-column.tsv: cannot tell which column"]),
    ("finetune: --text-column not there", lambda d: finetune(d, extra=["--text-column", "body"]), ["{d}/train.tsv: no column 'body'"]),
    ("finetune: header only", lambda d: finetune(d, train="header-only.tsv"), ["{d}/header-only.tsv: no examples found"]),
    ("finetune: label unseen in training", lambda d: finetune(d, valid="unseen-label.tsv"), ["{d}/unseen-label.tsv:3: label 'maybe' does not occur in the training data"]),
    ("finetune: JSON lines without the label", lambda d: finetune(d, train="no-field.jsonl"), ["{d}/no-field.jsonl", "no label column"]),
    ("finetune: unknown --task", lambda d: finetune(d, extra=["--task", "mnli"])[:1] + ["--model", d / "pre", "--task", "mnli", "--out", d / "out"], ["unknown --task 'mnli'"]),
    ("finetune: neither task nor files", lambda d: ["finetune", "--model", d / "pre", "--out", d / "out"], ["give --task NAME"]),
    # --- absurd settings
    ("tokenizer: vocabulary smaller than the special tokens", lambda d: ["tokenizer", "--vocab-size", "3", "--out", d / "out", d / "train.txt"], ["--vocab-size 3 is too small"]),
    ("tokenizer: negative vocabulary", lambda d: ["tokenizer", "--vocab-size", "-5", "--out", d / "out", d / "train.txt"], ["--vocab-size -5 is too small"]),
    ("tokenizer: --out is a file", lambda d: ["tokenizer", "--out", d / "a-file", d / "train.txt"], ["{d}/a-file"]),
    ("pretrain: negative d_model", lambda d: pretrain(d, extra=["model.d_model=-32"]), ["model.d_model must be > 0, got -32"]),
    ("pretrain: heads do not divide d_model", lambda d: pretrain(d, extra=["model.n_heads=3"]), ["model.d_model (32) must be divisible by model.n_heads (3)"]),
    ("pretrain: zero layers", lambda d: pretrain(d, extra=["model.n_layers=0"]), ["model.n_layers must be > 0"]),
    ("pretrain: block of one token", lambda d: pretrain(d, extra=["model.max_seq_len=1"]), ["model.max_seq_len must be >= 2"]),
    ("pretrain: model vocabulary below the tokenizer's", lambda d: pretrain(d, extra=["model.vocab_size=3"]), ["model.vocab_size=3 is smaller than the tokenizer's"]),
    ("pretrain: own-tokenizer vocabulary too small", lambda d: pretrain(d, tok=None, extra=["data.vocab_size=3"]), ["data.vocab_size must be >= 16"]),
    ("pretrain: model too big for this machine", lambda d: pretrain(d, extra=["model.d_model=65536", "model.d_ff=262144", "model.n_heads=1"]), ["GB", "memory"]),
    ("pretrain: budget 0 steps", lambda d: pretrain(d, budget="0steps"), ["train.budget must be positive"]),
    ("pretrain: budget 0 seconds", lambda d: pretrain(d, budget="0s"), ["train.budget must be positive"]),
    ("pretrain: budget nonsense", lambda d: pretrain(d, budget="soon"), ["train.budget: cannot read 'soon'"]),
    ("pretrain: negative batch", lambda d: pretrain(d, extra=["train.batch_size=-4"]), ["train.batch_size must be > 0"]),
    ("pretrain: NaN learning rate", lambda d: pretrain(d, extra=["train.lr=nan"]), ["train.lr: must be a finite number"]),
    ("pretrain: negative learning rate", lambda d: pretrain(d, extra=["train.lr=-1e-3"]), ["train.lr must be > 0"]),
    ("pretrain: dropout above 1", lambda d: pretrain(d, extra=["model.dropout=1.5"]), ["model.dropout must be in [0, 1)"]),
    ("pretrain: mask rate 0", lambda d: pretrain(d, extra=["objective.mask_rate=0"]), ["objective.mask_rate must be in (0, 1)"]),
    ("pretrain: keep no checkpoints", lambda d: pretrain(d, extra=["train.keep_checkpoints=0"]), ["train.keep_checkpoints must be > 0"]),
    ("pretrain: integer field given text", lambda d: pretrain(d, extra=["model.n_layers=many"]), ["model.n_layers: expected int, got 'many'"]),
    ("pretrain: unknown activation", lambda d: pretrain(d, extra=["model.activation=swish"]), ["model.activation='swish' is not one of"]),
    ("pretrain: override without '='", lambda d: pretrain(d, extra=["model.d_model"]), ["model.d_model"]),
    ("pretrain: spike factor below 1", lambda d: pretrain(d, extra=["train.loss_spike_factor=0.5"]), ["train.loss_spike_factor must be > 1"]),
    ("finetune: budget 0", lambda d: finetune(d, budget="0steps"), ["train.budget must be positive"]),
    ("finetune: dropout 2", lambda d: finetune(d, extra=["dropout=2"]), ["dropout must be in [0, 1)"]),
    ("finetune: unknown pooling", lambda d: finetune(d, extra=["head.pooling=max"]), ["head.pooling='max' is not one of"]),
    ("fill-mask: no [MASK]", lambda d: ["fill-mask", d / "pre", "no mask here"], ["the text has no [MASK] token"]),
    ("fill-mask: empty text", lambda d: ["fill-mask", d / "pre", ""], ["no [MASK]"]),
    ("fill-mask: --top-k 0", lambda d: ["fill-mask", d / "pre", "a [MASK] .", "--top-k", "0"], ["--top-k must be >= 1"]),
    ("fill-mask: --top-k text", lambda d: ["fill-mask", d / "pre", "a [MASK] .", "--top-k", "many"], ["--top-k", "invalid int value"]),
    # --- pmi-vocab
    ("pmi-vocab: missing file", lambda d: pmi_vocab(d, "train.txt", "nope.txt"), ["{d}/nope.txt: file not found"]),
    ("pmi-vocab: a directory", lambda d: pmi_vocab(d, "a-directory"), ["{d}/a-directory: is a directory"]),
    ("pmi-vocab: empty file", lambda d: pmi_vocab(d, "empty.txt"), ["{d}/empty.txt: file is empty"]),
    ("pmi-vocab: only blank lines", lambda d: pmi_vocab(d, "blank.txt"), ["no words found", "{d}/blank.txt"]),
    ("pmi-vocab: binary file", lambda d: pmi_vocab(d, "binary.txt"), ["{d}/binary.txt: looks like a binary file"]),
    ("pmi-vocab: random bytes", lambda d: pmi_vocab(d, "noise.txt"), ["{d}/noise.txt: is not UTF-8 text"]),
    ("pmi-vocab: UTF-16", lambda d: pmi_vocab(d, "utf16.txt"), ["{d}/utf16.txt: is UTF-16 encoded"]),
    ("pmi-vocab: fake zip", lambda d: pmi_vocab(d, "fake.zip"), ["{d}/fake.zip: not a valid zip file"]),
    ("pmi-vocab: ragged TSV", lambda d: pmi_vocab(d, "ragged.tsv"), ["{d}/ragged.tsv:3: expected 2 columns"]),
    ("pmi-vocab: broken JSON line", lambda d: pmi_vocab(d, "broken.jsonl"), ["{d}/broken.jsonl:2: not valid JSON"]),
    ("pmi-vocab: 50 MB JSON line", lambda d: pmi_vocab(d, "long-line.jsonl"), ["{d}/long-line.jsonl:1: JSON line is too long"]),
    ("pmi-vocab: --text-column not there", lambda d: pmi_vocab(d, "train.tsv", extra=["--text-column", "body"]), ["{d}/train.tsv: no column 'body'"]),
    ("pmi-vocab: --min-count 0", lambda d: pmi_vocab(d, "train.txt", extra=["--min-count", "0"]), ["--min-count must be >= 1"]),
    ("pmi-vocab: negative --size", lambda d: pmi_vocab(d, "train.txt", extra=["--size", "-1"]), ["--size must be >= 0"]),
    ("pmi-vocab: --out is a directory", lambda d: ["pmi-vocab", "--out", d / "a-directory", d / "train.txt"], ["{d}/a-directory: --out is a directory"]),
    ("pmi-vocab: --out in a missing directory", lambda d: ["pmi-vocab", "--out", d / "nowhere" / "v.tsv", d / "train.txt"], ["{d}/nowhere: the output directory does not exist"]),
    ("pmi-vocab: read-only --out", lambda d: ["pmi-vocab", "--out", "/sys/budgetlm-pmi.tsv", d / "train.txt"], ["/sys"]),
    ("pretrain: PMI vocabulary missing", lambda d: pretrain(d, extra=["objective.masking=pmi", f"objective.pmi_vocab={d / 'nope.tsv'}"]), ["{d}/nope.tsv: file not found"]),
    ("pretrain: PMI vocabulary is a directory", lambda d: pretrain(d, extra=["objective.masking=pmi", f"objective.pmi_vocab={d / 'a-directory'}"]), ["{d}/a-directory: is a directory"]),
    ("pretrain: PMI vocabulary binary", lambda d: pretrain(d, extra=["objective.masking=pmi", f"objective.pmi_vocab={d / 'binary.txt'}"]), ["{d}/binary.txt: looks like a binary file"]),
    ("pretrain: PMI vocabulary ragged", lambda d: pretrain(d, extra=["objective.masking=pmi", f"objective.pmi_vocab={d / 'pmi-ragged.tsv'}"]), ["{d}/pmi-ragged.tsv:3: expected 'n-gram<TAB>count<TAB>score', found 2"]),
    ("pretrain: PMI vocabulary count not a number", lambda d: pretrain(d, extra=["objective.masking=pmi", f"objective.pmi_vocab={d / 'pmi-bad-count.tsv'}"]), ["{d}/pmi-bad-count.tsv:1: count must be an integer"]),
    ("pretrain: PMI masking without a vocabulary", lambda d: pretrain(d, extra=["objective.masking=pmi"]), ["objective.pmi_vocab=FILE"]),
    # --- finetune readers: CoNLL (token classification)
    ("finetune[token]: ragged CoNLL row", lambda d: ner(d, train="ragged.conll"), ["{d}/ragged.conll:4: expected 2 columns like the first row, found 3"]),
    ("finetune[token]: tag that is not IOB", lambda d: ner(d, valid="bad-tag.conll"), ["{d}/bad-tag.conll:2: tag 'PERSON' is not IOB"]),
    ("finetune[token]: one column", lambda d: ner(d, train="one-column.conll"), ["{d}/one-column.conll:1: expected `token<TAB>tag` rows"]),
    ("finetune[token]: no sentences", lambda d: ner(d, valid="docstart-only.conll"), ["{d}/docstart-only.conll: no sentences found"]),
    ("finetune[token]: tag unseen in training", lambda d: ner(d, valid="unseen-tag.conll"), ["{d}/unseen-tag.conll:2: tag 'B-ORG' does not occur in the training data"]),
    ("finetune[token]: 50 MB token row", lambda d: ner(d, valid="long-line.conll"), ["{d}/long-line.conll:1: line is too long for a token row"]),
    ("finetune[token]: binary valid file", lambda d: ner(d, valid="binary.txt", extra=["--task-type", "token"]), ["{d}/binary.txt: looks like a binary file"]),
    ("finetune[token]: empty valid file", lambda d: ner(d, valid="empty.txt"), ["{d}/empty.txt: file is empty"]),
    ("finetune[token]: a table given as CoNLL", lambda d: ner(d, train="train.tsv", extra=["--task-type", "token"]), ["{d}/train.tsv:1: tag 'label' is not IOB"]),
    # --- finetune readers: sentence pairs
    ("finetune[pair]: row missing its second text", lambda d: finetune(d, train="pairs-train.tsv", valid="pairs-ragged.tsv"), ["{d}/pairs-ragged.tsv:3: expected 3 columns", "found 2"]),
    ("finetune[pair]: label unseen in training", lambda d: finetune(d, train="pairs-train.tsv", valid="pairs-unseen.tsv"), ["{d}/pairs-unseen.tsv:3: label '2' does not occur in the training data"]),
    ("finetune[pair]: one text column", lambda d: finetune(d, extra=["--task-type", "pair"]), ["{d}/train.tsv: pair classification needs a second text column"]),
    ("finetune[pair]: --text-b-column not there", lambda d: finetune(d, train="pairs-train.tsv", valid="pairs-train.tsv", extra=["--text-b-column", "other"]), ["{d}/pairs-train.tsv: no column 'other' for the second text"]),
    ("finetune[pair]: 50 MB row", lambda d: finetune(d, train="pairs-train.tsv", valid="long-line-pairs.tsv"), ["{d}/long-line-pairs.tsv:1: row is too long"]),
    # --- finetune readers: regression
    ("finetune[regression]: a word for a score", lambda d: finetune(d, train="reg-train.tsv", valid="reg-word-label.tsv"), ["{d}/reg-word-label.tsv:3: label 'high' is not a number"]),
    ("finetune[regression]: NaN score", lambda d: finetune(d, train="reg-nan-label.tsv", valid="reg-train.tsv"), ["{d}/reg-nan-label.tsv:3: label 'nan' is not a finite number"]),
    ("finetune[regression]: words as scores", lambda d: finetune(d, train="unseen-label.tsv", extra=["--task-type", "regression"]), ["{d}/unseen-label.tsv:3: label 'maybe' is not a number"]),
    ("finetune[regression]: --label-column not there", lambda d: finetune(d, train="reg-train.tsv", extra=["--label-column", "label"]), ["{d}/reg-train.tsv: no label column 'label'"]),
    ("finetune[sentence]: binary valid", lambda d: finetune(d, valid="binary.tsv"), ["{d}/binary.tsv: looks like a binary file"]),
    # --- finetune readers: sentence embeddings (STS, MRPC, pair tables, raw sentences)
    ("finetune[embedding]: missing --train", lambda d: embedding(d, train="nope.csv"), ["{d}/nope.csv: file not found"]),
    ("finetune[embedding]: --valid is a directory", lambda d: embedding(d, valid="a-directory"), ["{d}/a-directory: is a directory"]),
    ("finetune[embedding]: empty --train", lambda d: embedding(d, train="empty.tsv"), ["{d}/empty.tsv: file is empty"]),
    ("finetune[embedding]: binary --train", lambda d: embedding(d, train="binary.tsv"), ["{d}/binary.tsv: looks like a binary file"]),
    ("finetune[embedding]: STS score not a number", lambda d: embedding(d, train="sts-bad-score.csv"), ["{d}/sts-bad-score.csv:2: score 'N/A' is not a number in [0, 5]"]),
    ("finetune[embedding]: STS score above 5", lambda d: embedding(d, valid="sts-score-7.csv"), ["{d}/sts-score-7.csv:2: score '7.5'"]),
    ("finetune[embedding]: STS row missing a sentence", lambda d: embedding(d, train="sts-short-row.csv"), ["{d}/sts-short-row.csv:2: expected at least 7 tab-separated fields", "found 6"]),
    ("finetune[embedding]: pair row missing its second column", lambda d: embedding(d, train="emb-pairs-ragged.tsv"), ["{d}/emb-pairs-ragged.tsv:3: expected 2 columns"]),
    ("finetune[embedding]: JSON pair missing a field", lambda d: embedding(d, train="emb-pairs-missing.jsonl"), ["{d}/emb-pairs-missing.jsonl:2: needs fields 'sentence1' and 'sentence2'"]),
    ("finetune[embedding]: empty second sentence", lambda d: embedding(d, train="emb-pairs-empty-second.tsv"), ["{d}/emb-pairs-empty-second.tsv:3: empty sentence in a pair"]),
    ("finetune[embedding]: no pair columns", lambda d: embedding(d, train="emb-three-columns.tsv"), ["{d}/emb-three-columns.tsv: cannot tell which two columns"]),
    ("finetune[embedding]: MRPC quality not 0/1", lambda d: embedding(d, train="mrpc-bad-quality.txt"), ["{d}/mrpc-bad-quality.txt:2: Quality must be 0 or 1"]),
    ("finetune[embedding]: ragged MRPC row", lambda d: embedding(d, train="mrpc-ragged.txt"), ["{d}/mrpc-ragged.txt:3: expected 5 tab-separated fields"]),
    ("finetune[embedding]: unscored --valid", lambda d: embedding(d, valid="emb-pairs.tsv"), ["{d}/emb-pairs.tsv: an STS evaluation file needs similarity scores"]),
    ("finetune[embedding]: 50 MB pair row", lambda d: embedding(d, train="long-line-pairs.tsv"), ["{d}/long-line-pairs.tsv:1:", "too long"]),
    ("finetune[embedding]: 50 MB STS line", lambda d: embedding(d, valid="long-line-sts.csv"), ["{d}/long-line-sts.csv:1:", "too long"]),
    ("finetune[embedding]: embedding.pairs file missing", lambda d: embedding(d, extra=[f"embedding.pairs=[{d / 'nope.tsv'}]"]), ["{d}/nope.tsv: file not found"]),
    ("finetune[embedding]: no --valid", lambda d: ["finetune", "--model", d / "pre", "--task-type", "embedding", "--train", d / "sts-train.csv", "--out", d / "out"], ["--valid STS_FILE"]),
    ("finetune[embedding]: a decoder", lambda d: embedding(d, model="dec"), ["{d}/dec: sentence embeddings need an encoder"]),
    # --- finetune: models and methods
    ("finetune: pickle-only model", lambda d: finetune(d, model="pickled-mlm"), PICKLE_REFUSED),
    ("finetune: model dir without weights", lambda d: finetune(d, model="no-weights"), ["{d}/no-weights: a budgetlm model directory without its weights"]),
    ("finetune: model config without a kind", lambda d: finetune(d, model="kindless-config"), ["{d}/kindless-config/config.json: not a budgetlm model config (needs `kind`"]),
    ("finetune: model config is a JSON list", lambda d: finetune(d, model="list-config"), ["{d}/list-config/config.json", "not a JSON object"]),
    ("finetune: --method prompt with an encoder", lambda d: finetune(d, extra=["--method", "prompt"]), ["--method prompt needs a model of family decoder"]),
    ("finetune: --method text2text with an encoder", lambda d: finetune(d, extra=["--method", "text2text"]), ["--method text2text needs a model of family encoder_decoder"]),
    ("finetune: prompting with a label unseen in train", lambda d: finetune(d, model="dec", valid="unseen-label.tsv"), ["{d}/unseen-label.tsv:3: label 'maybe' does not occur in the training data"]),
    ("finetune: negative --shots", lambda d: finetune(d, model="dec", extra=["--shots", "-1"]), ["prompt.shots must be >= 0"]),
    # --- tag
    ("tag: missing model", lambda d: tag(d, model="nope"), ["{d}/nope: model path not found"]),
    ("tag: not a model", lambda d: tag(d, model="not-a-model"), ["{d}/not-a-model: not a budgetlm run"]),
    ("tag: a plain file", lambda d: tag(d, model="a-file"), ["{d}/a-file: is a file"]),
    ("tag: truncated weights", lambda d: tag(d, model="truncated-weights"), ["{d}/truncated-weights/model.safetensors: cannot read weights"]),
    ("tag: garbage model config", lambda d: tag(d, model="garbage-config"), ["{d}/garbage-config"]),
    ("tag: model dir without weights", lambda d: tag(d, model="no-weights"), ["{d}/no-weights: a budgetlm model directory without its weights"]),
    ("tag: pickle-only model", lambda d: tag(d, model="pickled-mlm"), PICKLE_REFUSED),
    ("tag: a model without a token head", lambda d: tag(d, model="pre"), ["no token-classification head (kind 'mlm')"]),
    ("tag: a decoder", lambda d: tag(d, model="dec"), ["no token-classification head (kind 'clm')"]),
    ("tag: unknown --head", lambda d: tag(d, extra=["--head", "ner2"]), ["no token head 'ner2'; token heads: tok"]),
    ("tag: empty text", lambda d: tag(d, text=""), ["the text to tag is empty"]),
    ("tag: blank text", lambda d: tag(d, text=" \t\r\n"), ["the text to tag is empty"]),
    ("tag: missing text", lambda d: ["tag", d / "ner"], ["the following arguments are required: text"]),
    # --- evaluate
    ("evaluate: missing model", lambda d: evaluate(d, model="nope"), ["{d}/nope: model path not found"]),
    ("evaluate: not a model", lambda d: evaluate(d, model="not-a-model"), ["{d}/not-a-model: not a budgetlm run"]),
    ("evaluate: a plain file", lambda d: evaluate(d, model="a-file"), ["{d}/a-file: is a file"]),
    ("evaluate: truncated weights", lambda d: evaluate(d, model="truncated-weights"), ["{d}/truncated-weights/model.safetensors: cannot read weights"]),
    ("evaluate: pickle-only model", lambda d: evaluate(d, model="pickled-mlm"), PICKLE_REFUSED),
    ("evaluate: unknown task", lambda d: evaluate(d, tasks="sst2,glue9"), ["unknown task(s) glue9"]),
    ("evaluate: no tasks", lambda d: evaluate(d, tasks=" , "), ["unknown task(s) (none given)"]),
    ("evaluate: a task twice", lambda d: evaluate(d, tasks="sst2,sst2"), ["--tasks names sst2 more than once"]),
    ("evaluate: --seeds 0", lambda d: evaluate(d, extra=["--seeds", "0"]), ["--seeds must be >= 1, got 0"]),
    ("evaluate: negative --seeds", lambda d: evaluate(d, extra=["--seeds", "-2"]), ["--seeds must be >= 1, got -2"]),
    ("evaluate: budget 0", lambda d: evaluate(d, budget="0steps"), ["budget for sst2 must be positive"]),
    ("evaluate: budget nonsense", lambda d: evaluate(d, budget="soon"), ["budget for sst2: cannot read 'soon'"]),
    ("evaluate: --budgets without '='", lambda d: evaluate(d, extra=["--budgets", "sst2"]), ["--budgets: 'sst2' must look like task=budget"]),
    ("evaluate: --budgets for another task", lambda d: evaluate(d, extra=["--budgets", "mrpc=1m"]), ["--budgets names 'mrpc', which is not in --tasks"]),
    ("evaluate: NaN learning rate", lambda d: evaluate(d, extra=["train.lr=nan"]), ["train.lr: must be a finite number"]),
    ("evaluate: unknown override", lambda d: evaluate(d, extra=["model.d_model=64"]), ["unknown config key"]),
    ("evaluate: task data missing from the data root", lambda d: evaluate(d, tasks="wikiann"), ["expected data file is missing from the data root"]),
    ("evaluate: --out is a file", lambda d: evaluate(d, out=d / "a-file"), ["{d}/a-file: --out exists and is not a directory"]),
    ("evaluate: read-only --out", lambda d: evaluate(d, out="/sys/budgetlm-eval"), ["/sys/budgetlm-eval: cannot write to the output directory"]),
    ("evaluate: --seeds text", lambda d: evaluate(d, extra=["--seeds", "two"]), ["--seeds", "invalid int value"]),
    # --- embed
    ("embed: missing model", lambda d: embed(d, model="nope"), ["{d}/nope: model path not found"]),
    ("embed: not a model", lambda d: embed(d, model="not-a-model"), ["{d}/not-a-model: not a budgetlm run"]),
    ("embed: truncated weights", lambda d: embed(d, model="truncated-weights"), ["{d}/truncated-weights/model.safetensors: cannot read weights"]),
    ("embed: pickle-only model", lambda d: embed(d, model="pickled-mlm"), PICKLE_REFUSED),
    ("embed: a decoder", lambda d: embed(d, model="dec"), ["{d}/dec: sentence embeddings need an encoder"]),
    ("embed: sentence-transformers dir with a LayerNorm module", lambda d: embed(d, model="st-layernorm"),
     ["{d}/st-layernorm: a sentence-transformers model whose pipeline (Transformer -> Pooling -> LayerNorm) budgetlm cannot represent"]),
    ("embed: missing file", lambda d: embed(d, file="nope.txt"), ["{d}/nope.txt: file not found"]),
    ("embed: file is a directory", lambda d: embed(d, file="a-directory"), ["{d}/a-directory: is a directory"]),
    ("embed: empty file", lambda d: embed(d, file="empty.txt"), ["{d}/empty.txt: file is empty"]),
    ("embed: only blank lines", lambda d: embed(d, file="blank.txt"), ["{d}/blank.txt: no texts found"]),
    ("embed: binary file", lambda d: embed(d, file="binary.txt"), ["{d}/binary.txt: looks like a binary file"]),
    ("embed: random bytes", lambda d: embed(d, file="noise.txt"), ["{d}/noise.txt: is not UTF-8 text"]),
    ("embed: UTF-16", lambda d: embed(d, file="utf16.txt"), ["{d}/utf16.txt: is UTF-16 encoded"]),
    ("embed: ragged TSV", lambda d: embed(d, file="ragged.tsv"), ["{d}/ragged.tsv:3: expected 2 columns"]),
    ("embed: TSV without a text column", lambda d: embed(d, file="no-text-column.tsv"), ["{d}/no-text-column.tsv: cannot tell which column"]),
    ("embed: JSON line without text", lambda d: embed(d, file="no-field.jsonl"), ["{d}/no-field.jsonl:2: no text field"]),
    ("embed: 50 MB line", lambda d: embed(d, file="long-line.txt"), ["{d}/long-line.txt:1: line is too long"]),
    ("embed: --out not .npy", lambda d: embed(d, out="out.txt"), ["{d}/out.txt: --out must end in .npy"]),
    ("embed: --out in a missing directory", lambda d: embed(d, out="nowhere/x.npy"), ["{d}/nowhere: the output directory does not exist"]),
    ("embed: --out is a directory", lambda d: embed(d, out="a-directory.npy"), ["{d}/a-directory.npy: --out is a directory"]),
    ("embed: read-only --out", lambda d: embed(d)[:-1] + ["/sys/budgetlm-embed.npy"], ["/sys/budgetlm-embed.npy: cannot write the embeddings"]),
    ("embed: --batch-size 0", lambda d: embed(d, extra=["--batch-size", "0"]), ["--batch-size must be >= 1"]),
    # --- probe
    ("probe: missing model", lambda d: probe(d, model="nope"), ["{d}/nope: model path not found"]),
    ("probe: pickle-only model", lambda d: probe(d, model="pickled-mlm"), PICKLE_REFUSED),
    ("probe: a decoder", lambda d: probe(d, model="dec"), ["{d}/dec: sentence embeddings need an encoder"]),
    ("probe: missing training file", lambda d: probe(d, train="nope.tsv"), ["{d}/nope.tsv: file not found"]),
    ("probe: no --test", lambda d: probe(d, test=""), ["the probe reports test figures: give --test FILE"]),
    ("probe: one text column", lambda d: probe(d, train="train.tsv"), ["{d}/train.tsv: pair classification needs a second text column"]),
    ("probe: test row missing its second text", lambda d: probe(d, test="pairs-ragged.tsv"), ["{d}/pairs-ragged.tsv:3: expected 3 columns"]),
    ("probe: test label unseen in training", lambda d: probe(d, test="pairs-unseen.tsv"), ["{d}/pairs-unseen.tsv:3: label '2' does not occur in the training data"]),
    ("probe: one label only", lambda d: probe(d, train="pairs-one-label.tsv", test="pairs-one-label.tsv"), ["the probe needs two labels or more"]),
    ("probe: 50 MB row", lambda d: probe(d, test="long-line-pairs.tsv"), ["{d}/long-line-pairs.tsv:1: row is too long"]),
    ("probe: --folds 1", lambda d: probe(d, extra=["--folds", "1"]), ["the probe needs folds >= 2"]),
    ("probe: --out is a directory", lambda d: probe(d, extra=["--out", d / "a-directory"]), ["{d}/a-directory: --out is a directory"]),
    ("probe: --batch-size 0", lambda d: probe(d, extra=["--batch-size", "0"]), ["--batch-size must be >= 1"]),
    # --- similar
    ("similar: missing model", lambda d: similar(d, model="nope"), ["{d}/nope: model path not found"]),
    ("similar: a plain file", lambda d: similar(d, model="a-file"), ["{d}/a-file: is a file"]),
    ("similar: pickle-only model", lambda d: similar(d, model="pickled-mlm"), PICKLE_REFUSED),
    ("similar: a decoder", lambda d: similar(d, model="dec"), ["sentence embeddings need an encoder"]),
    ("similar: missing file", lambda d: similar(d, file="nope.txt"), ["{d}/nope.txt: file not found"]),
    ("similar: binary file", lambda d: similar(d, file="binary.txt"), ["{d}/binary.txt: looks like a binary file"]),
    ("similar: only blank lines", lambda d: similar(d, file="blank.txt"), ["{d}/blank.txt: no texts found"]),
    ("similar: broken JSON line", lambda d: similar(d, file="broken.jsonl"), ["{d}/broken.jsonl:2: not valid JSON"]),
    ("similar: 50 MB line", lambda d: similar(d, file="long-line.txt"), ["{d}/long-line.txt:1: line is too long"]),
    ("similar: empty query", lambda d: similar(d, query=""), ["the query is empty"]),
    ("similar: --top-k 0", lambda d: similar(d, extra=["--top-k", "0"]), ["--top-k must be >= 1"]),
    ("similar: negative --top-k", lambda d: similar(d, extra=["--top-k", "-3"]), ["--top-k must be >= 1"]),
    ("similar: --batch-size 0", lambda d: similar(d, extra=["--batch-size", "0"]), ["--batch-size must be >= 1"]),
    # --- generate
    ("generate: missing model", lambda d: generate(d, model="nope"), ["{d}/nope: model path not found"]),
    ("generate: not a model", lambda d: generate(d, model="not-a-model"), ["{d}/not-a-model: not a budgetlm run"]),
    ("generate: a plain file", lambda d: generate(d, model="a-file"), ["{d}/a-file: is a file"]),
    ("generate: truncated weights", lambda d: generate(d, model="truncated-weights"), ["{d}/truncated-weights/model.safetensors: cannot read weights"]),
    ("generate: pickle-only model", lambda d: generate(d, model="pickled-dec"), PICKLE_REFUSED),
    ("generate: an encoder", lambda d: generate(d, model="pre"), ["cannot generate text (kind: mlm)"]),
    ("generate: empty prompt", lambda d: generate(d, extra=["--prompt", ""]), ["the prompt is empty"]),
    ("generate: blank prompt", lambda d: generate(d, extra=["--prompt", " \n\t"]), ["the prompt is empty"]),
    ("generate: no prompt", lambda d: generate(d, extra=[]), ["give exactly one of --prompt and --prompt-file"]),
    ("generate: two prompts", lambda d: generate(d, extra=["--prompt", "a", "--prompt-file", d / "valid.txt"]), ["give exactly one of --prompt and --prompt-file"]),
    ("generate: missing --prompt-file", lambda d: prompt_file(d, "nope.txt"), ["{d}/nope.txt: file not found"]),
    ("generate: --prompt-file is a directory", lambda d: prompt_file(d, "a-directory"), ["{d}/a-directory: is a directory"]),
    ("generate: empty --prompt-file", lambda d: prompt_file(d, "empty.txt"), ["{d}/empty.txt: file is empty"]),
    ("generate: blank --prompt-file", lambda d: prompt_file(d, "blank.txt"), ["the prompt is empty", "{d}/blank.txt"]),
    ("generate: binary --prompt-file", lambda d: prompt_file(d, "binary.txt"), ["{d}/binary.txt: looks like a binary file"]),
    ("generate: UTF-16 --prompt-file", lambda d: prompt_file(d, "utf16.txt"), ["{d}/utf16.txt: is UTF-16 encoded"]),
    ("generate: Latin-1 --prompt-file", lambda d: prompt_file(d, "prompt-latin1.txt"), ["{d}/prompt-latin1.txt:2: the prompt file is not UTF-8 text"]),
    ("generate: --top-p 0", lambda d: generate(d, extra=["--prompt", "a", "--top-p", "0"]), ["--top-p must be in (0, 1], got 0.0"]),
    ("generate: --top-p above 1", lambda d: generate(d, extra=["--prompt", "a", "--top-p", "1.5"]), ["--top-p must be in (0, 1], got 1.5"]),
    ("generate: negative --top-p", lambda d: generate(d, extra=["--prompt", "a", "--top-p", "-0.1"]), ["--top-p must be in (0, 1]"]),
    ("generate: NaN --top-p", lambda d: generate(d, extra=["--prompt", "a", "--top-p", "nan"]), ["--top-p must be a finite number"]),
    ("generate: NaN --temperature", lambda d: generate(d, extra=["--prompt", "a", "--temperature", "nan"]), ["--temperature must be a finite number, got nan"]),
    ("generate: infinite --temperature", lambda d: generate(d, extra=["--prompt", "a", "--temperature", "inf"]), ["--temperature must be a finite number, got inf"]),
    ("generate: negative --temperature", lambda d: generate(d, extra=["--prompt", "a", "--temperature", "-1"]), ["--temperature must be >= 0"]),
    ("generate: --temperature text", lambda d: generate(d, extra=["--prompt", "a", "--temperature", "hot"]), ["--temperature", "invalid float value: 'hot'"]),
    ("generate: NaN --repetition-penalty", lambda d: generate(d, extra=["--prompt", "a", "--repetition-penalty", "nan"]), ["--repetition-penalty must be a finite number"]),
    ("generate: --repetition-penalty 0", lambda d: generate(d, extra=["--prompt", "a", "--repetition-penalty", "0"]), ["--repetition-penalty must be > 0"]),
    ("generate: --max-new-tokens 0", lambda d: generate(d, extra=["--prompt", "a"]) + ["--max-new-tokens", "0"], ["--max-new-tokens must be >= 1"]),
    ("generate: negative --top-k", lambda d: generate(d, extra=["--prompt", "a", "--top-k", "-1"]), ["--top-k must be >= 0"]),
    # --- export and fill-mask: the remaining model-directory damage
    ("export: pickle-only model", lambda d: ["export", d / "pickled-mlm", "--out", d / "out"], PICKLE_REFUSED),
    ("export: truncated weights", lambda d: ["export", d / "truncated-weights", "--out", d / "out"], ["{d}/truncated-weights/model.safetensors: cannot read weights"]),
    ("export: model dir without weights", lambda d: ["export", d / "no-weights", "--out", d / "out"], ["{d}/no-weights: a budgetlm model directory without its weights"]),
    ("export: onto the model itself", lambda d: ["export", d / "pre", "--out", d / "pre" / "model"], ["the export directory must differ from the model directory"]),
    ("export: a plain file", lambda d: ["export", d / "a-file", "--out", d / "out"], ["{d}/a-file: not a budgetlm run"]),
    ("export: sentence-transformers dir with a LayerNorm module", lambda d: ["export", d / "st-layernorm", "--out", d / "out"],
     ["{d}/st-layernorm: a sentence-transformers model whose pipeline (Transformer -> Pooling -> LayerNorm) budgetlm cannot represent"]),
    ("fill-mask: pickle-only model", lambda d: ["fill-mask", d / "pickled-mlm", "a [MASK] ."], PICKLE_REFUSED),
    ("fill-mask: a decoder", lambda d: ["fill-mask", d / "dec", "a [MASK] ."], ["no masked-LM head (kind: clm)"]),
    ("fill-mask: not a model", lambda d: ["fill-mask", d / "not-a-model", "a [MASK] ."], ["{d}/not-a-model: not a budgetlm run"]),
    ("fill-mask: model config without a kind", lambda d: ["fill-mask", d / "kindless-config", "a [MASK] ."], ["{d}/kindless-config/config.json: not a budgetlm model config"]),
    ("unknown command", lambda d: ["shrink", d / "pre"], ["invalid choice: 'shrink'"]),
    ("unknown flag", lambda d: pretrain(d, extra=["--learning-rate", "3"]), ["unrecognized arguments: --learning-rate"]),
]


# stages that write one file or a report: a refusal leaves no trace of --out at all
LEAVES_NOTHING = {"tokenizer", "pmi-vocab", "evaluate", "embed", "similar", "probe", "generate", "tag", "export", "fill-mask"}
FINISHED = ("results.json", "model", "report.md", "report.json", "report.png")


def _stage(case_id: str) -> str:
    return case_id.split(":")[0].split("[")[0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_cleanly(fx, case, capsys, monkeypatch):
    name, build, fragments = case
    monkeypatch.setenv("BUDGETLM_CACHE", str(fx / "cache"))
    monkeypatch.setenv("BUDGETLM_DATA", str(fx / "root"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran without --trust-pickle"))
    out = fx / "out"
    shutil.rmtree(out, ignore_errors=True)
    before = {p.name for p in fx.iterdir()}
    capsys.readouterr()
    try:
        code = main([str(a) for a in build(fx)])
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    errors = [l for l in lines if l.startswith("error: ")]
    assert len(errors) == 1, err[-2000:]
    for fragment in fragments:
        assert fragment.format(d=fx) in errors[0], errors[0]
    # nothing that looks like a finished run, and no stray output (out.npy, out.tsv, *.tmp) beside it
    assert not any((out / f).exists() for f in FINISHED)
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
    assert {p.name for p in fx.iterdir()} - before <= {"out", "tokenizers"}
    if _stage(name) in LEAVES_NOTHING:
        assert not out.exists(), sorted(p.name for p in out.rglob("*"))


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _takes_a_model(parser: argparse.ArgumentParser) -> bool:
    return any(a.dest in ("model", "run_dir") for a in parser._actions)


MIN_CASES = 8  # per subcommand


def test_every_subcommand_and_reader_has_hostile_cases():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))
    per_stage = Counter(_stage(n) for n in names)
    thin = {stage: per_stage[stage] for stage in _subcommands() if per_stage[stage] < MIN_CASES}
    assert not thin, f"subcommands with fewer than {MIN_CASES} hostile cases: {thin}"
    readers = {n.split("[")[1].split("]")[0] for n in names if n.startswith("finetune[")}
    assert set(TASK_TYPES) <= readers, f"task types without hostile cases: {set(TASK_TYPES) - readers}"
    for stage, parser in _subcommands().items():
        if _takes_a_model(parser):
            assert "trust_pickle" in {a.dest for a in parser._actions}, f"{stage} loads weights but has no --trust-pickle"
            assert any(_stage(n) == stage and "pickle" in n for n in names), f"no pickle case for {stage}"


# ------------------------------------------------------------------------------------------------ unusual but valid

def _variants(tmp_path: Path, name: str, text: str) -> dict[str, Path]:
    raw = text.encode()
    out = {}
    for label, data in {"clean": raw, "bom": b"\xef\xbb\xbf" + raw, "crlf": raw.replace(b"\n", b"\r\n"),
                        "bom+crlf": b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n")}.items():
        p = tmp_path / label / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
        out[label] = p
    return out


@pytest.mark.parametrize("name, text", [
    ("a.txt", "first paragraph\nstill first\n\nsecond one\n"),
    ("a.tsv", CLEAN_TSV),
    ("a.csv", 'text,label\n"a, b",0\nplain,1\n'),
    ("a.jsonl", '{"text": "one", "label": 1}\n{"text": "two", "label": 0}\n'),
])
def test_bom_and_crlf_read_the_same_as_clean_text(tmp_path, name, text):
    files = _variants(tmp_path, name, text)
    expected = list(read_texts(files["clean"]))
    assert expected
    for label, p in files.items():
        assert list(read_texts(p)) == expected, label
    if name != "a.txt":
        clean = read_examples(files["clean"], "", "label")
        for label, p in files.items():
            got = read_examples(p, "", "label")
            assert (got.texts, got.labels, got.lines) == (clean.texts, clean.labels, clean.lines), label
    if name.endswith(".tsv"):
        assert all(read_table(p).header == ["sentence", "label"] for p in files.values())  # no BOM in the header


def test_invalid_utf8_is_replaced_counted_and_located(tmp_path, capsys):
    p = tmp_path / "latin1.txt"
    filler = "the cat sees a dog near the old house. " * 3
    p.write_bytes(f"caf\u00e9 {filler}\n\nna\u00efve {filler}\n".encode("latin-1"))  # two stray bytes, lines 1 and 3
    stats = ReadStats()
    docs = list(read_texts(p, stats=stats))
    assert docs == [f"caf\ufffd {filler}", f"na\ufffdve {filler}"]
    assert stats.replaced == 2 and stats.lines_with_replacements == [f"{p}:1", f"{p}:3"]
    stats.warn()
    assert f"replaced 2 invalid UTF-8 byte sequence(s) with U+FFFD (first at {p}:1, {p}:3)" in capsys.readouterr().err


def test_a_50_mb_line_of_text_is_read_in_bounded_pieces(fx):
    p = fx / "huge.txt"
    p.write_bytes(b"word " * (FIFTY_MB // 5))
    sizes = [len(doc) for doc in read_texts(p, doc_split="line")]
    assert sum(sizes) + len(sizes) >= FIFTY_MB - len(sizes) and max(sizes) <= 2 * 2**20  # nothing lost, nothing huge
    p.unlink()


def test_cli_runs_on_bom_crlf_files_like_on_clean_ones(fx, tmp_path, capsys):
    """finetune on BOM+CRLF copies of the labelled files: same labels, same accuracy as the clean files."""
    results = {}
    for label in ("clean", "bom+crlf"):
        d = tmp_path / label
        d.mkdir()
        for name in ("train.tsv", "dev.tsv"):
            data = (fx / name).read_bytes()
            if label != "clean":
                data = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
            (d / name).write_bytes(data)
        code = main(["finetune", "--model", str(fx / "pre"), "--train", str(d / "train.tsv"), "--valid", str(d / "dev.tsv"),
                     "--budget", "2steps", "--out", str(d / "run"), "train.threads=1", "train.batch_size=4"])
        assert code == 0, capsys.readouterr().err
        results[label] = json.loads((d / "run" / "results.json").read_text())
    assert results["clean"]["labels"] == results["bom+crlf"]["labels"] == ["0", "1"]
    assert results["clean"]["accuracy"] == results["bom+crlf"]["accuracy"]


def test_bom_and_crlf_in_the_other_readers_read_like_clean_text(tmp_path):
    """CoNLL, STS, pair tables, PMI vocabularies and prompt files: a BOM and CRLF change nothing."""
    from budgetlm.data.pairs import read_pair_file
    from budgetlm.objectives.pmi_vocab import read_pmi_vocab
    from budgetlm.stages.generate import read_prompt
    from budgetlm.tasks.conll import read_conll

    readers = {
        "a.conll": ("the\tO\nking\tB-PER\n\nthe\tO\nriver\tB-LOC\n", lambda p: (lambda c: (c.words, c.tags, c.lines))(read_conll(p))),
        "sts.csv": ("\n".join(sts_lines(0, 3)) + "\n", lambda p: read_pair_file(p).scored),
        "pairs.tsv": ("sentence1\tsentence2\nthe cat\tthe dog\n", lambda p: read_pair_file(p).positives),
        "vocab.tsv": ("# budgetlm pmi-vocab v1\nthe cat\t5\t1.5\nnew york city\t3\t0.5\n", read_pmi_vocab),
        "prompt.txt": ("the cat\nsat on the\n", lambda p: read_prompt(None, str(p))),
    }
    for name, (text, read) in readers.items():
        files = _variants(tmp_path, name, text)
        expected = read(files["clean"])
        assert expected, name
        for label, p in files.items():
            assert read(p) == expected, (name, label)


def test_evaluate_failing_late_writes_no_report_and_keeps_the_finished_task(fx, tmp_path, capsys, monkeypatch):
    """sst2 trains and finishes; agnews then meets a ragged row: exit 2, no report, no empty agnews/ folder,
    and sst2's finished run stays for the next attempt to reuse."""
    monkeypatch.setenv("BUDGETLM_CACHE", str(fx / "cache"))
    monkeypatch.setenv("BUDGETLM_DATA", str(fx / "root"))
    out = tmp_path / "report"
    capsys.readouterr()
    code = main([str(a) for a in evaluate(fx, tasks="sst2,agnews", out=out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    errors = [l for l in err.splitlines() if l.startswith("error: ")]
    assert errors == [f"error: {fx}/root/agnews/dev.tsv:9: expected 2 columns (text, label), found 1"], err[-2000:]
    assert (out / "sst2" / "seed0" / "results.json").is_file()
    assert not (out / "agnews").exists()
    assert not any((out / f).exists() for f in ("report.md", "report.json", "report.png"))


# ------------------------------------------------------------------------------------------------ --trust-pickle

def _finetuned(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    timing = ("seconds", "elapsed", "per_s")  # wall-clock figures differ between any two runs
    return {k: v for k, v in results.items() if isinstance(v, float) and not any(t in k for t in timing)}


# every stage that loads weights: argv for a model dir `m`, and what must agree between the pickled and the
# safetensors copy of the same model (pickled-mlm / hf-mlm; generate uses the decoder's pair)
TRUST = {
    "fill-mask": (lambda d, m: ["fill-mask", d / m, "the [MASK] sees a dog ."], lambda d, m, out: out),
    "embed": (lambda d, m: ["embed", d / m, d / "valid.txt", "--out", d / "trust" / f"{m}.npy"],
              lambda d, m, out: np.load(d / "trust" / f"{m}.npy").tolist()),
    "similar": (lambda d, m: ["similar", d / m, "the cat sees a dog", d / "valid.txt", "--top-k", "2"], lambda d, m, out: out),
    "generate": (lambda d, m: ["generate", d / m.replace("mlm", "dec"), "--prompt", "the cat", "--max-new-tokens", "4",
                               "--temperature", "0"], lambda d, m, out: out),
    "export": (lambda d, m: ["export", d / m, "--out", d / "trust" / f"export-{m}"],
               lambda d, m, out: {k: v.tolist() for k, v in load_file(str(d / "trust" / f"export-{m}" / "model.safetensors")).items()}),
    "finetune": (lambda d, m: ["finetune", "--model", d / m, "--train", d / "train.tsv", "--valid", d / "dev.tsv", "--budget",
                               "2steps", "--out", d / "trust" / f"ft-{m}", "train.threads=1", "train.batch_size=4"],
                 lambda d, m, out: _finetuned(d / "trust" / f"ft-{m}")),
    "evaluate": (lambda d, m: evaluate(d, model=m, out=d / "trust" / f"ev-{m}"),
                 lambda d, m, out: json.loads((d / "trust" / f"ev-{m}" / "report.json").read_text())["average"]),
    "probe": (lambda d, m: probe(d, model=m, extra=["--out", d / "trust" / f"probe-{m}.json"]),
              lambda d, m, out: json.loads((d / "trust" / f"probe-{m}.json").read_text())["test_accuracy"]),
    "tag": (lambda d, m: ["tag", d / m, "the king sees the river ."], None),  # no transformers token-classification import
}


def test_the_trust_pickle_table_covers_every_stage_that_loads_weights():
    assert set(TRUST) == {stage for stage, p in _subcommands().items() if _takes_a_model(p)}


@pytest.mark.parametrize("stage", sorted(TRUST))
def test_trust_pickle_is_required_and_honoured(fx, stage, capsys, monkeypatch):
    """Without --trust-pickle a pytorch_model.bin is refused (torch.load never runs); with it the model loads and
    gives exactly what its safetensors copy gives."""
    monkeypatch.setenv("BUDGETLM_CACHE", str(fx / "cache"))
    monkeypatch.setenv("BUDGETLM_DATA", str(fx / "root"))
    (fx / "trust").mkdir(exist_ok=True)
    build, result = TRUST[stage]

    def run(argv):
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran without --trust-pickle"))
    code, out, err = run(build(fx, "pickled-mlm"))
    errors = [l for l in err.splitlines() if l.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err[-2000:]
    assert all(f in errors[0] for f in PICKLE_REFUSED), errors[0]

    monkeypatch.setattr(torch, "load", real_load)
    code, out, err = run(build(fx, "pickled-mlm") + ["--trust-pickle"])
    if result is None:  # tag: the model loaded, and is refused for what it is, not for how it is stored
        assert code == 2 and "no token-classification head" in err and "--trust-pickle" not in err, err[-2000:]
        return
    assert code == 0, err[-2000:]
    pickled = result(fx, "pickled-mlm", out)
    code, out, err = run(build(fx, "hf-mlm"))
    assert code == 0, err[-2000:]
    assert pickled == result(fx, "hf-mlm", out)
