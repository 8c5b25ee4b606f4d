"""Word-level perplexity on WikiText-2 test: budgetlm's decoder vs a same-size transformers.GPT2LMHeadModel,
trained on the same blocks of the shared English text, in the same order, with the same budget, through the same
training loop (budgetlm.train.loop.train: AdamW, LR schedule, clipping) -- only the model differs.

1. `budgetlm pretrain` with the preset gpt-wordlevel (+ overrides): tokenizer, token cache, training,
   WikiText-2 valid evaluation: the product path, unchanged.
2. GPT2LMHeadModel(GPT2Config(same sizes, tanh GELU, tied head, no dropout)) trained by the same loop on the
   same BlockDataset with the same seed and budget, its loss computed like budgetlm's (same targets).
3. Both evaluated on WikiText-2 test (tokenized with the run's tokenizer), every block, each token predicted
   once from the context inside its block of max_seq_len tokens.

    python bench/gpt_wordlevel.py --out runs/wordlevel train.budget=5m train.threads=2
    python bench/gpt_wordlevel.py --parallel --out runs/wordlevel-20m train.threads=1

--parallel trains the tokenizer and token caches first, then runs the two arms at the same time in two child
processes (`--arm budgetlm`, `--arm gpt2`), one core each (pass train.threads=1): both see the same machine for
the same wall-clock budget, and the comparison takes one budget instead of two.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from budgetlm.config import build_config
from budgetlm.stages.config import PretrainConfig
from budgetlm.data.batches import BlockBatches, BlockDataset
from budgetlm.data.cache import build_or_load
from budgetlm.data.root import wikitext2
from budgetlm.models.io import load_model
from budgetlm.objectives.clm import IGNORE_INDEX, lm_logits, next_token_targets
from budgetlm.stages.pretrain import resolve_files
from budgetlm.tokenizer import PAD, SEP, load_tokenizer, tokenizer_path
from budgetlm.train.loop import train
from common import budgetlm_cmd, launch, machine_line, read_results, run


@torch.no_grad()
def perplexity(logits_fn, dataset: BlockDataset, batch_size: int = 32) -> dict:
    model_loss, n = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        inputs, labels = next_token_targets(dataset.batch(range(start, min(start + batch_size, len(dataset)))))
        logits = logits_fn(inputs)  # (B, T, V)
        model_loss += float(F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"))
        n += int((labels != IGNORE_INDEX).sum())
    return {"loss": model_loss / n, "perplexity": math.exp(model_loss / n), "tokens": n}


class TiedCheckpointable(torch.nn.Module):
    """The peer as the loop sees it: its state dict omits lm_head.weight, which *is* transformer.wte.weight
    (safetensors refuses to write two names for one tensor when the loop checkpoints)."""

    def __init__(self, hf: GPT2LMHeadModel):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids):
        return self.hf(input_ids=input_ids).logits

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        state.pop(kwargs.get("prefix", "") + "hf.lm_head.weight", None)
        return state


def gpt2_like(cfg) -> GPT2LMHeadModel:
    m = cfg.model
    return GPT2LMHeadModel(GPT2Config(
        vocab_size=m.vocab_size, n_embd=m.d_model, n_layer=m.n_layers, n_head=m.n_heads, n_inner=m.d_ff,
        n_positions=m.max_seq_len, activation_function="gelu_new", layer_norm_epsilon=m.norm_eps,
        resid_pdrop=m.dropout, embd_pdrop=m.dropout, attn_pdrop=m.dropout, initializer_range=m.init_std,
        bos_token_id=SEP, eos_token_id=SEP, pad_token_id=PAD))


def cache_kwargs(cfg, tok_file: Path) -> dict:
    return dict(tokenizer=tok_file, cache_dir=cfg.data.cache_dir or None, doc_split=cfg.data.doc_split,
                text_column=cfg.data.text_column)


def test_perplexity(logits_fn, cfg, tok_file: Path, test_tokens: int) -> dict:
    """Perplexity on WikiText-2 test (or its first `test_tokens` tokens), blocks of max_seq_len + 1 tokens."""
    test_cache = build_or_load([str(wikitext2("test"))], desc="tokenizing test", **cache_kwargs(cfg, tok_file))
    test = BlockDataset(test_cache, cfg.model.max_seq_len + 1, start_token=None,
                        end=min(test_tokens + 1, test_cache.n_tokens) if test_tokens else None)
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    return perplexity(logits_fn, test)


def run_budgetlm(config: str, overrides: list[str], cfg, out: Path, test_tokens: int) -> dict:
    """The product path: `budgetlm pretrain` (tokenizer unless given, cache, training, valid evaluation)."""
    run(budgetlm_cmd("pretrain", "--config", config, "--out", str(out / "budgetlm"), *overrides))
    results = read_results(out / "budgetlm")
    ours, _ = load_model(out / "budgetlm" / "model")
    tok_file = out / "budgetlm" / "tokenizer.json"
    return {"train": results, "wikitext2_test": test_perplexity(lambda x: lm_logits(ours, x), cfg, tok_file, test_tokens)}


def run_gpt2(cfg, out: Path, tok_file: Path, test_tokens: int) -> dict:
    """The peer through the same loop, on the same blocks in the same order, with the same seed and budget."""
    if cfg.model.vocab_size == 0:
        cfg.model.vocab_size = load_tokenizer(tok_file).get_vocab_size()
    train_files, _ = resolve_files(cfg)
    train_set = BlockDataset(build_or_load(train_files, **cache_kwargs(cfg, tok_file)), cfg.model.max_seq_len + 1,
                             start_token=None)
    torch.manual_seed(cfg.train.seed)
    peer = TiedCheckpointable(gpt2_like(cfg))
    assert peer.hf.lm_head.weight is peer.hf.transformer.wte.weight

    def peer_step(model, batch, step, micro):
        inputs, labels = next_token_targets(batch["ids"])
        loss = F.cross_entropy(model(inputs).flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return loss, inputs.numel(), {}

    (out / "gpt2").mkdir(parents=True, exist_ok=True)
    state = train(peer, BlockBatches(train_set, cfg.train.batch_size, cfg.train.seed), peer_step, cfg.train, out / "gpt2",
                  desc="GPT2LMHeadModel")
    peer.eval()
    return {"train": {"steps": state.step, "train_tokens": state.tokens, "train_seconds": round(state.elapsed, 1),
                      "tokens_per_s": round(state.tokens / max(state.elapsed, 1e-9), 1)},
            "wikitext2_test": test_perplexity(peer, cfg, tok_file, test_tokens)}


def train_tokenizer(cfg, train_files: list[str], out: Path) -> Path:
    """<out>/tokenizer.json as `budgetlm pretrain` trains it from the config's data settings (`budgetlm tokenizer`)."""
    lowercase = [] if cfg.data.lowercase else ["--no-lowercase", "--no-nfkc"]
    run(budgetlm_cmd("tokenizer", "--kind", cfg.data.tokenizer_kind, "--vocab-size", str(cfg.data.vocab_size),
                     "--doc-split", cfg.data.doc_split, "--text-column", cfg.data.text_column, *lowercase,
                     "--out", str(out), *train_files))
    return out / "tokenizer.json"


def run_parallel(args, cfg, out: Path) -> dict:
    """Tokenizer and caches once, then both arms at the same time in child processes."""
    out.mkdir(parents=True, exist_ok=True)
    train_files, _ = resolve_files(cfg)
    tok_file = tokenizer_path(cfg.data.tokenizer) if cfg.data.tokenizer else train_tokenizer(cfg, train_files, out)
    for files in (train_files, [str(wikitext2("test"))]):
        build_or_load(files, **cache_kwargs(cfg, tok_file))
    children = {arm: launch([sys.executable, __file__, "--config", args.config, "--out", str(out), "--arm", arm,
                             "--test-tokens", str(args.test_tokens), *args.overrides, f"data.tokenizer={tok_file}"],
                            out / f"{arm}.log", echo=False)
                for arm in ("budgetlm", "gpt2")}
    failed = [arm for arm, child in children.items() if child.wait()]
    if failed:
        sys.exit(f"arm(s) {', '.join(failed)} failed; see {out}/<arm>.log")
    return {arm: json.loads((out / f"{arm}.json").read_text()) for arm in children}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="gpt-wordlevel")
    p.add_argument("--out", required=True, help="directory for both runs (budgetlm/, gpt2/) and results.json")
    p.add_argument("--test-tokens", type=int, default=0,
                   help="score only the first N tokens of WikiText-2 test (0 = all of it); for a contended machine")
    p.add_argument("--parallel", action="store_true", help="run the two arms at the same time (pass train.threads=1)")
    p.add_argument("--arm", choices=["budgetlm", "gpt2"], help=argparse.SUPPRESS)  # one arm, for --parallel's children
    p.add_argument("overrides", nargs="*", help="config overrides for both runs, e.g. train.budget=5m")
    args = p.parse_args(argv)
    out = Path(args.out)
    load = {"start": os.getloadavg()}
    cfg = build_config(PretrainConfig, args.config, args.overrides)

    if args.arm:  # a child of --parallel: one arm, its figures to <out>/<arm>.json
        tok_file = Path(cfg.data.tokenizer)
        arm = run_budgetlm(args.config, args.overrides, cfg, out, args.test_tokens) if args.arm == "budgetlm" \
            else run_gpt2(cfg, out, tok_file, args.test_tokens)
        (out / f"{args.arm}.json").write_text(json.dumps(arm, indent=2))
        return arm
    if args.parallel:
        arms = run_parallel(args, cfg, out)
    else:
        arms = {"budgetlm": run_budgetlm(args.config, args.overrides, cfg, out, args.test_tokens)}
        load["after_budgetlm"] = os.getloadavg()
        arms["gpt2"] = run_gpt2(cfg, out, out / "budgetlm" / "tokenizer.json", args.test_tokens)
    result = {"config": args.config, "overrides": args.overrides, "parallel": args.parallel,
              "command": " ".join([os.path.basename(sys.executable)] + sys.argv), **arms,
              "loadavg": load | {"end": os.getloadavg()}}
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print(machine_line(cfg.train.threads or "default"))
    for name in ("budgetlm", "gpt2"):
        r = result[name]
        print(f"{name:>9}: {r['train']['train_tokens']:,} training tokens in {r['train']['train_seconds']} s "
              f"({r['train']['tokens_per_s']:,.0f} tokens/s); WikiText-2 test perplexity {r['wikitext2_test']['perplexity']:.1f} "
              f"over {r['wikitext2_test']['tokens']:,} tokens")
    print(f"load average: {load}")
    return result


if __name__ == "__main__":
    main()
