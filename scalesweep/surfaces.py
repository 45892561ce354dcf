"""Loss surfaces streamed in chunks: the schema, metadata and record batches that the single-file writer
(``api.write_surface``) and the dataset parts (``dataset``) both write.

Grid form (tokens given): params-major rows over the params x tokens grid, flops = 6*params*tokens.
IsoFLOP form (flops given): budget-major rows over flops x params, tokens = C/(6N).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from .codes import CHINCHILLA, FLOPS_PER_PARAM_TOKEN, KAPLAN
from .errors import ScalesweepError
from .grid import row_chunks
from .output import table_writer
from .pipeline import overlapped
from .tables import COLUMNS, arrow_float, surface_metadata
from .validate import positive_array

CHUNK_POINTS = 1 << 20  # points per streamed chunk (= Parquet row group): 8 MiB per float64 column
# The axes repeat (4096 distinct values in 16.8M rows), and on log-spaced grids so does flops = 6*N*D
# (N_i*D_j depends on i + j when both axes have the same spacing): dictionary + RLE shrinks a 4096^2
# surface from 281 to 187 MiB. pyarrow falls back to plain encoding by itself where values are unique.
DICTIONARY_COLUMNS = ["params", "tokens", "flops"]


def schema(dtype) -> pa.Schema:
    """params, tokens, flops (float64) and loss (``dtype``), described by the column registry."""
    return pa.schema([COLUMNS[name].field(name) for name in ("params", "tokens", "flops")]
                     + [COLUMNS["loss"].field("loss", pa.from_numpy_dtype(np.dtype(dtype)))])


BLOCK_POINTS = 1 << 16  # points per block of the threaded power (512 KiB of float64: stays in L2)


def kernel_threads() -> int:
    """The threads numba's kernels use, without loading numba where nothing has (a streamed surface may need
    none of its kernels): then numba's own default, ``NUMBA_NUM_THREADS`` or the CPUs this process may use."""
    numba = sys.modules.get("numba")
    if numba is not None:
        return int(numba.get_num_threads())
    value = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def grid_loss(law, n_axis: np.ndarray, d_axis: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[i, j] = L(n_axis[i], d_axis[j])`` (``out`` C-contiguous, float64 or float32).

    Kaplan's L(N, D) = ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D costs one power per point. numpy's power
    ufunc is vectorised (AVX-512 where the CPU has it) while compiled code calls the scalar ``pow``, so a
    float64 Kaplan grid is computed as numpy's own power over blocks of ``BLOCK_POINTS`` in as many threads
    as numba uses (numpy releases the GIL): the values numpy broadcasting gives, bit for bit, on any thread
    count. Every other case runs the compiled kernel (the chinchilla grid is one add per point)."""
    if law.family_id != KAPLAN or out.dtype != np.float64 or out.size < 2 * BLOCK_POINTS:
        from .kernels.surface import surface_grid

        surface_grid(law.family_id, law.vector, n_axis, d_axis, out)
        return out
    from concurrent.futures import ThreadPoolExecutor

    n_c, d_c, alpha_n, alpha_d = (float(v) for v in law.vector[:4])
    a = np.power(n_c / n_axis, alpha_n / alpha_d)
    b = d_c / d_axis
    nd = d_axis.size
    if nd >= BLOCK_POINTS:  # long rows: blocks of columns within each row
        tiles = [(i, i + 1, j, min(nd, j + BLOCK_POINTS)) for i in range(n_axis.size) for j in range(0, nd, BLOCK_POINTS)]
    else:
        rows = BLOCK_POINTS // nd
        tiles = [(i, min(n_axis.size, i + rows), 0, nd) for i in range(0, n_axis.size, rows)]

    def tile(t):
        i0, i1, j0, j1 = t
        block = out[i0:i1, j0:j1]
        np.add(a[i0:i1, None], b[None, j0:j1], out=block)
        np.power(block, alpha_d, out=block)

    threads = kernel_threads()
    if threads == 1:
        for t in tiles:
            tile(t)
    else:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(tile, tiles):
                pass
    return out


def require_loss(law) -> None:
    """Refuse, before anything is computed or written, a law whose family has no loss of its own (an
    allocation rule): its surface would be NaN everywhere."""
    if not law.spec.has_loss:
        raise ScalesweepError(f"surface does not support {law.name} (family {law.family}): it has no loss of its "
                              "own, so there is no loss surface")


def metadata(law, n, d=None, c=None, *, dtype, grid: dict | None, command_line: str | None) -> dict:
    require_loss(law)  # every writer asks for the metadata before its first row
    rows = n.size * (d.size if d is not None else c.size)
    return surface_metadata(law, form="grid" if d is not None else "isoflop", grid=grid or {}, dtype=str(np.dtype(dtype)),
                            rows=rows, command_line=command_line)


class _ChinchillaRows:
    """Chinchilla's separable grid, L[i, j] = (E + A/N_i^alpha) + B/D_j^beta, for streamed chunks without the
    compiled kernel: the two axis terms are computed once with Python's float power (the C library's ``pow``,
    the function the kernel calls), and each chunk is one numpy add of a row term and a column term (a float32
    output is the float64 sum rounded, as the kernel stores it). The values equal ``surface_grid``'s bit for bit.
    A streamed surface is bounded by its encoding, so one thread suffices, and a process that writes one
    never loads the compiled kernels (about half a second of start-up). Python's power costs about 0.1 us a
    value, so axes longer than ``AXES_MAX`` values in all (a grid of very many rows) use the kernel instead."""

    AXES_MAX = 1 << 17

    def __init__(self, law, n_axis, d_axis):
        e, a, b, alpha, beta = (float(v) for v in law.vector[:5])
        self.rows = np.array([e + a / n ** alpha for n in n_axis.tolist()])
        self.cols = np.array([b / d ** beta for d in d_axis.tolist()])

    def fill(self, sl: slice, out: np.ndarray) -> None:
        np.add(self.rows[sl, None], self.cols[None, :], out=out)


def chunks(law, n_axis, d_axis=None, c_axis=None, dtype=np.float64, chunk_points=CHUNK_POINTS, buffers: int = 1):
    """Yield (params, tokens, flops, loss) column arrays chunk by chunk, reusing ``buffers`` sets of buffers in
    turn: a chunk stays valid while the next ``buffers - 1`` are made (1: consume each chunk before asking for
    the next)."""
    require_loss(law)
    fam, p = law.family_id, law.vector
    k = FLOPS_PER_PARAM_TOKEN
    outer, inner = (n_axis, d_axis) if d_axis is not None else (c_axis, n_axis)
    rows_max = min(max(1, chunk_points // inner.size), outer.size)
    size = rows_max * inner.size
    inner_tiled = np.tile(inner, rows_max)
    sets = [(np.empty(size), np.empty(size), np.empty(size, dtype=dtype)) for _ in range(buffers)]
    chinchilla = (_ChinchillaRows(law, n_axis, d_axis) if d_axis is not None and fam == CHINCHILLA
                  and n_axis.size + d_axis.size <= _ChinchillaRows.AXES_MAX else None)
    if d_axis is None:
        from .kernels.loss import loss_points
    for i, sl in enumerate(row_chunks(outer.size, inner.size, chunk_points)):
        outer_col, third, loss = sets[i % buffers]
        m = (sl.stop - sl.start) * inner.size
        oc, th, lo, it = outer_col[:m], third[:m], loss[:m], inner_tiled[:m]
        oc.reshape(-1, inner.size)[:] = outer[sl, None]
        if d_axis is not None:  # params = oc, tokens = it, flops = 6*params*tokens
            if chinchilla is not None:
                chinchilla.fill(sl, lo.reshape(-1, inner.size))
            else:
                grid_loss(law, outer[sl], inner, lo.reshape(-1, inner.size))
            np.multiply(oc, k, out=th)
            np.multiply(th, it, out=th)
            yield oc, it, th, lo
        else:  # flops = oc, params = it, tokens = C/(6N)
            np.multiply(it, k, out=th)
            np.divide(oc, th, out=th)
            loss_points(fam, p, it, th, lo)
            yield it, th, oc, lo


def _arrow(a: np.ndarray) -> pa.Array:
    """``tables.arrow_float`` (NaN as null) with one reduction instead of a mask when there is no NaN: the
    maximum of a float array is NaN exactly when it holds one. The same Arrow array either way."""
    if a.size and not np.isnan(a.max()):
        return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), a.size, [None, pa.py_buffer(a)])
    return arrow_float(a)


def batches(law, n_axis, d_axis=None, c_axis=None, dtype=np.float64, chunk_points=CHUNK_POINTS, buffers: int = 1):
    """Record batches of ``chunks``: views of reused buffers, valid while the next ``buffers - 1`` are made."""
    sch = schema(dtype)
    for cols in chunks(law, n_axis, d_axis, c_axis, dtype, chunk_points, buffers):
        yield pa.RecordBatch.from_arrays([_arrow(a) for a in cols], schema=sch)


def write(path, law, params, tokens=None, flops=None, *, dtype=np.float64, fmt: str | None = None,
          chunk_points: int = CHUNK_POINTS, grid: dict | None = None, command_line: str | None = None,
          progress: Callable[[int, int], None] | None = None) -> dict:
    """Stream the loss surface of ``law`` (a Law) to a file in bounded memory: ``api.write_surface``. The next
    chunk is computed while one is encoded: one waiting, so three buffer sets are in use at once."""
    if (tokens is None) == (flops is None):
        raise ScalesweepError("give a tokens range or a flops range (IsoFLOP form), not both")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise ScalesweepError(f"--dtype must be float64 or float32, got {dtype}")
    n = positive_array(params, "params")
    d = positive_array(tokens, "tokens") if tokens is not None else None
    c = positive_array(flops, "flops") if flops is not None else None
    total = n.size * sum(a.size for a in (d, c) if a is not None)
    meta = metadata(law, n, d, c, dtype=dtype, grid=grid, command_line=command_line)
    t0 = time.perf_counter()
    done = 0
    with table_writer(path, schema(dtype).with_metadata(meta), fmt,
                      parquet_options={"use_dictionary": DICTIONARY_COLUMNS}) as w:
        def put(batch: pa.RecordBatch) -> None:
            nonlocal done
            w.write(batch, row_group_size=batch.num_rows)
            done += batch.num_rows
            if progress is not None:
                progress(done, total)

        overlapped(batches(law, n, d, c, dtype, chunk_points, buffers=1 + 2), put, depth=1)
    return {"rows": total, "seconds": time.perf_counter() - t0}


def job(law, n, d=None, c=None, *, dtype="float64", partition_rows: int, grid=None, command_line=None):
    """A partitioned surface: parts of whole outer-axis rows (params in grid form, budgets in IsoFLOP form).
    Each axis is a ``grid.LogRange`` or an array, held in the spec by ``dataset.axis``."""
    from .dataset import Job, axis, axis_size, plan

    require_loss(law)
    outer = axis(d if d is not None else c)
    spec = {"law": law.to_dict(), "params": axis(n), "dtype": str(np.dtype(dtype)), "grid": grid or {},
            "command_line": command_line, ("tokens" if d is not None else "flops"): outer}
    n_size, o_size = axis_size(spec["params"]), axis_size(outer)
    inner, n_outer = (o_size, n_size) if d is not None else (n_size, o_size)
    return Job("surface", spec, plan(n_outer, max(1, partition_rows // inner)), n_size * o_size, compute_part)


def _sized(k: int) -> np.ndarray:
    """A stand-in axis of ``k`` values for ``metadata``, which counts the rows (no memory held)."""
    return np.broadcast_to(np.float64(0.0), (k,))


def compute_part(spec: dict, start: int, stop: int):
    """Outer rows start..stop-1 of a surface job as one Arrow table with the surface's schema and metadata."""
    from .dataset import axis_size, axis_values
    from .laws import Law

    law = Law.from_dict(spec["law"])
    # one chunk holds the whole part, so the batch's buffers are not reused while the table lives
    if "tokens" in spec:  # grid form: params rows start..stop-1 over every token count
        d = axis_values(spec["tokens"])
        meta = metadata(law, _sized(axis_size(spec["params"])), d, dtype=spec["dtype"], grid=spec["grid"],
                        command_line=spec["command_line"])
        batch = next(batches(law, axis_values(spec["params"], start, stop), d_axis=d, dtype=spec["dtype"],
                             chunk_points=(stop - start) * d.size))
    else:  # IsoFLOP form: budgets start..stop-1 over every model size
        n = axis_values(spec["params"])
        meta = metadata(law, n, c=_sized(axis_size(spec["flops"])), dtype=spec["dtype"], grid=spec["grid"],
                        command_line=spec["command_line"])
        batch = next(batches(law, n, c_axis=axis_values(spec["flops"], start, stop), dtype=spec["dtype"],
                             chunk_points=(stop - start) * n.size))
    table = pa.Table.from_batches([batch]).replace_schema_metadata(meta)
    return table, {"rows": table.num_rows}
