"""Sentence-pair files for embedding training and STS evaluation; the format is told from the file itself.

    STS Benchmark   tab-separated, no header, no quoting: genre, file, year, id, score (0-5), s1, s2 [, extra...]
    MRPC            the original release: BOM + CRLF, header `Quality  #1 ID  #2 ID  #1 String  #2 String`
    pair table      .tsv/.csv/.jsonl with two text columns (sentence1/sentence2, text_a/text_b, anchor/positive,
                    ...), or a .tsv/.csv with exactly two columns; every row is a positive pair. A numeric
                    `score` column (0-5) makes the rows scored pairs instead.
    sentences       a .txt file (one sentence a line) or a one-column table: raw sentences for SimCSE

All reading goes through data/readers.py (BOM, CRLF, bad UTF-8, line numbers in errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from budgetlm.data.readers import ReadStats, check_input_file, iter_jsonl, iter_lines, read_table
from budgetlm.errors import UserError

MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
PAIR_COLUMNS = (("sentence1", "sentence2"), ("text_a", "text_b"), ("anchor", "positive"), ("query", "positive"),
                ("question", "sentence"), ("question1", "question2"), ("s1", "s2"))
SCORE_COLUMNS = ("score", "similarity")
STS_MIN_FIELDS = 7
MAX_SCORE = 5.0


@dataclass
class PairData:
    """What one file contributes: scored pairs (score 0-5), positive pairs, and raw sentences."""

    path: str
    scored: list[tuple[str, str, float]] = field(default_factory=list)
    positives: list[tuple[str, str]] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"{len(self.scored):,} scored pairs" if self.scored else "",
                 f"{len(self.positives):,} positive pairs" if self.positives else "",
                 f"{len(self.sentences):,} sentences" if self.sentences else ""]
        return ", ".join(p for p in parts if p) or "nothing"


def _lines(p: Path):
    stats = ReadStats()
    with open(p, "rb") as f:
        for line_no, text, complete in iter_lines(f, p, stats):
            if not complete:
                raise UserError("line is too long (over 1 MiB)", path=str(p), line=line_no)
            yield line_no, text
    stats.warn()


def _first_line(p: Path) -> str:
    return next((text for _, text in _lines(p) if text.strip()), "")


def looks_like_sts(first_line: str) -> bool:
    cells = first_line.split("\t")
    return len(cells) >= STS_MIN_FIELDS and _float(cells[4]) is not None


def _float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def read_sts(path: str | Path) -> list[tuple[str, str, float]]:
    """(s1, s2, score) from an STS Benchmark file: split on tabs only (sentences contain quotes), fields 4-6;
    the 2 extra source columns some lines carry are ignored."""
    p = check_input_file(path)
    out = []
    for line_no, text in _lines(p):
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) < STS_MIN_FIELDS:
            raise UserError(f"expected at least {STS_MIN_FIELDS} tab-separated fields (genre, file, year, id, score, "
                            f"sentence1, sentence2), found {len(cells)}", path=str(p), line=line_no)
        score = _float(cells[4])
        if score is None or not 0.0 <= score <= MAX_SCORE:
            raise UserError(f"score {cells[4]!r} is not a number in [0, {MAX_SCORE:g}]", path=str(p), line=line_no)
        s1, s2 = cells[5].strip(), cells[6].strip()
        if not s1 or not s2:
            raise UserError("empty sentence", path=str(p), line=line_no)
        out.append((s1, s2, score))
    if not out:
        raise UserError("no sentence pairs found", path=str(p))
    return out


def read_mrpc(path: str | Path) -> list[tuple[int, str, str]]:
    """(label, s1, s2) from the original MRPC release (label 1 = paraphrase)."""
    p = check_input_file(path)
    lines = _lines(p)
    first = next(lines, None)
    if first is None or first[1].split("\t") != MRPC_HEADER:
        raise UserError(f"not an MRPC file: the header must be {' | '.join(MRPC_HEADER)}", path=str(p), line=1)
    out = []
    for line_no, text in lines:
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != len(MRPC_HEADER):
            raise UserError(f"expected {len(MRPC_HEADER)} tab-separated fields, found {len(cells)}", path=str(p), line=line_no)
        if cells[0] not in ("0", "1"):
            raise UserError(f"Quality must be 0 or 1, got {cells[0]!r}", path=str(p), line=line_no)
        s1, s2 = cells[3].strip(), cells[4].strip()
        if not s1 or not s2:
            raise UserError("empty sentence", path=str(p), line=line_no)
        out.append((int(cells[0]), s1, s2))
    if not out:
        raise UserError("no sentence pairs found", path=str(p))
    return out


def _pick_pair_columns(header: list[str], p: Path) -> tuple[str, str]:
    for a, b in PAIR_COLUMNS:
        if a in header and b in header:
            return a, b
    if len(header) == 2:
        return header[0], header[1]
    raise UserError(f"cannot tell which two columns hold the sentence pair ({', '.join(header)}); name them "
                    f"{' / '.join('/'.join(c) for c in PAIR_COLUMNS[:3])}", path=str(p))


def _pair_rows(p: Path):
    """(line_no, {column: value}) rows of a .tsv/.csv (header row) or .jsonl file, with the header."""
    if p.suffix.lower() == ".jsonl":
        rows = [(n, {k: str(v) for k, v in obj.items()}) for n, obj in iter_jsonl(p, ReadStats())]
        return (list(rows[0][1]) if rows else []), rows
    table = read_table(p)
    return table.header, [(n, dict(zip(table.header, cells))) for n, cells in table.rows]


def read_pair_file(path: str | Path, min_score: float = 4.0) -> PairData:
    """Any supported file -> PairData. STS pairs scoring >= `min_score` are also positives; MRPC label 1 pairs
    are positives (label 0 pairs, which are related but not paraphrases, are not used)."""
    p = check_input_file(path)
    data = PairData(str(p))
    first = _first_line(p)
    if first.split("\t") == MRPC_HEADER:
        data.positives = [(a, b) for label, a, b in read_mrpc(p) if label == 1]
    elif looks_like_sts(first):
        data.scored = read_sts(p)
        data.positives = [(a, b) for a, b, s in data.scored if s >= min_score]
    elif p.suffix.lower() in (".tsv", ".csv", ".jsonl"):
        header, rows = _pair_rows(p)
        if len(header) == 1:
            data.sentences = [r[header[0]].strip() for _, r in rows if r[header[0]].strip()]
        else:
            a, b = _pick_pair_columns(header, p)
            score_col = next((c for c in SCORE_COLUMNS if c in header), None)
            for line_no, row in rows:
                if a not in row or b not in row:
                    raise UserError(f"needs fields {a!r} and {b!r}", path=str(p), line=line_no)
                s1, s2 = row[a].strip(), row[b].strip()
                if not s1 or not s2:
                    raise UserError("empty sentence in a pair", path=str(p), line=line_no)
                if score_col:
                    score = _float(row.get(score_col, ""))
                    if score is None or not 0.0 <= score <= MAX_SCORE:
                        raise UserError(f"{score_col} {row.get(score_col)!r} is not a number in [0, {MAX_SCORE:g}]",
                                        path=str(p), line=line_no)
                    data.scored.append((s1, s2, score))
                    if score >= min_score:
                        data.positives.append((s1, s2))
                else:
                    data.positives.append((s1, s2))
    else:
        data.sentences = [text.strip() for _, text in _lines(p) if text.strip()]
    if not (data.scored or data.positives or data.sentences):
        raise UserError("no sentences or sentence pairs found", path=str(p))
    return data


def read_scored_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """An evaluation file: STS format, or a pair table with a score column."""
    data = read_pair_file(path)
    if not data.scored:
        raise UserError("an STS evaluation file needs similarity scores (STS Benchmark format, or a table with a "
                        "'score' column)", path=str(path))
    return data.scored
