"""Slow, obviously-correct reference implementations (numpy / scipy) that the kernels are checked against.

Nothing here imports scalesweep's kernels: formulas are written out from the reference sheet
(``shared/reference/scaling-laws.md``) in linear space, and the frontier is found with scipy's bounded
Brent method per budget.
"""

from __future__ import annotations

import math

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
    raise ValueError(family)


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
