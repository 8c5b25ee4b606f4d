"""budgetlm: pre-train, fine-tune, evaluate and ship Transformer LMs on the compute you have.

`budgetlm.pretrain`, `finetune`, `evaluate` and `export` are the commands as Python functions (budgetlm/api.py);
they are imported on first use, so `import budgetlm` stays cheap.
"""

from budgetlm.version import __version__

API = ("pretrain", "finetune", "evaluate", "export")

__all__ = ["__version__", *API]


def __getattr__(name: str):
    if name in API:
        from budgetlm import api

        return getattr(api, name)
    raise AttributeError(f"module 'budgetlm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
