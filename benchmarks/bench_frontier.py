"""Frontier throughput: 1,000,000 constrained budgets in process, against the baselines the targets name.

Targets, each timed against its baseline in the same run (medians):
* ``ss.frontier(law, budgets)`` (default solver, DataFrame out) within 3x the strongest numpy a user would write:
  the closed form N = G (C/6)^(beta/(alpha+beta)) clipped to the limits' interval, D = C/(6N),
  L = E + A N^-alpha + B D^-beta;
* ``solver="newton"`` (the general solver every family can use) at >= 10 M budgets/s;
* a FLOPs model beyond 6N (``flops_model="kaplan"`` / ``"chinchilla"``: C = f(N) D, no longer linear in N) within
  1.5x the same call on C = 6 N D (no limits: a FLOPs model takes none).
Also: the size and write time of a 1M-budget CLI frontier in float64 and with --dtype float32, the share of the
time spent in the compiled kernel (the rest builds the rows), a scipy minimize_scalar
loop, a second `scalesweep frontier` CLI call (numba cache), and the CPU's SIMD features, which decide how fast
numpy's own vectorised ufuncs are. ``--numpy-without-avx512`` times the numpy baseline again in a child process
with numpy's AVX-512 kernels switched off (NPY_DISABLE_CPU_FEATURES), the path numpy takes on a CPU without them.
Run: python benchmarks/bench_frontier.py [--n 1000000] [--sample 2000] [--numpy-without-avx512]
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from scipy.optimize import minimize_scalar

sys.path.insert(0, os.path.dirname(__file__))
import scalesweep as ss  # noqa: E402
from scalesweep import engine  # noqa: E402
from scalesweep.codes import SOLVER_NAMES  # noqa: E402
from scalesweep.kernels.frontier import frontier_kernel  # noqa: E402
from scalesweep.options import Constraints  # noqa: E402
from _timing import median_time, row  # noqa: E402

CONS = dict(max_params=1e11, min_tokens_per_param=10.0, max_tokens=1e14)
NEWTON_TARGET = 10e6  # budgets/s
NUMPY_RATIO_TARGET = 3.0
FLOPS_MODEL_RATIO_TARGET = 1.5


def numpy_closed_form(law, flops):
    """The strongest numpy a user would write: Hoffmann's closed form clipped to the limits' interval in N."""
    p = law.params
    a, b = p["alpha"], p["beta"]
    g = (a * p["A"] / (b * p["B"])) ** (1.0 / (a + b))
    s = flops / 6.0
    lo = np.maximum(1.0, s / CONS["max_tokens"])
    hi = np.minimum(np.minimum(CONS["max_params"], np.sqrt(s / CONS["min_tokens_per_param"])), s)
    n = np.clip(g * s ** (b / (a + b)), lo, hi)
    d = s / n
    return n, d, p["E"] + p["A"] * n ** -a + p["B"] * d ** -b


def simd_features():
    """(CPU flags from /proc/cpuinfo that name SIMD extensions, numpy's detected features, numpy's dispatch
    targets)."""
    flags = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = sorted({x for x in line.split(":", 1)[1].split() if x.startswith(("avx", "sse", "fma"))})
                    break
    except OSError:
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return flags, [k for k, v in __cpu_features__.items() if v], list(__cpu_dispatch__)


def numpy_child(n, repeat):
    """Median seconds of ``numpy_closed_form`` over n budgets (run in a child with NPY_DISABLE_CPU_FEATURES)."""
    law = ss.get_law("hoffmann2022")
    flops = np.geomspace(1e18, 1e26, n)
    t, _ = median_time(lambda: numpy_closed_form(law, flops), repeat=repeat)
    print(t)


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
    ap.add_argument("--numpy-without-avx512", action="store_true")
    ap.add_argument("--numpy-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.numpy_child:
        numpy_child(args.n, args.repeat)
        return
    law = ss.get_law("hoffmann2022")
    flops = np.geomspace(1e18, 1e26, args.n)
    cpu, found, dispatch = simd_features()
    print(f"CPU SIMD flags: {' '.join(cpu) or 'unknown'}")
    simd = [f for f in found if f.startswith(("SSE4", "AVX", "FMA", "X86_V"))]
    print(f"numpy {np.__version__} SIMD: found {' '.join(simd)}; dispatch targets {' '.join(dispatch)}; "
          f"numba {numba.__version__}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs (a loaded machine makes every time here noisy)")
    print(f"frontier: {args.n:,} constrained budgets {CONS}, law hoffmann2022, "
          f"{numba.get_num_threads()} threads, median of {args.repeat}")
    t_np, _ = median_time(lambda: numpy_closed_form(law, flops), repeat=args.repeat)
    row("numpy closed form clipped to the limits (baseline)", t_np, f"{args.n / t_np / 1e6:6.1f} M budgets/s")
    rates, times = {}, {}
    for solver in ("auto", "newton", "newton-midpoint"):
        t, _ = median_time(lambda s=solver: ss.frontier(law, flops, solver=s, **CONS), repeat=args.repeat)
        rates[solver], times[solver] = args.n / t, t
        row(f"scalesweep.frontier(solver={solver!r})", t, f"{args.n / t / 1e6:6.1f} M budgets/s")
    # the kernel alone, on the same inputs (the rest of ss.frontier builds the rows and the DataFrame)
    raw, lb = engine.constraint_bounds(Constraints(**CONS))
    fams, params = np.array([law.family_id]), law.vector[None, :].copy()
    m = flops.size
    outs = (np.empty(m), np.empty(m), np.empty(m), np.empty(m, dtype=np.bool_), np.empty(m, dtype=np.int8))
    for solver in ("auto", "newton"):
        code = SOLVER_NAMES.index(solver)
        t, _ = median_time(lambda c=code: frontier_kernel(fams, params, np.zeros(1, dtype=np.int64), flops, 6.0, lb,
                                                          raw, c, *outs), repeat=args.repeat)
        row(f"  of which the kernel (solver={solver!r})", t, f"{t / times[solver]:6.0%} of the call")
    ratio = times["auto"] / t_np
    print(f"  target 1: ss.frontier within {NUMPY_RATIO_TARGET:g}x numpy: {ratio:.2f}x "
          f"{'met' if ratio <= NUMPY_RATIO_TARGET else 'NOT met'}")
    print(f"  target 2: solver='newton' >= {NEWTON_TARGET / 1e6:g} M budgets/s: {rates['newton'] / 1e6:.1f} M/s "
          f"{'met' if rates['newton'] >= NEWTON_TARGET else 'NOT met'}")
    for name, model in (("hoffmann2022", "chinchilla"), ("kaplan2020", "kaplan")):
        t_6n, _ = median_time(lambda n=name: ss.frontier(n, flops), repeat=args.repeat)
        t_f, _ = median_time(lambda n=name, f=model: ss.frontier(n, flops, flops_model=f), repeat=args.repeat)
        row(f"scalesweep.frontier({name!r}) on C = 6 N D", t_6n, f"{args.n / t_6n / 1e6:6.1f} M budgets/s")
        row(f"  flops_model={model!r}: C = f(N) D", t_f, f"{args.n / t_f / 1e6:6.1f} M budgets/s")
        print(f"  target 3: flops_model={model!r} within {FLOPS_MODEL_RATIO_TARGET:g}x of 6N: {t_f / t_6n:.2f}x "
              f"{'met' if t_f / t_6n <= FLOPS_MODEL_RATIO_TARGET else 'NOT met'}")
    if args.numpy_without_avx512:
        off = [f for f in found if f.startswith("AVX512")]
        if not off:
            print("  numpy without AVX-512: this CPU has none, so the baseline above is already that path")
        else:
            env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(off)}
            out = subprocess.run([sys.executable, __file__, "--numpy-child", "--n", str(args.n), "--repeat",
                                  str(args.repeat)], env=env, check=True, capture_output=True, text=True)
            t_off = float(out.stdout.split()[-1])
            row(f"numpy baseline, NPY_DISABLE_CPU_FEATURES='{' '.join(off)}'", t_off,
                f"ss.frontier {times['auto'] / t_off:.2f}x of it")

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
    n_np = numpy_closed_form(law, flops)[0]
    full = ss.frontier(law, flops, **CONS)
    feasible = full.feasible.to_numpy()
    err = np.max(np.abs(full.params.to_numpy()[feasible] / n_np[feasible] - 1))
    print(f"  max relative difference in params vs the numpy closed form (feasible rows): {err:.1e}")
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
        # --dtype float32: file size and process wall of a 1M-budget frontier with a GPU, against float64
        for dtype in ("float64", "float32"):
            out = os.path.join(tmp, f"{dtype}.parquet")
            cmd = ["scalesweep", "-q", "frontier", "--flops-range", "1e18:1e26:1000000", "--gpu", "H100", "--dtype",
                   dtype, "-o", out]
            walls = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                walls.append(time.perf_counter() - t0)
            print(f"  CLI frontier, 1M budgets with --gpu H100, --dtype {dtype}: {os.path.getsize(out) / 1e6:.1f} MB, "
                  f"median wall {statistics.median(walls):.2f} s")


if __name__ == "__main__":
    main()
