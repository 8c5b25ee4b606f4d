"""Stage functions behind the CLI: each takes a validated config and a run directory."""
