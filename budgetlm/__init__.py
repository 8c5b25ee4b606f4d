"""budgetlm: pre-train, fine-tune, evaluate and ship Transformer LMs on the compute you have."""

__version__ = "0.1.0"
