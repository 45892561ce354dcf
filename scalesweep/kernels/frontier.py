"""Constrained compute-optimal allocation, one budget per row.

With C fixed, D = C/(k*N), so the problem is one-dimensional in x = ln N. Every constraint is an interval
on x (see ``row_interval``); the intersection with the physical domain N >= 1, D >= 1 is [lo, hi]. An empty
interval is an infeasible row (flagged, NaN results), never an exception.

The general solver (``newton_min``) is a safeguarded Newton iteration on the family's iso-FLOP gradient:
it keeps a sign bracket [a, b], takes the Newton step when it stays strictly inside the bracket, tries the
interval end itself when Newton points past it (so an active constraint is reached in one step, not by
halving), and bisects otherwise. Every family uses it. Families with an exact closed form (chinchilla,
kaplan) may take a fast path instead: the constrained optimum of a unimodal function on an interval is the
unconstrained optimum clamped to the interval.

Active-constraint and solver codes are those of ``scalesweep/codes.py``.
"""

import math

import numpy as np
from numba import njit, prange

from ..codes import (CHINCHILLA, KAPLAN, MAX_CONVERGENCE_GAP, MAX_OVERFIT, MAX_PARAMS, MAX_TOKENS, MAX_TPP, MIN_PARAMS,
                     MIN_TOKENS, MIN_TPP, NONE, OVERFIT_RATIO, SOLVER_AUTO, SOLVER_NEWTON_MID)
from . import JIT, PJIT
from .loss import closed_form_x, gap_max_x, initial_x, isoflop_grad, law_logs, loss_log, loss_point

MAXIT = 200
XTOL = 1e-13


@njit(**JIT)
def row_interval(c, lb):
    """Feasible interval [lo, hi] in x = ln N for c = ln(C/k), and which constraint sets each end.

    lb holds natural logs of (min_params, max_params, min_tokens, max_tokens, min_tpp, max_tpp), with
    -inf / +inf for an absent lower / upper limit, then ln K of the overfitting limit ln D >= ln K + r ln N
    (-inf: none), then the convergence-gap limit that ``law_interval`` applies. Domain: N >= 1 (x >= 0) and
    D >= 1 (x <= c).
    """
    lo, lo_id = 0.0, NONE
    hi, hi_id = c, NONE
    v = lb[0]  # N >= min_params
    if v > lo:
        lo, lo_id = v, MIN_PARAMS
    v = c - lb[3]  # D <= max_tokens  <=>  x >= c - ln max_tokens
    if v > lo:
        lo, lo_id = v, MAX_TOKENS
    v = 0.5 * (c - lb[5])  # D/N <= max_tpp  <=>  x >= (c - ln max_tpp)/2
    if v > lo:
        lo, lo_id = v, MAX_TPP
    v = lb[1]  # N <= max_params
    if v < hi:
        hi, hi_id = v, MAX_PARAMS
    v = c - lb[2]  # D >= min_tokens
    if v < hi:
        hi, hi_id = v, MIN_TOKENS
    v = 0.5 * (c - lb[4])  # D/N >= min_tpp
    if v < hi:
        hi, hi_id = v, MIN_TPP
    if lb[6] > -math.inf:  # Kaplan dL <= max: ln D >= lb[6] + r ln N (no limit: no division per row)
        v = (c - lb[6]) / (1.0 + OVERFIT_RATIO)
        if v < hi:
            hi, hi_id = v, MAX_OVERFIT
    return lo, lo_id, hi, hi_id


@njit(**JIT)
def law_interval(family, p, c, lb):
    """``row_interval`` with the limits that depend on the row's law: lb[7] is the largest convergence gap
    L(N, D) / L(N, inf) - 1 allowed (+inf: none), an upper end x <= ``gap_max_x`` (the gap rises with N on the
    iso-FLOP line). A family without that limit gives NaN, which empties the interval: the row is flagged,
    never solved without the limit."""
    lo, lo_id, hi, hi_id = row_interval(c, lb)
    if lb[7] < math.inf:
        v = gap_max_x(family, p, c, lb[7])
        if not (v >= hi):
            hi, hi_id = v, MAX_CONVERGENCE_GAP
    return lo, lo_id, hi, hi_id


@njit(**JIT)
def _grad(family, p, x, c, curve, lk):
    """``isoflop_grad`` on the line C = k N D (curve None: numba compiles the branch away), else ``curve_grad``."""
    if curve is None:
        return isoflop_grad(family, p, x, c, lk)
    return curve_grad(family, p, x, c, curve)


@njit(**JIT)
def newton_min(family, p, c, lo, hi, x0, curve=None, lk=None):
    """Minimise L over x in [lo, hi] (lo <= hi) on the iso-FLOP line c; returns x. With ``curve`` given,
    x is t = ln y on the curve C = f(N) D of ``curve_grad`` instead.

    Safeguarded Newton on g = isoflop_grad (in the manner of Numerical Recipes' rtsafe): the bracket
    [a, b] always contains the minimiser of a unimodal L. A Newton step is taken when it lands strictly
    inside (a, b) and is at most half the previous step; otherwise, if Newton points past an interval end
    not yet tried, that end is tried (an active constraint is then reached in one step), else the bracket
    is bisected. So the bracket at least halves every two iterations even where Newton crawls (far out on
    an exponential, a Newton step is only ~1/exponent long). Stops when a step is below XTOL*(1+|x|),
    checked before the bracket test: from an exact seed the step rounds to nothing and must not be mistaken
    for a step outside the bracket. Returns NaN where the gradient is NaN (the caller flags the row).
    """
    a, b = lo, hi
    x = min(max(x0, lo), hi)
    tried_lo = x == lo
    tried_hi = x == hi
    last = hi - lo
    for _ in range(MAXIT):
        g, h = _grad(family, p, x, c, curve, lk)
        if g > 0.0:
            b = x
        elif g < 0.0:
            a = x
        elif g == 0.0:  # exact stationary point
            return x
        else:  # NaN: the law is undefined here, and NaN makes the caller flag the row
            return np.nan
        step = g / h
        xn = x - step
        if abs(step) <= XTOL * (1.0 + abs(x)):  # converged (the step may even round to nothing)
            return min(max(xn, lo), hi)
        if not (xn > a and xn < b and abs(step) <= 0.5 * abs(last)):
            if xn >= b and b == hi and not tried_hi:
                xn = hi
                tried_hi = True
            elif xn <= a and a == lo and not tried_lo:
                xn = lo
                tried_lo = True
            else:
                xn = 0.5 * (a + b)
        last = xn - x
        if abs(last) <= XTOL * (1.0 + abs(x)):  # bracket collapsed, or an interval end reached
            return xn
        x = xn
    return x


@njit(**JIT)
def solve_row(family, p, flops, k, lb, bounds, solver, lk):
    """One budget: returns (params, tokens, loss, feasible, active_code); ``lk``: the law's ``law_logs``."""
    c = math.log(flops / k)
    lo, lo_id, hi, hi_id = law_interval(family, p, c, lb)
    if not (lo <= hi):  # also catches NaN
        return np.nan, np.nan, np.nan, False, NONE
    active = NONE
    xu = closed_form_x(family, p, c, lk) if solver == SOLVER_AUTO else np.nan  # NaN: the family has no closed form
    if xu == xu:
        if xu < lo:
            x, active = lo, lo_id
        elif xu > hi:
            x, active = hi, hi_id
        else:
            x = xu
    else:
        x0 = initial_x(family, p, c, lk) if solver != SOLVER_NEWTON_MID else 0.5 * (lo + hi)
        x = newton_min(family, p, c, lo, hi, x0, None, lk)
        if x <= lo or x >= hi:
            g, _ = isoflop_grad(family, p, x, c, lk)
            if x <= lo and g > 0.0:
                active = lo_id
            elif x >= hi and g < 0.0:
                active = hi_id
    # Report the limiting value exactly when a params or tokens limit is active.
    if active == MIN_PARAMS or active == MAX_PARAMS:
        n = bounds[active - 1]
        d = flops / (k * n)
    elif active == MIN_TOKENS or active == MAX_TOKENS:
        d = bounds[active - 1]
        n = flops / (k * d)
    else:  # at an end of the domain N = 1 or D = 1 exactly (exp and the division may land a few ulp below)
        n = max(math.exp(x), 1.0)
        d = max(flops / (k * n), 1.0)
    loss = loss_log(family, p, x, c - x, lk)
    if not math.isfinite(loss):
        return np.nan, np.nan, np.nan, False, NONE
    return n, d, loss, True, active


@njit(**PJIT)
def frontier_kernel(fams, P, law_idx, flops, k, lbounds, bounds, solver, out_n, out_d, out_l, out_feas, out_active):
    """Solve every budget, each row with its own law and constraints where given.

    Row i uses law ``law_idx[i]`` (family ``fams[l]``, parameters ``P[l]``) and constraint row i of
    ``lbounds``/``bounds`` (shape (m, 8)). An array of length / first dimension 1 is shared by every row,
    so one law and one constraint set cost nothing extra; a heterogeneous scenario sweep is the same loop.
    """
    lstride = 0 if law_idx.size == 1 else 1
    bstride = 0 if lbounds.shape[0] == 1 else 1
    logs = np.empty((fams.size, 2))
    for li in range(fams.size):
        logs[li] = law_logs(fams[li], P[li])
    for i in prange(flops.size):
        li = law_idx[i * lstride]
        j = i * bstride
        n, d, loss, feas, act = solve_row(fams[li], P[li], flops[i], k, lbounds[j], bounds[j], solver, logs[li])
        out_n[i] = n
        out_d[i] = d
        out_l[i] = loss
        out_feas[i] = feas
        out_active[i] = act


# ------------------------------------------------- the frontier on C = f(N) D, a FLOPs model beyond 6N
# ``shapes.flops_coefficients`` writes N and the FLOPs per token f as polynomials in y = N_E^(1/3):
# N(y) = y^3 + n1 y and f(y) = 6 y^3 + f2 y^2 + f1 y, curve = (n1, f2, f1). On a budget C, ln D = ln C - ln f,
# and the solve runs in t = ln y, where both N and f are increasing: no cubic is inverted per step.
#
# The optimum t*(ln C) of one law is a smooth function of ln C alone. ``curve_table`` solves it exactly
# (``curve_solve``) at the fixed points ln C = j * CURVE_STEP that the budgets span, with its slope; a budget
# starts from the cubic Hermite interpolant between its two neighbours and takes one Newton step there
# (``curve_polish``). A step of at most CURVE_POLISH is accepted as the last: Newton's error after it is of the
# order of the step squared (~1e-20), and N, D and the loss follow from the start to second order in the step.
# Anything else (a budget at an end of the domain, outside the table, a kink) is solved in full. The table's
# points do not depend on the other budgets asked, so every row's answer is its own, on any thread count.
CURVE_STEP = 1.0 / 16.0  # a power of two: ln C / CURVE_STEP is exact
CURVE_POLISH = 1e-9


@njit(**JIT)
def curve_point(curve, t):
    """(N, f, a, a', b, b') at t = ln y: a = d ln N / dt, b = d ln f / dt and their derivatives in t."""
    n1, f2, f1 = curve[0], curve[1], curve[2]
    y = math.exp(t)
    y2 = y * y
    y3 = y2 * y
    n = y3 + n1 * y
    f = 6.0 * y3 + f2 * y2 + f1 * y
    a = (3.0 * y3 + n1 * y) / n
    b = (18.0 * y3 + 2.0 * f2 * y2 + f1 * y) / f
    return n, f, a, (9.0 * y3 + n1 * y) / n - a * a, b, (54.0 * y3 + 4.0 * f2 * y2 + f1 * y) / f - b * b


@njit(**JIT)
def curve_state(family, p, t, ln_c, curve):
    """(g, h, g_c, N, f, a, b, loss) at t on the budget ln C: g has the sign of dL/dt along C = f(N) D and its
    zeros, h = dg/dt and g_c = dg/d ln C (exact), a = d ln N / dt, b = d ln f / dt.

    dL/dt = (dL/d ln N) a - (dL/d ln D) b. chinchilla: with u = alpha A N^-alpha and v = beta B D^-beta,
    g = v b - u a, du/dt = -alpha u a, dv/dt = beta v b, dv/d ln C = -beta v. kaplan: L = F^alpha_D, F = P + Q
    with P = (N_c/N)^r, Q = D_c/D, r = alpha_N/alpha_D; g = dF/dt = v b - u a with u = r P, v = Q,
    du/dt = -r u a, dv/dt = v b, dv/d ln C = -v. Either way h = s_u u a^2 - u a' + s_v v b^2 + v b' and
    g_c = -s_v v b, with s the exponents above."""
    n, f, a, a1, b, b1 = curve_point(curve, t)
    x = math.log(n)
    y = ln_c - math.log(f)
    if family == CHINCHILLA:
        su, sv = p[3], p[4]
        u = su * p[1] * math.exp(-su * x)
        v = sv * p[2] * math.exp(-sv * y)
        loss = p[0] + u / su + v / sv
    elif family == KAPLAN:
        su, sv = p[2] / p[3], 1.0
        u = su * math.exp(su * (math.log(p[0]) - x))
        v = p[1] * math.exp(-y)
        loss = (u / su + v) ** p[3]
    else:
        return np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan
    return (v * b - u * a, su * u * a * a - u * a1 + sv * v * b * b + v * b1, -sv * v * b, n, f, a, b, loss)


@njit(**JIT)
def curve_grad(family, p, t, ln_c, curve):
    """(g, h) of ``curve_state``: what ``newton_min`` needs."""
    g, h, _, _, _, _, _, _ = curve_state(family, p, t, ln_c, curve)
    return g, h


@njit(**JIT)
def curve_tokens_one(curve, ln_c):
    """t = ln y where f(y) = C (D = 1): Newton on the increasing convex cubic from y = (C/6)^(1/3), which lies
    right of the root (f >= 6 y^3), so the iterates fall monotonically to it."""
    f2, f1 = curve[1], curve[2]
    c = math.exp(ln_c)
    y = math.exp((ln_c - math.log(6.0)) / 3.0)
    for _ in range(MAXIT):
        step = (((6.0 * y + f2) * y + f1) * y - c) / ((18.0 * y + 2.0 * f2) * y + f1)
        y -= step
        if not (abs(step) > 1e-16 * y):
            break
    return math.log(y)


@njit(**JIT)
def curve_solve(family, p, ln_c, t_lo, ln_f_lo, curve):
    """t minimising the loss on C = f(N) D with N >= 1 (t >= t_lo; ln f there is ln_f_lo) and D >= 1; NaN where
    N = 1 cannot buy one token. Safeguarded Newton on [t_lo, ln (C/6)^(1/3)] (f >= 6 y^3, so D < 1 beyond it)
    from the optimum of C = 6 N D; a minimiser where D < 1 moves to D = 1, the end of the domain."""
    if not (ln_f_lo <= ln_c):
        return np.nan
    hi = max((ln_c - math.log(6.0)) / 3.0, t_lo)
    t0 = closed_form_x(family, p, ln_c - math.log(6.0)) / 3.0
    t = newton_min(family, p, ln_c, t_lo, hi, t0, curve)
    _, f, _, _, _, _ = curve_point(curve, t)
    if f > math.exp(ln_c):
        t = curve_tokens_one(curve, ln_c)
    return t


@njit(**JIT)
def curve_result(family, p, ln_c, t, curve):
    """(N, D, loss) at t on the budget ln C; at an end of the domain N = 1 or D = 1 exactly (the round trip
    through t may leave either a few ulp below 1)."""
    n, f, _, _, _, _ = curve_point(curve, t)
    return max(n, 1.0), max(math.exp(ln_c) / f, 1.0), loss_log(family, p, math.log(n), ln_c - math.log(f))


@njit(**PJIT)
def curve_table(family, p, j0, t_lo, ln_f_lo, curve, out_t, out_s):
    """The exact optimum t and its slope dt/dj (in table steps) at ln C = (j0 + j) CURVE_STEP, for every j."""
    for j in prange(out_t.size):
        ln_c = (j0 + j) * CURVE_STEP
        t = curve_solve(family, p, ln_c, t_lo, ln_f_lo, curve)
        _, h, g_c, _, _, _, _, _ = curve_state(family, p, t, ln_c, curve)
        out_t[j] = t
        out_s[j] = -g_c / h * CURVE_STEP


@njit(**JIT)
def curve_polish(family, p, ln_c, t_lo, curve, j0, table_t, table_s):
    """(N, D, loss) from the table's start and one Newton step (see above), or NaNs where that does not
    apply and the budget is to be solved in full."""
    z = ln_c / CURVE_STEP  # exact (the step is a power of two), so a budget's start never depends on j0
    if not (abs(z) < 1e15):  # also NaN
        return np.nan, np.nan, np.nan
    whole = math.floor(z)
    j = int(whole) - j0
    if not (j >= 0 and j + 1 < table_t.size):
        return np.nan, np.nan, np.nan
    s = z - whole
    t0, t1, m0, m1 = table_t[j], table_t[j + 1], table_s[j], table_s[j + 1]
    s2 = s * s
    s3 = s2 * s
    t = (2.0 * s3 - 3.0 * s2 + 1.0) * t0 + (s3 - 2.0 * s2 + s) * m0 + (3.0 * s2 - 2.0 * s3) * t1 + (s3 - s2) * m1
    g, h, _, n, f, a, b, loss = curve_state(family, p, t, ln_c, curve)
    step = -g / h
    if not (abs(step) <= CURVE_POLISH and t + step > t_lo):  # also NaN
        return np.nan, np.nan, np.nan
    d = math.exp(ln_c) / f
    da = a * step
    db = b * step
    n = n * (1.0 + da * (1.0 + 0.5 * da))
    d = d / (1.0 + db * (1.0 + 0.5 * db))
    if not (n >= 1.0 and d >= 1.0):
        return np.nan, np.nan, np.nan
    return n, d, loss


@njit(**PJIT)
def curve_frontier_kernel(family, p, flops, t_lo, ln_f_lo, curve, j0, table_t, table_s, out_n, out_d, out_l):
    """The frontier on C = f(N) D for every budget of one law: ``curve_polish`` from the table, else
    ``curve_solve`` in full."""
    for i in prange(flops.size):
        ln_c = math.log(flops[i])
        n, d, loss = curve_polish(family, p, ln_c, t_lo, curve, j0, table_t, table_s)
        if not (n == n):
            t = curve_solve(family, p, ln_c, t_lo, ln_f_lo, curve)
            if t == t:
                n, d, loss = curve_result(family, p, ln_c, t, curve)
        out_n[i] = n
        out_d[i] = d
        out_l[i] = loss


@njit(**PJIT)
def rows_of_columns(cols, out):
    """out[i, k] = cols[k][i], a column of one value shared by every row: the (rows, 8) limit arrays the
    kernels read a row at a time, written row by row in one pass (not column by column)."""
    for i in prange(out.shape[0]):
        for k in range(out.shape[1]):
            c = cols[k]
            out[i, k] = c[i] if c.size > 1 else c[0]


@njit(**PJIT)
def grid_search_kernel(family, p, flops, k, n_axis, out_idx):
    """out_idx[i] = index into n_axis of the lowest loss on budget flops[i] (tokens = C/(k*N)): the answer a
    sweep over a discrete params grid gives. Ties keep the smaller model; non-finite losses never win."""
    for i in prange(flops.size):
        c = flops[i]
        best, arg = np.inf, -1
        for j in range(n_axis.size):
            n = n_axis[j]
            v = loss_point(family, p, n, c / (k * n))
            if v < best:
                best, arg = v, j
        out_idx[i] = arg


@njit(**JIT)
def _select(a, lo, hi, k):
    """Rearrange a[lo:hi] so that a[k] holds the value it would have if a[lo:hi] were sorted, everything
    before it is <= a[k] and everything after >= a[k] (quickselect, median-of-three pivot)."""
    hi -= 1
    while hi > lo:
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@njit(**PJIT)
def percentile_rows(values, qs, out):
    """out[j, k] = the qs[k]-th percentile of the finite entries of row j of ``values`` (numpy's default
    'linear' method); NaN where a row has none. Only the order statistics needed are selected (qs must
    be sorted ascending), so a row costs a few linear passes rather than a sort."""
    rows, cols = values.shape
    for j in prange(rows):
        buf = np.empty(cols)
        m = 0
        for i in range(cols):
            v = values[j, i]
            if math.isfinite(v):
                buf[m] = v
                m += 1
        if m == 0:
            for k in range(qs.size):
                out[j, k] = np.nan
            continue
        start = 0  # everything before ``start`` is already in its sorted place or below it
        for k in range(qs.size):
            h = (m - 1) * qs[k] / 100.0
            lo = math.floor(h)
            hi = min(lo + 1, m - 1)
            if lo >= start:
                _select(buf, start, m, lo)
            if hi > lo:  # the next order statistic is the minimum of what lies above lo
                _select(buf, lo + 1, m, hi)
            start = hi
            t = h - lo
            out[j, k] = buf[lo] + t * (buf[hi] - buf[lo])


@njit(**PJIT)
def interval_conflicts(fams, P, law_idx, flops, k, lbounds, rows, out_lo, out_hi):
    """For infeasible budget rows ``rows``: the codes of the limits whose intervals do not meet (lower end,
    upper end; NONE is the domain N >= 1 or D >= 1), or -1, -1 where the interval is not empty (the loss
    itself is undefined there). Runs ``law_interval`` again, so the reason is the solver's own."""
    lstride = 0 if law_idx.size == 1 else 1
    bstride = 0 if lbounds.shape[0] == 1 else 1
    for j in prange(rows.size):
        i = rows[j]
        li = law_idx[i * lstride]
        lo, lo_id, hi, hi_id = law_interval(fams[li], P[li], math.log(flops[i] / k), lbounds[i * bstride])
        if lo <= hi:
            out_lo[j] = -1
            out_hi[j] = -1
        else:
            out_lo[j] = lo_id
            out_hi[j] = hi_id
