"""Budgets in real units, and the hardware they run on.

Conversions (reference sheet §1.1 and §6.5):

* 1 PF-day = 1e15 FLOP/s x 86,400 s = 8.64e19 FLOP.
* One GPU-hour delivers ``peak x MFU x 3600`` model FLOPs, with ``peak`` the dense (no 2:4 sparsity) bf16
  throughput and MFU = achieved model FLOP/s / peak.
* Wall time on ``gpus`` GPUs: ``days = gpu_hours / (24 x gpus)``  (sheet §6.5: T = C / (n_GPU peak MFU)).
* Dollars: ``usd = gpu_hours x usd_per_gpu_hour``.
* Training state: mixed-precision Adam keeps 16 bytes per parameter (2 bf16 weights + 2 bf16 gradients
  + 4 fp32 master weights + 4 + 4 fp32 Adam moments; Rajbhandari et al. 2020, ZeRO, §3.1). Sharded over
  every GPU (ZeRO-3 / FSDP), ``max_params = gpus x memory / bytes_per_param``. Activations are not counted:
  this is an upper bound on the model a cluster can hold.

GPU memory is in decimal gigabytes (1e9 bytes), as the datasheets print it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ScalesweepError

PF_DAY = 1e15 * 86400.0  # 8.64e19 FLOP (sheet §1.1)
SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
DEFAULT_MFU = 0.4  # large well-tuned GPU runs reach ~35-45% (sheet §6.5: PaLM 46.2%, Llama 3 38-43%)
DEFAULT_BYTES_PER_PARAM = 16.0  # mixed-precision Adam training state (ZeRO §3.1)

BUDGET_UNITS = ("flops", "pf_days", "gpu_hours", "usd")


@dataclass(frozen=True)
class Hardware:
    name: str
    peak_tflops: float  # dense bf16, TFLOP/s
    memory_gb: float  # decimal GB
    source: str

    @property
    def flops_per_hour(self) -> float:
        """Peak FLOPs in one GPU-hour (multiply by MFU for model FLOPs)."""
        return self.peak_tflops * 1e12 * SECONDS_PER_HOUR


HARDWARE: dict[str, Hardware] = {
    h.name: h
    for h in (
        Hardware("A100", 312.0, 80.0,
                 "NVIDIA A100 datasheet: BF16 312 TFLOP/s dense (624 with sparsity); 40 or 80 GB HBM2e "
                 "(80 GB here; use --gpu-memory-gb 40 for the smaller part). Sheet §6.5"),
        Hardware("H100-SXM", 989.4, 80.0,
                 "NVIDIA H100 SXM5 datasheet: BF16 989.4 TFLOP/s dense (1,979 with sparsity); 80 GB HBM3. "
                 "Sheet §6.5"),
        Hardware("H100-PCIe", 756.0, 80.0,
                 "NVIDIA H100 PCIe datasheet: BF16 ~756 TFLOP/s dense (1,513 with sparsity); 80 GB HBM2e. "
                 "Sheet §6.5"),
        Hardware("H200", 989.4, 141.0,
                 "NVIDIA H200: same compute as H100 SXM (989.4 BF16 dense); 141 GB HBM3e (memory figure "
                 "unverified in the sheet). Sheet §6.5"),
    )
}
_HW_LOWER = {k.lower(): k for k in HARDWARE}


def get_hardware(name: str | None = None, *, peak_tflops: float | None = None,
                 gpu_memory_gb: float | None = None) -> Hardware | None:
    """A preset by name (case-insensitive), optionally with its numbers replaced; or a custom GPU when only
    ``peak_tflops`` (and optionally ``gpu_memory_gb``) are given. ``None`` when nothing is given."""
    if peak_tflops is not None:
        check_positive(peak_tflops, "--peak-tflops")
    if gpu_memory_gb is not None:
        check_positive(gpu_memory_gb, "--gpu-memory-gb")
    if name is None:
        if peak_tflops is None:
            if gpu_memory_gb is not None:
                raise ScalesweepError("--gpu-memory-gb needs --gpu or --peak-tflops")
            return None
        return Hardware("custom", float(peak_tflops), math.nan if gpu_memory_gb is None else float(gpu_memory_gb),
                        "user-defined")
    key = _HW_LOWER.get(str(name).lower())
    if key is None:
        raise ScalesweepError(f"unknown GPU {name!r} (one of: {', '.join(HARDWARE)}; or give --peak-tflops)")
    hw = HARDWARE[key]
    if peak_tflops is None and gpu_memory_gb is None:
        return hw
    return Hardware(hw.name, hw.peak_tflops if peak_tflops is None else float(peak_tflops),
                    hw.memory_gb if gpu_memory_gb is None else float(gpu_memory_gb), hw.source + " (overridden)")


def check_positive(v, what: str, *, upper: float | None = None) -> float:
    rng = f"in (0, {upper:g}]" if upper is not None else "a finite number > 0"
    try:
        fv = float(v)
    except (TypeError, ValueError):
        raise ScalesweepError(f"{what} must be {rng}, got {v!r}") from None
    if isinstance(v, bool) or not math.isfinite(fv) or fv <= 0 or (upper is not None and fv > upper):
        raise ScalesweepError(f"{what} must be {rng}, got {v!r}")
    return fv


def check_mfu(v, what: str = "--mfu") -> float:
    return check_positive(v, what, upper=1.0)


# The conversions below work on floats and numpy arrays alike (no validation: callers validate once).


def model_flops_per_gpu_hour(peak_tflops, mfu):
    return peak_tflops * 1e12 * mfu * SECONDS_PER_HOUR


def to_flops(value, unit: str, *, peak_tflops=None, mfu=DEFAULT_MFU, usd_per_gpu_hour=None):
    """A budget in ``unit`` (flops, pf_days, gpu_hours, usd) as training FLOPs."""
    if unit == "flops":
        return value * 1.0
    if unit == "pf_days":
        return value * PF_DAY
    if unit in ("gpu_hours", "usd"):
        if peak_tflops is None:
            raise ScalesweepError(f"a budget in {unit} needs a GPU (--gpu NAME or --peak-tflops)")
        hours = value
        if unit == "usd":
            if usd_per_gpu_hour is None:
                raise ScalesweepError("a budget in usd needs --usd-per-gpu-hour")
            hours = value / usd_per_gpu_hour
        return hours * model_flops_per_gpu_hour(peak_tflops, mfu)
    raise ScalesweepError(f"unknown budget unit {unit!r} (one of: {', '.join(BUDGET_UNITS)})")


def gpu_hours(flops, peak_tflops, mfu):
    return flops / model_flops_per_gpu_hour(peak_tflops, mfu)


def wall_days(hours, gpus):
    return hours / (HOURS_PER_DAY * gpus)


def max_params_for_memory(gpus, memory_gb, bytes_per_param=DEFAULT_BYTES_PER_PARAM):
    """Largest model whose training state fits in the memory of ``gpus`` GPUs (fully sharded)."""
    return gpus * memory_gb * 1e9 / bytes_per_param


def flops_for_days(days, gpus, peak_tflops, mfu):
    """Model FLOPs ``gpus`` GPUs deliver in ``days`` of wall time."""
    return days * HOURS_PER_DAY * gpus * model_flops_per_gpu_hour(peak_tflops, mfu)
