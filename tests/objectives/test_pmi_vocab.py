"""The PMI n-gram vocabulary: counts and PMI_n against hand arithmetic, the length mix, the file format and its
errors, and `budgetlm pmi-vocab` end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from budgetlm.cli import main
from budgetlm.errors import UserError
from budgetlm.objectives.pmi_vocab import (
    build_pmi_vocab, chain_hashes, chain_hashes_rows, count_ngrams, pmi_scores, read_pmi_vocab, read_word_stream,
    segmentations,
)


def scores_of(text: str, tmp_path, n: int, min_count: int = 1) -> dict[str, tuple[int, float]]:
    f = tmp_path / "toy.txt"
    f.write_text(text, encoding="utf-8")
    stream, words = read_word_stream([f])
    counts = count_ngrams(stream, words, min_count)
    grams, scores = pmi_scores(counts, n)
    idx = {tuple(g): i for i, g in enumerate(grams.tolist())}
    out = {}
    for g, i in idx.items():
        out[" ".join(words[w] for w in g)] = (int(counts.counts[n][i]), float(scores[i]))
    return out


def test_pmi_on_a_toy_corpus_matches_hand_arithmetic(tmp_path):
    # "x y x y z": 5 unigram positions, 4 bigram positions (xy, yx, xy, yz), 3 trigram positions (xyx, yxy, xyz)
    # p(x) = p(y) = 2/5, p(z) = 1/5; p(xy) = 2/4, p(yx) = p(yz) = 1/4; every trigram 1/3
    bi = scores_of("x y x y z\n", tmp_path, 2)
    assert bi["x y"] == (2, pytest.approx(math.log((2 / 4) / ((2 / 5) * (2 / 5)))))  # log 3.125
    assert bi["y z"] == (1, pytest.approx(math.log((1 / 4) / ((2 / 5) * (1 / 5)))))  # log 3.125
    assert bi["y x"] == (1, pytest.approx(math.log((1 / 4) / ((2 / 5) * (2 / 5)))))  # log 1.5625
    tri = scores_of("x y x y z\n", tmp_path, 3)
    # x y z: best segmentation is (x)(y z) or (x y)(z), both 0.1; (x)(y)(z) = 0.032 -> PMI = log((1/3) / 0.1)
    assert tri["x y z"] == (1, pytest.approx(math.log((1 / 3) / 0.1)))
    # x y x: (x y)(x) = 1/2 * 2/5 = 0.2 beats (x)(y x) = 0.1 -> PMI = log((1/3) / 0.2)
    assert tri["x y x"] == (1, pytest.approx(math.log((1 / 3) / 0.2)))


def test_punctuation_and_documents_break_ngrams(tmp_path):
    bi = scores_of("New York. New York!\n\nyork new\n", tmp_path, 2)
    # "york new" exists only in the last document; ". New" never pairs york with new across the full stop
    assert bi["new york"][0] == 2
    assert bi["york new"][0] == 1
    assert set(bi) == {"new york", "york new"}


def test_min_count_prunes(tmp_path):
    bi = scores_of("a b a b c d\n", tmp_path, 2, min_count=2)
    assert set(bi) == {"a b"}


def test_segmentations_are_all_compositions():
    assert segmentations(2) == [[(0, 1), (1, 2)]]
    assert len(segmentations(5)) == 2**4 - 1
    assert all(parts[0][0] == 0 and parts[-1][1] == 5 and len(parts) >= 2 for parts in segmentations(5))


def test_row_hashes_equal_stream_hashes():
    ids = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int32)
    rows = np.stack([ids[i:i + 3] for i in range(len(ids) - 2)])
    assert np.array_equal(chain_hashes(ids, 3), chain_hashes_rows(rows))
    assert len(set(chain_hashes(ids, 2).tolist())) == 7  # no accidental collisions among distinct bigrams


def corpus_file(tmp_path):
    import random

    rng = random.Random(0)
    fillers = "the a of and to in is was it he she they".split()
    sents = []
    for _ in range(400):
        words = [rng.choice(fillers) for _ in range(rng.randint(3, 8))]
        if rng.random() < 0.5:
            words.insert(rng.randint(0, len(words)), "los angeles")
        if rng.random() < 0.3:
            words.insert(rng.randint(0, len(words)), "united states of america")
        sents.append(" ".join(words) + ".")
    f = tmp_path / "corpus.txt"
    f.write_text("\n\n".join(" ".join(sents[i:i + 4]) for i in range(0, len(sents), 4)) + "\n", encoding="utf-8")
    return f


def test_build_writes_a_readable_ranked_mixed_vocabulary(tmp_path):
    out = tmp_path / "vocab.txt"
    summary = build_pmi_vocab([corpus_file(tmp_path)], out, min_count=3, size=40)
    entries = read_pmi_vocab(out)
    assert len(entries) == summary["entries"]
    per_n = {n: [e for e in entries if len(e.words) == n] for n in range(2, 6)}
    assert len(per_n[2]) <= 20 and len(per_n[3]) <= 10 and len(per_n[4]) <= 5 and len(per_n[5]) <= 5
    # the planted collocations top their lengths; each length is ranked by score
    assert {e.words for e in per_n[2][:2]} == {("los", "angeles"), ("united", "states")}
    assert ("united", "states", "of", "america") in [e.words for e in per_n[4]]
    for grams in per_n.values():
        assert [e.score for e in grams] == sorted((e.score for e in grams), reverse=True)
    assert all(e.count >= 3 for e in entries)
    text = out.read_text()
    assert text.startswith("#") and "los angeles\t" in text


@pytest.mark.parametrize("content, message", [
    ("new york\t5\n", "2:"),  # line 2: the header is line 1
    ("new\t5\t1.0\n", "2 to 5 words"),
    ("a b c d e f\t5\t1.0\n", "2 to 5 words"),
    ("new york\tfive\t1.0\n", "integer"),
    ("new york\t0\t1.0\n", ">= 1"),
    ("new york\t3\tnan\n", "finite"),
])
def test_malformed_lines_name_file_and_line(tmp_path, content, message):
    f = tmp_path / "bad.txt"
    f.write_text("# header\n" + content, encoding="utf-8")
    with pytest.raises(UserError, match=message) as e:
        read_pmi_vocab(f)
    assert f"{f}:2:" in str(e.value)


def test_missing_and_empty_vocabulary(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_pmi_vocab(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("# only a header\n")
    with pytest.raises(UserError, match="no n-grams"):
        read_pmi_vocab(tmp_path / "empty.txt")


def test_cli_builds_a_vocabulary(tmp_path, capsys):
    out = tmp_path / "v.txt"
    assert main(["pmi-vocab", "--out", str(out), "--min-count", "3", str(corpus_file(tmp_path))]) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_pmi_vocab(out)


@pytest.mark.parametrize("argv, message", [
    (["--min-count", "0"], "--min-count"),
    (["--size", "-1"], "--size"),
])
def test_cli_bad_flags(tmp_path, capsys, argv, message):
    code = main(["pmi-vocab", "--out", str(tmp_path / "v.txt"), *argv, str(corpus_file(tmp_path))])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_cli_missing_input_and_no_words(tmp_path, capsys):
    assert main(["pmi-vocab", "--out", str(tmp_path / "v.txt"), str(tmp_path / "missing.txt")]) == 2
    assert "error:" in capsys.readouterr().err
    (tmp_path / "punct.txt").write_text("... !!! ,,,\n")
    assert main(["pmi-vocab", "--out", str(tmp_path / "v.txt"), str(tmp_path / "punct.txt")]) == 2
    assert "no words" in capsys.readouterr().err
