"""Unit conversions against values worked out by hand from the datasheet numbers (sheet §6.5)."""

import math

import pytest

from scalesweep import units
from scalesweep.errors import ScalesweepError


def test_pf_day_is_1e15_flops_for_a_day():
    assert units.PF_DAY == 8.64e19
    assert units.to_flops(3.0, "pf_days") == 3 * 8.64e19


@pytest.mark.parametrize("gpu, peak", [("A100", 312.0), ("H100-SXM", 989.4), ("H100-PCIe", 756.0), ("H200", 989.4)])
def test_presets_carry_dense_bf16_peaks(gpu, peak):
    assert units.HARDWARE[gpu].peak_tflops == peak
    assert units.get_hardware(gpu.lower()).name == gpu  # case-insensitive


def test_gpu_hour_conversions_by_hand():
    # H100 SXM at 40% MFU: 989.4e12 * 0.4 * 3600 = 395.76e12 * 3600 = 1.424736e18 FLOPs per GPU-hour.
    assert units.model_flops_per_gpu_hour(989.4, 0.4) == pytest.approx(1.424736e18, rel=1e-15)
    # A100 at 50%: 312e12 * 0.5 * 3600 = 5.616e17.
    assert units.to_flops(10.0, "gpu_hours", peak_tflops=312.0, mfu=0.5) == pytest.approx(5.616e18, rel=1e-15)
    # $2,000 at $2/GPU-hour = 1,000 A100-hours at 50% = 5.616e20 FLOPs.
    assert units.to_flops(2000.0, "usd", peak_tflops=312.0, mfu=0.5, usd_per_gpu_hour=2.0) == pytest.approx(
        5.616e20, rel=1e-15)
    assert units.gpu_hours(5.616e20, 312.0, 0.5) == pytest.approx(1000.0, rel=1e-15)
    assert units.wall_days(2400.0, 10) == 10.0


def test_llama3_wall_time_example():
    """Sheet §6.5: 3.8e25 FLOPs on 16,384 H100s at 989 TFLOP/s and 40% MFU takes about 68 days."""
    days = units.wall_days(units.gpu_hours(3.8e25, 989.0, 0.4), 16384)
    assert days == pytest.approx(68.0, abs=0.5)
    # and back: what the GPUs deliver in that many days is the budget
    assert units.flops_for_days(days, 16384, 989.0, 0.4) == pytest.approx(3.8e25, rel=1e-14)


def test_memory_limit_by_hand():
    # 1,024 H100s x 80 GB = 8.192e13 bytes; at 16 bytes per parameter: 5.12e12 parameters.
    assert units.max_params_for_memory(1024, 80.0, 16.0) == pytest.approx(5.12e12, rel=1e-15)
    assert units.max_params_for_memory(8, 141.0, 16.0) == pytest.approx(7.05e10, rel=1e-15)


def test_custom_and_overridden_hardware():
    hw = units.get_hardware(None, peak_tflops=500.0, gpu_memory_gb=96.0)
    assert (hw.name, hw.peak_tflops, hw.memory_gb) == ("custom", 500.0, 96.0)
    hw = units.get_hardware("A100", gpu_memory_gb=40.0)
    assert (hw.peak_tflops, hw.memory_gb) == (312.0, 40.0)
    assert units.get_hardware(None) is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="TPUv9"), "unknown GPU 'TPUv9'"),
    (dict(name=None, gpu_memory_gb=80.0), "needs --gpu or --peak-tflops"),
    (dict(name="A100", peak_tflops=-1.0), "--peak-tflops must be a finite number > 0"),
    (dict(name="A100", peak_tflops=math.inf), "--peak-tflops"),
    (dict(name=None, peak_tflops=math.nan), "--peak-tflops"),
])
def test_bad_hardware(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ScalesweepError, match=match):
        units.get_hardware(name, **kwargs)


@pytest.mark.parametrize("v", [0.0, -0.1, 1.01, math.nan, math.inf, "x"])
def test_mfu_must_be_in_unit_interval(v):
    with pytest.raises(ScalesweepError, match="--mfu must be in"):
        units.check_mfu(v)
    assert units.check_mfu(1.0) == 1.0


def test_money_and_gpu_hours_need_a_gpu():
    with pytest.raises(ScalesweepError, match="needs a GPU"):
        units.to_flops(1.0, "gpu_hours")
    with pytest.raises(ScalesweepError, match="usd-per-gpu-hour"):
        units.to_flops(1.0, "usd", peak_tflops=312.0)
    with pytest.raises(ScalesweepError, match="unknown budget unit"):
        units.to_flops(1.0, "joules")
