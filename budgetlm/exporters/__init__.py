"""Export / import to other formats: writers.py (`export_hf`, the writer per model kind), hf.py (transformers),
hf_import.py (transformers -> budgetlm), sentence_transformers.py, hf_seq2seq.py (BART / mBART)."""

from budgetlm.exporters.hf import to_hf
from budgetlm.exporters.hf_families import FAMILIES
from budgetlm.exporters.hf_import import from_hf, import_hf
from budgetlm.exporters.writers import export_hf

__all__ = ["FAMILIES", "export_hf", "from_hf", "import_hf", "to_hf"]
