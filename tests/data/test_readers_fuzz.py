"""Property-based fuzzing of the readers: whatever the bytes, a reader either returns the text it was given
(nothing lost, nothing invented) or raises a UserError naming the file -- never another exception.

Case counts per run are the max_examples below (hypothesis may stop earlier when a strategy is exhausted);
`pytest --hypothesis-show-statistics` prints the exact numbers.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetlm.data.readers import read_table, read_texts
from budgetlm.errors import UserError

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# text a user could have: any printable character (incl. U+FFFD, BOMs, CR) but no NUL and no lone surrogate
text_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
cell_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


_ROOT: list[Path] = []  # this module's directory under pytest's basetemp (pytest prunes old runs)
_SERIAL = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _fuzz_root(tmp_path_factory):
    _ROOT.append(tmp_path_factory.mktemp("fuzz"))
    yield
    _ROOT.pop()


def write(data: bytes, suffix: str) -> Path:
    d = _ROOT[-1] / str(next(_SERIAL))
    d.mkdir()
    p = d / f"input{suffix}"
    p.write_bytes(data)
    return p


def expected_lines(text: str) -> list[str]:
    """What `read_texts(doc_split='line')` must return: every non-blank line, line ends and one leading BOM removed."""
    text = text.removeprefix("\ufeff")
    return [l.rstrip("\r") for l in text.split("\n") if l.rstrip("\r").strip()]


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([".txt", ".tsv", ".csv", ".jsonl", ".zip"]))
def test_any_bytes_give_text_or_a_user_error(data, suffix):
    p = write(data, suffix)
    try:
        docs = list(read_texts(p, doc_split="line"))
    except UserError as e:
        assert str(e).startswith(str(p)) or str(p) in str(e)
        return
    assert all(isinstance(d, str) and d.strip() for d in docs)


@FUZZ
@given(st.text(text_chars, max_size=2000), st.booleans())
def test_text_lines_come_back_exactly(text, crlf):
    raw = text.encode("utf-8")
    if crlf:
        raw = raw.replace(b"\n", b"\r\n")
    p = write(raw, ".txt")
    if not raw:
        with pytest.raises(UserError, match="file is empty"):
            list(read_texts(p))
        return
    assert list(read_texts(p, doc_split="line")) == expected_lines(text)


@FUZZ
@given(st.lists(st.lists(st.text(cell_chars, max_size=30), min_size=2, max_size=2), min_size=1, max_size=40), st.booleans())
def test_tsv_cells_come_back_exactly(rows, bom):
    lines = ["sentence\tlabel"] + ["\t".join(r) for r in rows]
    raw = ("\ufeff" if bom else "").encode() + ("\n".join(lines) + "\n").encode()
    table = read_table(write(raw, ".tsv"))
    assert table.header == ["sentence", "label"]
    expected = [(i + 2, r) for i, r in enumerate(rows) if "\t".join(r).strip()]
    assert list(table.rows) == expected


@FUZZ
@given(st.lists(st.integers(1, 4), min_size=1, max_size=30))
def test_ragged_tsv_names_the_first_bad_line(widths):
    rows = ["\t".join(f"c{j}" for j in range(w)) for w in widths]
    p = write(("a\tb\n" + "\n".join(rows) + "\n").encode(), ".tsv")
    bad = [i + 2 for i, w in enumerate(widths) if w != 2]
    if not bad:
        assert len(list(read_table(p).rows)) == len(widths)
        return
    with pytest.raises(UserError) as e:
        list(read_table(p).rows)
    assert str(e.value).startswith(f"{p}:{bad[0]}: expected 2 columns")


@FUZZ
@given(st.lists(st.text(text_chars, min_size=1, max_size=50), min_size=1, max_size=30))
def test_jsonl_texts_come_back_exactly(texts):
    p = write("".join(json.dumps({"text": t, "label": i}) + "\n" for i, t in enumerate(texts)).encode(), ".jsonl")
    assert list(read_texts(p)) == texts


@FUZZ
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=30),
                min_size=1, max_size=20))
def test_csv_quoting_round_trips(texts):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["text", "label"])
    for t in texts:
        w.writerow([t, "1"])
    rows = [r for _, r in read_table(write(buf.getvalue().encode(), ".csv")).rows]
    assert [r[0] for r in rows] == texts  # the label cell keeps every row non-blank


csv_chars = st.sampled_from(['"', '"', ",", "a", "я", " ", "\n"])  # quotes, delimiters and line breaks, densely


@FUZZ
@given(st.text(csv_chars, max_size=80))
def test_csv_records_agree_with_pythons_csv_reader(body):
    """Grouped line by line, CSV records hold the rows Python's csv reader finds in the whole text, each numbered by
    its first line; where the csv module silently accepts a quote still open at the end, a UserError instead."""
    import csv

    from budgetlm.data.readers import _csv_records, _split_row

    lines = body.split("\n")
    reader = csv.reader(line + "\n" for line in lines)
    expected, start = [], 1
    for row in reader:
        if "\n".join(lines[start - 1:reader.line_num]).strip():  # the reader skips blank records
            expected.append((start, row))
        start = reader.line_num + 1
    try:
        got = [(n, _split_row(text, False, "f.csv", n)) for n, text in _csv_records(enumerate(lines, 1), "f.csv")
               if text.strip()]
    except UserError as e:
        assert str(e).startswith("f.csv:") and "never closed" in str(e)
        assert expected and expected[-1][1][-1].endswith("\n")  # csv put the rest of the text in the open field
        return
    assert got == expected
