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

GPU memory is in decimal gigabytes (1e9 bytes), as the datasheets print it. The presets live in one data file,
``hardware.toml`` beside this module (dense bf16 and fp8 peaks, memory, board power, each with its datasheet):
``GPUS`` and ``GPU_ALIASES`` are loaded from it. Presets are named without regard to case, or by an alias
(``H100`` is the H100 SXM). A user file of the same shape adds parts or replaces them by name: the one in the
user configuration directory (``$XDG_CONFIG_HOME/scalesweep/hardware.toml``, ``~/.config/...`` when the variable
is unset) is read whenever it exists, and a file given as ``hardware_file`` is read on top of it.

Energy: ``energy_kwh = gpu_hours x board_power_w / 1000 x power_fraction x PUE`` (the power a board draws while
training, as a fraction of its maximum, times the data centre's power usage effectiveness) and
``co2_t = energy_kwh x grid_gco2_per_kwh / 1e6``.
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .codes import PF_DAY  # noqa: F401  (re-exported: the conversions' unit)
from .errors import ScalesweepError
from .validate import suggest

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24.0
DEFAULT_MFU = 0.4  # large well-tuned GPU runs reach ~35-45% (PaLM 46.2%, arXiv:2204.02311; Llama 3 38-43%, arXiv:2407.21783 Table 4)
DEFAULT_BYTES_PER_PARAM = 16.0  # mixed-precision Adam training state (ZeRO §3.1)
PRECISIONS = ("bf16", "fp8")  # the tensor precisions the catalogue gives peaks for
DEFAULT_PRECISION = "bf16"
# Average draw while training as a fraction of board power: 1.0, the board's maximum, as Meta reports training
# energy ("peak power capacity per GPU device ... adjusted for power usage efficiency": Touvron et al. 2023,
# Llama 2, arXiv:2307.09288, Table 2 caption). An upper bound; measured draws are lower.
DEFAULT_POWER_FRACTION = 1.0
# Power usage effectiveness of the data centre: 1.58, the global average of the Uptime Institute's 2018 survey
# (Ascierto 2018), the value Carbontracker uses (Anthony, Kanding, Selvan 2020, arXiv:2007.03051, §3).
DEFAULT_PUE = 1.58
GIB_PER_GB = 1.073741824  # 2^30 / 1e9: a GiB in decimal GB
CATALOGUE_FILE = "hardware.toml"
# The largest hardware file read (the built-in catalogue is about 8 kB): a larger file, or one that is not a
# regular file (a directory, a FIFO, a device such as /dev/zero), is refused before any of it is read.
MAX_HARDWARE_FILE_BYTES = 1 << 20
USER_CATALOGUE = Path("scalesweep") / CATALOGUE_FILE  # under the user configuration directory


@dataclass(frozen=True)
class GPU:
    name: str
    peak_tflops: float  # dense bf16, TFLOP/s
    memory_gb: float  # decimal GB
    source: str
    fp8_tflops: float | None = None  # dense fp8, TFLOP/s (None: no fp8 path)
    board_power_w: float | None = None  # maximum board power, W (None: not published)
    url: str = ""
    aliases: tuple[str, ...] = field(default=())

    def peak(self, precision: str = DEFAULT_PRECISION) -> float:
        """Dense peak throughput at ``precision`` (TFLOP/s)."""
        if precision == "bf16":
            return self.peak_tflops
        if self.fp8_tflops is None:
            raise ScalesweepError(f"{self.name} has no fp8 peak in the hardware catalogue (no fp8 tensor path); "
                                  "use --precision bf16, or give --peak-tflops")
        return self.fp8_tflops


_FIELDS = {"bf16_tflops", "fp8_tflops", "memory_gb", "memory_gib", "board_power_w", "aliases", "source", "url"}


def _positive(where: str, key: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise ScalesweepError(f"{where}: {key} must be a finite number > 0, got {v!r}")
    return float(v)


def _entry(name: str, t, where: str) -> GPU:
    """One catalogue table as a GPU, every field checked."""
    where = f"{where}, [{name}]"
    if not isinstance(t, dict):
        raise ScalesweepError(f"{where}: must be a table of fields ({', '.join(sorted(_FIELDS))})")
    unknown = sorted(set(t) - _FIELDS)
    if unknown:
        raise ScalesweepError(f"{where}: unknown field {unknown[0]!r}{suggest(unknown[0], sorted(_FIELDS))} "
                              f"(fields: {', '.join(sorted(_FIELDS))})")
    missing = [key for key in ("bf16_tflops", "source", "url") if key not in t]
    if missing:
        listed = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        raise ScalesweepError(f"{where}: missing {listed} (every entry needs bf16_tflops, memory_gb or memory_gib, "
                              "source and url)")
    if ("memory_gb" in t) == ("memory_gib" in t):
        raise ScalesweepError(f"{where}: give the memory once, as memory_gb or memory_gib")
    for key in ("source", "url"):
        if not isinstance(t[key], str) or not t[key].strip():
            raise ScalesweepError(f"{where}: {key} must be a non-empty string")
    aliases = t.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ScalesweepError(f"{where}: aliases must be a list of names")
    memory = (_positive(where, "memory_gb", t["memory_gb"]) if "memory_gb" in t
              else _positive(where, "memory_gib", t["memory_gib"]) * GIB_PER_GB)
    return GPU(name, _positive(where, "bf16_tflops", t["bf16_tflops"]), memory, t["source"],
               _positive(where, "fp8_tflops", t["fp8_tflops"]) if "fp8_tflops" in t else None,
               _positive(where, "board_power_w", t["board_power_w"]) if "board_power_w" in t else None,
               t["url"], tuple(aliases))


def _gpu_key(name) -> str:
    """Names compare without case, and with spaces and underscores read as hyphens (``h100 sxm``)."""
    return str(name).strip().lower().replace(" ", "-").replace("_", "-")


def _read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScalesweepError(f"{where}: not valid TOML ({exc})") from None


def _merge(gpus: dict[str, GPU], aliases: dict[str, str], table: dict, where: str) -> None:
    """Add the entries of one catalogue file: a name already present (any case) replaces that part (which
    keeps its place and aliases); a name that is another part's alias, or an alias that names another part,
    is refused, and so are two entries of the same file whose names are the same once compared as names are
    (``_gpu_key``: case, spaces and underscores), since the later would silently replace the earlier."""
    keys = {_gpu_key(k): k for k in gpus}
    here: dict[str, str] = {}  # this file's entries by key
    for name, t in table.items():
        key = _gpu_key(name)
        if key in here:
            raise ScalesweepError(f"{where}: [{name}] names the same part as [{here[key]}] (names are compared "
                                  "without case, with spaces and underscores read as hyphens); keep one")
        here[key] = name
        gpu = _entry(name, t, where)
        if key not in keys and key in {_gpu_key(a) for a in aliases}:
            target = aliases[next(a for a in aliases if _gpu_key(a) == key)]
            raise ScalesweepError(f"{where}, [{name}]: {name} is an alias of {target}; name the entry {target} "
                                  "to replace it")
        old = keys.get(key)
        if old is not None:  # a replacement keeps the part's name, place and aliases
            name = old
            gpu = GPU(old, gpu.peak_tflops, gpu.memory_gb, gpu.source, gpu.fp8_tflops, gpu.board_power_w, gpu.url,
                      tuple(dict.fromkeys([*gpus[old].aliases, *gpu.aliases])))
        gpus[name] = gpu
        keys[key] = name
        for a in gpu.aliases:
            ak = _gpu_key(a)
            taken = keys.get(ak) or next((k for x, k in aliases.items() if _gpu_key(x) == ak), None)
            if taken is not None and taken != name:
                raise ScalesweepError(f"{where}, [{name}]: alias {a!r} already names {taken}")
            aliases[a] = name


def _load(files: tuple) -> tuple[dict[str, GPU], dict[str, str]]:
    gpus: dict[str, GPU] = {}
    aliases: dict[str, str] = {}
    _merge(gpus, aliases, _read_toml(resources.files(__package__).joinpath(CATALOGUE_FILE).read_text("utf-8"),
                                     CATALOGUE_FILE), CATALOGUE_FILE)
    for path in files:
        where = f"hardware file {str(path)!r}"
        _merge(gpus, aliases, _read_toml(_read_hardware_file(path, where), where), where)
    return gpus, aliases


def _read_hardware_file(path, where: str) -> str:
    """The text of a hardware file: a regular file of at most ``MAX_HARDWARE_FILE_BYTES``, in UTF-8. It is
    opened without blocking (a FIFO with no writer does not hang) and checked on the open descriptor before
    anything is read; at most one byte over the limit is ever read (a file growing meanwhile is refused too)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ScalesweepError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    too_big = ScalesweepError(f"{where}: larger than {MAX_HARDWARE_FILE_BYTES // 1024} KiB; a hardware "
                              "catalogue is a few kB of TOML")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "is a directory" if stat.S_ISDIR(info.st_mode) else "is not a regular file"
            raise ScalesweepError(f"{where}: {kind}; give a TOML file")
        if info.st_size > MAX_HARDWARE_FILE_BYTES:
            raise too_big
        chunks, size = [], 0
        while size <= MAX_HARDWARE_FILE_BYTES:
            chunk = os.read(fd, MAX_HARDWARE_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise ScalesweepError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_HARDWARE_FILE_BYTES:
        raise too_big
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScalesweepError(f"{where}: not UTF-8 text (byte {exc.start})") from None


GPUS, GPU_ALIASES = _load(())  # the built-in catalogue


def user_catalogue_path() -> Path:
    """The user's own catalogue file: ``$XDG_CONFIG_HOME/scalesweep/hardware.toml`` (``~/.config`` when
    XDG_CONFIG_HOME is unset or empty, as the XDG Base Directory specification says)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / USER_CATALOGUE


_CACHE: dict = {}


def catalogue(hardware_file=None) -> tuple[dict[str, GPU], dict[str, str]]:
    """(presets, aliases): the built-in catalogue, then the user configuration file where it exists, then
    ``hardware_file``. Read once per set of files (and again when one changes)."""
    files = [p for p in (user_catalogue_path(),) if p.is_file()]
    if hardware_file is not None:
        files.append(Path(hardware_file))
    if not files:
        return GPUS, GPU_ALIASES
    stamp = tuple((str(p), p.stat().st_mtime_ns if p.is_file() else None) for p in files)
    if stamp not in _CACHE:
        _CACHE.clear()
        _CACHE[stamp] = _load(tuple(files))
    return _CACHE[stamp]


def gpu_preset(name: str, hardware_file=None) -> GPU:
    """A GPU preset by name or alias, without regard to case, from ``catalogue(hardware_file)``."""
    gpus, aliases = catalogue(hardware_file)
    keys = {_gpu_key(k): k for k in gpus} | {_gpu_key(a): k for a, k in aliases.items()}
    key = keys.get(_gpu_key(name))
    if key is None:
        raise ScalesweepError(f"unknown GPU {name!r}{suggest(name, [*gpus, *aliases])} (one of: "
                              f"{', '.join(gpus)}, or an alias: {', '.join(aliases)}; or give --peak-tflops)")
    return gpus[key]


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


def energy_kwh(hours, board_power_w, power_fraction=DEFAULT_POWER_FRACTION, pue=DEFAULT_PUE):
    """Facility energy of ``hours`` GPU-hours: board power x the fraction drawn x PUE."""
    return hours * (board_power_w / 1000.0) * power_fraction * pue


def co2_tonnes(kwh, grid_gco2_per_kwh):
    """Tonnes of CO2(e) from ``kwh`` at a grid intensity in grams per kWh."""
    return kwh * grid_gco2_per_kwh / 1e6
