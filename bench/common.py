"""What the bench/ scripts share: running `budgetlm` commands, mean +- std, the machine line, run outputs.

Every script imports it as `import common` (or `from common import ...`). That works without any PYTHONPATH
setting because `python bench/X.py` puts the script's own folder, bench/, first on sys.path; tests put bench/
on sys.path themselves. Importing this module does nothing heavy (no torch, no budgetlm, no I/O); the functions
import what they need.

- `budgetlm_cmd`, `cli_env`, `run`, `launch`: a `budgetlm` command in a child process that runs the same
  budgetlm this script imports; `run` times it (wall, CPU of the child, load average) and, when it fails,
  stops with the command, its exit code and the end of its output.
- `mean_std`, `format_mean_std`: mean and sample standard deviation (0 for one value) and their text.
- `machine`, `machine_line`: CPU model, cores, the vector/matrix flags that decide CPU speed (AVX-512 BF16,
  AMX), torch version and threads: printed beside every figure, since figures differ by machine.
- `system_info`, `matmul_peak_gflops`: the system record of a results JSON; the measured fp32/bf16 matmul peak.
- `read_results`, `read_metrics`, `write_json`: a run's results.json and metrics.jsonl; a results file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the repository: tests/, bench/results/
# CPU flags worth knowing beside a figure: what torch's CPU kernels can use
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


# ------------------------------------------------------------------------------------------- child processes

def budgetlm_cmd(*args: str, ranks: int = 1) -> list[str]:
    """`python -m budgetlm ARGS`, or under torchrun (`--standalone`, one process per rank) when ranks > 1."""
    if ranks == 1:
        return [sys.executable, "-m", "budgetlm", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks),
            "-m", "budgetlm", *args]


def package_root() -> Path:
    """The folder holding the budgetlm this process imports (found without importing it)."""
    spec = importlib.util.find_spec("budgetlm")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("budgetlm is not importable: install it (pip install -e .) or run from the repository root")
    return Path(list(spec.submodule_search_locations)[0]).parent


def cli_env(threads: int | None = None, **extra: str) -> dict:
    """This process's environment, with the child importing the same budgetlm as this script (PYTHONPATH) and,
    given `threads`, OMP_NUM_THREADS set; `extra` adds or replaces variables."""
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(package_root()) + (os.pathsep + path if path else "")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return {**env, **{k: str(v) for k, v in extra.items()}}


def launch(cmd: list[str], log: Path | None = None, env: dict | None = None, echo: bool = True) -> subprocess.Popen:
    """Start `cmd` (stdout and stderr to `log` when given, else to this process's); print it first if `echo`."""
    if echo:
        print("$ " + " ".join(map(str, cmd)), flush=True)
    out = None
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        out = Path(log).open("w")
    try:
        return subprocess.Popen(cmd, env=env if env is not None else cli_env(), stdout=out,
                                stderr=subprocess.STDOUT if out else None)
    finally:
        if out:
            out.close()  # the child holds its own copy


def run(cmd: list[str], log: Path | None = None, env: dict | None = None, cwd: Path | None = None,
        capture: bool = False, check: bool = True, echo: bool = False) -> dict:
    """Run `cmd` to its end. Output goes to `log` (a file), or is captured (`capture`: in the returned
    "stdout"/"stderr"), or goes to this process's. Returns {"returncode", "wall_s", "cpu_s" (user + system CPU of
    the child; exact only when no other child of this process ends meanwhile), "loadavg_before", "loadavg_after"}.
    With `check`, a failure stops the script: the command, its exit code and the last 3,000 characters it wrote."""
    if echo:
        print("$ " + " ".join(map(str, cmd)), flush=True)
    env = env if env is not None else cli_env()
    before, t0, cpu0 = list(os.getloadavg()), time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    else:
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=capture, text=capture)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = {"returncode": proc.returncode, "wall_s": time.time() - t0,
              "cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
              "loadavg_before": before, "loadavg_after": list(os.getloadavg())}
    if capture:
        record.update(stdout=proc.stdout, stderr=proc.stderr)
    if check and proc.returncode:
        tail = Path(log).read_text(errors="replace") if log is not None else (proc.stderr or "") if capture else ""
        raise SystemExit(f"{' '.join(map(str, cmd))} failed with exit code {proc.returncode}"
                         + (f"; see {log}" if log is not None else "") + (f":\n{tail[-3000:]}" if tail else ""))
    return record


def wait_all(procs: list[subprocess.Popen]) -> None:
    """Wait for every process; stop the script if any failed."""
    codes = [p.wait() for p in procs]
    if any(codes):
        sys.exit(f"a run failed (exit codes {codes}); see the .log files")


# ------------------------------------------------------------------------------------------- figures

def mean_std(xs) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for a single value)."""
    xs = list(xs)
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def format_mean_std(mean: float, std: float, scale: float = 1.0, digits: int = 2, sep: str = "±") -> str:
    """'m ± s' with both multiplied by `scale` (100 for percentages) to `digits` decimals."""
    return f"{scale * mean:.{digits}f} {sep} {scale * std:.{digits}f}"


# ------------------------------------------------------------------------------------------- the machine

def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def machine(threads: int | str | None = None) -> dict:
    """CPU model, usable cores, speed-relevant CPU flags, torch version and threads. `threads` is what the
    measured process uses; by default torch's current setting if this process imported torch, else 'default'."""
    model, flags = _cpuinfo()
    if threads is None:
        threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else "default"
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": re.sub(r"\s+", " ", model), "cores": cores, "cpu_flags": [f for f in SPEED_FLAGS if f in flags],
            "torch": torch_version, "threads": threads}


def machine_line(threads: int | str | None = None) -> str:
    """One line to print beside a figure: 'machine: AMD EPYC, 2 cores (avx2 avx512f avx512_bf16), torch 2.5.1, 1 thread'."""
    m = machine(threads)
    flags = " ".join(m["cpu_flags"]) or "no AVX2"
    t = m["threads"]
    threads_text = f"{t} thread{'' if t == 1 else 's'}" if isinstance(t, int) else f"threads: {t}"
    return f"machine: {m['cpu_model']}, {m['cores']} cores ({flags}), torch {m['torch']}, {threads_text}"


# ------------------------------------------------------------------------------------------- run outputs

def read_results(run_dir: Path) -> dict:
    """A finished run's results.json (budgetlm writes it last, so it exists only when the run finished)."""
    return json.loads((Path(run_dir) / "results.json").read_text())


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of a run's metrics.jsonl, read as budgetlm reads them (a line cut short by kill -9 is dropped)."""
    from budgetlm.train.logs import read_metrics as read

    return read(Path(run_dir))


def write_json(path: Path, obj, indent: int = 2) -> None:
    """Write `obj` as JSON atomically (a temporary file renamed over `path`); non-JSON values as str()."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=indent, default=str) + "\n")
    os.replace(tmp, path)


def system_info(**extra) -> dict:
    """The system record of a results JSON: date, CPU, cores, torch threads and versions, libc, the command;
    `extra` (e.g. allocator_tuned=True) goes before the command."""
    import datetime
    import platform

    import torch

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpuinfo()[0],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": version("transformers"),
        "python": platform.python_version(),
        "libc": " ".join(platform.libc_ver()),
        **extra,
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }


def matmul_peak_gflops(plan=((2048, 10), (4096, 3)), dtype=None) -> float:
    """Best GFLOP/s of torch.mm on n x n matrices (2 n^3 FLOPs each) in `dtype` (default fp32): the machine's
    practical peak."""
    import torch

    dtype = dtype or torch.float32
    best = 0.0
    for n, reps in plan:
        a, b, c = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype), torch.empty(n, n, dtype=dtype)
        torch.mm(a, b, out=c)  # warm-up: threads, page faults of c
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best
