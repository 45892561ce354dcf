import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import scalesweep as ss
from scalesweep.codes import CONSTRAINT_NAMES
from scalesweep.kernels.frontier import newton_min, row_interval

from . import reference as ref

ALL_PRESETS = list(ss.PRESETS)
# Laws with a trade-off to optimise (allocation rules and single-variable laws are tested in test_rules.py).
PRESETS = [n for n in ALL_PRESETS if ss.PRESETS[n].family not in ("allocation_rule", "kaplan_single")]
# Presets whose family has a closed-form frontier (the data-constrained family is tested on its own).
CLOSED_FORM = [n for n in PRESETS if ss.PRESETS[n].family in ("chinchilla", "kaplan")]
SOLVERS = ["auto", "newton", "newton-midpoint"]
FLOPS = np.geomspace(1e12, 1e30, 181)


@pytest.mark.parametrize("name", CLOSED_FORM)
@pytest.mark.parametrize("solver", SOLVERS)
def test_unconstrained_matches_closed_form_to_1e_10(name, solver):
    law = ss.get_law(name)
    df = ss.frontier(law, FLOPS, solver=solver)
    expect_n = ref.closed_form_params(law.family, dict(law.params), FLOPS)
    assert df.feasible.all() and (df.active_constraint == "none").all()
    np.testing.assert_allclose(df.params, expect_n, rtol=1e-10, atol=0)
    np.testing.assert_allclose(df.tokens, FLOPS / (6 * expect_n), rtol=1e-10, atol=0)
    np.testing.assert_allclose(df.loss, ref.loss(law.family, dict(law.params), expect_n, FLOPS / (6 * expect_n)),
                               rtol=1e-13)
    np.testing.assert_allclose(df.tokens_per_param, df.tokens / df.params, rtol=0)


@given(
    alpha=st.floats(0.05, 2.0), beta=st.floats(0.05, 2.0), A=st.floats(1e-2, 1e6), B=st.floats(1e-2, 1e6),
    log_c=st.floats(math.log(1e10), math.log(1e32)), seed=st.floats(0.0, 1.0),
)
@settings(max_examples=300, deadline=None)
def test_newton_from_any_seed_finds_chinchilla_optimum(alpha, beta, A, B, log_c, seed):
    """The general solver, started anywhere in the domain, lands on the (clamped) closed form."""
    p = np.array([1.7, A, B, alpha, beta])
    c = log_c - math.log(6.0)
    lb = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf, np.inf])
    lo, _, hi, _ = row_interval(c, lb)
    x = newton_min(0, p, c, lo, hi, lo + seed * (hi - lo))
    n_star = ref.closed_form_params("chinchilla", {"alpha": alpha, "beta": beta, "A": A, "B": B}, math.exp(log_c))
    x_star = min(max(math.log(n_star), lo), hi)  # clamped to the domain N >= 1, D >= 1
    assert x == pytest.approx(x_star, rel=1e-10, abs=1e-10)


@given(
    alpha_n=st.floats(0.02, 0.5), alpha_d=st.floats(0.02, 0.5), log_nc=st.floats(20, 40), log_dc=st.floats(20, 40),
    log_c=st.floats(math.log(1e10), math.log(1e32)), seed=st.floats(0.0, 1.0),
)
@settings(max_examples=300, deadline=None)
def test_newton_from_any_seed_finds_kaplan_optimum(alpha_n, alpha_d, log_nc, log_dc, log_c, seed):
    # Keep N_c^r representable for the linear-space reference (r * ln N_c < 700); the kernel works in logs.
    assume(alpha_n / alpha_d * log_nc < 600)
    params = {"N_c": math.exp(log_nc), "D_c": math.exp(log_dc), "alpha_N": alpha_n, "alpha_D": alpha_d}
    p = np.array([params["N_c"], params["D_c"], alpha_n, alpha_d])
    c = log_c - math.log(6.0)
    lb = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf, np.inf])
    lo, _, hi, _ = row_interval(c, lb)
    x = newton_min(1, p, c, lo, hi, lo + seed * (hi - lo))
    x_star = min(max(math.log(ref.closed_form_params("kaplan", params, math.exp(log_c))), lo), hi)
    assert x == pytest.approx(x_star, rel=1e-10, abs=1e-10)


CONSTRAINT_SETS = [
    {"max_params": 7e10},
    {"min_params": 1e11},
    {"max_tokens": 1.4e12},
    {"min_tokens": 1e13},
    {"min_tokens_per_param": 100.0},
    {"max_tokens_per_param": 5.0},
    {"max_params": 1e10, "max_tokens": 1e12},  # budgets above ~6e22 infeasible
    {"min_params": 1e9, "max_params": 3e10, "min_tokens_per_param": 20.0, "max_tokens_per_param": 200.0},
    {"min_params": 7e9, "max_params": 7e9},
    {"min_tokens": 2e12, "max_tokens": 2e12},
]


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("cons", CONSTRAINT_SETS, ids=lambda c: ",".join(c))
@pytest.mark.parametrize("solver", ["auto", "newton-midpoint"])
def test_constrained_matches_scipy_reference(name, cons, solver):
    law = ss.get_law(name)
    flops = np.geomspace(1e16, 1e28, 25)
    df = ss.frontier(law, flops, solver=solver, **cons)
    n, d, loss, feas = ref.frontier_scipy(law.family, dict(law.params), flops, **cons)
    np.testing.assert_array_equal(df.feasible.to_numpy(), feas)
    np.testing.assert_allclose(df.params[feas], n[feas], rtol=1e-5)
    np.testing.assert_allclose(df.tokens[feas], d[feas], rtol=1e-5)
    # The kernel's loss is never worse than scipy's (to rounding) and agrees closely.
    assert (df.loss[feas].to_numpy() <= loss[feas] * (1 + 1e-13)).all()
    np.testing.assert_allclose(df.loss[feas], loss[feas], rtol=1e-10)
    assert df.params[~feas].isna().all() and df.tokens[~feas].isna().all() and df.loss[~feas].isna().all()
    assert (df.active_constraint[~feas] == "none").all()


def test_fixed_size_questions_are_exact():
    flops = np.geomspace(1e21, 1e24, 4)
    df = ss.frontier("hoffmann2022", flops, min_params=7e9, max_params=7e9)
    assert (df.params == 7e9).all()
    np.testing.assert_array_equal(df.tokens, flops / (6.0 * 7e9))
    assert set(df.active_constraint) <= {"min_params", "max_params"}
    df = ss.frontier("hoffmann2022", flops, min_tokens=2e12, max_tokens=2e12)
    assert (df.tokens == 2e12).all()
    np.testing.assert_array_equal(df.params, flops / (6.0 * 2e12))


def test_active_constraint_direction():
    # Unconstrained optimum at 1e24 is ~52B params: a 10B cap binds from above, a 100B floor from below.
    assert ss.frontier("hoffmann2022", [1e24], max_params=1e10).active_constraint[0] == "max_params"
    assert ss.frontier("hoffmann2022", [1e24], min_params=1e11).active_constraint[0] == "min_params"
    assert ss.frontier("hoffmann2022", [1e24], min_params=1e9).active_constraint[0] == "none"
    assert ss.frontier("hoffmann2022", [1e24], max_tokens=1e12).active_constraint[0] == "max_tokens"
    assert ss.frontier("hoffmann2022", [1e24], min_tokens_per_param=200).active_constraint[0] == "min_tokens_per_param"


def test_tiny_budget_is_infeasible_not_an_error():
    df = ss.frontier("hoffmann2022", [1.0, 1e20])  # 1 FLOP cannot train a 1-parameter model on 1 token
    assert df.feasible.tolist() == [False, True] and math.isnan(df.loss[0])


# ------------------------------------------------------------------------------------------- properties

bound = st.one_of(st.none(), st.floats(1.0, 1e16))
tpp = st.one_of(st.none(), st.floats(1e-3, 1e5))


@st.composite
def constraint_sets(draw):
    c = {
        "min_params": draw(bound), "max_params": draw(bound), "min_tokens": draw(bound), "max_tokens": draw(bound),
        "min_tokens_per_param": draw(tpp), "max_tokens_per_param": draw(tpp),
    }
    for what in ("params", "tokens", "tokens_per_param"):
        lo, hi = c["min_" + what], c["max_" + what]
        if lo is not None and hi is not None and lo > hi:
            c["min_" + what], c["max_" + what] = hi, lo
    return {k: v for k, v in c.items() if v is not None}


@given(name=st.sampled_from(CLOSED_FORM), cons=constraint_sets(), solver=st.sampled_from(SOLVERS))
@settings(max_examples=250, deadline=None)
def test_properties(name, cons, solver):
    law = ss.get_law(name)
    flops = np.geomspace(1e14, 1e30, 97)
    df = ss.frontier(law, flops, solver=solver, **cons)
    f = df.feasible.to_numpy()
    # Feasibility is right: matches the linear-space interval (away from exact ties, where rounding decides).
    for i, c in enumerate(flops):
        n_lo, n_hi = ref.feasible_params_interval(c, **cons)
        if abs(math.log(n_lo / n_hi)) > 1e-9:
            assert f[i] == (n_lo <= n_hi), (c, n_lo, n_hi)
    ok = df[f]
    # Constraints never violated (to rounding).
    tol = 1e-12
    n, d, r = ok.params.to_numpy(), ok.tokens.to_numpy(), ok.tokens_per_param.to_numpy()
    for what, arr in (("params", n), ("tokens", d), ("tokens_per_param", r)):
        if "min_" + what in cons:
            assert (arr >= cons["min_" + what] * (1 - tol)).all()
        if "max_" + what in cons:
            assert (arr <= cons["max_" + what] * (1 + tol)).all()
    np.testing.assert_allclose(6 * n * d, ok.flops, rtol=1e-14)
    assert ((n >= 1 - tol) & (d >= 1 - tol)).all()
    # An active constraint holds with equality; 'none' means the unconstrained optimum.
    for name_c in CONSTRAINT_NAMES:
        rows = ok[ok.active_constraint == name_c]
        assert name_c in cons or rows.empty
        if rows.empty:
            continue
        what = name_c.split("_", 1)[1]
        np.testing.assert_allclose(rows[what], cons[name_c], rtol=1e-12)
    free = ok[ok.active_constraint == "none"]
    np.testing.assert_allclose(free.params, ref.closed_form_params(law.family, dict(law.params), free.flops)
                               .clip(1, free.flops / 6), rtol=1e-10)
    # Frontier loss is non-increasing in budget over feasible budgets.
    loss = ok.loss.to_numpy()
    assert (np.diff(loss) <= 1e-13 * loss[1:]).all()
    assert np.isfinite(loss).all()
    assert df[~f][["params", "tokens", "loss", "tokens_per_param"]].isna().all().all()


@given(cons=constraint_sets(), log_c=st.floats(math.log(1e14), math.log(1e30)))
@settings(max_examples=150, deadline=None)
def test_solvers_agree(cons, log_c):
    out = [ss.frontier("besiroglu2024", [math.exp(log_c)], solver=s, **cons) for s in SOLVERS]
    for df in out[1:]:
        assert df.feasible[0] == out[0].feasible[0]
        if df.feasible[0]:
            assert df.params[0] == pytest.approx(out[0].params[0], rel=1e-10)
            assert df.active_constraint[0] == out[0].active_constraint[0] or abs(
                math.log(df.params[0] / out[0].params[0])) < 1e-9


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"flops": [1e20, float("nan")]}, "value #2"),
        ({"flops": [float("inf")]}, "value #1"),
        ({"flops": [0.0]}, "must be finite and > 0"),
        ({"flops": [-1e20]}, "must be finite and > 0"),
        ({"flops": []}, "no values"),
        ({"flops": [1e20], "max_params": float("nan")}, "--max-params must be a finite number > 0"),
        ({"flops": [1e20], "min_tokens": -5}, "--min-tokens must be a finite number > 0"),
        ({"flops": [1e20], "max_tokens_per_param": 0}, "--max-tokens-per-param must be"),
        ({"flops": [1e20], "min_params": 2e9, "max_params": 1e9}, "greater than --max-params"),
        ({"flops": [1e20], "min_tokens_per_param": 30, "max_tokens_per_param": 20}, "no allocation"),
        ({"flops": [1e20], "solver": "brent"}, "unknown solver"),
    ],
)
def test_bad_frontier_input(kwargs, needle):
    with pytest.raises(ss.ScalesweepError, match=needle):
        ss.frontier("hoffmann2022", **kwargs)


def test_frontier_identical_for_one_and_two_threads():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    flops = np.geomspace(1e15, 1e29, 100_003)
    res = []
    for threads in (1, 2):
        ss.set_threads(threads)
        res.append([ss.frontier(n, flops, solver=s, max_params=1e11, min_tokens_per_param=10.0)
                    for n in PRESETS for s in SOLVERS])
    ss.set_threads(None)
    for a, b in zip(*res, strict=True):
        for col in ("params", "tokens", "loss"):
            assert a[col].to_numpy().tobytes() == b[col].to_numpy().tobytes()
        assert (a.active_constraint == b.active_constraint).all() and (a.feasible == b.feasible).all()


def test_set_threads_validation():
    with pytest.raises(ss.ScalesweepError, match="--threads"):
        ss.set_threads(0)
