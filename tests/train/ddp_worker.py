"""Run several `budgetlm` CLI commands in one torchrun process group (saves a process launch per command).

Usage: torchrun --standalone --nproc_per_node 2 tests/train/ddp_worker.py plan.json
plan.json: a list of argv lists. The CLI joins an existing process group instead of starting its own.
"""

import json
import sys

import torch.distributed as dist

from budgetlm.cli import main

if __name__ == "__main__":
    dist.init_process_group("gloo")
    try:
        for argv in json.load(open(sys.argv[1])):
            code = main(argv)
            if code:
                raise SystemExit(f"rank {dist.get_rank()}: {argv[0]} exited with {code}")
    finally:
        dist.destroy_process_group()
