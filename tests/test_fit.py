"""Fitting laws to runs: objective and gradient, recovery of known laws, scipy comparison, bootstrap, bands."""

import ast
import inspect
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep import fit as F
from scalesweep.cli import cli
from scalesweep.kernels import fit as kfit

from . import reference as ref
from .helpers import assert_one_line_error, run

# Exponents that sit on no search grid, with Epoch-like E, A, B.
TRUE = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3391, "beta": 0.2849}
TRUE_K = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.0763, "alpha_D": 0.1037}
SMALL_GRID = {"a": [0.0, 10.0, 20.0], "b": [0.0, 10.0, 20.0], "e": [-1.0, 1.0], "alpha": [0.0, 1.0],
              "beta": [0.0, 1.0]}  # 72 starts
# 16 starts for the scipy comparison: on runs(n=80, noise=0.01, seed=3) they end in four different minima,
# a third of them in the best one, so the multi-start matters and scipy (analytic gradient) stays under 1 s.
REF_GRID = {"a": [0.0, 10.0], "b": [0.0, 10.0], "e": [-1.0, 1.0], "alpha": [1.0], "beta": [0.0, 1.0]}


def runs(n=120, noise=0.0, seed=0, law=TRUE, family="chinchilla"):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(math.log(7e7), math.log(1.6e10), n))
    D = np.exp(rng.uniform(math.log(5e9), math.log(5e11), n))
    L = ref.loss(family, law, N, D) * np.exp(rng.normal(0.0, noise, n) if noise else 0.0)
    return N, D, L


@pytest.mark.parametrize("family, theta", [("chinchilla", [6.1, 7.6, 0.6, 0.35, 0.29]),
                                           ("kaplan", [31.5, 30.6, 0.08, 0.1])])
@pytest.mark.parametrize("loss", ["huber", "lad"])
def test_objective_and_gradient(family, theta, loss):
    N, D, L = runs(40, noise=0.02, seed=1, law=TRUE if family == "chinchilla" else TRUE_K, family=family)
    ln_n, ln_d, ln_l = np.log(N), np.log(D), np.log(L)
    w = np.ones(N.size)
    fam = ss.FAMILIES[family].id
    code = F.OBJECTIVES[loss]
    theta = np.array(theta)
    g = np.empty(theta.size)
    f = kfit.objective(fam, theta, ln_n, ln_d, ln_l, w, code, 1e-3, 1.0, g)
    assert f == pytest.approx(ref.fit_objective(family, theta, ln_n, ln_d, ln_l, 1e-3, loss), rel=1e-12)
    for j in range(theta.size):  # central differences
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        fd = (ref.fit_objective(family, tp, ln_n, ln_d, ln_l, 1e-3, loss)
              - ref.fit_objective(family, tm, ln_n, ln_d, ln_l, 1e-3, loss)) / (2 * h)
        assert g[j] == pytest.approx(fd, rel=1e-5, abs=1e-9), j
    # and the kernel's gradient is the reference's hand-derived one
    _, g_ref = ref.fit_objective_and_gradient(family, theta, ln_n, ln_d, ln_l, 1e-3, loss)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("family", ["chinchilla", "kaplan"])
@pytest.mark.parametrize("loss", ["huber", "lad"])
def test_reference_gradient_matches_central_differences(family, loss):
    """The scipy reference's hand-derived gradient (what its L-BFGS-B is given) against central differences of
    its own objective: away from the law and at the true law (residuals = the noise, so with delta = 0.02 some
    fall inside the Huber region and some outside), with unit and with multiplicity weights (zeros included)."""
    law = TRUE if family == "chinchilla" else TRUE_K
    N, D, L = runs(40, noise=0.02, seed=1, law=law, family=family)
    ln_n, ln_d, ln_l = np.log(N), np.log(D), np.log(L)
    multiplicities = np.random.default_rng(7).integers(0, 3, N.size).astype(np.float64)
    thetas = [F.params_to_theta(family, law),
              [6.1, 7.6, 0.6, 0.35, 0.29] if family == "chinchilla" else [31.5, 30.6, 0.08, 0.1]]
    for theta in map(np.array, thetas):
        for delta in (1e-3, 2e-2):
            for w in (None, multiplicities):
                f, g = ref.fit_objective_and_gradient(family, theta, ln_n, ln_d, ln_l, delta, loss, w)
                assert f == ref.fit_objective(family, theta, ln_n, ln_d, ln_l, delta, loss, w)
                for j in range(theta.size):
                    h = 1e-6 * max(1.0, abs(theta[j]))
                    tp, tm = theta.copy(), theta.copy()
                    tp[j] += h
                    tm[j] -= h
                    fd = (ref.fit_objective(family, tp, ln_n, ln_d, ln_l, delta, loss, w)
                          - ref.fit_objective(family, tm, ln_n, ln_d, ln_l, delta, loss, w)) / (2 * h)
                    assert g[j] == pytest.approx(fd, rel=1e-5, abs=1e-9), (theta.tolist(), delta, w is None, j)


def test_noise_free_recovery_is_tight():
    N, D, L = runs()
    res = F.fit(N, D, L, grid=SMALL_GRID)
    for k, v in TRUE.items():
        assert res.law.params[k] == pytest.approx(v, rel=1e-8), k
    vp = F.fit(N, D, L, method="vp")
    for k, v in TRUE.items():
        assert vp.law.params[k] == pytest.approx(v, rel=1e-9), k


def test_kaplan_recovery():
    N, D, L = runs(family="kaplan", law=TRUE_K)
    res = F.fit(N, D, L, family="kaplan")
    for k, v in TRUE_K.items():
        assert res.law.params[k] == pytest.approx(v, rel=1e-6), k


def test_noisy_recovery_within_the_bootstrap_spread():
    N, D, L = runs(n=250, noise=0.005, seed=2)
    res = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=200, seed=5)
    se = np.std(res.samples, axis=0, ddof=1)
    for j, k in enumerate(("E", "A", "B", "alpha", "beta")):
        assert abs(res.law.params[k] - TRUE[k]) < 4 * se[j], k
    assert res.law.params["alpha"] == pytest.approx(TRUE["alpha"], abs=0.02)


def test_never_worse_than_scipy_multistart():
    N, D, L = runs(n=80, noise=0.01, seed=3)
    ln_n, ln_d, ln_l = np.log(N), np.log(D), np.log(L)
    res = F.fit(N, D, L, grid=REF_GRID)
    f_ref, _ = ref.fit_scipy_multistart("chinchilla", F.start_grid("chinchilla", REF_GRID), ln_n, ln_d, ln_l)
    assert res.info["objective_value"] <= f_ref * (1 + 1e-9)
    # and the reported objective is the objective of the reported law
    theta = F.params_to_theta("chinchilla", res.law.params)
    assert ref.fit_objective("chinchilla", theta, ln_n, ln_d, ln_l) == pytest.approx(res.info["objective_value"],
                                                                                    rel=1e-9)
    assert 1 <= res.info["starts_within_1e-6"] < res.info["starts"] == 16  # some starts end elsewhere


def test_vp_objective_is_least_squares_with_nonnegative_linear_part():
    from scipy.optimize import least_squares

    N, D, L = runs(n=100, noise=0.01, seed=4)
    vp = F.fit(N, D, L, method="vp")
    p = vp.law.params
    ref_fit = least_squares(lambda t: t[0] + t[1] * N ** -t[3] + t[2] * D ** -t[4] - L,
                            [p["E"], p["A"], p["B"], p["alpha"], p["beta"]], xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert vp.info["objective_value"] <= 2 * ref_fit.cost * (1 + 1e-9)  # scipy's cost is half the sum


def test_exclude_highest_drops_outliers():
    N, D, L = runs()
    L = L.copy()
    L[np.argsort(-L)[:3]] *= 1.5  # corrupt the three highest-loss runs
    res = F.fit(N, D, L, grid=SMALL_GRID, exclude_highest=3)
    assert res.law.params["alpha"] == pytest.approx(TRUE["alpha"], rel=1e-7)
    assert res.info["excluded_highest_loss"] == 3


def test_bootstrap_is_seeded_and_thread_independent():
    N, D, L = runs(n=60, noise=0.01, seed=6)
    ss.set_threads(1)
    a = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=50, seed=9)
    ss.set_threads(None)
    b = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=50, seed=9)
    c = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=50, seed=10)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    assert a.samples.shape == (50, 5) and np.isfinite(a.samples).all()


def test_law_file_round_trip_and_bands(tmp_path):
    N, D, L = runs(n=60, noise=0.01, seed=6)
    res = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=40, seed=1)
    F.write_law_file(tmp_path / "law.json", res)
    law = ss.load_law_file(tmp_path / "law.json")
    assert dict(law.params) == pytest.approx(dict(res.law.params), rel=1e-15)
    data = json.loads((tmp_path / "law.json").read_text())
    assert data["fit"]["n_points"] == 60 and len(data["bootstrap"]["samples"]) == 40
    flops = np.geomspace(1e19, 1e25, 7)
    bands = ss.api.frontier_bands(res.samples, "chinchilla", flops, [5, 50, 95], chunk_rows=100, max_params=3e10)
    # independent: each sample's frontier separately, then numpy percentiles
    per = np.array([ss.frontier(ss.get_law(law, **dict(zip(("E", "A", "B", "alpha", "beta"), s, strict=True))),
                                flops, max_params=3e10).params.to_numpy() for s in res.samples])
    np.testing.assert_allclose(bands.params_p50, np.percentile(per, 50, axis=0), rtol=1e-13)
    np.testing.assert_allclose(bands.params_p5, np.percentile(per, 5, axis=0), rtol=1e-13)
    assert (bands.params_p5 <= bands.params_p50).all() and (bands.params_p50 <= bands.params_p95).all()


def test_cli_fit_and_bands(tmp_path):
    N, D, L = runs(n=60, noise=0.01, seed=6)
    pd.DataFrame({"N": N, "C": 6 * N * D, "L": L}).to_csv(tmp_path / "runs.csv", index=False)
    args = ["fit", str(tmp_path / "runs.csv"), "-o", str(tmp_path / "law.json"), "--params-column", "N",
            "--flops-column", "C", "--loss-column", "L", "--bootstrap", "20", "--grid", "a=0,10,20",
            "--grid", "b=0,10,20", "--grid", "e=-1,1", "--grid", "alpha=0,1", "--grid", "beta=0,1"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "starts within 1e-6 of the best" in res.output
    res = CliRunner().invoke(cli, ["frontier", "--law-file", str(tmp_path / "law.json"), "--flops-range",
                                   "1e20:1e22:3", "--bands", "10,90", "-o", str(tmp_path / "f.parquet")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(tmp_path / "f.parquet")
    assert {"params_p10", "params_p90", "loss_p10", "feasible_fraction"} <= set(df.columns)
    assert_one_line_error(CliRunner().invoke(cli, ["frontier", "--flops-range", "1e20", "--bands", "5,95"]),
                          "--bands needs --law-file", code=2)
    (tmp_path / "plain.json").write_text(json.dumps({"preset": "hoffmann2022"}))
    assert_one_line_error(CliRunner().invoke(cli, ["frontier", "--law-file", str(tmp_path / "plain.json"),
                                                   "--flops-range", "1e20", "--bands", "5,95"]),
                          "has no usable bootstrap samples", code=1)


@pytest.mark.parametrize("csv, kwargs, needle", [
    ("params,tokens,loss\n1e8,1e9,3.0\n2e8,1e9,2.9\n3e8,2e9,2.8\n", {}, "too few points: 3 left to fit 5"),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 9 + "-1e8,1e9,3\n", {}, "row 10, column 'params'"),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 9 + "1e8,1e9,nan\n", {}, "row 10, column 'loss'"),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 9 + "1e8,abc,3\n", {}, "row 10, column 'tokens': 'abc'"),
    ("params,loss\n1e8,3.0\n", {}, "no column 'tokens'"),
    ("params,tokens,loss\n", {}, "has no rows"),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 10, {"--exclude-highest": "8"}, "too few points: 2 left"),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 10, {"--delta": "-1"}, "--delta must be"),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 10, {"--bootstrap": "1"}, "at least 2 resamples"),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 10, {"--grid": "zeta=1"}, "--grid expects NAME="),
    ("params,tokens,loss\n" + "1e8,1e9,3.0\n" * 10, {"--family": "kaplan", "--method": "vp"},
     "--method vp does not fit the kaplan family"),
])
def test_bad_input(tmp_path, csv, kwargs, needle):
    (tmp_path / "r.csv").write_text(csv)
    args = ["fit", str(tmp_path / "r.csv"), "-o", str(tmp_path / "law.json")]
    for k, v in kwargs.items():
        args += [k, v]
    assert_one_line_error(CliRunner().invoke(cli, args), needle, code=1)
    assert not (tmp_path / "law.json").exists()


def test_percentile_selection_matches_numpy():
    """The band kernel selects order statistics instead of sorting: it must equal np.nanpercentile."""
    import warnings

    from scalesweep.kernels.frontier import percentile_rows

    rng = np.random.default_rng(0)
    for trial in range(300):
        v = rng.normal(size=(int(rng.integers(1, 5)), int(rng.integers(1, 60))))
        if trial % 3 == 0:
            v = np.round(v, 1)  # ties
        if trial % 5 == 0:
            v[rng.random(v.shape) < 0.3] = np.nan  # infeasible samples
        qs = np.array([0.0, 50.0, 100.0]) if trial % 7 == 0 else np.sort(rng.uniform(0, 100, int(rng.integers(1, 6))))
        out = np.empty((v.shape[0], qs.size))
        percentile_rows(v, qs, out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expect = np.nanpercentile(v, qs, axis=1).T
        np.testing.assert_allclose(out, expect, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------ fitting without scipy
# scipy is a test extra, not a dependency: numba's np.dot, ``@`` and np.linalg need scipy's BLAS/LAPACK, so the
# fit kernels must not use them.

BLAS_LAPACK = ("dot", "vdot", "inner", "matmul", "tensordot", "linalg")


def test_fit_kernels_use_no_blas_or_lapack():
    """Source scan of the kernel module: no np.dot / np.vdot / np.inner / np.matmul / np.linalg / ``@``."""
    bad = []
    for node in ast.walk(ast.parse(inspect.getsource(kfit))):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult):
            bad.append(f"line {node.lineno}: @")
        elif isinstance(node, ast.Attribute) and node.attr in BLAS_LAPACK:
            bad.append(f"line {node.lineno}: .{node.attr}")
    assert not bad, f"scalesweep/kernels/fit.py needs scipy's BLAS/LAPACK under numba: {bad}"


NO_SCIPY = """
import importlib.abc
import sys


class NoScipy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError(f"scipy is blocked ({name})")
        return None


sys.meta_path.insert(0, NoScipy())
import numpy as np
from numba import njit


@njit
def control(a):
    return np.dot(a, a)


try:  # the block works: numba's np.dot needs scipy
    control(np.ones(3))
    print("CONTROL-NOT-BLOCKED")
    sys.exit(0)
except Exception:
    pass
from scalesweep.kernels import fit as k

rng = np.random.default_rng(0)
ln_n, ln_d = rng.uniform(18.0, 23.0, 12), rng.uniform(22.0, 26.0, 12)
y = 1.8 + 400.0 * np.exp(-0.34 * ln_n) + 410.0 * np.exp(-0.28 * ln_d)
w = np.ones(12)
theta = np.empty(5)
f, _ = k.lbfgs(0, np.array([6.0, 6.0, 0.5, 0.3, 0.3]), ln_n, ln_d, np.log(y), w, k.LOSS_HUBER, 1e-3, 1.0, 200,
               1e-15, theta)
a, b, _, c = k.vp_refine(0.3, 0.3, 0.02, ln_n, ln_d, y, w, 0.0, 1, 1e-7)
p, g = k.vp_polish(np.array([c[0], c[1], c[2], a, b]), ln_n, ln_d, y, w, 50)
assert "scipy" not in sys.modules
print("OK", f, g, *p)
"""


@pytest.mark.slow
def test_fit_kernels_compile_and_run_without_scipy(tmp_path):
    """The L-BFGS, NNLS and Levenberg-Marquardt kernels compiled from scratch (an empty numba cache) in a process
    where importing scipy fails, as on an install without the test extra; ~12 s of compilation."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(NO_SCIPY)], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    if "CONTROL-NOT-BLOCKED" in res.stdout:
        pytest.skip("this numba does not need scipy for np.dot: nothing to check beyond the source scan")
    assert res.returncode == 0 and res.stdout.startswith("OK"), res.stdout + res.stderr
    f, g, *p = map(float, res.stdout.split()[1:])
    assert f < 1e-20 and g < 1e-20  # noise-free runs: both methods fit them exactly
    np.testing.assert_allclose(p, [1.8, 400.0, 410.0, 0.34, 0.28], rtol=1e-8)


def test_linear_algebra_helpers_match_numpy():
    rng = np.random.default_rng(3)
    for n in (1, 3, 5):
        for _ in range(50):
            a, b = rng.normal(size=n), rng.normal(size=n)
            assert kfit._dot(a, b) == pytest.approx(float(np.dot(a, b)), rel=1e-12, abs=1e-14)
            m = rng.normal(size=(n, n))
            m = m @ m.T + 1e-3 * np.eye(n) if n == 5 else m  # LM's matrices are symmetric; others are general
            x = np.empty(n)
            assert kfit._solve(m.copy(), b.copy(), x)
            np.testing.assert_allclose(x, np.linalg.solve(m, b), rtol=1e-9, atol=1e-12)
    x = np.full(3, -7.0)  # singular or not finite: False, x untouched
    assert not kfit._solve(np.ones((3, 3)), np.ones(3), x) and (x == -7.0).all()
    assert not kfit._solve(np.full((3, 3), np.nan), np.ones(3), x) and (x == -7.0).all()
    assert not kfit._solve(np.zeros((2, 2)), np.ones(2), np.empty(2))
    g = rng.normal(size=(4, 3))
    G, h, c = g.T @ g, rng.normal(size=3), rng.normal(size=3)
    assert kfit._quad3(G, h, c) == pytest.approx(c @ G @ c - 2 * c @ h, rel=1e-12)


# ------------------------------------------------------------------------- options that would have no effect


def test_api_refuses_options_that_have_no_effect(tmp_path):
    N, D, L = runs(n=30)
    for kwargs, needle in [({"method": "vp", "delta": 1e-3}, "--delta needs --method lbfgs"),
                           ({"method": "vp", "grid": SMALL_GRID}, "--grid needs --method lbfgs"),
                           ({"objective": "lad", "delta": 1e-3}, "--delta needs --objective huber"),
                           ({"seed": 0}, "--seed needs --bootstrap"),
                           ({"seed": 3, "method": "vp"}, "--seed needs --bootstrap")]:
        with pytest.raises(ss.ScalesweepError, match=needle.replace("-", r"\-")):
            F.fit(N, D, L, **kwargs)
    pd.DataFrame({"params": N, "tokens": D, "flops": 6 * N * D, "loss": L}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(ss.ScalesweepError, match="exclude each other"):
        F.read_runs(tmp_path / "r.csv", tokens_column="tokens", flops_column="flops")
    # an explicit tokens column is never replaced by a flops column (it used to be, silently, when missing)
    pd.DataFrame({"params": N, "flops": 6 * N * D, "loss": L}).to_csv(tmp_path / "f.csv", index=False)
    with pytest.raises(ss.ScalesweepError, match="has no column 'T'"):
        F.read_runs(tmp_path / "f.csv", tokens_column="T")


def test_api_defaults_are_none_and_mean_the_documented_values(tmp_path):
    N, D, L = runs(n=40, noise=0.01, seed=6)
    a = F.fit(N, D, L, grid=SMALL_GRID)
    b = F.fit(N, D, L, grid=SMALL_GRID, delta=F.DEFAULT_DELTA)
    assert a.info["delta"] == F.DEFAULT_DELTA == 1e-3 and a.law.params == b.law.params
    assert F.fit(N, D, L, objective="lad", grid=SMALL_GRID).info["delta"] is None
    assert F.fit(N, D, L, method="vp").law.params["alpha"] > 0  # vp takes no delta, grid or seed
    c = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=5)
    d = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=5, seed=0)
    assert c.extra["seed"] == 0 and np.array_equal(c.samples, d.samples)
    # read_runs: tokens_column None is "tokens"; a file with only flops is read from flops
    pd.DataFrame({"params": N, "tokens": D, "loss": L}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"params": N, "flops": 6 * N * D, "loss": L}).to_csv(tmp_path / "f.csv", index=False)
    pd.DataFrame({"params": N, "T": D, "C": 6 * N * D, "loss": L}).to_csv(tmp_path / "tc.csv", index=False)
    for path, kwargs in [("t.csv", {}), ("t.csv", {"tokens_column": "tokens"}), ("f.csv", {}),
                         ("f.csv", {"flops_column": "flops"}), ("tc.csv", {"tokens_column": "T"}),
                         ("tc.csv", {"flops_column": "C"})]:
        _, d, _ = F.read_runs(tmp_path / path, **kwargs)
        np.testing.assert_allclose(d, D, rtol=1e-12, err_msg=f"{path} {kwargs}")


def _runs_csv(tmp_path, n=40):
    N, D, L = runs(n=n, noise=0.01, seed=6)
    pd.DataFrame({"params": N, "tokens": D, "flops": 6 * N * D, "loss": L}).to_csv(tmp_path / "r.csv", index=False)
    return tmp_path / "r.csv"


@pytest.mark.parametrize("extra, needle", [
    (["--method", "vp", "--delta", "0.01"], "--delta needs --method lbfgs"),
    (["--method", "vp", "--delta", "1e-3"], "--delta needs --method lbfgs"),  # the default value, given explicitly
    (["--objective", "lad", "--delta", "0.01"], "--delta needs --objective huber"),
    (["--tokens-column", "tokens", "--flops-column", "flops"], "--tokens-column and --flops-column exclude"),
    (["--seed", "3"], "--seed needs --bootstrap"),
    # NEEDS cli.py's fit_cmd to pass delta=None when --delta is not given (else "--delta needs" comes first):
    (["--method", "vp", "--grid", "alpha=0.5,1"], "--grid needs --method lbfgs"),
])
def test_cli_refuses_options_that_have_no_effect(tmp_path, extra, needle):
    out = tmp_path / "law.json"
    assert_one_line_error(run(["fit", _runs_csv(tmp_path), "-o", out, *extra], ok=False), needle, code=1)
    assert not out.exists()


def test_cli_options_without_explicit_values_work(tmp_path):
    """NEEDS cli.py's fit_cmd defaults --delta, --seed, --tokens-column = None (else every call refuses)."""
    csv = _runs_csv(tmp_path)
    grid = ["--grid", "a=0,10,20", "--grid", "b=0,10,20", "--grid", "e=-1,1", "--grid", "alpha=0,1", "--grid",
            "beta=0,1"]
    for extra, check in [([], lambda d: d["fit"]["delta"] == 1e-3),
                         (["--method", "vp"], lambda d: d["fit"]["method"] == "vp"),
                         (["--method", "vp", "--bootstrap", "4", "--seed", "2"], lambda d: d["bootstrap"]["seed"] == 2),
                         (["--objective", "lad"], lambda d: d["fit"]["delta"] is None),
                         (["--delta", "0.01"], lambda d: d["fit"]["delta"] == 0.01),
                         (["--bootstrap", "4"], lambda d: d["bootstrap"]["seed"] == 0),
                         (["--flops-column", "flops"], lambda d: d["fit"]["n_points"] == 40),
                         (["--tokens-column", "tokens"], lambda d: d["fit"]["n_points"] == 40)]:
        out = tmp_path / "law.json"
        run(["fit", csv, "-o", out, *(grid if "vp" not in extra else []), *extra])
        assert check(json.loads(out.read_text())), extra
        out.unlink()


# ---------------------------------------------------------------------------------------- law file names


def test_law_file_must_be_json(tmp_path):
    N, D, L = runs(n=30)
    res = F.fit(N, D, L, grid=SMALL_GRID)
    for name in ("law.toml", "law", "law.json.txt", "law.yaml"):
        with pytest.raises(ss.ScalesweepError, match="a law file is JSON; give a .json name"):
            F.check_law_path(tmp_path / name)
        with pytest.raises(ss.ScalesweepError, match="a law file is JSON"):
            F.write_law_file(tmp_path / name, res)
        assert not (tmp_path / name).exists()
    for name in ("-", tmp_path / "law.json", str(tmp_path / "LAW.JSON")):
        F.check_law_path(name)
    F.write_law_file(tmp_path / "law.json", res)
    assert json.loads((tmp_path / "law.json").read_text())["family"] == "chinchilla"


@pytest.mark.parametrize("name", ["law.toml", "law"])
def test_cli_law_file_must_be_json(tmp_path, name):
    """NEEDS cli.py's fit_cmd default --seed = None (else "--seed needs --bootstrap" comes first). write_law_file
    refuses the name after the fit; before it, once cli.py calls F.check_law_path."""
    res = run(["fit", _runs_csv(tmp_path), "-o", tmp_path / name, "--grid", "alpha=1"], ok=False)
    assert_one_line_error(res, f"-o {tmp_path / name}: a law file is JSON; give a .json name", code=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_cli_law_file_to_stdout(tmp_path):
    """NEEDS cli.py's fit_cmd default --seed = None (else "--seed needs --bootstrap")."""
    res = run(["fit", _runs_csv(tmp_path), "-o", "-", "--grid", "alpha=1"])
    assert json.loads(res.stdout)["family"] == "chinchilla"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


# A kaplan bootstrap whose first resample runs off along alpha_N -> 0, N_c -> inf (ln N_c ~ 785, past float64's
# ~709.78) for every seed-0 bootstrap size; the full-data fit is fine.
OVERFLOW_RUNS = """params,tokens,loss
1.04996e+10,4.86692e+09,2.7516
1.57573e+07,4.39123e+09,4.03757
8.83133e+09,2.95474e+09,2.88031
4.86692e+09,4.22168e+10,2.45808
1e+10,9.42207e+09,2.61997
1.77138e+10,2.96721e+09,2.84423
1.26648e+08,1e+09,3.72532
1.16066e+10,4.19758e+10,2.38529
7.75524e+08,1e+09,3.41802
2.4514e+10,5.51777e+09,2.68492
3.01675e+09,6.00227e+11,2.23594
1.09612e+08,8.83133e+09,3.23981
"""


def test_theta_to_params_past_float64_range_never_overflows():
    p = F.theta_to_params("kaplan", np.array([800.0, 30.0, 0.1, 0.2]))
    assert p["N_c"] == math.inf and p["D_c"] == math.exp(30.0) and (p["alpha_N"], p["alpha_D"]) == (0.1, 0.2)
    assert F.theta_to_params("kaplan", np.array([30.0, 800.0, 0.1, 0.2]))["D_c"] == math.inf
    with pytest.raises(ss.ScalesweepError, match="parameter 'N_c' must be finite, got inf"):
        ss.laws.validate_params("kaplan", p)
    # chinchilla's conversion too gives inf past float64's range (and 0 far below it); both are refused as laws
    p = F.theta_to_params("chinchilla", np.array([800.0, 5.0, 0.5, 0.3, 0.3]))
    assert p["A"] == math.inf and p["B"] == math.exp(5.0) and p["E"] == math.exp(0.5)
    assert F._invalid("chinchilla", p) == "parameter 'A' must be finite, got inf"
    p = F.theta_to_params("kaplan", np.array([-800.0, 30.0, 0.1, 0.2]))
    assert p["N_c"] == 0.0 and F._invalid("kaplan", p) == "parameter 'N_c' must be > 0, got 0.0"
    assert F._invalid("kaplan", F.theta_to_params("kaplan", np.array([30.0, 30.0, 0.1, 0.2]))) is None


def test_cli_kaplan_bootstrap_overflow_is_a_failed_resample(tmp_path):
    """A resample refit that overflows counts as failed, and any failed resample fails the bootstrap: a one-line
    error (exit 1), no law file. The same fit without --bootstrap writes its law file."""
    (tmp_path / "r.csv").write_text(OVERFLOW_RUNS)
    out = tmp_path / "k.json"
    res = run(["fit", tmp_path / "r.csv", "--family", "kaplan", "--bootstrap", "3", "-o", out], ok=False)
    assert_one_line_error(res, "1 of 3 bootstrap refits failed (first invalid refit: parameter 'N_c' must be finite, "
                          "got inf); the runs do not pin down the kaplan law on every resample", code=1)
    assert not out.exists()
    run(["fit", tmp_path / "r.csv", "--family", "kaplan", "-o", out])
    assert set(json.loads(out.read_text())["parameters"]) == {"N_c", "D_c", "alpha_N", "alpha_D"}


@pytest.mark.parametrize("family, grid, needle", [
    ("kaplan", ["ln_N_c=800", "ln_D_c=24.57", "alpha_N=0.0011", "alpha_D=0.32"],
     "the best fit is not a valid kaplan law (parameter 'N_c' must be finite, got inf); check the runs"),
    ("chinchilla", ["a=800", "b=5", "e=0.5", "alpha=80", "beta=0.3"],
     "the best fit is not a valid chinchilla law (parameter 'A' must be finite, got inf); check the runs"),
])
def test_cli_full_fit_past_float64_range_is_a_one_line_error(tmp_path, family, grid, needle):
    """A single start that stays past float64's range (N_c = e^800, A = e^800) is the best fit: refused."""
    (tmp_path / "r.csv").write_text(OVERFLOW_RUNS)
    args = [a for g in grid for a in ("--grid", g)]
    res = run(["fit", tmp_path / "r.csv", "--family", family, *args, "-o", tmp_path / "k.json"], ok=False)
    assert_one_line_error(res, needle, code=1)
    assert not (tmp_path / "k.json").exists()


def test_law_file_with_non_finite_samples_is_strict_json(tmp_path):
    """Samples are finite whenever fit() returns; a FitResult built by hand with inf samples still writes strict
    JSON ("inf" strings), which read_bootstrap refuses."""
    N, D, L = runs(n=30, noise=0.01, seed=2)
    res = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=4)
    res.samples[1, 1] = math.inf
    F.write_law_file(tmp_path / "law.json", res)

    def refuse(c):
        raise ValueError(c)

    data = json.loads((tmp_path / "law.json").read_text(), parse_constant=refuse)
    assert data["bootstrap"]["samples"][1][1] == "inf" and data["bootstrap"]["standard_errors"]["A"] == "nan"
    with pytest.raises(ss.ScalesweepError, match="bootstrap samples must be finite"):
        F.read_bootstrap(tmp_path / "law.json")


def test_bootstrap_refit_that_is_finite_but_not_a_law_fails_the_bootstrap(monkeypatch):
    """A refit whose N_c underflows to 0 (ln N_c = -800) is finite but no kaplan law: a failed resample, never a
    sample in the law file."""
    N, D, _ = runs(n=30, noise=0.01, seed=2)
    L = ss.get_law("kaplan2020").loss(N, D)
    real = F.kfit.bootstrap_fits

    def one_underflows(fam, theta0, ln_n, ln_d, ln_l, weights, objective, delta, asym, maxiter, th, fv):
        real(fam, theta0, ln_n, ln_d, ln_l, weights, objective, delta, asym, maxiter, th, fv)
        if th.shape[0] == 4:  # the resamples (not fit()'s two-run compile call)
            th[1, 0] = -800.0

    monkeypatch.setattr(F.kfit, "bootstrap_fits", one_underflows)
    with pytest.raises(ss.ScalesweepError, match=r"1 of 4 bootstrap refits failed \(first invalid refit: parameter "
                                                 r"'N_c' must be > 0, got 0.0\)"):
        F.fit(N, D, L, family="kaplan", bootstrap=4)


def test_bootstrap_batches_do_not_change_the_refits(monkeypatch):
    """Resamples are refitted in batches (progress is reported between them): any batch size gives the same samples,
    and progress is told 0 first and the count last."""
    N, D, L = runs(n=30, noise=0.01, seed=2)
    want = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=10, seed=3).samples
    monkeypatch.setattr(F, "BOOTSTRAP_BATCH", 3)
    seen = []
    got = F.fit(N, D, L, grid=SMALL_GRID, bootstrap=10, seed=3, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(got.samples, want)
    assert seen == [(0, 10), (3, 10), (6, 10), (9, 10), (10, 10)]
    got = F.fit(N, D, L, method="vp", bootstrap=10, seed=3)
    monkeypatch.setattr(F, "BOOTSTRAP_BATCH", 256)
    np.testing.assert_array_equal(F.fit(N, D, L, method="vp", bootstrap=10, seed=3).samples, got.samples)
