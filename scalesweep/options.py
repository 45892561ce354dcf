"""Every user-settable option, defined once: name, rule, unit, default and help.

Options are frozen dataclasses whose fields carry their description (``field(metadata=...)``): the API
builds them from keyword arguments, the CLI generates its ``--options`` from the same fields
(``cli._options_from``), and the scenario fields (``FIELDS``) are the union of them plus the budget forms
and the law names. A value given on the command line therefore reaches the engine by one path: option ->
dataclass -> ``columns()`` -> engine input column.

* ``Constraints``: limits on the allocation (six bounds and Kaplan's overfitting limit).
* ``Hardware``: the GPUs a run uses (preset or custom), utilisation, price, memory rule and time limit.
* ``Workload``: the data available and the inference demand.
* ``BUDGETS``: the ways to state a budget (one per row), or a target loss instead of a budget.

Options that would have no effect in a combination are refused with a message naming what is missing
(``--gpus needs --gpu or --peak-tflops``): nothing is silently ignored. Counts of parameters, tokens and FLOPs
(``SIZE_UNITS``) are sizes: ``Constraints(max_params="7B")`` is ``max_params=7e9``.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields

from . import units
from .errors import ScalesweepError
from .validate import number, suggest


SIZE_UNITS = ("parameters", "tokens", "FLOP")  # counts: their values may be written 7B, 1.5T, 350M


def option(rule: str, help: str, *, unit: str | None = None, default=None):
    """A dataclass field that is an option: absent (None) unless given; ``default`` is what absent means. A
    field in one of ``SIZE_UNITS`` is a size (``size`` in its metadata): text like ``7B`` is read as 7e9."""
    return field(default=None, metadata={"rule": rule, "help": help, "unit": unit, "default": default,
                                         "size": unit in SIZE_UNITS})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_fields(obj) -> None:
    """Validate every given numeric field by its rule (strings are resolved by the class itself)."""
    for f in fields(obj):
        v = getattr(obj, f.name)
        rule = f.metadata["rule"]
        if v is None or rule == "name":
            continue
        object.__setattr__(obj, f.name, number(v, flag(f.name), rule, size=f.metadata["size"]))


def from_values(cls, values: dict, *, what: str = "option"):
    """``cls(**values)`` with ``None`` values dropped; an unknown name is one line with a did-you-mean."""
    names = [f.name for f in fields(cls)]
    for k in values:
        if k not in names:
            raise ScalesweepError(f"unknown {what} {k!r}{suggest(k, names)} (one of: {', '.join(names)})")
    return cls(**{k: v for k, v in values.items() if v is not None})


def given(obj) -> dict:
    """The fields that were given, as a dict."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if getattr(obj, f.name) is not None}


@dataclass(frozen=True)
class Constraints:
    """Limits on the allocation; ``None`` means no limit. Tokens per parameter is D/N."""

    min_params: float | None = option("pos", "Smallest model allowed.", unit="parameters")
    max_params: float | None = option("pos", "Largest model allowed.", unit="parameters")
    min_tokens: float | None = option("pos", "Fewest training tokens allowed.", unit="tokens")
    max_tokens: float | None = option("pos", "Most training tokens allowed (e.g. the data you have).", unit="tokens")
    min_tokens_per_param: float | None = option("pos", "Lower limit on D/N.", unit="tokens per parameter")
    max_tokens_per_param: float | None = option("pos", "Upper limit on D/N.", unit="tokens per parameter")
    max_overfit: float | None = option(
        "pos", "Kaplan's overfitting measure dL (Eq. 4.3) at most this; 0.02 is Eq. 4.4's D >~ 5e3 N^0.74.",
        unit="nats/token")

    def __post_init__(self):
        _check_fields(self)
        for what in ("params", "tokens", "tokens_per_param"):
            lo, hi = getattr(self, "min_" + what), getattr(self, "max_" + what)
            if lo is not None and hi is not None and lo > hi:
                raise ScalesweepError(f"{flag('min_' + what)} ({lo:g}) is greater than {flag('max_' + what)} "
                                      f"({hi:g}): no allocation can satisfy both")

    def as_dict(self) -> dict:
        return given(self)


@dataclass(frozen=True)
class Hardware:
    """The GPUs: a preset (``gpu``) or a custom one (``peak_tflops``), and what follows from a count of them.

    ``peak`` and ``memory`` resolve the preset with any override. Options that need a GPU (utilisation,
    count, price, memory) or a GPU count (bytes per parameter, the time limit) are refused without one.
    """

    gpu: str | None = option("name", f"Hardware preset: {', '.join(units.GPUS)}, or an alias ("
                             + ", ".join(f"{a} = {k}" for a, k in units.GPU_ALIASES.items())
                             + "); any case. Brings its dense bf16 peak and memory.")
    peak_tflops: float | None = option("pos", "Dense bf16 peak per GPU (a custom GPU, or overrides --gpu).",
                                       unit="TFLOP/s")
    gpu_memory_gb: float | None = option("pos", "Memory per GPU (a custom GPU, or overrides --gpu).", unit="GB")
    mfu: float | None = option("fraction", "Model FLOPs utilisation in (0, 1].", default=units.DEFAULT_MFU)
    gpus: float | None = option("int", "Number of GPUs: adds wall_days and a memory limit on params.")
    usd_per_gpu_hour: float | None = option("pos", "Price of a GPU-hour: adds a usd column.", unit="USD")
    bytes_per_param: float | None = option(
        "pos", "Training-state bytes per parameter for the memory limit (needs --gpus).",
        unit="bytes", default=units.DEFAULT_BYTES_PER_PARAM)
    max_days: float | None = option("pos", "Wall-clock limit (needs --gpus and a GPU): caps the budget.",
                                    unit="days")

    def __post_init__(self):
        _check_fields(self)
        if self.gpu is not None:
            object.__setattr__(self, "gpu", units.gpu_preset(self.gpu).name)
        if self.gpus is not None:
            object.__setattr__(self, "gpus", float(self.gpus))
        missing = unmet({f.name: getattr(self, f.name) is not None for f in fields(self)})
        if missing:
            raise ScalesweepError(missing)

    @property
    def given(self) -> bool:
        return self.gpu is not None or self.peak_tflops is not None

    @property
    def peak(self) -> float | None:
        if self.peak_tflops is not None:
            return self.peak_tflops
        return units.gpu_preset(self.gpu).peak_tflops if self.gpu is not None else None

    @property
    def memory(self) -> float | None:
        if self.gpu_memory_gb is not None:
            return self.gpu_memory_gb
        return units.gpu_preset(self.gpu).memory_gb if self.gpu is not None else None

    def describe(self) -> dict:
        """What the metadata records: the options given and the resolved GPU."""
        out = given(self)
        if self.given:
            out.update(peak_tflops=self.peak, gpu_memory_gb=self.memory)
            if self.memory is None or math.isnan(self.memory):
                out.pop("gpu_memory_gb")
        return out


@dataclass(frozen=True)
class Workload:
    """The data there is to train on and the inference the model will serve."""

    unique_tokens: float | None = option(
        "pos", "Unique tokens available: caps tokens (single-epoch laws) or sets U_D (data-constrained); adds "
        "epochs.", unit="tokens")
    inference_tokens: float | None = option(
        "nonneg", "Lifetime inference demand: adds inference_flops and lifetime_flops (2N FLOPs per token).",
        unit="tokens", default=0.0)

    def __post_init__(self):
        _check_fields(self)


@dataclass(frozen=True)
class Budgets:
    """The forms of a budget: exactly one per row (``unit`` on the command line, a field in scenarios)."""

    flops: float | None = option("pos", "Budget in training FLOPs.", unit="FLOP")
    pf_days: float | None = option("pos", "Budget in PF-days (8.64e19 FLOP).", unit="PF-days")
    gpu_hours: float | None = option("pos", "Budget in GPU-hours (needs a GPU).", unit="GPU-hours")
    usd: float | None = option("pos", "Budget in dollars (needs a GPU and usd_per_gpu_hour).", unit="USD")
    days: float | None = option("pos", "Budget as wall-clock days on gpus GPUs (needs a GPU and gpus).",
                                unit="days")
    target_loss: float | None = option("pos", "Instead of a budget: the least compute reaching this loss.",
                                       unit="nats/token")


OPTION_CLASSES = (Hardware, Workload, Constraints)
BUDGET_FIELDS = tuple(f.name for f in fields(Budgets))
BUDGET_UNITS = BUDGET_FIELDS[:-1]  # the units of a frontier's budgets
LAW_FIELDS = {"law": "law preset name (default hoffmann2022); parameters overridden as law.NAME",
              "loss_law": "a loss law to evaluate allocation-rule rows with (their loss is NaN otherwise)"}
# Every scenario field and its rule ("name" for the string fields).
FIELDS: dict[str, dict] = {
    **{name: {"rule": "name", "help": help_, "size": False} for name, help_ in LAW_FIELDS.items()},
    **{f.name: dict(f.metadata) for cls in (Budgets, *OPTION_CLASSES) for f in fields(cls)},
}
STRING_FIELDS = tuple(name for name, f in FIELDS.items() if f["rule"] == "name")
DEFAULTS = {"law": "hoffmann2022", **{name: f["default"] for name, f in FIELDS.items() if f.get("default") is not None}}


# An option that needs others: (field, groups); every group needs one of its fields given. "gpu" is a GPU
# preset, "peak_tflops" a custom GPU; a preset brings its memory.
_GPU = ("gpu", "peak_tflops")
_MEMORY = ("gpu", "gpu_memory_gb")
_GROUP_NAMES = {_GPU: "a GPU", _MEMORY: "GPU memory"}
REQUIRES = (
    ("gpu_hours", (_GPU,)),
    ("usd", (_GPU, ("usd_per_gpu_hour",))),
    ("days", (("gpus",), _GPU)),
    ("max_days", (("gpus",), _GPU)),
    ("gpus", (_GPU,)),
    ("usd_per_gpu_hour", (_GPU,)),
    ("gpu_memory_gb", (_GPU,)),
    ("mfu", (_GPU,)),
    ("bytes_per_param", (("gpus",), _MEMORY)),
)


def cli_name(name: str) -> str:
    """How the command line spells a field: a budget form is a --unit, anything else its --flag."""
    return f"--unit {name}" if name in BUDGET_UNITS else flag(name)


def field_name(name: str) -> str:
    """How a scenario spells a field."""
    return f"a budget in {name}" if name in BUDGET_UNITS else name


def unmet(given: dict, name=cli_name) -> str | None:
    """The first broken rule of ``REQUIRES`` among the fields given (name -> bool), as a message whose field
    names ``name`` spells; None when every rule holds."""
    for field_name_, groups in REQUIRES:
        if given.get(field_name_) and not all(any(given.get(x) for x in g) for g in groups):
            alts = [" or ".join(map(name, g)) for g in groups]
            if len(groups) > 1:
                alts = [f"{_GROUP_NAMES[g]} ({a})" if len(g) > 1 else a for g, a in zip(groups, alts, strict=True)]
            needs = " and ".join(alts)
            return f"{name(field_name_)} needs {needs}"
    return None


def check_rules(given: dict, m: int, label, name=field_name) -> None:
    """Raise on the first row breaking a cross-field rule (exactly one budget per row, ``REQUIRES``).
    ``given`` maps field -> bool (shared) or bool array (per row); absent names are not given. ``label(i)``
    names row i in the message, ``name`` spells a field."""
    import numpy as np

    if all(np.ndim(v) == 0 for v in given.values()):  # the same fields for every row: check once
        m = 1
    g = {k: np.broadcast_to(v, (m,)) for k, v in given.items()}
    none = np.zeros(m, dtype=bool)
    count = sum(g.get(f, none).astype(np.int8) for f in BUDGET_FIELDS)
    forms = ", ".join(BUDGET_FIELDS)
    for bad, msg in ((count == 0, "no budget: give one of " + forms),
                     (count > 1, "more than one budget: give exactly one of " + forms)):
        if bad.any():
            raise ScalesweepError(f"{label(int(np.argmax(bad)))}: {msg}")
    for field_name, groups in REQUIRES:
        bad = g.get(field_name, none) & ~np.logical_and.reduce(
            [np.logical_or.reduce([g.get(x, none) for x in grp]) for grp in groups])
        if bad.any():
            row = int(np.argmax(bad))
            raise ScalesweepError(f"{label(row)}: {unmet({k: bool(v[row]) for k, v in g.items()}, name)}")


def columns(*objs) -> dict:
    """Engine input columns from option objects: every given numeric field, the resolved GPU and the defaults
    of the options that have one."""
    out = {}
    for obj in objs:
        for f in fields(obj):
            v = getattr(obj, f.name)
            if f.metadata["rule"] == "name":
                continue
            if v is None:
                v = f.metadata["default"]
            if v is not None:
                out[f.name] = float(v)
        if isinstance(obj, Hardware) and obj.given:
            out["peak_tflops"] = obj.peak
            if obj.memory is not None and not math.isnan(obj.memory):
                out["gpu_memory_gb"] = obj.memory
    return out


assert all(f.default is None and f.default_factory is MISSING for cls in (Budgets, *OPTION_CLASSES) for f in fields(cls))
