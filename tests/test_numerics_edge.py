"""Edges of the numerics: allocation rules outside N >= 1, D >= 1; `compare` keeping every law it is asked for;
the kaplan_steps frontier from the smallest budget with an allocation up to the largest double.

Expected values come from the published constants (reference sheet §1.5, §6.1-6.3) worked by hand, or from
the brute-force references in ``tests/reference.py``; never from the code under test.
"""

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import scalesweep as ss
from scalesweep.cli import cli

from . import reference as ref

# ------------------------------------------------------------------------------ allocation rules below one
# The budget at which each rule's N and D reach 1, from the sheet's constants (C in FLOPs):
#   deepseek2024 (§6.1):      N = (0.1715/6) C^0.5243, D = 5.8316 C^0.4757
#   llama3_2024 (§6.2):       D = 0.299 C^0.537, N = C/(6D) = C^0.463 / (6 * 0.299)
#   porian2024_tuned (§6.3):  N = 0.1189 C^0.4969, D = 1.4014 C^0.5031
#   kaplan2020-table6 (§1.5): N = 1.3e9 (C/8.64e19)^0.73, D = 2e10 (C/8.64e19)^0.27
ONE = {
    "deepseek2024": ((6 / 0.1715) ** (1 / 0.5243), 5.8316 ** (-1 / 0.4757)),
    "llama3_2024": ((6 * 0.299) ** (1 / (1 - 0.537)), 0.299 ** (-1 / 0.537)),
    "porian2024_tuned": (0.1189 ** (-1 / 0.4969), 1.4014 ** (-1 / 0.5031)),
    "kaplan2020-table6": (8.64e19 * 1.3e9 ** (-1 / 0.73), 8.64e19 * 2e10 ** (-1 / 0.27)),
}


def test_thresholds_worked_by_hand():
    # N = 1 at 34.99^(1/0.5243) ~ 880 FLOPs for DeepSeek; D = 1 at ~9.5 for Llama 3 (N = 1 already at ~3.5);
    # N = 1 at ~72.7 for Porian; Kaplan's N = 1 at C_min = 1.3e9^(-1/0.73) PF-days ~ 2.8e7 FLOPs
    assert ONE["deepseek2024"][0] == pytest.approx(880.4, rel=1e-3)
    assert ONE["llama3_2024"] == pytest.approx((3.54, 9.47), rel=2e-3)
    assert ONE["porian2024_tuned"][0] == pytest.approx(72.7, rel=1e-3)
    assert ONE["kaplan2020-table6"][0] == pytest.approx(2.83e7, rel=2e-3)


@pytest.mark.parametrize("name", list(ONE))
def test_a_rule_below_one_parameter_or_token_is_infeasible(name):
    c1 = max(ONE[name])  # from here up both N >= 1 and D >= 1
    budgets = [1e-3, c1 * (1 - 1e-6), c1 * (1 + 1e-6), 1e24]
    for kwargs in ({}, {"loss_law": "hoffmann2022"}):
        df = ss.frontier(name, budgets, **kwargs)
        assert df.feasible.tolist() == [False, False, True, True]
        assert df.infeasible_reason[:2].tolist() == ["budget", "budget"] and df.infeasible_reason[2:].isna().all()
        assert df.params[:2].isna().all() and df.tokens[:2].isna().all() and df.loss[:2].isna().all()
        assert (df.params[2:] >= 1).all() and (df.tokens[2:] >= 1).all()
        assert (df.active_constraint == "none").all()
    assert df.loss[2:].notna().all()


def test_llama3_between_its_two_thresholds_has_a_parameter_but_not_a_token():
    c_n, c_d = ONE["llama3_2024"]
    c = math.sqrt(c_n * c_d)  # ~5.8 FLOPs: N = C^0.463/1.794 ~ 1.26, D = 0.299 C^0.537 ~ 0.77
    df = ss.frontier("llama3_2024", [c])
    assert not df.feasible[0] and df.infeasible_reason[0] == "budget"


def test_a_rule_below_one_and_over_a_limit_names_both():
    # Porian at C = 10: N = 0.1189 * 10^0.4969 ~ 0.37 < 1, and under min_params = 2
    df = ss.frontier("porian2024_tuned", [10.0, 1e6], min_params=2)
    assert df.infeasible_reason[0] == "min_params+budget" and df.feasible[1]


def test_rules_below_one_in_a_scenario_sweep(tmp_path):
    from scalesweep.scenarios import SweepSpec, run

    laws = list(ONE)
    budgets = [1e-3, 1e24]
    run(SweepSpec({"law": laws, "flops": budgets}), tmp_path / "o.parquet")
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert out.law.astype(str).tolist() == [x for x in laws for _ in budgets]
    assert out.feasible.tolist() == [False, True] * len(laws)
    assert out.infeasible_reason.astype(str)[::2].eq("budget").all() and out.infeasible_reason[1::2].isna().all()
    assert out.params[::2].isna().all() and (out.params[1::2] >= 1).all()


# ------------------------------------------------------------------------------------------------- compare


def test_compare_keeps_every_preset_and_flags_what_it_cannot_answer():
    df = ss.api.compare([1e24])
    assert df.law.astype(str).tolist() == list(ss.PRESETS)
    assert df.columns.tolist() == ["law", "family", "flops", "params", "tokens", "tokens_per_param", "loss",
                                   "feasible", "infeasible_reason"]
    flagged = df.law.astype(str).isin(["kaplan2020-N", "kaplan2020-D"])  # laws of N or D alone
    assert (~df.feasible[flagged]).all() and df.feasible[~flagged].all()
    assert df.infeasible_reason[flagged].astype(str).eq("unsupported_family").all()
    assert df.infeasible_reason[~flagged].isna().all()
    assert df[flagged][["params", "tokens", "tokens_per_param", "loss"]].isna().all().all()


def test_compare_keeps_a_law_asked_for_by_name():
    df = ss.api.compare([1e22, 1e24], ["kaplan2020-N", "hoffmann2022", "kaplan2020-D"])
    assert df.law.astype(str).tolist() == ["kaplan2020-N"] * 2 + ["hoffmann2022"] * 2 + ["kaplan2020-D"] * 2
    assert df.feasible.tolist() == [False, False, True, True, False, False]
    assert df.params.isna().tolist() == [True, True, False, False, True, True]
    # hoffmann2022's rows are the frontier's (Hoffmann Eq. 4 closed form, sheet §2)
    p = ss.get_law("hoffmann2022").params
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    n = g * (np.array([1e22, 1e24]) / 6) ** (p["beta"] / (p["alpha"] + p["beta"]))
    np.testing.assert_allclose(df.params[2:4], n, rtol=1e-12)


def test_compare_flags_a_rule_below_one():
    df = ss.api.compare([10.0], ["porian2024_tuned", "llama3_2024"])  # Porian N = 0.37; Llama N = 1.6, D = 1.03
    assert df.feasible.tolist() == [False, True] and df.infeasible_reason[0] == "budget"
    assert np.isnan(df.params[0]) and df.params[1] >= 1 and df.tokens[1] >= 1


def test_compare_cli_keeps_the_row_and_says_why(tmp_path):
    res = CliRunner().invoke(cli, ["compare", "--flops", "1e20", "--laws", "kaplan2020-N,hoffmann2022"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "law,family,flops,params,tokens,tokens_per_param,loss,feasible,infeasible_reason"
    assert lines[1] == '"kaplan2020-N","kaplan_single",1e+20,,,,,false,"unsupported_family"'
    assert lines[2].startswith('"hoffmann2022","chinchilla",1e+20,') and lines[2].endswith(",true,")
    out = tmp_path / "c.parquet"
    res = CliRunner().invoke(cli, ["compare", "--flops", "1e20", "--laws", "kaplan2020-D", "-o", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0 and "wrote 1 rows" in res.stderr
    df = pd.read_parquet(out)
    assert not df.feasible[0] and df.infeasible_reason[0] == "unsupported_family" and np.isnan(df.params[0])


# ------------------------------------------------------------------------------------ kaplan_steps numerics

STEPS = ss.get_law("kaplan2020-steps")
P = dict(STEPS.params)
LOSS_SLACK = 1e-9  # the kernel's loss may exceed the brute-force minimum by this much (relative), no more


def test_kaplan_steps_loss_over_the_whole_domain():
    """ln N and ln D from 0 to 700 (N, D from 1 to 1e304): the fixed point is solved to a few ulp everywhere,
    including where the step term dominates by hundreds of orders of magnitude (N huge, D ~ 1)."""
    x = np.linspace(0.0, 700.0, 71)
    xn, xd = np.meshgrid(x, x)
    got = STEPS.loss(np.exp(xn.ravel()), np.exp(xd.ravel()))
    want = np.exp(ref.kaplan_steps_log_loss(P, xn.ravel(), xd.ravel()))
    np.testing.assert_allclose(got, want, rtol=5e-14)


def _check_against_brute_force(budgets, solvers=("auto", "newton-midpoint"), points=200_000):
    brute = np.array([ref.kaplan_steps_frontier_brute(P, c, points=points) for c in budgets])
    for solver in solvers:
        df = ss.frontier(STEPS, budgets, solver=solver)
        assert df.feasible.all(), solver
        assert np.isfinite(df.loss).all() and np.isfinite(df.params).all()
        assert (df.loss <= brute[:, 1] * (1 + LOSS_SLACK)).all(), (solver, (df.loss / brute[:, 1] - 1).max())
        # ln L is flat at an interior optimum: an error e in ln L moves the minimiser by sqrt(2 e / curvature).
        # The reference's ln L carries the rounding of ln D = ln(C/6) - ln N, a few ulp of ln(C/6) (1e-13 at
        # 1e300), and each side's minimiser may be off by that much. An optimum at a domain end (NaN
        # curvature) is that end on both sides.
        e = 8 * np.finfo(float).eps * (1 + np.log(budgets / 6))
        with np.errstate(invalid="ignore"):
            tol = np.where(np.isnan(brute[:, 2]), 1e-12, 2.0 * np.sqrt(2.0 * e / brute[:, 2]))
        off = np.abs(np.log(df.params / brute[:, 0]))
        assert (off <= tol).all(), (solver, off.max(), tol.min())
        np.testing.assert_allclose(df.params * df.tokens * 6, budgets, rtol=1e-13)


@pytest.mark.slow
def test_kaplan_steps_frontier_is_the_global_minimum_up_to_1e300():
    """59 budgets, 1e10 to 1e300 FLOPs: the loss on 200,000 log-spaced N over the whole domain [1, C/6], refined
    by scipy's bounded Brent method, is never below the kernel's."""
    _check_against_brute_force(np.logspace(10, 300, 59))


def test_kaplan_steps_frontier_at_the_smallest_and_largest_budgets():
    # C < 6: no N >= 1 with D >= 1
    df = ss.frontier(STEPS, [1e-3, 1.0, 5.999])
    assert (~df.feasible).all() and df.infeasible_reason.eq("budget").all() and df.params.isna().all()
    # up to ~1e7 the optimum is the domain end N = 1; above it, interior
    _check_against_brute_force(np.array([6.0 * (1 + 1e-9), 6.5, 10.0, 1e3, 1e6, 1e7, 2e7, 1e8, 1e305, 1.7e308]),
                               points=20_000)


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=10.0, max_value=300.0))
def test_kaplan_steps_frontier_property(exponent):
    """Budgets log-uniform in [1e10, 1e300]; a 20,000-point grid (spacing <= 0.035 in ln N) is enough to
    land next to the one minimum, which the bounded Brent refinement then pins down."""
    _check_against_brute_force(np.array([10.0**exponent]), points=20_000)


def test_kaplan_steps_frontier_is_kaplans_closed_form_up_to_1e300():
    """Eq. B.6-B.10 (sheet §1.5): N(C)/N_c = (C/C_c)^(a_C/a_N) (1 + a_N/a_S)^(1/a_N); L = (1 + a_N/a_S) L(N, inf)."""
    a_n, a_s, a_b = P["alpha_N"], P["alpha_S"], P["alpha_B"]
    a_c = 1 / (1 / a_s + 1 / a_b + 1 / a_n)
    c_c = 6 * P["N_c"] * P["B_star"] * P["S_c"] * (1 + a_n / a_s) ** (1 / a_s + 1 / a_n) * (a_s / a_n) ** (1 / a_s)
    budgets = np.logspace(10, 300, 59)
    log_n = math.log(P["N_c"]) + (a_c / a_n) * (np.log(budgets) - math.log(c_c)) + math.log(1 + a_n / a_s) / a_n
    for solver in ("auto", "newton-midpoint"):
        df = ss.frontier(STEPS, budgets, solver=solver)
        np.testing.assert_allclose(np.log(df.params), log_n, rtol=0, atol=1e-9)
        np.testing.assert_allclose(df.loss, (1 + a_n / a_s) * (P["N_c"] / df.params) ** a_n, rtol=1e-12)


def test_results_do_not_depend_on_the_thread_count():
    import numba

    budgets = np.geomspace(1e-3, 1.7e308, 2001)
    laws = ["kaplan2020-steps", *ONE]
    before = numba.get_num_threads()
    try:
        ss.set_threads(1)
        one = [ss.frontier(law, budgets) for law in laws]
        ss.set_threads(None)
        many = [ss.frontier(law, budgets) for law in laws]
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many, strict=True):
        for col in ("params", "tokens", "loss", "feasible"):
            np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy())
        assert a.infeasible_reason.astype(str).tolist() == b.infeasible_reason.astype(str).tolist()
