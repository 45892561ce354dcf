"""Approach 3 estimators and validation: the screened search against the exhaustive grid, each estimator against a
scipy reference on the same objective, per-run weights, holdout / leave-one-budget-out / fit_compare, the
diagnostics, and (at the end) the CLI options that come with them."""

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalesweep as ss
from scalesweep import fit as F

from . import reference as ref
from .helpers import assert_one_line_error, run
from .test_fit import TRUE, runs  # the same synthetic runs as the fit's own tests

TRUE_K = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.0763, "alpha_D": 0.1037}
SMALL_GRID = {"a": [0.0, 10.0, 20.0], "b": [0.0, 10.0, 20.0], "e": [-1.0, 1.0], "alpha": [0.0, 1.0],
              "beta": [0.0, 1.0]}  # 72 starts


def logs(N, D, L):
    return np.log(N), np.log(D), np.log(L)


# ----------------------------------------------------------------------------- screened search vs the full grid


@pytest.mark.parametrize("family, n, noise, seed", [
    ("chinchilla", 120, 0.005, 0), ("chinchilla", 120, 0.02, 1), ("chinchilla", 240, 0.05, 2),
    ("chinchilla", 60, 0.01, 3), ("kaplan", 100, 0.01, 0)])
def test_screened_search_reaches_the_full_grids_best(family, n, noise, seed):
    N, D, L = runs(n, noise, seed, law=TRUE if family == "chinchilla" else TRUE_K, family=family)
    full = F.fit(N, D, L, family=family, search="full")
    screened = F.fit(N, D, L, family=family)
    assert screened.info["search"] == "screened" and full.info["starts_run"] == full.info["starts"]
    assert screened.info["starts_run"] < full.info["starts"]  # it did skip starts
    assert screened.info["objective_value"] == pytest.approx(full.info["objective_value"], rel=1e-12)
    for k, v in full.law.params.items():
        assert screened.law.params[k] == pytest.approx(v, rel=1e-5), k
    # and the objective reported is the reference objective of the law reported
    theta = F.params_to_theta(family, screened.law.params)
    assert ref.fit_objective(family, theta, *logs(N, D, L)) == pytest.approx(screened.info["objective_value"],
                                                                             rel=1e-9)


def test_screened_search_on_the_bundled_runs_matches_the_full_grid():
    df = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "example_runs.csv")
    args = (df.params.to_numpy(), df.tokens.to_numpy(), df.loss.to_numpy())
    full = F.fit(*args, search="full")
    screened = F.fit(*args)
    assert screened.info["objective_value"] == pytest.approx(full.info["objective_value"], rel=1e-12)


def test_screened_search_does_not_depend_on_the_thread_count():
    N, D, L = runs(120, 0.02, 5)
    ss.set_threads(1)
    try:
        a = F.fit(N, D, L)
    finally:
        ss.set_threads(None)
    b = F.fit(N, D, L)
    assert a.law.params == b.law.params and a.info["starts_run"] == b.info["starts_run"]
    assert a.info["objective_value"] == b.info["objective_value"]


def test_screened_search_runs_the_starts_in_order_of_their_objective(monkeypatch):
    """The starts handed to the optimiser come in batches of SCREEN_BATCH, lowest start objective first."""
    N, D, L = runs(80, 0.01, 4)
    seen = []
    real = F.kfit.multistart

    def spy(fam, starts, *rest):
        seen.append(starts.copy())
        return real(fam, starts, *rest)

    monkeypatch.setattr(F.kfit, "multistart", spy)
    res = F.fit(N, D, L, grid=SMALL_GRID)
    ran = np.concatenate(seen[1:])  # seen[0] is the compile call
    assert len(ran) == res.info["starts_run"] and all(len(s) <= F.SCREEN_BATCH for s in seen[1:])
    f0 = [ref.fit_objective("chinchilla", s, *logs(N, D, L)) for s in ran]
    assert all(a <= b * (1 + 1e-12) for a, b in zip(f0, f0[1:])), f0


def test_search_option_is_checked():
    N, D, L = runs(30)
    with pytest.raises(ss.ScalesweepError, match="unknown search 'quick'"):
        F.fit(N, D, L, search="quick")
    with pytest.raises(ss.ScalesweepError, match=r"\-\-search needs \-\-method lbfgs"):
        F.fit(N, D, L, method="vp", search="full")


# ------------------------------------------------------------------------------------- fixes: time, counts


def test_reported_seconds_leave_out_compilation(monkeypatch):
    """With the kernels compiled, a _compile that takes 0.4 s: reported apart, and not in the fit's seconds."""
    N, D, L = runs(60, 0.01, 1)
    for method in ("lbfgs", "vp"):
        F.fit(N, D, L, method=method)

    def slow_compile(method, bootstrap):
        time.sleep(0.4)
        return 0.4

    monkeypatch.setattr(F, "_compile", slow_compile)
    for method in ("lbfgs", "vp"):
        res = F.fit(N, D, L, method=method)
        assert res.info["compile_seconds"] == 0.4 and res.info["seconds"] < 0.4, method


def test_fitted_count_is_the_runs_actually_used():
    N, D, L = runs(245, 0.01, 2)
    res = F.fit(N, D, L, exclude_highest=5, grid=SMALL_GRID)
    assert res.n_fitted == 240 == res.info["n_fitted"] and res.info["n_points"] == 245
    w = np.ones(245)
    w[:7] = 0.0
    res = F.fit(N, D, L, exclude_highest=5, weights=w, grid=SMALL_GRID)
    expected = np.ones(245, dtype=bool)
    expected[:7] = False
    expected[np.argsort(-L, kind="stable")[:5]] = False
    assert res.n_fitted == int(expected.sum())
    assert "240 runs (5 excluded)" in repr(F.fit(N, D, L, exclude_highest=5, grid=SMALL_GRID))


def test_summary_lines_say_what_the_fit_did():
    N, D, L = runs(245, 0.01, 2)
    w = np.ones(245)
    w[:3] = 0.0
    res = F.fit(N, D, L, exclude_highest=5, weights=w, grid=SMALL_GRID)
    lines = res.summary_lines()
    assert lines[0].startswith(f"fitted chinchilla to {res.n_fitted} runs (5 excluded) (huber): E=")
    assert f"of {res.info['starts_run']} starts within 1e-6 of the best (screened search: " \
           f"{res.info['starts_run']} of the 72 in the grid run)" in lines[1]
    assert "kernels compiled or loaded in" in lines[1]
    lik = F.fit(N, D, L, estimator="huber-likelihood", grid=SMALL_GRID, holdout_top=10)
    text = "\n".join(lik.summary_lines())
    assert f"sigma {lik.info['sigma']:.4g}, log-likelihood" in text and "held out the 10 largest budgets" in text
    flagged = F.fit(N, D, L, grid={**SMALL_GRID, "alpha": [0.6, 1.0]})
    assert any(line.startswith("warning: optimum outside the start grid: alpha") for line in flagged.summary_lines())


def test_the_fit_module_calls_no_blas():
    """No np.linalg, np.dot, @ or scipy in the fit's Python or its kernels (numba routes those to BLAS, whose
    threads would compete with numba's): the linear algebra is by hand."""
    import ast
    import inspect

    import scalesweep.kernels.fit as kf

    for mod in (F, kf):
        for node in ast.walk(ast.parse(inspect.getsource(mod))):
            assert not (isinstance(node, ast.Attribute) and node.attr in ("linalg", "dot", "matmul")), mod.__name__
            assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)), mod.__name__
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.startswith("scipy") for n in names), mod.__name__


# -------------------------------------------------------------------------------- estimators vs scipy


def test_huber_likelihood_normaliser_and_gradient():
    from scalesweep.kernels import fit as kfit

    for delta in (1e-3, 0.5, 1.345, 3.0):
        assert kfit.huber_log_z(delta) == pytest.approx(ref.huber_log_normaliser(delta), rel=1e-12)
    N, D, L = runs(40, 0.02, 1)
    theta = np.append(F.params_to_theta("chinchilla", TRUE), math.log(0.015))
    for delta in (1e-3, 0.5, 1.345):
        g = np.empty(6)
        f = kfit.objective(ss.FAMILIES["chinchilla"].id, theta, *logs(N, D, L), np.ones(40), kfit.LOSS_HUBER_LIK, delta, 1.0, g)
        f_ref, g_ref = ref.fit_objective_and_gradient("chinchilla", theta, *logs(N, D, L), delta, "huber-likelihood")
        assert f == pytest.approx(f_ref, rel=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-12)
        if delta < 0.1:  # residuals cross the kink region |x| <= delta within any usable difference step
            continue
        for j in range(6):  # and the reference's gradient is its objective's
            h = 1e-6 * max(1.0, abs(theta[j]))
            tp, tm = theta.copy(), theta.copy()
            tp[j] += h
            tm[j] -= h
            fd = (ref.fit_objective("chinchilla", tp, *logs(N, D, L), delta, "huber-likelihood")
                  - ref.fit_objective("chinchilla", tm, *logs(N, D, L), delta, "huber-likelihood")) / (2 * h)
            assert g_ref[j] == pytest.approx(fd, rel=1e-5, abs=1e-8), j


@pytest.mark.parametrize("kwargs, loss", [
    ({"estimator": "huber-likelihood"}, "huber-likelihood"),
    ({"estimator": "huber-likelihood", "delta": 1.345}, "huber-likelihood"),
    ({"estimator": "huber", "asymmetry": 4.0}, "huber"),
    ({"estimator": "lad", "asymmetry": 0.5}, "lad"),
    ({"estimator": "huber", "weights": "ramp"}, "huber"),
])
def test_lbfgs_estimators_match_scipy_from_the_same_start(kwargs, loss):
    """scipy's L-BFGS-B on the reference objective, started where our search's best start was: the same minimum."""
    N, D, L = runs(80, 0.02, 7)
    kwargs = dict(kwargs)
    w = None
    if kwargs.get("weights") == "ramp":
        w = kwargs["weights"] = np.linspace(0.2, 3.0, 80)
    res = F.fit(N, D, L, grid=SMALL_GRID, **kwargs)
    delta = kwargs.get("delta", 1e-3)
    asym = kwargs.get("asymmetry", 1.0)
    x0 = np.array(res.info["best_start"])
    f_ref, x_ref = ref.fit_scipy_from("chinchilla", x0, *logs(N, D, L), delta, loss, w, asym)
    assert res.info["objective_value"] <= f_ref + 1e-8 * abs(f_ref)
    if loss != "lad":  # scipy's L-BFGS-B stalls on the non-smooth LAD objective: there only "never worse"
        assert res.info["objective_value"] == pytest.approx(f_ref, rel=1e-7)
        law_ref = F.theta_to_params("chinchilla", x_ref[:5])
        for k, v in law_ref.items():
            assert res.law.params[k] == pytest.approx(v, rel=1e-3), k
    theta = F.params_to_theta("chinchilla", res.law.params)
    if loss == "huber-likelihood":
        theta = np.append(theta, math.log(res.info["sigma"]))
        assert res.info["log_likelihood"] == -res.info["objective_value"]
    assert ref.fit_objective("chinchilla", theta, *logs(N, D, L), delta, loss, w, asym) == pytest.approx(
        res.info["objective_value"], rel=1e-9)


def test_likelihood_scale_is_the_residual_scale():
    """With delta in units of sigma large (1e3: a Gaussian likelihood), sigma is the RMS log residual and the law is
    the least-squares log-space fit: sigma^2 = mean r^2 at the optimum."""
    N, D, L = runs(100, 0.01, 8)
    res = F.fit(N, D, L, estimator="huber-likelihood", delta=1e3, grid=SMALL_GRID)
    r = res.residuals.log_residual.to_numpy()
    assert res.info["sigma"] == pytest.approx(math.sqrt(np.mean(r ** 2)), rel=1e-6)
    assert res.info["sigma"] == pytest.approx(0.01, rel=0.2)


def test_asymmetry_moves_the_law_below_the_runs():
    N, D, L = runs(100, 0.02, 9)
    sym = F.fit(N, D, L, grid=SMALL_GRID)
    asym = F.fit(N, D, L, grid=SMALL_GRID, asymmetry=10.0)
    over = lambda res: int((res.residuals.log_residual > 0).sum())  # noqa: E731
    assert over(asym) < over(sym)
    with pytest.raises(ss.ScalesweepError, match="--asymmetry applies to --estimator huber or lad, not ls-vp"):
        F.fit(N, D, L, method="vp", asymmetry=2.0)
    with pytest.raises(ss.ScalesweepError, match="--asymmetry must be"):
        F.fit(N, D, L, asymmetry=0.0)


@pytest.mark.parametrize("estimator", ["huber", "ls-vp", "huber-vp"])
def test_integer_weights_are_repeated_runs(estimator):
    """Weight 2 on a run is the run given twice (an independent check of the weights' meaning)."""
    N, D, L = runs(50, 0.01, 10)
    w = np.where(np.arange(50) % 3 == 0, 2.0, 1.0)
    rep = np.repeat(np.arange(50), w.astype(int))
    kw = {"grid": SMALL_GRID} if estimator == "huber" else {}
    a = F.fit(N, D, L, estimator=estimator, weights=w, **kw)
    b = F.fit(N[rep], D[rep], L[rep], estimator=estimator, **kw)
    assert a.info["objective_value"] == pytest.approx(b.info["objective_value"], rel=1e-9)
    for k, v in b.law.params.items():
        assert a.law.params[k] == pytest.approx(v, rel=1e-4), k


def test_weights_are_checked():
    N, D, L = runs(30)
    for w, needle in [(np.ones(29), "weights: 29 given for 30 runs"), (np.r_[-1.0, np.ones(29)], "row 1: -1.0"),
                      (np.r_[np.nan, np.ones(29)], "row 1: nan"), (np.zeros(30), "every weight is 0")]:
        with pytest.raises(ss.ScalesweepError, match=needle):
            F.fit(N, D, L, weights=w)


@pytest.mark.parametrize("estimator, noise, delta", [("huber-vp", 0.01, 0.02), ("huber-vp", 0.01, 1e-3),
                                                     ("huber-vp", 0.03, 0.05), ("ls-vp", 0.01, None)])
def test_vp_estimators_match_scipy(estimator, noise, delta):
    """Our variable projection's optimum against scipy (Powell / Nelder-Mead) on the five-parameter objective,
    started off it: scipy finds nothing lower, and (where the objective is smooth enough for scipy to converge:
    not the near-absolute-value delta = 1e-3) lands on the same parameters."""
    N, D, L = runs(100, noise, 11)
    res = F.fit(N, D, L, estimator=estimator, delta=delta)
    p = np.array([res.law.params[k] for k in ("E", "A", "B", "alpha", "beta")])
    f_own = ref.vp_objective(p, N, D, L, estimator, delta)
    assert f_own == pytest.approx(res.info["objective_value"], rel=1e-9)
    f_ref, p_ref = ref.vp_scipy_from(p * np.array([1.02, 0.9, 1.1, 1.01, 0.99]), N, D, L, estimator, delta)
    assert res.info["objective_value"] <= f_ref * (1 + 1e-7)
    if delta != 1e-3:
        np.testing.assert_allclose(p, p_ref, rtol=2e-3)


def test_huber_vp_recovers_a_law_through_outliers():
    N, D, L = runs(150, 0.002, 12)
    L = L.copy()
    L[::15] *= 1.3  # ten corrupted runs
    hv = F.fit(N, D, L, estimator="huber-vp")
    ls = F.fit(N, D, L, estimator="ls-vp")
    assert abs(hv.law.params["alpha"] - TRUE["alpha"]) < 0.01
    assert abs(hv.law.params["alpha"] - TRUE["alpha"]) < abs(ls.law.params["alpha"] - TRUE["alpha"])


def test_estimator_option_conflicts():
    N, D, L = runs(30)
    for kwargs, needle in [({"estimator": "nope"}, "unknown estimator 'nope'"),
                           ({"estimator": "huber", "objective": "lad"}, "--objective and --estimator exclude"),
                           ({"estimator": "huber-vp", "method": "lbfgs"}, "--estimator huber-vp is fitted by vp"),
                           ({"estimator": "ls-vp", "delta": 0.1}, "--delta needs --method lbfgs or --estimator"),
                           ({"estimator": "lad", "delta": 0.1}, "--delta needs --objective huber"),
                           ({"estimator": "huber-vp", "family": "kaplan"}, "--method vp does not fit the kaplan"),
                           ({"bootstrap_start": "grid"}, "--bootstrap-start needs --bootstrap"),
                           ({"bootstrap": 3, "bootstrap_start": "grid", "method": "vp"},
                            "--bootstrap-start grid needs --method lbfgs")]:
        with pytest.raises(ss.ScalesweepError, match=needle.replace("-", r"\-")):
            F.fit(N, D, L, **kwargs)


# ------------------------------------------------------------------------------------------- bootstrap


def test_full_grid_bootstrap_is_seeded_and_thread_independent():
    N, D, L = runs(60, 0.01, 6)
    ss.set_threads(1)
    try:
        a = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=6, seed=2, bootstrap_start="grid")
    finally:
        ss.set_threads(None)
    b = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=6, seed=2, bootstrap_start="grid")
    np.testing.assert_array_equal(a.samples, b.samples)
    assert "start grid" in a.extra["start"] and a.extra["seconds"] > 0
    # each resample's refit is the fit of that resample on its own (its multiplicities as repeated runs)
    rng = np.random.default_rng(2)
    draws = rng.integers(0, 60, size=(6, 60))
    for r in (0, 5):
        own = F.fit(N[draws[r]], D[draws[r]], L[draws[r]], grid=SMALL_GRID)
        got = dict(zip(own.law.params, a.samples[r], strict=True))
        for k, v in own.law.params.items():
            assert got[k] == pytest.approx(v, rel=1e-4), (r, k)


# ------------------------------------------------------------------------------------------- validation


def test_holdout_top_fits_on_the_rest_and_scores_the_largest_budgets():
    N, D, L = runs(90, 0.01, 13)
    res = F.fit(N, D, L, grid=SMALL_GRID, holdout_top=10)
    top = np.argsort(-(N * D))[:10]
    keep = np.setdiff1d(np.arange(90), top)
    rest = F.fit(N[keep], D[keep], L[keep], grid=SMALL_GRID)
    for k, v in rest.law.params.items():
        assert res.law.params[k] == pytest.approx(v, rel=1e-9), k
    assert res.n_fitted == 80
    h = res.holdout
    assert sorted(h.flops) == sorted(6 * N[top] * D[top])
    pred = ref.loss("chinchilla", rest.law.params, h.params.to_numpy(), h.tokens.to_numpy())
    np.testing.assert_allclose(h.predicted_loss, pred, rtol=1e-12)
    full = F.fit(N, D, L, grid=SMALL_GRID)
    np.testing.assert_allclose(h.n_opt, ref.closed_form_params("chinchilla", rest.law.params, h.flops), rtol=1e-6)
    np.testing.assert_allclose(h.n_opt_all_runs, ref.closed_form_params("chinchilla", full.law.params, h.flops),
                               rtol=1e-6)
    assert res.info["holdout"]["loss_rmse_log"] == pytest.approx(float(np.sqrt(np.mean(np.log(pred / h.loss) ** 2))))
    assert json.loads(json.dumps(res.to_dict()))["diagnostics"]["holdout"]["n_opt"] == h.n_opt.tolist()
    with pytest.raises(ss.ScalesweepError, match="--holdout-top 90 leaves no runs"):
        F.fit(N, D, L, holdout_top=90)


def test_leave_one_budget_out():
    """IsoFLOP-style runs at four budgets: each row is the fit without that budget, scored on it."""
    rng = np.random.default_rng(14)
    budgets = [1e18, 1e19, 1e20, 1e21]
    N = np.concatenate([np.geomspace(3e7, 3e9, 12) * (c / 1e19) ** 0.5 for c in budgets])
    C = np.repeat(budgets, 12)
    D = C / (6 * N)
    L = ref.loss("chinchilla", TRUE, N, D) * np.exp(rng.normal(0, 0.005, N.size))
    res = F.fit(N, D, L, grid=SMALL_GRID, cv="budgets")
    assert list(res.cv.flops) == budgets and list(res.cv.runs) == [12] * 4
    out = C == 1e21
    own = F.fit(N[~out], D[~out], L[~out], grid=SMALL_GRID)
    r = np.log(ref.loss("chinchilla", own.law.params, N[out], D[out]) / L[out])
    assert res.cv.rmse_log.iloc[3] == pytest.approx(float(np.sqrt(np.mean(r ** 2))), rel=1e-6)
    with pytest.raises(ss.ScalesweepError, match="unknown cross-validation 'runs'"):
        F.fit(N, D, L, cv="runs")
    with pytest.raises(ss.ScalesweepError, match="needs runs at 2 or more budgets"):
        F.cross_validate(N[:12], D[:12], L[:12], grid=SMALL_GRID)


def test_fit_compare_reports_likelihood_and_aic():
    N, D, L = runs(80, 0.01, 15)
    table = F.fit_compare(N, D, L, families=("chinchilla", "kaplan"), estimators=("huber", "ls-vp"), holdout_top=8)
    assert list(zip(table.family, table.estimator)) == [("chinchilla", "huber"), ("chinchilla", "ls-vp"),
                                                        ("kaplan", "huber")]  # kaplan has no vp
    row = table.iloc[1]
    law = {k: row[f"param_{k}"] for k in TRUE}
    top = np.argsort(-(N * D))[:8]
    keep = np.setdiff1d(np.arange(80), top)
    r = np.log(ref.loss("chinchilla", law, N[keep], D[keep]) / L[keep])
    s2 = np.mean(r ** 2)
    ll = -0.5 * r.size * (math.log(2 * math.pi * s2) + 1)
    assert row.log_likelihood_gaussian == pytest.approx(ll, rel=1e-9)
    assert row.aic == pytest.approx(2 * 6 - 2 * ll, rel=1e-9)
    rh = np.log(ref.loss("chinchilla", law, N[top], D[top]) / L[top])
    assert row.heldout_rmse_log == pytest.approx(float(np.sqrt(np.mean(rh ** 2))), rel=1e-9)


# ------------------------------------------------------------------------------------------- diagnostics


def test_residual_table_and_correlation_matrix():
    N, D, L = runs(100, 0.01, 16)
    res = F.fit(N, D, L, grid=SMALL_GRID, exclude_highest=2)
    t = res.residuals
    np.testing.assert_allclose(t.log_residual, np.log(ref.loss("chinchilla", res.law.params, N, D) / L), rtol=1e-9,
                               atol=1e-14)
    assert int((~t.fitted).sum()) == 2
    names, corr = res.correlation
    assert names == ["a", "b", "e", "alpha", "beta"]
    # independent: the Jacobian of the reference's log prediction by central differences, J'WJ, numpy's inverse
    theta = F.params_to_theta("chinchilla", res.law.params)
    w = t.weight.to_numpy()

    def pred(th):
        return np.log(ref.loss("chinchilla", F.theta_to_params("chinchilla", th), N, D))

    J = np.empty((100, 5))
    for j in range(5):
        h = 1e-6 * max(1, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        J[:, j] = (pred(tp) - pred(tm)) / (2 * h)
    cov = np.linalg.inv(J.T @ (w[:, None] * J))
    want = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(corr, want, atol=1e-6)
    assert np.abs(corr[3, 0]) > 0.9  # ln A and alpha trade off strongly on runs spanning two decades of N
    d = json.loads(json.dumps(res.to_dict()))["diagnostics"]
    assert d["correlation"]["names"] == names and len(d["residuals"]["log_residual"]) == 100
    assert res.info["starts_within_1e-6"] >= 1


def test_flags_name_a_grid_that_misses_the_optimum_and_a_parameter_at_its_bound():
    N, D, L = runs(80, 0.005, 17)
    res = F.fit(N, D, L, grid={**SMALL_GRID, "alpha": [0.6, 1.0]})
    assert any(f.startswith("optimum outside the start grid: alpha = 0.3") for f in res.info["flags"]), res.info
    assert F.fit(N, D, L, grid=SMALL_GRID).info["flags"] == []
    N, D, L = runs(80, 0.0, 18, law={**TRUE, "E": 0.0})
    vp = F.fit(N, D, L - 0.05, estimator="ls-vp")  # losses below any E >= 0 law: E hits its bound
    assert "E at its bound 0" in vp.info["flags"]


# ------------------------------------------------------------------------------------------- CLI
# These tests need the `fit` options and the `fit-compare` command of /tmp/cli_fit.diff applied to cli.py.


def _csv(tmp_path, n=60, seed=6, weights=False):
    N, D, L = runs(n, 0.01, seed)
    df = pd.DataFrame({"params": N, "tokens": D, "loss": L})
    if weights:
        df["w"] = np.where(np.arange(n) < 5, 0.0, 1.0)
    df.to_csv(tmp_path / "r.csv", index=False)
    return tmp_path / "r.csv"


GRID = ["--grid", "a=0,10,20", "--grid", "b=0,10,20", "--grid", "e=-1,1", "--grid", "alpha=0,1", "--grid", "beta=0,1"]


def test_cli_fit_prints_the_count_actually_fitted(tmp_path):
    csv = _csv(tmp_path, n=245)
    res = run(["fit", csv, "-o", tmp_path / "law.json", "--exclude-highest", "5", *GRID])
    assert "fitted chinchilla to 240 runs (5 excluded)" in res.stderr
    csv = _csv(tmp_path, n=60, weights=True)
    df = pd.read_csv(csv)
    used = (df.w > 0).to_numpy().copy()
    used[np.argsort(-df.loss.to_numpy(), kind="stable")[:2]] = False
    res = run(["fit", csv, "-o", tmp_path / "law.json", "--weights-column", "w", "--exclude-highest", "2", *GRID])
    assert f"to {used.sum()} runs (2 excluded)" in res.stderr, res.stderr
    assert json.loads((tmp_path / "law.json").read_text())["fit"]["n_fitted"] == used.sum() < 58


def test_cli_fit_estimators_and_search(tmp_path):
    csv = _csv(tmp_path)
    out = tmp_path / "law.json"
    df = pd.read_csv(csv)
    budgets = len(set(F.budget_groups(df.params, df.tokens)))
    for extra, check in [(["--estimator", "huber-likelihood"], lambda d: d["fit"]["sigma"] > 0),
                         (["--estimator", "huber-vp"], lambda d: d["fit"]["estimator"] == "huber-vp"),
                         (["--asymmetry", "3"], lambda d: d["fit"]["asymmetry"] == 3.0),
                         (["--search", "full"], lambda d: d["fit"]["starts_run"] == 72),
                         (["--holdout-top", "6"], lambda d: d["fit"]["holdout"]["held_out"] == 6),
                         (["--cv", "budgets"], lambda d: d["fit"]["cv"]["budgets"] == budgets)]:
        grid = [] if "huber-vp" in extra else GRID
        res = run(["fit", csv, "-o", out, *grid, *extra])
        assert check(json.loads(out.read_text())), (extra, res.stderr)
    res = run(["fit", csv, "-o", out, "--method", "vp"])
    assert "compile" in res.stderr  # the fit's own time, compilation reported apart
    assert_one_line_error(run(["fit", csv, "-o", out, "--estimator", "ls-vp", "--asymmetry", "2"], ok=False),
                          "--asymmetry applies to --estimator huber or lad", code=1)
    assert_one_line_error(run(["fit", csv, "-o", out, "--weights-column", "nope"], ok=False),
                          "has no column 'nope'", code=1)


def test_cli_fit_compare(tmp_path):
    csv = _csv(tmp_path)
    res = run(["fit-compare", csv, "--estimators", "huber,ls-vp", "--holdout-top", "6", *GRID, "-o",
               tmp_path / "cmp.csv"])
    df = pd.read_csv(tmp_path / "cmp.csv")
    assert list(df.estimator) == ["huber", "ls-vp"] and df.runs_fitted.tolist() == [54, 54] and {"aic", "heldout_rmse_log"} <= set(df.columns)
    assert "wrote" in res.stderr
