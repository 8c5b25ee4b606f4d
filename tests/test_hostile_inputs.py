"""Every CLI stage fed hostile input: one clear `error:` line (naming file and line where one applies), exit code 2,
no traceback, and nothing left in --out that looks like a finished run (no results.json, no model/).

Inputs that are unusual but valid (a BOM, CRLF line ends, invalid UTF-8 inside text, a 50 MB line of text) must
instead give the same result as their clean versions, with a warning where bytes were replaced.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from budgetlm.cli import main
from budgetlm.data.readers import ReadStats, read_table, read_texts
from budgetlm.tasks.classification import read_examples

from test_cli import TINY_MODEL, TINY_TRAIN, labelled_rows

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
}


@pytest.fixture(scope="module")
def fx(tmp_path_factory, write_text_files):
    """Hostile files plus what the stages need to get as far as them: tokenizer, corpus, labelled data, a model."""
    d = tmp_path_factory.mktemp("hostile")
    write_text_files(d)
    for name, content in HOSTILE_FILES.items():
        (d / name).write_bytes(content)
    (d / "train.tsv").write_text("\n".join(["sentence\tlabel", *labelled_rows(0, 24)]) + "\n")
    (d / "dev.tsv").write_text("\n".join(["sentence\tlabel", *labelled_rows(1, 8)]) + "\n")
    (d / "a-directory").mkdir()
    (d / "not-a-model").mkdir()
    (d / "not-a-model" / "notes.txt").write_text("hello")
    (d / "a-file").write_text("I am a file")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUDGETLM_CACHE", str(d / "cache"))
        assert main(["tokenizer", "--vocab-size", "100", "--out", str(d / "tok"), str(d / "train.txt")]) == 0
        assert main(["pretrain", "--tokenizer", str(d / "tok"), "--train", str(d / "train.txt"), "--valid",
                     str(d / "valid.txt"), "--budget", "2steps", "--out", str(d / "pre"), *TINY_MODEL, *TINY_TRAIN]) == 0
    for damage in ("truncated-weights", "garbage-config"):
        bad = d / damage
        bad.mkdir()
        for f in (d / "pre" / "model").iterdir():
            (bad / f.name).write_bytes(f.read_bytes())
    weights = d / "truncated-weights" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    (d / "garbage-config" / "config.json").write_bytes(b'{"format": "budgetlm", "model": {"d_model": "wide"')
    return d


def pretrain(d, train="train.txt", valid="valid.txt", tok="tok", extra=(), budget="2steps"):
    argv = ["pretrain", "--train", d / train, "--valid", d / valid, "--budget", budget, "--out", d / "out", *TINY_MODEL, *TINY_TRAIN]
    return argv + (["--tokenizer", d / tok] if tok else []) + list(extra)


def finetune(d, train="train.tsv", valid="dev.tsv", model="pre", extra=(), budget="2steps"):
    return ["finetune", "--model", d / model, "--train", d / train, "--valid", d / valid, "--budget", budget,
            "--out", d / "out", "train.threads=1", *extra]


def tokenizer(d, *files, extra=()):
    return ["tokenizer", "--vocab-size", "100", "--out", d / "out", *[d / f for f in files], *extra]


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
    ("pretrain: --resume with nothing to resume", lambda d: pretrain(d, extra=["--resume"]), ["nothing to resume"]),
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
    ("unknown command", lambda d: ["shrink", d / "pre"], ["invalid choice: 'shrink'"]),
    ("unknown flag", lambda d: pretrain(d, extra=["--learning-rate", "3"]), ["unrecognized arguments: --learning-rate"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_cleanly(fx, case, capsys, monkeypatch):
    _, build, fragments = case
    monkeypatch.setenv("BUDGETLM_CACHE", str(fx / "cache"))
    out = fx / "out"
    shutil.rmtree(out, ignore_errors=True)
    assert not (out / "results.json").exists() and not (out / "model").exists()
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
    # nothing that looks like a finished run
    assert not (out / "results.json").exists() and not (out / "model").exists()
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())


def test_every_case_is_distinct_and_the_table_covers_every_stage():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))
    assert {n.split(":")[0] for n in names} >= {"tokenizer", "pretrain", "finetune", "export", "fill-mask"}


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
