"""Data: the data root, file readers, the packed token cache and batching."""
