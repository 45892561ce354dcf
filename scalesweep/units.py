"""Budgets in real units, and the hardware they run on.

Conversions (the PF-day of Kaplan et al. 2020, arXiv:2001.08361, §1.3; MFU as in Chowdhery et al. 2022, "PaLM",
arXiv:2204.02311, App. B):

* 1 PF-day = 1e15 FLOP/s x 86,400 s = 8.64e19 FLOP.
* One GPU-hour delivers ``peak x MFU x 3600`` model FLOPs, with ``peak`` the dense (no 2:4 sparsity) bf16
  throughput and MFU = achieved model FLOP/s / peak.
* Wall time on ``gpus`` GPUs: ``days = gpu_hours / (24 x gpus)``  (T = C / (n_GPU x peak x MFU)).
* Dollars: ``usd = gpu_hours x usd_per_gpu_hour``.
* Training state: mixed-precision Adam keeps 16 bytes per parameter (2 bf16 weights + 2 bf16 gradients
  + 4 fp32 master weights + 4 + 4 fp32 Adam moments; Rajbhandari et al. 2020, ZeRO, §3.1). Sharded over
  every GPU (ZeRO-3 / FSDP), ``max_params = gpus x memory / bytes_per_param``. Activations are not counted:
  this is an upper bound on the model a cluster can hold.

GPU memory is in decimal gigabytes (1e9 bytes), as the datasheets print it. Presets are named without regard
to case, or by an alias (``GPU_ALIASES``: ``H100`` is the H100 SXM).
"""

from __future__ import annotations

from dataclasses import dataclass

from .codes import PF_DAY  # noqa: F401  (re-exported: the conversions' unit)
from .errors import ScalesweepError
from .validate import suggest

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
DEFAULT_MFU = 0.4  # large well-tuned GPU runs reach ~35-45% (PaLM 46.2%, arXiv:2204.02311; Llama 3 38-43%, arXiv:2407.21783 Table 4)
DEFAULT_BYTES_PER_PARAM = 16.0  # mixed-precision Adam training state (ZeRO §3.1)


@dataclass(frozen=True)
class GPU:
    name: str
    peak_tflops: float  # dense bf16, TFLOP/s
    memory_gb: float  # decimal GB
    source: str


GPUS: dict[str, GPU] = {
    h.name: h
    for h in (
        GPU("A100", 312.0, 80.0,
            "NVIDIA A100 datasheet: BF16 312 TFLOP/s dense (624 with sparsity); 40 or 80 GB HBM2e "
            "(80 GB here; use --gpu-memory-gb 40 for the smaller part)"),
        GPU("H100-SXM", 989.4, 80.0,
            "NVIDIA H100 SXM5 datasheet: BF16 989.4 TFLOP/s dense (1,979 with sparsity); 80 GB HBM3"),
        GPU("H100-PCIe", 756.0, 80.0,
            "NVIDIA H100 PCIe datasheet: BF16 ~756 TFLOP/s dense (1,513 with sparsity); 80 GB HBM2e"),
        GPU("H200", 989.4, 141.0,
            "NVIDIA H200: same compute as H100 SXM (989.4 BF16 dense); 141 GB HBM3e (memory figure "
            "as NVIDIA states it for the H200; not checked against a datasheet)"),
    )
}
# Other names of the presets: the short name people say, and the names of the same parts on datasheets and
# in nvidia-smi.
GPU_ALIASES: dict[str, str] = {
    "H100": "H100-SXM",
    "H100-SXM5": "H100-SXM",
    "H200-SXM": "H200",
    "A100-80GB": "A100",
    "A100-SXM4-80GB": "A100",
}


def _gpu_key(name) -> str:
    """Names compare without case, and with spaces and underscores read as hyphens (``h100 sxm``)."""
    return str(name).strip().lower().replace(" ", "-").replace("_", "-")


_GPU_KEYS = {_gpu_key(k): k for k in GPUS} | {_gpu_key(a): k for a, k in GPU_ALIASES.items()}
assert all(k in GPUS for k in GPU_ALIASES.values()) and not set(map(_gpu_key, GPUS)) & set(map(_gpu_key, GPU_ALIASES))


def gpu_preset(name: str) -> GPU:
    """A GPU preset by name or alias (``GPU_ALIASES``), without regard to case."""
    key = _GPU_KEYS.get(_gpu_key(name))
    if key is None:
        raise ScalesweepError(f"unknown GPU {name!r}{suggest(name, [*GPUS, *GPU_ALIASES])} (one of: "
                              f"{', '.join(GPUS)}, or an alias: {', '.join(GPU_ALIASES)}; or give --peak-tflops)")
    return GPUS[key]


# The conversions below work on floats and numpy arrays alike (no validation: callers validate once).


def model_flops_per_gpu_hour(peak_tflops, mfu):
    return peak_tflops * 1e12 * mfu * SECONDS_PER_HOUR


def wall_days(hours, gpus):
    return hours / (HOURS_PER_DAY * gpus)


def max_params_for_memory(gpus, memory_gb, bytes_per_param=DEFAULT_BYTES_PER_PARAM):
    """Largest model whose training state fits in the memory of ``gpus`` GPUs (fully sharded)."""
    return gpus * memory_gb * 1e9 / bytes_per_param


def flops_for_days(days, gpus, peak_tflops, mfu):
    """Model FLOPs ``gpus`` GPUs deliver in ``days`` of wall time."""
    return days * HOURS_PER_DAY * gpus * model_flops_per_gpu_hour(peak_tflops, mfu)
