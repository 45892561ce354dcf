"""Dask engine overhead: a 200M-point surface and a 10M-scenario sweep, local engine vs a 2-worker LocalCluster
on the same 2 cores, in one run. Reports throughput, the overhead ratio (target: Dask <= 1.3x local) and the
peak memory of each worker process (it should follow the part size, not the sweep).

Local runs write the same partitioned layout (--partition-rows) so both sides do the same I/O; each side is
timed once per repeat (they are long), and the medians are compared.

Run: python benchmarks/bench_dask.py [--points 200000000] [--scenarios 10000000] [--repeat 1]
"""

import argparse
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import scalesweep as ss  # noqa: E402
from scalesweep import dataset, scenarios, surfaces  # noqa: E402


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=200_000_000)
    ap.add_argument("--scenarios", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    law = ss.get_law("kaplan2020")
    side = int(math.sqrt(args.points / 2))
    n = np.geomspace(1e7, 1e12, side)
    d = np.geomspace(1e9, 1e14, args.points // side)
    # 10M heterogeneous scenarios: 4 laws x 250 GPU counts x 10 durations x 10 MFUs x 10 data limits x ~10 caps
    caps = max(1, args.scenarios // (4 * 250 * 10 * 10 * 10))
    gpus = sorted({round(g) for g in np.geomspace(8, 16384 * 64, 400)})[:250]
    spec_text = (f"law: [hoffmann2022, besiroglu2024, kaplan2020, muennighoff2023]\ngpu: H100-SXM\ngpus: {gpus}\n"
                 f"days: [1, 2, 3, 5, 7, 10, 14, 21, 30, 60]\nmfu: [0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]\n"
                 "unique_tokens: 1e10:1e14:10\n" + (f"max_tokens_per_param: 5:2560:{caps}\n" if caps > 1 else
                                              "max_tokens_per_param: 20\n"))
    tmp = tempfile.mkdtemp(prefix="bench_dask_", dir=os.environ.get("BENCH_DIR"))
    try:
        spec = os.path.join(tmp, "sweep.yaml")
        with open(spec, "w") as fh:
            fh.write(spec_text)
        jobs = {
            "surface": surfaces.job(law, n, d, partition_rows=surfaces.CHUNK_POINTS),
            "scenarios": scenarios.job(spec, partition_rows=scenarios.CHUNK_ROWS),
        }
        # warm the numba cache (small runs of each kind)
        dataset.run(surfaces.job(law, n[:2], d[:10], partition_rows=10), os.path.join(tmp, "w1"))
        print(f"dask overhead: {os.cpu_count()} cores; local engine (2 numba threads) vs LocalCluster(2 workers x 1 "
              f"thread); part = {surfaces.CHUNK_POINTS:,} points / {scenarios.CHUNK_ROWS:,} scenarios")
        for name, job in jobs.items():
            t_local, t_dask, peaks = [], [], []
            for r in range(args.repeat):
                out = os.path.join(tmp, f"{name}-local-{r}")
                t, _ = timed(lambda out=out, job=job: dataset.run(job, out))
                t_local.append(t)
                shutil.rmtree(out)
                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
                        Client(cl) as client:
                    client.run(lambda: __import__("scalesweep").api.frontier("hoffmann2022", [1e20]))  # warm imports
                    out = os.path.join(tmp, f"{name}-dask-{r}")
                    t, _ = timed(lambda out=out, job=job, client=client: dataset.run(job, out, engine="dask",
                                                                                    client=client))
                    t_dask.append(t)
                    peaks.append(max(client.run(peak_rss_mib).values()))
                size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) / 2**20
                shutil.rmtree(out)
            tl, td = statistics.median(t_local), statistics.median(t_dask)
            unit = "points" if name == "surface" else "scenarios"
            print(f"  {name:<9} {job.rows:>13,} {unit:<9} parts {len(job.parts):>4}  local {tl:7.2f} s "
                  f"({job.rows / tl / 1e6:6.2f} M/s)  dask {td:7.2f} s ({job.rows / td / 1e6:6.2f} M/s)  "
                  f"overhead {td / tl:4.2f}x (target <= 1.3x)  peak RSS per worker {max(peaks):6.0f} MiB  "
                  f"output {size:,.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
