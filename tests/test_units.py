"""Unit conversions against values worked out by hand from the datasheet numbers (sheet §6.5), and the GPU
presets."""

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalesweep import codes, engine, questions, units
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.laws import as_laws, law_arrays
from scalesweep.options import Hardware

from .helpers import assert_one_line_error


def test_pf_day_is_1e15_flops_for_a_day():
    assert codes.PF_DAY == 8.64e19 == 1e15 * 24 * 3600


@pytest.mark.parametrize("gpu, peak", [("A100", 312.0), ("H100-SXM", 989.4), ("H100-PCIe", 756.0), ("H200", 989.4)])
def test_presets_carry_dense_bf16_peaks(gpu, peak):
    assert units.GPUS[gpu].peak_tflops == peak
    assert units.gpu_preset(gpu.lower()).name == gpu  # case-insensitive


def test_gpu_hour_conversions_by_hand():
    # H100 SXM at 40% MFU: 989.4e12 * 0.4 * 3600 = 395.76e12 * 3600 = 1.424736e18 FLOPs per GPU-hour.
    assert units.model_flops_per_gpu_hour(989.4, 0.4) == pytest.approx(1.424736e18, rel=1e-15)
    # A100 at 50%: 312e12 * 0.5 * 3600 = 5.616e17.
    assert units.model_flops_per_gpu_hour(312.0, 0.5) == pytest.approx(5.616e17, rel=1e-15)
    assert units.wall_days(2400.0, 10) == 10.0


def test_llama3_wall_time_example():
    """Sheet §6.5: 3.8e25 FLOPs on 16,384 H100s at 989 TFLOP/s and 40% MFU takes about 68 days."""
    days = units.wall_days(3.8e25 / units.model_flops_per_gpu_hour(989.0, 0.4), 16384)
    assert days == pytest.approx(68.0, abs=0.5)
    # and back: what the GPUs deliver in that many days is the budget
    assert units.flops_for_days(days, 16384, 989.0, 0.4) == pytest.approx(3.8e25, rel=1e-14)


def test_memory_limit_by_hand():
    # 1,024 H100s x 80 GB = 8.192e13 bytes; at 16 bytes per parameter: 5.12e12 parameters.
    assert units.max_params_for_memory(1024, 80.0, 16.0) == pytest.approx(5.12e12, rel=1e-15)
    assert units.max_params_for_memory(8, 141.0, 16.0) == pytest.approx(7.05e10, rel=1e-15)


def test_unknown_gpu_suggests_the_closest():
    with pytest.raises(ScalesweepError, match=r"unknown GPU 'H10-SXM'; did you mean 'H100-SXM'\?"):
        units.gpu_preset("H10-SXM")
    with pytest.raises(ScalesweepError, match=r"unknown GPU 'TPUv9'; did you mean 'TPUv4'\?"):
        units.gpu_preset("TPUv9")
    with pytest.raises(ScalesweepError, match="unknown GPU 'Z80' \\(one of: A100"):
        units.gpu_preset("Z80")


# ------------------------------------------------------------------------------ budgets beyond the float range

LAW = as_laws("hoffmann2022")


def _solve(inputs, m, **kw):
    fams, P = law_arrays(LAW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning may escape
        return engine.solve(inputs, m, fams, P, np.zeros(1, dtype=np.int64), **kw)


def _reasons(out):
    codes_, names = out["infeasible_reason"]
    return [names[c] if c >= 0 else None for c in codes_]


def test_a_budget_that_overflows_in_flops_is_an_infeasible_row():
    """1e300 PF-days is 8.64e319 FLOPs, beyond the float range: the row is infeasible, reason budget_overflow,
    its flops and budget_flops null (before: inf, reason undefined_loss, two RuntimeWarnings); the other rows
    are untouched."""
    out = _solve({"pf_days": np.array([1e300, 100.0])}, 2)
    assert _reasons(out) == ["budget_overflow", None]
    assert out["feasible"].tolist() == [False, True]
    for name in ("flops", "budget_flops", "params", "tokens", "loss"):
        assert np.isnan(out[name][0]), name
    assert out["flops"][1] == 100.0 * codes.PF_DAY


def test_a_usd_budget_at_a_tiny_price_overflows_per_row():
    """Scenario rows mix units: only the row whose conversion overflows is infeasible."""
    inputs = {"usd": np.array([1e30, 1e6]), "peak_tflops": 989.4, "mfu": 0.4,
              "usd_per_gpu_hour": np.array([1e-300, 2.0])}
    out = _solve(inputs, 2)
    assert _reasons(out) == ["budget_overflow", None]
    assert np.isnan(out["gpu_hours"][0]) and np.isnan(out["usd"][0])
    assert out["usd"][1] == pytest.approx(1e6, rel=1e-12)


def test_overflow_error_mode_names_the_value_and_unit():
    with pytest.raises(ScalesweepError, match=r"a budget of 1e\+300 pf_days is more than 1.8e\+308 FLOPs"):
        _solve({"pf_days": np.array([100.0, 1e300])}, 2, overflow="error")


def test_frontier_in_pf_days_that_overflows(recwarn):
    res = questions.frontier(LAW, np.array([1e300, 1.0]), unit="pf_days")
    assert res.infeasible() == {"budget_overflow": 1}
    assert np.isnan(res.columns["flops"][0]) and res.columns["feasible"].tolist() == [False, True]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    cli_res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e300", "--unit", "pf_days", "--format", "csv"])
    assert cli_res.exit_code == 0 and "RuntimeWarning" not in cli_res.stderr
    df = pd.read_csv(io.StringIO(cli_res.stdout))
    assert df.infeasible_reason[0] == "budget_overflow" and not np.isinf(df.select_dtypes("number")).any().any()
    assert "1 budget_overflow" in cli_res.stderr


def test_default_rows_are_unchanged_by_the_overflow_checks():
    c = np.geomspace(1e18, 1e26, 9)
    out = _solve({"flops": c}, c.size)
    assert out["flops"] is not None and np.array_equal(out["flops"], c) and out["feasible"].all()
    assert _reasons(out) == [None] * c.size


@pytest.mark.parametrize("kwargs, needle", [
    (dict(peak_tflops=1e300), "--peak-tflops (1e+300 TFLOP/s): FLOPs per GPU-hour would be more than 1.8e+308"),
    (dict(gpu="H100", gpus=2**1000), "FLOPs per day on every GPU would be more than"),
    (dict(gpu="H100", gpus=10**10, gpu_memory_gb=1e300), "the memory of every GPU in bytes would be more than"),
])
def test_hardware_figures_whose_products_overflow_are_refused(kwargs, needle):
    with pytest.raises(ScalesweepError) as err:
        Hardware(**kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_a_peak_that_overflows():
    assert_one_line_error(CliRunner().invoke(cli, ["frontier", "--flops-range", "1e23", "--peak-tflops", "1e300"]),
                          "FLOPs per GPU-hour would be more than", 1)
