#!/bin/sh
# T5 span-corruption pre-training on the shared English text (600 steps), then SST-2 as text-to-text (400 steps),
# from the pre-trained model and from scratch (same architecture and tokenizer). docs/results.md has the figures.
# Usage: sh bench/t5_sst2_text2text.sh OUT_DIR   (one thread each; the load average is logged around each run)
set -e
OUT=${1:-runs/t5-sst2}
mkdir -p "$OUT"
load() { echo "$1 loadavg: $(cat /proc/loadavg)" | tee -a "$OUT/loadavg.txt"; }
load "pretrain start"
python -m budgetlm pretrain --config t5-span-pretrain --out "$OUT/pretrain" train.threads=1
load "pretrain end / finetune start"
python -m budgetlm finetune --config sst2-text2text-finetune --model "$OUT/pretrain" --out "$OUT/sst2-pretrained" train.threads=1
load "finetune end / scratch start"
python -m budgetlm finetune --config sst2-text2text-finetune --model "$OUT/pretrain" --scratch --out "$OUT/sst2-scratch" train.threads=1
load "scratch end"
