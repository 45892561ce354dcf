"""Partitioned Parquet datasets, written part by part, locally or on a Dask cluster, and resumable.

A job is a kind, a JSON spec from which any part can be rebuilt anywhere, a part plan (the same chunking the
single-file writer uses) and the function that computes a part. The function lives with its kind
(``surfaces.compute_part``, ``questions.compute_frontier_part``, ``scenarios.compute_part``,
``lookup.compute_part``) and builds the part with the kind's own schema and metadata builders, so a part
equals the rows of a single-file run, metadata included. Each part is written atomically as
``part-NNNNNN.parquet`` into the output directory; only a small summary goes back to the caller (no result
data travels through the Dask scheduler). The directory holds ``_manifest.json`` with the spec's hash: a
run with the same spec and directory computes only the missing parts, and a different spec is refused
rather than mixed in. pandas, DuckDB and ``pyarrow.dataset`` read the directory as one table (files
starting with ``_`` or ``.`` are skipped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._version import __version__
from .errors import ScalesweepError
from .output import write_json, write_table
from .tables import METADATA_KEY

MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class Job:
    kind: str
    spec: dict  # JSON-able: everything a worker needs to rebuild a part
    parts: tuple  # ((start, stop), ...) in the job's row space (outer-axis rows, budgets, scenarios)
    rows: int  # output rows in all
    compute: Callable  # compute(spec, start, stop) -> (pyarrow.Table, summary dict)

    @property
    def spec_hash(self) -> str:
        """What the results depend on: kind, spec (not the command line that asked), part plan, version."""
        spec = {k: v for k, v in self.spec.items() if k != "command_line"}
        text = json.dumps({"kind": self.kind, "spec": spec, "parts": self.parts, "version": __version__},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


MAX_PARTS = 1_000_000  # part names have six digits, so a directory listing sorts in row order


def plan(n_units: int, units_per_part: int) -> tuple:
    """((start, stop), ...) over ``n_units`` in steps of ``units_per_part``; at most ``MAX_PARTS`` parts."""
    step = max(1, int(units_per_part))
    n_parts = -(-int(n_units) // step)
    if n_parts > MAX_PARTS:
        raise ScalesweepError(f"{n_parts:,} parts requested, over the limit of {MAX_PARTS:,} parts in a dataset: "
                              "give a larger --partition-rows")
    return tuple((s, min(n_units, s + step)) for s in range(0, n_units, step))


def part_name(i: int) -> str:
    return f"part-{i:06d}.parquet"


def write_part(compute: Callable, spec: dict, start: int, stop: int, path: str, threads: int | None = None) -> dict:
    """Compute one part and write it atomically (a Dask task; also the local engine's step)."""
    if threads is not None:
        import numba

        if threads == -1:  # on a Dask worker: as many numba threads as the worker has task threads
            from distributed import get_worker

            threads = get_worker().state.nthreads
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    t0 = time.perf_counter()
    table, summary = compute(spec, start, stop)
    write_table(path, table, "parquet")
    return {**summary, "part": os.path.basename(path), "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------ directory


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
            job = Job(job.kind, {**job.spec, "command_line": old.get("command_line")}, job.parts, job.rows, job.compute)
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
        write_json(manifest, {"scalesweep_version": __version__, "kind": job.kind, "spec_hash": job.spec_hash,
                              "parts": len(job.parts), "rows": job.rows, "complete": False,
                              "command_line": job.spec.get("command_line")})
    missing = [i for i in range(len(job.parts)) if not (out / part_name(i)).is_file()]
    return job, out, missing


def finish(out: Path) -> None:
    """Mark the dataset complete in its manifest."""
    data = json.loads((out / MANIFEST).read_text())
    data.update(complete=True, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json(out / MANIFEST, data)


def run(job: Job, outdir, *, engine: str = "local", client=None, progress=None, threads: int | None = None) -> dict:
    """Write every missing part of ``job`` into ``outdir``. Returns rows, parts computed, parts reused, seconds,
    and the parts' summaries."""
    job, out, missing = prepare(job, outdir)
    t0 = time.perf_counter()
    done = len(job.parts) - len(missing)
    summaries = []
    if progress is not None:
        progress(done, len(job.parts))
    if engine == "local":
        for i in missing:
            start, stop = job.parts[i]
            summaries.append({**write_part(job.compute, job.spec, start, stop, str(out / part_name(i)), threads),
                              "index": i})
            done += 1
            if progress is not None:
                progress(done, len(job.parts))
    elif engine == "dask":
        from distributed import as_completed

        futures = {client.submit(write_part, job.compute, job.spec, *job.parts[i], str(out / part_name(i)), -1,
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
    infeasible: dict[str, int] = {}
    for s in summaries:
        for reason, count in s.get("infeasible", {}).items():
            infeasible[reason] = infeasible.get(reason, 0) + count
    return {"rows": job.rows, "parts": len(job.parts), "computed": len(missing),
            "reused": len(job.parts) - len(missing), "seconds": time.perf_counter() - t0,
            "infeasible": infeasible, "part_summaries": {s["index"]: s for s in summaries}}


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
