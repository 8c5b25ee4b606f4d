"""CoNLL-style token-per-line files: one `token ... tag` row per word, a blank line between sentences.

Accepted variants: tab- or space-separated columns (token first, tag last, anything between ignored, as in
CoNLL-2003's `token POS chunk NER`), `-DOCSTART-` lines, a UTF-8 BOM and CRLF line ends, WikiANN's
language prefix on every token (`en:Paris`, stripped), and IOB1 or IOB2 tags (IOB1 is converted to IOB2,
which is what seqeval and the token head see). A row whose column count differs from the file's first
row is an error naming the file and line.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from budgetlm.data.readers import ReadStats, check_input_file, iter_lines
from budgetlm.errors import UserError

TAG_RE = re.compile(r"^(O|[BI]-\S+)$")
LANG_PREFIX_RE = re.compile(r"^([a-z]{2,3}):\S")  # WikiANN: `en:token`


@dataclass
class TaggedSentences:
    words: list[list[str]]
    tags: list[list[str]]
    lines: list[int]  # line number of each sentence's first word
    path: str
    converted_iob1: int = 0  # tags rewritten from IOB1 to IOB2


def split_row(text: str) -> list[str]:
    return text.split("\t") if "\t" in text else text.split()


def read_conll(path: str | Path) -> TaggedSentences:
    p = check_input_file(path)
    stats = ReadStats()
    words, tags, lines = [], [], []
    cur_w, cur_t, start = [], [], 0
    n_cols, prefix = None, None

    def close_sentence():
        nonlocal cur_w, cur_t
        if cur_w:
            words.append(cur_w)
            tags.append(cur_t)
            lines.append(start)
        cur_w, cur_t = [], []

    with open(p, "rb") as f:
        for line_no, text, complete in iter_lines(f, p, stats):
            if not complete:
                raise UserError("line is too long for a token row", path=str(p), line=line_no)
            if not text.strip():
                close_sentence()
                continue
            cells = [c.strip() for c in split_row(text.strip())]
            if cells[0] == "-DOCSTART-":
                close_sentence()
                continue
            if n_cols is None:
                n_cols = len(cells)
                if n_cols < 2:
                    raise UserError("expected `token<TAB>tag` rows (token first, tag last), found one column", path=str(p), line=line_no)
                m = LANG_PREFIX_RE.match(cells[0])
                prefix = m.group(1) + ":" if m else None
            if len(cells) != n_cols:
                raise UserError(f"expected {n_cols} columns like the first row, found {len(cells)}", path=str(p), line=line_no)
            token, tag = cells[0], cells[-1]
            if not TAG_RE.match(tag):
                raise UserError(f"tag {tag!r} is not IOB (O, B-TYPE or I-TYPE)", path=str(p), line=line_no)
            if prefix and token.startswith(prefix) and len(token) > len(prefix):
                token = token[len(prefix):]
            if not cur_w:
                start = line_no
            cur_w.append(token)
            cur_t.append(tag)
    close_sentence()
    stats.warn()
    if not words:
        raise UserError("no sentences found (expected token-per-line rows)", path=str(p))
    converted = 0
    for i, t in enumerate(tags):
        tags[i], n = to_iob2(t)
        converted += n
    if converted:
        print(f"note: {p}: {converted} tag(s) converted from IOB1 to IOB2", file=sys.stderr)
    return TaggedSentences(words, tags, lines, str(p), converted)


def to_iob2(tags: list[str]) -> tuple[list[str], int]:
    """IOB1 -> IOB2: an I-X that does not continue an X entity starts one (B-X). IOB2 input is unchanged."""
    out, changed, prev = [], 0, "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
            changed += 1
        out.append(tag)
        prev = tag
    return out, changed


def entities(words: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """(entity text, type) spans from IOB2 tags; a stray I-X opens an entity as seqeval does."""
    spans, cur, kind = [], [], None
    for word, tag in zip(words, tags):
        if tag == "O" or tag.startswith("B-") or (tag.startswith("I-") and tag[2:] != kind):
            if cur:
                spans.append((" ".join(cur), kind))
            cur, kind = ([word], tag[2:]) if tag != "O" else ([], None)
        else:
            cur.append(word)
    if cur:
        spans.append((" ".join(cur), kind))
    return spans


def looks_like_conll(path: str | Path, sample: int = 200) -> bool:
    """Token-per-line with blank-line sentences: most sampled rows end in an IOB tag and a blank line occurs."""
    p = Path(path)
    if p.suffix.lower() in (".conll", ".conllu", ".bio", ".iob", ".iob2"):
        return True
    if p.suffix.lower() in (".jsonl", ".json", ".csv"):
        return False
    rows = tagged = blanks = 0
    with open(p, "rb") as f:
        for _, text, _ in iter_lines(f, p, ReadStats()):
            if not text.strip():
                blanks += rows > 0
                continue
            cells = split_row(text.strip())
            if cells[0] == "-DOCSTART-":
                continue
            rows += 1
            tagged += len(cells) >= 2 and bool(TAG_RE.match(cells[-1]))
            if rows >= sample:
                break
    return rows > 0 and blanks > 0 and tagged >= 0.9 * rows
