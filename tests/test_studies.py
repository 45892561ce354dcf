"""Lookup tables, the grid-resolution study and the IsoFLOP (Approach 2) simulation."""

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep import studies
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.tables import read_metadata
from scalesweep.kernels.frontier import grid_search_kernel
from scalesweep.lookup import Lookup, build_lookup, lookup_budgets, write_lookup

from . import reference as ref
from .helpers import assert_one_line_error, run, write_frontier_file

LAW = ss.get_law("hoffmann2022")


# ----------------------------------------------------------------------------------------------- lookup


def test_lookup_budgets_cover_the_range_at_the_requested_density():
    b = lookup_budgets(1e18, 1e26, 16)
    assert b[0] == 1e18 and b[-1] == 1e26 and b.size == 8 * 16 + 1
    assert np.all(np.diff(np.log10(b)) <= 1 / 16 + 1e-12)
    b = lookup_budgets(3e18, 7e19, 5)  # a partial decade still gets at least 5 per decade
    assert np.all(np.diff(np.log10(b)) <= 1 / 5 + 1e-12)


def test_power_law_frontier_interpolates_exactly_and_loss_error_falls_as_1_over_k2(tmp_path):
    errs = []
    for k in (4, 8, 16):
        _, info = build_lookup(LAW, 1e18, 1e26, k)
        e = info["max_interpolation_error"]
        assert e["params"] < 1e-13 and e["tokens"] < 1e-13  # N*, D* are exact power laws of C
        errs.append(e["loss"])
    assert errs[0] / errs[1] == pytest.approx(4, rel=0.1) and errs[1] / errs[2] == pytest.approx(4, rel=0.1)


def test_recorded_error_is_the_error_at_the_midpoints(tmp_path):
    info = write_lookup(tmp_path / "t.parquet", LAW, 1e18, 1e24, 4, max_params=2e9)
    lk = Lookup(tmp_path / "t.parquet")
    assert lk.max_error == info["max_interpolation_error"]
    mid = np.sqrt(lk.flops[:-1] * lk.flops[1:])
    got = lk.query(mid)
    exact = ss.frontier(LAW, mid, max_params=2e9)
    for c in ("params", "tokens", "loss"):
        assert np.max(np.abs(got[c] / exact[c] - 1)) == pytest.approx(lk.max_error[c], rel=1e-12)
    assert lk.max_error["params"] > 1e-3  # the kink where the cap switches on is not interpolated away


def test_query_is_exact_at_nodes_and_refuses_to_extrapolate(tmp_path):
    write_lookup(tmp_path / "t.parquet", LAW, 1e18, 1e24, 8)
    lk = Lookup(tmp_path / "t.parquet")
    got = lk.query(lk.flops)
    np.testing.assert_array_equal(got.params, ss.frontier(LAW, lk.flops).params)
    assert lk.range == (1e18, 1e24)
    for bad in (1e17, 2e24):
        with pytest.raises(ScalesweepError, match="outside the table's range"):
            lk.query([1e20, bad])


def test_infeasible_segments_stay_infeasible(tmp_path):
    box = dict(min_params=1e9, max_params=1e10, min_tokens=1e10, max_tokens=1e11)  # feasible for 6e19 <= C <= 6e21
    write_lookup(tmp_path / "t.parquet", LAW, 1e18, 1e24, 8, **box)
    lk = Lookup(tmp_path / "t.parquet")
    q = lk.query(np.geomspace(1e18, 1e24, 50))
    exact = ss.frontier(LAW, q.flops, **box)
    assert q.feasible.any() and (~q.feasible).any()
    assert not (q.feasible & ~exact.feasible).any()  # never claims a budget the solver rejects
    assert q.params[~q.feasible].isna().all()


def test_lookup_errors(tmp_path):
    write_frontier_file(tmp_path / "f.parquet", LAW, [1e20, 1e21])
    with pytest.raises(ScalesweepError, match="is not a lookup table"):
        Lookup(tmp_path / "f.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(ScalesweepError, match="cannot read lookup table"):
        Lookup(tmp_path / "junk.parquet")
    with pytest.raises(ScalesweepError, match="does not exist"):
        Lookup(tmp_path / "nope.parquet")
    for args, match in (((1e18, 1e26, 0), "points-per-decade"), ((1e20, 1e18, 4), "must be less than"),
                        ((math.nan, 1e18, 4), "LO must be")):
        with pytest.raises(ScalesweepError, match=match):
            build_lookup(LAW, *args)


def test_lookup_cli_round_trip(tmp_path):
    t = tmp_path / "t.parquet"
    res = CliRunner().invoke(cli, ["lookup", "build", "--flops-range", "1e18:1e26", "--points-per-decade", "8",
                                   "-o", str(t)], catch_exceptions=False)
    assert res.exit_code == 0 and "max interpolation error" in res.output
    assert read_metadata(t)["lookup"]["points_per_decade"] == 8
    res = CliRunner().invoke(cli, ["lookup", "query", str(t), "--flops", "3e23"], catch_exceptions=False)
    assert res.exit_code == 0 and "3e+23" in res.output
    pd.DataFrame({"flops": [1e20, 1e22]}).to_csv(tmp_path / "b.csv", index=False)
    res = CliRunner().invoke(cli, ["lookup", "query", str(t), "--flops-file", str(tmp_path / "b.csv"),
                                   "-o", str(tmp_path / "q.parquet")], catch_exceptions=False)
    assert res.exit_code == 0
    q = pd.read_parquet(tmp_path / "q.parquet")
    np.testing.assert_allclose(q.params, ss.frontier(LAW, [1e20, 1e22]).params, rtol=1e-13)
    for args, needle in ((["--flops", "1e30"], "outside the table's range"), (["--flops", "abc"], "not a number"),
                         (["--flops", "-1"], "flops: value #1")):
        assert_one_line_error(CliRunner().invoke(cli, ["lookup", "query", str(t), *args]), needle, code=1)
    assert_one_line_error(CliRunner().invoke(cli, ["lookup", "build", "--flops-range", "1e20", "-o", str(t)]),
                          "expected LO:HI", code=1)
    assert_one_line_error(CliRunner().invoke(cli, ["lookup", "build", "--flops-range", "1e20:1e18", "-o", str(t)]),
                          "LO (1e+20) is greater than HI", code=1)


# ------------------------------------------------------------------------------------------- resolution


@pytest.mark.parametrize("name", ["hoffmann2022", "kaplan2020"])
def test_grid_search_kernel_matches_numpy(name):
    law = ss.get_law(name)
    flops = np.geomspace(1e17, 1e26, 77)
    n_axis = np.geomspace(1e6, 1e13, 141)
    idx = np.empty(flops.size, dtype=np.int64)
    grid_search_kernel(law.family_id, law.vector, flops, 6.0, n_axis, idx)
    np.testing.assert_array_equal(idx, ref.grid_search_numpy(law.family, dict(law.params), flops, n_axis))


def test_resolution_errors_follow_the_grid_spacing():
    flops = np.geomspace(1e19, 1e25, 200)
    df = studies.resolution(LAW, flops, [4, 16, 64], repeat=1)
    grid = df[df.method == "grid"].set_index("points_per_decade")
    exact = ss.frontier(LAW, flops)
    for k in (4, 16, 64):
        # the grid argmin is one of the two grid points around N*: within one spacing, 10^(1/k)
        assert grid.max_rel_error_params[k] <= 10 ** (1 / k) - 1 + 1e-12
    assert list(grid.max_rel_error_params) == sorted(grid.max_rel_error_params, reverse=True)
    look = df[df.method == "lookup"]
    assert (look.max_rel_error_params < 1e-12).all()
    assert exact.feasible.all()


def test_resolution_cli(tmp_path):
    res = CliRunner().invoke(cli, ["resolution", "--flops-range", "1e19:1e23:50", "--points-per-decade", "2,8",
                                   "-o", str(tmp_path / "r.parquet")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(tmp_path / "r.parquet")
    assert df.method.tolist() == ["grid", "lookup", "grid", "lookup"]
    assert_one_line_error(CliRunner().invoke(cli, ["resolution", "--flops-range", "1e19:1e23:50",
                                                   "--points-per-decade", "2,x"]), "'x' is not a whole number", code=1)


# ------------------------------------------------------------------------------------------ isoflop-sim

BUDGETS = np.geomspace(6e18, 3e21, 9)  # Chinchilla Approach 2 (sheet §2.0)


@pytest.mark.parametrize("width, offset", [(0.5, 0.0), (1.0, 0.0), (2.0, 0.0), (1.0, 0.3), (1.5, -0.4)])
def test_noise_free_exponents_exact_intercept_biased_as_predicted(width, offset):
    df = studies.isoflop_sim(LAW, BUDGETS, points_per_curve=9, width=width, center_offset=offset)
    r = df.iloc[0]
    a, b = LAW.params["alpha"], LAW.params["beta"]
    assert r.exponent_params == pytest.approx(b / (a + b), abs=1e-9)  # Hoffmann Eq. 4: a = beta/(alpha+beta)
    assert r.exponent_tokens == pytest.approx(a / (a + b), abs=1e-9)
    v = offset + np.linspace(-width / 2, width / 2, 9)
    delta = ref.isoflop_vertex_offset(a, b, v)
    assert r.params_bias == pytest.approx(10**delta - 1, rel=1e-6, abs=1e-12)
    assert r.tokens_bias == pytest.approx(10**-delta - 1, rel=1e-6, abs=1e-12)


def test_bias_grows_with_width_and_asymmetry():
    biases = [abs(studies.isoflop_sim(LAW, BUDGETS, width=w).params_bias[0]) for w in (0.25, 0.5, 1.0, 2.0)]
    assert biases == sorted(biases) and biases[0] > 0
    by_beta = []
    for beta in (LAW.params["alpha"], 0.30, 0.25, 0.20):  # beta = alpha: symmetric first, then more lopsided
        law = ss.get_law("hoffmann2022", beta=beta)
        by_beta.append(abs(studies.isoflop_sim(law, BUDGETS, width=1.0).params_bias[0]))
    assert by_beta[0] < 1e-12 and by_beta == sorted(by_beta)


def test_noise_is_seeded_and_spreads_the_exponent():
    a = studies.isoflop_sim(LAW, BUDGETS, noise=0.01, trials=20, seed=3)
    b = studies.isoflop_sim(LAW, BUDGETS, noise=0.01, trials=20, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a.exponent_params.std() > 1e-4
    assert len(studies.isoflop_sim(LAW, BUDGETS, trials=20)) == 1  # noise-free trials are all the same


@pytest.mark.parametrize("kwargs, match", [
    (dict(points_per_curve=2), "points-per-curve"),
    (dict(width=0.0), "--width"),
    (dict(noise=-1.0), "--noise"),
    (dict(trials=0), "--trials"),
    (dict(center_offset=math.inf), "--center-offset"),
    (dict(target_flops=-1.0), "--target-flops"),
])
def test_isoflop_sim_bad_input(kwargs, match):
    with pytest.raises(ScalesweepError, match=match):
        studies.isoflop_sim(LAW, BUDGETS, **kwargs)


def test_isoflop_sim_cli(tmp_path):
    res = CliRunner().invoke(cli, ["isoflop-sim", "--budgets", "6e18:3e21:9", "--width", "1",
                                   "-o", str(tmp_path / "i.parquet")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "exponent N*(C)" in res.output
    assert len(pd.read_parquet(tmp_path / "i.parquet")) == 1
    assert_one_line_error(CliRunner().invoke(cli, ["isoflop-sim", "--budgets", "1e20"]), "at least 2 budgets", code=1)


# ------------------------------------------------------------- families that cannot be grid-searched

# Every preset whose family's frontier is not a loss minimum along IsoFLOP lines (the registry's frontier
# kind), with the message expected: a law of N or D alone has no frontier at all; the others (allocation
# rules, loss-at-a-budget laws such as kaplan2020-C and kaplan2020-Cmin) have nothing to grid-search.
NOT_SEARCHABLE = [
    (name, "no compute-optimal frontier" if ss.FAMILIES[p.family].frontier_error(name, p.params) else
     "cannot grid-search")
    for name, p in ss.PRESETS.items() if ss.FAMILIES[p.family].frontier != "solve"
]


def test_not_searchable_covers_the_reported_cases():
    names = [n for n, _ in NOT_SEARCHABLE]
    assert {"kaplan2020-C", "kaplan2020-Cmin", "deepseek2024", "llama3_2024"} <= set(names)
    assert "hoffmann2022" not in names and "kaplan2020-steps" not in names


@pytest.mark.parametrize("name, needle", NOT_SEARCHABLE)
def test_resolution_refuses_laws_without_a_loss_optimum(name, needle, tmp_path):
    out = tmp_path / "r.csv"
    res = run(["resolution", "--law", name, "--flops-range", "1e19:1e25:10", "-o", out], ok=False)
    assert_one_line_error(res, needle, code=1)
    assert not out.exists()
    with pytest.raises(ScalesweepError, match=needle):
        studies.resolution(name, [1e20, 1e21], [4])


@pytest.mark.parametrize("name, needle", NOT_SEARCHABLE)
def test_isoflop_sim_refuses_laws_without_a_loss_optimum(name, needle):
    res = run(["isoflop-sim", "--law", name, "--budgets", "6e18:3e21:9"], ok=False)
    assert_one_line_error(res, needle, code=1)
    assert res.stdout == ""
    with pytest.raises(ScalesweepError, match=needle):
        studies.isoflop_sim(name, BUDGETS)


def test_refusal_says_why_from_the_frontier_kind():
    res = run(["resolution", "--law", "kaplan2020-C", "--flops-range", "1e19:1e25:10"], ok=False)
    assert_one_line_error(res, "kaplan2020-C (family kaplan_single): its loss depends on the budget alone", code=1)
    res = run(["isoflop-sim", "--law", "porian2024_tuned", "--budgets", "6e18:3e21:9"], ok=False)
    assert_one_line_error(res, "porian2024_tuned (family allocation_rule): it is an allocation rule", code=1)


@pytest.mark.parametrize("name", ["kaplan2020-steps", "muennighoff2023"])
def test_solved_frontiers_other_than_closed_forms_are_still_searchable(name):
    """The refusal follows the frontier kind, not the closed form: Newton-solved families stay allowed, and
    their grid search is within one grid step of the exact optimum."""
    df = studies.resolution(name, np.geomspace(1e19, 1e23, 9), [8], repeat=1)
    grid = df[df.method == "grid"].iloc[0]
    assert grid.max_rel_error_params <= 10 ** (1 / 8) - 1 + 1e-9


@pytest.mark.parametrize("kwargs, match", [
    ({"points_per_decade": [0]}, "--points-per-decade"),
    ({"points_per_decade": []}, "--points-per-decade: no values"),
    ({"params_range": (1e10, 1e8)}, "--params-range: LO"),
    ({"params_range": (math.nan, 1e8)}, "--params-range LO"),
    ({"flops": [1e20, math.inf]}, "flops: value #2"),
])
def test_resolution_bad_input(kwargs, match):
    args = {"flops": [1e20, 1e21], "points_per_decade": [4], **kwargs}
    with pytest.raises(ScalesweepError, match=match):
        studies.resolution(LAW, args.pop("flops"), args.pop("points_per_decade"), **args)


def test_resolution_takes_numpy_integers():
    df = studies.resolution(LAW, [1e20, 1e21], np.array([4, 8]), repeat=1)
    assert df.points_per_decade.tolist() == [4, 4, 8, 8]


# ------------------------------------------------------------------------ isoflop-sim input, one line each

@pytest.mark.parametrize("args, needle", [
    (["--seed", "-1", "--noise", "0.01", "--trials", "2"], "--seed must be a whole number >= 0, got -1"),
    (["--seed", "-5"], "--seed must be a whole number >= 0"),
    (["--points-per-curve", "2"], "--points-per-curve"),
    (["--points-per-curve", "0"], "--points-per-curve"),
    (["--width", "0"], "--width"),
    (["--width", "-1"], "--width"),
    (["--width", "nan"], "--width"),
    (["--width", "inf"], "--width"),
    (["--width", "1000"], "where the loss is not finite"),
    (["--center-offset", "400"], "where the loss is not finite"),
    (["--center-offset", "nan"], "--center-offset"),
    (["--center-offset", "-inf"], "--center-offset"),
    (["--trials", "0"], "--trials"),
    (["--noise", "-0.1"], "--noise"),
    (["--noise", "nan"], "--noise"),
    (["--noise", "inf"], "--noise"),
    (["--target-flops", "0"], "--target-flops"),
    (["--target-flops", "nan"], "--target-flops"),
    (["--target-flops", "inf"], "--target-flops"),
])
def test_isoflop_sim_cli_bad_options(args, needle):
    res = run(["isoflop-sim", "--budgets", "6e18:3e21:9", *args], ok=False)
    assert_one_line_error(res, needle, code=1)
    assert res.stdout == ""


@pytest.mark.parametrize("budgets, needle", [
    ("1e20:1e20:3", "need at least 2 different budgets to fit a power law, got 3 equal ones"),
    ("1e20:1e20:1", "need at least 2 budgets to fit a power law, got 1"),
    ("1e20", "need at least 2 budgets"),
    ("1e20:1e21:1", "--budgets: COUNT 1 needs LO == HI"),
    ("1e20:inf:3", "--budgets: HI must be finite"),
    ("nan:1e21:3", "--budgets: LO"),
    ("1e21:1e20:3", "--budgets: LO (1e+21) is greater than HI"),
])
def test_isoflop_sim_cli_degenerate_budgets(budgets, needle):
    assert_one_line_error(run(["isoflop-sim", "--budgets", budgets], ok=False), needle, code=1)


def test_isoflop_sim_api_refuses_equal_and_bad_budgets():
    with pytest.raises(ScalesweepError, match="2 different budgets"):
        studies.isoflop_sim(LAW, [3e20, 3e20, 3e20])
    with pytest.raises(ScalesweepError, match="--budgets: value #2"):
        studies.isoflop_sim(LAW, [3e20, math.nan, 3e21])
    with pytest.raises(ScalesweepError, match="--seed"):
        studies.isoflop_sim(LAW, BUDGETS, noise=0.01, seed=-1)
    with pytest.raises(ScalesweepError, match="--seed"):
        studies.isoflop_sim(LAW, BUDGETS, noise=0.01, seed=1.5)


def test_isoflop_sim_seed_zero_and_large_seeds_work():
    a = studies.isoflop_sim(LAW, BUDGETS, noise=0.01, trials=3, seed=2**40)
    b = studies.isoflop_sim(LAW, BUDGETS, noise=0.01, trials=3, seed=np.int64(2**40))
    pd.testing.assert_frame_equal(a, b)
    res = run(["isoflop-sim", "--budgets", "6e18:3e21:9", "--seed", "0", "--noise", "0.01", "--trials", "2"])
    assert "exponent N*(C)" in res.stdout


def test_lookup_file_written_in_chunks_equals_one_solve(tmp_path):
    """The streamed writer (budgets solved chunk by chunk) writes the rows and errors of one solve over the whole
    range, including the segments that cross a chunk boundary where the cap switches on."""
    import pyarrow.parquet as pq

    whole, info = build_lookup(LAW, 1e18, 1e24, 8, max_params=3e9)
    for chunk_rows in (1, 7, 48, 1000):
        got = write_lookup(tmp_path / f"t{chunk_rows}.parquet", LAW, 1e18, 1e24, 8, chunk_rows=chunk_rows,
                           max_params=3e9)
        assert got == info
        table = pq.read_table(tmp_path / f"t{chunk_rows}.parquet")
        assert table.num_rows == len(whole) == 49
        assert table.to_pandas().equals(whole[table.column_names])
    assert pq.ParquetFile(tmp_path / "t7.parquet").metadata.num_row_groups == 7
