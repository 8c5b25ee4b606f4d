"""What every config schema is made of: a field with its help text, and the two checks most fields need.

A schema is a dataclass beside the code it configures (models/config.py, train/config.py, ...). It names its
section in a `SECTION` class variable, which error messages use (`model.d_model must be > 0`); each field
carries its help in `metadata["help"]`, which `budgetlm.config.describe` turns into `--help` text.
This module imports nothing of budgetlm but its errors, so every schema can import it.
"""

from __future__ import annotations

from dataclasses import field

from budgetlm.errors import UserError


def setting(default, help: str, **kw):
    """A dataclass field with a default and its `--help` text (lists and dicts are copied per instance)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def section_name(section) -> str:
    """The name a schema's fields have in configs and messages: its `SECTION` (e.g. 'model')."""
    return getattr(type(section), "SECTION", type(section).__name__)


def positive(section, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value <= 0:
            raise UserError(f"{section_name(section)}.{name} must be > 0, got {value}")


def choice(section, name: str, options) -> None:
    value = getattr(section, name)
    if value not in options:
        raise UserError(f"{section_name(section)}.{name}={value!r} is not one of: {', '.join(options)}")
