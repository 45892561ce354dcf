"""The data-constrained family (Muennighoff et al. 2023): loss, frontier, reduction to chinchilla, epochs."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scalesweep as ss
from scalesweep.errors import ScalesweepError

from . import reference as ref

MU = ss.get_law("muennighoff2023")
BASE = {k: MU.params[k] for k in ("E", "A", "B", "alpha", "beta")}


def test_preset_constants_trace_to_the_sheet():
    """Sheet §4.2: the released log-form fit, and the simplified law's U_N = 0.051 U_D (alpha = beta)."""
    assert MU.params["A"] == pytest.approx(520.8, abs=0.1) and MU.params["B"] == pytest.approx(1487.7, abs=0.1)
    assert MU.params["E"] == pytest.approx(1.869, abs=1e-3) and MU.params["alpha"] == MU.params["beta"] == 0.3526596
    assert (MU.params["R_D_star"], MU.params["R_N_star"]) == (15.387756, 5.309743)
    G = (BASE["alpha"] * BASE["A"] / (BASE["beta"] * BASE["B"])) ** (1 / (BASE["alpha"] + BASE["beta"]))
    assert G**2 == pytest.approx(0.0510, abs=1e-4)
    # single-epoch compute-optimal ratio 1/G^2 ~ 19.6 tokens/param at every scale
    df = ss.frontier(MU, [1e19, 1e23])
    np.testing.assert_allclose(df.tokens_per_param, 1 / G**2, rtol=1e-9)
    assert 1 / G**2 == pytest.approx(19.6, abs=0.05)


@pytest.mark.parametrize("u_d", [1e9, 1e11, 1e13])
def test_loss_matches_the_reference(u_d):
    law = ss.get_law(MU, U_D=u_d)
    n = np.geomspace(1e6, 1e13, 57)[:, None]
    d = np.geomspace(1e8, 1e15, 61)[None, :]
    got = ss.surface(law, n.ravel(), d.ravel())
    np.testing.assert_allclose(got, ref.data_constrained_loss(dict(law.params), n, d), rtol=1e-13)


def test_unlimited_data_or_no_decay_is_chinchilla():
    chin = ss.get_law("hoffmann2022", **BASE)
    flops = np.geomspace(1e15, 1e28, 40)
    base = ss.frontier(chin, flops)
    for law in (MU, ss.get_law(MU, U_D=1e40), ss.get_law(MU, U_D=1e9, R_D_star=math.inf, R_N_star=math.inf)):
        df = ss.frontier(law, flops)
        np.testing.assert_allclose(df.params, base.params, rtol=1e-9)
        np.testing.assert_allclose(df.loss, base.loss, rtol=1e-12)


@pytest.mark.parametrize("u_d", [1e9, 3e10, 1e12])
@pytest.mark.parametrize("solver", ["auto", "newton-midpoint"])
def test_frontier_matches_scipy(u_d, solver):
    law = ss.get_law(MU, U_D=u_d)
    flops = np.geomspace(1e17, 1e27, 21)
    df = ss.frontier(law, flops, solver=solver)
    n_ref, _, l_ref, feas = ref.frontier_scipy("data_constrained", dict(law.params), flops)
    assert df.feasible.all() and feas.all()
    assert (df.loss <= l_ref * (1 + 1e-13)).all()  # never worse than the reference
    np.testing.assert_allclose(df.loss, l_ref, rtol=1e-10)
    # The arg-min is well defined while repetition still pays; after hundreds of epochs both effective
    # data and effective parameters saturate and the loss is flat in N to rounding (only the loss is checked).
    ok = df.tokens.to_numpy() / u_d < 30
    assert ok.sum() >= 5
    np.testing.assert_allclose(df.params[ok], n_ref[ok], rtol=2e-5)  # a flat optimum: Brent's x-tolerance


def test_unique_tokens_option_answers_epochs_and_size():
    df = ss.frontier(MU, [1e22, 1e24], unique_tokens=1e11)
    direct = ss.frontier(ss.get_law(MU, U_D=1e11), [1e22, 1e24])
    np.testing.assert_array_equal(df.params, direct.params)
    np.testing.assert_allclose(df.epochs, df.tokens / 1e11, rtol=1e-15)
    assert df.epochs[1] > 4 and (df.active_constraint == "none").all()  # repeats, not a cap
    # a single-epoch law caps tokens at the unique data instead
    capped = ss.frontier("hoffmann2022", [1e24], unique_tokens=1e11)
    assert capped.active_constraint[0] == "unique_tokens" and capped.epochs[0] == 1.0
    # and in a scenario sweep each row gets its own U_D
    from scalesweep.scenarios import SweepSpec, run

    spec = SweepSpec({"law": ["muennighoff2023", "hoffmann2022"], "flops": 1e24, "unique_tokens": [1e10, 1e11]})
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        run(spec, f"{tmp}/o.parquet")
        import pandas as pd

        out = pd.read_parquet(f"{tmp}/o.parquet")
    mu_rows = out[out.law.astype(str) == "muennighoff2023"]
    for u, p in zip(mu_rows.unique_tokens, mu_rows.params, strict=True):
        assert p == ss.frontier(ss.get_law(MU, U_D=u), [1e24]).params[0]
    assert (out[out.law.astype(str) == "hoffmann2022"].active_constraint == "unique_tokens").all()


def test_more_unique_data_never_hurts():
    flops = np.geomspace(1e20, 1e26, 13)
    losses = [ss.frontier(MU, flops, unique_tokens=u).loss.to_numpy() for u in (1e9, 1e10, 1e11, 1e12, 1e13)]
    for a, b in itertools.pairwise(losses):
        assert (b <= a * (1 + 1e-13)).all()


@given(log_c=st.floats(math.log(1e17), math.log(1e27)), log_u=st.floats(math.log(1e8), math.log(1e14)),
       max_tpp=st.one_of(st.none(), st.floats(1.0, 1e4)))
@settings(max_examples=60, deadline=None)
def test_properties(log_c, log_u, max_tpp):
    law = ss.get_law(MU, U_D=math.exp(log_u))
    c = math.exp(log_c)
    df = ss.frontier(law, [c, 2 * c], max_tokens_per_param=max_tpp)
    assert df.feasible.all()
    assert df.loss[1] <= df.loss[0] * (1 + 1e-12)  # monotone in budget
    if max_tpp is not None:
        assert (df.tokens_per_param <= max_tpp * (1 + 1e-12)).all()
    # Newton from the midpoint lands on the same optimum
    mid = ss.frontier(law, [c], solver="newton-midpoint", max_tokens_per_param=max_tpp)
    assert mid.loss[0] == pytest.approx(df.loss[0], rel=1e-11)


def test_bad_parameters():
    for kw, match in ((dict(U_D=-1.0), "'U_D' must be > 0"), (dict(R_D_star=0.0), "'R_D_star' must be > 0"),
                      (dict(U_D=math.nan), "'U_D' must be finite"), (dict(alpha=math.inf), "'alpha' must be finite")):
        with pytest.raises(ScalesweepError, match=match):
            ss.get_law(MU, **kw)


def test_target_loss_is_refused_for_this_family(tmp_path):
    with pytest.raises(ScalesweepError, match="target-loss does not support muennighoff2023"):
        ss.target_loss(MU, [2.2])  # no level-curve solver for this family yet: refused up front
    # in a scenario table the row is flagged, with the reason, and the other rows are answered
    spec = tmp_path / "t.csv"
    spec.write_text("law,target_loss\nmuennighoff2023,2.2\nhoffmann2022,2.2\n")
    ss.run_scenarios(spec, tmp_path / "o.parquet")
    df = pd.read_parquet(tmp_path / "o.parquet")
    assert df.feasible.tolist() == [False, True]
    assert df.infeasible_reason[0] == "unsupported_family" and pd.isna(df.infeasible_reason[1])
