"""The inverse problem: the least compute that reaches a target loss, optionally counting inference.

Minimise lifetime FLOPs  k*N*D + 2*N*D_inf  subject to  L(N, D) <= target  and the frontier constraints
(Sardana et al. 2024, "Beyond Chinchilla-Optimal", arXiv:2401.00448; D_inf = 0 is the plain inverse of the
compute-optimal frontier). In x = ln N, y = ln D:

* The constraints form a convex polygon F (x in [x_a, x_b], y in [y_a, y_b], y - x in [t_a, t_b], and the
  domain N >= 1, D >= 1). The cost is increasing in x and y, so its minimum over F is F's lower-left corner
  (``corner``). If the loss there already meets the target, the corner is the answer (the constraints force
  a better model than asked for).
* Otherwise the optimum lies on the level curve L = target, y = Y(x): decreasing and convex (L is convex,
  resp. quasi-convex, so {L <= target} is convex). Every constraint is monotone along the curve, so the
  feasible part is an x-interval; on it the cost phi(x) = x + ln(k e^Y + 2 D_inf) is convex with
  phi' = 1 + w Y', w = k D / (k D + 2 D_inf). phi' is found by bisection on its sign (it tends to -inf at
  the curve's asymptote and to 1 as x -> inf), each interval end tried first (an active constraint).

Per family: ``level_y(x)`` (D on the level curve given N), ``level_x(y)`` (N given D) and ``level_slope``
(dY/dx = -L_x/L_y). Families without these return NaN: their rows come out infeasible, never wrong.
"""

import math

import numpy as np
from numba import njit, prange

from ..codes import CHINCHILLA, KAPLAN, MAX_PARAMS, MAX_TOKENS, MAX_TPP, MIN_PARAMS, MIN_TOKENS, MIN_TPP, NONE
from . import JIT, PJIT
from .frontier import XTOL
from .loss import loss_log

BISECT_MAXIT = 200


@njit(**JIT)
def level_y(family, p, x, ell):
    """ln D with L(e^x, D) = ell; +inf at the asymptote, NaN where no D reaches ell."""
    if family == CHINCHILLA:
        r = ell - p[0] - p[1] * math.exp(-p[3] * x)
        return math.log(p[2] / r) / p[4] if r > 0.0 else (math.inf if r == 0.0 else np.nan)
    if family == KAPLAN:
        r = ell ** (1.0 / p[3]) - math.exp(p[2] / p[3] * (math.log(p[0]) - x))
        return math.log(p[1] / r) if r > 0.0 else (math.inf if r == 0.0 else np.nan)
    return np.nan


@njit(**JIT)
def level_x(family, p, y, ell):
    """ln N with L(N, e^y) = ell (y may be +inf: the curve's asymptote in x); NaN where no N reaches ell."""
    if family == CHINCHILLA:
        r = ell - p[0] - p[2] * math.exp(-p[4] * y)
        return math.log(p[1] / r) / p[3] if r > 0.0 else (math.inf if r == 0.0 else np.nan)
    if family == KAPLAN:
        r = ell ** (1.0 / p[3]) - p[1] * math.exp(-y)
        return math.log(p[0]) - math.log(r) * p[3] / p[2] if r > 0.0 else (math.inf if r == 0.0 else np.nan)
    return np.nan


@njit(**JIT)
def level_slope(family, p, x, y):
    """dY/dx = -L_x / L_y along a level curve, at (x, y)."""
    if family == CHINCHILLA:
        return -(p[3] * p[1] * math.exp(-p[3] * x)) / (p[4] * p[2] * math.exp(-p[4] * y))
    if family == KAPLAN:
        r = p[2] / p[3]
        return -(r * math.exp(r * (math.log(p[0]) - x))) / (p[1] * math.exp(-y))
    return np.nan


@njit(**JIT)
def _cost_slope(family, p, x, ell, k, dinf):
    """phi'(x) = 1 + w*Y'(x) on the level curve (sign decides the bisection)."""
    y = level_y(family, p, x, ell)
    kd = k * math.exp(y)
    w = kd / (kd + 2.0 * dinf) if dinf > 0.0 else 1.0
    return 1.0 + w * level_slope(family, p, x, y)


@njit(**JIT)
def _h(family, p, ell, k, dinf, t, mode, x):
    """The decreasing functions whose sign change the solver looks for: mode 0, Y(x) - x - t (the level
    curve crosses D/N = e^t); mode 1, -phi'(x) (the cost's minimum)."""
    if mode == 0:
        return level_y(family, p, x, ell) - x - t
    return -_cost_slope(family, p, x, ell, k, dinf)


@njit(**JIT)
def _sign_change(family, p, ell, k, dinf, t, mode, a, b):
    """Final bracket [a, b] around the sign change of the decreasing ``_h`` (positive at a); with b = inf
    it first steps right from a, doubling the step, until ``_h`` is negative."""
    if b == math.inf:
        step = 1.0
        b = a + step
        for _ in range(BISECT_MAXIT):
            if _h(family, p, ell, k, dinf, t, mode, b) < 0.0:
                break
            a = b
            step *= 2.0
            b += step
    for _ in range(BISECT_MAXIT):
        m = 0.5 * (a + b)
        if b - a <= XTOL * (1.0 + abs(m)):
            break
        if _h(family, p, ell, k, dinf, t, mode, m) > 0.0:
            a = m
        else:
            b = m
    return a, b


@njit(**JIT)
def _tpp_root(family, p, ell, t, xl, upper):
    """x where the level curve crosses y = x + t (Y(x) - x - t is decreasing from +inf at xl).

    Returns the end of the final bracket on the allowed side: ``upper`` (a min_tokens_per_param limit,
    x <= root) the left end, else (max_tokens_per_param, x >= root) the right end.
    """
    a, b = _sign_change(family, p, ell, 0.0, 0.0, t, 0, xl, math.inf)
    return a if upper else b


@njit(**JIT)
def corner(lb):
    """F's lower-left corner (x, y, x_code, y_code), or NaNs when F is empty."""
    x, xc = 0.0, NONE
    if lb[0] > x:
        x, xc = lb[0], MIN_PARAMS
    v = max(lb[2], 0.0) - lb[5]  # D/N <= max_tpp needs x >= y_a - t_b
    if v > x:
        x, xc = v, MAX_TPP
    y, yc = 0.0, NONE
    if lb[2] > y:
        y, yc = lb[2], MIN_TOKENS
    v = x + lb[4]
    if v > y:
        y, yc = v, MIN_TPP
    if not (x <= lb[1] and y <= lb[3] and y - x <= lb[5] and lb[4] <= lb[5]):
        return np.nan, np.nan, NONE, NONE
    return x, y, xc, yc


@njit(**JIT)
def solve_target_row(family, p, ell, k, dinf, lb, bounds):
    """One target: returns (params, tokens, loss, feasible, active_code)."""
    nan = np.nan
    xc0, yc0, xcode, ycode = corner(lb)
    if math.isnan(xc0):
        return nan, nan, nan, False, NONE
    lc = loss_log(family, p, xc0, yc0)
    if lc <= ell:  # the constraints alone already force a loss at or below the target
        n = bounds[0] if xcode == MIN_PARAMS else math.exp(xc0)
        d = bounds[2] if ycode == MIN_TOKENS else math.exp(yc0)
        return n, d, lc, True, (xcode if xcode != NONE else ycode)
    xl = level_x(family, p, math.inf, ell)  # asymptote: N below e^xl cannot reach ell with any D
    if math.isnan(xl) or xl == math.inf:  # target at or below the law's irreducible loss
        return nan, nan, nan, False, NONE
    lo, lo_id, open_lo = max(xl, 0.0), NONE, xl >= 0.0
    if lb[0] > lo:
        lo, lo_id, open_lo = lb[0], MIN_PARAMS, False
    if lb[3] < math.inf:  # D <= max_tokens  <=>  x >= level_x(ln max_tokens)
        v = level_x(family, p, lb[3], ell)
        if math.isnan(v):  # even infinite N cannot reach ell with that little data
            return nan, nan, nan, False, NONE
        if v > lo:
            lo, lo_id, open_lo = v, MAX_TOKENS, False
    if lb[5] < math.inf:
        v = _tpp_root(family, p, ell, lb[5], xl, False)
        if v > lo:
            lo, lo_id, open_lo = v, MAX_TPP, False
    hi, hi_id = lb[1], MAX_PARAMS
    if hi == math.inf:
        hi_id = NONE
    ya = max(lb[2], 0.0)  # D >= max(min_tokens, 1)  <=>  x <= level_x(ya) (if the curve gets that low)
    v = level_x(family, p, ya, ell)
    if not math.isnan(v) and v < hi:
        hi, hi_id = v, (MIN_TOKENS if lb[2] > 0.0 else NONE)
    if lb[4] > -math.inf:
        v = _tpp_root(family, p, ell, lb[4], xl, True)
        if v < hi:
            hi, hi_id = v, MIN_TPP
    if not (lo <= hi) or (open_lo and lo == hi):
        return nan, nan, nan, False, NONE
    # Minimise phi on [lo, hi]: phi' < 0 at an open lower end (the asymptote), -> 1 as x -> inf.
    active = NONE
    if not open_lo and _cost_slope(family, p, lo, ell, k, dinf) >= 0.0:
        x, active = lo, lo_id
    elif hi < math.inf and _cost_slope(family, p, hi, ell, k, dinf) <= 0.0:
        x, active = hi, hi_id
    else:
        a, b = _sign_change(family, p, ell, k, dinf, 0.0, 1, lo, hi)
        x = 0.5 * (a + b)
    # Report a binding params or tokens limit exactly.
    if active == MIN_PARAMS or active == MAX_PARAMS:
        n = bounds[active - 1]
        d = math.exp(level_y(family, p, math.log(n), ell))
    elif active == MIN_TOKENS or active == MAX_TOKENS:
        d = bounds[active - 1]
        n = math.exp(level_x(family, p, math.log(d), ell))
    else:
        n = math.exp(x)
        d = math.exp(level_y(family, p, x, ell))
    loss = loss_log(family, p, math.log(n), math.log(d))
    if not (math.isfinite(n) and math.isfinite(d) and math.isfinite(loss)):
        return nan, nan, nan, False, NONE
    return n, d, loss, True, active


@njit(**PJIT)
def target_kernel(fams, P, law_idx, targets, k, dinf, lbounds, bounds, out_n, out_d, out_l, out_feas, out_active):
    """Solve every target; law, inference demand and constraints per row or shared (length / rows 1)."""
    lstride = 0 if law_idx.size == 1 else 1
    bstride = 0 if lbounds.shape[0] == 1 else 1
    istride = 0 if dinf.size == 1 else 1
    for i in prange(targets.size):
        li = law_idx[i * lstride]
        j = i * bstride
        n, d, loss, feas, act = solve_target_row(fams[li], P[li], targets[i], k, dinf[i * istride], lbounds[j],
                                                 bounds[j])
        out_n[i] = n
        out_d[i] = d
        out_l[i] = loss
        out_feas[i] = feas
        out_active[i] = act


TARGET_IRREDUCIBLE = 1  # the target is at or below the law's irreducible loss
TARGET_LIMITS_CONFLICT = 2  # the limits contradict each other (no allocation meets them all)
TARGET_LIMITS_BLOCK = 3  # the limits keep the loss above the target


@njit(**PJIT)
def target_conflicts(fams, P, law_idx, targets, lbounds, rows, out):
    """Why the target rows ``rows`` are infeasible (the codes above), by the solver's own tests."""
    lstride = 0 if law_idx.size == 1 else 1
    bstride = 0 if lbounds.shape[0] == 1 else 1
    for j in prange(rows.size):
        i = rows[j]
        li = law_idx[i * lstride]
        xl = level_x(fams[li], P[li], math.inf, targets[i])
        if math.isnan(xl) or xl == math.inf:
            out[j] = TARGET_IRREDUCIBLE
        elif math.isnan(corner(lbounds[i * bstride])[0]):
            out[j] = TARGET_LIMITS_CONFLICT
        else:
            out[j] = TARGET_LIMITS_BLOCK
