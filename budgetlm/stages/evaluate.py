"""`budgetlm evaluate MODEL --tasks sst2,mrpc,wikiann`: fine-tune/evaluate per task, then one GLUE-style report.

Each task name maps to an *evaluator* in `EVALUATORS`: a callable `(EvalContext) -> Score`. Fine-tuning tasks
use `FinetuneEvaluator` with the task's preset in budgetlm/presets/ (stsb too: its preset trains sentence embeddings and
scores the Spearman correlation of their cosines); another kind of evaluation adds its own entry:

    from budgetlm.stages.evaluate import EVALUATORS, Score
    EVALUATORS["probe"] = my_probe  # def my_probe(ctx: EvalContext) -> Score

Every run lives in `<out>/<task>/seed<k>`; a finished one (results.json) is reused, an interrupted one resumed.
The report is written as report.md, report.json and report.png in `<out>`.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from budgetlm.atomic import replacing, write_json
from budgetlm.config import build_config, preset_path
from budgetlm.errors import UserError
from budgetlm.stages.config import FinetuneConfig
from budgetlm.train.checkpoint import list_checkpoints
from budgetlm.train.config import parse_budget


@dataclass
class EvalContext:
    model: str  # the model being evaluated (run dir, model dir or HF export)
    run_dir: Path  # this task's folder inside the report directory
    budget: str | None  # training budget per seed; None = the evaluator's preset
    seeds: int
    scratch: bool
    overrides: list[str] = field(default_factory=list)  # config overrides for every fine-tuning run
    trust_pickle: bool = False  # the model may be a transformers dir with only a pytorch_model.bin


@dataclass
class Score:
    task: str
    metric: str  # what `value` is, e.g. "test accuracy"
    value: float  # mean over seeds, as a fraction (accuracy, F1) or a correlation
    values: list[float]  # one per seed
    extra: dict = field(default_factory=dict)  # other means, e.g. {"test F1": 0.81}
    detail: str = ""  # how it was obtained, e.g. "200 steps x 3 seeds"

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


Evaluator = Callable[[EvalContext], Score]


@dataclass
class FinetuneEvaluator:
    """Fine-tune with a shipped preset (budgetlm/presets/) once per seed; report results[metric] averaged over seeds."""

    task: str
    preset: str
    metric: str  # key in results.json
    label: str  # how the report names it
    extra: dict = field(default_factory=dict)  # more results keys to average: {key: label}
    scale: float = 1.0  # results[metric] / scale is the reported fraction (Spearman is stored x100)

    def config(self, ctx: EvalContext, seed: int) -> FinetuneConfig:
        overrides = [f"data.task={self.task}", f"train.seed={seed}", *ctx.overrides]
        if ctx.budget:
            overrides.append(f"train.budget={ctx.budget}")
        return build_config(FinetuneConfig, preset_path(self.preset), overrides)

    def check(self, ctx: EvalContext) -> None:
        """Before anything trains: the overrides make a valid config and the task's files are in the data root."""
        from budgetlm.data.readers import check_input_file
        from budgetlm.stages.finetune import input_files

        for f in input_files(self.config(ctx, 0)):
            check_input_file(f)

    def __call__(self, ctx: EvalContext) -> Score:
        from budgetlm.stages.finetune import finetune

        runs = []
        for seed in range(ctx.seeds):
            run = ctx.run_dir / f"seed{seed}"
            done = run / "results.json"
            if not done.exists():
                cfg = self.config(ctx, seed)
                print(f"== {self.task} seed {seed}: fine-tuning for {cfg.train.budget}", file=sys.stderr)
                finetune(cfg, ctx.model, run, resume=bool(list_checkpoints(run)), scratch=ctx.scratch,
                         trust_pickle=ctx.trust_pickle)
            runs.append(json.loads(done.read_text()))
        values = [float(r[self.metric]) / self.scale for r in runs]
        extra = {label: statistics.mean(float(r[k]) / self.scale for r in runs)
                 for k, label in self.extra.items() if all(k in r for r in runs)}
        steps = statistics.mean(r["steps"] for r in runs)
        return Score(self.task, self.label, statistics.mean(values), values, extra,
                     f"{steps:.0f} steps, {len(runs)} seed{'s' if len(runs) > 1 else ''}")


@dataclass
class ProbeEvaluator:
    """A linear probe of the model's frozen sentence embeddings (stages/probe.py): nothing is fine-tuned, so there
    is one deterministic run, whatever --seeds says, and no --scratch arm."""

    task: str
    metric: str = "test_accuracy"
    label: str = "test accuracy (probe)"

    def check(self, ctx: EvalContext) -> None:
        from budgetlm.tasks.config import TaskDataConfig
        from budgetlm.data.readers import check_input_file
        from budgetlm.tasks.resolve import resolve_task

        if ctx.scratch:
            raise UserError(f"{self.task}-probe probes a trained model's embeddings; it has no --scratch arm")
        for f in resolve_task(TaskDataConfig(task=self.task)).files():
            check_input_file(f)

    def __call__(self, ctx: EvalContext) -> Score:
        from budgetlm.tasks.config import TaskDataConfig
        from budgetlm.stages.probe import probe_pairs

        done = ctx.run_dir / "results.json"
        if not done.exists():
            print(f"== {self.task}-probe: frozen embeddings + logistic regression", file=sys.stderr)
            ctx.run_dir.mkdir(parents=True, exist_ok=True)
            probe_pairs(ctx.model, TaskDataConfig(task=self.task), done, trust_pickle=ctx.trust_pickle)
        r = json.loads(done.read_text())
        extra = {"F1": r["test_f1"]} if "test_f1" in r else {}
        return Score(f"{self.task}-probe", self.label, r[self.metric], [r[self.metric]], extra,
                     f"no fine-tuning; C={r['C']} by {r.get('folds', 5)}-fold CV")


EVALUATORS: dict[str, Evaluator] = {
    "sst2": FinetuneEvaluator("sst2", "sst2-finetune", "accuracy", "dev accuracy"),
    "agnews": FinetuneEvaluator("agnews", "agnews-finetune", "accuracy", "test accuracy", {"macro_f1": "macro-F1"}),
    "mrpc": FinetuneEvaluator("mrpc", "mrpc-finetune", "test_accuracy", "test accuracy", {"test_f1": "F1"}),
    "wikiann": FinetuneEvaluator("wikiann", "wikiann-finetune", "test_f1", "test entity F1"),
    "wnut17": FinetuneEvaluator("wnut17", "wnut17-finetune", "test_f1", "test entity F1"),
    "stsb": FinetuneEvaluator("stsb", "stsb-embedding-finetune", "test_spearman", "test Spearman",
                              {"spearman": "dev Spearman"}, scale=100.0),
    "rusentiment": FinetuneEvaluator("rusentiment", "rusentiment-finetune", "test_weighted_f1",
                                     "test weighted F1", {"test_macro_f1": "macro-F1", "test_accuracy": "accuracy"}),
    "mrpc-probe": ProbeEvaluator("mrpc"),
}


@dataclass
class Report:
    model: str
    scratch: bool
    scores: list[Score]

    def markdown(self) -> str:
        """GLUE-style: one row per model, one column per task (score x100), the unweighted average last."""
        head = ["model"] + [f"{s.task} ({s.metric})" for s in self.scores] + ["average"]
        avg = statistics.mean(s.value for s in self.scores)
        name = Path(self.model).name + (" (scratch)" if self.scratch else "")
        cells = [name] + [_cell(s) for s in self.scores] + [f"{100 * avg:.1f}"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(cells) + " |", ""]
        lines += ["| task | metric | score | per seed | how |", "|---|---|---|---|---|"]
        for s in self.scores:
            more = "".join(f"; {k} {100 * v:.1f}" for k, v in s.extra.items())
            lines.append(f"| {s.task} | {s.metric}{more} | {100 * s.value:.1f} | "
                         f"{', '.join(f'{100 * v:.1f}' for v in s.values)} | {s.detail} |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"model": self.model, "scratch": self.scratch,
                "average": statistics.mean(s.value for s in self.scores),
                "scores": [{**asdict(s), "std": s.std} for s in self.scores]}

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(self.scores), 3.6))
        x = range(len(self.scores))
        ax.bar(x, [100 * s.value for s in self.scores], yerr=[100 * s.std for s in self.scores], capsize=4, color="#4c72b0")
        for i, s in enumerate(self.scores):
            ax.text(i, 100 * s.value + 1, f"{100 * s.value:.1f}", ha="center", va="bottom", fontsize=9)
        ax.set_xticks(list(x), [f"{s.task}\n{s.metric}" for s in self.scores], fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("score (x100)")
        ax.set_title(Path(self.model).name + (" (scratch)" if self.scratch else ""), fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _cell(s: Score) -> str:
    extra = "/".join(f"{100 * v:.1f}" for v in s.extra.values())
    return f"{100 * s.value:.1f}" + (f"/{extra}" if extra else "")


def parse_budgets(budget: str | None, per_task: str | None, tasks: list[str]) -> dict[str, str | None]:
    """{task: budget or None}; `per_task` is 'sst2=3m,wikiann=300steps' and wins over `budget`."""
    out = {t: budget for t in tasks}
    for item in filter(None, (per_task or "").split(",")):
        if "=" not in item:
            raise UserError(f"--budgets: {item!r} must look like task=budget, e.g. mrpc=2m")
        task, value = (x.strip() for x in item.split("=", 1))
        if task not in out:
            raise UserError(f"--budgets names {task!r}, which is not in --tasks ({', '.join(tasks)})")
        out[task] = value
    for task, value in out.items():
        if value:
            parse_budget(value, f"budget for {task}")
    return out


def evaluate(model: str | Path, tasks: list[str], out: str | Path, budgets: dict[str, str | None] | None = None,
             seeds: int = 1, scratch: bool = False, overrides: list[str] | None = None, trust_pickle: bool = False) -> Report:
    """Everything that can be checked is checked before the first task trains: task names, seeds, the model
    (loaded here to check it; each task loads it again), each task's config and data files, and --out. If a
    task still fails, no report is written and the empty folders this call made are removed; finished task
    runs stay and are reused next time."""
    from budgetlm.models.load import load
    from budgetlm.stages.common import make_output_dir, tidy_on_failure

    unknown = [t for t in tasks if t not in EVALUATORS]
    if unknown or not tasks:
        raise UserError(f"unknown task(s) {', '.join(unknown) or '(none given)'}; evaluators: {', '.join(EVALUATORS)}")
    twice = sorted({t for t in tasks if tasks.count(t) > 1})
    if twice:
        raise UserError(f"--tasks names {', '.join(twice)} more than once")
    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    load(model, trust_pickle)  # a missing, damaged or pickled model fails here, not after a task
    out = Path(out)
    contexts = [EvalContext(str(model), out / task, (budgets or {}).get(task), seeds, scratch, list(overrides or []),
                            trust_pickle) for task in tasks]
    for task, ctx in zip(tasks, contexts):
        check = getattr(EVALUATORS[task], "check", None)
        if check is not None:
            check(ctx)
    with tidy_on_failure(out):
        make_output_dir(out)
        scores = [EVALUATORS[task](ctx) for task, ctx in zip(tasks, contexts)]
        report = Report(str(model), scratch, scores)
        # the three files appear together at the end, each whole (written aside, then renamed)
        with replacing(out / "report.png") as tmp:
            report.plot(tmp)
        write_json(out / "report.json", report.to_dict())
        with replacing(out / "report.md") as tmp:
            tmp.write_text(f"# Evaluation of `{model}`\n\n" + report.markdown() + "\n")
    return report
