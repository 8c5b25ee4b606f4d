"""The config loader: YAML preset -> dotted overrides -> typed, validated config; the shipped presets
(budgetlm/presets/); and `--help` rendering.

The schemas live beside the code they configure (models/config.py, objectives/config.py, data/config.py,
train/config.py, tasks/config.py, stages/config.py); this module knows none of them. Each field carries its help
text in `metadata["help"]`; `describe()` turns that into `--help` output. Unknown keys, wrong types and
inconsistent values are `UserError`s raised before any heavy work starts. What the machine supports (precision,
compiler, memory) is not checked here: budgetlm/runtime.py resolves it when a stage starts.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import typing
from pathlib import Path

import yaml

from budgetlm.errors import UserError


def _coerce(value, tp, key: str):
    """Check/convert one value against a dataclass field type; strings from the CLI are parsed as YAML."""
    origin = typing.get_origin(tp)
    if isinstance(value, str) and tp is not str:
        if tp in (int, float, bool) or origin is list:
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise UserError(f"{key}: must be a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(tp, type) and issubclass(tp, str):  # a typed string (train.Budget) parses itself, once, here
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return tp.parse(str(value), key)
    elif origin is list:
        (item_tp,) = typing.get_args(tp)
        if dataclasses.is_dataclass(item_tp):  # e.g. FinetuneConfig.tasks: a list of sections
            if isinstance(value, list):
                return [from_dict(item_tp, v or {}, prefix=f"{key}[{i}].") for i, v in enumerate(value)]
            raise UserError(f"{key}: expected a list of sections, got {value!r}")
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [_coerce(v, item_tp, key) for v in value]
    raise UserError(f"{key}: expected {getattr(tp, '__name__', str(tp))}, got {value!r}")


def _field_types(cls) -> dict:
    return typing.get_type_hints(cls)


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise UserError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise UserError(f"unknown config key {full!r}; valid keys here: {', '.join(sorted(names))}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value or {}, prefix=f"{full}.")
        else:
            kwargs[key] = _coerce(value, tp, full)
    obj = cls()
    for key, value in kwargs.items():
        if dataclasses.is_dataclass(value):
            # merge onto the section's defaults (which may differ per stage)
            base = getattr(obj, key)
            for k in (data.get(key) or {}):
                setattr(base, k, getattr(value, k))
        else:
            setattr(obj, key, value)
    return obj


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Merge `a.b=value` strings into a nested dict (values are parsed later against the field types)."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise UserError(f"override {item!r} has an empty key")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return data


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError("config file not found" if not p.exists() else "config path is not a file", path=str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"not valid YAML ({str(e).splitlines()[0]})", path=str(p)) from None
    if not isinstance(data, dict):
        raise UserError("a config file must be a mapping of sections", path=str(p))
    return data


# ----------------------------------------------------------------------------------------------- presets
# The YAML presets behind the published figures ship inside the package (budgetlm/presets/), so an installed
# wheel finds them wherever it runs; they are read through importlib.resources, never relative to a checkout.

PRESET_SUFFIX = ".yaml"
OLD_PRESET_PREFIX = "configs/"  # where the presets lived before issue 23; still accepted


def presets_dir() -> Path:
    """The folder of presets shipped with the package (the package is installed as files, not zipped)."""
    return Path(str(importlib.resources.files("budgetlm") / "presets"))


def preset_names() -> list[str]:
    """The shipped presets by name: 'sst2-finetune', 'gpt-char-shakespeare', ..."""
    return sorted(p.name[: -len(PRESET_SUFFIX)] for p in presets_dir().glob(f"*{PRESET_SUFFIX}"))


def _preset_stem(name: str) -> str:
    """'sst2-finetune', 'sst2-finetune.yaml' and 'configs/sst2-finetune.yaml' all name the same preset."""
    stem = name.strip()
    if stem.startswith(OLD_PRESET_PREFIX):
        stem = stem[len(OLD_PRESET_PREFIX):]
    return stem[: -len(PRESET_SUFFIX)] if stem.endswith(PRESET_SUFFIX) else stem


def preset_path(name: str) -> Path:
    """The file of a shipped preset, named 'sst2-finetune', 'sst2-finetune.yaml' or 'configs/sst2-finetune.yaml'."""
    stem = _preset_stem(name)
    names = preset_names()
    if stem not in names:
        raise UserError(f"no preset named {name!r}; the presets are: {', '.join(names)}")
    return presets_dir() / f"{stem}{PRESET_SUFFIX}"


def config_path(name: str | Path) -> Path:
    """What `--config` names: a YAML file that exists, else a shipped preset of that name."""
    p = Path(name)
    if p.exists():
        return p
    stem = _preset_stem(str(name))
    if "/" not in stem and stem in preset_names():
        return preset_path(stem)
    if "/" not in stem:  # it looks like a preset name: say which there are
        raise UserError(f"config file not found, and no preset of that name; the presets are: {', '.join(preset_names())}",
                        path=str(p))
    raise UserError("config file not found", path=str(p))


def build_config(cls, config_file: str | Path | None = None, overrides: list[str] | None = None, base: dict | None = None):
    """defaults (or `base`) < the YAML file or shipped preset `config_file` < dotted `overrides`; validated."""
    data = dict(base or {})
    if config_file:
        data = deep_merge(data, load_yaml(config_path(config_file)))
    data = apply_overrides(data, list(overrides or []))
    cfg = from_dict(cls, data)
    cfg.validate()
    return cfg


def deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def describe(cls, prefix: str = "", obj=None) -> list[str]:
    """One line per field: `section.key (type, default): help` for --help; the defaults are those of `obj`
    (default: `cls()`), e.g. a config with a preset's settings under it."""
    lines = []
    hints = _field_types(cls)
    obj = cls() if obj is None else obj
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            lines.extend(_describe_obj(getattr(obj, f.name), f"{prefix}{f.name}."))
        else:
            lines.append(_describe_line(prefix + f.name, tp, getattr(obj, f.name), f.metadata.get("help", "")))
    return lines


def _describe_obj(obj, prefix: str) -> list[str]:
    hints = _field_types(type(obj))
    return [
        _describe_line(prefix + f.name, hints[f.name], getattr(obj, f.name), f.metadata.get("help", ""))
        for f in dataclasses.fields(obj)
    ]


def _describe_line(name, tp, default, help_text) -> str:
    if isinstance(tp, type) and issubclass(tp, str):  # a Budget is written as a string
        tp = str
    tname = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    return f"  {name}={default!r}  ({tname}) {help_text}"
