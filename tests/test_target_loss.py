"""The inverse problem (least compute for a target loss), with and without inference demand."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import scalesweep as ss
from scalesweep.errors import ScalesweepError

from . import reference as ref

CHIN = ss.get_law("hoffmann2022")
KAP = ss.get_law("kaplan2020")


@pytest.mark.parametrize("name", [n for n in ss.PRESETS if ss.PRESETS[n].family in ("chinchilla", "kaplan")])
def test_inverse_of_the_frontier_without_inference(name):
    """No inference, no limits: the answer is the closed-form frontier point whose loss is the target."""
    law = ss.get_law(name)
    flops = np.geomspace(1e18, 1e27, 10)
    n = ref.closed_form_params(law.family, dict(law.params), flops)
    targets = ref.loss(law.family, dict(law.params), n, flops / (6 * n))
    df = ss.target_loss(law, targets)
    assert df.feasible.all() and (df.active_constraint == "none").all()
    np.testing.assert_allclose(df.flops, flops, rtol=1e-10)
    np.testing.assert_allclose(df.params, n, rtol=1e-10)
    np.testing.assert_allclose(df.loss, targets, rtol=1e-13)


CASES = [
    ("hoffmann2022", 2.0, 0.0, {}),
    ("hoffmann2022", 2.0, 1e13, {}),
    ("hoffmann2022", 2.2, 1e12, {"max_params": 2e9}),
    ("hoffmann2022", 2.1, 0.0, {"max_tokens": 2e11}),
    ("hoffmann2022", 2.1, 1e14, {"max_tokens_per_param": 100.0}),
    ("hoffmann2022", 2.1, 0.0, {"min_tokens_per_param": 80.0}),
    ("hoffmann2022", 2.3, 1e11, {"min_tokens": 5e11, "max_params": 1e10}),
    ("besiroglu2024", 2.3, 1e13, {"min_params": 3e9}),
    ("kaplan2020", 2.6, 0.0, {}),
    ("kaplan2020", 2.6, 1e12, {"max_tokens_per_param": 20.0}),
    ("kaplan2020", 2.4, 1e13, {"max_params": 5e9, "max_tokens": 1e12}),
]


@pytest.mark.parametrize("name, target, dinf, cons", CASES)
def test_matches_scipy_reference(name, target, dinf, cons):
    law = ss.get_law(name)
    df = ss.target_loss(law, [target], inference_tokens=dinf or None, **cons)
    n_ref, _, cost_ref = ref.target_scipy(law.family, dict(law.params), target, dinf, **cons)
    assert bool(df.feasible[0]) == math.isfinite(cost_ref)
    cost = 6 * df.params[0] * df.tokens[0] + 2 * df.params[0] * dinf
    # The optimum is flat: the cost agrees tightly, the arg-min to the square root of that.
    assert cost == pytest.approx(cost_ref, rel=1e-9)
    assert cost <= cost_ref * (1 + 1e-10)  # the reference allows its limits 1e-12 of slack
    assert df.params[0] == pytest.approx(n_ref, rel=1e-4)
    assert df.loss[0] == pytest.approx(target, rel=1e-12)


def test_inference_demand_shrinks_the_model():
    """Sardana et al.: with large inference demand, the optimal model is smaller and trained longer."""
    base = ss.target_loss(CHIN, [2.0])
    for dinf in (1e11, 1e12, 1e13, 1e14):
        df = ss.target_loss(CHIN, [2.0], inference_tokens=dinf)
        assert df.params[0] < base.params[0] and df.tokens[0] > base.tokens[0]
        # and it beats the Chinchilla-optimal model on lifetime cost
        chin_cost = 6 * base.params[0] * base.tokens[0] + 2 * base.params[0] * dinf
        assert df.lifetime_flops[0] < chin_cost
        np.testing.assert_allclose(df.lifetime_flops, df.flops + df.inference_flops, rtol=1e-15)


def test_unreachable_targets_are_flagged_not_raised():
    df = ss.target_loss(CHIN, [1.6934, 1.5, 1.7])  # E is the irreducible loss
    assert df.feasible.tolist() == [False, False, True]
    assert df.params[:2].isna().all() and df.flops[:2].isna().all()
    # blocked by constraints: a 100M-param cap cannot reach 2.0 (A/N^alpha alone is ~0.8 there)
    df = ss.target_loss(CHIN, [2.0], max_params=1e8)
    assert not df.feasible[0]
    # too little data: B/D^beta at 1e9 tokens is > 0.3
    df = ss.target_loss(CHIN, [2.0], max_tokens=1e9)
    assert not df.feasible[0]


def test_active_constraints_and_exact_bounds():
    df = ss.target_loss(CHIN, [2.0], max_params=7e9)
    assert df.active_constraint[0] == "max_params" and df.params[0] == 7e9
    df = ss.target_loss(CHIN, [2.0], max_tokens=4e11)
    assert df.active_constraint[0] == "max_tokens" and df.tokens[0] == 4e11
    df = ss.target_loss(CHIN, [2.0], max_tokens_per_param=20.0)
    assert df.active_constraint[0] == "max_tokens_per_param"
    assert df.tokens_per_param[0] == pytest.approx(20.0, rel=1e-10)


def test_constraints_that_overshoot_the_target():
    """min_params and min_tokens big enough to beat the target: the cheapest allowed point, lower loss."""
    df = ss.target_loss(CHIN, [2.5], min_params=1e10, min_tokens=1e12)
    assert df.feasible[0] and df.params[0] == 1e10 and df.tokens[0] == 1e12
    assert df.loss[0] < 2.5


def test_time_limit_flags_targets_too_costly():
    df = ss.target_loss(CHIN, [2.3, 1.9], gpu="H100-SXM", gpus=8, max_days=30)
    assert df.feasible.tolist() == [True, False]
    assert df.active_constraint[1] == "max_days"
    assert df.wall_days[0] <= 30


@given(name=st.sampled_from(["hoffmann2022", "besiroglu2024", "kaplan2020"]),
       t1=st.floats(1.9, 3.5), t2=st.floats(1.9, 3.5), dinf=st.sampled_from([0.0, 1e10, 1e12, 1e14]),
       max_tpp=st.one_of(st.none(), st.floats(5.0, 1e4)), max_params=st.one_of(st.none(), st.floats(1e8, 1e12)))
@settings(max_examples=150, deadline=None)
def test_properties(name, t1, t2, dinf, max_tpp, max_params):
    assume(abs(t1 - t2) > 1e-6)
    law = ss.get_law(name)
    lo, hi = sorted((t1, t2))
    df = ss.target_loss(law, [lo, hi], inference_tokens=dinf or None, max_tokens_per_param=max_tpp,
                        max_params=max_params)
    ok = df.feasible.to_numpy()
    if ok[0]:  # an easier target is reachable too, and costs no more
        assert ok[1]
        assert df.lifetime_flops[1] <= df.lifetime_flops[0] * (1 + 1e-12) if dinf else \
            df.flops[1] <= df.flops[0] * (1 + 1e-12)
    for i in np.flatnonzero(ok):
        assert df.loss[i] == pytest.approx([lo, hi][i], rel=1e-11)
        if max_tpp is not None:
            assert df.tokens_per_param[i] <= max_tpp * (1 + 1e-12)
        if max_params is not None:
            assert df.params[i] <= max_params
    for i in np.flatnonzero(~ok):
        assert np.isnan(df.params[i]) and df.active_constraint[i] in ("none", "max_days")


@pytest.mark.parametrize("kwargs, match", [
    (dict(loss=[math.nan]), "target loss"),
    (dict(loss=[-1.0]), "target loss"),
    (dict(loss=[]), "target loss: no values"),
    (dict(loss=[2.0], inference_tokens=-1.0), "--inference-tokens must be a finite number >= 0"),
    (dict(loss=[2.0], min_params=2e9, max_params=1e9), "greater than --max-params"),
    (dict(loss=[2.0], max_days=3), "--max-days needs --gpus and a GPU"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ScalesweepError, match=match):
        ss.target_loss(CHIN, **kwargs)
