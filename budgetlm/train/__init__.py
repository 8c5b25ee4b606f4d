"""Training: the one loop for every stage, its optimizer, LR schedule, checkpoints and logs."""
