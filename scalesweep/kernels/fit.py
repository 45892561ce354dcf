"""Fitting laws to training runs: objectives with analytic gradients, L-BFGS, multi-start, variable projection.

Objectives (Hoffmann et al. 2022, arXiv:2203.15556, Eq. 3 and App. D.2; Besiroglu et al. 2024, arXiv:2404.10102, §3):

* chinchilla, theta = (a, b, e, alpha, beta):  r_i = LSE(a - alpha ln N_i, b - beta ln D_i, e) - ln L_i,
  so that A = e^a, B = e^b, E = e^e;
* kaplan (Eq. 1.5), theta = (ln N_c, ln D_c, alpha_N, alpha_D):
  r_i = alpha_D LSE((alpha_N/alpha_D)(ln N_c - ln N_i), ln D_c - ln D_i) - ln L_i;
* data_constrained (Muennighoff et al. 2023, arXiv:2305.16264, appendix), theta = (a, b, e, alpha, beta,
  ln R_D*, ln R_N*):  r_i = LSE(a - alpha ln N'_i, b - beta ln D'_i, e) - ln L_i, with the effective data D' and
  parameters N' of ``kernels/loss.py`` (``_dc_parts``) at run i's unique tokens U_i (``ln_u``; +inf: unlimited);

and the fit minimises  sum_i w_i k(r_i) rho(r_i)  with rho the Huber loss of width delta (``LOSS_HUBER``: r^2/2
inside |r| <= delta, delta(|r| - delta/2) outside), or |r| (``LOSS_LAD``); k(r) is ``asym`` for r > 0 (the law
predicts more loss than was measured) and 1 otherwise. ``LOSS_HUBER_LIK`` is the negative log-likelihood of
residuals with density exp(-rho(r/sigma)) / (sigma Z(delta)) (a Huber distribution of scale sigma), with
ln sigma the last entry of theta:  sum_i w_i k(r_i) [rho(r_i/sigma) + ln sigma + ln Z(delta)],
Z(delta) = sqrt(2 pi) (2 Phi(delta) - 1) + 2 exp(-delta^2/2) / delta. Weights are per-run weights times
multiplicities: 1 for every point, 0 for an excluded one, a bootstrap resample's counts. ``free`` (one entry per
theta entry, 1 or 0) zeroes the gradient of the entries a fit holds fixed (e.g. the base constants of a
data_constrained law given by a base law), so L-BFGS never moves them.

``lbfgs`` is a textbook limited-memory BFGS (Nocedal & Wright 2006, Alg. 7.4/7.5) with a backtracking Armijo
line search; updates that would break positive definiteness are skipped. ``multistart`` runs it from every
row of a start grid in parallel; each start is independent, so the result does not depend on the thread
count.

Variable projection (chinchilla): for fixed (alpha, beta) the model E + A N^-alpha + B D^-beta is linear in
(E, A, B), so those are solved exactly by non-negative least squares on the losses (3 unknowns: every active
set is tried), and only (alpha, beta) are searched. With a Huber width delta > 0 the projected objective is the
Huber loss of the relative residuals, its (E, A, B) found by iteratively reweighted non-negative least squares.
"""

import math

import numpy as np
from numba import njit, prange

from ..codes import CHINCHILLA, DATA_CONSTRAINED, KAPLAN
from . import JIT, PJIT

LOSS_HUBER = 0
LOSS_LAD = 1
LOSS_HUBER_LIK = 2  # scale-adjusted Huber likelihood: theta carries ln sigma as its last entry
# L-BFGS stops when an iteration lowers f by less than ftol*|f|, or the last STALL iterations together by
# less than STALL*ftol*|f|, or the largest gradient component is below GTOL, or f is below FABS (an exact
# fit: residuals at rounding level). The multi-start screens every start with FTOL_SCREEN (far tighter than
# scipy's default, which stops at an absolute decrease of 2.2e-9), then polishes the best one with
# FTOL_POLISH.
FTOL_SCREEN = 1e-9
FTOL_POLISH = 1e-15
STALL = 10
GTOL = 1e-12
FABS = 1e-28


# Dense linear algebra by plain loops: numba's np.dot, ``@`` and np.linalg call scipy's BLAS/LAPACK, and scipy is
# not a dependency (only a test extra). The vectors and matrices here are tiny (k <= 5), so loops lose nothing.


@njit(**JIT)
def _dot(a, b):
    """sum(a[i] * b[i]) of two 1-D arrays of the same length."""
    s = 0.0
    for i in range(a.size):
        s += a[i] * b[i]
    return s


@njit(**JIT)
def _solve(M, b, x):
    """Solve M x = b (n x n) by Gaussian elimination with partial pivoting (LU, as LAPACK's gesv); M and b are
    overwritten. Returns False, x untouched, when a pivot is zero or not finite (M singular or not finite)."""
    n = b.size
    for k in range(n):
        p = k
        big = abs(M[k, k])
        for i in range(k + 1, n):
            if abs(M[i, k]) > big:
                p = i
                big = abs(M[i, k])
        if not (big > 0.0 and math.isfinite(big)):
            return False
        if p != k:
            for j in range(n):
                M[k, j], M[p, j] = M[p, j], M[k, j]
            b[k], b[p] = b[p], b[k]
        for i in range(k + 1, n):
            m = M[i, k] / M[k, k]
            if m != 0.0:
                for j in range(k + 1, n):
                    M[i, j] -= m * M[k, j]
                b[i] -= m * b[k]
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= M[i, j] * x[j]
        x[i] = s / M[i, i]
    return True


@njit(**JIT)
def _rho(r, loss, delta):
    """(rho(r), rho'(r))."""
    if loss == LOSS_LAD:
        return abs(r), (1.0 if r > 0 else (-1.0 if r < 0 else 0.0))
    ar = abs(r)
    if ar <= delta:
        return 0.5 * r * r, r
    return delta * (ar - 0.5 * delta), (delta if r > 0 else -delta)


@njit(**JIT)
def huber_log_z(delta):
    """ln of the integral of exp(-rho(x)) over the real line, rho the Huber loss of width delta."""
    return math.log(math.sqrt(2.0 * math.pi) * math.erf(delta / math.sqrt(2.0))
                    + 2.0 * math.exp(-0.5 * delta * delta) / delta)


@njit(**JIT)
def _term(r, loss, delta, asym, inv_sigma, log_norm):
    """(value, d value / d r, d value / d ln sigma) of one point's term (before its weight)."""
    if loss == LOSS_HUBER_LIK:
        x = r * inv_sigma
        v, dv = _rho(x, LOSS_HUBER, delta)
        k = asym if r > 0.0 else 1.0
        return k * (v + log_norm), k * dv * inv_sigma, k * (1.0 - dv * x)
    v, dv = _rho(r, loss, delta)
    if r > 0.0:
        return asym * v, asym * dv, 0.0
    return v, dv, 0.0


@njit(**JIT)
def _kaplan_lse(theta, ln_n_i, ln_d_i):
    """The Kaplan law's log-sum-exp in log space at one run: (q = alpha_N/alpha_D, z1 = ln N_c - ln N, the two
    exponentials relative to their max, their sum, and ln[(N_c/N)^q + D_c/D])."""
    q = theta[2] / theta[3]
    z1 = theta[0] - ln_n_i
    u1 = q * z1
    u2 = theta[1] - ln_d_i
    mx = max(u1, u2)
    e1, e2 = math.exp(u1 - mx), math.exp(u2 - mx)
    s = e1 + e2
    return q, z1, e1, e2, s, mx + math.log(s)



@njit(**JIT)
def _decayed(ln_ratio, ln_r):
    """The excess of X over its useful amount U (ln_ratio = ln X/U > 0) decaying with constant R = e^ln_r:
    X' = U q with x = X/U - 1, q = 1 + R (1 - e^(-x/R)). Returns (ln q, d ln q / d ln R, e^(-x/R) (x + 1) / q),
    the last being d ln X'/d ln X."""
    r = math.exp(ln_r)
    x = math.exp(ln_ratio) - 1.0
    e = math.exp(-x / r)
    om = -math.expm1(-x / r)
    q = 1.0 + r * om
    return math.log(q), (r * om - x * e) / q, e * (x + 1.0) / q

@njit(**JIT)
def _dc_log_pred(theta, ln_n, ln_d, ln_u, jac):
    """ln L of the data_constrained law at one run (ln N, ln D, ln U; U the unique tokens available, +inf for
    unlimited) with theta = (a, b, e, alpha, beta, ln R_D*, ln R_N*); writes d ln L / d theta into ``jac``.

    As ``kernels/loss.py`` (``_dc_parts``): u = min(U, D) unique tokens used; beyond one epoch (D > U)
    D' = U q_D, q_D = 1 + R_D* (1 - exp(-R_D/R_D*)), R_D = D/U - 1; U_N = N_opt(u) with
    ln U_N = s = [ln(alpha A/(beta B)) + beta ln u]/alpha (the chinchilla-optimal size for u tokens); for N > U_N
    N' = U_N q_N, q_N = 1 + R_N* (1 - exp(-R_N/R_N*)), R_N = N/U_N - 1; otherwise N' = N (and D' = D within one
    epoch). Then ln L = LSE(t1, t2, t3), t1 = a - alpha ln N', t2 = b - beta ln D', t3 = e, and with p_k the
    softmax weights exp(t_k - ln L): d ln L = p1 dt1 + p2 dt2 + p3 de. The pieces, with x = R_D (R_N),
    R = R_D* (R_N*), q = q_D (q_N): d ln D'/d ln R = (R (1 - e^(-x/R)) - x e^(-x/R))/q, the same for N';
    d ln N'/ds = 1 - e^(-x/R) N/N'; alpha ds/d(a, b, alpha, beta) = (1, -1, 1/alpha - s, ln u - 1/beta)."""
    a, b, e, al, be = theta[0], theta[1], theta[2], theta[3], theta[4]
    if ln_d <= ln_u:
        ln_used, ln_dp, dd_r = ln_d, ln_d, 0.0
    else:
        ln_q, dd_r, _ = _decayed(ln_d - ln_u, theta[5])
        ln_used, ln_dp = ln_u, ln_u + ln_q
    s = (math.log(al) + a - math.log(be) - b + be * ln_used) / al
    if ln_n <= s:
        ln_np, dn_s, dn_r = ln_n, 0.0, 0.0
    else:
        ln_q, dn_r, shrink = _decayed(ln_n - s, theta[6])
        ln_np, dn_s = s + ln_q, 1.0 - shrink
    t1 = a - al * ln_np
    t2 = b - be * ln_dp
    mx = max(t1, max(t2, e))
    e1, e2, e3 = math.exp(t1 - mx), math.exp(t2 - mx), math.exp(e - mx)
    sm = e1 + e2 + e3
    p1, p2, p3 = e1 / sm, e2 / sm, e3 / sm
    # alpha * ds/d(a, b, alpha, beta) = (1, -1, 1/alpha - s, ln u - 1/beta)
    jac[0] = p1 * (1.0 - dn_s)
    jac[1] = p1 * dn_s + p2
    jac[2] = p3
    jac[3] = -p1 * (ln_np + dn_s * (1.0 / al - s))
    jac[4] = -p1 * dn_s * (ln_used - 1.0 / be) - p2 * ln_dp
    jac[5] = -p2 * be * dd_r
    jac[6] = -p1 * al * dn_r
    return mx + math.log(sm)


@njit(**JIT)
def objective(family, theta, ln_n, ln_d, ln_l, w, loss, delta, asym, grad, ln_u=None, free=None):
    """Weighted robust objective at theta; writes its gradient into ``grad`` and returns the value. ``ln_u``: ln of
    each run's unique tokens (data_constrained; None: unlimited); ``free``: 1 or 0 per theta entry, the gradient
    is 0 at the 0s (None: every entry free). Both are None for the families that do not need them, so that the
    common case compiles without them."""
    if family != CHINCHILLA and family != KAPLAN and family != DATA_CONSTRAINED:
        grad[:] = np.nan  # no fit objective for this family (the registry says so)
        return np.nan
    grad[:] = 0.0
    f = 0.0
    inv_sigma = 1.0
    log_norm = 0.0
    last = theta.size - 1
    if loss == LOSS_HUBER_LIK:
        inv_sigma = math.exp(-theta[last])
        log_norm = theta[last] + huber_log_z(delta)
    jac = np.empty(7)
    for i in range(ln_n.size):
        if w[i] == 0.0:
            continue
        if family == CHINCHILLA:
            t1 = theta[0] - theta[3] * ln_n[i]
            t2 = theta[1] - theta[4] * ln_d[i]
            t3 = theta[2]
            mx = max(t1, max(t2, t3))  # the largest term is exp(0) = 1: two exps, not three
            e1 = 1.0 if t1 == mx else math.exp(t1 - mx)
            e2 = 1.0 if t2 == mx else math.exp(t2 - mx)
            e3 = 1.0 if t3 == mx else math.exp(t3 - mx)
            s = e1 + e2 + e3
            r = mx + math.log(s) - ln_l[i]
            v, dv, ds = _term(r, loss, delta, asym, inv_sigma, log_norm)
            f += w[i] * v
            c = w[i] * dv / s
            grad[0] += c * e1
            grad[1] += c * e2
            grad[2] += c * e3
            grad[3] -= c * e1 * ln_n[i]
            grad[4] -= c * e2 * ln_d[i]
        elif family == KAPLAN:
            an, ad = theta[2], theta[3]
            q, z1, e1, e2, s, lse = _kaplan_lse(theta, ln_n[i], ln_d[i])
            r = ad * lse - ln_l[i]
            v, dv, ds = _term(r, loss, delta, asym, inv_sigma, log_norm)
            f += w[i] * v
            c = w[i] * dv
            w1, w2 = e1 / s, e2 / s
            grad[0] += c * an * w1
            grad[1] += c * ad * w2
            grad[2] += c * w1 * z1
            grad[3] += c * (lse - w1 * q * z1)
        else:  # DATA_CONSTRAINED
            lu = math.inf
            if ln_u is not None:
                lu = ln_u[i]
            r = _dc_log_pred(theta, ln_n[i], ln_d[i], lu, jac) - ln_l[i]
            v, dv, ds = _term(r, loss, delta, asym, inv_sigma, log_norm)
            f += w[i] * v
            c = w[i] * dv
            for j in range(7):
                grad[j] += c * jac[j]
        if loss == LOSS_HUBER_LIK:
            grad[last] += w[i] * ds
    if free is not None:
        for j in range(theta.size):
            if free[j] == 0.0:
                grad[j] = 0.0
    return f


@njit(**JIT)
def log_predictions(family, theta, ln_n, ln_d, out_pred, out_jac, ln_u=None):
    """ln L predicted at theta for every run, and its Jacobian d pred_i / d theta_j (rows: runs), from the same
    log-sum-exp forms as ``objective`` (``ln_u`` as there)."""
    jac = np.empty(7)
    for i in range(ln_n.size):
        if family == CHINCHILLA:
            t1 = theta[0] - theta[3] * ln_n[i]
            t2 = theta[1] - theta[4] * ln_d[i]
            t3 = theta[2]
            mx = max(t1, max(t2, t3))
            e1, e2, e3 = math.exp(t1 - mx), math.exp(t2 - mx), math.exp(t3 - mx)
            s = e1 + e2 + e3
            out_pred[i] = mx + math.log(s)
            out_jac[i, 0] = e1 / s
            out_jac[i, 1] = e2 / s
            out_jac[i, 2] = e3 / s
            out_jac[i, 3] = -e1 / s * ln_n[i]
            out_jac[i, 4] = -e2 / s * ln_d[i]
        elif family == KAPLAN:
            an, ad = theta[2], theta[3]
            q, z1, e1, e2, s, lse = _kaplan_lse(theta, ln_n[i], ln_d[i])
            out_pred[i] = ad * lse
            out_jac[i, 0] = an * e1 / s
            out_jac[i, 1] = ad * e2 / s
            out_jac[i, 2] = e1 / s * z1
            out_jac[i, 3] = lse - e1 / s * q * z1
        else:  # DATA_CONSTRAINED
            lu = math.inf
            if ln_u is not None:
                lu = ln_u[i]
            out_pred[i] = _dc_log_pred(theta, ln_n[i], ln_d[i], lu, jac)
            out_jac[i, :7] = jac


@njit(**JIT)
def lbfgs(family, theta0, ln_n, ln_d, ln_l, w, loss, delta, asym, maxiter, ftol, out, ln_u=None, free=None):
    """Minimise ``objective`` from theta0 (``ln_u`` and ``free`` as there: entries whose ``free`` is 0 stay put);
    writes the minimiser into ``out``, returns (f, iterations)."""
    k = theta0.size
    mem = 10
    S = np.zeros((mem, k))
    Y = np.zeros((mem, k))
    rho = np.zeros(mem)
    alpha = np.zeros(mem)
    x = theta0.copy()
    g = np.empty(k)
    f = objective(family, x, ln_n, ln_d, ln_l, w, loss, delta, asym, g, ln_u, free)
    if not math.isfinite(f):
        out[:] = x
        return f, 0
    xn = np.empty(k)
    gn = np.empty(k)
    d = np.empty(k)
    wsum = 0.0
    for i in range(w.size):
        wsum += w[i]
    stored = 0
    head = 0
    it = 0
    f_mark = f
    for it in range(1, maxiter + 1):
        # two-loop recursion: d = -H g
        d[:] = -g
        for j in range(stored):
            idx = (head - 1 - j) % mem
            a = rho[idx] * _dot(S[idx], d)
            alpha[idx] = a
            d -= a * Y[idx]
        if stored > 0:
            last = (head - 1) % mem
            d *= _dot(S[last], Y[last]) / _dot(Y[last], Y[last])
        for j in range(stored - 1, -1, -1):
            idx = (head - 1 - j) % mem
            b = rho[idx] * _dot(Y[idx], d)
            d += S[idx] * (alpha[idx] - b)
        slope = _dot(g, d)
        if not (slope < 0.0):  # not a descent direction: restart from steepest descent
            d[:] = -g
            slope = -_dot(g, g)
            stored = 0
            if slope == 0.0:
                break
        step = 1.0 if stored > 0 else min(1.0, 1.0 / math.sqrt(-slope))
        fn = np.inf
        ok = False
        for _ in range(60):  # backtracking Armijo
            xn[:] = x + step * d
            fn = objective(family, xn, ln_n, ln_d, ln_l, w, loss, delta, asym, gn, ln_u, free)
            if math.isfinite(fn) and fn <= f + 1e-4 * step * slope:
                ok = True
                break
            step *= 0.5
        if not ok:
            break
        s_vec = xn - x
        y_vec = gn - g
        sy = _dot(s_vec, y_vec)
        if sy > 1e-12 * _dot(y_vec, y_vec):
            S[head] = s_vec
            Y[head] = y_vec
            rho[head] = 1.0 / sy
            head = (head + 1) % mem
            stored = min(stored + 1, mem)
        df = f - fn
        x[:] = xn
        g[:] = gn
        f = fn
        # the likelihood can be 0 or negative: its tolerances are relative to |f| + the total weight, and it has
        # no exact-fit floor
        fscale = abs(f) + wsum if loss == LOSS_HUBER_LIK else abs(f)
        if it % STALL == 0:
            if f_mark - f <= STALL * ftol * fscale:
                break
            f_mark = f
        if df <= ftol * fscale or np.max(np.abs(g)) <= GTOL or (f <= FABS and loss != LOSS_HUBER_LIK):
            break
    out[:] = x
    return f, it


@njit(**PJIT)
def multistart(family, starts, ln_n, ln_d, ln_l, w, loss, delta, asym, maxiter, out_theta, out_f, ln_u=None,
               free=None):
    """L-BFGS from every row of ``starts``; results per start (in parallel, thread-count independent)."""
    for s in prange(starts.shape[0]):
        f, _ = lbfgs(family, starts[s], ln_n, ln_d, ln_l, w, loss, delta, asym, maxiter, FTOL_SCREEN, out_theta[s],
                     ln_u, free)
        out_f[s] = f if math.isfinite(f) else np.inf


@njit(**PJIT)
def start_values(family, starts, ln_n, ln_d, ln_l, w, loss, delta, asym, out_f, ln_u=None, free=None):
    """The objective at every row of ``starts`` (no optimisation; inf where it is not finite), in parallel."""
    for s in prange(starts.shape[0]):
        g = np.empty(starts.shape[1])
        f = objective(family, starts[s], ln_n, ln_d, ln_l, w, loss, delta, asym, g, ln_u, free)
        out_f[s] = f if math.isfinite(f) else np.inf


@njit(**PJIT)
def bootstrap_fits(family, theta0, ln_n, ln_d, ln_l, weights, loss, delta, asym, maxiter, out_theta, out_f, ln_u=None,
                   free=None):
    """Refit every resample (row of ``weights``: multiplicities) from theta0, in parallel."""
    for b in prange(weights.shape[0]):
        f, _ = lbfgs(family, theta0, ln_n, ln_d, ln_l, weights[b], loss, delta, asym, maxiter, FTOL_POLISH,
                     out_theta[b], ln_u, free)
        out_f[b] = f if math.isfinite(f) else np.inf


# --------------------------------------------------------------------------------- variable projection


@njit(**JIT)
def _solve_sub(G, h, mask, c):
    """Solve the normal equations restricted to the columns in ``mask`` (Cramer's rule, at most 3x3);
    other entries of c are 0. Returns False when the subsystem is singular."""
    c[:] = 0.0
    idx = np.empty(3, dtype=np.int64)
    m = 0
    for j in range(3):
        if (mask >> j) & 1:
            idx[m] = j
            m += 1
    if m == 1:
        i = idx[0]
        if G[i, i] <= 0.0:
            return False
        c[i] = h[i] / G[i, i]
        return True
    if m == 2:
        i, j = idx[0], idx[1]
        det = G[i, i] * G[j, j] - G[i, j] * G[j, i]
        if abs(det) <= 1e-14 * abs(G[i, i] * G[j, j]):
            return False
        c[i] = (h[i] * G[j, j] - G[i, j] * h[j]) / det
        c[j] = (G[i, i] * h[j] - G[j, i] * h[i]) / det
        return True
    det = (G[0, 0] * (G[1, 1] * G[2, 2] - G[1, 2] * G[2, 1]) - G[0, 1] * (G[1, 0] * G[2, 2] - G[1, 2] * G[2, 0])
           + G[0, 2] * (G[1, 0] * G[2, 1] - G[1, 1] * G[2, 0]))
    if abs(det) <= 1e-14 * abs(G[0, 0] * G[1, 1] * G[2, 2]):
        return False
    c[0] = (h[0] * (G[1, 1] * G[2, 2] - G[1, 2] * G[2, 1]) - G[0, 1] * (h[1] * G[2, 2] - G[1, 2] * h[2])
            + G[0, 2] * (h[1] * G[2, 1] - G[1, 1] * h[2])) / det
    c[1] = (G[0, 0] * (h[1] * G[2, 2] - G[1, 2] * h[2]) - h[0] * (G[1, 0] * G[2, 2] - G[1, 2] * G[2, 0])
            + G[0, 2] * (G[1, 0] * h[2] - h[1] * G[2, 0])) / det
    c[2] = (G[0, 0] * (G[1, 1] * h[2] - h[1] * G[2, 1]) - G[0, 1] * (G[1, 0] * h[2] - h[1] * G[2, 0])
            + h[0] * (G[1, 0] * G[2, 1] - G[1, 1] * G[2, 0])) / det
    return True


@njit(**JIT)
def _quad3(G, h, c):
    """c' G c - 2 c' h (3 unknowns): ||X c - y||^2 - ||y||^2 given G = X'X and h = X'y."""
    q = 0.0
    for i in range(3):
        gc = 0.0
        for j in range(3):
            gc += G[i, j] * c[j]
        q += c[i] * gc
    return q - 2.0 * (c[0] * h[0] + c[1] * h[1] + c[2] * h[2])


@njit(**JIT)
def nnls3(G, h):
    """min ||X c - y||^2 over c >= 0 given G = X'X (3x3) and h = X'y, exactly: the unconstrained solution if
    it is non-negative, else the best non-negative solution over every smaller active set."""
    c = np.zeros(3)
    if _solve_sub(G, h, 7, c) and c[0] >= 0.0 and c[1] >= 0.0 and c[2] >= 0.0:
        return c, _quad3(G, h, c)
    best = 0.0  # c = 0
    bc = np.zeros(3)
    for mask in (1, 2, 4, 3, 5, 6):
        if _solve_sub(G, h, mask, c) and c[0] >= 0.0 and c[1] >= 0.0 and c[2] >= 0.0:
            val = _quad3(G, h, c)  # ||Xc - y||^2 - ||y||^2
            if val < best:
                best = val
                bc[:] = c
    return bc, best


@njit(**JIT)
def vp_point(alpha, beta, ln_n, ln_d, y, w, delta, iters, out_c):
    """Projected objective at (alpha, beta) with the best (E, A, B) >= 0, which are written into ``out_c``:
    with delta <= 0 the weighted sum of squared residuals of L; with delta > 0 the weighted sum of Huber losses
    (width delta) of the relative residuals (pred - L) / L (``_vp_huber_from_columns``, ``iters`` rounds)."""
    x1 = np.empty(ln_n.size)
    x2 = np.empty(ln_d.size)
    for i in range(ln_n.size):
        x1[i] = math.exp(-alpha * ln_n[i])
        x2[i] = math.exp(-beta * ln_d[i])
    return _vp_any(x1, x2, y, w, delta, iters, out_c)


@njit(**JIT)
def _vp_any(x1, x2, y, w, delta, iters, out_c):
    if delta > 0.0:
        return _vp_huber_from_columns(x1, x2, y, w, delta, iters, out_c)
    return _vp_from_columns(x1, x2, y, w, out_c)


@njit(**JIT)
def _vp_huber_from_columns(x1, x2, y, w, delta, iters, out_c):
    """min over (E, A, B) >= 0 of sum_i w_i Huber_delta((E + A x1_i + B x2_i - y_i) / y_i), by iteratively
    reweighted non-negative least squares (each round minimises a quadratic majoriser of the Huber loss over the
    constraint set, so the objective never rises): weights w_i / y_i^2 times 1 inside |r_i| <= delta and
    delta / |r_i| outside. Stops after ``iters`` rounds, or when a round lowers the objective by no more than
    1e-15 of it (or not at all); returns the objective, its (E, A, B) in ``out_c``."""
    u = np.empty(y.size)
    for i in range(y.size):
        u[i] = w[i] / (y[i] * y[i])
    c = np.empty(3)
    best = np.inf
    for _ in range(iters):
        _vp_from_columns(x1, x2, y, u, c)
        f = 0.0
        for i in range(y.size):
            if w[i] == 0.0:
                continue
            r = (c[0] + c[1] * x1[i] + c[2] * x2[i] - y[i]) / y[i]
            v, _ = _rho(r, LOSS_HUBER, delta)
            f += w[i] * v
            u[i] = w[i] / (y[i] * y[i]) * (1.0 if abs(r) <= delta else delta / abs(r))
        if f < best:
            done = best - f <= 1e-15 * f
            best = f
            out_c[:] = c
            if done:
                break
        else:
            break
    return best


@njit(**JIT)
def _vp_from_columns(x1, x2, y, w, out_c):
    """Weighted least squares over (E, A, B) >= 0 given the power columns N^-alpha, D^-beta; the (E, A, B) go into
    ``out_c``, the weighted sum of squared residuals is returned."""
    G = np.zeros((3, 3))
    h = np.zeros(3)
    yy = 0.0
    for i in range(y.size):
        wi = w[i]
        if wi == 0.0:
            continue
        a, b = x1[i], x2[i]
        G[0, 0] += wi
        G[0, 1] += wi * a
        G[0, 2] += wi * b
        G[1, 1] += wi * a * a
        G[1, 2] += wi * a * b
        G[2, 2] += wi * b * b
        h[0] += wi * y[i]
        h[1] += wi * a * y[i]
        h[2] += wi * b * y[i]
        yy += wi * y[i] * y[i]
    G[1, 0], G[2, 0], G[2, 1] = G[0, 1], G[0, 2], G[1, 2]
    sc = np.empty(3)
    for j in range(3):
        sc[j] = 1.0 / math.sqrt(G[j, j]) if G[j, j] > 0 else 1.0
    for p in range(3):
        h[p] *= sc[p]
        for q in range(3):
            G[p, q] *= sc[p] * sc[q]
    c, val = nnls3(G, h)
    for j in range(3):
        out_c[j] = c[j] * sc[j]
    return max(yy + val, 0.0)


@njit(**PJIT)
def vp_grid(alphas, betas, ln_n, ln_d, y, w, delta, iters, out):
    """Projected objective over the (alpha, beta) grid (power columns computed once per alpha / beta)."""
    X2 = np.empty((betas.size, ln_d.size))
    for j in prange(betas.size):
        for i in range(ln_d.size):
            X2[j, i] = math.exp(-betas[j] * ln_d[i])
    for a in prange(alphas.size):
        x1 = np.empty(ln_n.size)
        for i in range(ln_n.size):
            x1[i] = math.exp(-alphas[a] * ln_n[i])
        c = np.empty(3)
        for j in range(betas.size):
            out[a, j] = _vp_any(x1, X2[j], y, w, delta, iters, c)


@njit(**JIT)
def vp_refine(a0, b0, step, ln_n, ln_d, y, w, delta, iters, tol):
    """Refine (alpha, beta) from a grid point by a compass (pattern) search on the projected objective:
    try +-step along each axis, move on improvement, halve the step otherwise, until step < tol."""
    c = np.empty(3)
    a, b = a0, b0
    f = vp_point(a, b, ln_n, ln_d, y, w, delta, iters, c)
    while step >= tol:
        moved = False
        for da, db in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
            if a + da <= 0.0 or b + db <= 0.0:
                continue
            fn = vp_point(a + da, b + db, ln_n, ln_d, y, w, delta, iters, c)
            if fn < f:
                a, b, f = a + da, b + db, fn
                moved = True
                break
        if not moved:
            step *= 0.5
    vp_point(a, b, ln_n, ln_d, y, w, delta, iters, c)
    return a, b, f, c


@njit(**JIT)
def sq_residuals(p, ln_n, ln_d, y, w):
    """Weighted sum of squared residuals of L = E + A N^-alpha + B D^-beta, computed directly."""
    f = 0.0
    for i in range(y.size):
        if w[i] != 0.0:
            r = p[0] + p[1] * math.exp(-p[3] * ln_n[i]) + p[2] * math.exp(-p[4] * ln_d[i]) - y[i]
            f += w[i] * r * r
    return f


@njit(**JIT)
def vp_polish(p0, ln_n, ln_d, y, w, maxiter):
    """Levenberg-Marquardt on all five parameters from p0 = (E, A, B, alpha, beta), with residuals computed
    directly (the projected objective loses precision to cancellation near an exact fit). Steps that would
    make a parameter negative are refused. Returns (p, f)."""
    p = p0.copy()
    f = sq_residuals(p, ln_n, ln_d, y, w)
    lam = 1e-3
    JtJ = np.empty((5, 5))
    Jtr = np.empty(5)
    jrow = np.empty(5)
    M = np.empty((5, 5))
    rhs = np.empty(5)
    step = np.empty(5)
    for _ in range(maxiter):
        JtJ[:] = 0.0
        Jtr[:] = 0.0
        for i in range(y.size):
            wi = w[i]
            if wi == 0.0:
                continue
            x1 = math.exp(-p[3] * ln_n[i])
            x2 = math.exp(-p[4] * ln_d[i])
            r = p[0] + p[1] * x1 + p[2] * x2 - y[i]
            jrow[0], jrow[1], jrow[2] = 1.0, x1, x2
            jrow[3], jrow[4] = -p[1] * x1 * ln_n[i], -p[2] * x2 * ln_d[i]
            for a in range(5):
                Jtr[a] += wi * jrow[a] * r
                for b in range(a, 5):
                    JtJ[a, b] += wi * jrow[a] * jrow[b]
        for a in range(5):
            for b in range(a):
                JtJ[a, b] = JtJ[b, a]
        improved = False
        for _ in range(30):
            M[:] = JtJ
            for a in range(5):
                M[a, a] += lam * JtJ[a, a] + 1e-300
                rhs[a] = -Jtr[a]
            if not _solve(M, rhs, step):  # singular or not finite: damp more
                lam *= 10.0
                continue
            pn = p + step
            if pn[0] >= 0.0 and pn[1] >= 0.0 and pn[2] >= 0.0 and pn[3] > 0.0 and pn[4] > 0.0:
                fn = sq_residuals(pn, ln_n, ln_d, y, w)
                if fn < f:
                    small = np.max(np.abs(step) / (np.abs(p) + 1e-300)) < 1e-15
                    p, f = pn, fn
                    lam = max(lam * 0.3, 1e-12)
                    improved = True
                    if small:
                        return p, f
                    break
            lam *= 10.0
        if not improved:
            break
    return p, f


@njit(**PJIT)
def vp_bootstrap(a0, b0, step, ln_n, ln_d, y, weights, delta, iters, tol, maxiter, out):
    """Variable-projection refit of every resample (rows of ``weights``: multiplicities) from (a0, b0): compass
    search, then (least squares, delta <= 0) Levenberg-Marquardt. Rows of ``out``: E, A, B, alpha, beta."""
    for r in prange(weights.shape[0]):
        a, b, _, c = vp_refine(a0, b0, step, ln_n, ln_d, y, weights[r], delta, iters, tol)
        if delta > 0.0:
            out[r, 0], out[r, 1], out[r, 2], out[r, 3], out[r, 4] = c[0], c[1], c[2], a, b
        else:
            p, _ = vp_polish(np.array([c[0], c[1], c[2], a, b]), ln_n, ln_d, y, weights[r], maxiter)
            out[r, :] = p
