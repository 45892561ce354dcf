"""Process start-up: `scalesweep --help`, `--version` and a warm `scalesweep frontier`, against the floor
`python -c "import numba, pyarrow"` measured in the same run (median process wall time of --runs runs).

Targets: --help and --version under 0.3 s; a warm `frontier --flops-range 1e18:1e26:9` under 0.8 s. The
frontier's output goes to a pipe (CSV), as in a script. Also prints the CPU and the library versions.
Run: python benchmarks/bench_startup.py [--runs 7]
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def scalesweep_command() -> list[str]:
    script = Path(sys.executable).parent / "scalesweep"
    if script.exists():
        return [str(script)]
    found = shutil.which("scalesweep")
    return [found] if found else [sys.executable, "-m", "scalesweep"]


def wall(cmd, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def cpu() -> str:
    """The CPU model and the SIMD features numpy and LLVM can use (ratios differ between CPUs)."""
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("?", "", "x86_64"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = ", ".join(f for f in ("avx512f", "avx2", "fma") if f in flags) or "none of avx512f/avx2/fma"
    return f"{model} ({os.cpu_count()} cores; {simd})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    import numba
    import numpy
    import pyarrow

    import scalesweep

    print(f"CPU: {cpu()}")
    print(f"Python {platform.python_version()}, numba {numba.__version__}, numpy {numpy.__version__}, "
          f"pyarrow {pyarrow.__version__}, scalesweep {scalesweep.__version__}")
    ss = scalesweep_command()
    frontier = [*ss, "frontier", "--flops-range", "1e18:1e26:9"]
    subprocess.run(frontier, stdout=subprocess.DEVNULL, check=True)  # warm numba's on-disk cache
    floor, _ = wall([sys.executable, "-c", "import numba, pyarrow"], args.runs)
    rows = [("python -c 'import numba, pyarrow' (floor)", floor, None),
            ("scalesweep --help", wall([*ss, "--help"], args.runs)[0], 0.3),
            ("scalesweep --version", wall([*ss, "--version"], args.runs)[0], 0.3),
            ("scalesweep frontier --flops-range 1e18:1e26:9 (warm)", wall(frontier, args.runs)[0], 0.8)]
    print(f"process wall time, median of {args.runs} runs")
    for label, t, target in rows:
        verdict = "" if target is None else f"target < {target} s: {'met' if t < target else 'NOT met'}"
        print(f"  {label:<56} {t:7.3f} s  {t / floor:5.2f}x floor  {verdict}")


if __name__ == "__main__":
    main()
