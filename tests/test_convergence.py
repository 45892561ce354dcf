"""--max-convergence-gap: the frontier under a limit on L(N, D) / L(N, inf) - 1 (Kaplan et al. 2020, Eq. 4.3 for the
data form, Eq. 1.6 for the steps form, Eq. B.5 and B.16 for what the limit costs), checked against scipy."""

import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import brentq

import scalesweep as ss
from scalesweep import questions
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.laws import as_laws
from scalesweep.options import Constraints
from scalesweep.tables import to_frame

from . import reference as ref

BUDGETS = np.geomspace(1e18, 1e26, 9)


def frontier(law, flops, solver="auto", **limits):
    """The frontier with limits, through the same call the API and the CLI make (``questions.frontier``)."""
    res = questions.frontier(as_laws(law), np.asarray(flops, dtype=np.float64), solver=solver,
                             constraints=Constraints(**limits), convergence_gap=True)
    return to_frame(res.columns, res.rows)


def converged_loss(family, p, n):
    """L(N, inf): the law at unlimited data (chinchilla E + A/N^alpha, Hoffmann Eq. 2; Kaplan Eq. 1.5 and 1.6 at
    D, S -> inf: (N_c/N)^alpha_N)."""
    if family == "chinchilla":
        return p["E"] + p["A"] / n ** p["alpha"]
    return (p["N_c"] / n) ** p["alpha_N"]


def gap_ref(family, p, n, d):
    return float(ref.loss(family, p, n, d)) / converged_loss(family, p, n) - 1.0


def frontier_ref(family, p, c, g, k=6.0):
    """(N, loss) minimising the loss on C = 6ND with gap <= g: the gap rises with N on the line, so the limit is
    N <= N_g, the root of gap = g (scipy brentq); then scipy's bounded minimisation (``ref.frontier_scipy``)."""
    s = math.log(c / k)

    def h(x):
        return gap_ref(family, p, math.exp(x), math.exp(s - x)) - g

    lo, hi = 0.0, s
    if h(hi) <= 0:
        x_g = hi
    else:
        x_g = brentq(h, lo, hi, xtol=1e-15, rtol=8.9e-16, maxiter=500)
    n, _, loss, _ = ref.frontier_scipy(family, p, [c], max_params=math.exp(x_g))
    return n[0], loss[0], x_g < hi and n[0] == pytest.approx(math.exp(x_g), rel=1e-12)


CASES = [("kaplan2020", (0.005, 0.02, 0.05)), ("kaplan2020-steps", (0.01, 0.05, 0.2)),
         ("hoffmann2022", (0.02, 0.1, 1.0)), (ss.get_law("kaplan2020", alpha_N=0.09, D_c=5e12), (0.01, 0.2))]


@pytest.mark.parametrize("law,gaps", CASES, ids=["kaplan2020", "kaplan2020-steps", "hoffmann2022", "kaplan-custom"])
def test_constrained_frontier_matches_scipy(law, gaps):
    lw = ss.get_law(law)
    p = dict(lw.params)
    seen_active = seen_free = False
    for g in gaps:
        for solver in ("auto", "newton", "newton-midpoint"):
            free = frontier(lw, BUDGETS, solver=solver)
            df = frontier(lw, BUDGETS, solver=solver, max_convergence_gap=g)
            assert df.feasible.all()
            assert (df.convergence_gap <= g * (1 + 1e-12)).all()
            for c, row, f in zip(BUDGETS, df.itertuples(), free.itertuples(), strict=True):
                n_ref, l_ref, binds = frontier_ref(lw.family, p, c, g)
                assert row.loss == pytest.approx(l_ref, rel=1e-10)
                assert row.loss >= l_ref * (1 - 1e-13)  # never better than the constrained optimum
                if binds:
                    seen_active = True
                    assert row.active_constraint == "max_convergence_gap"
                    assert row.params == pytest.approx(n_ref, rel=1e-9)
                    assert row.convergence_gap == pytest.approx(g, rel=1e-9)
                else:  # not binding: the unconstrained answer (Newton's bracket starts narrower, so to rounding)
                    seen_free = True
                    assert row.active_constraint == "none"
                    assert row.params == pytest.approx(f.params, rel=1e-12)
                    assert row.loss == pytest.approx(f.loss, rel=1e-14)
                    if solver == "auto" and lw.spec.closed_form:  # the closed form, clamped: exactly
                        assert (row.params, row.tokens, row.loss) == (f.params, f.tokens, f.loss)
    assert seen_active and (seen_free or lw.family == "kaplan")


def test_kaplan_data_form_is_the_overfitting_limit():
    """For kaplan2020 (Table 2 constants) the gap is Kaplan's dL of Eq. 4.3, so the limit is --max-overfit's."""
    for g in (0.01, 0.02, 0.059):
        a = frontier("kaplan2020", BUDGETS, max_convergence_gap=g)
        b = frontier("kaplan2020", BUDGETS, max_overfit=g)
        np.testing.assert_allclose(a.params, b.params, rtol=1e-13)
        np.testing.assert_allclose(a.loss, b.loss, rtol=1e-14)
        assert ((a.active_constraint == "max_convergence_gap") == (b.active_constraint == "max_overfit")).all()
    # the floor D >= D_c (N/N_c)^(a_N/a_D) / ((1+G)^(1/a_D) - 1) (Eq. 4.3 solved for D) holds with equality
    p = ss.get_law("kaplan2020").params
    df = frontier("kaplan2020", BUDGETS, max_convergence_gap=0.02)
    floor = p["D_c"] * (df.params / p["N_c"]) ** (p["alpha_N"] / p["alpha_D"]) / (1.02 ** (1 / p["alpha_D"]) - 1)
    np.testing.assert_allclose(df.tokens, floor, rtol=1e-12)


def test_steps_frontier_stops_alpha_n_over_alpha_s_above_convergence():
    """Eq. B.5: compute-efficient training ends at L = (1 + alpha_N/alpha_S) L(N, inf)."""
    p = ss.get_law("kaplan2020-steps").params
    df = frontier("kaplan2020-steps", BUDGETS)
    np.testing.assert_allclose(df.convergence_gap, p["alpha_N"] / p["alpha_S"], rtol=1e-12)
    assert p["alpha_N"] / p["alpha_S"] == pytest.approx(0.10, abs=0.002)


def b16(p, n_over_neff):
    """Kaplan Eq. B.16: C(N, N_eff) / C(N_eff, N_eff) = (N/N_eff) [1 + (a_S/a_N)(1 - (N_eff/N)^a_N)]^(-1/a_S),
    the compute a model of N parameters needs for the loss the compute-efficient size N_eff reaches."""
    a_n, a_s = p["alpha_N"], p["alpha_S"]
    return n_over_neff * (1 + a_s / a_n * (1 - n_over_neff ** -a_n)) ** (-1 / a_s)


@pytest.mark.parametrize("g", [0.005, 0.01, 0.02, 0.05])
def test_cost_of_training_closer_to_convergence_is_eq_b16(g):
    """The budget the limited frontier spends over the budget the free frontier needs for the same loss is Eq.
    B.16's off-optimum cost at N/N_eff = ((1 + G)/(1 + a_N/a_S))^(1/a_N)."""
    law = ss.get_law("kaplan2020-steps")
    p = law.params
    for c in (1e19, 1e22, 1e25):
        lim = frontier(law, [c], max_convergence_gap=g).iloc[0]
        assert lim.active_constraint == "max_convergence_gap"
        # the free frontier's budget reaching the same loss (its loss falls with the budget): scipy brentq
        x = brentq(lambda t: frontier(law, [math.exp(t)]).loss[0] - lim.loss, math.log(c) - 30, math.log(c),
                   xtol=1e-13, rtol=8.9e-16)
        free = frontier(law, [math.exp(x)]).iloc[0]
        ratio = c / math.exp(x)
        expected_n = ((1 + g) / (1 + p["alpha_N"] / p["alpha_S"])) ** (1 / p["alpha_N"])
        assert lim.params / free.params == pytest.approx(expected_n, rel=1e-9)
        assert ratio == pytest.approx(b16(p, lim.params / free.params), rel=1e-9)
    # Eq. B.16's own reading: 0.6x-2.2x the optimal size costs at most about 20% more
    assert max(b16(p, 0.6), b16(p, 2.2)) == pytest.approx(1.2, abs=0.03)


def test_infeasible_rows_name_the_conflict():
    df = frontier("kaplan2020", [1e21, 1e23], max_convergence_gap=0.01, min_params=1e12)
    assert (~df.feasible).all() and set(df.infeasible_reason) == {"min_params+max_convergence_gap"}
    assert df.params.isna().all()


def test_thread_count_does_not_change_results():
    import numba

    flops = np.geomspace(1e17, 1e27, 20_001)
    before = numba.get_num_threads()
    try:
        out = []
        for t in (1, max(2, before)):
            numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
            out.append(frontier("kaplan2020-steps", flops, max_convergence_gap=0.03))
    finally:
        numba.set_num_threads(before)
    for col in ("params", "tokens", "loss"):
        assert np.array_equal(out[0][col].to_numpy(), out[1][col].to_numpy())


@pytest.mark.parametrize("law,message", [
    ("deepseek2024", "--max-convergence-gap needs a law whose loss of N and D has a converged limit"),
    ("muennighoff2023", "not muennighoff2023 (family data_constrained)"),
    ("kaplan2020-C", "--max-convergence-gap cannot apply to it"),
    ("kaplan2020-N", "has no compute-optimal frontier"),
])
def test_families_without_it_are_refused_in_one_line(law, message):
    with pytest.raises(ScalesweepError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        frontier(law, [1e21], max_convergence_gap=0.02)
    assert "\n" not in str(e.value)
    res = CliRunner().invoke(cli, ["frontier", "--law", law, "--flops-range", "1e21", "--max-convergence-gap", "0.02"])
    assert res.exit_code != 0 and len(res.stderr.strip().splitlines()) == 1


def test_cli_target_loss_and_bad_values():
    res = CliRunner().invoke(cli, ["frontier", "--law", "kaplan2020-steps", "--flops-range", "1e21",
                                   "--max-convergence-gap", "0.02", "--convergence-gap"])
    assert res.exit_code == 0 and "max_convergence_gap" in res.stdout
    res = CliRunner().invoke(cli, ["target-loss", "--law", "kaplan2020", "--loss", "2.5", "--max-convergence-gap",
                                   "0.02"])
    assert res.exit_code == 1
    assert "--max-convergence-gap is a frontier limit; target-loss does not support it" in res.stderr
    with pytest.raises(ScalesweepError, match="--max-convergence-gap must be a finite number > 0"):
        Constraints(max_convergence_gap=0)


def test_scenario_rows_of_other_families_are_flagged(tmp_path):
    import pandas as pd

    from scalesweep.scenarios import SweepSpec, run

    run(SweepSpec({"law": ["kaplan2020-steps", "muennighoff2023", "kaplan2020-C"], "flops": 1e21,
                   "max_convergence_gap": 0.02}), tmp_path / "s.parquet")
    out = pd.read_parquet(tmp_path / "s.parquet").set_index("law")
    assert out.loc["kaplan2020-steps", "active_constraint"] == "max_convergence_gap"
    assert out.loc["muennighoff2023", "infeasible_reason"] == "unsupported_family"
    assert out.loc["kaplan2020-C", "infeasible_reason"] == "no_allocation"
    assert not out.loc[["muennighoff2023", "kaplan2020-C"], "feasible"].any()


def test_bands_apply_it_to_every_sample():
    p = ss.get_law("kaplan2020-steps").vector
    samples = np.stack([p, p * np.array([1, 1, 1.02, 1, 1, 1])])
    from scalesweep.api import frontier_bands

    b = frontier_bands(samples, "kaplan_steps", [1e21], [0, 100], max_convergence_gap=0.02)
    one = frontier("kaplan2020-steps", [1e21], max_convergence_gap=0.02)
    assert one.params[0] in (b.params_p0[0], b.params_p100[0])
