"""The settings a run starts from: the tuned presets behind the published figures, not the schemas' bare defaults
(issue #23). `finetune_config` and `pretrain_config` build the config a command runs; the CLI and the Python API
both call them with what the user gave (a config file and `key=value` overrides).

Precedence: schema defaults < the preset's training settings < --config YAML < flags < key=value overrides.

- finetune: the task type -- given, a built-in task's, or inferred from the training file by tasks/resolve.py --
  picks a preset in TYPE_PRESETS; the run takes its FINETUNE_KEYS (learning rate, warm-up, schedule, batch, length
  grouping, head, pooling, dropout), never its data, budget or machine settings, plus evaluation every epoch.
- pretrain: a masked-LM encoder takes the budget recipe's model and optimizer (PRETRAIN_KEYS).

`preset` (auto | none | a preset name) turns this off or names another preset. A --config file is the settings
itself: the preset layer applies under it only when the file (or an override) says `preset`.
"""

from __future__ import annotations

import copy

from budgetlm.config import apply_overrides, build_config, config_path, deep_merge, from_dict, load_yaml, preset_path
from budgetlm.errors import UserError
from budgetlm.stages.config import FinetuneConfig, PretrainConfig, check_preset
from budgetlm.tasks.config import TaskDataConfig

# task type -> the preset of the built-in task of that type (tasks/registry.py BUILTIN_TASKS). sentence and pair
# share the head and lr (mean pooling, ModernBERT head, 3e-4); regression is a head on one text or a pair like
# MRPC, so it takes that recipe, not the STS-B one: that trains a bi-encoder with no head (CoSENT/InfoNCE, lr 1e-3).
TYPE_PRESETS = {
    "sentence": "sst2-finetune",
    "pair": "mrpc-finetune",
    "regression": "mrpc-finetune",
    "token": "wikiann-finetune",
    "embedding": "stsb-embedding-finetune",
}
PRETRAIN_PRESET = "sst2-budget-pretrain"  # the 20-minute SST-2 recipe: d_model 128, RoPE, GeGLU, bf16 + compile

# what a run takes from its preset (a section name takes the whole section): how to train, never which data,
# for how long (train.budget), or how the figure was measured (train.clock, train.threads, log and checkpoint cadence)
_OPTIMIZER = ("train.lr", "train.warmup", "train.decay", "train.min_lr_ratio", "train.batch_size", "train.grad_accum",
              "train.weight_decay", "train.beta1", "train.beta2", "train.eps", "train.max_grad_norm")
FINETUNE_KEYS = ("dropout", "attention_dropout", "head", "data.group_by_length", "embedding.pooling",
                 "embedding.regression", "embedding.temperature", "embedding.margin", "embedding.bidirectional",
                 *_OPTIMIZER)
PRETRAIN_KEYS = ("model", "objective.mask_rate", "data.vocab_size", *_OPTIMIZER, "train.precision", "train.compile")
# small data: with a validation file, one evaluation per pass over the training data (train.keep_best can use them)
FINETUNE_EXTRAS = {"train": {"eval_per_epoch": True}}
_LAYERS = {FinetuneConfig: (FINETUNE_KEYS, FINETUNE_EXTRAS), PretrainConfig: (PRETRAIN_KEYS, {})}


def finetune_config(config_file: str | None = None, overrides: list[str] = ()) -> FinetuneConfig:
    """The config `budgetlm finetune` runs: the task type's tuned preset < `config_file` < `overrides`
    (`key=value` strings, as on the command line). Its `preset` names the preset taken, or "none"."""
    return _build(FinetuneConfig, config_file, overrides, _finetune_preset)


def pretrain_config(config_file: str | None = None, overrides: list[str] = ()) -> PretrainConfig:
    """The config `budgetlm pretrain` runs: for a masked-LM encoder, the budget recipe < `config_file` < `overrides`.
    Its `preset` names the preset taken, or "none"."""
    return _build(PretrainConfig, config_file, overrides, _pretrain_preset)


def pretrain_defaults() -> PretrainConfig:
    """The defaults `pretrain` runs with when given no --config (for --help; unresolved, so objective.name stays
    empty); the bare schema if the recipe cannot be read."""
    try:
        return from_dict(PretrainConfig, preset_settings(PRETRAIN_PRESET, PRETRAIN_KEYS))
    except UserError:
        return PretrainConfig()


def preset_settings(name: str, keys: tuple[str, ...]) -> dict:
    """The `keys` a shipped preset (budgetlm/presets/<name>.yaml) sets, as a nested dict."""
    data = load_yaml(preset_path(name))
    out: dict = {}
    for key in keys:
        node, parts = data, key.split(".")
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = copy.deepcopy(node)
    return out


def preset_layer(cfg) -> dict:
    """What the preset `cfg.preset` puts under a run's own settings (nested keys); {} for none/auto."""
    if cfg.preset in ("auto", "none"):
        return {}
    keys, extras = _LAYERS[type(cfg)]
    return deep_merge(preset_settings(cfg.preset, keys), copy.deepcopy(extras))


def preset_line(cfg) -> str:
    """The line a run prints before training: which preset it started from and what that set ("" for none)."""
    if getattr(cfg, "preset", "none") in ("auto", "none"):
        return ""
    return (f"settings: the tuned ones of the preset {cfg.preset} ({' '.join(_flat(preset_layer(cfg)))}); --config, "
            "flags and key=value override them, preset=none turns them off")


def _build(cls, config_file, overrides, choose):
    """Build the user's config once to see what they asked for, pick the preset, build again on top of it."""
    user = apply_overrides(load_yaml(config_path(config_file)) if config_file else {}, list(overrides))
    first = from_dict(cls, copy.deepcopy(user))  # typed, not yet checked across sections
    check_preset(first.preset)
    first.preset = choose(first, from_file=bool(config_file) and "preset" not in user) or "none"
    cfg = build_config(cls, config_file, overrides, base=preset_layer(first))
    cfg.preset = first.preset  # config.json and results.json record the preset that ran
    return cfg


def _finetune_preset(cfg: FinetuneConfig, from_file: bool) -> str:
    """The preset a fine-tuning run starts from, or ""."""
    if cfg.preset != "auto":
        return cfg.preset
    if from_file or cfg.tasks or cfg.method in ("text2text", "prompt"):  # the type presets train heads
        return ""
    return TYPE_PRESETS.get(task_type_of(cfg.data), "")


def _pretrain_preset(cfg: PretrainConfig, from_file: bool) -> str:
    """The preset a pre-training run starts from, or "": the recipe is a masked-LM encoder's."""
    if cfg.preset != "auto":
        return cfg.preset
    if from_file or cfg.model.family != "encoder" or cfg.objective.name not in ("", "mlm"):
        return ""
    return PRETRAIN_PRESET


def task_type_of(data: TaskDataConfig) -> str:
    """The task type a `data` section trains: given, a built-in task's, or inferred from its training file by
    tasks/resolve.py (the inference every fine-tuning run uses). "" when it cannot tell yet: the stage reports
    why, with the same message, when it reads the data."""
    if data.task_type:
        return data.task_type
    # imported here: the task types load their metrics' libraries, which `budgetlm --help` need not wait for
    from budgetlm.tasks.registry import BUILTIN_TASKS
    from budgetlm.tasks.resolve import resolve_task

    if data.task in BUILTIN_TASKS:  # known without the data root
        return BUILTIN_TASKS[data.task].task_type
    try:
        return resolve_task(data).task_type
    except UserError:
        return ""


def _flat(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}={str(v).lower() if isinstance(v, bool) else v}"]
    return out
