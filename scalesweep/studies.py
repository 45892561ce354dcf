"""Studies of method error: how fine a grid must be, and how IsoFLOP experiments bias the fitted frontier.

``resolution``: for each resolution K (points per decade) the frontier found by grid search (the argmin
of the loss over a discrete log-spaced params grid, as a user of a coarse sweep would find it) and by a
K-per-decade lookup table, each against the exact solver.

``isoflop_sim``: Chinchilla's Approach 2 (Hoffmann et al. 2022, "Training Compute-Optimal Large Language
Models", arXiv:2203.15556, §3.2 and Table 2) on a known law. Each IsoFLOP curve is sampled at P log-spaced model sizes over a total width of W decades around the true
optimum (shifted by an offset), a parabola in log10 N is fitted per budget, and power laws N*(C), D*(C)
are fitted through the vertices and extrapolated to a target budget.

Why the exponent survives and the intercept does not (chinchilla law, noise-free): in v = log10 N - log10 N*
the loss on an IsoFLOP curve is E + K(C) (exp(-a' v)/alpha + exp(b' v)/beta) with a' = alpha ln 10,
b' = beta ln 10 and K(C) = alpha A N*^-alpha = beta B D*^-beta. The sampling grid is the same in v for every
budget and a least-squares parabola's vertex does not move when the data are scaled or shifted, so the
fitted vertex is v* + delta with the same delta for every budget: the fitted exponent is exact, every
intercept is off by delta. delta = 0 when alpha = beta (the curve is symmetric in v) and grows with the
width and with |alpha - beta|. Noise breaks the exact cancellation.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import questions
from .codes import FLOPS_PER_PARAM_TOKEN
from .errors import ScalesweepError
from .grid import LogRange
from .kernels.frontier import grid_search_kernel
from .laws import as_law
from .lookup import interpolate, lookup_budgets
from .tables import to_frame
from .validate import BYTES_PER_ROW_HELD, check_size, integer, number, positive_array

RESOLUTION_COLUMNS = ("method", "points_per_decade", "grid_points", "max_rel_error_params",
                      "median_rel_error_params", "max_rel_error_tokens", "median_rel_error_tokens",
                      "max_rel_error_loss", "median_rel_error_loss", "seconds")


# Why a family's frontier cannot be found by minimising its loss over model sizes, by frontier kind (laws.py).
NOT_SEARCHABLE = {
    "rule": "it is an allocation rule with no loss of its own, so there is no loss to minimise",
    "budget_loss": "its loss depends on the budget alone, so there is no optimum along an IsoFLOP curve",
}


def require_searchable(law, command: str) -> None:
    """Refuse, up front, a law whose frontier is not the minimum of its loss along each IsoFLOP curve: the
    grid search of ``resolution`` and the IsoFLOP parabolas of ``isoflop-sim`` need one."""
    why = law.spec.frontier_error(law.name, law.params)
    if why is not None:
        raise ScalesweepError(why)
    if law.spec.frontier != "solve":
        raise ScalesweepError(f"{command} cannot grid-search {law.name} (family {law.family}): "
                              f"{NOT_SEARCHABLE.get(law.spec.frontier, 'its frontier is not a loss minimum')}")


def _py_int(v):
    """numpy integers as Python ints (``validate.integer`` takes Python ints only); anything else unchanged."""
    return int(v) if isinstance(v, np.integer) else v


def _exact(law, flops):
    """The exact unconstrained frontier at ``flops`` as a DataFrame."""
    res = questions.frontier([law], positive_array(flops, "flops"))
    return to_frame(res.columns, res.rows)


def parse_int_list(text: str, option: str) -> list[int]:
    out = []
    for part in str(text).split(","):
        try:
            v = int(part)
        except ValueError:
            raise ScalesweepError(f"{option}: {part.strip()!r} is not a whole number") from None
        if v < 1:
            raise ScalesweepError(f"{option}: values must be >= 1, got {v}")
        out.append(v)
    if not out:
        raise ScalesweepError(f"{option}: no values")
    return out


def _errors(got: dict, exact, prefix_row: dict) -> dict:
    row = dict(prefix_row)
    for c in ("params", "tokens", "loss"):
        rel = np.abs(np.asarray(got[c]) / exact[c].to_numpy() - 1.0)
        row[f"max_rel_error_{c}"] = float(rel.max())
        row[f"median_rel_error_{c}"] = float(np.median(rel))
    return row


def default_params_range(law, flops) -> tuple[float, float]:
    """Whole decades from a decade below the smallest optimum to a decade above the largest."""
    ex = _exact(law, [float(np.min(flops)), float(np.max(flops))])
    lo = 10.0 ** (math.floor(math.log10(ex.params.min())) - 1)
    hi = 10.0 ** (math.ceil(math.log10(ex.params.max())) + 1)
    return lo, hi


def resolution(law, flops, points_per_decade, *, params_range=None, repeat: int = 3):
    """One row per (method, K): errors against the exact solver and the time taken (median of ``repeat``).

    ``grid``: argmin over a params grid with K points per decade spanning ``params_range`` (default: a decade
    beyond the optimum at either end of the budgets). ``lookup``: a K-per-decade table over the budgets'
    range, interpolated log-log. Unconstrained frontier.
    """
    import pandas as pd

    law = as_law(law)
    require_searchable(law, "resolution")
    flops = positive_array(flops, "flops")
    points_per_decade = [integer(_py_int(k), "--points-per-decade", 1) for k in points_per_decade]
    if not points_per_decade:
        raise ScalesweepError("--points-per-decade: no values")
    if params_range is not None:
        n_lo = number(params_range[0], "--params-range LO")
        n_hi = number(params_range[1], "--params-range HI")
        if not n_lo < n_hi:
            raise ScalesweepError(f"--params-range: LO ({n_lo:g}) must be less than HI ({n_hi:g})")
        params_range = (n_lo, n_hi)
    integer(repeat, "repeat", 1)
    exact = _exact(law, flops)
    n_lo, n_hi = params_range or default_params_range(law, flops)
    rows = []
    for k in points_per_decade:
        n_axis = lookup_budgets(n_lo, n_hi, k)
        idx = np.empty(flops.size, dtype=np.int64)
        grid_search_kernel(law.family_id, law.vector, flops[:1], FLOPS_PER_PARAM_TOKEN, n_axis, idx[:1])  # compile
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            grid_search_kernel(law.family_id, law.vector, flops, FLOPS_PER_PARAM_TOKEN, n_axis, idx)
            times.append(time.perf_counter() - t0)
        n = n_axis[idx]
        d = flops / (FLOPS_PER_PARAM_TOKEN * n)
        got = {"params": n, "tokens": d, "loss": law.loss(n, d)}
        rows.append(_errors(got, exact, {"method": "grid", "points_per_decade": k, "grid_points": n_axis.size,
                                         "seconds": float(np.median(times))}))
        lo, hi = float(flops.min()), float(flops.max())
        if lo < hi:
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                tf = lookup_budgets(lo, hi, k)
                table = _exact(law, tf)
                vals, _ = interpolate(tf, {c: table[c].to_numpy() for c in ("params", "tokens", "loss")},
                                      table.feasible.to_numpy(), flops)
                times.append(time.perf_counter() - t0)
            rows.append(_errors(vals, exact, {"method": "lookup", "points_per_decade": k, "grid_points": tf.size,
                                              "seconds": float(np.median(times))}))
    return pd.DataFrame(rows, columns=list(RESOLUTION_COLUMNS))


# ------------------------------------------------------------------------------------------ isoflop-sim

ISOFLOP_COLUMNS = ("trial", "exponent_params", "exponent_tokens", "true_exponent_params", "true_exponent_tokens",
                   "params_at_target", "exact_params_at_target", "params_bias", "tokens_at_target",
                   "exact_tokens_at_target", "tokens_bias", "failed_fits")


def _power_fit(log_c, log_y):
    """Least-squares slope and intercept of log_y on log_c (columns of log_y are independent fits)."""
    X = np.stack([log_c, np.ones_like(log_c)], axis=1)
    coef, *_ = np.linalg.lstsq(X, log_y, rcond=None)
    return coef[0], coef[1]


def isoflop_sim(law, budgets, *, points_per_curve: int = 9, width: float = 1.0, center_offset: float = 0.0,
                noise: float = 0.0, trials: int = 1, seed: int = 0, target_flops: float | None = None, progress=None):
    """Simulate Approach 2 on ``law``: one row per trial (see the module docstring); ``progress(done, total)`` is
    told the trials done.

    ``width`` and ``center_offset`` are in decades of params; ``noise`` is the standard deviation of
    Gaussian noise added to each sampled loss (nats/token). Budgets whose fitted parabola opens downward
    (possible with noise) are left out of that trial's power-law fit and counted in ``failed_fits``.
    """
    import pandas as pd

    law = as_law(law)
    require_searchable(law, "isoflop-sim")
    c = positive_array(budgets, "--budgets")
    if c.size < 2:
        raise ScalesweepError("--budgets: need at least 2 budgets to fit a power law, got 1")
    if np.unique(c).size < 2:
        raise ScalesweepError(f"--budgets: need at least 2 different budgets to fit a power law, got {c.size} "
                              f"equal ones ({c[0]:g})")
    integer(points_per_curve, "--points-per-curve (a parabola has 3 coefficients)", 3)
    width = number(width, "--width (decades of params)", "pos")
    center_offset = number(center_offset, "--center-offset", "finite")
    noise = number(noise, "--noise", "nonneg")
    integer(trials, "--trials", 1)
    seed = integer(_py_int(seed), "--seed", 0)  # numpy's generators take non-negative seeds only
    if noise == 0 and trials > 1:
        trials = 1  # without noise every trial is the same
    check_size("isoflop-sim points (budgets x --points-per-curve)", c.size * points_per_curve,
               bytes_held=8 * 8 * c.size * points_per_curve)  # n, d, loss, noise and fit temporaries
    check_size("isoflop-sim --trials", trials, bytes_held=BYTES_PER_ROW_HELD * trials)
    target = number(target_flops, "--target-flops", "pos") if target_flops is not None else 100.0 * float(c.max())
    exact = _exact(law, c)
    if not exact.feasible.all():
        raise ScalesweepError("the law has no finite optimum at some budget")
    ex_t = _exact(law, [target])
    lc = np.log10(c)
    true_a, _ = _power_fit(lc, np.log10(exact.params.to_numpy()))
    true_b, _ = _power_fit(lc, np.log10(exact.tokens.to_numpy()))
    v = center_offset + np.linspace(-width / 2, width / 2, points_per_curve)  # offsets from log10 N*, decades
    u = np.log10(exact.params.to_numpy())[:, None] + v[None, :]  # (budgets, points)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        n = 10.0**u
        d = c[:, None] / (FLOPS_PER_PARAM_TOKEN * n)
        clean = law.loss(n, d)
    if not ((n > 0) & np.isfinite(n) & (d > 0) & np.isfinite(d) & np.isfinite(clean)).all():
        raise ScalesweepError(f"--width {width:g} with --center-offset {center_offset:g} samples model sizes "
                              f"(10^{u.min():.3g} to 10^{u.max():.3g} params) where the loss is not finite; "
                              "use a narrower span closer to the optimum")
    # One least-squares operator for every curve: fit in v (the same abscissae for every budget).
    V = np.stack([v**2, v, np.ones_like(v)], axis=1)
    pinv = np.linalg.pinv(V)
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(trials):
        y = clean + (rng.normal(0.0, noise, clean.shape) if noise > 0 else 0.0)
        coef = y @ pinv.T  # (budgets, 3): a, b, c of a v^2 + b v + c
        ok = coef[:, 0] > 0
        vertex_u = np.log10(exact.params.to_numpy()) - coef[:, 1] / (2 * coef[:, 0])
        row = {"trial": trial, "failed_fits": int((~ok).sum()), "true_exponent_params": float(true_a),
               "true_exponent_tokens": float(true_b), "exact_params_at_target": float(ex_t.params[0]),
               "exact_tokens_at_target": float(ex_t.tokens[0])}
        if ok.sum() >= 2:
            a_n, b_n = _power_fit(lc[ok], vertex_u[ok])
            log_d = lc[ok] - math.log10(FLOPS_PER_PARAM_TOKEN) - vertex_u[ok]
            a_d, b_d = _power_fit(lc[ok], log_d)
            n_t = 10.0 ** (a_n * math.log10(target) + b_n)
            d_t = 10.0 ** (a_d * math.log10(target) + b_d)
            row.update(exponent_params=float(a_n), exponent_tokens=float(a_d), params_at_target=float(n_t),
                       tokens_at_target=float(d_t), params_bias=float(n_t / ex_t.params[0] - 1),
                       tokens_bias=float(d_t / ex_t.tokens[0] - 1))
        rows.append(row)
        if progress is not None:
            progress(trial + 1, trials)
    return pd.DataFrame(rows, columns=list(ISOFLOP_COLUMNS))


def budgets_from_range(text: str) -> np.ndarray:
    from .grid import parse_range

    r: LogRange = parse_range(text, "--budgets")
    return r.values()
