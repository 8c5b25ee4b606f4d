"""Pre-training objectives: pure functions from token ids to (inputs, labels). Ignored labels are -100."""

from budgetlm.objectives.infill import infill
from budgetlm.objectives.mlm import IGNORE_INDEX, mask_tokens
from budgetlm.objectives.span import corrupt_spans, sentinel_tokens

MASKING_FUNCTIONS = {"random": mask_tokens}

__all__ = ["IGNORE_INDEX", "mask_tokens", "MASKING_FUNCTIONS", "corrupt_spans", "infill", "sentinel_tokens"]
