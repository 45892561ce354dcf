"""Fitting: scalesweep's Huber fit (screened search, default; and the full 4,500-start grid) against a scipy
L-BFGS-B loop over the same grid, on the same runs and the same objective; then variable projection and the
bootstrap's costs. Medians; the CPU's SIMD features are printed with the timings.

The scipy baseline is what a user would write: `scipy.optimize.minimize(method="L-BFGS-B", jac=True)` with the
Huber objective and its analytic gradient in numpy, from every start of the grid in grid order, keeping the
best. It runs in a subprocess with OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1 set before numpy is
imported (single-threaded BLAS: scipy's L-BFGS-B calls LAPACK on tiny matrices, and threaded BLAS only slows it).
Its tolerances are the tightest that reach the grid's best objective: scipy's defaults stop early (their best
objective is printed with its relative gap). The ratio is wall time to reach the grid's best objective to 1e-9
relative: scipy's whole loop (it cannot know which start will win) over scalesweep's fit; scipy's time until its
running best first reached it, in grid order, is printed too (a lower bound no real run could know to stop at).

Run: python benchmarks/bench_fit.py [--repeat 5] [--scipy-repeat 1] [--runs 240] [--skip-scipy]
(about 12 minutes on 2 busy cores, most of it the scipy loop with tight tolerances)
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import median_time, row  # noqa: E402
from scalesweep import fit as F  # noqa: E402

TRUE = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3391, "beta": 0.2849}
DELTA = 1e-3
REACH = 1e-9  # "reached the best objective": f <= f_best * (1 + REACH)

SCIPY = r"""
import json, sys, time
import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

z = np.load(sys.argv[1])
ln_n, ln_d, ln_l, starts = z["ln_n"], z["ln_d"], z["ln_l"], z["starts"]
delta, target, repeat = float(z["delta"]), float(z["target"]), int(z["repeat"])
opts = json.loads(sys.argv[2])

def fg(th):
    a, b, e, al, be = th
    T = np.stack([a - al * ln_n, b - be * ln_d, np.full_like(ln_n, e)])
    lse = logsumexp(T, axis=0)
    r = lse - ln_l
    ar = np.abs(r)
    f = np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta)).sum()
    dr = np.where(ar <= delta, r, delta * np.sign(r))
    W = np.exp(T - lse)
    g = np.array([(dr * W[0]).sum(), (dr * W[1]).sum(), (dr * W[2]).sum(), -(dr * W[0] * ln_n).sum(),
                  -(dr * W[1] * ln_d).sum()])
    return f, g

walls, reach = [], []
for _ in range(repeat):
    best, first = np.inf, None
    t0 = time.perf_counter()
    for x0 in starts:
        f = minimize(fg, x0, jac=True, method="L-BFGS-B", options=opts).fun
        best = min(best, f)
        if first is None and best <= target:
            first = time.perf_counter() - t0
    walls.append(time.perf_counter() - t0)
    reach.append(first)
print(json.dumps({"walls": walls, "reach": reach, "best": best}))
"""


def make_runs(n=240, noise=0.01, seed=1):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(math.log(7e7), math.log(1.6e10), n))
    D = np.exp(rng.uniform(math.log(5e9), math.log(5e11), n))
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    return N, D, L * np.exp(rng.normal(0.0, noise, n))


def simd_features():
    """numpy's view of the CPU (the features its build dispatches to) and the relevant /proc/cpuinfo flags."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    found = [k for k in ("SSE42", "AVX", "F16C", "FMA3", "AVX2", "AVX512F", "AVX512_SKX", "AVX512_ICL", "ASIMD",
                         "SVE") if feats.get(k)]
    flags = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    except OSError:
        pass
    cpu_flags = sorted(f for f in flags if f in {"avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl", "asimd"})
    return model, found, cpu_flags


def scipy_loop(N, D, L, starts, target, opts, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, ln_n=np.log(N), ln_d=np.log(D), ln_l=np.log(L), starts=starts, delta=DELTA, target=target,
                 repeat=repeat)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-c", SCIPY, path, json.dumps(opts)], env=env, capture_output=True,
                             text=True, check=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scipy-repeat", type=int, default=1)
    ap.add_argument("--runs", type=int, default=240)
    ap.add_argument("--skip-scipy", action="store_true", help="time scalesweep alone (no ratios)")
    args = ap.parse_args()
    import numba

    model, feats, flags = simd_features()
    print(f"CPU: {model}; numpy SIMD: {', '.join(feats) or 'none'}; cpuinfo: {', '.join(flags) or 'none'}; "
          f"{os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}")
    N, D, L = make_runs(args.runs)
    starts = F.start_grid("chinchilla")
    print(f"fit: {N.size} runs (1% noise), chinchilla, Huber delta {DELTA}, {len(starts):,}-start grid")
    screened = F.fit(N, D, L)  # also compiles
    print(f"  compile/load of the kernels (first fit in this process): {screened.info['compile_seconds']:.2f} s")
    full = F.fit(N, D, L, search="full")
    f_best = full.info["objective_value"]
    gap = (screened.info["objective_value"] - f_best) / f_best
    t_sc, _ = median_time(lambda: F.fit(N, D, L), repeat=args.repeat, warmup=0)
    row("scalesweep fit, screened search (default)", t_sc,
        f"objective {screened.info['objective_value']:.16g} (relative to the full grid's {gap:+.1e}); "
        f"{screened.info['starts_run']} of {screened.info['starts']} starts run")
    t_full, _ = median_time(lambda: F.fit(N, D, L, search="full"), repeat=max(1, min(args.repeat, 3)), warmup=0)
    row("scalesweep fit --search full", t_full,
        f"objective {f_best:.16g}; {full.info['starts_within_1e-6']} starts within 1e-6")
    target = f_best * (1 + REACH)
    for label, opts in () if args.skip_scipy else (("scipy L-BFGS-B defaults", {}),
                                                    ("scipy L-BFGS-B tight (ftol 1e-13, gtol 1e-12)",
                                                     {"ftol": 1e-13, "gtol": 1e-12, "maxiter": 5000})):
        res = scipy_loop(N, D, L, starts, target, opts, args.scipy_repeat)
        wall = statistics.median(res["walls"])
        reached = [r for r in res["reach"] if r is not None]
        rel = (res["best"] - f_best) / f_best
        if reached:
            first = statistics.median(reached)
            row(f"{label}, 1 BLAS thread, whole grid", wall,
                f"best {res['best']:.16g} ({rel:+.1e}): ratio {wall / t_sc:.1f}x over screened, "
                f"{wall / t_full:.1f}x over full; running best first within {REACH:g} after {first:.2f} s "
                f"({first / t_sc:.1f}x)")
        else:
            row(f"{label}, 1 BLAS thread, whole grid", wall,
                f"best {res['best']:.16g} ({rel:+.1e}): never within {REACH:g} of the grid's best")
    # variable projection: the fit's own time (the kernels are loaded already)
    vp = F.fit(N, D, L, method="vp")
    t_vp = statistics.median(F.fit(N, D, L, method="vp").info["seconds"] for _ in range(max(args.repeat, 7)))
    row("scalesweep fit --method vp (grid + compass + LM)", t_vp,
        f"its own time (compile/load {vp.info['compile_seconds']:.2f} s on first use, reported apart)")
    # bootstrap costs
    for label, kw, b in (("bootstrap, warm-started from the optimum", {}, 200),
                         ("bootstrap, every resample searches the grid (screened)", {"bootstrap_start": "grid"}, 50),
                         ("bootstrap, every resample searches the full grid", {"bootstrap_start": "grid",
                                                                               "search": "full"}, 2)):
        res = F.fit(N, D, L, bootstrap=b, seed=0, **kw)
        t = res.extra["seconds"]  # the resamples' refits alone (the full-data fit and compilation apart)
        row(f"{label} (B={b})", t, f"{t / b * 1e3:.1f} ms per resample")


if __name__ == "__main__":
    main()
