"""The one place budgetlm's version is written: pyproject.toml reads it (dynamic version), saved models and
exports record it."""

__version__ = "0.1.0"
