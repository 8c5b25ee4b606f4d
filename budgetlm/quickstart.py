"""`make quickstart`: the main job end to end on the real data in the data root.

tokenizer (WordPiece on the shared English text + SST-2 sentences) -> a few minutes of masked-LM
pre-training -> the evaluation report (a few minutes of SST-2 fine-tuning, a minute each of MRPC and
WikiANN NER) -> HF export of the SST-2 classifier -> a printed table, report.md and the evaluation table.
Finished steps are reused when the command is run again with the same --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from budgetlm.cli import guarded
from budgetlm.config import build_config, preset_path
from budgetlm.data.root import data_root, english_pretraining_files
from budgetlm.stages.config import PretrainConfig
from budgetlm.train.checkpoint import list_checkpoints

PRETRAIN_CONFIG = "sst2-budget-pretrain"
QUICK_TASKS = ["sst2", "mrpc", "wikiann"]
QUICK_EVAL_EXAMPLES = 2000  # WikiANN's 10,000-sentence dev and test sets: the first 2,000 keep the quickstart quick


def _done(run: Path) -> dict | None:
    f = run / "results.json"
    return json.loads(f.read_text()) if f.exists() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m budgetlm.quickstart", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/quickstart")
    ap.add_argument("--pretrain-budget", default="4m")
    ap.add_argument("--finetune-budget", default="3m", help="SST-2 fine-tuning budget")
    ap.add_argument("--task-budget", default="1m", help="budget of each quick task in the evaluation report (MRPC, WikiANN)")
    args = ap.parse_args(argv)
    return guarded(lambda: _run(args))


def _run(args) -> int:
    from budgetlm.exporters.writers import export_hf
    from budgetlm.stages.evaluate import evaluate
    from budgetlm.stages.pretrain import pretrain

    out = Path(args.out)
    sst2_train = data_root() / "sst2" / "train.tsv"
    train_files = [str(p) for p in english_pretraining_files()] + [str(sst2_train)] * 6  # as bench/sst2_quality.py

    pre_dir, eval_dir, hf_dir = out / "pretrain", out / "eval", out / "export-hf"
    ft_dir = eval_dir / "sst2" / "seed0"  # the SST-2 run of the evaluation report
    pre = _done(pre_dir)
    if pre is None:
        print(f"== 1/3 pre-training for {args.pretrain_budget} on {len(train_files)} files", file=sys.stderr)
        cfg = build_config(PretrainConfig, preset_path(PRETRAIN_CONFIG),
                           [f"train.budget={args.pretrain_budget}", f"data.train={json.dumps(train_files)}", "train.eval_every=0"])
        pre = pretrain(cfg, pre_dir, resume=bool(list_checkpoints(pre_dir)))
    print(f"== 2/3 evaluation report: SST-2 for {args.finetune_budget}, MRPC and WikiANN for {args.task_budget} each", file=sys.stderr)
    evaluation = evaluate(pre_dir, QUICK_TASKS, eval_dir, budgets={"sst2": args.finetune_budget, "mrpc": args.task_budget,
                                                              "wikiann": args.task_budget},
                      overrides=[f"data.max_eval_examples={QUICK_EVAL_EXAMPLES}"])
    ft = _done(ft_dir)
    if not hf_dir.exists():
        print("== 3/3 exporting the classifier for transformers", file=sys.stderr)
        export_hf(ft_dir, hf_dir)

    rows = [
        ("pre-training", f"{pre['steps']} steps, {pre['train_tokens']:,} tokens, {pre['train_seconds']:.0f}s, {pre['tokens_per_s']:.0f} tokens/s"),
        ("MLM accuracy (WikiText-2 valid, 15% masked)", f"{pre['mlm_accuracy']:.4f}"),
        ("MLM loss (same)", f"{pre['mlm_loss']:.4f}"),
        (f"pseudo-perplexity (WikiText-2 valid, {pre['pppl_tokens']} tokens)", f"{pre['pseudo_perplexity']:.1f}"),
        ("SST-2 dev accuracy", f"{100 * ft['accuracy']:.2f}%"),
        ("SST-2 dev macro-F1", f"{100 * ft['macro_f1']:.2f}"),
        ("SST-2 fine-tuning", f"{ft['steps']} steps, {ft['train_seconds']:.0f}s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    report = "\n".join([
        "# budgetlm quickstart report", "",
        *lines, "",
        f"- pre-trained model: `{pre_dir / 'model'}` (loss curve `{pre_dir / 'loss.png'}`)",
        f"- SST-2 classifier: `{ft_dir / 'model'}`", f"- transformers export: `{hf_dir}`",
        f"- try: `budgetlm fill-mask {pre_dir} \"the movie was [MASK] .\"`",
        f"- and: `budgetlm tag {eval_dir / 'wikiann' / 'seed0'} \"Angela Merkel visited Paris .\"`", "",
        f"## Evaluation (quick budgets; WikiANN on its first {QUICK_EVAL_EXAMPLES:,} test sentences)", "",
        evaluation.markdown(), "",
        f"Chart: `{eval_dir / 'report.png'}`", "",
    ])
    (out / "report.md").write_text(report)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print("\n" + evaluation.markdown())
    print(f"\nmodel: {pre_dir / 'model'}   classifier: {ft_dir / 'model'}   HF export: {hf_dir}")
    print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
