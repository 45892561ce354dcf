"""Dense frontier lookup tables, interpolated log-log, with their measured interpolation error.

``build_lookup`` solves the frontier at K budgets per decade and measures the table's own accuracy by
solving exactly at every geometric midpoint between neighbouring rows and comparing with the interpolated
value (relative error of params, tokens and loss). For smooth stretches of the frontier the midpoint is
where linear interpolation in log-log space errs most; a constraint switching on inside a segment can put
the worst point elsewhere, so the figure is "measured at the midpoints", not a proof. An unconstrained
chinchilla or kaplan frontier is a power law in params and tokens, so those interpolate exactly.

``Lookup`` reads a table back and answers budgets inside its range; outside it is an error, never an
extrapolation.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import questions, storage
from .errors import ScalesweepError
from .grid import LogRange
from .laws import Law, as_law
from .options import Constraints, from_values
from .output import resolve_format, table_writer
from .tables import METADATA_KEY, metadata, read_metadata, to_arrow
from .validate import BYTES_PER_ROW_HELD, check_size, integer, number, positive_array

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

    from .dataset import Job
    from .questions import Result

LOOKUP_COLUMNS = ("params", "tokens", "loss")


def lookup_range(lo: float, hi: float, points_per_decade: int) -> LogRange:
    """Log-spaced budgets from lo to hi (both included) with at least ``points_per_decade`` per decade, as a
    ``grid.LogRange`` (generated chunk by chunk when streamed)."""
    integer(points_per_decade, "--points-per-decade", 1)
    lo, hi = number(lo, "--flops-range: LO", "pos"), number(hi, "--flops-range: HI", "pos")
    if not lo < hi:
        raise ScalesweepError(f"--flops-range: LO ({lo:g}) must be less than HI ({hi:g})")
    count = max(2, math.ceil(points_per_decade * math.log10(hi / lo) - 1e-9) + 1)
    check_size("--flops-range with --points-per-decade", count)
    return LogRange(lo, hi, count)


def lookup_budgets(lo: float, hi: float, points_per_decade: int) -> np.ndarray:
    """The budgets of ``lookup_range`` as one array (checked against the memory a table of them holds)."""
    budgets = lookup_range(lo, hi, points_per_decade)
    check_size("--flops-range with --points-per-decade", budgets.size, bytes_held=BYTES_PER_ROW_HELD * budgets.size)
    return budgets.values()


def interpolate(table_flops: np.ndarray, table_cols: dict[str, np.ndarray], table_feasible: np.ndarray,
                flops: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Log-log linear interpolation of each column at ``flops`` (inside the table's range).

    A query in a segment with an infeasible end is infeasible (NaN results).
    """
    lx = np.log(table_flops)
    q = np.log(flops)
    j = np.clip(np.searchsorted(lx, q, side="right") - 1, 0, lx.size - 2)
    t = (q - lx[j]) / (lx[j + 1] - lx[j])
    feas = table_feasible[j] & table_feasible[j + 1]
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, col in table_cols.items():
            ly = np.log(col)
            v = np.exp(ly[j] + t * (ly[j + 1] - ly[j]))
            # Exact at the nodes (t == 0 or 1 must return the stored value, not exp(log(.)) of it).
            v = np.where(t == 0.0, col[j], np.where(t == 1.0, col[j + 1], v))
            out[name] = np.where(feas, v, np.nan)
    return out, feas


def segment_errors(law: Law, budgets: np.ndarray, cons: Constraints) -> tuple[Result, dict[str, float]]:
    """Frontier rows at ``budgets`` (a ``questions.Result``) and the largest relative interpolation error of
    params, tokens and loss at the geometric midpoints between consecutive budgets (the exact solve there vs
    the log-log line)."""
    res = questions.frontier([law], budgets, constraints=cons)
    errors = {c: math.nan for c in LOOKUP_COLUMNS}
    if budgets.size >= 2:
        mid = np.sqrt(budgets[:-1] * budgets[1:])
        exact = questions.frontier([law], mid, constraints=cons).columns
        cols = res.columns
        interp, feas = interpolate(budgets, {c: cols[c] for c in LOOKUP_COLUMNS}, cols["feasible"], mid)
        both = feas & exact["feasible"]
        for c in LOOKUP_COLUMNS:
            rel = np.abs(interp[c][both] / exact[c][both] - 1.0)
            errors[c] = float(rel.max()) if rel.size else math.nan
    return res, errors


def merge_errors(parts: Iterable[dict[str, float]]) -> dict[str, float]:
    """The largest error over several segment ranges (NaN where none was measurable)."""
    parts = list(parts)
    return {c: float(np.nanmax([p[c] for p in parts])) if any(not math.isnan(p[c]) for p in parts) else math.nan
            for c in LOOKUP_COLUMNS}


def lookup_info(lo: float, hi: float, points_per_decade: int, rows: int, errors: dict[str, float],
                cons: Constraints) -> dict[str, Any]:
    """What a lookup table's metadata says about it: range, rows, measured errors, limits."""
    return {
        "flops_range": [float(lo), float(hi)],
        "points_per_decade": points_per_decade,
        "rows": int(rows),
        "max_interpolation_error": errors,
        "error_measured_at": "geometric midpoints between rows (relative error)",
        "constraints": cons.as_dict(),
    }


def lookup_metadata(law: Law, info: dict[str, Any], command_line: str | None) -> dict[bytes, bytes]:
    """The metadata of a lookup table file (and of ``build_lookup``'s DataFrame, as ``attrs``)."""
    return metadata("lookup", law=law.to_dict(), lookup=info, rows=info["rows"], command_line=command_line)


def _frame(cols: dict[str, Any], m: int, meta: dict[bytes, bytes]) -> pd.DataFrame:
    """A result as a DataFrame whose ``attrs["scalesweep"]`` is the metadata a file of it carries."""
    from .tables import to_frame

    df = to_frame(cols, m)
    df.attrs[METADATA_KEY.decode()] = json.loads(meta[METADATA_KEY])
    return df


def build_lookup(law: str | Law | None, lo: float, hi: float, points_per_decade: int,
                 **constraints: float | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(table DataFrame, info dict with the measured maximum interpolation errors). The DataFrame's
    ``attrs["scalesweep"]`` is the metadata ``scalesweep lookup build`` writes into the table file."""
    law = as_law(law)
    cons = from_values(Constraints, constraints, what="constraint")
    flops = lookup_budgets(lo, hi, points_per_decade)
    res, errors = segment_errors(law, flops, cons)
    info = lookup_info(lo, hi, points_per_decade, flops.size, errors, cons)
    return _frame(res.columns, res.rows, lookup_metadata(law, info, None)), info


def _check_parquet(path: str | os.PathLike[str]) -> None:
    if resolve_format(path, None) != "parquet":
        raise ScalesweepError(f"a lookup table is written as Parquet (it carries its error metadata): {str(path)!r}")


CHUNK_ROWS = 1 << 18  # budgets solved at a time when a lookup file is written (bounded memory)


def write_lookup(path: str | os.PathLike[str], law: str | Law | None, lo: float, hi: float, points_per_decade: int,
                 *, command_line: str | None = None, chunk_rows: int = CHUNK_ROWS,
                 **constraints: float | None) -> dict[str, Any]:
    """Solve and write a lookup table in bounded memory: a first pass over ``chunk_rows`` budgets at a time
    measures the interpolation errors (which the file's metadata carries), a second solves the rows again and
    streams them. Each chunk's segments reach one row into the next chunk, so the errors and rows equal those
    of one solve over the whole range."""
    law = as_law(law)
    _check_parquet(path)
    cons = from_values(Constraints, constraints, what="constraint")
    budgets = lookup_range(lo, hi, points_per_decade)
    n = budgets.size
    starts = range(0, n, chunk_rows)
    errors = merge_errors([segment_errors(law, budgets.values(s, min(n, s + chunk_rows) + 1), cons)[1]
                           for s in starts])
    info = lookup_info(lo, hi, points_per_decade, n, errors, cons)
    meta = lookup_metadata(law, info, command_line)
    tables = (questions.frontier([law], budgets.values(s, min(n, s + chunk_rows)), constraints=cons).table(meta)
              for s in starts)
    first = next(tables)
    with table_writer(path, first.schema, "parquet") as w:
        for table in itertools.chain([first], tables):
            w.write(table, row_group_size=table.num_rows)
    return info


class Lookup:
    """A lookup table written by ``scalesweep lookup build``: ``Lookup(path).query(flops)``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            meta = read_metadata(path)
            with storage.opened(path) as src:
                table = pq.read_table(src, columns=["flops", *LOOKUP_COLUMNS, "feasible"])
        except ScalesweepError:
            raise
        except FileNotFoundError:
            raise ScalesweepError(f"lookup table {str(path)!r} does not exist") from None
        except Exception as exc:  # not Parquet, or missing columns
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ScalesweepError(f"cannot read lookup table {str(path)!r}: {msg}") from None
        if meta.get("command") != "lookup":
            raise ScalesweepError(f"{str(path)!r} is not a lookup table (written by `scalesweep {meta.get('command')}`)")
        self.path = str(path)
        self.meta = meta
        self.info = meta["lookup"]
        self.flops = table.column("flops").to_numpy()
        self.columns = {c: table.column(c).to_numpy() for c in LOOKUP_COLUMNS}
        self.feasible = table.column("feasible").to_numpy(zero_copy_only=False)
        if self.flops.size < 2 or not (np.diff(self.flops) > 0).all():
            raise ScalesweepError(f"lookup table {self.path!r} is damaged: budgets must increase")

    @property
    def range(self) -> tuple[float, float]:
        """The smallest and largest budget (FLOPs) the table answers."""
        return float(self.flops[0]), float(self.flops[-1])

    @property
    def max_error(self) -> dict[str, float]:
        """Largest relative interpolation error measured at build time, per column."""
        return dict(self.info["max_interpolation_error"])

    @property
    def law_name(self) -> str:
        """The name of the table's law (preset, with ``+NAME`` for overridden parameters)."""
        return Law.from_dict(self.meta["law"]).name

    def __repr__(self) -> str:
        lo, hi = self.range
        err = ", ".join(f"{c} {v:.1e}" for c, v in self.max_error.items())
        return (f"Lookup({self.path!r}, law {self.law_name}, flops {lo:.3g}..{hi:.3g}, {self.flops.size} rows, "
                f"max error {err})")

    def query_columns(self, flops: ArrayLike) -> dict[str, np.ndarray]:
        """Interpolated flops, params, tokens, loss, tokens_per_param and feasible at each budget (numpy)."""
        c = positive_array(flops, "flops")
        lo, hi = self.range
        outside = (c < lo) | (c > hi)
        if outside.any():
            v = float(c[np.argmax(outside)])
            raise ScalesweepError(f"budget {v:g} is outside the table's range [{lo:g}, {hi:g}]; "
                                  "build a wider table (lookup tables do not extrapolate)")
        vals, feas = interpolate(self.flops, self.columns, self.feasible, c)
        return {"flops": c.copy(), **vals, "tokens_per_param": vals["tokens"] / vals["params"], "feasible": feas}

    def query(self, flops: ArrayLike) -> pd.DataFrame:
        """``query_columns`` as a DataFrame; its ``attrs["scalesweep"]`` is the metadata of ``query_table``."""
        cols = self.query_columns(flops)
        return _frame(cols, cols["flops"].size, self.query_metadata(cols["flops"].size, None))

    def query_table(self, flops: ArrayLike, command_line: str | None = None) -> pa.Table:
        """``query_columns`` as an Arrow table with the query's metadata."""
        cols = self.query_columns(flops)
        return to_arrow(cols, cols["flops"].size, self.query_metadata(cols["flops"].size, command_line))

    def query_metadata(self, rows: int, command_line: str | None) -> dict[bytes, bytes]:
        """The metadata of a query's answer: the table, its law and measured errors, the rows."""
        return metadata("lookup query", table=self.path, law=self.meta.get("law"), lookup=self.info, rows=rows,
                        command_line=command_line)


def job(law: Law, flops: Any, cons: Constraints, *, partition_rows: int, command_line: str | None = None) -> Job:
    """A partitioned lookup build: parts of consecutive budgets (``flops``, a ``grid.LogRange`` or an array,
    held in the spec by ``dataset.axis``)."""
    from .dataset import Job, axis, axis_size, plan

    spec = {"law": law.to_dict(), "flops": axis(flops), "constraints": cons.as_dict(), "command_line": command_line}
    n = axis_size(spec["flops"])
    return Job("lookup", spec, plan(n, partition_rows), n, compute_part)


def compute_part(spec: dict[str, Any], start: int, stop: int) -> tuple[pa.Table, dict[str, Any]]:
    """Rows start..stop-1 of a lookup job and the midpoint errors of the segments that start in them."""
    from .dataset import axis_size, axis_values

    c = axis_values(spec["flops"], start, min(stop + 1, axis_size(spec["flops"])))
    res, errors = segment_errors(Law.from_dict(spec["law"]), c, Constraints(**spec["constraints"]))
    return res.table().slice(0, stop - start), {"rows": stop - start, "errors": errors}


def write_lookup_parts(path: str | os.PathLike[str], law: str | Law | None, lo: float, hi: float,
                       points_per_decade: int, *, engine: str = "local", client: Any = None,
                       partition_rows: int | None = None, progress: Callable[[int, int], None] | None = None,
                       command_line: str | None = None, **constraints: float | None) -> dict[str, Any]:
    """``write_lookup`` with the rows solved as dataset parts (locally or on Dask, resumable in
    ``PATH.parts/``); each part also measures the midpoint errors of its segments, including the one
    that crosses into the next part. The parts are then joined into the single lookup file."""
    from . import dataset
    from .output import check_target

    law = as_law(law)
    cons = from_values(Constraints, constraints, what="constraint")
    flops = lookup_range(lo, hi, points_per_decade)
    _check_parquet(path)
    check_target(path)
    lookup_job = job(law, flops, cons, partition_rows=partition_rows or 1024, command_line=command_line)
    parts_dir = str(path) + ".parts"
    summary = dataset.run(lookup_job, parts_dir, engine=engine, client=client, progress=progress)
    errors = []
    for i, (s, e) in enumerate(lookup_job.parts):  # parts reused from an earlier run: re-measure their segments
        got = summary["part_summaries"].get(i)
        errors.append(got["errors"] if got is not None
                      else segment_errors(law, flops.values(s, min(e + 1, flops.size)), cons)[1])
    info = lookup_info(lo, hi, points_per_decade, flops.size, merge_errors(errors), cons)
    meta = lookup_metadata(law, info, command_line)
    # Parts hold consecutive budgets in part order: joined one part at a time, in bounded memory.
    with storage.opened(storage.join(parts_dir, dataset.part_name(0))) as src:
        schema = pq.read_schema(src).with_metadata(meta)
    with table_writer(path, schema, "parquet") as w:
        for i in range(len(lookup_job.parts)):
            with storage.opened(storage.join(parts_dir, dataset.part_name(i))) as src:
                table = pq.read_table(src).unify_dictionaries()
            w.write(table.replace_schema_metadata(meta), row_group_size=table.num_rows)
    dataset.remove(parts_dir)
    return {**info, "parts": summary["parts"], "computed": summary["computed"], "reused": summary["reused"],
            "recomputed": summary["recomputed"]}
