"""Read text and labelled examples from .txt, .jsonl, .tsv, .csv and .zip files.

Readers stream (memory stays flat as files grow), never trust their input and report problems as
`UserError`s naming the file and line:
- bytes that are not UTF-8 are replaced with U+FFFD and counted (`ReadStats.replaced`), with a warning;
- a very long line (even 50 MB without a newline) is read in bounded pieces, cut at whitespace;
- a UTF-8 BOM and CRLF line ends are accepted.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from budgetlm.errors import UserError

MAX_PIECE = 1 << 20  # longest piece of text handed to the tokenizer at once (1 MiB)
TEXT_COLUMNS = ("text", "sentence", "content", "review", "document")
TEXT_SUFFIXES = {".txt", ".raw", ".text", ""}


@dataclass
class ReadStats:
    replaced: int = 0  # undecodable byte sequences replaced by U+FFFD
    lines_with_replacements: list = field(default_factory=list)  # (file, line) of the first few
    skipped_empty: int = 0

    def note_replacement(self, path, line_no, count):
        self.replaced += count
        if len(self.lines_with_replacements) < 5:
            self.lines_with_replacements.append(f"{path}:{line_no}")

    def warn(self, out=None) -> None:
        if self.replaced:
            where = ", ".join(self.lines_with_replacements)
            print(f"warning: replaced {self.replaced} invalid UTF-8 byte sequence(s) with U+FFFD (first at {where})",
                  file=out or sys.stderr)


def check_input_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError("file not found", path=str(p))
    if p.is_dir():
        raise UserError("is a directory, expected a file", path=str(p))
    if p.stat().st_size == 0:
        raise UserError("file is empty", path=str(p))
    if p.suffix.lower() == ".zip":
        return p
    with open(p, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError("is UTF-16 encoded; budgetlm reads UTF-8 (convert it, e.g. iconv -f UTF-16 -t UTF-8)", path=str(p))
    if b"\x00" in head:
        raise UserError("looks like a binary file (NUL bytes), expected text", path=str(p))
    if _mostly_undecodable(head):
        raise UserError("is not UTF-8 text (over a tenth of its first bytes do not decode); is it binary, or in "
                        "another encoding such as Latin-1?", path=str(p))
    return p


SNIFF_BYTES = 8192


def _mostly_undecodable(head: bytes) -> bool:
    """True for data where over 10% of the characters are invalid UTF-8: binary, or a legacy encoding.
    A few stray bytes in real text are replaced and counted instead (see ReadStats)."""
    text = head.decode("utf-8", errors="replace")
    if len(head) == SNIFF_BYTES:  # the sniff may have cut a character in two at the end
        text = text[:-1]
    replaced = text.count("\ufffd") - head.count("\ufffd".encode())  # U+FFFD written in the file is fine
    return replaced > 0.1 * max(len(text), 1)


def _decode(raw: bytes, path, line_no: int, stats: ReadStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        stats.note_replacement(path, line_no, text.count("\ufffd") - raw.count("\ufffd".encode()))
        return text


def iter_lines(stream: BinaryIO, path, stats: ReadStats) -> Iterator[tuple[int, str, bool]]:
    """Yield (line_no, text, complete): text has no line end; complete=False marks a piece of an
    over-long line (more pieces of the same line follow). Pieces are cut at whitespace where possible."""
    line_no = 0
    carry = b""
    continuing = False  # the next read continues the current (over-long) line
    first = True
    while True:
        raw = stream.readline(MAX_PIECE)
        if first:
            first = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        if not continuing:
            line_no += 1
        raw = carry + raw
        carry = b""
        if not raw:
            return
        if raw.endswith(b"\n") or len(raw) < MAX_PIECE:  # a whole line (the last may lack its newline)
            continuing = False
            yield line_no, _decode(raw.rstrip(b"\r\n"), path, line_no, stats), True
            continue
        cut = max(raw.rfind(b" "), raw.rfind(b"\t")) + 1
        if cut <= 0:
            cut = _utf8_safe_end(raw)
        raw, carry = raw[:cut], raw[cut:]
        continuing = True
        yield line_no, _decode(raw, path, line_no, stats), False


def _utf8_safe_end(raw: bytes) -> int:
    """Length of the longest prefix of `raw` that does not end inside a multi-byte UTF-8 character."""
    i = len(raw) - 1
    while i > 0 and (raw[i] & 0xC0) == 0x80:  # continuation bytes
        i -= 1
    lead = raw[i]
    need = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
    return len(raw) if i + need <= len(raw) else max(i, 1)


def _docs_from_lines(lines, doc_split: str) -> Iterator[str]:
    """Group lines into documents: one per line, blank-line separated blocks, or the whole file with its
    blank lines kept (character-level LMs predict every newline, as nanoGPT's Tiny Shakespeare); bounded in size."""
    if doc_split == "line":
        for _, text, _ in lines:
            if text.strip():
                yield text
        return
    if doc_split == "file":
        parts, size = [], 0
        for _, text, complete in lines:
            parts.append(text + ("\n" if complete else ""))
            size += len(text)
            if size >= MAX_PIECE:
                yield "".join(parts)
                parts, size = [], 0
        if parts and "".join(parts).strip():
            yield "".join(parts).rstrip("\n")
        return
    parts: list[str] = []
    size = 0
    for _, text, _complete in lines:
        if not text.strip():
            if parts:
                yield "\n".join(parts)
                parts, size = [], 0
            continue
        parts.append(text)
        size += len(text)
        if size >= MAX_PIECE:  # a huge block goes to the tokenizer in bounded pieces
            yield "\n".join(parts)
            parts, size = [], 0
    if parts:
        yield "\n".join(parts)


def read_texts(path: str | Path, doc_split: str = "blank", text_column: str = "", stats: ReadStats | None = None) -> Iterator[str]:
    """Documents from one file. .txt: blocks/lines; .jsonl: a text field; .tsv/.csv: a text column;
    .zip: every .txt member, each read as a .txt file."""
    p = check_input_file(path)
    stats = stats if stats is not None else ReadStats()
    suffix = p.suffix.lower()
    if suffix == ".zip":
        yield from _read_zip(p, doc_split, stats)
    elif suffix == ".jsonl":
        for line_no, obj in iter_jsonl(p, stats):
            yield _text_field(obj, text_column, p, line_no)
    elif suffix in (".tsv", ".csv"):
        table = read_table(p, stats)
        col = pick_text_column(table.header, text_column, p)
        idx = table.header.index(col)
        for line_no, row in table.rows:
            if row[idx].strip():
                yield row[idx]
    else:
        with open(p, "rb") as f:
            yield from _docs_from_lines(iter_lines(f, p, stats), doc_split)


def _read_zip(p: Path, doc_split: str, stats: ReadStats) -> Iterator[str]:
    try:
        zf = zipfile.ZipFile(p)
    except zipfile.BadZipFile:
        raise UserError("not a valid zip file", path=str(p)) from None
    with zf:
        for name in sorted(zf.namelist()):
            if name.endswith("/") or not name.lower().endswith((".txt", ".raw")):
                continue
            with zf.open(name) as member:
                yield from _docs_from_lines(iter_lines(member, f"{p}!{name}", stats), doc_split)


def iter_jsonl(p: Path, stats: ReadStats) -> Iterator[tuple[int, dict]]:
    with open(p, "rb") as f:
        for line_no, text, complete in iter_lines(f, p, stats):
            if not complete:
                raise UserError("JSON line is too long (over 1 MiB)", path=str(p), line=line_no)
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise UserError(f"not valid JSON ({e.msg})", path=str(p), line=line_no) from None
            if not isinstance(obj, dict):
                raise UserError("each line must be a JSON object", path=str(p), line=line_no)
            yield line_no, obj


def _text_field(obj: dict, text_column: str, p, line_no) -> str:
    keys = [text_column] if text_column else list(TEXT_COLUMNS)
    for k in keys:
        if isinstance(obj.get(k), str):
            return obj[k]
    raise UserError(f"no text field ({', '.join(keys)}) in this JSON object", path=str(p), line=line_no)


@dataclass
class Table:
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]


def read_table(path: str | Path, stats: ReadStats | None = None, header: list[str] | None = None) -> Table:
    """A .tsv (no quoting, as GLUE) or .csv (standard quoting) file. With `header=None` the first row is
    the header; otherwise every row is data with these column names. Rows whose cell count differs
    from the header are an error naming the line."""
    p = check_input_file(path)
    stats = stats if stats is not None else ReadStats()
    tsv = p.suffix.lower() != ".csv"
    csv.field_size_limit(1 << 30)

    def lines():
        with open(p, "rb") as f:
            for line_no, text, complete in iter_lines(f, p, stats):
                if not complete:
                    raise UserError("row is too long (over 1 MiB)", path=str(p), line=line_no)
                yield line_no, text

    it = _csv_records(lines(), p) if not tsv else lines()
    if header is None:
        first = next(it, None)
        if first is None:
            raise UserError("file has no header row", path=str(p))
        cols = _split_row(first[1], tsv, p, first[0])
        cols = [c.strip() for c in cols]
    else:
        cols = list(header)

    def rows():
        for line_no, text in it:
            if not text.strip():
                continue
            cells = _split_row(text, tsv, p, line_no)
            if len(cells) != len(cols):
                raise UserError(f"expected {len(cols)} columns ({', '.join(cols)}), found {len(cells)}", path=str(p), line=line_no)
            yield line_no, cells

    return Table(cols, rows())


def _csv_records(lines: Iterator[tuple[int, str]], p) -> Iterator[tuple[int, str]]:
    """(first line, text) of each CSV record. A quoted field may hold line breaks (RFC 4180; RuSentiment's posts do),
    so a record runs on until its quotes close; one left open is an error naming the line where it began."""
    parts: list[str] = []
    start = size = 0
    inside = False
    for line_no, text in lines:
        if not parts:
            start = line_no
        parts.append(text)
        size += len(text) + 1
        inside = _ends_in_quotes(text, inside)
        if not inside:
            yield start, "\n".join(parts)
            parts, size = [], 0
        elif size > MAX_PIECE:
            raise UserError("a quoted field runs on for over 1 MiB; is a quote left open?", path=str(p), line=start)
    if parts:
        raise UserError("a quoted field is never closed (a quote left open?)", path=str(p), line=start)


def _ends_in_quotes(text: str, inside: bool) -> bool:
    """Whether a CSV line that begins inside (or outside) a quoted field ends inside one. Follows Python's csv
    reader (not strict): a quote opens a field only at its start, `""` inside is a quote, text after a closing
    quote is kept as is."""
    if '"' not in text:
        return inside
    field_start, quoted = not inside, inside
    closed = False  # just read a quote inside a quoted field: it closes the field unless another quote follows
    for ch in text:
        if quoted:
            if closed:
                closed = False
                if ch != '"':  # the quote closed the field
                    quoted, field_start = False, ch == ","
            elif ch == '"':
                closed = True
        elif ch == ",":
            field_start = True
        else:
            quoted, field_start = field_start and ch == '"', False
    return quoted and not closed


def _split_row(text: str, tsv: bool, p, line_no: int) -> list[str]:
    if tsv:
        return text.split("\t")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:  # e.g. a lone carriage return inside an unquoted field
        raise UserError(f"not a well-formed CSV row ({e})", path=str(p), line=line_no) from None
    if len(rows) > 1:  # a record must be one row (_csv_records joins lines only inside quotes)
        raise UserError("not a well-formed CSV row (a line break outside quotes)", path=str(p), line=line_no)
    return rows[0] if rows else [""]  # a line of only "\r" has no fields at all


def pick_text_column(header: list[str], wanted: str, p) -> str:
    if wanted:
        if wanted not in header:
            raise UserError(f"no column {wanted!r}; columns are: {', '.join(header)}", path=str(p))
        return wanted
    for c in TEXT_COLUMNS:
        if c in header:
            return c
    raise UserError(f"cannot tell which column holds the text ({', '.join(header)}); pass --text-column", path=str(p))
