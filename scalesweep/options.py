"""Every user-settable option, defined once: name, rule, unit, default and help.

Options are frozen dataclasses whose fields carry their description (``field(metadata=...)``): the API
builds them from keyword arguments, the CLI generates its ``--options`` from the same fields
(``cli._options_from``), and the scenario fields (``FIELDS``) are the union of them plus the budget forms
and the law names. A value given on the command line therefore reaches the engine by one path: option ->
dataclass -> ``columns()`` -> engine input column.

* ``Constraints``: limits on the allocation (six bounds, Kaplan's overfitting limit and the convergence gap).
* ``Hardware``: the GPUs a run uses (preset or custom), utilisation, price, memory rule and time limit.
* ``Workload``: the data available and the inference demand.
* ``BUDGETS``: the ways to state a budget (one per row), or a target loss instead of a budget.

Options that would have no effect in a combination are refused with a message naming what is missing
(``--gpus needs --gpu or --peak-tflops``): nothing is silently ignored. Counts of parameters, tokens and FLOPs
(``SIZE_UNITS``) are sizes: ``Constraints(max_params="7B")`` is ``max_params=7e9``.
"""

from __future__ import annotations

import math
from sys import float_info
from dataclasses import MISSING, dataclass, field, fields

from . import shapes, units
from .errors import ScalesweepError
from .validate import choice, clip, number, suggest


SIZE_UNITS = ("parameters", "tokens", "FLOP")  # counts: their values may be written 7B, 1.5T, 350M


def option(rule: str, help: str, *, unit: str | None = None, default=None, scenario: bool = True):
    """A dataclass field that is an option: absent (None) unless given; ``default`` is what absent means. A
    field in one of ``SIZE_UNITS`` is a size (``size`` in its metadata): text like ``7B`` is read as 7e9.
    ``scenario=False`` keeps it out of the scenario fields (``FIELDS``): a frontier and target-loss option
    that scenario tables do not read."""
    return field(default=None, metadata={"rule": rule, "help": help, "unit": unit, "default": default,
                                         "size": unit in SIZE_UNITS, "scenario": scenario})


def float_max() -> float:
    """The largest finite float (1.8e308)."""
    return float_info.max


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
    max_convergence_gap: float | None = option(
        "pos", "The law's own L(N, D)/L(N, inf) - 1 at most this: how far above the converged loss of its size a "
        "run may stop (Kaplan Eq. B.5: about 0.1 on Kaplan's frontier; chinchilla, kaplan and kaplan_steps laws).")

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

    ``peak``, ``memory`` and ``power`` resolve the preset (from the catalogue, ``units.catalogue``) at the
    precision asked for, with any override. Options that need a GPU (utilisation, count, price, memory, power)
    or a GPU count (bytes per parameter, the time limit) are refused without one. The energy options (board
    power, power fraction, PUE, grid intensity, electricity price) ask for the energy columns (``energy``).
    """

    gpu: str | None = option("name", "Hardware preset from the catalogue (scalesweep/hardware.toml, see "
                             "scalesweep.units.GPUS): " + ", ".join(units.GPUS) + "; or an alias ("
                             + ", ".join(f"{a} = {k}" for a, k in units.GPU_ALIASES.items())
                             + "); any case. Brings its dense peak, memory and board power.")
    peak_tflops: float | None = option("pos", "Dense peak per GPU at the precision used (a custom GPU, or "
                                       "overrides --gpu).", unit="TFLOP/s")
    gpu_memory_gb: float | None = option("pos", "Memory per GPU (a custom GPU, or overrides --gpu).", unit="GB")
    mfu: float | None = option("fraction", "Model FLOPs utilisation in (0, 1].", default=units.DEFAULT_MFU)
    gpus: float | None = option("int", "Number of GPUs: adds wall_days and a memory limit on params.")
    usd_per_gpu_hour: float | None = option("pos", "Price of a GPU-hour: adds a usd column.", unit="USD")
    bytes_per_param: float | None = option(
        "pos", "Training-state bytes per parameter for the memory limit (needs --gpus).",
        unit="bytes", default=units.DEFAULT_BYTES_PER_PARAM)
    max_days: float | None = option("pos", "Wall-clock limit (needs --gpus and a GPU): caps the budget.",
                                    unit="days")
    precision: str | None = option("name", "Tensor precision whose dense peak --gpu brings: "
                                   + " or ".join(units.PRECISIONS) + f" (default {units.DEFAULT_PRECISION}).",
                                   scenario=False)
    hardware_file: str | None = option(
        "name", "A TOML hardware catalogue (the shape of scalesweep/hardware.toml) adding or replacing --gpu "
        "presets; $XDG_CONFIG_HOME/scalesweep/hardware.toml is read first when it exists.", scenario=False)
    # The energy options. power_fraction and pue state their defaults in the help rather than as field defaults:
    # an option default is an engine input of every row (and a scenario table's recorded default), and these
    # matter only where the energy columns are asked for.
    board_power_w: float | None = option("pos", "Board power per GPU (a custom GPU, or overrides --gpu): adds "
                                         "energy_kwh.", unit="W")
    power_fraction: float | None = option(
        "fraction", f"Average draw while training as a fraction of board power (default "
        f"{units.DEFAULT_POWER_FRACTION:g}: the board's maximum, as Llama 2 reports energy, arXiv:2307.09288 "
        "Table 2): adds energy_kwh.")
    pue: float | None = option(
        "pos", f"Data-centre power usage effectiveness, >= 1 (default {units.DEFAULT_PUE:g}: the 2018 global "
        "average used by Carbontracker, arXiv:2007.03051): adds energy_kwh.")
    grid_gco2_per_kwh: float | None = option("nonneg", "Grid carbon intensity: adds energy_kwh and co2_t.",
                                             unit="gCO2/kWh")
    usd_per_kwh: float | None = option("nonneg", "Price of electricity: adds energy_kwh, and usd includes "
                                       "the energy.", unit="USD/kWh")

    def __post_init__(self):
        if self.pue is not None:  # one message for every bad PUE (0, 0.5, text): the rule is >= 1
            try:
                pue = number(self.pue, flag("pue"), "pos")
            except ScalesweepError:
                pue = None
            if pue is None or pue < 1:
                raise ScalesweepError(f"--pue must be a finite number >= 1 (facility energy over IT energy), got "
                                      f"{clip(self.pue)}")
        _check_fields(self)
        if self.precision is not None:
            object.__setattr__(self, "precision", choice(str(self.precision).strip().lower(), units.PRECISIONS,
                                                         "precision"))
        if self.gpu is not None:
            preset = units.gpu_preset(self.gpu, self.hardware_file)
            object.__setattr__(self, "gpu", preset.name)
            if self.peak_tflops is None:
                preset.peak(self.precision or units.DEFAULT_PRECISION)  # refuses fp8 on a part without it
        if self.gpus is not None:
            object.__setattr__(self, "gpus", float(self.gpus))
        missing = unmet({f.name: getattr(self, f.name) is not None for f in fields(self)})
        if missing:
            raise ScalesweepError(missing)
        if self.energy and self.power is None:
            raise ScalesweepError(f"{self.gpu or 'a custom GPU'} has no board power in the hardware catalogue: "
                                  "give --board-power-w for the energy columns")
        if self.given:
            self._check_rates()

    def _check_rates(self) -> None:
        """The per-GPU figures the engine multiplies (FLOPs per GPU-hour, per day on every GPU, the memory of
        every GPU, the energy and price of a GPU-hour) must be finite: a product beyond the float range is
        refused here, naming the option, rather than becoming an infinite column."""
        big = f"more than {float_max():.2g}, the largest number a float holds"
        per_hour = units.model_flops_per_gpu_hour(self.peak, self.mfu or units.DEFAULT_MFU)
        peak = "--peak-tflops" if self.peak_tflops is not None else f"--gpu {self.gpu}"
        if not math.isfinite(per_hour):
            raise ScalesweepError(f"{peak} ({self.peak:g} TFLOP/s): FLOPs per GPU-hour would be {big}")
        if self.gpus is not None:
            if not math.isfinite(units.HOURS_PER_DAY * self.gpus * per_hour):
                raise ScalesweepError(f"--gpus {self.gpus:g}: FLOPs per day on every GPU would be {big}")
            if self.memory is not None and not math.isnan(self.memory) and not math.isfinite(
                    self.gpus * self.memory * 1e9):
                raise ScalesweepError(f"--gpus {self.gpus:g}: the memory of every GPU in bytes would be {big}")
        if self.energy:
            kwh = units.energy_kwh(1.0, self.power, self.power_fraction or units.DEFAULT_POWER_FRACTION,
                                   self.pue or units.DEFAULT_PUE)
            if not math.isfinite(kwh):
                raise ScalesweepError(f"--board-power-w ({self.power:g} W): the energy of a GPU-hour would be {big}")
            if self.usd_per_kwh is not None and not math.isfinite(kwh * self.usd_per_kwh
                                                                  + (self.usd_per_gpu_hour or 0.0)):
                raise ScalesweepError(f"--usd-per-kwh {self.usd_per_kwh:g}: the price of a GPU-hour would be {big}")

    @property
    def given(self) -> bool:
        return self.gpu is not None or self.peak_tflops is not None

    def _preset(self):
        return units.gpu_preset(self.gpu, self.hardware_file) if self.gpu is not None else None

    @property
    def peak(self) -> float | None:
        if self.peak_tflops is not None:
            return self.peak_tflops
        preset = self._preset()
        return preset.peak(self.precision or units.DEFAULT_PRECISION) if preset is not None else None

    @property
    def memory(self) -> float | None:
        if self.gpu_memory_gb is not None:
            return self.gpu_memory_gb
        preset = self._preset()
        return preset.memory_gb if preset is not None else None

    @property
    def power(self) -> float | None:
        """Board power per GPU in W: the override, else the preset's (None where neither gives one)."""
        if self.board_power_w is not None:
            return self.board_power_w
        preset = self._preset()
        return preset.board_power_w if preset is not None else None

    @property
    def energy(self) -> bool:
        """Whether an energy option was given (the energy columns are asked for)."""
        return any(getattr(self, name) is not None for name in ENERGY_FIELDS)

    def describe(self) -> dict:
        """What the metadata records: the options given and the resolved GPU."""
        out = given(self)
        if self.given:
            out.update(peak_tflops=self.peak, gpu_memory_gb=self.memory)
            if self.memory is None or math.isnan(self.memory):
                out.pop("gpu_memory_gb")
            if self.energy:
                out.update(board_power_w=self.power, power_fraction=self.power_fraction or units.DEFAULT_POWER_FRACTION,
                           pue=self.pue or units.DEFAULT_PUE)
        return out


# The options that ask for the energy columns (energy_kwh; co2_t with a grid intensity).
ENERGY_FIELDS = ("board_power_w", "power_fraction", "pue", "grid_gco2_per_kwh", "usd_per_kwh")


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
class Shape:
    """The transformer shape of each row's model (``shapes``): n_layer, d_model, n_heads and the non-embedding
    and embedding parameter counts, as opt-in columns (any shape field given asks for them), and the FLOPs per
    token the frontier spends (``flops_model``; default 6N)."""

    vocab: float | None = option("int", "Vocabulary size: embedding parameters are vocab x d_model; adds the shape "
                                 "columns (n_layer, d_model, n_heads, non_embedding_params, embedding_params).",
                                 default=shapes.DEFAULT_VOCAB, scenario=False)
    context: float | None = option("int", "Context length n_ctx (counted as embedding parameters with --positions "
                                   "learned); adds the shape columns.", unit="tokens",
                                   default=shapes.DEFAULT_CONTEXT, scenario=False)
    aspect_ratio: float | None = option("pos", "d_model / n_layer of the shape (default 128: GPT-3 175B, "
                                        "arXiv:2005.14165 Table 2.1); adds the shape columns.",
                                        default=shapes.DEFAULT_ASPECT_RATIO, scenario=False)
    head_size: float | None = option("int", "Attention head size; d_model is rounded to a multiple of it; adds "
                                     "the shape columns.", default=shapes.DEFAULT_HEAD_SIZE, scenario=False)
    positions: str | None = option("name", "learned: n_ctx x d_model position embeddings count as embedding "
                                   "parameters; none (default): parameter-free positions. Adds the shape columns.",
                                   scenario=False)
    params_convention: str | None = option(
        "name", "How the rows' params count: total (embeddings included) or non_embedding (default: each law's "
        "own, see `scalesweep laws`). Adds the shape columns.", scenario=False)

    flops_model: str | None = option(
        "name", "Training FLOPs per token: 6N (default: C = 6ND), kaplan (6N + 6 n_layer n_ctx d_model, Kaplan Eq. "
        "2.2) or chinchilla (the full count of Hoffmann et al. App. F); the frontier then solves C = "
        "flops_per_token(N) D.", scenario=False)

    def __post_init__(self):
        _check_fields(self)
        if self.flops_model is not None:
            object.__setattr__(self, "flops_model", choice(
                {m.lower(): m for m in shapes.FLOPS_MODELS}.get(str(self.flops_model).strip().lower(),
                                                             str(self.flops_model)), shapes.FLOPS_MODELS,
                "FLOPs model"))
        if self.positions is not None:
            object.__setattr__(self, "positions", choice(str(self.positions).strip().lower(), ("learned", "none"),
                                                         "positions"))
        if self.params_convention is not None:
            object.__setattr__(self, "params_convention", choice(
                str(self.params_convention).strip().lower().replace("-", "_"), shapes.CONVENTIONS,
                "parameter convention"))

    @property
    def wanted(self) -> bool:
        """Whether a shape field was given (the shape columns are asked for; ``flops_model`` alone does not)."""
        return any(k != "flops_model" for k in given(self))

    def spec(self, convention: str) -> shapes.ShapeSpec:
        """The shape rule for params counted in ``convention`` (``params_convention`` overrides it)."""
        v = {f.name: getattr(self, f.name) if getattr(self, f.name) is not None else f.metadata["default"]
             for f in fields(self) if f.metadata["rule"] != "name"}
        return shapes.ShapeSpec(vocab=v["vocab"], context=v["context"], aspect_ratio=v["aspect_ratio"],
                                head_size=v["head_size"], positional=self.positions == "learned",
                                convention=self.params_convention or convention)


@dataclass(frozen=True)
class Budgets:
    """The forms of a budget: exactly one per row (``unit`` on the command line, a field in scenarios)."""

    flops: float | None = option("pos", "Budget in training FLOPs.", unit="FLOP")
    pf_days: float | None = option("pos", "Budget in PF-days (8.64e19 FLOP).", unit="PF-days")
    gpu_hours: float | None = option("pos", "Budget in GPU-hours (needs a GPU).", unit="GPU-hours")
    usd: float | None = option("pos", "Budget in dollars (needs a GPU and usd_per_gpu_hour).", unit="USD")
    days: float | None = option("pos", "Budget as wall-clock days on gpus GPUs (needs a GPU and gpus).",
                                unit="days")
    kwh: float | None = option("pos", "Budget in facility energy (needs a GPU with a board power).", unit="kWh",
                               scenario=False)
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
    **{f.name: dict(f.metadata) for cls in (Budgets, *OPTION_CLASSES) for f in fields(cls) if f.metadata["scenario"]},
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
    ("kwh", (_GPU,)),
    ("days", (("gpus",), _GPU)),
    ("max_days", (("gpus",), _GPU)),
    ("gpus", (_GPU,)),
    ("usd_per_gpu_hour", (_GPU,)),
    ("gpu_memory_gb", (_GPU,)),
    ("mfu", (_GPU,)),
    ("bytes_per_param", (("gpus",), _MEMORY)),
    ("precision", (("gpu",),)),
    ("hardware_file", (("gpu",),)),
    *((name, (_GPU,)) for name in ENERGY_FIELDS),
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
            if obj.energy:
                out["board_power_w"] = obj.power
    return out


assert all(f.default is None and f.default_factory is MISSING for cls in (Budgets, *OPTION_CLASSES) for f in fields(cls))
