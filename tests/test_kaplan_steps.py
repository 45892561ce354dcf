"""Kaplan's training-steps frontier (kaplan2020-steps): L(N, S_min) with the critical batch coupled to the loss."""

import math

import numpy as np
import pytest

import scalesweep as ss

from . import reference as ref

LAW = ss.get_law("kaplan2020-steps")
P = dict(LAW.params)
PF_DAY = 8.64e19
BUDGETS = PF_DAY * np.geomspace(1e-3, 1e3, 25)  # the paper's range (sheet §1.5)


def test_loss_solves_the_fixed_point():
    n = np.geomspace(1e6, 1e11, 7)
    d = np.geomspace(1e8, 1e12, 7)
    np.testing.assert_allclose(LAW.loss(n, d), ref.loss("kaplan_steps", P, n, d), rtol=1e-14)


def test_frontier_matches_scipy():
    df = ss.frontier(LAW, BUDGETS[::4])
    n_ref, _, l_ref, _ = ref.frontier_scipy("kaplan_steps", P, BUDGETS[::4])
    assert (df.loss <= l_ref * (1 + 1e-13)).all()
    np.testing.assert_allclose(df.loss, l_ref, rtol=1e-11)
    np.testing.assert_allclose(df.params, n_ref, rtol=1e-5)


def test_frontier_is_kaplans_appendix_b_closed_form():
    """Eq. B.6-B.10: N(C)/N_c = (C/C_c)^(a_C/a_N) (1 + a_N/a_S)^(1/a_N), and Eq. B.5:
    L = (1 + a_N/a_S) L(N, inf) on the frontier, with a_C = 1/(1/a_S + 1/a_B + 1/a_N)."""
    a_n, a_s, a_b = P["alpha_N"], P["alpha_S"], P["alpha_B"]
    a_c = 1 / (1 / a_s + 1 / a_b + 1 / a_n)
    c_c = 6 * P["N_c"] * P["B_star"] * P["S_c"] * (1 + a_n / a_s) ** (1 / a_s + 1 / a_n) * (a_s / a_n) ** (1 / a_s)
    for solver in ("auto", "newton-midpoint"):
        df = ss.frontier(LAW, BUDGETS, solver=solver)
        np.testing.assert_allclose(df.params, P["N_c"] * (BUDGETS / c_c) ** (a_c / a_n) * (1 + a_n / a_s) ** (1 / a_n),
                                   rtol=1e-12)
        np.testing.assert_allclose(df.loss, (1 + a_n / a_s) * (P["N_c"] / df.params) ** a_n, rtol=1e-13)


def test_exponents_against_the_paper():
    """Fitted over 1e-3..1e3 PF-days. The laws imply the App. B exponents a_C/a_N, a_C/a_B, a_C/a_S =
    0.681 / 0.250 / 0.069; the paper's Table 6 reports 0.73 / 0.24 / 0.03 from the frontier of its actual
    runs (and notes 0.03 'may be consistent with zero'). Batch agrees; model and steps differ by the gap
    between the fitted laws and the measured frontier, which the paper's own Eq. 6.5 (0.71) also shows."""
    df = ss.frontier(LAW, BUDGETS)
    x = np.log(BUDGETS / PF_DAY)
    slope = {k: np.polyfit(x, np.log(df[k]), 1)[0] for k in ("params", "batch", "steps", "tokens")}
    a_n, a_s, a_b = P["alpha_N"], P["alpha_S"], P["alpha_B"]
    a_c = 1 / (1 / a_s + 1 / a_b + 1 / a_n)
    assert slope["params"] == pytest.approx(a_c / a_n, abs=1e-9) and slope["params"] == pytest.approx(0.681, abs=5e-4)
    assert slope["batch"] == pytest.approx(a_c / a_b, abs=1e-9) and slope["batch"] == pytest.approx(0.24, abs=0.015)
    assert slope["steps"] == pytest.approx(a_c / a_s, abs=1e-9) and slope["steps"] == pytest.approx(0.069, abs=5e-4)
    assert slope["params"] + slope["batch"] + slope["steps"] == pytest.approx(1.0, abs=1e-9)  # C = 6 N B S
    # B and S reproduce the definitions: C_min = 6 N B_crit S_min, B_crit = B_*/L^(1/alpha_B)
    np.testing.assert_allclose(6 * df.params * df.batch * df.steps, BUDGETS, rtol=1e-13)
    np.testing.assert_allclose(df.batch, P["B_star"] / df.loss ** (1 / a_b), rtol=1e-14)


def test_one_pf_day_against_table_6():
    """Table 6 at C_min = 1 PF-day: B = 2.0e6 tokens (agrees), N = 1.3e9 and S = 5.4e3 (the empirical fit;
    the laws give a smaller model trained for more steps)."""
    df = ss.frontier(LAW, [PF_DAY])
    assert df.batch[0] == pytest.approx(2.0e6, rel=0.1)
    assert 0.3 < df.params[0] / 1.3e9 < 1 and 1 < df.steps[0] / 5.4e3 < 3
    assert math.isclose(df.loss[0], (1 + P["alpha_N"] / P["alpha_S"]) * (P["N_c"] / df.params[0]) ** P["alpha_N"],
                        rel_tol=1e-13)
