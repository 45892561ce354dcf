"""Energy and carbon: energy_kwh, co2_t, energy in usd, and budgets in kWh, checked against
tests/reference.py (plain arithmetic from the definitions) with the catalogue's board powers."""

import io

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalesweep import questions, units
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.laws import as_laws
from scalesweep.options import Hardware, columns
from scalesweep.tables import COLUMNS

from . import reference as ref
from .helpers import assert_one_line_error

LAW = as_laws("hoffmann2022")
H100_W = 700.0  # NVIDIA H100 SXM datasheet: up to 700 W


@pytest.fixture(autouse=True)
def _no_user_catalogue(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def _frontier(budgets, unit="flops", **hw):
    res = questions.frontier(LAW, np.asarray(budgets, dtype=float), unit=unit, hardware=Hardware(**hw))
    return {k: v for k, v in res.columns.items() if k != "infeasible_reason"}


def test_the_defaults_cite_their_sources():
    assert units.DEFAULT_POWER_FRACTION == 1.0 and units.DEFAULT_PUE == 1.58


def test_energy_and_co2_against_the_reference():
    c = np.array([1e22, 1e23, 1e24])
    out = _frontier(c, gpu="H100", gpus=1024, grid_gco2_per_kwh=400.0)
    hours = ref.gpu_hours_for_flops(c, 989.4, 0.4)
    kwh = ref.energy_kwh(hours, H100_W, 1.0, 1.58)
    np.testing.assert_allclose(out["gpu_hours"], hours, rtol=1e-13)
    np.testing.assert_allclose(out["energy_kwh"], kwh, rtol=1e-13)
    np.testing.assert_allclose(out["co2_t"], ref.co2_tonnes(kwh, 400.0), rtol=1e-13)
    # by hand for 1e24 FLOPs: 1e24 / (989.4e12 x 0.4 x 3600) = 701,884.4 GPU-hours; x 0.7 kW x 1.58 = 776,284 kWh
    assert out["energy_kwh"][2] == pytest.approx(776_284.2, rel=1e-6)


def test_every_energy_option_enters_the_product():
    out = _frontier([1e23], gpu="B200", power_fraction=0.6, pue=1.1, mfu=0.35, precision="fp8")
    hours = ref.gpu_hours_for_flops(1e23, 4500.0, 0.35)
    assert out["energy_kwh"][0] == pytest.approx(ref.energy_kwh(hours, 1000.0, 0.6, 1.1), rel=1e-13)
    assert "co2_t" not in out  # no grid intensity: no co2 column
    custom = _frontier([1e23], peak_tflops=500.0, board_power_w=450.0, pue=1.2)
    assert custom["energy_kwh"][0] == pytest.approx(
        ref.energy_kwh(ref.gpu_hours_for_flops(1e23, 500.0, 0.4), 450.0, 1.0, 1.2), rel=1e-13)


def test_usd_includes_energy_and_a_usd_budget_buys_it():
    out = _frontier([1e23], gpu="H100", usd_per_gpu_hour=2.0, usd_per_kwh=0.12)
    hours = ref.gpu_hours_for_flops(1e23, 989.4, 0.4)
    assert out["usd"][0] == pytest.approx(hours * 2.0 + ref.energy_kwh(hours, H100_W, 1.0, 1.58) * 0.12, rel=1e-13)
    back = _frontier(out["usd"], unit="usd", gpu="H100", usd_per_gpu_hour=2.0, usd_per_kwh=0.12)
    assert back["flops"][0] == pytest.approx(1e23, rel=1e-13)
    energy_only = _frontier([1e23], gpu="H100", usd_per_kwh=0.12)
    assert energy_only["usd"][0] == pytest.approx(ref.energy_kwh(hours, H100_W, 1.0, 1.58) * 0.12, rel=1e-13)


def test_a_budget_in_kwh():
    out = _frontier([1e6, 1e7], unit="kwh", gpu="H100", gpus=512)
    np.testing.assert_allclose(out["energy_kwh"], [1e6, 1e7], rtol=1e-13)
    hours = 1e6 / (H100_W / 1000 * 1.58)
    assert out["flops"][0] == pytest.approx(hours * 989.4e12 * 0.4 * 3600, rel=1e-13)
    with pytest.raises(ScalesweepError, match="--unit kwh needs --gpu or --peak-tflops"):
        _frontier([1e6], unit="kwh")
    with pytest.raises(ScalesweepError, match="TPU-v5p has no board power"):
        _frontier([1e6], unit="kwh", gpu="TPU-v5p")
    tpu = _frontier([1e6], unit="kwh", gpu="TPU-v5p", board_power_w=500.0)
    assert tpu["gpu_hours"][0] == pytest.approx(1e6 / (0.5 * 1.58), rel=1e-13)


def test_energy_is_opt_in_and_defaults_are_unchanged():
    plain = _frontier([1e23], gpu="H100", gpus=8, usd_per_gpu_hour=2.0)
    assert "energy_kwh" not in plain and "co2_t" not in plain
    assert columns(Hardware(gpu="H100", gpus=8)) == {"peak_tflops": 989.4, "gpu_memory_gb": 80.0, "mfu": 0.4,
                                                     "gpus": 8.0, "bytes_per_param": 16.0}
    asked = questions.frontier(LAW, np.array([1e23]), hardware=Hardware(gpu="H100"), energy=True).columns
    assert asked["energy_kwh"][0] == pytest.approx(
        ref.energy_kwh(ref.gpu_hours_for_flops(1e23, 989.4, 0.4), H100_W, 1.0, 1.58), rel=1e-13)
    with pytest.raises(ScalesweepError, match="energy columns need a GPU"):
        questions.frontier(LAW, np.array([1e23]), energy=True)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(pue=1.2), "--pue needs --gpu or --peak-tflops"),
    (dict(gpu="H100", pue=0.9), "--pue must be a finite number >= 1 (facility energy over IT energy), got 0.9"),
    (dict(gpu="H100", pue=0), "--pue must be a finite number >= 1 (facility energy over IT energy), got 0"),
    (dict(gpu="H100", pue="x"), "--pue must be a finite number >= 1 (facility energy over IT energy), got 'x'"),
    (dict(gpu="H100", usd_per_kwh=1.7e308), "--usd-per-kwh 1.7e+308: the price of a GPU-hour would be more than"),
    (dict(gpu="H100", power_fraction=1.5), "--power-fraction must be a number in (0, 1]"),
    (dict(gpu="TPU-v6e", grid_gco2_per_kwh=300), "TPU-v6e has no board power in the hardware catalogue"),
    (dict(peak_tflops=400, grid_gco2_per_kwh=300), "a custom GPU has no board power"),
])
def test_energy_options_are_checked(kwargs, needle):
    with pytest.raises(ScalesweepError) as err:
        Hardware(**kwargs)
    assert needle in str(err.value)


def test_target_loss_has_the_energy_columns():
    res = questions.target_loss(LAW, np.array([2.2]), hardware=Hardware(gpu="MI300X", grid_gco2_per_kwh=50)).columns
    hours = ref.gpu_hours_for_flops(res["flops"][0], 1307.4, 0.4)
    assert res["energy_kwh"][0] == pytest.approx(ref.energy_kwh(hours, 750.0, 1.0, 1.58), rel=1e-13)
    assert res["co2_t"][0] == pytest.approx(ref.co2_tonnes(res["energy_kwh"][0], 50), rel=1e-13)


def test_the_columns_are_registered_with_units():
    assert COLUMNS["energy_kwh"].unit == "kWh" and COLUMNS["co2_t"].unit == "t CO2"


def test_cli_energy_columns_and_kwh_budgets():
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e23", "--gpu", "H100", "--gpus", "1024",
                                   "--grid-gco2-per-kwh", "400", "--usd-per-gpu-hour", "2", "--usd-per-kwh", "0.1",
                                   "--format", "csv"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout))
    hours = ref.gpu_hours_for_flops(1e23, 989.4, 0.4)
    kwh = ref.energy_kwh(hours, H100_W, 1.0, 1.58)
    assert df.energy_kwh[0] == pytest.approx(kwh, rel=1e-12)
    assert df.co2_t[0] == pytest.approx(kwh * 400 / 1e6, rel=1e-12)
    assert df.usd[0] == pytest.approx(hours * 2 + kwh * 0.1, rel=1e-12)
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e6", "--unit", "kwh", "--gpu", "H100",
                                   "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(io.StringIO(res.stdout)).energy_kwh[0] == pytest.approx(1e6, rel=1e-12)
    assert_one_line_error(CliRunner().invoke(cli, ["frontier", "--flops-range", "1e22", "--pue", "1.2"]),
                          "--pue needs --gpu or --peak-tflops")


def test_scenarios_energy_columns():
    """Scenario rows: each row's GPU brings its board power; rows without one have null energy. (Needs the
    scenarios.py part of /tmp/cli_planning.diff.)"""
    import scalesweep as ss

    spec = pd.DataFrame({"flops": [1e23, 1e23, 1e23, 1e23], "gpu": ["H100", "MI300X", "TPU-v5p", None],
                         "grid_gco2_per_kwh": [400.0, 50.0, 400.0, np.nan], "pue": [1.2, np.nan, 1.1, np.nan]})
    df = ss.solve_scenarios(spec)
    h100 = ref.energy_kwh(ref.gpu_hours_for_flops(1e23, 989.4, 0.4), 700.0, 1.0, 1.2)
    mi300x = ref.energy_kwh(ref.gpu_hours_for_flops(1e23, 1307.4, 0.4), 750.0, 1.0, 1.58)  # default PUE
    assert df.energy_kwh[0] == pytest.approx(h100, rel=1e-13)
    assert df.energy_kwh[1] == pytest.approx(mi300x, rel=1e-13)
    assert df.co2_t[1] == pytest.approx(ref.co2_tonnes(mi300x, 50.0), rel=1e-13)
    assert np.isnan(df.energy_kwh[2]) and np.isnan(df.energy_kwh[3])  # no published board power; no GPU
    with pytest.raises(ScalesweepError, match="row 1: grid_gco2_per_kwh needs gpu or peak_tflops"):
        ss.solve_scenarios(pd.DataFrame({"flops": [1e23], "grid_gco2_per_kwh": [400.0]}))
    plain = ss.solve_scenarios(pd.DataFrame({"flops": [1e23], "gpu": ["H100"]}))
    assert "energy_kwh" not in plain.columns  # no energy field: the table is as before


def test_usd_per_row_mixes_prices():
    """Per-row prices: a row with only a GPU-hour price keeps hours x price; energy adds where priced."""
    from scalesweep import engine
    from scalesweep.laws import law_arrays

    fams, P = law_arrays(LAW)
    inputs = {"flops": np.array([1e23, 1e23, 1e23]), "peak_tflops": 989.4, "mfu": 0.4,
              "usd_per_gpu_hour": np.array([2.0, 2.0, np.nan]), "usd_per_kwh": np.array([np.nan, 0.1, 0.1]),
              "board_power_w": 700.0, "power_fraction": 1.0, "pue": 1.58}
    out = engine.solve(inputs, 3, fams, P, np.zeros(1, dtype=np.int64))
    hours = ref.gpu_hours_for_flops(1e23, 989.4, 0.4)
    kwh = ref.energy_kwh(hours, 700.0, 1.0, 1.58)
    np.testing.assert_allclose(out["usd"], [hours * 2.0, hours * 2.0 + kwh * 0.1, kwh * 0.1], rtol=1e-13)


def test_energy_and_usd_that_overflow_make_the_row_infeasible(recwarn):
    """A row whose usd or energy is beyond the float range (each input finite) is infeasible with reason
    <column>_overflow and null results, not an infinite value with a numpy warning."""
    res = questions.frontier(LAW, np.array([1e23, 1e23]), hardware=Hardware(gpu="H100", usd_per_kwh=1e308))
    cols = res.columns
    assert cols["feasible"].tolist() == [False, False] and res.infeasible() == {"usd_overflow": 2}
    for name in ("params", "tokens", "loss", "gpu_hours", "energy_kwh", "usd"):
        assert np.isnan(cols[name]).all(), name
    assert (cols["flops"] == 1e23).all()  # the budget itself was fine
    hot = questions.frontier(LAW, np.array([1e23]), hardware=Hardware(gpu="H100", board_power_w=1e308)).infeasible()
    assert hot == {"energy_kwh_overflow": 1}
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_cli_usd_overflow_is_a_reason_not_inf():
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e23", "--gpu", "H100", "--gpus", "8",
                                   "--usd-per-kwh", "1e308", "--format", "csv",
                                   "--columns", "flops,gpu_hours,energy_kwh,usd,feasible,infeasible_reason"])
    assert res.exit_code == 0, res.output
    assert "RuntimeWarning" not in res.stderr
    df = pd.read_csv(io.StringIO(res.stdout))
    assert not np.isinf(df.select_dtypes("number")).any().any()
    row = df.iloc[0]
    assert row.infeasible_reason == "usd_overflow" and not row.feasible and np.isnan(row.usd)
