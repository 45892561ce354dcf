"""Frontier throughput: 1,000,000 constrained budgets, scalesweep vs a scipy minimize_scalar loop.

Also times a second `scalesweep frontier` CLI call (1,000 budgets) to check the numba cache.
Run: python benchmarks/bench_frontier.py [--n 1000000] [--sample 2000]
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from scipy.optimize import minimize_scalar

sys.path.insert(0, os.path.dirname(__file__))
import scalesweep as ss  # noqa: E402
from _timing import median_time, row  # noqa: E402

CONS = dict(max_params=1e11, min_tokens_per_param=10.0, max_tokens=1e14)


def scipy_loop(law, flops):
    """What a user would write: bounded Brent in log N per budget, constraints as bounds."""
    p = dict(law.params)
    out = np.empty(flops.size)
    for i, c in enumerate(flops):
        s = c / 6.0
        lo = max(0.0, math.log(s / CONS["max_tokens"]))
        hi = min(math.log(s), math.log(CONS["max_params"]), 0.5 * math.log(s / CONS["min_tokens_per_param"]))
        if lo > hi:
            out[i] = np.nan
            continue

        def f(x, s=s):
            n = math.exp(x)
            return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / (s / n) ** p["beta"]

        out[i] = math.exp(minimize_scalar(f, bounds=(lo, hi), method="bounded").x)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    law = ss.get_law("hoffmann2022")
    flops = np.geomspace(1e18, 1e26, args.n)
    print(f"frontier: {args.n:,} constrained budgets {CONS}, law hoffmann2022, "
          f"{numba.get_num_threads()} threads, median of {args.repeat}")
    rates = {}
    for solver in ("auto", "newton", "newton-midpoint"):
        t, _ = median_time(lambda s=solver: ss.frontier(law, flops, solver=s, **CONS), repeat=args.repeat)
        rates[solver] = args.n / t
        row(f"scalesweep.frontier(solver={solver!r})", t, f"{args.n / t / 1e6:6.1f} M budgets/s")
    sample = flops[np.linspace(0, args.n - 1, args.sample).astype(int)]
    t0 = time.perf_counter()
    ref = scipy_loop(law, sample)
    per = (time.perf_counter() - t0) / args.sample
    row(f"scipy minimize_scalar loop ({args.sample:,} sampled, scaled)", per * args.n,
        f"{1 / per / 1e3:6.1f} k budgets/s")
    df = ss.frontier(law, sample, **CONS)
    ok = np.isfinite(ref)
    err = np.max(np.abs(df.params[ok] / ref[ok] - 1))
    print(f"  max relative difference in params vs scipy (xatol 1e-5): {err:.1e}")
    for solver, rate in rates.items():
        print(f"  speed-up {solver:<16} {rate * per:10.0f}x scipy")

    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["scalesweep", "frontier", "--flops-range", "1e18:1e26:1000", "-o", os.path.join(tmp, "f.parquet")]
        walls = []
        for _ in range(4):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
        print(f"  CLI `{' '.join(cmd[:4])} ...` wall: first {walls[0]:.2f} s, "
              f"then median {sorted(walls[1:])[1]:.2f} s (cache warm)")


if __name__ == "__main__":
    main()
