"""The engine's stages seen from the outside: budgets in every unit, several laws in one question, and the
reason every infeasible row gives (checked against the limits that were set, worked out by hand)."""

import numpy as np
import pandas as pd
import pytest

import scalesweep as ss
from scalesweep import engine
from scalesweep.errors import ScalesweepError

from .helpers import run

FLOPS = np.geomspace(1e20, 1e24, 5)


def test_budget_in_days_by_hand():
    # 30 days on 1,024 H100-SXM at 40% MFU: 30 * 24 * 1024 * 989.4e12 * 0.4 * 3600 FLOPs.
    df = ss.frontier("hoffmann2022", [30.0], unit="days", gpu="H100-SXM", gpus=1024)
    assert df.flops[0] == pytest.approx(30 * 24 * 1024 * 989.4e12 * 0.4 * 3600, rel=1e-14)
    assert df.wall_days[0] == pytest.approx(30.0, rel=1e-14)
    assert df.budget_flops[0] == df.flops[0]
    with pytest.raises(ScalesweepError, match="--unit days needs --gpus"):
        ss.frontier("hoffmann2022", [30.0], unit="days", gpu="H100-SXM")


def test_several_laws_in_one_question_equal_one_question_each():
    df = ss.frontier("hoffmann2022,kaplan2020", FLOPS, max_params=1e11)
    assert list(df.columns[:2]) == ["law", "flops"] and len(df) == 10
    assert df.law.astype(str).tolist() == ["hoffmann2022"] * 5 + ["kaplan2020"] * 5
    for i, name in enumerate(("hoffmann2022", "kaplan2020")):
        one = ss.frontier(name, FLOPS, max_params=1e11)
        part = df.iloc[5 * i: 5 * i + 5].drop(columns="law").reset_index(drop=True)
        pd.testing.assert_frame_equal(part, one, check_categorical=False)
    t = ss.target_loss(["hoffmann2022", "besiroglu2024"], [2.0, 2.2])
    assert t.law.astype(str).tolist() == ["hoffmann2022"] * 2 + ["besiroglu2024"] * 2
    assert t.params[3] == ss.target_loss("besiroglu2024", [2.2]).params[0]
    with pytest.raises(ScalesweepError, match="given twice"):
        ss.frontier(["kaplan2020", "kaplan2020"], FLOPS)


def test_cli_takes_comma_separated_laws():
    out = run(["frontier", "--flops-range", "1e20:1e22:3", "--law", "hoffmann2022,deepseek2024"]).stdout
    lines = out.splitlines()
    assert lines[0].startswith("law,flops,params") and len(lines) == 7
    assert lines[4].startswith('"deepseek2024",1e+20')


@pytest.mark.parametrize("kwargs, reason", [
    # N >= 1e11 and D >= 1e12 need C >= 6 * 1e11 * 1e12 = 6e23 > 1e21
    (dict(min_params=1e11, min_tokens=1e12), "min_params+min_tokens"),
    # one A100 holds 80e9 / 16 = 5e9 parameters of training state, less than the 1e10 asked for
    (dict(min_params=1e10, gpu="A100", gpus=1), "min_params+memory"),
    # only 1e12 unique tokens (single-epoch law): at most 1e12 tokens, but at least 1e13 asked for
    (dict(min_tokens=1e13, unique_tokens=1e12), "min_tokens+unique_tokens"),
    # D/N >= 100 and D <= 1e9 need N <= 1e7, i.e. D = C/(6N) >= 1.7e13 > 1e9
    (dict(min_tokens_per_param=100, max_tokens=1e9), "max_tokens+min_tokens_per_param"),
])
def test_infeasible_rows_name_the_conflicting_limits(kwargs, reason):
    df = ss.frontier("hoffmann2022", [1e21], **kwargs)
    assert not df.feasible[0] and df.infeasible_reason[0] == reason
    assert np.isnan(df.params[0]) and df.active_constraint[0] == "none"


def test_contradictory_limits_are_refused_up_front():
    for kwargs in (dict(min_params=1e12, max_params=1e9), dict(min_tokens_per_param=100, max_tokens_per_param=10)):
        with pytest.raises(ScalesweepError, match="no allocation can satisfy both"):
            ss.frontier("hoffmann2022", [1e21], **kwargs)


def test_other_reasons():
    assert ss.frontier("hoffmann2022", [1.0]).infeasible_reason[0] == "budget"  # C/6 < 1: no N, D >= 1
    rule = ss.frontier("llama3_2024", [1e24], max_params=1e9)  # the rule's ~1e10 params cannot be steered
    assert not rule.feasible[0] and rule.infeasible_reason[0] == "max_params"
    # E = 1.6934: 1.5 is below the irreducible loss; 1e9 params cannot reach 1.9 since E + A/N^alpha =
    # 1.6934 + 406.4 / 1e9^0.33917 = 1.6934 + 0.3659 = 2.059 > 1.9 whatever the data
    t = ss.target_loss("hoffmann2022", [1.5, 1.9], max_params=1e9)
    assert t.infeasible_reason.tolist() == ["irreducible_loss", "max_params"]
    assert ss.frontier("hoffmann2022", [1e22]).infeasible_reason.isna().all()


def test_target_loss_over_the_time_limit():
    t = ss.target_loss("hoffmann2022", [2.0, 1.9], gpu="A100", gpus=8, max_days=30)
    # 8 A100s at 40% for 30 days deliver 8 * 312e12 * 0.4 * 86400 * 30 = 2.6e21 FLOPs
    cap = 8 * 312e12 * 0.4 * 86400 * 30
    reachable = ss.target_loss("hoffmann2022", [2.0, 1.9]).flops
    assert t.feasible.tolist() == [bool(x <= cap) for x in reachable]
    assert (t.infeasible_reason[~t.feasible] == "max_days").all() and (~t.feasible).any()


def test_warning_counts_by_reason():
    # budgets 1, 2.2e7, 4.6e14, 1e22 FLOPs: the two smallest cannot afford 1e10 params at D >= 1 (C/6 < 1e10);
    # the two largest could, but one A100 holds only 5e9 params
    res = run(["frontier", "--flops-range", "1:1e22:4", "--min-params", "1e10", "--gpu", "A100", "--gpus", "1"])
    assert "warning: 4 of 4 budgets are infeasible (feasible=false): 2 min_params+budget, 2 min_params+memory" \
        in res.stderr


def test_stages_are_callable_on_their_own():
    inputs = {"pf_days": np.array([1.0, 2.0])}
    hw = engine._hardware({})
    np.testing.assert_array_equal(engine.budget_flops(inputs, {"pf_days"}, 2, hw), [8.64e19, 1.728e20])
    raw, lb = engine.bounds([np.nan, 1e9, np.nan, np.nan, np.nan, np.nan], np.nan, 3)
    assert raw.shape == (1, 8) and raw[0, 1] == 1e9 and raw[0, 0] == 0.0 and lb[0, 6] == -np.inf
    assert raw[0, 7] == lb[0, 7] == np.inf  # no convergence-gap limit


def test_frontier_reason_groups_match_a_sort_of_the_tuples():
    """Infeasible budget rows are grouped by packed codes; the groups, their order and each row's group are those
    of numpy's unique over the (lower code, upper code, memory, data) tuples."""
    rng = np.random.default_rng(0)
    k = 5000
    lo, hi = rng.integers(-1, len(engine.ACTIVE_NAMES), k), rng.integers(-1, len(engine.ACTIVE_NAMES), k)
    mem, uniq = rng.integers(0, 2, k).astype(bool), rng.integers(0, 2, k).astype(bool)
    rows = np.arange(k)
    keys = np.stack([lo, hi, mem, uniq], axis=1).astype(np.int64)
    expected = engine._grouped(rows, keys, lambda i, key: engine._frontier_label(key[0], key[1], key[2], key[3]))
    got = engine._frontier_groups(rows, lo, hi, mem, uniq)
    assert got[1] == expected[1] and np.array_equal(got[2], expected[2])


def test_a_column_is_given_where_any_row_gives_it():
    assert engine._any_given(np.array([np.nan, 1.0])) and engine._any_given(2.0)
    assert not engine._any_given(np.array([np.nan, np.nan])) and not engine._any_given(np.nan)
    assert not engine._any_given(np.array([]))
