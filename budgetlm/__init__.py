"""budgetlm: pre-train, fine-tune, evaluate and ship Transformer LMs on the compute you have."""

from budgetlm.version import __version__
