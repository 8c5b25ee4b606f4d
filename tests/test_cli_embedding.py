"""Sentence embeddings through the CLI on a tiny model: finetune --task-type embedding, embed, similar; and
their bad inputs as exit code 2 with one `error:` line."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from budgetlm.models import build_mlm_model
from budgetlm.models.io import model_meta, save_model
from test_cli import assert_user_error, run_cli

WORDS = "red blue small big old young cat dog bird tree river king queen ship".split()
TINY_TRAIN = ["train.batch_size=4", "train.log_every=1", "train.threads=1", "train.checkpoint_every=1000steps"]


def sts_lines(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    sents = [f"the {rng.choice(WORDS)} {rng.choice(WORDS)} sees a {rng.choice(WORDS)} ." for _ in range(2 * n)]
    return [f"main-captions\tMSRvid\t2012\t{i:04d}\t{rng.uniform(0, 5):.3f}\t{sents[2 * i]}\t{sents[2 * i + 1]}"
            + ("\textra\tcolumns" if i % 3 == 0 else "") for i in range(n)]


@pytest.fixture(scope="module")
def emb_files(tmp_path_factory, tiny_tokenizer_file, sentence_maker):
    from budgetlm.models.config import ModelConfig
    from budgetlm.tokenizer import load_tokenizer

    d = tmp_path_factory.mktemp("embedding")
    cfg = ModelConfig(vocab_size=load_tokenizer(tiny_tokenizer_file).get_vocab_size(), d_model=32, n_layers=2,
                      n_heads=2, d_ff=64, max_seq_len=32, dropout=0.1)
    torch.manual_seed(0)
    model = build_mlm_model(cfg)
    save_model(model, d / "mlm", model_meta(model, "mlm"), tiny_tokenizer_file)
    (d / "sts-train.csv").write_text("\n".join(sts_lines(0, 24)) + "\n")
    (d / "sts-dev.csv").write_text("\n".join(sts_lines(1, 12)) + "\n")
    (d / "raw.txt").write_text("\n".join(sentence_maker(2, 12)) + "\n")
    (d / "corpus.txt").write_text("\n".join(sentence_maker(3, 30)) + "\n")
    return d


def test_finetune_embedding_then_embed_and_similar(emb_files, tmp_path, capsys):
    d = emb_files
    code, out, err = run_cli(capsys, "finetune", "--task-type", "embedding", "--model", d / "mlm",
                             "--train", d / "sts-train.csv", "--valid", d / "sts-dev.csv", "--out", tmp_path / "ft",
                             "--budget", "3steps", *TINY_TRAIN, f"embedding.pairs=[{d / 'raw.txt'}]",
                             "embedding.pooling=cls", "embedding.dim=16", f"embedding.test={d / 'sts-dev.csv'}")
    assert code == 0, err
    assert "task type: embedding" in err and "24 scored pairs" in err and "12 sentences" in err
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert -100 <= results["spearman"] <= 100 and results["test_spearman"] == results["spearman"]
    meta = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert meta["kind"] == "embedder" and meta["embedding"] == {"pooling": "cls", "dim": 16, "top_pcs": 0}
    logged = [json.loads(l) for l in (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()]
    assert {"scored_loss", "pairs_loss", "simcse_loss"} <= set(logged[0])

    code, out, err = run_cli(capsys, "embed", tmp_path / "ft", d / "corpus.txt", "--out", tmp_path / "x.npy")
    assert code == 0, err
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (30, 16) and np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)

    query = (d / "corpus.txt").read_text().splitlines()[7]
    code, out, err = run_cli(capsys, "similar", tmp_path / "ft", query, d / "corpus.txt", "--top-k", "3")
    assert code == 0, err
    lines = out.splitlines()
    # the query itself is its own nearest neighbour; a 3-step model may tie other sentences with it at 1.000
    scores = [float(l.split("  ", 1)[0]) for l in lines]
    assert len(lines) == 3 and scores == sorted(scores, reverse=True) and scores[0] == 1.0, out
    assert f"1.000  {query}" in lines or scores == [1.0] * 3, out


def test_embed_any_encoder_mean_pooled(emb_files, tmp_path, capsys):
    code, out, err = run_cli(capsys, "embed", emb_files / "mlm", emb_files / "corpus.txt", "--out", tmp_path / "m.npy")
    assert code == 0, err
    assert np.load(tmp_path / "m.npy").shape == (30, 32)


@pytest.mark.parametrize("case", ["pairs-missing-column", "valid-unscored", "bad-score", "mse-dims", "contrastive-dims",
                                  "negative-distill-contrastive", "no-valid", "bad-task", "bad-margin"])
def test_finetune_embedding_bad_inputs(emb_files, tmp_path, capsys, case):
    d = emb_files
    base = ["finetune", "--task-type", "embedding", "--model", d / "mlm", "--out", tmp_path / "ft", "--budget", "2steps"]
    train, valid = ["--train", d / "sts-train.csv"], ["--valid", d / "sts-dev.csv", *TINY_TRAIN]
    if case == "pairs-missing-column":
        p = tmp_path / "pairs.tsv"
        p.write_text("sentence1\tsentence2\na b\tc d\nonly one\n")
        assert_user_error(capsys, base + train + valid + [f"embedding.pairs=[{p}]"], "pairs.tsv:3:", "expected 2 columns",
                          only_output=False)
    elif case == "valid-unscored":
        p = tmp_path / "dev.tsv"
        p.write_text("sentence1\tsentence2\na b\tc d\n")
        assert_user_error(capsys, base + train + ["--valid", p, *TINY_TRAIN], "needs similarity scores", only_output=False)
    elif case == "bad-score":
        p = tmp_path / "sts.csv"
        p.write_text(sts_lines(0, 3)[0] + "\ng\tf\t2012\t9\tN/A\ta b\tc d\n")
        assert_user_error(capsys, base + ["--train", p] + valid, "sts.csv:2:", "'N/A'", only_output=False)
    elif case == "mse-dims":
        assert_user_error(capsys, base + train + valid + ["embedding.teacher=minilm"], "embedding.dim=384",
                          only_output=False)
    elif case == "contrastive-dims":  # similarity matching works across sizes; the contrastive term does not
        assert_user_error(capsys, base + train + valid + ["embedding.teacher=minilm", "embedding.distill_loss=similarity",
                                                          "embedding.distill_contrastive_weight=0.1"],
                          "embedding.distill_contrastive_weight compares", only_output=False)
    elif case == "negative-distill-contrastive":
        assert_user_error(capsys, base + train + valid + ["embedding.distill_contrastive_weight=-1"],
                          "embedding.distill_contrastive_weight must be >= 0", only_output=False)
    elif case == "no-valid":
        assert_user_error(capsys, base + train + TINY_TRAIN, "--valid STS_FILE", only_output=False)
    elif case == "bad-task":
        assert_user_error(capsys, base + ["--task", "sst2"], "not an embedding task", only_output=False)
    else:
        assert_user_error(capsys, base + train + valid + ["embedding.margin=2"], "embedding.margin")


@pytest.mark.parametrize("argv, fragments", [
    (["embed", "{mlm}", "{missing}", "--out", "{tmp}/x.npy"], ["file not found"]),
    (["embed", "{mlm}", "{corpus}", "--out", "{tmp}/x.txt"], ["--out must end in .npy"]),
    (["embed", "{mlm}", "{corpus}", "--out", "{tmp}/no/such/dir/x.npy"], ["output directory does not exist"]),
    (["embed", "{tmp}", "{corpus}", "--out", "{tmp}/x.npy"], ["not a budgetlm run"]),
    (["embed", "{mlm}", "{empty}", "--out", "{tmp}/x.npy"], ["no texts found"]),
    (["similar", "{mlm}", "a query", "{corpus}", "--top-k", "0"], ["--top-k must be >= 1"]),
    (["similar", "{mlm}", "  ", "{corpus}"], ["the query is empty"]),
    (["similar", "{mlm}", "a query", "{corpus}", "--batch-size", "0"], ["--batch-size must be >= 1"]),
])
def test_embed_and_similar_bad_inputs(emb_files, tmp_path, capsys, argv, fragments):
    (tmp_path / "empty.txt").write_text("\n \n")
    paths = {"mlm": emb_files / "mlm", "corpus": emb_files / "corpus.txt", "missing": tmp_path / "nope.txt",
             "tmp": tmp_path, "empty": tmp_path / "empty.txt"}
    assert_user_error(capsys, [a.format(**paths) for a in argv], *fragments)


def test_data_root_names_for_pair_files(tmp_path, monkeypatch):
    from budgetlm.errors import UserError
    from budgetlm.stages.finetune_embedding import _named

    (tmp_path / "mrpc").mkdir()
    (tmp_path / "mrpc" / "msr_paraphrase_train.txt").write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
    monkeypatch.setenv("BUDGETLM_DATA", str(tmp_path))
    assert _named(["mrpc", "my/pairs.tsv"]) == [str(tmp_path / "mrpc" / "msr_paraphrase_train.txt"), "my/pairs.tsv"]
    with pytest.raises(UserError, match="missing from the data root"):
        _named(["sst2"])


def _pair_table(path, seed: int, n: int) -> None:
    """sentence1, sentence2, label: 1 when the second sentence repeats the first, else an unrelated sentence."""
    rng = random.Random(seed)
    rows = ["sentence1\tsentence2\tlabel"]
    for i in range(n):
        a = f"the {rng.choice(WORDS)} {rng.choice(WORDS)} sees a {rng.choice(WORDS)} ."
        b = a if i % 2 else f"a {rng.choice(WORDS)} near the {rng.choice(WORDS)} ."
        rows.append(f"{a}\t{b}\t{i % 2}")
    path.write_text("\n".join(rows) + "\n")


def test_probe_pairs_with_frozen_embeddings(emb_files, tmp_path, capsys):
    _pair_table(tmp_path / "train.tsv", 0, 40)
    _pair_table(tmp_path / "test.tsv", 1, 20)
    code, out, err = run_cli(capsys, "probe", emb_files / "mlm", "--train", tmp_path / "train.tsv",
                             "--test", tmp_path / "test.tsv", "--out", tmp_path / "probe.json")
    assert code == 0, err
    assert "40 training pairs, 20 test pairs" in err
    results = json.loads((tmp_path / "probe.json").read_text())
    assert results == json.loads(out)
    # identical sentences give |u-v| = 0 and cos = 1: even a random encoder separates them
    assert results["test_accuracy"] == 1.0 and results["test_f1"] == 1.0 and results["C"] > 0


def test_probe_fits_with_and_without_the_post_processing_and_keeps_the_better_by_cv(emb_files, tmp_path, capsys):
    from budgetlm.models import EmbeddingHead, Model
    from budgetlm.models.io import load_model

    mlm, _ = load_model(emb_files / "mlm")
    model = Model(mlm.cfg, {"embed": EmbeddingHead(mlm.cfg, "mean", 0)})
    model.encoder.load_state_dict(mlm.encoder.state_dict())
    head = model.heads["embed"]
    torch.manual_seed(1)
    head.set_top_components(0.1 * torch.randn(mlm.cfg.d_model), torch.linalg.qr(torch.randn(mlm.cfg.d_model, 2))[0].T)
    pooled = torch.randn(3, 1, mlm.cfg.d_model)
    with head.raw():  # the plain head inside the block, the post-processing back after it
        assert torch.equal(head(pooled, None), pooled[:, 0])
    assert head.top_pcs == 2 and not torch.allclose(head(pooled, None), pooled[:, 0])
    # one encoder pass gives both: the head's post-processing applied to the raw embeddings is the model's output
    from budgetlm.stages.probe import embedding_variants
    from budgetlm.tasks.embedding import embed, encode_ids
    from budgetlm.tokenizer import load_tokenizer

    tok, texts = load_tokenizer(emb_files / "mlm" / "tokenizer.json"), ["the cat sees a dog .", "a bird", "the tree ."]
    variants = embedding_variants(model.eval(), texts, tok)
    ids = encode_ids(tok, texts, mlm.cfg.max_seq_len)
    np.testing.assert_allclose(variants["model"], embed(model, ids).numpy(), atol=1e-6)
    with head.raw():
        np.testing.assert_allclose(variants["raw"], embed(model, ids).numpy(), atol=1e-6)
    save_model(model, tmp_path / "emb", model_meta(model, "embedder", embedding={"pooling": "mean", "dim": 0, "top_pcs": 2}),
               emb_files / "mlm" / "tokenizer.json")
    _pair_table(tmp_path / "train.tsv", 0, 40)
    _pair_table(tmp_path / "test.tsv", 1, 20)
    code, out, err = run_cli(capsys, "probe", tmp_path / "emb", "--train", tmp_path / "train.tsv", "--test", tmp_path / "test.tsv")
    assert code == 0, err
    results = json.loads(out)
    post, raw = results["cv_accuracy_post_processed"], results["cv_accuracy_raw"]
    assert results["embeddings"] == ("raw" if raw > post else "post-processed")  # ties keep the model's own
    assert results["cv_accuracy"] == max(post, raw)
    assert "chosen by cross-validated accuracy" in err


def test_probe_bad_input(emb_files, tmp_path, capsys):
    (tmp_path / "one.tsv").write_text("sentence\tlabel\na cat .\t1\na dog .\t0\n")
    assert_user_error(capsys, ["probe", emb_files / "mlm", "--train", tmp_path / "one.tsv", "--test", tmp_path / "one.tsv"],
                      "second text column")
    _pair_table(tmp_path / "train.tsv", 0, 40)
    assert_user_error(capsys, ["probe", emb_files / "mlm", "--train", tmp_path / "train.tsv"], "--test")
    (tmp_path / "same.tsv").write_text("sentence1\tsentence2\tlabel\n" + "a cat .\ta dog .\t1\n" * 12)
    assert_user_error(capsys, ["probe", emb_files / "mlm", "--train", tmp_path / "same.tsv", "--test", tmp_path / "same.tsv"],
                      "two labels", only_output=False)


def test_all_but_the_top_is_chosen_on_valid_and_saved_with_the_model(emb_files, tmp_path, capsys):
    d = emb_files
    code, out, err = run_cli(capsys, "finetune", "--task-type", "embedding", "--model", d / "mlm",
                             "--train", d / "sts-train.csv", "--valid", d / "sts-dev.csv", "--out", tmp_path / "ft",
                             "--budget", "3steps", *TINY_TRAIN, "embedding.dim=16", "embedding.remove_top_pcs=-1",
                             f"embedding.test={d / 'sts-dev.csv'}")
    assert code == 0, err
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    k = results["remove_top_pcs"]
    assert 0 <= k <= 10 and set(results["spearman_by_top_pcs"]) == {str(i) for i in range(11)}
    assert results["spearman"] == results["spearman_by_top_pcs"][str(k)] == max(results["spearman_by_top_pcs"].values())
    assert results["spearman_raw"] == results["test_spearman_raw"]  # test file = dev file here
    assert results["test_spearman"] == results["spearman"]
    meta = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert meta["embedding"]["top_pcs"] == k
    # the saved model embeds with the post-processing: the reloaded model reproduces the dev figure
    from budgetlm.data.pairs import read_scored_pairs
    from budgetlm.stages.embed import load_embedder
    from budgetlm.tasks.embedding import sts_spearman

    model, tok = load_embedder(tmp_path / "ft")
    assert model.heads["embed"].top_pcs == k
    assert round(sts_spearman(model, tok, read_scored_pairs(d / "sts-dev.csv"), 32), 2) == results["spearman"]
    assert_user_error(capsys, ["finetune", "--task-type", "embedding", "--model", d / "mlm", "--train", d / "sts-train.csv",
                               "--valid", d / "sts-dev.csv", "--out", tmp_path / "bad", "embedding.remove_top_pcs=-2"],
                      "embedding.remove_top_pcs must be >= 0")


def test_continued_embedding_training_starts_from_the_models_projection(emb_files, tmp_path, capsys):
    from budgetlm.models.config import ModelConfig
    from budgetlm.models import EmbeddingHead, Model
    from budgetlm.models.io import load_model
    from budgetlm.stages.finetune_embedding import continue_head

    d = emb_files
    code, _, err = run_cli(capsys, "finetune", "--task-type", "embedding", "--model", d / "mlm",
                           "--train", d / "sts-train.csv", "--valid", d / "sts-dev.csv", "--out", tmp_path / "first",
                           "--budget", "2steps", *TINY_TRAIN, "embedding.dim=16")
    assert code == 0, err
    assert "embedding head: a new projection (the model has none)" in err
    first, _ = load_model(tmp_path / "first" / "model")
    code, _, err = run_cli(capsys, "finetune", "--task-type", "embedding", "--model", tmp_path / "first",
                           "--train", d / "sts-train.csv", "--valid", d / "sts-dev.csv", "--out", tmp_path / "second",
                           "--budget", "2steps", *TINY_TRAIN, "embedding.dim=16", "train.lr=1e-12")
    assert code == 0, err
    assert "embedding head: continuing from the model's projection (mean pooling -> 16)" in err
    second, _ = load_model(tmp_path / "second" / "model")
    # at a vanishing learning rate the second run ends where the first did, head included
    for name, w in first.heads["embed"].state_dict().items():
        assert torch.allclose(w, second.heads["embed"].state_dict()[name], atol=1e-6), name

    cfg = first.cfg
    fresh = EmbeddingHead(cfg, "mean", 16)
    before = fresh.proj.weight.detach().clone()
    for head, fragment in [(EmbeddingHead(cfg, "cls", 16), "the model's is mean pooling, identity, 32->16; "
                                                           "this run's cls pooling, identity, 32->16"),
                           (EmbeddingHead(cfg, "mean", 8), "32->8"),
                           (EmbeddingHead(cfg, "mean", 16, activation="tanh"), "this run's mean pooling, tanh")]:
        assert fragment in continue_head(head, first)
    assert continue_head(EmbeddingHead(cfg, "mean", 0), first) == "embedding head: pooling only, nothing to carry over"
    assert torch.equal(fresh.proj.weight, before)
    assert "the model has none" in continue_head(fresh, Model(ModelConfig(**vars(cfg))))
    assert torch.equal(fresh.proj.weight, before)
