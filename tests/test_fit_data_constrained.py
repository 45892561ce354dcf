"""Fitting the data-constrained law (Muennighoff et al. 2023) to multi-epoch runs through `fit`'s common path:
objective and gradient against the reference, recovery of known decay constants (noise-free and the synthetic
example file, within the bootstrap interval), the same optimum as scipy's least_squares, the CLI, and the check that
an allocation-rule law file spends C = 6ND."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalesweep as ss
from scalesweep import fit as F
from scalesweep.kernels import fit as kfit

from . import reference as ref
from .helpers import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_multi_epoch_runs.csv"
BASE = dict(ss.get_law("muennighoff2023").params)
FAMILY = "data_constrained"
# What data/make_examples.py generates the example with: the muennighoff2023 base constants and
# these decay constants (on no start grid).
EXAMPLE_TRUE = {**BASE, "R_D_star": 13.7, "R_N_star": 6.2}
BASE_FREE = np.array([False] * 5 + [True] * 2)  # theta entries a base law leaves to the fit: ln R_D*, ln R_N*


def multi_epoch_runs(law, n=60, noise=0.0, seed=0):
    """Runs with 1 to 60 epochs of 1e8 to 1e10 unique tokens, models of 1e7 to 3e9 parameters (log-uniform), the
    loss by the reference formula at each run's own unique tokens."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(math.log(1e7), math.log(3e9), n))
    U = np.exp(rng.uniform(math.log(1e8), math.log(1e10), n))
    D = U * np.exp(rng.uniform(0.0, math.log(60.0), n))
    L = ref.data_constrained_loss({**law, "U_D": U}, N, D) * (np.exp(rng.normal(0.0, noise, n)) if noise else 1.0)
    return N, D, U, L


def example():
    df = pd.read_csv(EXAMPLE)
    return tuple(df[c].to_numpy(dtype=np.float64) for c in ("params", "tokens", "unique_tokens", "loss"))


# ------------------------------------------------------------------------------------------ the objective


@pytest.mark.parametrize("delta", [1e-3, 0.5])
def test_objective_and_gradient_match_the_reference(delta):
    """The kernel's objective is the reference's (linear-space formula, per-run unique tokens) and its analytic
    gradient the reference's central differences, in both branches of N' and D' (runs below and above one epoch and
    U_N); with ``free`` the fixed entries' gradient is 0."""
    law = {**BASE, "R_D_star": 11.3, "R_N_star": 4.1}
    N, D, U, L = multi_epoch_runs(law, n=50, noise=0.02, seed=1)
    D[:10] = U[:10] * 0.5  # within one epoch
    assert (N > 1e9).any() and (N < 1e8).any()
    theta = F.params_to_theta(FAMILY, law) + np.array([0.1, -0.1, 0.05, 0.01, -0.02, 0.2, -0.2])
    logs = (np.log(N), np.log(D), np.log(L), np.ones(N.size), kfit.LOSS_HUBER, delta, 1.0)
    g = np.empty(7)
    f = kfit.objective(ss.FAMILIES[FAMILY].id, theta, *logs, g, ln_u=np.log(U))
    assert f == pytest.approx(ref.data_constrained_fit_objective(theta, N, D, U, L, delta), rel=1e-12)
    for j in range(7):
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        fd = (ref.data_constrained_fit_objective(tp, N, D, U, L, delta)
              - ref.data_constrained_fit_objective(tm, N, D, U, L, delta)) / (2 * h)
        assert g[j] == pytest.approx(fd, rel=1e-5, abs=1e-9), j
    g2 = np.empty(7)
    f2 = kfit.objective(ss.FAMILIES[FAMILY].id, theta, *logs, g2, ln_u=np.log(U), free=BASE_FREE.astype(float))
    assert f2 == f and (g2[:5] == 0).all() and (g2[5:] == g[5:]).all()


# ------------------------------------------------------------------------------------------ recovery


@pytest.mark.parametrize("base", ["muennighoff2023", "hoffmann2022"])
def test_noise_free_recovery_of_the_decay_constants_on_a_base_law(base):
    """Off-grid R_D*, R_N* on either base (a data_constrained preset or a chinchilla one): recovered to 1e-7, the
    base constants held exactly, U_D written as inf."""
    law = {**ss.get_law(base).params, "R_D_star": 23.1, "R_N_star": 3.7}
    law = {k: law[k] for k in ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star")}
    N, D, U, L = multi_epoch_runs(law)
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U, base_law=base)
    for k in ("R_D_star", "R_N_star"):
        assert res.law.params[k] == pytest.approx(law[k], rel=1e-7), k
    for k in ("E", "A", "B", "alpha", "beta"):
        assert res.law.params[k] == ss.get_law(base).params[k], k
    assert res.law.params["U_D"] == math.inf
    assert res.info["base_law"]["law"] == base and res.info["starts"] == 9
    assert res.correlation is not None and res.correlation[0] == ["ln_R_D_star", "ln_R_N_star"]


def test_noise_free_joint_recovery_of_all_seven_constants():
    """Without a base law every constant is fitted: off-grid values recovered to 1e-6."""
    law = {"E": 1.74, "A": 613.0, "B": 1210.0, "alpha": 0.337, "beta": 0.361, "R_D_star": 17.3, "R_N_star": 4.6}
    N, D, U, L = multi_epoch_runs(law, n=90, seed=3)
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U)
    for k, v in law.items():
        assert res.law.params[k] == pytest.approx(v, rel=1e-6), k
    assert "base_law" not in res.info and not res.info["flags"]


def test_example_file_recovers_the_decay_constants_within_the_bootstrap_interval():
    """The synthetic example (noise 0.004 nats): R_D* and R_N* of the generator within the 95% bootstrap interval
    and within 1% of it; the held base constants have no spread."""
    N, D, U, L = example()
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U, base_law="muennighoff2023", bootstrap=100, seed=0)
    data = res.to_dict()["bootstrap"]
    for k in ("R_D_star", "R_N_star"):
        lo, hi = data["percentiles"]["2.5"][k], data["percentiles"]["97.5"][k]
        assert lo < EXAMPLE_TRUE[k] < hi, (k, lo, hi)
        assert res.law.params[k] == pytest.approx(EXAMPLE_TRUE[k], rel=0.01), k
    se = res.standard_errors
    assert all(se[k] == 0.0 for k in ("E", "A", "B", "alpha", "beta")) and se["R_D_star"] > 0


def test_example_file_joint_fit_is_near_the_generator():
    """All seven constants from the example's 105 runs: each within 3% of the generator's."""
    N, D, U, L = example()
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U)
    for k in ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star"):
        assert res.law.params[k] == pytest.approx(EXAMPLE_TRUE[k], rel=0.03), k


@pytest.mark.parametrize("base", ["muennighoff2023", None])
def test_same_optimum_as_scipy_least_squares(base):
    """scipy's least_squares (Huber loss of the log residuals, numerical Jacobian, started at the generator's
    constants) and scalesweep's multi-start L-BFGS reach the same objective on the example to 1e-10."""
    N, D, U, L = example()
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U, base_law=base)
    f_ref, theta_ref = ref.data_constrained_fit_scipy(F.params_to_theta(FAMILY, EXAMPLE_TRUE), N, D, U, L,
                                                      free=BASE_FREE if base else None)
    f = res.info["objective_value"]
    assert f == pytest.approx(f_ref, rel=1e-10)
    theta = F.params_to_theta(FAMILY, res.law.params)
    assert ref.data_constrained_fit_objective(theta, N, D, U, L) == pytest.approx(f, rel=1e-12)
    np.testing.assert_allclose(theta, theta_ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("estimator", ["lad", "huber-likelihood"])
def test_other_lbfgs_estimators_fit_the_decay_constants(estimator):
    law = {**BASE, "R_D_star": 23.1, "R_N_star": 3.7}
    N, D, U, L = multi_epoch_runs(law, noise=0.002, seed=4)
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U, base_law="muennighoff2023", estimator=estimator)
    assert res.law.params["R_D_star"] == pytest.approx(23.1, rel=0.05)
    assert res.law.params["R_N_star"] == pytest.approx(3.7, rel=0.05)


def test_residuals_use_each_runs_unique_tokens():
    N, D, U, L = multi_epoch_runs({**BASE, "R_D_star": 23.1, "R_N_star": 3.7})
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U, base_law="muennighoff2023")
    np.testing.assert_allclose(res.residuals.predicted_loss, L, rtol=1e-12)
    assert np.abs(res.residuals.log_residual).max() < 1e-12


def test_holdout_and_cv_use_each_runs_unique_tokens():
    """--holdout-top and --cv on multi-epoch runs: the held-out losses and N_opt are the law's at each run's own
    U_D. Noise-free runs: the held-out fit is the generator, so every error is at rounding level; the table's
    N_opt is the data-constrained frontier's at that run's U_D, solved here independently by scipy."""
    from scipy.optimize import minimize_scalar

    true = {**BASE, "R_D_star": 23.1, "R_N_star": 3.7}
    N, D, U, L = multi_epoch_runs(true)
    res = F.fit(N, D, L, family=FAMILY, unique_tokens=U, base_law="muennighoff2023", holdout_top=8, cv="budgets")
    tab = res.holdout
    assert len(tab) == 8 and np.abs(tab.log_residual).max() < 1e-9
    assert np.abs(tab.n_opt_rel_error).max() < 1e-7
    i = int(np.argmax(tab.flops))
    u_i = U[np.flatnonzero((N == tab.params[i]) & (D == tab.tokens[i]))[0]]
    law = ss.get_law("muennighoff2023", **{k: true[k] for k in ("R_D_star", "R_N_star")}, U_D=float(u_i))
    c = float(tab.flops[i])
    best = minimize_scalar(lambda x: float(law.loss(np.exp(x), c / (6 * np.exp(x)))),
                           bounds=(np.log(1e3), np.log(c / 6) - 1), method="bounded", options={"xatol": 1e-10})
    assert tab.n_opt[i] == pytest.approx(np.exp(best.x), rel=1e-6)
    assert res.cv is not None and res.cv.rmse_log.max() < 1e-9


# ------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("kwargs, needle", [
    ({}, "fitting data_constrained needs each run's unique tokens (U_D): give --unique-tokens-column"),
    ({"family": "chinchilla", "unique_tokens": True}, "apply to data_constrained fits, not chinchilla"),
    ({"family": "chinchilla", "base_law": "hoffmann2022"}, "--base-law applies to data_constrained fits, not "
                                                           "chinchilla"),
    ({"unique_tokens": True, "base_law": "kaplan2020"}, "--base-law kaplan2020 is a kaplan law without E, A, B, "
                                                        "alpha, beta"),
    ({"unique_tokens": True, "method": "vp"}, "--method vp does not fit the data_constrained family"),
    ({"unique_tokens": True, "estimator": "huber-vp"}, "--method vp does not fit the data_constrained family"),
    ({"unique_tokens": True, "base_law": "muennighoff2023", "grid": {**F._fit_spec(FAMILY).grid, "a": [1.0]}},
     "--grid a: that axis is fixed by --base-law muennighoff2023"),
])
def test_refusals(kwargs, needle):
    N, D, U, L = multi_epoch_runs({**BASE, "R_D_star": 23.1, "R_N_star": 3.7}, n=20)
    kwargs = {"family": FAMILY, **kwargs}
    if kwargs.get("unique_tokens") is True:
        kwargs["unique_tokens"] = U
    with pytest.raises(ss.ScalesweepError, match=None) as exc:
        F.fit(N, D, L, **kwargs)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_bad_unique_tokens_are_refused():
    N, D, U, L = multi_epoch_runs({**BASE, "R_D_star": 23.1, "R_N_star": 3.7}, n=20)
    with pytest.raises(ss.ScalesweepError, match=r"unique tokens, row 3: 0.0; values must be > 0"):
        F.fit(N, D, L, family=FAMILY, unique_tokens=np.where(np.arange(20) == 2, 0.0, U))
    with pytest.raises(ss.ScalesweepError, match="unique tokens: 19 given for 20 runs"):
        F.fit(N, D, L, family=FAMILY, unique_tokens=U[:-1])


# ------------------------------------------------------------------------------------------ the CLI


def test_cli_fits_the_example_and_frontier_reads_the_law(tmp_path):
    """`fit --family data_constrained --base-law` writes a law file that `frontier --law-file --unique-tokens` reads;
    the law file's bootstrap and parameters are the API's."""
    out = tmp_path / "dc.json"
    res = run(["fit", EXAMPLE, "-o", out, "--family", FAMILY, "--unique-tokens-column", "unique_tokens",
               "--base-law", "muennighoff2023", "--bootstrap", "20", "--seed", "1"])
    assert "held at the base law muennighoff2023" in res.stderr
    assert "standard errors: R_D_star" in res.stderr and "U_D nan" not in res.stderr
    data = json.loads(out.read_text())
    api = F.fit(*example()[:2], example()[3], family=FAMILY, unique_tokens=example()[2], base_law="muennighoff2023",
                bootstrap=20, seed=1)
    assert data["parameters"] == {**api.law.params, "U_D": "inf"}
    assert data["fit"]["unique_tokens_column"] == "unique_tokens"
    law = ss.load_law_file(out)
    assert law.family == FAMILY and law.params["U_D"] == math.inf
    assert F.read_bootstrap(out)[1].shape == (20, 8)
    csv = run(["frontier", "--law-file", out, "--unique-tokens", "1e9", "--flops-range", "1e19:1e21:3", "-o", "-",
               "--format", "csv"]).stdout
    df = pd.read_csv(pd.io.common.StringIO(csv))
    assert df.feasible.all()
    want = ss.get_law(law, U_D=1e9).loss(df.params.to_numpy(), df.tokens.to_numpy())
    np.testing.assert_allclose(df.loss, want, rtol=1e-12)


def test_cli_joint_fit_and_base_law_from_a_file(tmp_path):
    """Without --base-law all seven are fitted; --base-law also takes a law file (here a chinchilla one)."""
    run(["fit", EXAMPLE, "-o", tmp_path / "joint.json", "--family", FAMILY, "--unique-tokens-column",
         "unique_tokens"])
    joint = json.loads((tmp_path / "joint.json").read_text())
    assert "base_law" not in joint["fit"]
    (tmp_path / "base.json").write_text(json.dumps({"family": "chinchilla", "parameters": {
        k: BASE[k] for k in ("E", "A", "B", "alpha", "beta")}}))
    run(["fit", EXAMPLE, "-o", tmp_path / "b.json", "--family", FAMILY, "--unique-tokens-column", "unique_tokens",
         "--base-law", tmp_path / "base.json"])
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["parameters"]["R_D_star"] == pytest.approx(13.7, rel=0.01)
    assert b["fit"]["base_law"]["law"] == "base.json"


@pytest.mark.parametrize("args, needle", [
    (["--family", FAMILY], "needs each run's unique tokens (U_D): give --unique-tokens-column"),
    (["--family", FAMILY, "--unique-tokens-column", "nope"], "has no column 'nope'"),
    (["--family", FAMILY, "--unique-tokens-column", "loss", "--base-law", "nope2023"], "unknown law 'nope2023'"),
    (["--unique-tokens-column", "unique_tokens"], "apply to data_constrained fits, not chinchilla"),
    (["--family", FAMILY, "--unique-tokens-column", "unique_tokens", "--method", "vp"],
     "--method vp does not fit the data_constrained family"),
])
def test_cli_errors_are_one_line(tmp_path, args, needle):
    res = run(["fit", EXAMPLE, "-o", tmp_path / "x.json", *args], ok=False)
    assert_one_line_error(res, needle, code=1)
    assert not (tmp_path / "x.json").exists()


def test_cli_refuses_bad_unique_tokens(tmp_path):
    (tmp_path / "r.csv").write_text("params,tokens,unique_tokens,loss\n1e8,1e9,1e9,3.1\n1e8,2e9,-1,3.0\n")
    res = run(["fit", tmp_path / "r.csv", "-o", tmp_path / "x.json", "--family", FAMILY, "--unique-tokens-column",
               "unique_tokens"], ok=False)
    assert_one_line_error(res, "row 2, column 'unique_tokens': -1.0 is not a number > 0", code=1)


def test_data_constrained_is_fittable_in_the_registry():
    assert FAMILY in F.FITTABLE
    assert "fit (lbfgs)" in ss.laws.describe()["families"][FAMILY]["answers"]


# ------------------------------------------------------------------------------------------ allocation rules


def _rule_file(path, **params):
    path.write_text(json.dumps({"family": "allocation_rule", "parameters": params}))
    return path


def test_allocation_rule_law_files_that_spend_6nd_load(tmp_path):
    g = 0.1189
    ok = ss.load_law_file(_rule_file(tmp_path / "a.json", N_coef=g, N_exp=0.4969, D_coef=1 / (6 * g),
                                     D_exp=1 - 0.4969, C_unit=1.0))
    assert ok.family == "allocation_rule"
    # per C_unit: N D = N_coef D_coef C / C_unit
    ss.load_law_file(_rule_file(tmp_path / "b.json", N_coef=1.3e9, N_exp=0.73, D_coef=8.64e19 / (6 * 1.3e9),
                                D_exp=0.27, C_unit=8.64e19))
    # a coefficient of 0 (taken from C = 6ND) and exponents that do not sum to 1 are not checked
    ss.load_law_file(_rule_file(tmp_path / "c.json", N_coef=0.0, N_exp=0.0, D_coef=0.299, D_exp=0.537, C_unit=1.0))
    ss.load_law_file(_rule_file(tmp_path / "d.json", N_coef=0.1, N_exp=0.5, D_coef=3.0, D_exp=0.6, C_unit=1.0))
    # fit-isoflop's law file passes
    out = tmp_path / "iso.json"
    run(["fit-isoflop", ROOT / "data" / "example_isoflop_runs.csv", "-o", out, "--bootstrap", "0"])
    ss.load_law_file(out)


def test_allocation_rule_law_file_that_does_not_spend_6nd_is_refused(tmp_path):
    bad = _rule_file(tmp_path / "bad.json", **ss.PRESETS["kaplan2020-table6"].params)  # 6ND = 1.8 C_min
    with pytest.raises(ss.ScalesweepError, match=r"6 N_coef D_coef / C_unit = 6 \* 1300000000.0 \* 20000000000.0 "
                                                 r"/ 8.64e\+19 = 1.80555556, not 1"):
        ss.load_law_file(bad)
    res = run(["frontier", "--law-file", bad, "--flops-range", "1e20:1e22:3"], ok=False)
    assert_one_line_error(res, "so the rule's N and D do not spend C = 6ND", code=1)
    off = _rule_file(tmp_path / "off.json", N_coef=0.1189, N_exp=0.5, D_coef=1.0001 / (6 * 0.1189), D_exp=0.5,
                     C_unit=1.0)
    assert_one_line_error(run(["frontier", "--law-file", off, "--flops-range", "1e20"], ok=False), "= 1.0001,", code=1)


def test_fit_compare_in_python_counts_only_the_fitted_parameters():
    """fit_compare hands the unique tokens to the families that read them; AIC counts the parameters fitted (R_D*,
    R_N* on a base law; not U_D) plus sigma."""
    N, D, U, L = multi_epoch_runs({**BASE, "R_D_star": 23.1, "R_N_star": 3.7}, noise=0.01, seed=5)
    df = F.fit_compare(N, D, L, families=[FAMILY], estimators=["huber", "ls-vp"], unique_tokens=U,
                       base_law="muennighoff2023")
    assert df.estimator.tolist() == ["huber"]
    row = df.iloc[0]
    assert row.aic == pytest.approx(2 * 3 - 2 * row.log_likelihood_gaussian, rel=1e-12)


def test_fit_compare_on_the_command_line_reads_the_unique_tokens(tmp_path):
    """`fit-compare --unique-tokens-column` fits data_constrained beside chinchilla on the same runs: the same
    objective as `fit`, the decay constants as columns, and a far better AIC on multi-epoch runs (chinchilla
    cannot see the repeats); without the column it is one line naming the option."""
    out = tmp_path / "cmp.parquet"
    run(["fit-compare", EXAMPLE, "--families", f"chinchilla,{FAMILY}", "--estimators", "huber",
         "--unique-tokens-column", "unique_tokens", "-o", out])
    df = pd.read_parquet(out)
    assert df.family.tolist() == ["chinchilla", FAMILY]
    dc = df.set_index("family").loc[FAMILY]
    n, d, u, y = (pd.read_csv(EXAMPLE)[c].to_numpy() for c in ("params", "tokens", "unique_tokens", "loss"))
    alone = F.fit(n, d, y, family=FAMILY, unique_tokens=u)
    assert dc.objective == pytest.approx(alone.info["objective_value"], rel=1e-9)
    assert dc.param_R_D_star == pytest.approx(alone.law.params["R_D_star"], rel=1e-6)
    assert dc.aic < df.set_index("family").loc["chinchilla"].aic - 100
    assert math.isnan(df.set_index("family").loc["chinchilla"].param_R_D_star)
    res = run(["fit-compare", EXAMPLE, "--families", f"chinchilla,{FAMILY}"], ok=False)
    assert_one_line_error(res, "data_constrained needs each run's unique tokens: give --unique-tokens-column", code=2)
