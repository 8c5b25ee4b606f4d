"""Downstream task types (classification, regression, tagging, embedding): readers, heads, losses and metrics;
one registry (registry.py). Built-in data sets resolve in the data root. Pre-training evaluators live in objectives/."""
