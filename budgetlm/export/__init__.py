"""Export / import to other formats: writers.py (`export_hf`, the writer per model kind), hf.py (transformers),
hf_import.py (transformers -> budgetlm), sentence_transformers.py, hf_seq2seq.py (BART / mBART)."""

from budgetlm.export.hf import to_hf
from budgetlm.export.hf_families import FAMILIES
from budgetlm.export.hf_import import from_hf, import_hf
from budgetlm.export.writers import export_hf

__all__ = ["FAMILIES", "export_hf", "from_hf", "import_hf", "to_hf"]
