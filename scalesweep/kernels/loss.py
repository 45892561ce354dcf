"""Per-family loss, and its derivatives along an iso-FLOP line, as small ``@njit`` functions.

Family codes are defined in ``scalesweep/codes.py``, parameter order in the registry (``scalesweep/laws.py``):

* 0 ``chinchilla``: p = (E, A, B, alpha, beta);         L = E + A/N^alpha + B/D^beta
* 1 ``kaplan``:     p = (N_c, D_c, alpha_N, alpha_D);   L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D

Along an iso-FLOP line C = k*N*D write x = ln N and c = ln(C/k), so ln D = c - x. The frontier solver
minimises over x; each family supplies

* ``isoflop_grad(x, c) -> (g, h)``: g has the sign of dL/dx and the same zeros, h = dg/dx;
* ``closed_form_x(c)``: the unconstrained minimiser in x where a closed form exists (NaN otherwise);
* ``initial_x(c)``: a starting point for Newton.

Adding a family: one branch in each dispatcher below (a family without a branch gets NaN, which the
registry's capability flags keep away from the solvers), a registry entry in ``laws.py`` and tests against
``tests/reference.py``.
"""

import math

import numpy as np
from numba import njit, prange

from ..codes import (CHINCHILLA, DATA_CONSTRAINED, FLOPS_PER_PARAM_TOKEN, KAPLAN, KAPLAN_SINGLE, KAPLAN_STEPS,
                     OVERFIT_ALPHA_D, OVERFIT_D_C, OVERFIT_N_C, OVERFIT_RATIO, PF_DAY)
from . import JIT, PJIT


# ------------------------------------------------------------------------------- kaplan_steps (Kaplan 2020)
# p = (N_c, S_c, alpha_N, alpha_S, B_*, alpha_B). L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S (Eq. 1.6)
# with the critical batch B_crit(L) = B_*/L^(1/alpha_B) (Eq. 1.4) and D = E_min = B_crit S_min, so that
# C_min = 6 N B_crit S_min = 6 N D (Kaplan et al. 2020, arXiv:2001.08361, Eq. 1.4, 5.4-5.5). For given N and D the loss solves the fixed point
#     L = a + k L^-q,   a = (N_c/N)^alpha_N,  k = (S_c B_*/D)^alpha_S = b^q,  b = (S_c B_*/D)^alpha_B,
#     q = alpha_S/alpha_B,
# whose right side falls as L rises: one root. The step term is computed as t = k L^-q = (b/L)^q, one power
# whose value never exceeds L along the solve below, so nothing on the way over- or underflows where the
# answer does not, however far N and D are from the constants.


@njit(**JIT)
def _ks_loss(p, n, d):
    """The root of f(L) = L - a - (b/L)^q. It lies in [L0, 2 L0] with L0 = max(a, b^(q/(1+q))): L >= a, and
    L >= k L^-q gives L^(1+q) >= k; L <= 2 max(a, k L^-q) bounds it above the same way. f is increasing and
    concave, so Newton from L0 (where f <= 0) climbs monotonically to the root, in a few steps from a start
    within a factor 2; the bracket catches rounding. Every iterate is >= L0, where t = (b/L)^q <= L."""
    a = (p[0] / n) ** p[2]
    b = (p[1] * p[4] / d) ** p[5]
    q = p[3] / p[5]
    lo = max(a, b ** (q / (1.0 + q)))
    hi = 2.0 * lo
    x = lo
    for _ in range(100):
        t = (b / x) ** q
        f = x - a - t
        if f > 0.0:
            hi = x
        elif f < 0.0:
            lo = x
        else:
            return x
        xn = x - f / (1.0 + q * t / x)
        if not (xn >= lo and xn <= hi):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 1e-15 * x:
            return xn
        x = xn
    return x


@njit(**JIT)
def _ks_grad(p, x, c):
    """The numerator of dL/dx on the iso-FLOP line (implicit differentiation of the fixed point):
    dL/dx = (alpha_S t - alpha_N a) / (1 + q t/L) with t = k L^-q = (b/L)^q."""
    n, d = math.exp(x), math.exp(c - x)
    ell = _ks_loss(p, n, d)
    a = (p[0] / n) ** p[2]
    t = ((p[1] * p[4] / d) ** p[5] / ell) ** (p[3] / p[5])
    return (p[3] * t - p[2] * a) / (1.0 + (p[3] / p[5]) * t / ell)


def ks_batch_steps(p, loss, tokens):
    """(B_crit, S_min) for a kaplan_steps law at a loss and token count (numpy)."""
    batch = p[4] / loss ** (1.0 / p[5])
    return batch, tokens / batch


# ------------------------------------------------------------------ data_constrained (Muennighoff et al. 2023)
# p = (E, A, B, alpha, beta, R_D*, R_N*, U_D), Muennighoff et al. 2023, arXiv:2305.16264, appendix. The unique tokens used are u = min(U_D, D) (a run
# shorter than one epoch sees only fresh tokens); R_D = D/u - 1; D' = u + u R_D* (1 - exp(-R_D/R_D*));
# U_N = min(N_opt(u), N) with N_opt(u) = G (G u)^(beta/alpha), G = (alpha A/(beta B))^(1/(alpha+beta)) (the
# chinchilla-optimal size for u tokens); R_N = N/U_N - 1; N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)).
# R* = inf means no decay (D' = D, N' = N): the chinchilla law.


@njit(**JIT)
def _decay(u, ratio, rstar):
    """u + u R* (1 - exp(-(ratio - 1)/R*)) for ratio = X/u >= 1, and its derivative with respect to X."""
    excess = ratio - 1.0
    if rstar == math.inf:
        return u * ratio, 1.0
    e = math.exp(-excess / rstar)
    return u + u * rstar * (1.0 - e), e


@njit(**JIT)
def _dc_parts(p, n, d):
    """(N', D', dN'/dx, dD'/dx) at N = n, D = d, derivatives along an iso-FLOP line (d ln N = -d ln D = dx)."""
    al, be, rd, rn, ud = p[3], p[4], p[5], p[6], p[7]
    if d <= ud:  # at most one epoch: D' = D, and the unique tokens used grow with D
        u, dp, dd_dx = d, d, -d
    else:
        dp, slope = _decay(ud, d / ud, rd)
        u, dd_dx = ud, -d * slope
    g = (al * p[1] / (be * p[2])) ** (1.0 / (al + be))
    un = g * (g * u) ** (be / al)  # N_opt(u)
    if n <= un:
        return n, dp, n, dd_dx
    npr, en = _decay(un, n / un, rn)
    # dN'/dx = (dN'/dn) n + (dN'/dU_N)(dU_N/dx); U_N moves with u only while D <= U_D.
    dnp = en * n
    if d <= ud:
        if rn == math.inf:
            dnu = 0.0
        else:
            dnu = 1.0 + rn * (1.0 - en) - (n / un) * en
        dnp += dnu * (be / al) * un * (-1.0)  # dU_N/dx = (beta/alpha) U_N d ln u/dx, d ln u/dx = -1
    return npr, dp, dnp, dd_dx


@njit(**JIT)
def _dc_loss(p, n, d):
    npr, dpr, _, _ = _dc_parts(p, n, d)
    return p[0] + p[1] / npr ** p[3] + p[2] / dpr ** p[4]


@njit(**JIT)
def _dc_grad(p, x, c):
    """dL/dx on the iso-FLOP line (exact, piecewise)."""
    n, d = math.exp(x), math.exp(c - x)
    npr, dpr, dnp, ddp = _dc_parts(p, n, d)
    return -p[3] * p[1] * npr ** (-p[3] - 1.0) * dnp - p[4] * p[2] * dpr ** (-p[4] - 1.0) * ddp


@njit(**JIT)
def loss_point(family, p, n, d):
    """L(N=n, D=d) in nats/token; evaluated in the same order as the published formula."""
    if family == CHINCHILLA:
        return p[0] + p[1] / n ** p[3] + p[2] / d ** p[4]
    if family == KAPLAN:
        return ((p[0] / n) ** (p[2] / p[3]) + p[1] / d) ** p[3]
    if family == DATA_CONSTRAINED:
        return _dc_loss(p, n, d)
    if family == KAPLAN_STEPS:
        return _ks_loss(p, n, d)
    if family == KAPLAN_SINGLE:
        v = p[2]
        x = n if v == 0.0 else (d if v == 1.0 else FLOPS_PER_PARAM_TOKEN * n * d / PF_DAY)
        return (p[0] / x) ** p[1]
    return np.nan


@njit(**JIT)
def law_logs(family, p):
    """The logarithms of a law's constants that its closed form, gradient and loss take on every row, computed
    once per law (``lk`` below; the same expressions, so the same bits): chinchilla ln(alpha A / (beta B));
    kaplan ln r + r ln N_c - ln D_c and ln N_c."""
    out = np.full(2, np.nan)
    if family == CHINCHILLA:
        out[0] = math.log(p[3] * p[1] / (p[4] * p[2]))
    elif family == KAPLAN:
        r = p[2] / p[3]
        out[1] = math.log(p[0])
        out[0] = math.log(r) + r * out[1] - math.log(p[1])
    return out


@njit(**JIT)
def loss_log(family, p, x, y, lk=None):
    """L at ln N = x, ln D = y (exp instead of pow: what the frontier reports at its optimum); ``lk``: the
    law's ``law_logs`` (None: computed here)."""
    if family == CHINCHILLA:
        return p[0] + p[1] * math.exp(-p[3] * x) + p[2] * math.exp(-p[4] * y)
    if family == KAPLAN:
        r = p[2] / p[3]
        ln_nc = math.log(p[0]) if lk is None else lk[1]
        return (math.exp(r * (ln_nc - x)) + p[1] * math.exp(-y)) ** p[3]
    if family == DATA_CONSTRAINED:
        return _dc_loss(p, math.exp(x), math.exp(y))
    if family == KAPLAN_STEPS:
        return _ks_loss(p, math.exp(x), math.exp(y))
    if family == KAPLAN_SINGLE:
        return loss_point(family, p, math.exp(x), math.exp(y))
    return np.nan


@njit(**JIT)
def isoflop_grad(family, p, x, c, lk=None):
    """(g, h): g has the sign of dL/dx on the line ln D = c - x and vanishes where it does; h = dg/dx.

    chinchilla: g = dL/dx = beta*B*D^-beta - alpha*A*N^-alpha exactly.
    kaplan:     L = f^alpha_D with f = (N_c/N)^r + D_c/D, r = alpha_N/alpha_D; L is increasing in f, so
                g = df/dx = D_c/D - r*(N_c/N)^r carries the sign and the zeros of dL/dx.
    Both g are increasing in x (L is convex, resp. quasi-convex, in x), so the minimiser is unique.
    """
    if family == CHINCHILLA:
        u = p[3] * p[1] * math.exp(-p[3] * x)
        v = p[4] * p[2] * math.exp(-p[4] * (c - x))
        return v - u, p[4] * v + p[3] * u
    if family == KAPLAN:
        r = p[2] / p[3]
        ln_nc = math.log(p[0]) if lk is None else lk[1]
        u = r * math.exp(r * (ln_nc - x))
        v = p[1] * math.exp(x - c)
        return v - u, v + r * u
    return _grad_with_numeric_curvature(family, p, x, c)


@njit(**JIT)
def _exact_grad(family, p, x, c):
    if family == DATA_CONSTRAINED:
        return _dc_grad(p, x, c)
    if family == KAPLAN_STEPS:
        return _ks_grad(p, x, c)
    return np.nan


@njit(**JIT)
def _grad_with_numeric_curvature(family, p, x, c):
    """(g, h) for families with an exact (piecewise or implicit) gradient but no convenient second
    derivative: h from a central difference of g (only the Newton step size depends on it; the bracket
    keeps the solve safe). Kept out of line so the closed-form families' Newton loop stays small."""
    g = _exact_grad(family, p, x, c)
    eps = 1e-6 * (1.0 + abs(x))
    h = (_exact_grad(family, p, x + eps, c) - _exact_grad(family, p, x - eps, c)) / (2.0 * eps)
    return g, (h if h > 0.0 else abs(g) + 1e-300)


@njit(**JIT)
def closed_form_x(family, p, c, lk=None):
    """Unconstrained minimiser x* = ln N* on C = k*N*D, where a closed form exists; NaN otherwise.

    chinchilla (Hoffmann Eq. 4): N* = G*(C/k)^(beta/(alpha+beta)), G = (alpha*A/(beta*B))^(1/(alpha+beta)).
    kaplan (Eq. 1.5 with C = kND): (N*)^(1+r) = r*N_c^r*(C/k)/D_c, r = alpha_N/alpha_D.
    """
    if family == CHINCHILLA:
        a, b = p[3], p[4]
        return ((math.log(a * p[1] / (b * p[2])) if lk is None else lk[0]) + b * c) / (a + b)
    if family == KAPLAN:
        r = p[2] / p[3]
        return ((math.log(r) + r * math.log(p[0]) - math.log(p[1]) if lk is None else lk[0]) + c) / (1.0 + r)
    return np.nan


@njit(**PJIT)
def overfit_rows(n, d, out):
    """out[i] = Kaplan's dL(N, D) = (1 + (N/N_c)^(alpha_N/alpha_D) D_c/D)^alpha_D - 1 with the constants of
    Kaplan et al. 2020, Eq. 4.3-4.4 (``codes.OVERFIT_*``), in the order of that formula."""
    for i in prange(n.size):
        out[i] = (1.0 + (n[i] / OVERFIT_N_C) ** OVERFIT_RATIO * OVERFIT_D_C / d[i]) ** OVERFIT_ALPHA_D - 1.0


@njit(**JIT)
def gap_line(family, p, g):
    """(ln K, r) such that the convergence gap L(N, D) / L(N, inf) - 1 <= g  <=>  ln D >= ln K + r ln N, for the
    families where that limit is a power floor on D; (NaN, NaN) otherwise.

    kaplan: the gap is Kaplan's overfitting measure dL (Kaplan et al. 2020, Eq. 4.3) with the law's own
    constants, (1 + (N/N_c)^r D_c/D)^alpha_D - 1, r = alpha_N/alpha_D: D >= D_c (N/N_c)^r / Q with
    Q = (1 + g)^(1/alpha_D) - 1.
    kaplan_steps: the gap is (S_c/S_min)^alpha_S / (N_c/N)^alpha_N (Eq. 1.6). At the limit L = (1 + g) a with
    a = (N_c/N)^alpha_N and S_min = S_c (g a)^(-1/alpha_S); D = B_crit(L) S_min with B_crit = B_*/L^(1/alpha_B)
    (Eq. 1.4) gives ln D = ln(S_c B_*) - ln(1 + g)/alpha_B - ln(g)/alpha_S - r ln N_c + r ln N with
    r = alpha_N (1/alpha_B + 1/alpha_S). At fixed N the gap falls as D grows, so the limit is that floor.
    """
    if family == KAPLAN:
        r = p[2] / p[3]
        q = (1.0 + g) ** (1.0 / p[3]) - 1.0
        return math.log(p[1] / q) - r * math.log(p[0]), r
    if family == KAPLAN_STEPS:
        ib, i_s = 1.0 / p[5], 1.0 / p[3]
        r = p[2] * (ib + i_s)
        return math.log(p[1] * p[4]) - math.log1p(g) * ib - math.log(g) * i_s - r * math.log(p[0]), r
    return np.nan, np.nan


@njit(**JIT)
def gap_max_x(family, p, c, g):
    """The largest x = ln N on the iso-FLOP line ln D = c - x whose convergence gap L(N, D) / L(N, inf) - 1 is at
    most g (the gap rises with x on the line for every family here); NaN for a family without this limit.

    kaplan, kaplan_steps: the floor ln D >= ln K + r x of ``gap_line`` meets the line at (c - ln K)/(1 + r).
    chinchilla: the gap is B D^-beta / (E + A N^-alpha); the limit is the root of
    f(x) = ln B - beta (c - x) - ln g - ln(E + A e^(-alpha x)), which is increasing and concave in x. Dropping
    either term of the last logarithm bounds f above by a line whose root is therefore left of the root of f;
    Newton from the larger of the two climbs monotonically to it (a concave function's tangent lies above it).
    """
    if family == CHINCHILLA:
        e, a, b, al, be = p[0], p[1], p[2], p[3], p[4]
        lg, lb = math.log(g), math.log(b)
        x = (be * c - lb + lg + math.log(a)) / (al + be)
        if e > 0.0:
            x = max(x, c - (lb - lg - math.log(e)) / be)
        for _ in range(100):
            u = a * math.exp(-al * x)
            f = lb - be * (c - x) - lg - math.log(e + u)
            step = f / (be + al * u / (e + u))
            x -= step
            if not (abs(step) > 1e-15 * (1.0 + abs(x))):  # converged, or NaN
                break
        return x
    lnk, r = gap_line(family, p, g)
    return (c - lnk) / (1.0 + r)


@njit(**JIT)
def initial_x(family, p, c, lk=None):
    """Where Newton starts. For families with a closed form that is the closed form itself; data_constrained
    starts from the chinchilla optimum of its base constants (exact when data is unlimited)."""
    if family == DATA_CONSTRAINED:
        return closed_form_x(CHINCHILLA, p, c)
    if family == KAPLAN_STEPS:  # Kaplan's Table 6 frontier, N = 1.3e9 (C_min / PF-day)^0.73 (Kaplan et al. 2020, Table 6)
        return math.log(1.3e9) + 0.73 * (c + math.log(FLOPS_PER_PARAM_TOKEN) - math.log(PF_DAY))
    return closed_form_x(family, p, c, lk)


@njit(**PJIT)
def loss_points(family, p, n, d, out):
    """out[i] = L(n[i], d[i]) for point lists."""
    for i in prange(n.size):
        out[i] = loss_point(family, p, n[i], d[i])


def loss_array(family, p, n, d):
    out = np.empty(n.shape, dtype=np.float64)
    loss_points(family, p, np.ascontiguousarray(n, dtype=np.float64), np.ascontiguousarray(d, dtype=np.float64), out)
    return out
