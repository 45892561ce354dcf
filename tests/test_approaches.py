"""Hoffmann et al. 2022 Approaches 1 (training-curve envelope) and 2 (IsoFLOP profiles) on runs: scalesweep.approaches
against the Chinchilla closed form (a = beta/(alpha+beta), Eq. 4) and against the loop-and-polyfit references in
tests/reference.py. The runs are synthetic, drawn here from known Chinchilla-form laws with off-grid
exponents.

The tests in ``TestCli`` run ``scalesweep fit-isoflop`` / ``scalesweep fit-envelope`` through scalesweep.cli: they
need those commands in scalesweep/cli.py (and the tables.COLUMNS entries of their tables). ``TestFrontierBandsOfRules``
needs api.frontier_bands to take allocation rules.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalesweep import api
from scalesweep.approaches import ENVELOPE_COLUMNS, ISOFLOP_COLUMNS, envelope_fit, isoflop_fit
from scalesweep.errors import ScalesweepError
from scalesweep.laws import load_law_file
from tests import reference as ref

# Off-grid Chinchilla-form laws (E, A, B, alpha, beta): a = 0.5441 and 0.4085.
LAW1 = (1.75, 400.0, 3500.0, 0.31, 0.37)
LAW2 = (1.9, 2540.0, 600.0, 0.42, 0.29)
BUDGETS = np.geomspace(1e18, 1e21, 6)


def isoflop_runs(law, budgets=BUDGETS, sizes=7, width=1.2, offsets=None, noise=0.0, seed=0):
    """Runs at each budget over ``sizes`` model sizes spread evenly in log10 N over ``width`` decades around the true
    optimum (shifted by ``offsets[j]`` decades), tokens = C/(6N), plus Gaussian noise on the loss."""
    n_coef, a, _, _ = ref.chinchilla_allocation(*law)
    rng = np.random.default_rng(seed)
    rows = []
    for j, c in enumerate(budgets):
        shift = 0.0 if offsets is None else offsets[j]
        n = n_coef * c**a * 10 ** (shift + np.linspace(-width / 2, width / 2, sizes))
        d = c / (6 * n)
        y = ref.chinchilla_loss(n, d, *law) + (rng.normal(0, noise, sizes) if noise else 0.0)
        rows += [{"flops": c, "params": ni, "tokens": di, "loss": yi} for ni, di, yi in zip(n, d, y, strict=True)]
    return pd.DataFrame(rows)


def training_curves(law, lo=1e7, hi=1e10, per_decade=8, checkpoints=40, tpp=(1.0, 400.0), noise=0.0, seed=0):
    """One run per model size (log-spaced, ``per_decade``), checkpoints log-spaced over tokens-per-param ``tpp``;
    each checkpoint's loss is the law at the tokens seen so far (plus noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    decades = math.log10(hi / lo)
    for k, n in enumerate(np.geomspace(lo, hi, int(round(decades * per_decade)) + 1)):
        d = n * np.geomspace(tpp[0], tpp[1], checkpoints)
        y = ref.chinchilla_loss(n, d, *law) + (rng.normal(0, noise, d.size) if noise else 0.0)
        rows += [{"run": f"r{k}", "params": n, "tokens": di, "loss": yi} for di, yi in zip(d, y, strict=True)]
    return pd.DataFrame(rows)


def write_csv(tmp_path, df, name="runs.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


# ------------------------------------------------------------------------------------------ approach 2


@pytest.mark.parametrize("law", [LAW1, LAW2])
def test_isoflop_noise_free_recovers_chinchilla_exponent(law):
    # With the same grid in log10(N/N_opt) at every budget, each parabola's vertex is off by the same amount,
    # so the fitted exponents are exact (the intercepts are not).
    _, a, _, b = ref.chinchilla_allocation(*law)
    res = isoflop_fit(isoflop_runs(law), bootstrap=200, seed=3)
    assert res.a == pytest.approx(law[4] / (law[3] + law[4]), abs=1e-9)
    assert res.b == pytest.approx(b, abs=1e-9)
    lo, hi = res.intervals["N_exp"]
    assert lo <= res.a <= hi
    assert not res.warnings
    assert list(res.to_frame().columns) == list(ISOFLOP_COLUMNS)


@pytest.mark.parametrize("law,seed", [(LAW1, 11), (LAW2, 12)])
def test_isoflop_noisy_recovers_exponent_within_interval(law, seed):
    a_true = law[4] / (law[3] + law[4])
    offsets = np.random.default_rng(seed + 100).uniform(-0.15, 0.15, BUDGETS.size)
    runs = isoflop_runs(law, sizes=9, width=1.6, offsets=offsets, noise=0.002, seed=seed)
    res = isoflop_fit(runs, bootstrap=400, seed=seed, level=0.9)
    assert res.a == pytest.approx(a_true, abs=0.03)
    lo, hi = res.intervals["N_exp"]
    assert lo <= res.a <= hi
    assert lo <= a_true <= hi
    assert lo < hi


def test_isoflop_matches_reference_including_bootstrap():
    offsets = np.array([0.1, -0.2, 0.05, 0.3, -0.1, 0.0])
    runs = isoflop_runs(LAW2, sizes=5, offsets=offsets, noise=0.004, seed=5)
    res = isoflop_fit(runs, bootstrap=60, seed=9, level=0.8)
    rows, (gn, a, gd, b) = ref.isoflop(runs.flops, runs.params, runs.tokens, runs.loss)
    tab = res.to_frame()
    assert tab.flops.tolist() == pytest.approx([r["flops"] for r in rows], rel=1e-12)
    for col in ("params_opt", "tokens_opt", "loss_opt"):
        assert tab[col].tolist() == pytest.approx([r[col] for r in rows], rel=1e-9)
    assert tab.runs.tolist() == [5] * 6
    assert tab.extrapolated.tolist() == [r["extrapolated"] for r in rows]
    assert (res.params_coef, res.a, res.tokens_coef, res.b) == pytest.approx((gn, a, gd, b), rel=1e-9)
    per_budget, fits = ref.isoflop_bootstrap(runs.flops, runs.params, runs.tokens, runs.loss, 60, 9, 0.8)
    for row, want in zip(tab.itertuples(), per_budget, strict=True):
        assert (row.params_opt_lo, row.params_opt_hi) == pytest.approx(want["params"], rel=1e-9)
        assert (row.tokens_opt_lo, row.tokens_opt_hi) == pytest.approx(want["tokens"], rel=1e-9)
    for k, want in fits.items():
        assert res.intervals[k] == pytest.approx(want, rel=1e-9)


def test_isoflop_budget_of_runs_with_one_flops_value_is_that_value():
    # the geometric mean of equal values can round (1e18 -> 9.999999999999986e17); the table keeps the value
    tab = isoflop_fit(isoflop_runs(LAW1, budgets=[1e18, 3e18, 1e21], sizes=9), bootstrap=0).to_frame()
    assert tab.flops.tolist() == [1e18, 3e18, 1e21]


def test_isoflop_budgets_from_6nd_binned_within_tolerance():
    runs = isoflop_runs(LAW1, sizes=6)
    truth = runs.flops.to_numpy()
    jitter = np.random.default_rng(0).uniform(0.985, 1.015, len(runs))
    plain = runs.drop(columns="flops").assign(tokens=runs.tokens * jitter)  # C = 6ND now off by up to 1.5%
    res = isoflop_fit(plain, bootstrap=0)
    tab = res.to_frame()
    assert tab.runs.tolist() == [6] * BUDGETS.size
    assert tab.flops.to_numpy() == pytest.approx(BUDGETS, rel=0.015)
    c = 6 * plain.params * plain.tokens  # each inferred budget is the geometric mean of its runs' 6ND
    assert tab.flops.tolist() == pytest.approx(np.exp(np.log(c).groupby(truth).mean()).tolist(), rel=1e-12)
    # the runs of each row are the ones generated at that budget: same smallest and largest model
    grouped = runs.groupby("flops").params
    assert tab.params_min.tolist() == pytest.approx(grouped.min().tolist(), rel=1e-12)
    assert tab.params_max.tolist() == pytest.approx(grouped.max().tolist(), rel=1e-12)
    # with the planned budgets given, each row is that budget exactly
    given = isoflop_fit(plain, budgets=BUDGETS, bootstrap=0).to_frame()
    assert given.flops.tolist() == BUDGETS.tolist()
    rows, _ = ref.isoflop(truth, plain.params, plain.tokens, plain.loss)
    assert given.params_opt.tolist() == pytest.approx([r["params_opt"] for r in rows], rel=1e-9)
    with pytest.raises(ScalesweepError, match="over --rtol 0.001"):
        isoflop_fit(plain, budgets=BUDGETS, rtol=0.001, bootstrap=0)


def test_isoflop_extrapolated_minimum_flagged_warned_and_excludable():
    offsets = np.zeros(BUDGETS.size)
    offsets[2] = 0.9  # sizes 0.3 to 1.5 decades above the optimum: the minimum lies below the smallest size
    runs = isoflop_runs(LAW1, sizes=7, offsets=offsets)
    res = isoflop_fit(runs, bootstrap=0)
    tab = res.to_frame()
    assert tab.extrapolated.tolist() == [False, False, True, False, False, False]
    assert tab.params_opt[2] < tab.params_min[2]
    assert tab.used.all()
    assert len(res.warnings) == 1 and "extrapolated" in res.warnings[0] and f"{BUDGETS[2]:.4g}" in res.warnings[0]
    assert "\n" not in res.warnings[0]
    excl = isoflop_fit(runs, bootstrap=0, exclude_extrapolated=True)
    assert excl.to_frame().used.tolist() == [True, True, False, True, True, True]
    _, want = ref.isoflop(runs.flops, runs.params, runs.tokens, runs.loss, exclude_extrapolated=True)
    assert (excl.params_coef, excl.a, excl.tokens_coef, excl.b) == pytest.approx(want, rel=1e-9)
    assert excl.a == pytest.approx(LAW1[4] / (LAW1[3] + LAW1[4]), abs=1e-9)  # the remaining grids are aligned
    assert abs(res.a - excl.a) > 1e-3


def test_isoflop_extrapolated_in_tokens_alone_is_flagged():
    # D_opt = C/(6 N_opt) at the budget. The minimum in log10 N lies just inside the sizes (0.001 decade above the
    # smallest), and the smallest model's run used 3% fewer tokens than its budget (within --rtol): D_opt then lies
    # above every tokens value sampled.
    runs = isoflop_runs(LAW1, sizes=5).drop(columns="flops")
    sel = np.flatnonzero((6 * runs.params * runs.tokens / BUDGETS[3] - 1).abs().to_numpy() < 1e-9)
    x = np.log10(runs.loc[sel, "params"].to_numpy())
    runs.loc[sel, "loss"] = 2.0 + (x - (x.min() + 0.001)) ** 2
    runs.loc[sel[0], "tokens"] *= 0.97
    budget = np.repeat(BUDGETS, 5)
    rows, _ = ref.isoflop(budget, runs.params, runs.tokens, runs.loss)
    assert [r["extrapolated"] for r in rows] == [False, False, False, True, False, False]
    res = isoflop_fit(runs, budgets=BUDGETS, bootstrap=0)
    tab = res.to_frame()
    assert tab.extrapolated.tolist() == [False, False, False, True, False, False]
    d = runs.loc[sel, "tokens"]
    assert res.warnings == [f"budget {BUDGETS[3]:.4g} FLOPs: the minimum (D = C/(6N) = {rows[3]['tokens_opt']:.4g}) "
                            f"lies outside the sampled tokens ({d.min():.4g} to {d.max():.4g}): extrapolated"]
    assert tab.params_min[3] <= tab.params_opt[3] <= tab.params_max[3]
    assert tab.tokens_opt[3] > d.max()


def test_isoflop_refuses_tokens_that_disagree_with_flops():
    runs = isoflop_runs(LAW1)
    bad = runs.assign(tokens=runs.tokens.where(runs.flops != BUDGETS[-1], 2 * runs.tokens))  # doubled at 1e21
    first = int(np.flatnonzero((runs.flops == BUDGETS[-1]).to_numpy())[0])
    with pytest.raises(ScalesweepError) as exc:
        isoflop_fit(bad, bootstrap=5)
    msg = str(exc.value)
    assert f"row {first + 1}: tokens" in msg and "+100.00% from flops" in msg and "--rtol 0.05" in msg
    assert "\n" not in msg
    with pytest.raises(ScalesweepError, match="-50.00% from flops"):
        isoflop_fit(runs.assign(tokens=runs.tokens / 2), bootstrap=0)
    # the tolerance is --rtol: 3% off passes with the default 5% and is refused at 2%
    near = runs.assign(tokens=runs.tokens.where(runs.index != 4, runs.tokens * 1.03))
    isoflop_fit(near, bootstrap=0)
    with pytest.raises(ScalesweepError, match=r"row 5: tokens .* \+3\.00% from flops, over --rtol 0\.02"):
        isoflop_fit(near, bootstrap=0, rtol=0.02)
    with pytest.raises(ScalesweepError, match="row 5: tokens"):
        isoflop_fit(near, budgets=BUDGETS, bootstrap=0, rtol=0.02)
    # named columns are named in the message
    named = bad.rename(columns={"flops": "C", "tokens": "D", "params": "N"})
    with pytest.raises(ScalesweepError, match=r"D .* disagrees with C/\(6·N\)"):
        isoflop_fit(named, flops_column="C", tokens_column="D", params_column="N", bootstrap=0)
    # without a tokens column the tokens are flops/(6 params): nothing to disagree
    isoflop_fit(bad.drop(columns="tokens"), bootstrap=0)


def _six_nd(law_params, flops):
    p = law_params
    return 6 * (p["N_coef"] * flops ** p["N_exp"]) * (p["D_coef"] * flops ** p["D_exp"]) / flops


@pytest.mark.parametrize("plain", [False, True])
def test_isoflop_allocation_keeps_c_equal_6nd(tmp_path, plain):
    # runs of each budget whose C differs by up to 4% (within --rtol): a parabola in log D would put D_opt off
    # C/(6 N_opt); the law must keep 6 N_opt D_opt = C
    runs = isoflop_runs(LAW2, sizes=7, noise=0.003, seed=3)
    jitter = np.random.default_rng(1).uniform(0.96, 1.04, len(runs))
    runs = runs.assign(flops=runs.flops * jitter)
    if plain:
        runs = runs.drop(columns="flops").assign(tokens=runs.tokens * jitter)
    res = isoflop_fit(runs, bootstrap=40, seed=2)
    path = tmp_path / "law.json"
    res.write_law_file(path)
    data = json.loads(path.read_text())
    flops = np.geomspace(1e15, 1e27, 13)
    assert _six_nd(data["parameters"], flops) == pytest.approx(np.ones(flops.size), rel=1e-9, abs=0)
    assert data["parameters"]["N_exp"] + data["parameters"]["D_exp"] == pytest.approx(1, abs=1e-12)
    tab = res.to_frame()
    assert (6 * tab.params_opt * tab.tokens_opt / tab.flops).to_numpy() == pytest.approx(1, rel=1e-12)
    assert (6 * tab.params_opt_hi * tab.tokens_opt_lo / tab.flops).to_numpy() == pytest.approx(1, rel=1e-9)
    for row in data["bootstrap"]["samples"]:
        s = dict(zip(data["bootstrap"]["parameter_names"], row, strict=True))
        assert _six_nd(s, flops) == pytest.approx(np.ones(flops.size), rel=1e-9, abs=0)
    front = api.frontier(load_law_file(path), flops)
    assert (6 * front.params * front.tokens / flops).to_numpy() == pytest.approx(1, rel=1e-9)


def test_envelope_allocation_keeps_c_equal_6nd(tmp_path):
    res = envelope_fit(training_curves(LAW1, lo=1e7, hi=1e9, per_decade=4, checkpoints=12, noise=0.002, seed=1),
                       points=40, bootstrap=30, seed=1)
    path = tmp_path / "law.json"
    res.write_law_file(path)
    data = json.loads(path.read_text())
    flops = np.geomspace(1e15, 1e27, 13)
    assert _six_nd(data["parameters"], flops) == pytest.approx(np.ones(flops.size), rel=1e-9, abs=0)
    for row in data["bootstrap"]["samples"]:
        s = dict(zip(data["bootstrap"]["parameter_names"], row, strict=True))
        assert _six_nd(s, flops) == pytest.approx(np.ones(flops.size), rel=1e-9, abs=0)


def test_isoflop_rtol_boundary():
    runs = isoflop_runs(LAW1, sizes=5).drop(columns="flops")
    runs.loc[2, "tokens"] *= 1.03  # this run's C = 6ND is 3% above its budget
    with pytest.raises(ScalesweepError, match=r"run 3: .* 3\.0% from its nearest of --budgets"):
        isoflop_fit(runs, budgets=BUDGETS, rtol=0.025, bootstrap=0)
    tab = isoflop_fit(runs, budgets=BUDGETS, rtol=0.035, bootstrap=0).to_frame()
    assert tab.runs.tolist() == [5] * BUDGETS.size
    with pytest.raises(ScalesweepError, match=r"budget 1\.03e\+18 FLOPs has 1 run\(s\) .* within --rtol 0\.025"):
        isoflop_fit(runs, rtol=0.025, bootstrap=0)  # inferred budgets: the run 3% off is a budget of its own
    # two budgets 10% apart stay apart with the default tolerance and merge into one with rtol 0.2
    close = isoflop_runs(LAW1, budgets=[1e19, 1.1e19], sizes=4).drop(columns="flops")
    assert isoflop_fit(close, bootstrap=0).to_frame().runs.tolist() == [4, 4]
    with pytest.raises(ScalesweepError, match="all 8 runs share one budget"):
        isoflop_fit(close, rtol=0.2, bootstrap=0)


def test_isoflop_parabola_without_minimum_left_out():
    runs = isoflop_runs(LAW2, sizes=5)
    sel = runs.flops == BUDGETS[1]
    x = np.log10(runs.loc[sel, "params"])
    runs.loc[sel, "loss"] = 3.0 - (x - x.mean()) ** 2  # opens downward
    res = isoflop_fit(runs, bootstrap=20)
    tab = res.to_frame()
    assert tab.convex.tolist() == [True, False, True, True, True, True]
    assert not tab.used[1] and math.isnan(tab.params_opt[1])
    assert any("opens downward" in w for w in res.warnings)
    assert res.a == pytest.approx(LAW2[4] / (LAW2[3] + LAW2[4]), abs=1e-9)


def _flat(runs, budget=None):
    """Every loss (or those of one budget) 3.0."""
    sel = slice(None) if budget is None else (runs.flops == budget)
    runs = runs.copy()
    runs.loc[sel, "loss"] = 3.0
    return runs


def test_isoflop_all_flat_losses_is_one_line_error():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning either
        with pytest.raises(ScalesweepError) as exc:
            isoflop_fit(_flat(isoflop_runs(LAW1)), bootstrap=50)
    msg = str(exc.value)
    assert "only 0 of 6 budgets have a usable minimum" in msg
    assert "has no curvature beyond rounding" in msg and "no minimum" in msg
    assert "\n" not in msg


def test_isoflop_flat_budget_has_no_minimum_and_is_left_out():
    import warnings

    runs = _flat(isoflop_runs(LAW2, sizes=5), BUDGETS[2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = isoflop_fit(runs, bootstrap=30, seed=1)
    tab = res.to_frame()
    assert tab.convex.tolist() == [True, True, False, True, True, True]
    assert not tab.used[2] and math.isnan(tab.params_opt[2]) and math.isnan(tab.tokens_opt[2])
    assert tab.bootstrap_ok[2] == 0  # no resample of a flat profile has a minimum either
    assert abs(tab.curvature[2]) < 1e-10
    assert [w for w in res.warnings if "no curvature beyond rounding" in w] == [
        w for w in res.warnings if f"budget {BUDGETS[2]:.4g} FLOPs" in w]
    assert res.a == pytest.approx(LAW2[4] / (LAW2[3] + LAW2[4]), abs=1e-9)
    rows, want = ref.isoflop(runs.flops, runs.params, runs.tokens, runs.loss)
    assert [r["convex"] for r in rows] == tab.convex.tolist()
    assert (res.params_coef, res.a, res.tokens_coef, res.b) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("q,minimum", [(0.0, False), (1e-14, False), (1e-11, False), (1e-6, True), (1e-3, True)])
def test_isoflop_curvature_threshold(q, minimum):
    # loss = 3 + q (log10 N - v)^2 over 1.2 decades (h = 0.6): the quadratic term moves the loss by q h^2 / 3.36
    # of itself; a minimum needs more than sqrt(eps) = 1.5e-8 (q above about 1.4e-7)
    runs = isoflop_runs(LAW1, sizes=7)
    x = np.log10(runs.params)
    v = x.groupby(runs.flops).transform("mean")
    runs = runs.assign(loss=3.0 + q * (x - v) ** 2)
    if minimum:
        res = isoflop_fit(runs, bootstrap=0)
        assert res.to_frame().convex.all()
        assert res.a == pytest.approx(LAW1[4] / (LAW1[3] + LAW1[4]), abs=1e-6)
    else:
        with pytest.raises(ScalesweepError, match="no curvature beyond rounding"):
            isoflop_fit(runs, bootstrap=0)


def test_isoflop_far_vertex_gives_no_runtime_warning():
    import warnings

    # a real but shallow curvature whose vertex lies 400 decades away: 10^400 overflows; flagged, never a warning
    runs = isoflop_runs(LAW1, sizes=5)
    sel = runs.flops == BUDGETS[1]
    x = np.log10(runs.loc[sel, "params"])
    runs.loc[sel, "loss"] = 3.0 + 1e-6 * (x - 400.0) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = isoflop_fit(runs, bootstrap=20, exclude_extrapolated=True)
    tab = res.to_frame()
    assert tab.extrapolated.tolist() == [False, True, False, False, False, False]
    assert not tab.used[1] and tab.convex[1]
    assert res.a == pytest.approx(LAW1[4] / (LAW1[3] + LAW1[4]), abs=1e-9)


def test_bootstrap_and_points_sizes_checked_up_front(monkeypatch, tmp_path):
    from scalesweep import validate

    missing = tmp_path / "missing.csv"  # checked before the runs are read
    for fit, cmd in ((isoflop_fit, "fit-isoflop"), (envelope_fit, "fit-envelope")):
        with pytest.raises(ScalesweepError, match=f"{cmd} --bootstrap: 1,000,000,000,000 rows requested, over the "
                                                  "limit") as exc:
            fit(missing, bootstrap=10**12)
        assert "\n" not in str(exc.value)
    with pytest.raises(ScalesweepError, match="fit-envelope --points: 100,000,000,000 rows requested, over the limit"):
        envelope_fit(missing, points=10**11, bootstrap=0)
    # the memory guard, with the runs known
    monkeypatch.setattr(validate, "available_memory", lambda: 2**30)
    with pytest.raises(ScalesweepError, match=r"fit-isoflop --bootstrap: 2,000,000 rows need about .* GiB in "
                                              r"memory at once, more than the 1\.0 GiB available; use fewer"):
        isoflop_fit(isoflop_runs(LAW1), bootstrap=2_000_000)
    curves = training_curves(LAW1, lo=1e7, hi=1e8, per_decade=4, checkpoints=5)
    with pytest.raises(ScalesweepError, match=r"fit-envelope --bootstrap: 1,000,000 rows need about .* GiB"):
        envelope_fit(curves, bootstrap=1_000_000)
    with pytest.raises(ScalesweepError, match=r"fit-envelope --points: 3,000,000 rows need about .* GiB"):
        envelope_fit(curves, points=3_000_000, bootstrap=0)
    with pytest.raises(ScalesweepError, match=r"--bootstrap: 20,000 rows need about .* GiB"):
        envelope_fit(curves, points=20_000, bootstrap=20_000)  # neither alone, but together
    isoflop_fit(isoflop_runs(LAW1), bootstrap=100)  # small requests still run
    monkeypatch.setenv(validate.MAX_ROWS_ENV, "1000")
    with pytest.raises(ScalesweepError, match="fit-isoflop --bootstrap: 1,001 rows requested, over the limit of 1,000"):
        isoflop_fit(isoflop_runs(LAW1), bootstrap=1001)


def test_isoflop_bootstrap_progress_and_batches(monkeypatch):
    from scalesweep import approaches

    runs = isoflop_runs(LAW1, noise=0.003, seed=2)
    calls = []
    whole = isoflop_fit(runs, bootstrap=50, seed=3, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 300) and calls[-1] == (300, 300)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls) and {c[1] for c in calls} == {300}
    monkeypatch.setattr(approaches, "BOOTSTRAP_CELLS", 7)  # one replicate per pass
    calls.clear()
    small = isoflop_fit(runs, bootstrap=50, seed=3, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) == 301 and calls[-1] == (300, 300)
    for k, v in whole.intervals.items():
        assert small.intervals[k] == pytest.approx(v, rel=1e-12)
    pd.testing.assert_frame_equal(small.to_frame(), whole.to_frame(), rtol=1e-12)
    assert isoflop_fit(runs, bootstrap=0, progress=lambda *a: calls.append(a)).samples is None
    assert len(calls) == 301  # nothing to report without a bootstrap


def test_envelope_bootstrap_progress(monkeypatch):
    from scalesweep import approaches

    curves = training_curves(LAW1, lo=1e7, hi=1e9, per_decade=4, checkpoints=10, noise=0.002, seed=1)
    monkeypatch.setattr(approaches, "BATCH_CELLS", 1)
    calls = []
    envelope_fit(curves, points=30, bootstrap=20, seed=4, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 20)] + [(i, 20) for i in range(1, 21)]


def test_isoflop_reads_csv_and_parquet_paths(tmp_path):
    runs = isoflop_runs(LAW1, noise=0.003, seed=1)
    a = isoflop_fit(write_csv(tmp_path, runs), bootstrap=30, seed=2)
    runs.to_parquet(tmp_path / "runs.parquet")
    b = isoflop_fit(tmp_path / "runs.parquet", bootstrap=30, seed=2)
    c = isoflop_fit(runs, bootstrap=30, seed=2)
    assert a.a == b.a == c.a
    assert a.intervals == b.intervals == c.intervals


def test_isoflop_tokens_from_flops_column():
    runs = isoflop_runs(LAW1)
    res = isoflop_fit(runs.drop(columns="tokens"), bootstrap=0)
    full = isoflop_fit(runs, bootstrap=0)
    assert res.a == pytest.approx(full.a, rel=1e-12)
    assert res.tokens_coef == pytest.approx(full.tokens_coef, rel=1e-9)


@pytest.mark.parametrize("mutate,needle", [
    (lambda df: df.drop(columns="loss"), "no column 'loss'"),
    (lambda df: df.drop(columns=["tokens", "flops"]), "no column 'tokens'"),
    (lambda df: df.iloc[0:0], "has no rows"),
    (lambda df: df.assign(loss=df.loss.where(df.index != 4, np.nan)), "row 5, column 'loss'"),
    (lambda df: df.assign(params=df.params.where(df.index != 2, 0.0)), "row 3, column 'params'"),
    (lambda df: df.assign(tokens=df.tokens.where(df.index != 7, -5.0)), "row 8, column 'tokens'"),
    (lambda df: df.assign(loss=df.loss.astype(object).where(df.index != 0, "abc")), "row 1, column 'loss'"),
    (lambda df: df.assign(params=True), "row 1, column 'params': True"),
    (lambda df: df.assign(params=df.params.astype(object).where(df.index != 6, True)), "row 7, column 'params'"),
    (lambda df: df.groupby("flops").head(1), "a parabola needs at least 3 sizes per budget"),
    (lambda df: df.groupby("flops").head(2), "a parabola needs at least 3 sizes per budget"),
    (lambda df: df[df.flops == df.flops.iloc[0]], "a power law needs at least 2 budgets"),
])
def test_isoflop_bad_input_one_line_errors(mutate, needle):
    with pytest.raises(ScalesweepError) as exc:
        isoflop_fit(mutate(isoflop_runs(LAW1)), bootstrap=0)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_isoflop_bad_files_and_options(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("flops,params,tokens,loss\n")
    with pytest.raises(ScalesweepError, match="has no rows"):
        isoflop_fit(empty)
    with pytest.raises(ScalesweepError, match="does not exist"):
        isoflop_fit(tmp_path / "missing.csv")
    runs = isoflop_runs(LAW1)
    for kwargs, needle in (({"bootstrap": 1}, "at least 2 resamples"), ({"bootstrap": -3}, "--bootstrap"),
                           ({"level": 1.0}, "--level"), ({"level": 0}, "--level"), ({"seed": -1}, "--seed"),
                           ({"rtol": 0}, "--rtol"), ({"budgets": [1e19, -1]}, "--budgets")):
        with pytest.raises(ScalesweepError, match=needle):
            isoflop_fit(runs, **kwargs)
    with pytest.raises(ScalesweepError, match="DataFrame or the path"):
        isoflop_fit([1, 2, 3])


def test_isoflop_law_file_loads_and_frontier_reproduces_power_laws(tmp_path):
    runs = isoflop_runs(LAW1, noise=0.003, seed=4)
    res = isoflop_fit(runs, bootstrap=50, seed=1)
    path = tmp_path / "law.json"
    res.write_law_file(path)
    law = load_law_file(path)
    assert law.family == "allocation_rule"
    flops = np.array([3e18, 1e21, 1e24])
    # expected from the reference fit, not from the result under test
    _, (gn, a, gd, b) = ref.isoflop(runs.flops, runs.params, runs.tokens, runs.loss)
    df = api.frontier(law, flops)
    assert df.params.to_numpy() == pytest.approx(gn * flops**a, rel=1e-9)
    assert df.tokens.to_numpy() == pytest.approx(gd * flops**b, rel=1e-9)
    cmp = api.compare(flops, [law])
    assert cmp.params.to_numpy() == pytest.approx(gn * flops**a, rel=1e-9)
    data = json.loads(path.read_text())
    assert data["fit"]["approach"] == "isoflop" and data["bootstrap"]["resamples"] == 50
    samples = np.array(data["bootstrap"]["samples"])
    assert samples.shape == (50, 5)
    assert np.percentile(samples[:, 1], [10, 90]) == pytest.approx(res.intervals["N_exp"], rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.3, 0.7), log_g=st.floats(-2.5, 0.5), e=st.floats(1.0, 4.0),
       curv=st.lists(st.floats(0.05, 2.0), min_size=3, max_size=6),
       spans=st.lists(st.tuples(st.floats(0.2, 0.9), st.floats(0.2, 0.9)), min_size=3, max_size=6))
def test_isoflop_exact_parabolas_give_exact_power_law(a, log_g, e, curv, spans):
    # Losses exactly quadratic in log10 N with the vertex at N = G C^a (inside the sampled sizes): the fit must
    # return every vertex, and the power law, to rounding.
    k = min(len(curv), len(spans))
    budgets = np.geomspace(1e17, 1e23, k)
    rows = []
    for c, q, (below, above) in zip(budgets, curv[:k], spans[:k], strict=True):
        v = log_g + a * math.log10(c)
        x = np.linspace(v - below, v + above, 6)
        rows += [{"flops": c, "params": 10**xi, "tokens": c / (6 * 10**xi), "loss": e + q * (xi - v) ** 2}
                 for xi in x]
    res = isoflop_fit(pd.DataFrame(rows), bootstrap=0)
    assert res.a == pytest.approx(a, abs=1e-7)
    assert math.log10(res.params_coef) == pytest.approx(log_g, abs=1e-5)
    assert not res.to_frame().extrapolated.any()


# ------------------------------------------------------------------------------------------ approach 1


@pytest.mark.parametrize("law", [LAW1, LAW2])
def test_envelope_noise_free_recovers_chinchilla_exponent(law):
    a_true = law[4] / (law[3] + law[4])
    curves = training_curves(law)
    res = envelope_fit(curves, points=120, bootstrap=100, seed=0)
    assert res.a == pytest.approx(a_true, abs=0.015)
    assert res.b == pytest.approx(1 - a_true, abs=0.015)
    lo, hi = res.intervals["N_exp"]
    assert lo <= res.a <= hi
    assert lo <= a_true <= hi
    tab = res.to_frame()
    assert list(tab.columns) == list(ENVELOPE_COLUMNS)
    assert tab.used.sum() > 60
    # D per point is C / (6 N)
    assert (6 * tab.params * tab.tokens).to_numpy() == pytest.approx(tab.flops.to_numpy(), rel=1e-12)


def test_envelope_noisy_recovers_exponent():
    a_true = LAW1[4] / (LAW1[3] + LAW1[4])
    res = envelope_fit(training_curves(LAW1, noise=0.002, seed=8), points=100, bootstrap=200, seed=8, level=0.9)
    assert res.a == pytest.approx(a_true, abs=0.03)
    lo, hi = res.intervals["N_exp"]
    assert lo <= res.a <= hi and lo <= a_true <= hi


def test_envelope_matches_reference_including_bootstrap():
    curves = training_curves(LAW2, lo=1e7, hi=1e9, per_decade=4, checkpoints=12, noise=0.003, seed=2)
    curves = curves.sample(frac=1.0, random_state=0)  # checkpoints in any order
    res = envelope_fit(curves, points=30, bootstrap=40, seed=6)
    tab = res.to_frame()
    grid = tab.flops.to_numpy()
    first = 6 * curves.params * curves.tokens
    assert grid[0] == pytest.approx(first.min(), rel=1e-12) and grid[-1] == pytest.approx(first.max(), rel=1e-12)
    lc = ref.run_losses(curves.run, curves.params, curves.tokens, curves.loss, grid)
    points, fit = ref.envelope(lc, grid)
    assert tab.run.tolist() == [p["run"] for p in points]
    assert tab.params.tolist() == pytest.approx([p["params"] for p in points], rel=1e-12)
    assert tab.loss.tolist() == pytest.approx([p["loss"] for p in points], rel=1e-12)
    assert tab.runs_covering.tolist() == [p["runs_covering"] for p in points]
    assert tab.edge.tolist() == [p["edge"] for p in points]
    assert tab.used.tolist() == [p["used"] for p in points]
    assert (res.params_coef, res.a, res.tokens_coef, res.b) == pytest.approx(fit, rel=1e-9)
    want = ref.envelope_bootstrap(lc, grid, 40, 6, 0.8)
    for k, v in want.items():
        assert res.intervals[k] == pytest.approx(v, rel=1e-9)


def test_envelope_bootstrap_batches_do_not_change_it(monkeypatch):
    from scalesweep import approaches

    curves = training_curves(LAW1, lo=1e7, hi=1e9, per_decade=4, checkpoints=10, noise=0.002, seed=1)
    whole = envelope_fit(curves, points=30, bootstrap=50, seed=4)
    monkeypatch.setattr(approaches, "BATCH_CELLS", 1)  # one replicate per pass
    assert envelope_fit(curves, points=30, bootstrap=50, seed=4).intervals == whole.intervals


def test_envelope_several_horizons_per_size():
    # Hoffmann et al. trained each size to several horizons: runs of one size that stop at different tokens.
    short = training_curves(LAW2, lo=1e7, hi=1e9, per_decade=4, checkpoints=10, tpp=(1.0, 40.0), noise=0.002, seed=1)
    long = training_curves(LAW2, lo=1e7, hi=1e9, per_decade=4, checkpoints=10, tpp=(5.0, 400.0), noise=0.002, seed=2)
    curves = pd.concat([short.assign(run=short.run + "-short"), long.assign(run=long.run + "-long")])
    res = envelope_fit(curves, points=40, bootstrap=30, seed=0)
    tab = res.to_frame()
    lc = ref.run_losses(curves.run, curves.params, curves.tokens, curves.loss, tab.flops.to_numpy())
    points, fit = ref.envelope(lc, tab.flops.to_numpy())
    assert tab.run.tolist() == [p["run"] for p in points]
    assert {r.split("-")[1] for r in tab.run} == {"short", "long"}
    assert tab.edge.tolist() == [p["edge"] for p in points]
    assert (res.params_coef, res.a, res.tokens_coef, res.b) == pytest.approx(fit, rel=1e-9)
    for k, v in ref.envelope_bootstrap(lc, tab.flops.to_numpy(), 30, 0, 0.8).items():
        assert res.intervals[k] == pytest.approx(v, rel=1e-9)


def test_envelope_edge_points_flagged_and_include_edge():
    curves = training_curves(LAW1, lo=1e7, hi=1e9, per_decade=4, checkpoints=15)
    res = envelope_fit(curves, points=40, bootstrap=0)
    tab = res.to_frame()
    assert tab.edge.iloc[0] and tab.edge.iloc[-1]  # only the smallest run reaches the lowest budget, and so on
    assert (tab.used == ~tab.edge).all()
    assert any("smallest or largest model" in w for w in res.warnings)
    incl = envelope_fit(curves, points=40, bootstrap=0, include_edge=True)
    assert incl.to_frame().used.all()
    lc = ref.run_losses(curves.run, curves.params, curves.tokens, curves.loss, tab.flops.to_numpy())
    _, want = ref.envelope(lc, tab.flops.to_numpy(), include_edge=True)
    assert (incl.params_coef, incl.a, incl.tokens_coef, incl.b) == pytest.approx(want, rel=1e-9)


def test_envelope_flops_range_and_law_file(tmp_path):
    curves = training_curves(LAW1, noise=0.001, seed=3)
    res = envelope_fit(curves, points=50, flops_range=(1e18, 1e21), bootstrap=30, seed=1)
    tab = res.to_frame()
    assert tab.flops.iloc[0] == pytest.approx(1e18) and tab.flops.iloc[-1] == pytest.approx(1e21)
    lc = ref.run_losses(curves.run, curves.params, curves.tokens, curves.loss, tab.flops.to_numpy())
    _, (gn, a, gd, b) = ref.envelope(lc, tab.flops.to_numpy())
    path = tmp_path / "env.json"
    res.write_law_file(path)
    law = load_law_file(path)
    flops = np.array([1e19, 1e23])
    df = api.frontier(law, flops)
    assert df.params.to_numpy() == pytest.approx(gn * flops**a, rel=1e-9)
    assert df.tokens.to_numpy() == pytest.approx(gd * flops**b, rel=1e-9)
    assert json.loads(path.read_text())["fit"]["approach"] == "envelope"
    from_file = envelope_fit(write_csv(tmp_path, curves), points=50, flops_range=(1e18, 1e21), bootstrap=30, seed=1)
    assert from_file.info["runs_file"] == str(tmp_path / "runs.csv") and "runs_file" not in res.info
    assert from_file.a == res.a and from_file.intervals == res.intervals


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), runs=st.integers(3, 7), checkpoints=st.integers(2, 6))
def test_envelope_is_below_every_covering_run(seed, runs, checkpoints):
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(runs):
        n = 10 ** rng.uniform(7, 9)
        d = np.sort(10 ** rng.uniform(8, 11, checkpoints))
        d = np.unique(d)
        rows += [{"run": r, "params": n, "tokens": di, "loss": rng.uniform(2, 5)} for di in d]
    df = pd.DataFrame(rows)
    if df.params.nunique() < 2 or (df.groupby("run").size() < 2).any():
        return
    try:
        res = envelope_fit(df, points=25, bootstrap=0, include_edge=True)
    except ScalesweepError as exc:  # e.g. no two usable points: a one-line error
        assert "\n" not in str(exc)
        return
    tab = res.to_frame()
    lc = ref.run_losses(df.run, df.params, df.tokens, df.loss, tab.flops.to_numpy())
    for i, row in enumerate(tab.itertuples()):
        covering = [v[1][i] for v in lc.values() if np.isfinite(v[1][i])]
        assert row.runs_covering == len(covering)
        if covering:
            assert row.loss == pytest.approx(min(covering), rel=1e-12)


@pytest.mark.parametrize("mutate,needle", [
    (lambda df: df.drop(columns="run"), "no column 'run'"),
    (lambda df: df.drop(columns="tokens"), "no column 'tokens'"),
    (lambda df: df.iloc[0:0], "has no rows"),
    (lambda df: df.assign(loss=df.loss.where(df.index != 3, np.nan)), "row 4, column 'loss'"),
    (lambda df: df.assign(tokens=df.tokens.where(df.index != 0, 0.0)), "row 1, column 'tokens'"),
    (lambda df: df.assign(run=df.run.where(df.index != 2, None)), "row 3, column 'run'"),
    (lambda df: df.assign(params=df.params.where(df.index != 1, 5e6)), "different params values"),
    (lambda df: df.groupby("run").head(1), "needs at least 2"),
    (lambda df: pd.concat([df, df.iloc[[0]]]), "two checkpoints at the same tokens"),
    (lambda df: df.assign(params=1e8), "at least 2 model sizes"),
])
def test_envelope_bad_input_one_line_errors(mutate, needle):
    curves = training_curves(LAW1, lo=1e7, hi=1e8, per_decade=4, checkpoints=5)
    with pytest.raises(ScalesweepError) as exc:
        envelope_fit(mutate(curves), bootstrap=0)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_envelope_bad_options():
    curves = training_curves(LAW1, lo=1e7, hi=1e8, per_decade=4, checkpoints=5)
    for kwargs, needle in (({"points": 1}, "--points"), ({"flops_range": (1e20, 1e19)}, "LO"),
                           ({"flops_range": (1e30, 1e31)}, "misses every run"), ({"bootstrap": 1}, "at least 2"),
                           ({"level": 2}, "--level")):
        with pytest.raises(ScalesweepError, match=needle):
            envelope_fit(curves, **kwargs)


def test_bundled_examples_fit(tmp_path):
    from pathlib import Path

    data = Path(__file__).resolve().parent.parent / "data"
    iso = isoflop_fit(data / "example_isoflop_runs.csv", bootstrap=100)
    tab = iso.to_frame()
    assert len(tab) == 7 and tab.extrapolated.tolist() == [False] * 6 + [True]  # as make_examples.py designs it
    excl = isoflop_fit(data / "example_isoflop_runs.csv", bootstrap=100, exclude_extrapolated=True)
    a_true = 0.37 / (0.31 + 0.37)  # the law in data/make_examples.py
    assert excl.a == pytest.approx(a_true, abs=0.01)
    env = envelope_fit(data / "example_training_curves.csv", bootstrap=100)
    assert env.a == pytest.approx(a_true, abs=0.03)


# ------------------------------------------------------------------------------------------ the CLI


class TestCli:
    """``scalesweep fit-isoflop`` and ``scalesweep fit-envelope`` through scalesweep.cli.main."""

    @staticmethod
    def invoke(args):
        from click.testing import CliRunner

        from scalesweep.cli import cli

        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    def test_fit_isoflop_writes_law_and_table(self, tmp_path):
        runs = write_csv(tmp_path, isoflop_runs(LAW1, noise=0.002, seed=1))
        out, table = tmp_path / "law.json", tmp_path / "budgets.parquet"
        res = self.invoke(["fit-isoflop", runs, "-o", out, "--table", table, "--bootstrap", "50", "--seed", "2"])
        assert res.exit_code == 0, res.output
        api_res = isoflop_fit(runs, bootstrap=50, seed=2)
        law = load_law_file(out)
        assert law.params["N_exp"] == pytest.approx(api_res.a, rel=1e-12)
        tab = pd.read_parquet(table)
        assert tab.params_opt.tolist() == pytest.approx(api_res.to_frame().params_opt.tolist(), rel=1e-12)
        assert "N_opt" in res.stderr

    def test_fit_isoflop_warns_extrapolated(self, tmp_path):
        offsets = np.zeros(BUDGETS.size)
        offsets[0] = -0.9
        runs = write_csv(tmp_path, isoflop_runs(LAW1, offsets=offsets))
        res = self.invoke(["fit-isoflop", runs, "-o", tmp_path / "law.json", "--bootstrap", "0"])
        assert res.exit_code == 0, res.output
        assert any(line.startswith("warning:") and "extrapolated" in line for line in res.stderr.splitlines())

    def test_fit_envelope_writes_law(self, tmp_path):
        curves = write_csv(tmp_path, training_curves(LAW2, lo=1e7, hi=1e9, per_decade=4, checkpoints=12))
        out = tmp_path / "law.json"
        res = self.invoke(["fit-envelope", curves, "-o", out, "--points", "40", "--bootstrap", "20"])
        assert res.exit_code == 0, res.output
        want = envelope_fit(curves, points=40, bootstrap=20)
        assert load_law_file(out).params["N_exp"] == pytest.approx(want.a, rel=1e-12)
        front = self.invoke(["frontier", "--law-file", out, "--flops-range", "1e21", "-o", tmp_path / "f.csv"])
        assert front.exit_code == 0, front.output
        assert pd.read_csv(tmp_path / "f.csv").params[0] == pytest.approx(want.params_coef * 1e21**want.a, rel=1e-9)

    @pytest.mark.parametrize("cmd", ["fit-isoflop", "fit-envelope"])
    def test_bad_input_is_one_line_error(self, tmp_path, cmd):
        bad = tmp_path / "bad.csv"
        bad.write_text("params,tokens,loss\n1e8,1e9,nan\n")
        res = self.invoke([cmd, bad, "-o", tmp_path / "law.json"])
        assert res.exit_code == 1
        err = res.stderr.strip()
        assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
        assert not (tmp_path / "law.json").exists()

    @pytest.mark.parametrize("case", ["flat", "tokens", "bootstrap", "points"])
    def test_degenerate_and_huge_requests_are_one_line_errors(self, tmp_path, case):
        runs = isoflop_runs(LAW1)
        curves = training_curves(LAW1, lo=1e7, hi=1e8, per_decade=4, checkpoints=5)
        args, needle = {
            "flat": (["fit-isoflop", write_csv(tmp_path, _flat(runs), "flat.csv"), "--bootstrap", "50"],
                     "beyond rounding"),
            "tokens": (["fit-isoflop", write_csv(tmp_path, runs.assign(tokens=2 * runs.tokens), "tokens.csv")],
                       "+100.00% from"),
            "bootstrap": (["fit-envelope", write_csv(tmp_path, curves, "curves.csv"), "--bootstrap", "1000000000000"],
                          "over the limit"),
            "points": (["fit-envelope", tmp_path / "curves.csv", "--points", "100000000000", "--bootstrap", "0"],
                       "over the limit"),
        }[case]
        res = self.invoke([*args, "-o", tmp_path / "law.json"])
        assert res.exit_code == 1
        err = res.stderr.strip()
        assert len(err.splitlines()) == 1 and err.startswith("Error: ") and needle in err, err
        assert "Warning" not in err and not (tmp_path / "law.json").exists()

    def test_law_file_to_stdout_talk_to_stderr(self, tmp_path):
        runs = write_csv(tmp_path, isoflop_runs(LAW1))
        res = self.invoke(["fit-isoflop", runs, "-o", "-", "--bootstrap", "0"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["family"] == "allocation_rule"
        assert "N_opt" in res.stderr
        both = self.invoke(["fit-isoflop", runs, "-o", "-", "--table", "-"])
        assert both.exit_code == 2 and "both print to stdout" in both.stderr

    def test_law_file_must_be_json(self, tmp_path):
        runs = write_csv(tmp_path, isoflop_runs(LAW1))
        res = self.invoke(["fit-isoflop", runs, "-o", tmp_path / "law.toml"])
        assert res.exit_code != 0 and "JSON" in res.stderr


class TestFrontierBandsOfRules:
    """Percentile bands of an allocation rule's bootstrap (``frontier --law-file law.json --bands``): need the
    api.frontier_bands change for allocation rules."""

    def test_bands_are_percentiles_of_the_samples_allocations(self, tmp_path):
        runs = isoflop_runs(LAW1, noise=0.003, seed=4)
        res = isoflop_fit(runs, bootstrap=200, seed=5)
        path = tmp_path / "law.json"
        res.write_law_file(path)
        samples = np.array(json.loads(path.read_text())["bootstrap"]["samples"])
        flops = np.array([1e19, 1e23])
        bands = api.frontier_bands(samples, "allocation_rule", flops, [10, 50, 90])
        for q in (10, 50, 90):
            want_n = np.percentile(samples[:, 0] * flops[:, None] ** samples[:, 1], q, axis=1)
            want_d = np.percentile(samples[:, 2] * flops[:, None] ** samples[:, 3], q, axis=1)
            assert bands[f"params_p{q}"].to_numpy() == pytest.approx(want_n, rel=1e-12)
            assert bands[f"tokens_p{q}"].to_numpy() == pytest.approx(want_d, rel=1e-12)
        assert (bands.feasible_fraction == 1).all()
        with pytest.raises(ScalesweepError, match="takes no limits"):
            api.frontier_bands(samples, "allocation_rule", flops, [10, 90], max_params=1e9)
