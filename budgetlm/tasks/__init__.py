"""Downstream tasks and evaluation: readers, losses and metrics. Built-in data sets resolve in the data root."""
