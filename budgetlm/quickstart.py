"""`make quickstart`: the main job end to end on the real data in the data root.

tokenizer (WordPiece on the shared English text + SST-2 sentences) -> a few minutes of masked-LM
pre-training -> a few minutes of SST-2 fine-tuning -> HF export -> a printed table and report.md.
Finished steps are reused when the command is run again with the same --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from budgetlm.cli import guarded
from budgetlm.config import FinetuneConfig, PretrainConfig, build_config
from budgetlm.data.root import data_root, english_pretraining_files
from budgetlm.errors import UserError
from budgetlm.train.checkpoint import list_checkpoints

PRETRAIN_CONFIG = "configs/sst2-budget-pretrain.yaml"
FINETUNE_CONFIG = "configs/sst2-finetune.yaml"


def _config_path(name: str) -> str:
    here = Path(__file__).resolve().parents[1] / name
    if not here.is_file():
        raise UserError("preset config not found (run from the repository)", path=str(here))
    return str(here)


def _done(run: Path) -> dict | None:
    f = run / "results.json"
    return json.loads(f.read_text()) if f.exists() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m budgetlm.quickstart", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/quickstart")
    ap.add_argument("--pretrain-budget", default="4m")
    ap.add_argument("--finetune-budget", default="3m")
    args = ap.parse_args(argv)
    return guarded(lambda: _run(args))


def _run(args) -> int:
    from budgetlm.export.hf import export_hf
    from budgetlm.stages.finetune import finetune
    from budgetlm.stages.pretrain import pretrain

    out = Path(args.out)
    sst2_train = data_root() / "sst2" / "train.tsv"
    train_files = [str(p) for p in english_pretraining_files()] + [str(sst2_train), str(sst2_train)]

    pre_dir, ft_dir, hf_dir = out / "pretrain", out / "finetune-sst2", out / "export-hf"
    pre = _done(pre_dir)
    if pre is None:
        print(f"== 1/3 pre-training for {args.pretrain_budget} on {len(train_files)} files", file=sys.stderr)
        cfg = build_config(PretrainConfig, _config_path(PRETRAIN_CONFIG),
                           [f"train.budget={args.pretrain_budget}", f"data.train={json.dumps(train_files)}", "train.eval_every=0"])
        pre = pretrain(cfg, pre_dir, resume=bool(list_checkpoints(pre_dir)))
    ft = _done(ft_dir)
    if ft is None:
        print(f"== 2/3 fine-tuning on SST-2 for {args.finetune_budget}", file=sys.stderr)
        cfg = build_config(FinetuneConfig, _config_path(FINETUNE_CONFIG), [f"train.budget={args.finetune_budget}"])
        ft = finetune(cfg, pre_dir, ft_dir, resume=bool(list_checkpoints(ft_dir)))
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
        ("fine-tuning", f"{ft['steps']} steps, {ft['train_seconds']:.0f}s"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    report = "\n".join([
        "# budgetlm quickstart report", "",
        *lines, "",
        f"- pre-trained model: `{pre_dir / 'model'}` (loss curve `{pre_dir / 'loss.png'}`)",
        f"- SST-2 classifier: `{ft_dir / 'model'}`", f"- transformers export: `{hf_dir}`",
        f"- try: `budgetlm fill-mask {pre_dir} \"the movie was [MASK] .\"`", "",
    ])
    (out / "report.md").write_text(report)
    print()
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(f"\nmodel: {pre_dir / 'model'}   classifier: {ft_dir / 'model'}   HF export: {hf_dir}")
    print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
