"""Partitioned Parquet datasets, written part by part, locally or on a Dask cluster, and resumable.

A job is a kind (``surface``, ``frontier``, ``scenarios``), a JSON spec from which any part can be rebuilt
anywhere, and a part plan: the same chunking the single-file writer uses. Each part runs the same compiled
kernels as a local run and is written atomically as ``part-NNNNNN.parquet`` into the output directory;
only a small summary goes back to the caller (no result data travels through the Dask scheduler). The
directory holds ``_manifest.json`` with the spec's hash: a run with the same spec and directory computes
only the missing parts, and a different spec is refused rather than mixed in. pandas, polars, DuckDB and
``pyarrow.dataset`` read the directory as one table (files starting with ``_`` or ``.`` are skipped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import __version__
from .errors import ScalesweepError
from .io import METADATA_KEY, atomic_parquet_writer

MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class Job:
    kind: str
    spec: dict  # JSON-able: everything a worker needs to rebuild a part
    parts: tuple  # ((start, stop), ...) in the job's row space (outer-axis rows, budgets, scenarios)
    rows: int  # output rows in all

    @property
    def spec_hash(self) -> str:
        """What the results depend on: kind, spec (not the command line that asked), part plan, version."""
        spec = {k: v for k, v in self.spec.items() if k != "command_line"}
        text = json.dumps({"kind": self.kind, "spec": spec, "parts": self.parts, "version": __version__},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def plan(n_units: int, units_per_part: int) -> tuple:
    step = max(1, int(units_per_part))
    return tuple((s, min(n_units, s + step)) for s in range(0, n_units, step))


def part_name(i: int) -> str:
    return f"part-{i:06d}.parquet"


# ------------------------------------------------------------------------------------------------ jobs


def _law_from(spec):
    from .laws import Law

    d = spec["law"]
    return Law(family=d["family"], params=d["parameters"], preset=d.get("preset"), citation=d.get("citation", ""),
               conventions=d.get("conventions", ""), overrides=tuple(d.get("overrides", ())))


def surface_job(law, params, tokens=None, flops=None, *, dtype="float64", partition_rows: int, grid=None,
                command_line=None) -> Job:
    n = np.asarray(params, dtype=np.float64)
    outer = np.asarray(tokens if tokens is not None else flops, dtype=np.float64)
    if tokens is not None:  # grid form: params-major, one outer row = one params value
        inner, n_outer = outer.size, n.size
    else:  # IsoFLOP form: budget-major
        inner, n_outer = n.size, outer.size
    spec = {"law": law.to_dict(), "params": n.tolist(), "dtype": str(np.dtype(dtype)), "grid": grid or {},
            "command_line": command_line,
            ("tokens" if tokens is not None else "flops"): outer.tolist()}
    return Job("surface", spec, plan(n_outer, max(1, partition_rows // inner)), n.size * outer.size)


def frontier_job(law, flops, *, constraints: dict, solver: str, partition_rows: int, grid=None,
                 command_line=None) -> Job:
    c = np.asarray(flops, dtype=np.float64)
    spec = {"law": law.to_dict(), "flops": c.tolist(), "constraints": constraints, "solver": solver,
            "grid": grid or {}, "command_line": command_line}
    return Job("frontier", spec, plan(c.size, partition_rows), c.size)


def scenarios_job(spec_path, *, partition_rows: int, command_line=None) -> Job:
    from .scenarios import load_spec

    path = str(Path(spec_path).resolve())
    loaded = load_spec(path)
    rows = loaded.count_rows()
    # The table's bytes go into the hash: a changed file must not resume into an old directory.
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    spec = {"path": path, "sha256": digest, "command_line": command_line}
    return Job("scenarios", spec, plan(rows, partition_rows), rows)


def lookup_job(law, flops, *, constraints: dict, partition_rows: int, command_line=None) -> Job:
    c = np.asarray(flops, dtype=np.float64)
    spec = {"law": law.to_dict(), "flops": c.tolist(), "constraints": constraints, "command_line": command_line}
    return Job("lookup", spec, plan(c.size, partition_rows), c.size)


def compute_part(kind: str, spec: dict, start: int, stop: int) -> tuple[pa.Table, dict]:
    """One part as an Arrow table with the job's schema and metadata, plus a small summary."""
    if kind == "surface":
        from .api import _arrow, _surface_chunks
        from .io import make_metadata

        law = _law_from(spec)
        n = np.asarray(spec["params"])
        dtype = np.dtype(spec["dtype"])
        grid_form = "tokens" in spec
        outer = np.asarray(spec["tokens"] if grid_form else spec["flops"])
        inner = outer.size if grid_form else n.size
        if grid_form:
            chunks = _surface_chunks(law, n[start:stop], d_axis=outer, dtype=dtype,
                                     chunk_points=(stop - start) * inner)
        else:
            chunks = _surface_chunks(law, n, c_axis=outer[start:stop], dtype=dtype,
                                     chunk_points=(stop - start) * inner)
        cols = next(iter(chunks))
        schema = pa.schema([("params", pa.float64()), ("tokens", pa.float64()), ("flops", pa.float64()),
                            ("loss", pa.from_numpy_dtype(dtype))])
        total = n.size * outer.size
        meta = make_metadata(command="surface", law=law.to_dict(), form="grid" if grid_form else "isoflop",
                             grid=spec["grid"], dtype=str(dtype), rows=total, command_line=spec["command_line"])
        table = pa.Table.from_batches([pa.RecordBatch.from_arrays([_arrow(a.copy()) for a in cols], schema=schema)])
        return table.replace_schema_metadata(meta), {"rows": table.num_rows}
    if kind == "frontier":
        from .api import frontier
        from .io import make_metadata

        law = _law_from(spec)
        c = np.asarray(spec["flops"][start:stop])
        df = frontier(law, c, solver=spec["solver"], **spec["constraints"])
        meta = make_metadata(command="frontier", law=law.to_dict(), constraints=spec["constraints"],
                             grid={**spec["grid"], "solver": spec["solver"]}, rows=len(spec["flops"]),
                             command_line=spec["command_line"])
        table = pa.Table.from_pandas(df, preserve_index=False)
        return table.replace_schema_metadata(meta), {"rows": table.num_rows, "feasible": int(df.feasible.sum())}
    if kind == "scenarios":
        from .scenarios import load_spec, metadata_for, solve_part

        loaded = load_spec(spec["path"])
        batch, feasible = solve_part(loaded, start, stop)
        table = pa.Table.from_batches([batch]).replace_schema_metadata(metadata_for(loaded, spec["command_line"]))
        return table, {"rows": table.num_rows, "feasible": feasible}
    if kind == "lookup":  # rows start..stop-1 and the midpoint errors of the segments that start in them
        from .lookup import segment_errors

        law = _law_from(spec)
        c = np.asarray(spec["flops"])
        df, errors = segment_errors(law, c[start:min(stop + 1, c.size)], spec["constraints"])
        table = pa.Table.from_pandas(df.iloc[: stop - start], preserve_index=False)
        return table, {"rows": table.num_rows, "errors": errors}
    raise ScalesweepError(f"unknown job kind {kind!r}")


def write_part(kind: str, spec: dict, start: int, stop: int, path: str, threads: int | None = None) -> dict:
    """Compute one part and write it atomically (a Dask task; also the local engine's step)."""
    if threads is not None:
        import numba

        if threads == -1:  # on a Dask worker: as many numba threads as the worker has task threads
            from distributed import get_worker

            threads = get_worker().state.nthreads
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    t0 = time.perf_counter()
    table, summary = compute_part(kind, spec, start, stop)
    with atomic_parquet_writer(path, table.schema, table.schema.metadata or {}) as w:
        w.write_table(table, row_group_size=max(1, table.num_rows))
    return {**summary, "part": os.path.basename(path), "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------ directory


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def prepare(job: Job, outdir) -> tuple[Job, Path, list[int]]:
    """Create or reopen the output directory; return the job (with the first run's command line, so every
    part carries the same metadata), the directory and the indices of the parts still missing."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ScalesweepError(f"cannot write dataset {str(out)!r}: it is a file (a partitioned run writes a directory)")
    if not out.parent.is_dir() and str(out.parent):
        raise ScalesweepError(f"cannot write dataset {str(out)!r}: directory {str(out.parent)!r} does not exist")
    manifest = out / MANIFEST
    if out.is_dir():
        if manifest.is_file():
            try:
                old = json.loads(manifest.read_text())
            except ValueError:
                raise ScalesweepError(f"dataset {str(out)!r}: {MANIFEST} is damaged; remove the directory") from None
            if old.get("spec_hash") != job.spec_hash:
                raise ScalesweepError(f"dataset {str(out)!r} was written from a different spec (hash "
                                      f"{str(old.get('spec_hash'))[:12]}, this run {job.spec_hash[:12]}); use another "
                                      "directory or remove it")
            job = Job(job.kind, {**job.spec, "command_line": old.get("command_line")}, job.parts, job.rows)
        elif any(not p.name.startswith(".") for p in out.iterdir()):
            raise ScalesweepError(f"dataset {str(out)!r} exists and is not a scalesweep dataset (no {MANIFEST}); "
                                  "use an empty or new directory")
    else:
        try:
            out.mkdir()
        except OSError as exc:
            raise ScalesweepError(f"cannot write dataset {str(out)!r}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ScalesweepError(f"cannot write dataset {str(out)!r}: directory is not writable")
    for stale in out.glob(".part-*.tmp"):  # temp files of an interrupted run
        with contextlib.suppress(OSError):
            stale.unlink()
    if not manifest.is_file():
        _write_json(manifest, {"scalesweep_version": __version__, "kind": job.kind, "spec_hash": job.spec_hash,
                               "parts": len(job.parts), "rows": job.rows, "complete": False,
                               "command_line": job.spec.get("command_line")})
    missing = [i for i in range(len(job.parts)) if not (out / part_name(i)).is_file()]
    return job, out, missing


def finish(out: Path) -> None:
    """Mark the dataset complete in its manifest."""
    data = json.loads((out / MANIFEST).read_text())
    data.update(complete=True, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    _write_json(out / MANIFEST, data)


def run(job: Job, outdir, *, engine: str = "local", client=None, progress=None, threads: int | None = None) -> dict:
    """Write every missing part of ``job`` into ``outdir``. Returns rows, parts computed, parts reused, seconds."""
    job, out, missing = prepare(job, outdir)
    t0 = time.perf_counter()
    done = len(job.parts) - len(missing)
    summaries = []
    if progress is not None:
        progress(done, len(job.parts))
    if engine == "local":
        for i in missing:
            start, stop = job.parts[i]
            summaries.append({**write_part(job.kind, job.spec, start, stop, str(out / part_name(i)), threads),
                              "index": i})
            done += 1
            if progress is not None:
                progress(done, len(job.parts))
    elif engine == "dask":
        from distributed import as_completed

        futures = {client.submit(write_part, job.kind, job.spec, *job.parts[i], str(out / part_name(i)), -1,
                                 key=f"scalesweep-{job.spec_hash[:16]}-{i}", retries=3, pure=False): i
                   for i in missing}
        try:
            for fut in as_completed(list(futures)):
                summaries.append({**fut.result(), "index": futures[fut]})
                done += 1
                if progress is not None:
                    progress(done, len(job.parts))
        except BaseException:
            client.cancel(list(futures))
            raise
    else:
        raise ScalesweepError(f"unknown engine {engine!r} (local or dask)")
    finish(out)
    return {"rows": job.rows, "parts": len(job.parts), "computed": len(missing),
            "reused": len(job.parts) - len(missing), "seconds": time.perf_counter() - t0,
            "feasible": sum(s.get("feasible", 0) for s in summaries),
            "part_summaries": {s["index"]: s for s in summaries}}


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client``: joined to ``scheduler``, or on a LocalCluster of ``workers`` processes that is
    shut down afterwards."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ScalesweepError("--engine dask needs Dask: pip install 'scalesweep[dask]'") from None
    if scheduler is not None and workers is not None:
        raise ScalesweepError("give --scheduler (join a cluster) or --workers (start a local one), not both")
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="5s")
        except (OSError, TimeoutError) as exc:
            raise ScalesweepError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise ScalesweepError(f"--workers must be >= 1, got {n}")
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def read_dataset_metadata(outdir) -> dict:
    """The scalesweep metadata shared by every part of a dataset directory."""
    import pyarrow.dataset as ds

    md = ds.dataset(str(outdir), format="parquet").schema.metadata or {}
    if METADATA_KEY not in md:
        raise ScalesweepError(f"{outdir}: no scalesweep metadata")
    return json.loads(md[METADATA_KEY])
