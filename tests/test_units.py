"""Unit conversions against values worked out by hand from the datasheet numbers (sheet §6.5), and the GPU
presets."""

import pytest

from scalesweep import codes, units
from scalesweep.errors import ScalesweepError


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
    with pytest.raises(ScalesweepError, match="unknown GPU 'TPUv9' \\(one of: A100"):
        units.gpu_preset("TPUv9")
