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
from scipy import optimize
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


def fit_objective(family, theta, ln_n, ln_d, ln_l, delta=1e-3, loss="huber", weights=None, asym=1.0):
    """The fit objective written out with numpy / scipy.special.logsumexp (sheet §2.5): sum of Huber (or
    absolute) log-space residuals. theta: chinchilla (a, b, e, alpha, beta); kaplan (ln N_c, ln D_c,
    alpha_N, alpha_D); with ``loss="huber-likelihood"`` ln sigma appended. ``asym`` multiplies the terms of
    residuals > 0 (over-predictions)."""
    return fit_objective_and_gradient(family, theta, ln_n, ln_d, ln_l, delta, loss, weights, asym)[0]


def huber_log_normaliser(delta):
    """ln of the integral of exp(-Huber_delta(x)) over the real line, by scipy.integrate.quad (numerically, not
    from the closed form the kernel uses)."""
    from scipy.integrate import quad

    def h(x):
        return 0.5 * x * x if abs(x) <= delta else delta * (abs(x) - 0.5 * delta)

    inside = quad(lambda x: math.exp(-h(x)), 0.0, delta, epsabs=0, epsrel=1e-13)[0]
    outside = quad(lambda x: math.exp(-h(x)), delta, np.inf, epsabs=0, epsrel=1e-13)[0]
    return math.log(2.0 * (inside + outside))


def fit_objective_and_gradient(family, theta, ln_n, ln_d, ln_l, delta=1e-3, loss="huber", weights=None, asym=1.0):
    """(objective, analytic gradient) of ``fit_objective``, derived by hand (chain rule, numpy).

    With r_i = pred_i - ln L_i and f = sum_i w_i k_i rho(r_i) (k_i = asym where r_i > 0, else 1),
    df/dtheta = sum_i w_i k_i rho'(r_i) dpred_i/dtheta, where rho'(r) = r inside |r| <= delta and delta sign(r)
    outside (Huber), sign(r) for LAD. The derivatives of a log-sum-exp are its softmax weights p_k = exp(t_k - LSE):

    * chinchilla, pred = LSE(t1, t2, t3), t1 = a - alpha ln N, t2 = b - beta ln D, t3 = e:
      dpred/d(a, b, e, alpha, beta) = (p1, p2, p3, -p1 ln N, -p2 ln D);
    * kaplan, pred = alpha_D LSE(u1, u2), u1 = (alpha_N/alpha_D)(ln N_c - ln N), u2 = ln D_c - ln D; with
      z1 = ln N_c - ln N: dpred/d(ln N_c, ln D_c, alpha_N, alpha_D) = (alpha_N p1, alpha_D p2, p1 z1,
      LSE - p1 (alpha_N/alpha_D) z1).

    ``loss="huber-likelihood"``: the last entry of theta is s = ln sigma and the objective is the negative
    log-likelihood sum_i w_i [Huber(r_i/sigma) + s + ln Z], Z = ``huber_log_normaliser``; its s-derivative is
    sum_i w_i [1 - rho'(x_i) x_i], x_i = r_i/sigma.
    """
    from scipy.special import logsumexp

    theta = np.asarray(theta, dtype=np.float64)
    lik = loss == "huber-likelihood"
    s = theta[-1] if lik else 0.0
    law_theta = theta[:-1] if lik else theta
    if family == "chinchilla":
        a, b, e, al, be = law_theta
        t = np.stack([a - al * ln_n, b - be * ln_d, np.full_like(ln_n, e)])
        pred = logsumexp(t, axis=0)
        p = np.exp(t - pred)
        dpred = np.stack([p[0], p[1], p[2], -p[0] * ln_n, -p[1] * ln_d])
    elif family == "kaplan":
        x1, x2, an, ad = law_theta
        z1 = x1 - ln_n
        u = np.stack([(an / ad) * z1, x2 - ln_d])
        lse = logsumexp(u, axis=0)
        pred = ad * lse
        p = np.exp(u - lse)
        dpred = np.stack([an * p[0], ad * p[1], p[0] * z1, lse - p[0] * (an / ad) * z1])
    else:
        raise ValueError(family)
    r = pred - ln_l
    w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w * np.where(r > 0, asym, 1.0)
    if lik:
        x = r / math.exp(s)
        inside = np.abs(x) <= delta
        with np.errstate(over="ignore"):  # np.where computes both branches; only the chosen one is used
            v = np.where(inside, 0.5 * x * x, delta * (np.abs(x) - 0.5 * delta)) + s + huber_log_normaliser(delta)
        dx = np.where(inside, x, delta * np.sign(x))
        g = np.append(dpred @ (w * dx / math.exp(s)), np.sum(w * (1.0 - dx * x)))
        return float(np.sum(w * v)), g
    if loss == "lad":
        v, dv = np.abs(r), np.sign(r)
    else:
        inside = np.abs(r) <= delta
        v = np.where(inside, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
        dv = np.where(inside, r, delta * np.sign(r))
    return float(np.sum(w * v)), dpred @ (w * dv)


def fit_scipy_from(family, x0, ln_n, ln_d, ln_l, delta=1e-3, loss="huber", weights=None, asym=1.0):
    """scipy.optimize.minimize (L-BFGS-B, the analytic gradient above, tight tolerances) from x0; (f, theta)."""
    from scipy.optimize import minimize

    with _one_blas_thread():
        res = minimize(lambda t: fit_objective_and_gradient(family, t, ln_n, ln_d, ln_l, delta, loss, weights, asym),
                       np.asarray(x0, dtype=np.float64), jac=True, method="L-BFGS-B",
                       options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 20000, "maxcor": 20})
    return float(res.fun), res.x


def vp_objective(p, n, d, loss_values, estimator, delta=1e-3, weights=None):
    """The variable-projection estimators' objectives in linear space, p = (E, A, B, alpha, beta): ls-vp the sum of
    squared residuals of L, huber-vp the sum of Huber losses of the relative residuals (pred - L) / L."""
    E, A, B, al, be = p
    pred = E + A / np.asarray(n) ** al + B / np.asarray(d) ** be
    w = np.ones(pred.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if estimator == "ls-vp":
        return float(np.sum(w * (pred - loss_values) ** 2))
    r = (pred - loss_values) / loss_values
    return float(np.sum(w * np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))))


def vp_scipy_from(p0, n, d, loss_values, estimator, delta=1e-3, weights=None):
    """scipy.optimize.minimize (Powell, then Nelder-Mead, bounds E, A, B >= 0 and exponents > 0) of
    ``vp_objective`` from p0, in coordinates scaled by p0 so every step is relative; returns (f, p)."""
    from scipy.optimize import minimize

    p0 = np.asarray(p0, dtype=np.float64)
    scale = np.where(p0 > 0, p0, 1.0)

    def f(u):
        return vp_objective(u * scale, n, d, loss_values, estimator, delta, weights)

    bounds = [(0.0, None)] * 3 + [(1e-6, None)] * 2
    bounds = [(lo / s if lo else lo, hi) for (lo, hi), s in zip(bounds, scale, strict=True)]
    u = np.ones(5)
    for method in ("Powell", "Nelder-Mead", "Powell"):
        res = minimize(f, u, method=method, bounds=bounds,
                       options={"xtol": 1e-13, "ftol": 1e-15, "maxiter": 100000, "maxfev": 100000}
                       if method == "Powell" else {"xatol": 1e-13, "fatol": 1e-17, "maxiter": 100000,
                                                   "maxfev": 100000})
        u = res.x
    return float(f(u)), u * scale


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


# ------------------------------------------------------------------------------------------ fitting from runs: Approaches 1 and 2
# Slow, obviously-correct references for ``scalesweep.approaches``: plain loops, ``numpy.polyfit`` and
# ``numpy.interp``; nothing from scalesweep is imported. The bootstrap references draw their resamples by the
# protocol the module docstring of ``scalesweep.approaches`` states (the same generator calls, in the same order),
# so their percentiles must agree with the module's to rounding.

K = 6.0  # FLOPs per parameter per token
FLAT = np.sqrt(np.finfo(float).eps)  # a minimum needs p2 h^2 > FLAT * max|loss| (h: half the span of the x)


def chinchilla_loss(n, d, E, A, B, alpha, beta):
    return E + A / np.asarray(n, dtype=float) ** alpha + B / np.asarray(d, dtype=float) ** beta


def chinchilla_allocation(E, A, B, alpha, beta):
    """Hoffmann et al. 2022 Eq. 4 with C = 6ND: N_opt = G (C/6)^a, D_opt = (C/6)^b / G. Returned as the
    coefficients and exponents of C itself: (N_coef, a, D_coef, b)."""
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    a = beta / (alpha + beta)
    b = alpha / (alpha + beta)
    return G * K**-a, a, K**-b / G, b


def vertex(x, y):
    """Vertex (x, y) of the least-squares parabola y(x) with numpy.polyfit; (nan, nan) with fewer than three
    distinct x, or without a minimum: opening downward, or flat (the quadratic term moves y across the x by no
    more than FLAT of max|y|)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.unique(x).size < 3:
        return np.nan, np.nan
    p2, p1, p0 = np.polyfit(x, y, 2)
    h = (x.max() - x.min()) / 2
    if not (p2 > 0 and p2 * h * h > FLAT * np.abs(y).max()):
        return np.nan, np.nan
    xv = -p1 / (2 * p2)
    return xv, p2 * xv * xv + p1 * xv + p0


def line(x, y):
    """(slope, intercept) of the least-squares line through the finite points; nan with fewer than 2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(y)
    if np.unique(x[ok]).size < 2:
        return np.nan, np.nan
    s, i = np.polyfit(x[ok], y[ok], 1)
    return s, i


def isoflop(budget, n, d, loss, exclude_extrapolated=False):
    """Approach 2 with each run's budget given: per budget (ascending) a dict of the vertices and flags (D_opt =
    C/(6 N_opt)), and the power laws (N_coef, a, D_coef, b) through the budgets used, each its own line."""
    budget, n, d, loss = (np.asarray(v, dtype=float) for v in (budget, n, d, loss))
    rows = []
    for c in np.unique(budget):
        sel = budget == c
        un, ud = np.log10(n[sel]), np.log10(d[sel])
        vn, lo = vertex(un, loss[sel])
        vd = np.log10(c / K) - vn
        convex = bool(np.isfinite(vn))
        extra = convex and not (un.min() <= vn <= un.max() and ud.min() <= vd <= ud.max())
        rows.append({"flops": c, "runs": int(sel.sum()), "params_opt": 10**vn, "tokens_opt": 10**vd,
                     "loss_opt": lo, "convex": convex, "extrapolated": extra,
                     "used": convex and not (extra and exclude_extrapolated)})
    used = [r for r in rows if r["used"]]
    lc = np.log10([r["flops"] for r in used])
    a, gn = line(lc, np.log10([r["params_opt"] for r in used]))
    b, gd = line(lc, np.log10([r["tokens_opt"] for r in used]))
    return rows, (10**gn, a, 10**gd, b)


def isoflop_bootstrap(budget, n, d, loss, count, seed, level, exclude_extrapolated=False):
    """Bootstrap of Approach 2 by the module's protocol, one replicate at a time: per budget the (lo, hi)
    percentiles of N_opt and D_opt, and those of (N_coef, a, D_coef, b)."""
    budget, n, d, loss = (np.asarray(v, dtype=float) for v in (budget, n, d, loss))
    rows, _ = isoflop(budget, n, d, loss, exclude_extrapolated)
    rng = np.random.default_rng(seed)
    budgets = np.unique(budget)
    vn = np.full((count, budgets.size), np.nan)
    vd = np.full((count, budgets.size), np.nan)
    for j, c in enumerate(budgets):
        idx = np.flatnonzero(budget == c)
        draws = rng.integers(0, idx.size, size=(count, idx.size))
        for r in range(count):
            pick = idx[draws[r]]
            xn, _ = vertex(np.log10(n[pick]), loss[pick])
            if np.isfinite(xn):
                vn[r, j], vd[r, j] = xn, np.log10(c / K) - xn
    q = [50 * (1 - level), 50 * (1 + level)]

    def pct(v):
        v = v[np.isfinite(v)]
        return tuple(np.percentile(v, q)) if v.size else (np.nan, np.nan)

    per_budget = [{"params": tuple(10 ** np.array(pct(vn[:, j]))), "tokens": tuple(10 ** np.array(pct(vd[:, j])))}
                  for j in range(budgets.size)]
    used = np.array([r["used"] for r in rows])
    lc = np.log10(budgets[used])
    fits = []
    for r in range(count):
        a, gn = line(lc, vn[r, used])
        b, gd = line(lc, vd[r, used])
        fits.append((10**gn, a, 10**gd, b))
    fits = np.array(fits)
    return per_budget, {k: pct(fits[:, i]) for i, k in enumerate(("N_coef", "N_exp", "D_coef", "D_exp"))}


def run_losses(run, n, d, loss, grid):
    """{run label: (params, loss at each grid budget or nan outside its checkpoints)}, linear in log C."""
    run = np.asarray(run).astype(str)
    out = {}
    for label in dict.fromkeys(run):  # first-appearance order
        sel = run == label
        order = np.argsort(np.asarray(d, dtype=float)[sel])
        nr = float(np.asarray(n, dtype=float)[sel][0])
        c = K * nr * np.asarray(d, dtype=float)[sel][order]
        y = np.asarray(loss, dtype=float)[sel][order]
        vals = []
        for g in grid:
            vals.append(np.interp(np.log(g), np.log(c), y) if c[0] <= g <= c[-1] else np.nan)
        out[label] = (nr, np.array(vals))
    return out


def envelope(curves, grid, include_edge=False, present=None):
    """Approach 1 from ``run_losses``: per grid point the envelope run, its params, the loss, the runs covering it
    and the edge flag; and the power laws (N_coef, a, D_coef, b) through the points used. ``present``: the labels
    taking part (default all)."""
    labels = [k for k in curves if present is None or k in present]
    points = []
    for i, g in enumerate(grid):
        cov = [k for k in labels if np.isfinite(curves[k][1][i])]
        if not cov:
            points.append({"run": None, "params": np.nan, "loss": np.nan, "runs_covering": 0, "edge": True,
                           "used": False})
            continue
        best = min(cov, key=lambda k: (curves[k][1][i], labels.index(k)))
        sizes = [curves[k][0] for k in cov]
        nb = curves[best][0]
        edge = nb <= min(sizes) or nb >= max(sizes)
        points.append({"run": best, "params": nb, "loss": curves[best][1][i], "runs_covering": len(cov),
                       "edge": edge, "used": include_edge or not edge})
    lc = np.log10(grid)
    ln = np.array([np.log10(p["params"]) if p["used"] else np.nan for p in points])
    a, gn = line(lc, ln)
    b, gd = line(lc, lc - np.log10(K) - ln)
    return points, (10**gn, a, 10**gd, b)


def envelope_bootstrap(curves, grid, count, seed, level, include_edge=False):
    """(lo, hi) percentiles of (N_coef, a, D_coef, b) over replicates drawn by the module's protocol: one draw of
    ``count`` x R run indices (runs in first-appearance order); a replicate is the envelope of the runs drawn."""
    labels = list(curves)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(labels), size=(count, len(labels)))
    fits = np.array([envelope(curves, grid, include_edge, {labels[i] for i in row})[1] for row in draws])
    q = [50 * (1 - level), 50 * (1 + level)]
    out = {}
    for i, k in enumerate(("N_coef", "N_exp", "D_coef", "D_exp")):
        v = fits[:, i][np.isfinite(fits[:, i])]
        out[k] = tuple(np.percentile(v, q)) if v.size else (np.nan, np.nan)
    return out


# ------------------------------------------------------------------------------------------ planning: energy, shapes, FLOPs per token
# Slow, obviously-correct reference formulas for the planning columns (energy, CO2, model shapes, FLOPs per
# token), written from the papers with plain Python, numpy and scipy: the tests check scalesweep against these,
# never against itself.

def energy_kwh(gpu_hours, board_power_w, power_fraction, pue):
    """Facility energy: each GPU-hour draws power_fraction of the board power; the facility adds PUE."""
    watt_hours = gpu_hours * board_power_w * power_fraction
    return watt_hours / 1000.0 * pue


def co2_tonnes(kwh, grams_per_kwh):
    return kwh * grams_per_kwh / 1_000_000.0


def gpu_hours_for_flops(flops, peak_tflops, mfu):
    return flops / (peak_tflops * 1e12 * mfu) / 3600.0


def kaplan_non_embedding(n_layer, d_model):
    """Kaplan et al. 2020 Eq. 2.1 with d_attn = d_model and d_ff = 4 d_model: 2 d n_layer (2 d_attn + d_ff)."""
    d_attn, d_ff = d_model, 4 * d_model
    return 2 * d_model * n_layer * (2 * d_attn + d_ff)


def embedding(n_vocab, d_model, n_ctx=0):
    return n_vocab * d_model + n_ctx * d_model


def shape_by_search(non_embedding, aspect_ratio, head_size):
    """The (n_layer, d_model) whose non-embedding count is closest to the target: the real d that solves
    12 n_layer d^2 = N with n_layer = d / aspect, found by root finding, then d rounded to the nearest multiple
    of the head size and n_layer = round(N / (12 d^2)) (at least 1)."""
    d = optimize.brentq(lambda x: 12 * (x / aspect_ratio) * x * x - non_embedding, 1e-3, 1e9, xtol=1e-12, rtol=1e-15)
    d_model = max(head_size, head_size * round(d / head_size))
    n_layer = max(1, round(non_embedding / (12 * d_model * d_model)))
    return n_layer, d_model


def pearce_song_total(non_embedding, omega=47491.0):
    """Pearce & Song 2024 (arXiv:2406.12907, authors' script): N_T = N_E + omega N_E^(1/3)."""
    return non_embedding + omega * non_embedding ** (1.0 / 3.0)


def pearce_song_omega(n_vocab, aspect_ratio):
    """omega from embedding = vocab d and N_E = (12 / A) d^3: d = (A N_E / 12)^(1/3), so vocab d =
    vocab (A / 12)^(1/3) N_E^(1/3)."""
    return n_vocab * (aspect_ratio / 12.0) ** (1.0 / 3.0)


def kaplan_flops_per_token(n, n_layer, n_ctx, d_model):
    """Kaplan Eq. 2.2 (forward 2N + 2 n_layer n_ctx d_attn) times 3 for forward plus backward."""
    return 3 * (2 * n + 2 * n_layer * n_ctx * d_model)


def chinchilla_flops_per_token(n_vocab, n_ctx, n_layer, d_model, n_heads, d_ff):
    """Hoffmann et al. 2022, App. F: the forward FLOPs of a sequence, per token, times 3.
    Embeddings 2 seq vocab d; attention: QKV 2 seq 3 d (key_size heads), K@Q 2 seq seq (key_size heads),
    softmax 3 heads seq seq, softmax@V 2 seq seq (key_size heads), final linear 2 seq (key_size heads) d;
    dense block 2 seq (d ffw_size + d ffw_size); logits 2 seq d vocab."""
    seq = n_ctx
    key_size = d_model // n_heads
    kh = key_size * n_heads
    emb = 2 * seq * n_vocab * d_model
    attention = (2 * seq * 3 * d_model * kh + 2 * seq * seq * kh + 3 * n_heads * seq * seq
                 + 2 * seq * seq * kh + 2 * seq * kh * d_model)
    dense = 2 * seq * (d_model * d_ff + d_model * d_ff)
    logits = 2 * seq * d_model * n_vocab
    forward = emb + n_layer * (attention + dense) + logits
    return 3 * forward / seq


def chinchilla_frontier_numeric(flops, flops_per_token, e, a, b, alpha, beta):
    """min over N of E + A/N^alpha + B/D^beta with D = C / flops_per_token(N), by scipy's bounded scalar
    minimiser on log N (tight tolerance)."""

    def loss(log_n):
        n = math.exp(log_n)
        d = flops / flops_per_token(n)
        return e + a / n ** alpha + b / d ** beta

    res = optimize.minimize_scalar(loss, bounds=(math.log(1e3), math.log(flops / 6.0)), method="bounded",
                                   options={"xatol": 1e-13, "maxiter": 10_000})
    n = math.exp(res.x)
    return n, flops / flops_per_token(n), loss(res.x)




def continuous_shape_flops(n_e, model, n_vocab, n_ctx, aspect_ratio, head_size):
    """FLOPs per token of the real-valued shape of N_E non-embedding parameters at the aspect ratio
    (d = (A N_E / 12)^(1/3), n_layer = d / A, heads = d / head size); works on complex N_E (complex step)."""
    d = (aspect_ratio * n_e / 12) ** (1.0 / 3.0)
    n_layer = d / aspect_ratio
    if model == "6N":
        return 6 * n_e
    if model == "kaplan":
        return kaplan_flops_per_token(n_e, n_layer, n_ctx, d)
    # Hoffmann App. F written out per token (see chinchilla_flops_per_token), without integer head sizes
    heads = d / head_size
    attention = 2 * 3 * d * d + 2 * n_ctx * d + 3 * heads * n_ctx + 2 * n_ctx * d + 2 * d * d
    dense = 2 * (d * 4 * d + d * 4 * d)
    return 3 * (2 * n_vocab * d + n_layer * (attention + dense) + 2 * d * n_vocab)


def chinchilla_frontier_stationary(flops, flops_per_token, e, a, b, alpha, beta):
    """The N where dL/d ln N = 0 along D = C / f(N): -alpha A N^-alpha + beta B D^-beta (d ln f / d ln N) = 0,
    with d f / d N by complex step (exact to rounding) and the root by scipy's brentq in ln N."""
    h = 1e-20

    def g(x):
        n = math.exp(x)
        f = flops_per_token(n).real
        dlnf = flops_per_token(complex(n, h * n)).imag / h / f
        d = flops / f
        return -alpha * a * n ** -alpha + beta * b * d ** -beta * dlnf

    x = optimize.brentq(g, math.log(1e3), math.log(flops / 6.0) - 1.0, xtol=1e-15, rtol=4 * np.finfo(float).eps,
                        maxiter=500)
    n = math.exp(x)
    d = flops / flops_per_token(n).real
    return n, d, e + a / n ** alpha + b / d ** beta


def curve_frontier_stationary(flops, loss, model, n_vocab, n_ctx, aspect_ratio, head_size, omega=0.0, lo=1.0):
    """The frontier on C = f(N) D for any law ``loss(n, d)`` that works on complex numbers: the root of
    dL/d ln N_E by brentq, the derivative by complex step through N = N_E + omega N_E^(1/3) (Pearce & Song's
    total count; omega = 0 for a non-embedding count) and D = C / f(N_E) (``continuous_shape_flops``; 6N is
    6 N in the law's count).
    Returns (N, D, loss); where L falls all the way to D = 1 the minimiser is that end."""
    h = 1e-20

    def parts(z):
        n_e = np.exp(z)
        n = n_e + omega * n_e ** (1.0 / 3.0)
        if model == "6N":  # 6 times the law's own count, whichever it is
            return n, flops / (6 * n)
        return n, flops / continuous_shape_flops(n_e, model, n_vocab, n_ctx, aspect_ratio, head_size)

    def g(z):
        n, d = parts(complex(z, h))
        return loss(n, d).imag / h

    def tokens_one(z):
        return parts(z)[1].real - 1.0

    z_lo = optimize.brentq(lambda z: parts(z)[0].real - lo, -50.0, 80.0, xtol=1e-15) if omega else math.log(lo)
    z_hi = optimize.brentq(tokens_one, z_lo, math.log(flops), xtol=1e-15, rtol=4 * np.finfo(float).eps)
    if g(z_hi) < 0:
        z = z_hi
    else:
        z = optimize.brentq(g, z_lo, z_hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    n, d = parts(z)
    return n.real, d.real, loss(n.real, d.real)


def data_constrained_theta_params(theta):
    """theta = (ln A, ln B, ln E, alpha, beta, ln R_D*, ln R_N*) -> the data_constrained constants (U_D left out)."""
    a, b, e, al, be, rd, rn = (float(v) for v in theta)
    return {"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": al, "beta": be, "R_D_star": math.exp(rd),
            "R_N_star": math.exp(rn)}


def data_constrained_log_residuals(theta, n, d, u, loss_values):
    """ln L(N_i, D_i) - ln L_i of the data-constrained law at each run's own unique tokens u_i, by
    ``data_constrained_loss`` (linear space, the sheet's formulas)."""
    p = {**data_constrained_theta_params(theta), "U_D": np.asarray(u, dtype=np.float64)}
    return np.log(data_constrained_loss(p, n, d)) - np.log(loss_values)


def data_constrained_fit_objective(theta, n, d, u, loss_values, delta=1e-3):
    """Sum of Huber losses (width delta) of the log residuals: what ``scalesweep fit --family data_constrained``
    minimises."""
    r = data_constrained_log_residuals(theta, n, d, u, loss_values)
    return float(np.sum(np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))))


def data_constrained_fit_scipy(x0, n, d, u, loss_values, delta=1e-3, free=None):
    """scipy.optimize.least_squares (trf, numerical Jacobian) of the log residuals with loss="huber" and
    f_scale=delta, whose cost 0.5 f_scale^2 rho((r/f_scale)^2) summed is exactly the Huber objective above; only the
    theta entries where ``free`` is true move (None: all). Returns (objective, theta)."""
    from scipy.optimize import least_squares

    x0 = np.asarray(x0, dtype=np.float64)
    free = np.ones(x0.size, dtype=bool) if free is None else np.asarray(free, dtype=bool)

    def full(z):
        x = x0.copy()
        x[free] = z
        return x

    with _one_blas_thread():
        res = least_squares(lambda z: data_constrained_log_residuals(full(z), n, d, u, loss_values), x0[free],
                            loss="huber", f_scale=delta, method="trf", ftol=1e-15, xtol=1e-15, gtol=1e-15,
                            max_nfev=20000, x_scale="jac")
    theta = full(res.x)
    return data_constrained_fit_objective(theta, n, d, u, loss_values, delta), theta
