"""Slow, obviously-correct reference implementations (numpy / scipy) that the kernels are checked against.

Nothing here imports scalesweep's kernels: formulas are written out from the reference sheet
(``shared/reference/scaling-laws.md``) in linear space, and the frontier is found with scipy's bounded
Brent method per budget.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar


def loss(family: str, params: dict, n, d):
    """L(N, D) by the published formula, numpy broadcasting."""
    n = np.asarray(n, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    if family == "chinchilla":
        p = params
        return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
    if family == "kaplan":
        p = params
        return ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / d) ** p["alpha_D"]
    if family == "data_constrained":
        return data_constrained_loss(params, n, d)
    if family == "kaplan_single":  # Kaplan Eq. 1.1-1.3: one variable; compute in PF-days (8.64e19 FLOP)
        n, d = np.broadcast_arrays(n, d)
        x = [n, d, 6.0 * n * d / 8.64e19, 6.0 * n * d / 8.64e19][int(params["variable"])]
        return (params["X_c"] / x) ** params["alpha"]
    if family == "kaplan_steps":
        n, d = np.broadcast_arrays(n, d)
        out = np.array([kaplan_steps_loss(params, a, b) for a, b in zip(n.ravel(), d.ravel(), strict=True)])
        return out.reshape(n.shape) if n.ndim else float(out[0])
    raise ValueError(family)


def data_constrained_loss(p, n, d):
    """Muennighoff et al. 2023 (sheet §4.1), written out: U_D used = min(unique available, D)."""
    n, d = np.broadcast_arrays(np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64))
    al, be = p["alpha"], p["beta"]
    u_d = np.minimum(p["U_D"], d)
    r_d = np.maximum(d / u_d - 1.0, 0.0)
    with np.errstate(invalid="ignore"):
        d_eff = d if math.isinf(p["R_D_star"]) else u_d + u_d * p["R_D_star"] * (1.0 - np.exp(-r_d / p["R_D_star"]))
        G = (al * p["A"] / (be * p["B"])) ** (1.0 / (al + be))
        u_n = np.minimum((u_d * G) ** (be / al) * G, n)
        r_n = np.maximum(n / u_n - 1.0, 0.0)
        n_eff = n if math.isinf(p["R_N_star"]) else u_n + u_n * p["R_N_star"] * (1.0 - np.exp(-r_n / p["R_N_star"]))
    return p["E"] + p["A"] / n_eff**al + p["B"] / d_eff**be


def surface_dense(family, params, n_axis, d_axis):
    """Dense evaluation of the whole grid (n_axis rows x d_axis columns)."""
    return loss(family, params, np.asarray(n_axis)[:, None], np.asarray(d_axis)[None, :])


def closed_form_params(family, params, flops, k=6.0):
    """Unconstrained compute-optimal N on C = kND.

    chinchilla: Hoffmann Eq. 4, N_opt = G (C/6)^a, G = (alpha A/(beta B))^(1/(alpha+beta)), a = beta/(alpha+beta).
    kaplan: minimise the bracket of Eq. 1.5; d/dN [N_c^r N^-r + D_c k N / C] = 0 gives
            N^(r+1) = r N_c^r C / (k D_c), r = alpha_N/alpha_D.
    """
    flops = np.asarray(flops, dtype=np.float64)
    if family == "chinchilla":
        al, be, A, B = params["alpha"], params["beta"], params["A"], params["B"]
        G = (al * A / (be * B)) ** (1.0 / (al + be))
        return G * (flops / k) ** (be / (al + be))
    if family == "kaplan":
        r = params["alpha_N"] / params["alpha_D"]
        return (r * params["N_c"] ** r * flops / (k * params["D_c"])) ** (1.0 / (r + 1.0))
    raise ValueError(family)


def feasible_params_interval(flops, k=6.0, min_params=None, max_params=None, min_tokens=None, max_tokens=None,
                             min_tokens_per_param=None, max_tokens_per_param=None):
    """[N_lo, N_hi] allowed by the constraints at budget C (linear space), including N >= 1 and D >= 1."""
    s = flops / k  # = N * D
    lo = [1.0]
    hi = [s]
    if min_params is not None:
        lo.append(min_params)
    if max_params is not None:
        hi.append(max_params)
    if max_tokens is not None:  # D = s/N <= max_tokens  <=>  N >= s/max_tokens
        lo.append(s / max_tokens)
    if min_tokens is not None:
        hi.append(s / min_tokens)
    if max_tokens_per_param is not None:  # s/N^2 <= t  <=>  N >= sqrt(s/t)
        lo.append(math.sqrt(s / max_tokens_per_param))
    if min_tokens_per_param is not None:
        hi.append(math.sqrt(s / min_tokens_per_param))
    return max(lo), min(hi)


def frontier_scipy(family, params, flops, k=6.0, **constraints):
    """Per-budget scipy bounded minimisation in log N; returns arrays (params, tokens, loss, feasible)."""
    flops = np.atleast_1d(np.asarray(flops, dtype=np.float64))
    out_n = np.full(flops.size, np.nan)
    out_l = np.full(flops.size, np.nan)
    feas = np.zeros(flops.size, dtype=bool)
    for i, c in enumerate(flops):
        n_lo, n_hi = feasible_params_interval(c, k, **constraints)
        if n_lo > n_hi:
            continue
        feas[i] = True

        def f(x, c=c):
            n = math.exp(x)
            return float(loss(family, params, n, c / (k * n)))

        a, b = math.log(n_lo), math.log(n_hi)
        candidates = [a, b]
        if b > a:
            res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-12, "maxiter": 2000})
            candidates.append(res.x)
        best = min(candidates, key=f)
        out_n[i] = math.exp(best)
        out_l[i] = f(best)
    return out_n, flops / (k * out_n), out_l, feas


def tokens_for_loss(family, params, n, target):
    """D with L(n, D) = target, by scipy brentq on ln D (NaN if no D in [1, e^300] reaches it)."""
    from scipy.optimize import brentq

    def f(y):
        return float(loss(family, params, n, math.exp(y))) - target

    if f(300.0) >= 0 or f(0.0) <= 0:
        return math.nan
    return math.exp(brentq(f, 0.0, 300.0, xtol=1e-14, rtol=1e-15, maxiter=500))


def target_scipy(family, params, target, inference_tokens=0.0, k=6.0, min_params=None, max_params=None,
                 min_tokens=None, max_tokens=None, min_tokens_per_param=None, max_tokens_per_param=None):
    """Least lifetime compute k*N*D + 2*N*D_inf with L(N, D) = target, under the constraints.

    Walks the level curve in x = ln N (D from brentq), finds the feasible x-interval by a dense scan and
    bisection on the feasibility predicate, then minimises the cost with scipy's bounded Brent method.
    Returns (params, tokens, lifetime_flops) or NaNs when no point on the curve is feasible. (The case
    where the constraints alone force a loss below target is not modelled here.)
    """
    def point(x):
        n = math.exp(x)
        return n, tokens_for_loss(family, params, n, target)

    def ok(x):
        n, d = point(x)
        if not math.isfinite(d):
            return False
        checks = [(min_params, n >= min_params * (1 - 1e-12)) if min_params else None,
                  (max_params, n <= max_params * (1 + 1e-12)) if max_params else None,
                  (min_tokens, d >= min_tokens * (1 - 1e-12)) if min_tokens else None,
                  (max_tokens, d <= max_tokens * (1 + 1e-12)) if max_tokens else None,
                  (min_tokens_per_param, d / n >= min_tokens_per_param * (1 - 1e-12)) if min_tokens_per_param else None,
                  (max_tokens_per_param, d / n <= max_tokens_per_param * (1 + 1e-12)) if max_tokens_per_param else None]
        return all(c[1] for c in checks if c is not None)

    def cost(x):
        n, d = point(x)
        return k * n * d + 2.0 * n * inference_tokens

    xs = np.linspace(0.0, 80.0, 4001)
    flags = np.array([ok(x) for x in xs])
    if not flags.any():
        return math.nan, math.nan, math.nan
    i0, i1 = int(np.argmax(flags)), int(len(flags) - 1 - np.argmax(flags[::-1]))

    def edge(a, b):  # ok(a) != ok(b); bisect to the boundary, return the feasible side
        fa = ok(a)
        for _ in range(200):
            m = 0.5 * (a + b)
            if ok(m) == fa:
                a = m
            else:
                b = m
        return a if fa else b

    lo = xs[i0] if i0 == 0 else edge(xs[i0 - 1], xs[i0])
    hi = xs[i1] if i1 == len(xs) - 1 else edge(xs[i1 + 1], xs[i1])
    candidates = [lo, hi]
    if hi > lo:
        res = minimize_scalar(lambda x: math.log(cost(x)), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-12, "maxiter": 5000})
        candidates.append(res.x)
    best = min(candidates, key=cost)
    n, d = point(best)
    return n, d, cost(best)


def grid_search_numpy(family, params, flops, n_axis, k=6.0):
    """Argmin of the loss over a params grid per budget, by numpy broadcasting (budgets x grid)."""
    n = np.asarray(n_axis)[None, :]
    c = np.asarray(flops)[:, None]
    return np.argmin(loss(family, params, n, c / (k * n)), axis=1)


def isoflop_vertex_offset(alpha, beta, v):
    """Offset (decades) of a least-squares parabola's vertex from the true optimum, for a chinchilla law
    sampled at offsets v (decades) from log10 N*: the curve shape is exp(-a v)/alpha + exp(b v)/beta with
    a = alpha ln 10, b = beta ln 10 (the loss on an IsoFLOP line, up to scale and shift)."""
    v = np.asarray(v, dtype=np.float64)
    shape = np.exp(-alpha * math.log(10) * v) / alpha + np.exp(beta * math.log(10) * v) / beta
    a2, a1, _ = np.polyfit(v, shape, 2)
    return -a1 / (2 * a2)


def fit_objective(family, theta, ln_n, ln_d, ln_l, delta=1e-3, loss="huber", weights=None):
    """The fit objective written out with numpy / scipy.special.logsumexp (sheet §2.5): sum of Huber (or
    absolute) log-space residuals. theta: chinchilla (a, b, e, alpha, beta); kaplan (ln N_c, ln D_c,
    alpha_N, alpha_D)."""
    return fit_objective_and_gradient(family, theta, ln_n, ln_d, ln_l, delta, loss, weights)[0]


def fit_objective_and_gradient(family, theta, ln_n, ln_d, ln_l, delta=1e-3, loss="huber", weights=None):
    """(objective, analytic gradient) of ``fit_objective``, derived by hand (chain rule, numpy).

    With r_i = pred_i - ln L_i and f = sum_i w_i rho(r_i), df/dtheta = sum_i w_i rho'(r_i) dpred_i/dtheta, where
    rho'(r) = r inside |r| <= delta and delta sign(r) outside (Huber), sign(r) for LAD. The derivatives of a
    log-sum-exp are its softmax weights p_k = exp(t_k - LSE):

    * chinchilla, pred = LSE(t1, t2, t3), t1 = a - alpha ln N, t2 = b - beta ln D, t3 = e:
      dpred/d(a, b, e, alpha, beta) = (p1, p2, p3, -p1 ln N, -p2 ln D);
    * kaplan, pred = alpha_D LSE(u1, u2), u1 = (alpha_N/alpha_D)(ln N_c - ln N), u2 = ln D_c - ln D; with
      z1 = ln N_c - ln N: dpred/d(ln N_c, ln D_c, alpha_N, alpha_D) = (alpha_N p1, alpha_D p2, p1 z1,
      LSE - p1 (alpha_N/alpha_D) z1).
    """
    from scipy.special import logsumexp

    theta = np.asarray(theta, dtype=np.float64)
    if family == "chinchilla":
        a, b, e, al, be = theta
        t = np.stack([a - al * ln_n, b - be * ln_d, np.full_like(ln_n, e)])
        pred = logsumexp(t, axis=0)
        p = np.exp(t - pred)
        dpred = np.stack([p[0], p[1], p[2], -p[0] * ln_n, -p[1] * ln_d])
    elif family == "kaplan":
        x1, x2, an, ad = theta
        z1 = x1 - ln_n
        u = np.stack([(an / ad) * z1, x2 - ln_d])
        lse = logsumexp(u, axis=0)
        pred = ad * lse
        p = np.exp(u - lse)
        dpred = np.stack([an * p[0], ad * p[1], p[0] * z1, lse - p[0] * (an / ad) * z1])
    else:
        raise ValueError(family)
    r = pred - ln_l
    if loss == "lad":
        v, dv = np.abs(r), np.sign(r)
    else:
        inside = np.abs(r) <= delta
        v = np.where(inside, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
        dv = np.where(inside, r, delta * np.sign(r))
    w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.sum(w * v)), dpred @ (w * dv)


@contextlib.contextmanager
def _one_blas_thread():
    """Run scipy's bundled OpenBLAS on one thread inside the block. scipy >= 1.15's L-BFGS-B calls LAPACK on
    tiny matrices, and a threaded OpenBLAS makes it several times slower when the CPUs are busy (scipy issue
    22438). Uses threadpoolctl when installed, else the library's own setter; a no-op when neither is found."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        lib = None
        import scipy

        for path in sorted((Path(scipy.__file__).parent.parent / "scipy.libs").glob("libscipy_openblas*.so")):
            lib = ctypes.CDLL(str(path))  # already loaded by scipy.optimize: the same handle
            if hasattr(lib, "scipy_openblas_set_num_threads"):
                break
            lib = None
        before = lib.scipy_openblas_get_num_threads() if lib is not None else None
        if before is not None:
            lib.scipy_openblas_set_num_threads(1)
        try:
            yield
        finally:
            if before is not None:
                lib.scipy_openblas_set_num_threads(before)
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield


def fit_scipy_multistart(family, starts, ln_n, ln_d, ln_l, delta=1e-3):
    """scipy L-BFGS-B (analytic gradient ``fit_objective_and_gradient``, tight tolerances) from every start;
    returns (best f, best theta)."""
    from scipy.optimize import minimize

    best_f, best_x = np.inf, None
    with _one_blas_thread():
        for x0 in starts:
            res = minimize(lambda t: fit_objective_and_gradient(family, t, ln_n, ln_d, ln_l, delta), x0, jac=True,
                           method="L-BFGS-B", options={"ftol": 1e-14, "gtol": 1e-12, "maxiter": 5000})
            if res.fun < best_f:
                best_f, best_x = res.fun, res.x
    return best_f, best_x


def kaplan_steps_loss(p, n, d):
    """L(N, D) of the kaplan_steps family by scipy brentq on the fixed point L = a + k L^-q (sheet §1.3-1.4)."""
    from scipy.optimize import brentq

    a = (p["N_c"] / n) ** p["alpha_N"]
    k = (p["S_c"] * p["B_star"] / d) ** p["alpha_S"]
    q = p["alpha_S"] / p["alpha_B"]
    lo, hi = a, a + k * a**-q

    def f(L):
        return L - a - k * L**-q

    if not (f(lo) < 0 < f(hi)):  # the step term is below rounding at this end of the domain
        return hi
    return brentq(f, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)


def kaplan_steps_log_loss(p, ln_n, ln_d, iterations=2000):
    """ln L of the kaplan_steps family, numpy-vectorised, by bisection in y = ln L on the fixed point
    L = a + k L^-q (sheet §1.3-1.4) written in logs: y = logaddexp(ln a, ln k - q y), whose right side falls
    as y rises, so y - logaddexp(...) is increasing and has one root in [ln a, logaddexp(ln a, ln k - q ln a)].
    Every quantity stays a logarithm, so no power over- or underflows at any N, D >= 1."""
    ln_n, ln_d = np.broadcast_arrays(np.asarray(ln_n, dtype=np.float64), np.asarray(ln_d, dtype=np.float64))
    shape = ln_n.shape
    ln_n, ln_d = ln_n.reshape(-1), ln_d.reshape(-1)
    la = p["alpha_N"] * (math.log(p["N_c"]) - ln_n)
    lk = p["alpha_S"] * (math.log(p["S_c"]) + math.log(p["B_star"]) - ln_d)
    q = p["alpha_S"] / p["alpha_B"]
    lo, hi = la.copy(), np.logaddexp(la, lk - q * la)
    mid, rhs, above = np.empty_like(lo), np.empty_like(lo), np.empty(lo.shape, dtype=bool)
    for _ in range(iterations):
        np.add(lo, hi, out=mid)
        mid *= 0.5
        if np.all((mid == lo) | (mid == hi)):  # every bracket is down to adjacent doubles
            break
        np.multiply(mid, -q, out=rhs)
        rhs += lk
        np.logaddexp(la, rhs, out=rhs)
        np.greater(mid, rhs, out=above)
        np.copyto(hi, mid, where=above)
        np.copyto(lo, mid, where=~above)
    y = 0.5 * (lo + hi)
    return y.reshape(shape) if shape else float(y[0])


def kaplan_steps_frontier_brute(p, flops, k=6.0, points=200_000):
    """The kaplan_steps frontier at one budget by brute force: ln L on ``points`` log-spaced N over the whole
    domain N >= 1, D = C/(kN) >= 1, then scipy's bounded Brent method between the grid neighbours of the best
    point (and the two domain ends as candidates). Returns (params, loss, curvature of ln L in ln N at the
    optimum: NaN when the optimum is a domain end), or NaNs when the domain is empty (C < k)."""
    c = math.log(flops / k)
    if not c >= 0.0:
        return math.nan, math.nan, math.nan
    xs = np.linspace(0.0, c, points)
    ys = kaplan_steps_log_loss(p, xs, c - xs)
    i = int(np.argmin(ys))

    def f(x):
        return float(kaplan_steps_log_loss(p, x, c - x))

    candidates = [0.0, c, float(xs[i])]
    a, b = float(xs[max(i - 1, 0)]), float(xs[min(i + 1, points - 1)])
    if b > a:
        res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-12 * (1.0 + b), "maxiter": 5000})
        candidates.append(float(res.x))
    best = min(candidates, key=f)
    if best in (0.0, c):  # the minimum is a domain end: no curvature there
        return math.exp(best), math.exp(f(best)), math.nan
    h = min(1e-2, best, c - best)
    curv = (f(best - h) - 2.0 * f(best) + f(best + h)) / h**2
    return math.exp(best), math.exp(f(best)), curv
