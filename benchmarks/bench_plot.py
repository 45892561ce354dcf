"""Drawing a big surface: an 8192 x 8192 grid (67M points, ~800 MB of Parquet) sampled while it is read.

The surface is written once with the CLI (`scalesweep surface --law hoffmann2022 --params-range
1e6:1e12:8192 --tokens-range 1e8:1e14:8192`) into a temporary directory, then, for each image format, drawn in
a fresh process that reports the seconds of the `plot_surface` call alone (imports done) and its peak
resident memory (ru_maxrss from os.wait4, started from bench_memory's small launcher so that no parent's
memory is counted). The `plot surface` command is timed the same way, start-up included. The surface file is
deleted at the end.

Run: python benchmarks/bench_plot.py [--size 8192] [--formats png,pdf,svg] [--keep FILE]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_memory import LAUNCHER  # noqa: E402
from bench_startup import cpu  # noqa: E402

CALL = """
import sys, time
import matplotlib.figure, matplotlib.backends.backend_agg, pyarrow.parquet  # noqa: F401  (imports not timed)
from scalesweep.plot import plot_surface
t0 = time.perf_counter()
plot_surface(sys.argv[1], sys.argv[2])
print(time.perf_counter() - t0)
"""


def child(argv, tmp):
    """Run argv from the launcher: (stdout, peak RSS in MiB, wall seconds)."""
    result = os.path.join(tmp, "rusage")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, result, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    with open(result) as fh:
        code, kib = (int(x) for x in fh.read().split())
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout, kib / 1024, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192, help="points per axis (default 8192: 67M points)")
    ap.add_argument("--formats", default="png,pdf,svg")
    ap.add_argument("--keep", default=None, help="use (or write and keep) this surface file")
    args = ap.parse_args()
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or os.path.join(tmp, "big.parquet")
        if not os.path.exists(path):
            subprocess.run([sys.executable, "-m", "scalesweep", "surface", "--law", "hoffmann2022", "--params-range",
                            f"1e6:1e12:{args.size}", "--tokens-range", f"1e8:1e14:{args.size}", "-o", path], check=True)
        rows = pq.ParquetFile(path).metadata.num_rows
        print(f"plot surface: {rows / 1e6:.1f}M points, {os.path.getsize(path) / 2**20:.0f} MiB of Parquet; {cpu()}")
        for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
            image = os.path.join(tmp, f"big.{fmt}")
            out, rss, _ = child([sys.executable, "-c", CALL, path, image], tmp)
            print(f"  plot_surface -> {fmt:<4} {float(out):6.2f} s   peak RSS {rss:6.0f} MiB   "
                  f"image {os.path.getsize(image) / 1024:7.0f} KiB")
        image = os.path.join(tmp, "cli.png")
        _, rss, seconds = child([sys.executable, "-m", "scalesweep", "plot", "surface", path, "-o", image], tmp)
        print(f"  `scalesweep plot surface -o png` (process, start-up included) {seconds:6.2f} s   "
              f"peak RSS {rss:6.0f} MiB")


if __name__ == "__main__":
    main()
