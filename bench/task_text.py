"""Unlabelled in-domain text for task-adaptive pre-training (Gururangan et al. 2020, "Don't Stop Pretraining").

Writes one text file with the sentences of the downstream training splits -- WikiANN-en train (words joined
by spaces), MRPC train and STS-B train (both sentences of every pair) -- and the AG News dev texts (news, the
domain of MRPC and part of STS-B). Labels, dev and test splits are never read, apart from AG News dev, whose
labels are dropped; no issue-5 figure is measured on AG News. `--sources books` gives instead sentences of the
general English pre-training text (Gutenberg and State of the Union paragraphs, split after . ! ? and kept at
5-30 words; `--max-lines` samples them). One sentence per line, one document per source (blank line between
sources). The file goes under runs/ (derived from the data root; never committed).

    BUDGETLM_DATA=/work/shared/data python bench/task_text.py --out runs/task-text.txt
    BUDGETLM_DATA=/work/shared/data python bench/task_text.py --sources agnews --out runs/agnews-dev.txt
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from budgetlm.data.pairs import read_mrpc, read_sts
from budgetlm.data.readers import ReadStats, read_texts
from budgetlm.data.root import in_root
from budgetlm.tasks.classification import read_examples
from budgetlm.tasks.conll import read_conll
from budgetlm.tasks.registry import BUILTIN_TASKS


SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[\"'(]*[A-Z])")


def book_sentences(min_words: int = 5, max_words: int = 30) -> list[str]:
    """Sentences of the Gutenberg books and State of the Union speeches (paragraph by paragraph)."""
    files = sorted(in_root("gutenberg").glob("*.txt")) + [in_root("state_union", "state_union.zip")]
    out = []
    for f in files:
        for para in read_texts(f, "blank", "", ReadStats()):
            for sent in SENTENCE_END.split(" ".join(para.split())):
                if min_words <= len(sent.split()) <= max_words:
                    out.append(sent)
    return out


def _wikiann() -> list[str]:
    return [" ".join(words) for words in read_conll(in_root(*BUILTIN_TASKS["wikiann"].train)).words]


def _mrpc() -> list[str]:
    return [s for _, a, b in read_mrpc(in_root(*BUILTIN_TASKS["mrpc"].train)) for s in (a, b)]


def _stsb() -> list[str]:
    return [s for a, b, _ in read_sts(in_root("stsb", "sts-train.csv")) for s in (a, b)]


def _agnews() -> list[str]:
    ag = BUILTIN_TASKS["agnews"]  # its dev.tsv has no header row; the built-in task names the columns
    return read_examples(in_root(*ag.train), ag.text_column, ag.label_column, header=ag.header).texts


# each source is read only when asked for
SOURCES = {"wikiann": _wikiann, "mrpc": _mrpc, "stsb": _stsb, "agnews": _agnews, "books": book_sentences}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/task-text.txt")
    ap.add_argument("--sources", default="wikiann,mrpc,stsb,agnews",
                    help="comma-separated subset of: wikiann, mrpc, stsb (training splits), agnews (dev texts), "
                         "books (sentences of the pre-training text)")
    ap.add_argument("--max-lines", type=int, default=0, help="keep a random sample of this many lines per source")
    ap.add_argument("--seed", type=int, default=0, help="seed of that sample")
    args = ap.parse_args()
    wanted = args.sources.split(",")
    if unknown := [w for w in wanted if w not in SOURCES]:
        ap.error(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    texts = {name: SOURCES[name]() for name in wanted}
    if args.max_lines:
        rng = random.Random(args.seed)
        texts = {name: rng.sample(lines, min(args.max_lines, len(lines))) for name, lines in texts.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join("\n".join(t for t in lines if t) for lines in texts.values()) + "\n", encoding="utf-8")
    for name, lines in texts.items():
        print(f"{name}: {len(lines):,} lines, {sum(len(t.split()) for t in lines):,} words")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
