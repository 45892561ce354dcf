"""Output kinds: the column registry, and for each kind of result the one function that builds its Arrow
schema and metadata. The single-file writer, the partitioned writer and the Dask tasks all call these, so a
table means the same thing however it was written.

A result is a dict of columns (``name -> numpy array``, or a scalar shared by every row); categorical
columns are given as codes. ``to_arrow`` and ``to_frame`` turn it into an Arrow table or a pandas DataFrame
with the types of ``COLUMNS``.

``COLUMNS`` is the one description of every output column: its type, unit, meaning and what a null means.
Every table carries them as Arrow field metadata (``unit``, ``description``, ``null``). In memory a missing
value is NaN (numpy results, DataFrames); in a table it is an Arrow null, never NaN: no NaN of a result is a
number (each means "not applicable" or "infeasible"), and nulls are what SQL ``avg`` and polars ``mean`` skip.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ._version import __version__
from .codes import ACTIVE_NAMES, BUDGET_LIMITS
from .errors import ScalesweepError
from .options import BUDGET_FIELDS, ENERGY_FIELDS, FIELDS
from .output import jsonable

METADATA_KEY = b"scalesweep"


@dataclass(frozen=True)
class Column:
    type: str  # "float", "int", "bool" or "category"
    unit: str
    description: str
    null: str = ""  # what a null means ("": the column is never null)
    categories: tuple[str, ...] | None = None  # fixed categories (None: given with the values)

    def field(self, name: str, arrow_type: pa.DataType | None = None) -> pa.Field:
        """The Arrow field of this column: its type (``arrow_type`` overrides, e.g. float32), with the unit,
        description and null meaning as field metadata (``unit`` and ``null`` only where there is one)."""
        md = {"unit": self.unit, "description": self.description, "null": self.null}
        return pa.field(name, arrow_type or ARROW_TYPES[self.type], metadata={k: v for k, v in md.items() if v})


ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(),
               "category": pa.dictionary(pa.int32(), pa.string())}
_INFEASIBLE = "infeasible row"
_NO_TARGET = "an infeasible target-loss row"
_REL_ERROR = "{stat} relative error of {what} against the exact solver over the budgets"
_NO_FIT = "fewer than 2 parabolas fitted"
COLUMNS: dict[str, Column] = {
    "scenario_id": Column("int", "", "the scenario's row in the spec (0-based)"),
    "law": Column("category", "", "the law of the row (with +NAME when a parameter is overridden)"),
    "family": Column("category", "", "the law's family"),
    "target_loss": Column("float", "nats/token", "the loss asked for (target-loss rows)"),
    "flops": Column("float", "FLOP", "training compute (6ND)", _NO_TARGET),
    "params": Column("float", "parameters", "model size N (compute-optimal in frontier tables)",
                     _INFEASIBLE + ", or a law that gives only the loss at a budget"),
    "tokens": Column("float", "tokens", "training tokens D (compute-optimal in frontier tables)",
                     _INFEASIBLE + ", or a law that gives only the loss at a budget"),
    "loss": Column("float", "nats/token", "the law's loss at (N, D)", _INFEASIBLE + ", an allocation rule without "
                   "a loss law, or a point where the loss is not defined"),
    "tokens_per_param": Column("float", "tokens/parameter", "D/N", _INFEASIBLE),
    "n_layer": Column("int", "layers", "transformer blocks of the row's shape (shapes.shape)", _INFEASIBLE),
    "d_model": Column("int", "", "width of the row's shape: a multiple of the head size", _INFEASIBLE),
    "n_heads": Column("int", "heads", "attention heads: d_model / head size", _INFEASIBLE),
    "non_embedding_params": Column("float", "parameters", "12 n_layer d_model^2 of the shape (Kaplan Eq. 2.1)",
                                   _INFEASIBLE),
    "embedding_params": Column("float", "parameters", "vocab x d_model (+ context x d_model for learned positions)",
                               _INFEASIBLE),
    "convergence_gap": Column("float", "", "loss / L(N, inf) - 1: how far above the converged loss of its size the "
                              "row stops (Kaplan et al. 2020 Eq. B.5)", _INFEASIBLE + ", or a law without a loss "
                              "of N and D"),
    "irreducible_loss": Column("float", "nats/token", "the law's loss as N and D grow without limit (E; 0 for a "
                               "pure power law)"),
    "gap": Column("float", "nats/token", "loss - irreducible_loss: what more parameters and data could still win",
                  "a point where the loss is not defined"),
    "feasible": Column("bool", "", "whether every limit can be met"),
    "active_constraint": Column("category", "", "the limit the optimum sits on (none: unconstrained)",
                                categories=ACTIVE_NAMES),
    "infeasible_reason": Column("category", "", "why a row is infeasible: the conflicting limits joined by '+', "
                                "max_days, irreducible_loss, unsupported_family, no_allocation, budget, "
                                "budget_overflow, COLUMN_overflow or undefined_loss", "feasible row"),
    "budget_flops": Column("float", "FLOP", "the budget before a max_days cap", "target-loss row (no budget)"),
    "budget_limited_by": Column("category", "", "budget, or max_days when the time limit cut it",
                                categories=BUDGET_LIMITS),
    "gpu_hours": Column("float", "GPU-hours", "flops / (peak x MFU x 3600)", "no GPU on the row, or " + _NO_TARGET),
    "wall_days": Column("float", "days", "gpu_hours / (24 x gpus)", "no GPU or gpus on the row, or " + _NO_TARGET),
    "usd": Column("float", "USD", "gpu_hours x usd_per_gpu_hour, plus energy_kwh x usd_per_kwh where an electricity "
                  "price is given", "no GPU or price on the row, or " + _NO_TARGET),
    "energy_kwh": Column("float", "kWh", "facility energy: gpu_hours x board_power_w / 1000 x power_fraction x pue",
                         "no GPU with a board power on the row, or " + _NO_TARGET),
    "co2_t": Column("float", "t CO2", "emissions: energy_kwh x grid_gco2_per_kwh / 1e6",
                    "no GPU with a board power or no grid intensity on the row, or " + _NO_TARGET),
    "inference_flops": Column("float", "FLOP", "2 N D_inf", _INFEASIBLE),
    "lifetime_flops": Column("float", "FLOP", "flops + inference_flops", _INFEASIBLE),
    "epochs": Column("float", "epochs", "tokens / unique_tokens", "no unique_tokens on the row, or " + _INFEASIBLE),
    "max_params_memory": Column("float", "parameters", "gpus x GPU memory / bytes_per_param",
                                "no gpus or no GPU memory on the row"),
    "overfit_penalty": Column("float", "nats/token", "Kaplan's overfitting measure dL(N, D), Eq. 4.3", _INFEASIBLE),
    "batch": Column("float", "tokens", "critical batch B_crit (kaplan_steps laws)",
                    _INFEASIBLE + ", or a law without a steps model"),
    "steps": Column("float", "steps", "S_min = tokens / batch (kaplan_steps laws)",
                    _INFEASIBLE + ", or a law without a steps model"),
    "feasible_fraction": Column("float", "", "share of the bootstrap samples that meet every limit"),
    # resolution studies
    "method": Column("category", "", "how the frontier was found: grid search or a lookup table",
                     categories=("grid", "lookup")),
    "points_per_decade": Column("int", "points/decade", "the resolution K"),
    "grid_points": Column("int", "points", "points in the grid or lookup table"),
    **{f"{stat}_rel_error_{what}": Column("float", "", _REL_ERROR.format(stat=word, what=what))
       for what in ("params", "tokens", "loss") for stat, word in (("max", "largest"), ("median", "median"))},
    "seconds": Column("float", "s", "time taken (median of the repeats)"),
    # IsoFLOP simulations
    "trial": Column("int", "", "the trial (0-based)"),
    "exponent_params": Column("float", "", "fitted exponent a of N*(C) ~ C^a", _NO_FIT),
    "exponent_tokens": Column("float", "", "fitted exponent b of D*(C) ~ C^b", _NO_FIT),
    "true_exponent_params": Column("float", "", "the law's exponent of N*(C) over the budgets"),
    "true_exponent_tokens": Column("float", "", "the law's exponent of D*(C) over the budgets"),
    "params_at_target": Column("float", "parameters", "fitted N* extrapolated to the target budget", _NO_FIT),
    "exact_params_at_target": Column("float", "parameters", "the law's N* at the target budget"),
    "params_bias": Column("float", "", "params_at_target / exact_params_at_target - 1", _NO_FIT),
    "tokens_at_target": Column("float", "tokens", "fitted D* extrapolated to the target budget", _NO_FIT),
    "exact_tokens_at_target": Column("float", "tokens", "the law's D* at the target budget"),
    "tokens_bias": Column("float", "", "tokens_at_target / exact_tokens_at_target - 1", _NO_FIT),
    "failed_fits": Column("int", "", "IsoFLOP parabolas that opened downward (left out of the fit)"),
    # fit-isoflop per-budget tables (Hoffmann et al. 2022 Approach 2 on runs)
    "runs": Column("int", "runs", "runs at the budget"),
    "params_min": Column("float", "parameters", "smallest model size sampled at the budget"),
    "params_max": Column("float", "parameters", "largest model size sampled at the budget"),
    "params_opt": Column("float", "parameters", "N at the vertex of the budget's parabola of loss in log N",
                         "the parabola opens downward (no minimum)"),
    "params_opt_lo": Column("float", "parameters", "lower bootstrap percentile of params_opt",
                            "no bootstrap, or no resample has a minimum"),
    "params_opt_hi": Column("float", "parameters", "upper bootstrap percentile of params_opt",
                            "no bootstrap, or no resample has a minimum"),
    "tokens_opt": Column("float", "tokens", "C / (6 params_opt): the tokens of the budget's optimal size",
                         "the parabola has no minimum"),
    "tokens_opt_lo": Column("float", "tokens", "lower bootstrap percentile of tokens_opt",
                            "no bootstrap, or no resample has a minimum"),
    "tokens_opt_hi": Column("float", "tokens", "upper bootstrap percentile of tokens_opt",
                            "no bootstrap, or no resample has a minimum"),
    "loss_opt": Column("float", "nats/token", "the parabola's loss at its vertex", "the parabola opens downward"),
    "curvature": Column("float", "nats/token/decade^2", "the parabola's coefficient of (log10 N)^2 (> 0: a minimum)"),
    "convex": Column("bool", "", "whether the parabola in log N has a minimum (curvature beyond rounding)"),
    "extrapolated": Column("bool", "", "whether the minimum lies outside the sizes (or tokens) sampled"),
    "used": Column("bool", "", "whether the row is in the fitted power laws"),
    "bootstrap_ok": Column("int", "resamples", "bootstrap resamples of the budget whose parabolas have a minimum"),
    # fit-envelope per-point tables (Approach 1)
    "run": Column("category", "", "the run attaining the lowest loss at the point", "no run covers the point"),
    "runs_covering": Column("int", "runs", "runs whose checkpoints span the point's FLOPs"),
    "edge": Column("bool", "", "whether the envelope run is the smallest or largest model covering the point"),
    # fit-compare
    "estimator": Column("category", "", "the fit's estimator (scalesweep fit --estimator)"),
    "runs_fitted": Column("int", "runs", "runs the fit used (weight > 0, not held out)"),
    "objective": Column("float", "", "the estimator's objective at its optimum (each estimator on its own scale)"),
    "log_likelihood_gaussian": Column("float", "nats", "Gaussian log-likelihood of the log residuals on the fitted "
                                      "runs, sigma at its maximum (comparable across estimators)"),
    "aic": Column("float", "", "2k - 2 log_likelihood_gaussian, k = the law's parameters + sigma"),
    "log_likelihood_own": Column("float", "nats", "the estimator's own log-likelihood (huber-likelihood)",
                                 "an estimator without a likelihood of its own"),
    "heldout_rmse_log": Column("float", "", "RMSE of ln(predicted / measured loss) on the held-out runs",
                               "no --holdout-top"),
    "heldout_max_abs_rel_error": Column("float", "", "largest |predicted / measured loss - 1| on the held-out runs",
                                        "no --holdout-top"),
    "heldout_n_opt_max_abs_rel_error": Column("float", "", "largest |N_opt / N_opt of the fit on all runs - 1| at "
                                              "the held-out runs' budgets", "no --holdout-top"),
    **{f"param_{p}": Column("float", "", f"the fitted law's parameter {p}", "a family without this parameter")
       for p in ("E", "A", "B", "alpha", "beta", "N_c", "D_c", "alpha_N", "alpha_D", "R_D_star", "R_N_star", "U_D")},
}
_BAND = re.compile(r"(params|tokens|loss)_p(.+)")  # percentile bands: params_p5, loss_p97.5, ...
OVERRIDE_PREFIX = "law_"  # a scenario's law parameter override is written as the column law_NAME


def column(name: str) -> Column:
    """The registry entry of an output column; percentile bands (``params_p5``, ...) follow their quantity."""
    if name in COLUMNS:
        return COLUMNS[name]
    band = _BAND.fullmatch(name)
    if band is None:
        raise KeyError(f"{name!r} is not a column of tables.COLUMNS")
    base = COLUMNS[band[1]]
    return Column("float", base.unit, f"percentile {band[2]} of {band[1]} over the bootstrap samples",
                  "no sample meets the limits")


def input_column(name: str) -> Column:
    """The column of a scenario input: a field of ``options.FIELDS`` (its rule, unit and help), or a law
    parameter override ``law_NAME``."""
    if name.startswith(OVERRIDE_PREFIX):
        return Column("float", "", f"the law's parameter {name[len(OVERRIDE_PREFIX):]}, overridden",
                      "not overridden: the preset's value")
    f = FIELDS[name]
    default = f.get("default")
    null = ("not given: the row states its budget in another field" if name in BUDGET_FIELDS
            else f"not given (default {default:g})" if default is not None else "not given")
    return Column({"name": "category", "int": "int"}.get(f["rule"], "float"), f.get("unit") or "", f["help"], null)


# The columns every frontier and target-loss table has, in order; the others follow as the inputs allow.
RESULT_HEAD = ("flops", "params", "tokens", "loss", "tokens_per_param", "feasible", "active_constraint",
               "infeasible_reason")
# Every result column the engine produces, in output order (scenario tables hold all of them).
ENGINE_COLUMNS = (*RESULT_HEAD, "budget_flops", "budget_limited_by", "gpu_hours", "wall_days", "usd",
                  "inference_flops", "lifetime_flops", "epochs", "max_params_memory", "overfit_penalty")


# The energy columns: frontier and target-loss tables have them when energy is asked for (``optional_columns``),
# scenario tables when the spec has an energy field (``scenario_result_columns``).
ENERGY_COLUMNS = ("energy_kwh", "co2_t")


def scenario_result_columns(present) -> tuple[str, ...]:
    """The result columns of a scenario table whose spec has the fields ``present``: every engine column, and
    the energy columns where an energy field is among them (null on rows without a GPU with a board power)."""
    return (*ENGINE_COLUMNS, *ENERGY_COLUMNS) if set(ENERGY_FIELDS) & set(present) else ENGINE_COLUMNS


def optional_columns(*, budget_converted: bool, max_days: bool, gpu: bool, gpus: bool, price: bool,
                     inference: bool, unique_tokens: bool, overfit: bool, energy: bool = False,
                     co2: bool = False) -> list[str]:
    """The real-unit result columns the inputs allow: a fixed schema for a given set of options."""
    out = []
    if budget_converted or max_days:
        out.append("budget_flops")
    if max_days:
        out.append("budget_limited_by")
    if gpu:
        out.append("gpu_hours")
        if gpus:
            out.append("wall_days")
        if price:
            out.append("usd")
        if energy:
            out.append("energy_kwh")
            if co2:
                out.append("co2_t")
    if inference:
        out += ["inference_flops", "lifetime_flops"]
    if unique_tokens:
        out.append("epochs")
    if gpus and gpu:
        out.append("max_params_memory")
    if overfit:
        out.append("overfit_penalty")
    return out


# ------------------------------------------------------------------------------------------ conversion


def _materialize(v, m, dtype=np.float64):
    a = np.asarray(v, dtype=dtype)
    return a if a.shape == (m,) else np.array(np.broadcast_to(a, (m,)), dtype=dtype)


def _validity(valid: np.ndarray) -> pa.Buffer | None:
    """An Arrow validity bitmap from a boolean mask; None when every value is valid."""
    return None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))


def arrow_float(a: np.ndarray) -> pa.Array:
    """Zero-copy Arrow view of a contiguous float array, NaN as null (``pa.array`` would import pandas: +0.3 s
    per CLI run). Every NaN of a result means "not applicable" or "infeasible", so tables hold them as Arrow
    nulls, which readers count and skip."""
    a = np.ascontiguousarray(a)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), a.size, [_validity(~np.isnan(a)), pa.py_buffer(a)])


FLOAT32_MAX, FLOAT32_TINY = float(np.finfo(np.float32).max), float(np.finfo(np.float32).smallest_subnormal)


def _float32_refusal(a: np.ndarray, narrow: np.ndarray, name: str) -> None:
    """Refuse, naming the first such value, a finite value that float32 writes as infinity or a non-zero value
    it writes as zero (``narrow`` is ``a`` as float32)."""
    lost = (np.isfinite(a) & ~np.isfinite(narrow)) | ((a != 0) & (narrow == 0))
    if lost.any():
        v = float(a[lost][0])
        why = (f"beyond float32's largest, {FLOAT32_MAX:.9g}" if abs(v) > FLOAT32_MAX
               else f"below float32's smallest, {FLOAT32_TINY:.9g}")
        raise ScalesweepError(f"column {name!r}: {v!r} is {why}: write it with --dtype float64")


def arrow_float32(a: np.ndarray, name: str) -> pa.Array:
    """Float values rounded to the nearest float32 (NaN: null); a value float32 cannot hold (one it would write
    as infinity or as zero) is refused with one line naming it."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        narrow = a.astype(np.float32)
    if np.isinf(narrow).any() or (narrow == 0).any():  # only then can a value have been lost: look closer
        _float32_refusal(a, narrow, name)
    return arrow_float(narrow)


def float_values(col) -> np.ndarray:
    """A float64 Arrow array or chunked array as numpy, null as NaN (the inverse of ``arrow_float``), read from
    its buffers: ``to_numpy`` on a chunked array would import pandas (+0.2 s per CLI run)."""
    parts = []
    for chunk in (col.chunks if isinstance(col, pa.ChunkedArray) else [col]):
        bitmap, data = chunk.buffers()[:2]
        start, m = chunk.offset, len(chunk)
        values = np.frombuffer(data, dtype=np.float64, count=start + m)[start:] if m else np.empty(0)
        if bitmap is not None and chunk.null_count:
            valid = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")[start:start + m]
            values = np.where(valid.astype(bool), values, np.nan)
        parts.append(values)
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def narrow(table: pa.Table, keep=()) -> pa.Table:
    """``table`` with its float64 columns as float32 (``arrow_float32``: rounded to nearest, null stays null, a
    value float32 cannot hold refused), but for the columns in ``keep`` (what the user gave); the ``scalesweep``
    metadata records ``"dtype": "float32"``. Built from numpy buffers: pyarrow.compute would import pandas."""
    fields, arrays = [], []
    for field, col in zip(table.schema, table.columns, strict=True):
        if field.type == pa.float64() and field.name not in keep:
            col = arrow_float32(float_values(col), field.name)
            field = field.with_type(pa.float32())
        fields.append(field)
        arrays.append(col)
    md = dict(table.schema.metadata or {})
    if METADATA_KEY in md:
        md[METADATA_KEY] = json.dumps({**json.loads(md[METADATA_KEY]), "dtype": "float32"}).encode()
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=md or None))


def _whole_numbers_fit(a: np.ndarray, name: str) -> None:
    """Refuse a float column bound for int64 that holds a value beyond its range (NaN is null: it fits)."""
    if a.dtype.kind == "f":
        big = ~np.isnan(a) & ~(np.abs(a) < 2.0**63)
        if big.any():
            raise ScalesweepError(f"column {name!r}: {a[big][0]:g} is too large for a whole-number column")


def arrow_int(a: np.ndarray, name: str) -> pa.Array:
    """Arrow int64 from whole numbers (floats with NaN as null, or integers)."""
    a = np.asarray(a)
    valid = np.ones(a.shape, dtype=np.bool_)
    if a.dtype.kind == "f":
        valid = ~np.isnan(a)
        _whole_numbers_fit(a, name)
        a = np.where(valid, a, 0.0)
    a = np.ascontiguousarray(a, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), a.size, [_validity(valid), pa.py_buffer(a)])


def arrow_bool(a: np.ndarray) -> pa.Array:
    """Arrow booleans from a numpy bool array, bit-packed here (``pa.array`` would import pandas)."""
    a = np.ascontiguousarray(a, dtype=np.bool_)
    return pa.Array.from_buffers(pa.bool_(), a.size, [None, pa.py_buffer(np.packbits(a, bitorder="little"))])


def arrow_strings(values) -> pa.Array:
    """An Arrow string array from Python strings, built from buffers (``pa.array`` would import pandas)."""
    data = [str(v).encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


def dictionary(codes: np.ndarray, names) -> pa.DictionaryArray:
    """A dictionary-encoded string column; code -1 is null."""
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    valid = codes >= 0  # code -1: null
    indices = pa.Array.from_buffers(pa.int32(), codes.size, [_validity(valid), pa.py_buffer(np.where(valid, codes, 0))])
    return pa.DictionaryArray.from_arrays(indices, arrow_strings(names))


def _category(spec: Column, value, m):
    """(codes, categories) of a categorical column."""
    if spec.categories is not None:
        return _materialize(value, m, np.int32), list(spec.categories)
    codes, names = value
    return _materialize(codes, m, np.int32), list(names)


def arrow_column(name: str, spec: Column, value, m: int) -> pa.Array:
    """One column of a result (an array, a scalar shared by every row, or (codes, names) for a category
    without fixed categories) as an Arrow array of ``spec``'s type; NaN and code -1 are null."""
    if spec.type == "category":
        return dictionary(*_category(spec, value, m))
    if spec.type == "bool":
        return arrow_bool(_materialize(value, m, np.bool_))
    if spec.type == "int":
        return arrow_int(_materialize(value, m, np.asarray(value).dtype), name)
    return arrow_float(_materialize(value, m))


def to_arrow(cols: dict, m: int, metadata: dict | None = None) -> pa.Table:
    """A result (dict of columns, in order) as an Arrow table with the registry's types and field metadata."""
    specs = {name: column(name) for name in cols}
    arrays = [arrow_column(name, specs[name], value, m) for name, value in cols.items()]
    return pa.Table.from_arrays(arrays, schema=pa.schema([spec.field(name) for name, spec in specs.items()],
                                                         metadata=metadata))


def to_frame(cols: dict, m: int):
    """A result as a pandas DataFrame: categorical columns as pandas categoricals, whole-number columns as
    nullable ``Int64``; a float column keeps NaN where a table holds null (pandas reads those nulls as NaN)."""
    import pandas as pd

    out = {}
    for name, value in cols.items():
        spec = column(name)
        if spec.type == "category":
            codes, names = _category(spec, value, m)
            out[name] = pd.Categorical.from_codes(codes, categories=names)
        elif spec.type == "bool":
            out[name] = _materialize(value, m, np.bool_)
        elif spec.type == "int":
            a = _materialize(value, m, np.asarray(value).dtype)
            _whole_numbers_fit(a, name)
            out[name] = pd.array(a, dtype="Int64")  # NaN: <NA>
        else:
            out[name] = _materialize(value, m)
    # copy=False: one block per column; consolidating 1M-row columns would cost more than the solve.
    return pd.DataFrame(out, copy=False)


def frame_to_arrow(df, metadata: dict | None = None) -> pa.Table:
    """A DataFrame result (studies, comparisons, bands) as an Arrow table with the registry's types and field
    metadata, NaN as null, carrying ``metadata``."""
    table = pa.Table.from_pandas(df, preserve_index=False)  # NaN in a float column is null
    schema = pa.schema([column(name).field(name) for name in table.column_names], metadata=metadata)
    return table.cast(schema)


def append_frame(table: pa.Table, df) -> pa.Table:
    """``table`` with the columns of a DataFrame (percentile bands) appended as ``frame_to_arrow`` types them."""
    extra = frame_to_arrow(df)
    for i, f in enumerate(extra.schema):
        table = table.append_column(f, extra.column(i))
    return table


# ------------------------------------------------------------------------------------------- metadata


def metadata(command: str, **fields) -> dict[bytes, bytes]:
    """The ``scalesweep`` key-value entry of a table: JSON with the version, the command and ``fields``."""
    body = {"scalesweep_version": __version__, "command": command, **fields}
    return {METADATA_KEY: json.dumps(jsonable(body)).encode()}


def surface_metadata(law, *, form: str, grid: dict, dtype: str, rows: int, command_line: str | None) -> dict:
    return metadata("surface", law=law.to_dict(), form=form, grid=grid, dtype=dtype, rows=rows,
                    command_line=command_line)


def frontier_metadata(laws, *, command: str, constraints: dict, hardware: dict, workload: dict, grid: dict, rows: int,
                      command_line: str | None, model: dict | None = None) -> dict:
    """Frontier and target-loss tables: the law (or laws), limits, hardware, inference and the budgets; ``model``
    (the shape and FLOPs-per-token options) where given."""
    laws = list(laws)
    law_fields = {"law": laws[0].to_dict()} if len(laws) == 1 else {"laws": [law.to_dict() for law in laws]}
    extra = {"model": model} if model else {}
    return metadata(command, **law_fields, constraints=constraints, hardware=hardware, workload=workload, grid=grid,
                    rows=rows, command_line=command_line, **extra)


def read_metadata(path) -> dict:
    """The scalesweep JSON metadata of a Parquet file written by this tool (a local path or a URI)."""
    import pyarrow.parquet as pq

    from .storage import opened

    with opened(path) as src:
        md = pq.read_schema(src).metadata or {}
    if METADATA_KEY not in md:
        raise ScalesweepError(f"{path}: no scalesweep metadata (not written by scalesweep?)")
    return json.loads(md[METADATA_KEY])
