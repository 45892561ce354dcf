"""Output kinds: the column registry, and for each kind of result the one function that builds its Arrow
schema and metadata. The single-file writer, the partitioned writer and the Dask tasks all call these, so a
table means the same thing however it was written.

A result is a dict of columns (``name -> numpy array``, or a scalar shared by every row); categorical
columns are given as codes. ``to_arrow`` and ``to_frame`` turn it into an Arrow table or a pandas DataFrame
with the types of ``COLUMNS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ._version import __version__
from .codes import ACTIVE_NAMES, BUDGET_LIMITS
from .errors import ScalesweepError
from .output import jsonable

METADATA_KEY = b"scalesweep"


@dataclass(frozen=True)
class Column:
    type: str  # "float", "bool" or "category"
    unit: str
    description: str
    null: str = ""  # what a null (or NaN) value means
    categories: tuple[str, ...] | None = None  # fixed categories (None: given with the values)


_INFEASIBLE = "NaN on infeasible rows"
COLUMNS: dict[str, Column] = {
    "target_loss": Column("float", "nats/token", "the loss asked for (target-loss rows)"),
    "flops": Column("float", "FLOP", "training compute spent (6ND)", _INFEASIBLE + " of target-loss questions"),
    "params": Column("float", "parameters", "compute-optimal model size N", _INFEASIBLE),
    "tokens": Column("float", "tokens", "compute-optimal training tokens D", _INFEASIBLE),
    "loss": Column("float", "nats/token", "the law's loss at (N, D)", _INFEASIBLE + "; NaN for allocation rules "
                   "without a loss law"),
    "tokens_per_param": Column("float", "tokens/parameter", "D/N", _INFEASIBLE),
    "feasible": Column("bool", "", "whether every limit can be met"),
    "active_constraint": Column("category", "", "the limit the optimum sits on (none: unconstrained)",
                                categories=ACTIVE_NAMES),
    "infeasible_reason": Column("category", "", "why a row is infeasible: the conflicting limits joined by '+', "
                                "max_days, irreducible_loss, unsupported_family, no_allocation, budget or undefined_loss",
                                "null on feasible rows"),
    "budget_flops": Column("float", "FLOP", "the budget before a max_days cap"),
    "budget_limited_by": Column("category", "", "budget, or max_days when the time limit cut it",
                                categories=BUDGET_LIMITS),
    "gpu_hours": Column("float", "GPU-hours", "flops / (peak x MFU x 3600)", "NaN without a GPU"),
    "wall_days": Column("float", "days", "gpu_hours / (24 x gpus)", "NaN without gpus"),
    "usd": Column("float", "USD", "gpu_hours x usd_per_gpu_hour", "NaN without a price"),
    "inference_flops": Column("float", "FLOP", "2 N D_inf", _INFEASIBLE),
    "lifetime_flops": Column("float", "FLOP", "flops + inference_flops", _INFEASIBLE),
    "epochs": Column("float", "epochs", "tokens / unique_tokens", _INFEASIBLE),
    "max_params_memory": Column("float", "parameters", "gpus x GPU memory / bytes_per_param", "NaN without gpus"),
    "overfit_penalty": Column("float", "nats/token", "Kaplan's overfitting measure dL(N, D), Eq. 4.3",
                              _INFEASIBLE),
    "batch": Column("float", "tokens", "critical batch B_crit (kaplan_steps laws)", _INFEASIBLE),
    "steps": Column("float", "steps", "S_min = tokens / batch (kaplan_steps laws)", _INFEASIBLE),
    "law": Column("category", "", "the law of the row"),
}
# The columns every frontier and target-loss table has, in order; the others follow as the inputs allow.
RESULT_HEAD = ("flops", "params", "tokens", "loss", "tokens_per_param", "feasible", "active_constraint",
               "infeasible_reason")
# Every result column the engine produces, in output order (scenario tables hold all of them).
ENGINE_COLUMNS = (*RESULT_HEAD, "budget_flops", "budget_limited_by", "gpu_hours", "wall_days", "usd",
                  "inference_flops", "lifetime_flops", "epochs", "max_params_memory", "overfit_penalty")


def optional_columns(*, budget_converted: bool, max_days: bool, gpu: bool, gpus: bool, price: bool,
                     inference: bool, unique_tokens: bool, overfit: bool) -> list[str]:
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


def arrow_float(a: np.ndarray) -> pa.Array:
    """Zero-copy Arrow view of a contiguous float array (``pa.array`` would import pandas: +0.3 s per CLI run)."""
    a = np.ascontiguousarray(a)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), a.size, [None, pa.py_buffer(a)])


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
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    indices = pa.Array.from_buffers(pa.int32(), codes.size, [bitmap, pa.py_buffer(np.where(valid, codes, 0))])
    return pa.DictionaryArray.from_arrays(indices, arrow_strings(names))


def _category(name, value, m):
    """(codes, categories) of a categorical result column."""
    spec = COLUMNS[name]
    if spec.categories is not None:
        return _materialize(value, m, np.int32), list(spec.categories)
    codes, names = value
    return _materialize(codes, m, np.int32), list(names)


def to_arrow(cols: dict, m: int, metadata: dict | None = None) -> pa.Table:
    """A result (dict of columns, in order) as an Arrow table with the registry's types."""
    arrays, fields = [], []
    for name, value in cols.items():
        kind = COLUMNS[name].type
        if kind == "category":
            codes, names = _category(name, value, m)
            arr = dictionary(codes, names)
        elif kind == "bool":
            arr = arrow_bool(_materialize(value, m, np.bool_))
        else:
            arr = arrow_float(_materialize(value, m))
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def to_frame(cols: dict, m: int):
    """A result as a pandas DataFrame (categorical columns as pandas categoricals, null -> NaN)."""
    import pandas as pd

    out = {}
    for name, value in cols.items():
        kind = COLUMNS[name].type
        if kind == "category":
            codes, names = _category(name, value, m)
            out[name] = pd.Categorical.from_codes(codes, categories=names)
        elif kind == "bool":
            out[name] = _materialize(value, m, np.bool_)
        else:
            out[name] = _materialize(value, m)
    # copy=False: one block per column; consolidating 1M-row columns would cost more than the solve.
    return pd.DataFrame(out, copy=False)


def frame_to_arrow(df, metadata: dict | None = None) -> pa.Table:
    """A DataFrame result (studies, lookups, comparisons) as an Arrow table carrying ``metadata``."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata(metadata)


# ------------------------------------------------------------------------------------------- metadata


def metadata(command: str, **fields) -> dict[bytes, bytes]:
    """The ``scalesweep`` key-value entry of a table: JSON with the version, the command and ``fields``."""
    body = {"scalesweep_version": __version__, "command": command, **fields}
    return {METADATA_KEY: json.dumps(jsonable(body)).encode()}


def surface_metadata(law, *, form: str, grid: dict, dtype: str, rows: int, command_line: str | None) -> dict:
    return metadata("surface", law=law.to_dict(), form=form, grid=grid, dtype=dtype, rows=rows,
                    command_line=command_line)


def frontier_metadata(laws, *, command: str, constraints: dict, hardware: dict, workload: dict, grid: dict, rows: int,
                      command_line: str | None) -> dict:
    """Frontier and target-loss tables: the law (or laws), limits, hardware, inference and the budgets."""
    laws = list(laws)
    law_fields = {"law": laws[0].to_dict()} if len(laws) == 1 else {"laws": [law.to_dict() for law in laws]}
    return metadata(command, **law_fields, constraints=constraints, hardware=hardware, workload=workload, grid=grid,
                    rows=rows, command_line=command_line)


def read_metadata(path) -> dict:
    """The scalesweep JSON metadata of a Parquet file written by this tool."""
    import pyarrow.parquet as pq

    md = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in md:
        raise ScalesweepError(f"{path}: no scalesweep metadata (not written by scalesweep?)")
    return json.loads(md[METADATA_KEY])
