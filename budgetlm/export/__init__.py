"""Export / import to other formats: hf.py (transformers)."""

from budgetlm.export.hf import FAMILIES, export_hf, from_hf, import_hf, to_hf

__all__ = ["FAMILIES", "export_hf", "from_hf", "import_hf", "to_hf"]
