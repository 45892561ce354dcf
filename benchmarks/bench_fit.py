"""Fitting: the full 4,500-start Huber fit on 250 runs against a scipy L-BFGS-B loop over the same grid, and
the variable-projection fit on the same runs. Both sides in one run; medians and ratios.

The scipy baseline is what a user would write: `scipy.optimize.minimize(method="L-BFGS-B", jac=True)` with
the same objective and analytic gradient in numpy, from every start. It is timed on a random sample of
starts and scaled to the grid; run once with scipy's default tolerances and once with tolerances tight
enough to reach the same objective as scalesweep.

Run: python benchmarks/bench_fit.py [--sample 300] [--repeat 5]
"""

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(__file__))
from _timing import median_time, row  # noqa: E402
from scalesweep import fit as F  # noqa: E402

TRUE = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3391, "beta": 0.2849}
DELTA = 1e-3


def make_runs(n=250, noise=0.01, seed=1):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(math.log(7e7), math.log(1.6e10), n))
    D = np.exp(rng.uniform(math.log(5e9), math.log(5e11), n))
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    return N, D, L * np.exp(rng.normal(0.0, noise, n))


def scipy_fg(ln_n, ln_d, ln_l):
    def fg(th):
        a, b, e, al, be = th
        T = np.stack([a - al * ln_n, b - be * ln_d, np.full_like(ln_n, e)])
        lse = logsumexp(T, axis=0)
        r = lse - ln_l
        ar = np.abs(r)
        f = np.where(ar <= DELTA, 0.5 * r * r, DELTA * (ar - 0.5 * DELTA)).sum()
        dr = np.where(ar <= DELTA, r, DELTA * np.sign(r))
        W = np.exp(T - lse)
        g = np.array([(dr * W[0]).sum(), (dr * W[1]).sum(), (dr * W[2]).sum(), -(dr * W[0] * ln_n).sum(),
                      -(dr * W[1] * ln_d).sum()])
        return f, g
    return fg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    N, D, L = make_runs()
    starts = F.start_grid("chinchilla")
    print(f"fit: {N.size} runs (1% noise), chinchilla, Huber delta {DELTA}, {len(starts):,}-start grid")
    F.fit(N[:10], D[:10], L[:10], grid={k: [v[0]] for k, v in F.FAMILIES["chinchilla"].fit.grid.items()})  # compile
    res = F.fit(N, D, L)
    t_ss, _ = median_time(lambda: F.fit(N, D, L), repeat=args.repeat, warmup=0)
    row("scalesweep fit (lbfgs, 4,500 starts, 2 threads)", t_ss,
        f"objective {res.info['objective_value']:.16g}, {res.info['starts_within_1e-6']} starts within 1e-6")
    fg = scipy_fg(np.log(N), np.log(D), np.log(L))
    rng = np.random.default_rng(0)
    pick = rng.choice(len(starts), size=min(args.sample, len(starts)), replace=False)
    best_start = np.array(res.info["best_start"])
    for label, opts in (("scipy defaults", {}), ("scipy tight (ftol 1e-13, gtol 1e-12)",
                                                 {"ftol": 1e-13, "gtol": 1e-12, "maxiter": 5000})):
        t0 = time.perf_counter()
        for s in pick:
            minimize(fg, starts[s], jac=True, method="L-BFGS-B", options=opts)
        t_sc = (time.perf_counter() - t0) / pick.size * len(starts)
        f_best = minimize(fg, best_start, jac=True, method="L-BFGS-B", options=opts).fun
        row(f"{label}: L-BFGS-B loop (scaled from {pick.size})", t_sc,
            f"ratio {t_sc / t_ss:5.1f}x; objective from scalesweep's best start {f_best:.16g} "
            f"({'worse' if f_best > res.info['objective_value'] else 'not worse'})")
    # variable projection
    F.fit(N, D, L, method="vp")
    times = []
    for _ in range(max(args.repeat, 7)):
        t0 = time.perf_counter()
        vp = F.fit(N, D, L, method="vp")
        times.append(time.perf_counter() - t0)
    t_vp = statistics.median(times)
    row("scalesweep fit --method vp (grid + compass + LM)", t_vp, "target < 20 ms")
    boot = F.fit(N, D, L, method="vp", bootstrap=400, seed=0)
    se = np.std(boot.samples, axis=0, ddof=1)
    errs = ", ".join(f"{k} {abs(vp.law.params[k] - TRUE[k]) / se[j]:.2f}" for j, k in enumerate(TRUE))
    print(f"  vp recovery, |fitted - true| in bootstrap standard errors (noise floor ~1): {errs}")
    errs = ", ".join(f"{k} {abs(res.law.params[k] - TRUE[k]) / se[j]:.2f}" for j, k in enumerate(TRUE))
    print(f"  lbfgs recovery in the same units: {errs}")


if __name__ == "__main__":
    main()
