"""Python API: what the CLI calls. Functions take laws, arrays and keyword constraints and return numpy
arrays or pandas DataFrames; the ``write_*`` functions stream results to Parquet.

pandas is imported inside the functions that return DataFrames: the surface path never needs it, and
importing it costs ~0.4 s of every CLI start.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa

from . import engine
from .constraints import ACTIVE_NAMES, CONSTRAINT_NAMES, Constraints
from .errors import ScalesweepError
from .grid import check_positive_array, row_chunks
from .io import atomic_parquet_writer, make_metadata, write_table
from .kernels.frontier import SOLVER_AUTO, SOLVER_NEWTON, SOLVER_NEWTON_MID, frontier_kernel, percentile_rows
from .kernels.loss import loss_array, loss_points
from .kernels.surface import surface_grid
from .laws import DEFAULT_LAW, Law, get_law
from .units import BUDGET_UNITS

FLOPS_PER_PARAM_TOKEN = engine.FLOPS_PER_PARAM_TOKEN
SOLVERS = {"auto": SOLVER_AUTO, "newton": SOLVER_NEWTON, "newton-midpoint": SOLVER_NEWTON_MID}
CHUNK_POINTS = 1 << 20  # points per streamed chunk (= Parquet row group): 8 MiB per float64 column
# The axes repeat (4096 distinct values in 16.8M rows), and on log-spaced grids so does flops = 6*N*D
# (N_i*D_j depends on i + j when both axes have the same spacing): dictionary + RLE shrinks a 4096^2
# surface from 281 to 187 MiB. pyarrow falls back to plain encoding by itself where values are unique.
SURFACE_DICTIONARY_COLUMNS = ["params", "tokens", "flops"]
FRONTIER_COLUMNS = ["flops", "params", "tokens", "loss", "tokens_per_param", "feasible", "active_constraint"]


def _law(law) -> Law:
    return get_law(DEFAULT_LAW if law is None else law)


def set_threads(n: int | None) -> int:
    """Use n numba threads (None: all). Results do not depend on it."""
    if n is None:
        n = numba.config.NUMBA_NUM_THREADS
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ScalesweepError(f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {n!r}")
    numba.set_num_threads(n)
    return n


# ---------------------------------------------------------------------------------------------- surface


def surface(law, params, tokens, *, out=None, dtype=np.float64) -> np.ndarray:
    """Loss on the grid params x tokens: a 2-D array of shape (len(params), len(tokens)).

    ``out`` may be a preallocated C-contiguous float64/float32 array of that shape; it is filled in place
    and returned (no other allocation proportional to the grid is made).
    """
    law = _law(law)
    n = check_positive_array(params, "params")
    d = check_positive_array(tokens, "tokens")
    if out is None:
        out = np.empty((n.size, d.size), dtype=dtype)
    elif out.shape != (n.size, d.size) or out.dtype not in (np.float64, np.float32) or not out.flags.c_contiguous:
        raise ScalesweepError(f"out must be a C-contiguous float64/float32 array of shape {(n.size, d.size)}")
    surface_grid(law.family_id, law.vector, n, d, out)
    return out


def isoflop(law, flops, params, *, k: float = FLOPS_PER_PARAM_TOKEN):
    """IsoFLOP slices (Chinchilla Approach 2): for each budget, each model size, tokens = C/(k*N).

    Returns columns flops, params, tokens, loss; rows budget-major.
    """
    import pandas as pd

    law = _law(law)
    c = check_positive_array(flops, "flops")
    n = check_positive_array(params, "params")
    cc = np.repeat(c, n.size)
    nn = np.tile(n, c.size)
    dd = cc / (k * nn)
    return pd.DataFrame({"flops": cc, "params": nn, "tokens": dd, "loss": loss_array(law.family_id, law.vector, nn, dd)})


def _surface_chunks(law: Law, n_axis, d_axis=None, c_axis=None, dtype=np.float64, chunk_points=CHUNK_POINTS):
    """Yield (params, tokens, flops, loss) column arrays chunk by chunk, reusing buffers.

    Grid form (d_axis given): params-major rows over the params x tokens grid.
    IsoFLOP form (c_axis given): budget-major rows over flops x params, tokens = C/(6N).
    The yielded arrays are overwritten by the next chunk: consume them before asking for more.
    """
    fam, p = law.family_id, law.vector
    k = FLOPS_PER_PARAM_TOKEN
    if d_axis is not None:
        outer, inner = n_axis, d_axis
    else:
        outer, inner = c_axis, n_axis
    rows_max = max(1, chunk_points // inner.size)
    rows_max = min(rows_max, outer.size)
    size = rows_max * inner.size
    inner_tiled = np.tile(inner, rows_max)
    outer_col = np.empty(size)
    third = np.empty(size)
    loss = np.empty(size, dtype=dtype)
    for sl in row_chunks(outer.size, inner.size, chunk_points):
        m = (sl.stop - sl.start) * inner.size
        oc, th, lo, it = outer_col[:m], third[:m], loss[:m], inner_tiled[:m]
        oc.reshape(-1, inner.size)[:] = outer[sl, None]
        if d_axis is not None:  # params = oc, tokens = it, flops = 6*params*tokens
            surface_grid(fam, p, outer[sl], inner, lo.reshape(-1, inner.size))
            np.multiply(oc, k, out=th)
            np.multiply(th, it, out=th)
            yield oc, it, th, lo
        else:  # flops = oc, params = it, tokens = C/(6N)
            np.multiply(it, k, out=th)
            np.divide(oc, th, out=th)
            loss_points(fam, p, it, th, lo)
            yield it, th, oc, lo


def _arrow(a: np.ndarray) -> pa.Array:
    """Zero-copy Arrow view of a contiguous float array (``pa.array`` would import pandas: +0.5 s per CLI run)."""
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), a.size, [None, pa.py_buffer(a)])


def write_surface(path, law, params, tokens=None, flops=None, *, dtype=np.float64, chunk_points=CHUNK_POINTS,
                  grid: dict | None = None, command_line: str | None = None, progress=None) -> dict:
    """Stream the loss surface to Parquet (columns params, tokens, flops, loss) in bounded memory.

    Give ``tokens`` for the params x tokens grid, or ``flops`` for IsoFLOP slices (tokens derived).
    Returns a summary (rows, seconds). ``progress(done_rows, total_rows)`` is called after each chunk.
    """
    law = _law(law)
    if (tokens is None) == (flops is None):
        raise ScalesweepError("give a tokens range or a flops range (IsoFLOP form), not both")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ScalesweepError(f"--dtype must be float64 or float32, got {dtype}")
    n = check_positive_array(params, "params")
    d = check_positive_array(tokens, "tokens") if tokens is not None else None
    c = check_positive_array(flops, "flops") if flops is not None else None
    total = n.size * (d.size if d is not None else c.size)
    schema = pa.schema([("params", pa.float64()), ("tokens", pa.float64()), ("flops", pa.float64()),
                        ("loss", pa.from_numpy_dtype(dtype))])
    meta = make_metadata(
        command="surface", law=law.to_dict(), form="grid" if d is not None else "isoflop",
        grid=grid or {}, dtype=str(dtype), rows=total, command_line=command_line,
    )
    t0 = time.perf_counter()
    done = 0
    with atomic_parquet_writer(path, schema, meta, use_dictionary=SURFACE_DICTIONARY_COLUMNS) as w:
        for cols in _surface_chunks(law, n, d, c, dtype, chunk_points):
            w.write_batch(pa.RecordBatch.from_arrays([_arrow(a) for a in cols], schema=schema),
                          row_group_size=cols[0].size)
            done += cols[0].size
            if progress is not None:
                progress(done, total)
    return {"rows": total, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------- frontier


HARDWARE_OPTIONS = ("gpu", "peak_tflops", "gpu_memory_gb", "mfu", "gpus", "usd_per_gpu_hour", "bytes_per_param",
                    "max_days", "unique_tokens", "inference_tokens")


def law_arrays(laws) -> tuple[np.ndarray, np.ndarray]:
    """(family ids, parameter matrix padded with NaN) for a list of laws: what the batch kernels take."""
    width = max(law.vector.size for law in laws)
    P = np.full((len(laws), width), np.nan)
    for i, law in enumerate(laws):
        P[i, : law.vector.size] = law.vector
    return np.array([law.family_id for law in laws], dtype=np.int64), P


def _scalar_inputs(options: dict) -> tuple[dict, dict]:
    """Validate shared (scalar) inputs once; resolve the GPU. Returns (engine inputs, what was given).

    ``options`` may hold other names too (the caller's ``locals()``): only the hardware options and the
    frontier constraints are read.
    """
    from .units import get_hardware

    values = {k: options.get(k) for k in HARDWARE_OPTIONS}
    constraints = {k: options.get(k) for k in (*CONSTRAINT_NAMES, "max_overfit")}
    inputs = {}
    for name, v in values.items():
        if name == "gpu" or v is None:
            continue
        inputs[name] = engine.check_scalar(name, v)
    hw = get_hardware(values.get("gpu"), peak_tflops=inputs.get("peak_tflops"),
                      gpu_memory_gb=inputs.get("gpu_memory_gb"))
    if hw is not None:
        inputs["peak_tflops"] = hw.peak_tflops
        inputs["gpu_memory_gb"] = hw.memory_gb
    cons = Constraints(**constraints)
    inputs.update(cons.as_dict())
    given = {k: True for k in inputs}
    if hw is not None:
        given["gpu"] = True
    for k, v in engine.DEFAULTS.items():
        if k != "law":
            inputs.setdefault(k, v)
    return inputs, given


def _results_frame(res: dict, first: dict, optional: list[str]):
    import pandas as pd

    m = res["params"].size
    cols = {**first, **{k: res[k] for k in ("params", "tokens", "loss", "tokens_per_param", "feasible")}}
    cols["active_constraint"] = pd.Categorical.from_codes(res["active_constraint"], categories=list(ACTIVE_NAMES))
    for name in optional:
        if name == "budget_limited_by":
            cols[name] = pd.Categorical.from_codes(engine.materialize(res[name], m, np.int8),
                                                   categories=list(engine.BUDGET_LIMITS))
        else:
            cols[name] = engine.materialize(res[name], m)
    # copy=False: one block per column; consolidating 1M-row columns would cost more than the solve.
    return pd.DataFrame(cols, copy=False)


def _optional_columns(given: dict, budget_converted: bool) -> list[str]:
    """Real-unit result columns that the inputs allow (a fixed schema for a given set of options)."""
    peak = given.get("gpu") or given.get("peak_tflops")
    out = []
    if budget_converted or given.get("max_days"):
        out.append("budget_flops")
    if given.get("max_days"):
        out.append("budget_limited_by")
    if peak:
        out.append("gpu_hours")
        if given.get("gpus"):
            out.append("wall_days")
        if given.get("usd_per_gpu_hour"):
            out.append("usd")
    if given.get("inference_tokens"):
        out += ["inference_flops", "lifetime_flops"]
    if given.get("unique_tokens"):
        out.append("epochs")
    if given.get("gpus") and peak:
        out.append("max_params_memory")
    if given.get("max_overfit") or given.get("overfit_penalty"):
        out.append("overfit_penalty")
    return out


def frontier(law=None, flops=None, *, unit: str = "flops", solver: str = "auto", min_params=None,
             max_params=None, min_tokens=None, max_tokens=None, min_tokens_per_param=None,
             max_tokens_per_param=None, max_overfit=None, overfit=False, gpu=None, peak_tflops=None, gpu_memory_gb=None, mfu=None, gpus=None,
             usd_per_gpu_hour=None, bytes_per_param=None, max_days=None, unique_tokens=None,
             inference_tokens=None, loss_law=None):
    """Compute-optimal allocation per budget under constraints (C = 6*N*D).

    ``flops`` are the budgets, in ``unit``: ``"flops"``, ``"pf_days"``, ``"gpu_hours"`` or ``"usd"`` (the last
    two need a GPU: ``gpu="H100-SXM"`` or ``peak_tflops``; dollars also ``usd_per_gpu_hour``).

    Returns columns flops, params, tokens, loss, tokens_per_param, feasible, active_constraint, and the
    real-unit columns the inputs allow: gpu_hours (given a GPU; MFU default 0.4), wall_days (given gpus),
    usd (given usd_per_gpu_hour), budget_flops and budget_limited_by (given max_days: the budget is capped
    at what ``gpus`` deliver in that time), epochs (given unique_tokens, which also caps tokens), and
    max_params_memory (given gpus: ``gpus x memory / bytes_per_param`` caps params, active constraint
    ``memory``). Rows whose constraints cannot be met have ``feasible=False`` and NaN results.

    ``solver``: ``"auto"`` (closed form where the family has an exact one, else Newton), ``"newton"`` (the
    general safeguarded Newton solver, from the family's initial guess) or ``"newton-midpoint"`` (Newton from
    the middle of the feasible interval: no prior knowledge of the optimum).

    ``max_overfit`` limits Kaplan's overfitting measure dL(N, D) (Eq. 4.3, Table 2 constants; 0.02 is Eq. 4.4's
    D >~ 5e3 N^0.74) and adds the ``overfit_penalty`` column, which ``overfit=True`` adds on its own.

    An ``allocation_rule`` law (deepseek2024, llama3_2024, ...) gives params and tokens by its formula; its
    loss is NaN unless ``loss_law`` names a law to evaluate it with. A rule's row that breaks a limit is
    infeasible. A ``kaplan_steps`` law adds ``batch`` and ``steps`` columns.
    """
    law = _law(law)
    if flops is None:
        raise ScalesweepError("frontier needs budgets: flops=[...]")
    if law.family == "kaplan_single" and law.params["variable"] < 2:
        raise ScalesweepError(f"{law.name} is a law of {'N' if law.params['variable'] == 0 else 'D'} alone: it has "
                              "no compute-optimal frontier (use it with `surface`)")
    if loss_law is not None:
        loss_law = _law(loss_law)
        if law.family != "allocation_rule":
            raise ScalesweepError(f"--loss-law applies to allocation rules; {law.name} has its own loss")
        if loss_law.family == "allocation_rule":
            raise ScalesweepError(f"--loss-law must be a loss law, not the allocation rule {loss_law.name}")
    c = check_positive_array(flops, "flops" if unit == "flops" else f"budgets ({unit})")
    if solver not in SOLVERS:
        raise ScalesweepError(f"unknown solver {solver!r} (one of: {', '.join(SOLVERS)})")
    if unit not in BUDGET_UNITS:
        raise ScalesweepError(f"unknown budget unit {unit!r} (one of: {', '.join(BUDGET_UNITS)})")
    inputs, given = _scalar_inputs({k: v for k, v in locals().items() if k != "loss_law"})
    if overfit:
        given["overfit_penalty"] = True
    inputs[unit] = c
    given[unit] = True
    engine.check_rules(given, c.size, lambda i: "frontier")
    fams, P = law_arrays([law])
    optional = _optional_columns(given, unit != "flops")
    res = engine.solve(inputs, c.size, fams, P, np.zeros(1, dtype=np.int64), solver=SOLVERS[solver],
                       overfit="overfit_penalty" in optional)
    spent = res["flops"]
    first = {"flops": spent.copy() if np.shares_memory(spent, c) else spent}  # never alias the caller's array
    df = _results_frame(res, first, optional)
    if loss_law is not None:
        df["loss"] = np.where(df["feasible"], loss_law.loss(df["params"].to_numpy(), df["tokens"].to_numpy()), np.nan)
    if law.family == "kaplan_steps":  # Kaplan's training-steps view: the batch and steps behind the tokens
        from .kernels.loss import ks_batch_steps

        df["batch"], df["steps"] = ks_batch_steps(law.vector, df["loss"].to_numpy(), df["tokens"].to_numpy())
    return df


def target_loss(law=None, loss=None, *, inference_tokens=None, min_params=None, max_params=None, min_tokens=None,
                max_tokens=None, min_tokens_per_param=None, max_tokens_per_param=None, max_overfit=None, gpu=None,
                peak_tflops=None,
                gpu_memory_gb=None, mfu=None, gpus=None, usd_per_gpu_hour=None, bytes_per_param=None,
                max_days=None, unique_tokens=None):
    """The least compute that reaches each target loss (the inverse of the frontier).

    With ``inference_tokens`` (lifetime inference demand D_inf), minimises lifetime FLOPs
    6*N*D + 2*N*D_inf instead (Sardana et al. 2024): a smaller model trained on more tokens. Constraints
    and hardware options are those of :func:`frontier`. Returns columns target_loss, flops (training),
    params, tokens, loss, tokens_per_param, feasible, active_constraint, and the real-unit columns the
    inputs allow. Targets at or below the law's irreducible loss, or out of reach under the constraints,
    come back with ``feasible=False`` and NaN results; if the constraints alone force a model better than
    the target (e.g. a large ``min_params`` and ``min_tokens``), the row reports that cheapest allowed
    point and its lower loss.
    """
    law = _law(law)
    if loss is None:
        raise ScalesweepError("target_loss needs targets: loss=[...]")
    t = check_positive_array(loss, "target loss")
    inputs, given = _scalar_inputs(locals())
    inputs["target_loss"] = t
    given["target_loss"] = True
    engine.check_rules(given, t.size, lambda i: "target-loss")
    fams, P = law_arrays([law])
    res = engine.solve(inputs, t.size, fams, P, np.zeros(1, dtype=np.int64), overfit=False)
    optional = [c for c in _optional_columns(given, False) if c not in ("budget_flops", "budget_limited_by")]
    if given.get("inference_tokens") and "inference_flops" not in optional:
        optional += ["inference_flops", "lifetime_flops"]
    return _results_frame(res, {"target_loss": t.copy(), "flops": res["flops"]}, optional)


def write_frontier(path, df, law, constraints: dict, *, grid: dict | None = None,
                   command_line: str | None = None, command: str = "frontier", **extra) -> None:
    """Write a frontier (or target-loss) DataFrame to Parquet atomically, with metadata."""
    law = _law(law)
    meta = make_metadata(command=command, law=law.to_dict(), constraints=constraints, grid=grid or {},
                         rows=len(df), command_line=command_line, **extra)
    write_table(path, pa.Table.from_pandas(df, preserve_index=False), meta)


def read_flops_file(path, column: str | None = None) -> np.ndarray:
    """Budgets from a CSV or Parquet file: the named column, the 'flops' column, or the only column."""
    import pandas as pd

    from .io import read_table_file

    path = Path(path)
    df = read_table_file(path, "flops file")
    if column is None:
        if "flops" in df.columns:
            column = "flops"
        elif len(df.columns) == 1:
            column = df.columns[0]
        else:
            raise ScalesweepError(
                f"flops file {str(path)!r} has no 'flops' column; name one with --flops-column "
                f"(columns: {', '.join(map(repr, map(str, df.columns)))})")
    if column not in df.columns:
        raise ScalesweepError(f"flops file {str(path)!r} has no column {column!r}")
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raw = df[column].iloc[i]
        shown = repr(raw) if isinstance(raw, str) else str(float(raw))
        raise ScalesweepError(f"flops file {str(path)!r}, row {i + 1}: {shown} is not a finite budget > 0")
    if values.size == 0:
        raise ScalesweepError(f"flops file {str(path)!r} has no rows")
    return values


def command_line() -> str:
    return " ".join(["scalesweep", *sys.argv[1:]])


BANDS_CHUNK_ROWS = 1 << 22  # (sample, budget) pairs solved per pass: bounds the memory of a band sweep


def frontier_bands(samples, family: str, flops, percentiles, *, solver: str = "auto", chunk_rows=BANDS_CHUNK_ROWS,
                   **constraints):
    """Percentile bands of the frontier over parameter samples (e.g. a fit's bootstrap).

    ``samples`` is (B, K) in the family's parameter order. Every sample's frontier is solved at every budget
    (one compiled pass per chunk of budgets, B x chunk rows), then each budget's params, tokens and loss are
    summarised by the percentiles: columns ``params_p5``, ``tokens_p50``, ... Rows where some samples cannot
    meet the constraints use the feasible ones; ``feasible_fraction`` says how many.
    """
    import pandas as pd

    from .laws import FAMILIES

    c = check_positive_array(flops, "flops")
    qs = [float(q) for q in percentiles]
    if not qs or any(not (0.0 <= q <= 100.0) for q in qs):
        raise ScalesweepError(f"--bands: percentiles must lie in [0, 100], got {percentiles!r}")
    if solver not in SOLVERS:
        raise ScalesweepError(f"unknown solver {solver!r} (one of: {', '.join(SOLVERS)})")
    samples = np.ascontiguousarray(samples, dtype=np.float64)
    b = samples.shape[0]
    fams = np.full(b, FAMILIES[family].id, dtype=np.int64)
    raw, lb = Constraints(**constraints).bounds()
    per = max(1, chunk_rows // b)
    cols = {f"{what}_p{q:g}": np.empty(c.size) for what in ("params", "tokens", "loss") for q in qs}
    frac = np.empty(c.size)
    for start in range(0, c.size, per):
        sl = slice(start, min(c.size, start + per))
        nb = sl.stop - sl.start
        law_idx = np.tile(np.arange(b, dtype=np.int64), nb)  # budget-major: each budget's samples contiguous
        fl = np.repeat(c[sl], b)
        m = fl.size
        n, d, loss = np.empty(m), np.empty(m), np.empty(m)
        feas, active = np.empty(m, dtype=np.bool_), np.empty(m, dtype=np.int8)
        frontier_kernel(fams, samples, law_idx, fl, FLOPS_PER_PARAM_TOKEN, lb, raw, SOLVERS[solver],
                        n, d, loss, feas, active)
        frac[sl] = feas.reshape(nb, b).mean(axis=1)
        vals = np.empty((nb, len(qs)))
        for what, arr in (("params", n), ("tokens", d), ("loss", loss)):
            percentile_rows(arr.reshape(nb, b), np.array(sorted(qs)), vals)  # infeasible (NaN) samples left out
            for k, q in enumerate(sorted(qs)):
                cols[f"{what}_p{q:g}"][sl] = vals[:, k]
    return pd.DataFrame({"flops": c.copy(), **cols, "feasible_fraction": frac}, copy=False)


def compare(flops, laws=None):
    """What each law recommends at each budget, side by side: one row per (law, budget) with family,
    params, tokens, tokens_per_param and loss (NaN for allocation rules, which have none).

    ``laws``: preset names or Laws (default: every preset). Conventions differ between presets (Kaplan counts
    non-embedding parameters, and its kaplan2020-steps / kaplan2020-table6 budgets are C_min): see
    ``scalesweep laws``.
    """
    import pandas as pd

    from .laws import PRESETS

    c = check_positive_array(flops, "flops")
    chosen = [get_law(x) for x in (list(PRESETS) if laws is None else laws)]
    if laws is None:  # laws of N or D alone have no answer at a budget
        chosen = [x for x in chosen if not (x.family == "kaplan_single" and x.params["variable"] < 2)]
    if not chosen:
        raise ScalesweepError("--laws: no laws given")
    frames = []
    for law in chosen:
        df = frontier(law, c)
        frames.append(pd.DataFrame({"law": law.name, "family": law.family, "flops": c.copy(),
                                    "params": df["params"], "tokens": df["tokens"],
                                    "tokens_per_param": df["tokens_per_param"], "loss": df["loss"]}))
    out = pd.concat(frames, ignore_index=True)
    out["law"] = out["law"].astype("category")
    out["family"] = out["family"].astype("category")
    return out
