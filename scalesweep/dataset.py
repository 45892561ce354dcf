"""Partitioned Parquet datasets, written part by part, locally or on a Dask cluster, and resumable.

A job is a kind, a spec from which any part can be rebuilt anywhere, a part plan (the same chunking the
single-file writer uses) and the function that computes a part. The function lives with its kind
(``surfaces.compute_part``, ``questions.compute_frontier_part``, ``scenarios.compute_part``,
``lookup.compute_part``) and builds the part with the kind's own schema and metadata builders, so a part
equals the rows of a single-file run, metadata included. A spec is JSON-able except for value axes given as
arbitrary arrays: an axis is held as a ``grid.LogRange`` description when it is one (see ``axis``), so a
spec stays a few hundred bytes however many budgets it covers, and an array is hashed by its bytes.

Each part is written atomically as ``part-NNNNNN.parquet`` (with Parquet page checksums) into the output
directory; only a small summary goes back to the caller (no result data travels through the Dask
scheduler). Every part has the same schema, field metadata and ``scalesweep`` metadata, so every reader
unifies them: the directory reads as one table with ``pyarrow.dataset``, pandas, polars (``pl.read_parquet``
or ``pl.scan_parquet`` on the directory or ``DIR/*.parquet``) and DuckDB (``DIR/*.parquet`` or ``DIR/**``).
Polars and DuckDB take every file under a directory for data, dot files and hidden subdirectories included,
so the run's own files live beside the directory, not in it (``sidecar``): ``.NAME.manifest.json`` holds the
spec's hash and, for every committed part, its row count, byte size and SHA-256, and ``.NAME.lock`` marks a
run in progress. The manifest is rewritten in batches as parts complete (by the driver only), so a run that
stops early may leave parts it has no entry for.

A run with the same spec and directory computes only the parts that are missing or fail verification:
a part with an entry must match its size and checksum; a part without one must have the plan's row count,
the job's schema and metadata, and read back whole with its page checksums (it is then recorded). Parts
that fail are removed, recomputed and named in the summary (``recomputed``). A different spec is refused
rather than mixed in (a manifest beside a directory that holds no parts is stale and replaced). Any other
entry that readers would take for data (a name not starting with ``.`` or ``_`` that is not a planned part,
such as ``part-999999.parquet``, ``notes.txt`` or a subdirectory) is refused, naming it: the directory is
read as one table, so a stray file would join the data. Entries starting with ``_`` or ``.`` are left
alone: pandas and ``pyarrow.dataset`` skip them, but polars and DuckDB do not.

One run writes a directory at a time: a run holds the lock (JSON: host, pid, started), created exclusively
before anything in the directory is touched and removed when the run ends, however it ends. A second run
finding the lock of a live process (or of another host, whose processes cannot be checked) is refused; a
lock left by a dead process on this host is taken over. Temporary files are removed only when the process
that wrote them is gone (``output.remove_stale_temps``), so a run never deletes another's in-flight parts.

A run into a directory it created or found empty that stops on a user error (a bad row of the spec, say)
leaves nothing behind: its parts, manifest and lock are removed, and the directory if the run created it
(see ``run``). Other failures keep what landed, for a resume. Temporary files of parts whose writer died
are removed when a run starts and when it ends (those of other hosts only by a run there, or ``scalesweep
clean``), so a finished directory holds its parts alone.

A dataset may live at a URI (``s3://bucket/prefix/ds``, ``memory://ds``; see ``storage``): the same layout
with the prefix as the directory (``s3://bucket/prefix/.ds.manifest.json`` beside it). Every part and every
manifest version is uploaded whole from a local temporary file (``output.atomic_path``), so an object is
either complete or absent and no temporary file is ever stored there; Dask workers upload their parts
themselves (they read the credentials from their own environment). Verification hashes the parts as they
are read back; the lock is created with a conditional write (``storage.create_exclusive``: exclusive on S3
and memory://, a check then a write elsewhere). A lock of a dead process on this host is taken over by
removing it and creating it again (with no flock there, two runs taking over the same stale lock at the same
moment are not told apart).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import storage
from ._version import __version__
from .errors import ScalesweepError
from .grid import LogRange
from .output import HOST, _alive, file_digest, parquet_defaults, remove_stale_temps, write_json, write_table
from .tables import METADATA_KEY

try:
    import fcntl
except ImportError:  # no flock: taking over a stale lock is then not guarded against a simultaneous taker
    fcntl = None

MANIFEST = ".manifest.json"  # sidecar suffixes: the manifest is .NAME.manifest.json beside directory NAME
LOCK = ".lock"


def sidecar(out, suffix: str):
    """The file ``.NAME<suffix>`` beside dataset directory ``out`` (``MANIFEST``, ``LOCK``): outside the
    directory, where no reader of the directory sees it."""
    out = storage.locate(out)
    path = out if isinstance(out, storage.Location) else Path(os.path.abspath(out))
    return path.parent / f".{path.name}{suffix}"


def manifest_path(out):
    return sidecar(out, MANIFEST)


def remove(out) -> None:
    """Remove dataset directory ``out`` with its manifest (a dataset joined into one file and done with)."""
    import shutil

    out = storage.locate(out)
    if isinstance(out, storage.Location):
        out.remove_tree()
    else:
        shutil.rmtree(out)
    with contextlib.suppress(FileNotFoundError):
        manifest_path(out).unlink()


# ----------------------------------------------------------------------------------------- value axes


def axis(values):
    """How a job spec holds a value axis (budgets, params, tokens). A ``grid.LogRange``, or an array that one
    reproduces bit for bit, is held as ``{"range": [lo, hi, count]}``: a few bytes however long, and any
    slice is regenerated exactly (``LogRange.values(start, stop)``). Any other array is held as a read-only
    float64 copy, which the spec hash covers by its bytes."""
    if isinstance(values, LogRange):
        return {"range": [float(values.lo), float(values.hi), int(values.count)]}
    a = np.array(values, dtype=np.float64, copy=True)
    found = _as_range(a)
    if found is not None:
        return axis(found)
    a.flags.writeable = False
    return a


def _as_range(a: np.ndarray) -> LogRange | None:
    """The LogRange whose values are exactly ``a`` (bit for bit), if there is one."""
    if a.ndim != 1 or a.size == 0:
        return None
    lo, hi = float(a[0]), float(a[-1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi):
        return None
    r = LogRange(lo, hi, int(a.size))
    bits = a.view(np.uint64)
    for i in sorted({a.size // 2, max(0, a.size - 2), min(1, a.size - 1)}):  # cheap probes before the full pass
        if r.values(i, i + 1).view(np.uint64)[0] != bits[i]:
            return None
    return r if np.array_equal(r.values().view(np.uint64), bits) else None


def axis_values(ax, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Values start..stop-1 of an axis held by ``axis`` (all by default)."""
    if isinstance(ax, dict):
        return LogRange(*ax["range"]).values(start, stop)
    return np.asarray(ax, dtype=np.float64)[start:stop]


def axis_size(ax) -> int:
    return int(ax["range"][2]) if isinstance(ax, dict) else len(ax)


def _digest(obj):
    """JSON stand-in for what a spec may hold beyond JSON: an array by the SHA-256 of its bytes."""
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {"ndarray_sha256": hashlib.sha256(a).hexdigest(), "dtype": a.dtype.str, "shape": list(a.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"a job spec cannot hold {type(obj).__name__}")


# ----------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    kind: str
    spec: dict  # everything a worker needs to rebuild a part (JSON-able values; value axes from ``axis``)
    parts: tuple  # ((start, stop), ...) in the job's row space (outer-axis rows, budgets, scenarios)
    rows: int  # output rows in all
    compute: Callable  # compute(spec, start, stop) -> (pyarrow.Table, summary dict)

    @functools.cached_property
    def spec_hash(self) -> str:
        """What the results depend on: kind, spec (not the command line that asked), part plan, version.
        Computed once per job; arrays in the spec and the part plan enter by the hash of their bytes."""
        spec = {k: v for k, v in self.spec.items() if k != "command_line"}
        plan_bytes = np.asarray(self.parts, dtype=np.int64).tobytes()
        text = json.dumps({"kind": self.kind, "spec": spec, "version": __version__,
                           "parts": [len(self.parts), hashlib.sha256(plan_bytes).hexdigest()]},
                          sort_keys=True, default=_digest)
        return hashlib.sha256(text.encode()).hexdigest()

    def part_rows(self, i: int) -> int:
        """Output rows of part ``i`` (a unit of the row space is one row, or one outer row of a surface)."""
        units = self.parts[-1][1]
        start, stop = self.parts[i]
        return (stop - start) * (self.rows // units)


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


def write_part(compute: Callable, spec: dict, start: int, stop: int, path: str, threads: int | None = None,
               compression: str | None = None) -> dict:
    """Compute one part and write it atomically (a Dask task; also the local engine's step) with the Parquet
    ``compression`` of the run that planned it (None: the default). The summary carries the part's manifest
    entry (``file``: rows, bytes, sha256)."""
    if threads is not None:
        import numba

        if threads == -1:  # on a Dask worker: as many numba threads as the worker has task threads
            from distributed import get_worker

            threads = get_worker().state.nthreads
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    t0 = time.perf_counter()
    try:
        table, summary = compute(spec, start, stop)
    except ScalesweepError as exc:  # the spec's content is at fault: ``run`` may then remove a fresh directory
        exc.input_error = True
        raise
    codec = {"compression": compression} if compression is not None else {}
    entry = {"rows": table.num_rows, **write_table(path, table, "parquet", digest=True, write_page_checksum=True,
                                                   **codec)}
    return {**summary, "part": os.path.basename(path), "file": entry, "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------------ lock


LOCK_WAIT = 5.0  # seconds an unreadable lock (its writer between creating and filling it) counts as live


def _lock_error(out, holder: dict) -> ScalesweepError:
    return ScalesweepError(f"dataset {out} is being written by pid {holder['pid']} on {holder['host']} "
                           f"(lock {sidecar(out, LOCK)}); wait for it or remove the lock if that run is gone")


def _read_lock(path) -> tuple[bytes | None, dict | None]:
    """(raw content, parsed holder) of a lock file; (None, None) when it is gone."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        holder = json.loads(raw)
    except ValueError:
        return raw, None
    if not (isinstance(holder, dict) and isinstance(holder.get("host"), str) and type(holder.get("pid")) is int):
        return raw, None
    return raw, holder


def _remove_stale_lock(path: Path, seen: bytes) -> None:
    """Remove ``path`` if it is still the stale lock read as ``seen``. Under flock, and checked by inode and
    content, so of two runs taking over the same stale lock one removes it and the other then finds the
    winner's fresh lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            return
        content = b""
        while chunk := os.read(fd, 1 << 16):
            content += chunk
        if same and content == seen:
            os.unlink(path)
    except PermissionError as exc:
        raise ScalesweepError(f"cannot take over the stale lock {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _create_lock(out, path, mine: bytes) -> bool:
    """Create the lock file holding ``mine`` unless one exists (False then): O_CREAT|O_EXCL locally, a
    conditional write at a URI."""
    if isinstance(path, storage.Location):
        return storage.create_exclusive(path, mine)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ScalesweepError(f"cannot lock dataset {out}: {exc.strerror or exc}") from None
    try:
        os.write(fd, mine)
    except BaseException as exc:  # a full disk, or an interrupt: leave no empty lock behind
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(exc, OSError):
            raise ScalesweepError(f"cannot lock dataset {out}: {exc.strerror or exc}") from None
        raise
    os.close(fd)
    return True


def take_lock(out) -> bytes:
    """Create the lock beside ``out`` exclusively (``_create_lock``) with this run's host, pid and start time;
    returns its content (``release_lock`` removes it only if it is still ours). A live holder's lock is the
    one-line refusal; a dead holder's on this host is taken over."""
    path = sidecar(out, LOCK)
    remote = isinstance(path, storage.Location)
    mine = json.dumps({"host": HOST, "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode()
    deadline = time.monotonic() + LOCK_WAIT
    for _ in range(1000):
        if _create_lock(out, path, mine):
            return mine
        seen, holder = _read_lock(path)
        if seen is None:  # removed meanwhile: try again
            continue
        if holder is not None:
            if holder["host"] != HOST or holder["pid"] == os.getpid() or _alive(holder["pid"]):
                raise _lock_error(out, holder)
        elif not remote:  # unreadable: a writer between creating and filling it, or one that died there
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime < LOCK_WAIT and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
        if remote:  # an object is stored whole, so an unreadable one is no writer's in progress
            with contextlib.suppress(FileNotFoundError):
                if path.read_bytes() == seen:
                    path.unlink()
        else:
            _remove_stale_lock(path, seen)
    raise ScalesweepError(f"cannot lock dataset {out}: {path} keeps changing; is another run starting?")


def release_lock(out, mine: bytes) -> None:
    """Remove the lock beside ``out`` if it still holds ``mine``."""
    path = sidecar(out, LOCK)
    with contextlib.suppress(OSError):
        if path.read_bytes() == mine:
            path.unlink()


# -------------------------------------------------------------------------------------------- manifest


FLUSH_SECONDS = 2.0  # the manifest is rewritten at most this often while parts complete (and at the end)
FLUSH_SHARE = 0.05  # and spends at most about this share of the run's time being rewritten


class Manifest:
    """The manifest as the run holding the lock keeps it: part entries are recorded as parts complete and
    written in batches, at most every ``FLUSH_SECONDS`` and no sooner than the last write's time divided by
    ``FLUSH_SHARE``, so rewriting it stays a small share of the run however many parts there are."""

    def __init__(self, out, data: dict):
        self.path = manifest_path(out)
        self.data = data
        if not isinstance(data.get("files"), dict):
            data["files"] = {}
        self.dirty = False
        self.last = time.monotonic()
        self.cost = 0.0

    @property
    def files(self) -> dict:
        return self.data["files"]

    def record(self, name: str, entry: dict) -> None:
        self.files[name] = entry
        self.dirty = True
        if time.monotonic() - self.last >= max(FLUSH_SECONDS, self.cost / FLUSH_SHARE):
            self.write()

    def write(self) -> None:
        t0 = time.monotonic()
        self.data["files"] = dict(sorted(self.files.items()))
        try:
            write_json(self.path, self.data)
        except OSError as exc:  # the temporary file is gone (atomic_path); the last manifest is kept
            raise ScalesweepError(f"cannot write {str(self.path)!r}: {exc.strerror or exc}") from None
        self.last = time.monotonic()
        self.cost = self.last - t0
        self.dirty = False


# ------------------------------------------------------------------------------------------ directory


def open_dir(outdir):
    """The output directory, created if need be (its parent must exist); a ``storage.Location`` for a URI."""
    return _open_dir(outdir)[0]


def _open_dir(outdir) -> tuple:
    """(the output directory, whether this call created it). At a URI nothing is created (a prefix exists
    once an object is stored under it): the target must not be a file and its bucket must exist."""
    if storage.is_uri(outdir) and (problem := storage.object_key_problem(str(outdir), directory=True)):
        raise ScalesweepError(f"cannot write dataset {storage.redacted(str(outdir))!r}: {problem}")
    out = storage.locate(outdir)
    if isinstance(out, storage.Location):
        out = storage.Location(out.fs, out.path.rstrip("/"), out.text.rstrip("/"), out.scheme)
        if out.bucket is not None and "/" not in out.path.strip("/"):
            raise ScalesweepError(f"cannot write dataset {str(out)!r}: give a prefix with a name inside the bucket "
                                  "(its manifest goes beside it)")
        if out.is_file():
            raise ScalesweepError(f"cannot write dataset {str(out)!r}: it is a file (a partitioned run writes a "
                                  "directory)")
        out.check_bucket()
        return out, False
    out = Path(out)
    created = False
    if not Path(os.path.abspath(out)).name:
        raise ScalesweepError(f"cannot write dataset {str(out)!r}: give a directory with a name (its manifest "
                              "goes beside it)")
    if out.exists() and not out.is_dir():
        raise ScalesweepError(f"cannot write dataset {str(out)!r}: it is a file (a partitioned run writes a directory)")
    if not out.parent.is_dir() and str(out.parent):
        raise ScalesweepError(f"cannot write dataset {str(out)!r}: directory {str(out.parent)!r} does not exist")
    if not out.is_dir():
        try:
            out.mkdir()
            created = True
        except FileExistsError:  # made meanwhile by another run: the lock decides
            pass
        except OSError as exc:
            raise ScalesweepError(f"cannot write dataset {str(out)!r}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ScalesweepError(f"cannot write dataset {str(out)!r}: directory is not writable")
    return out, created


def _is_fresh(entries) -> bool:
    """Whether a directory's entries (names) are dot files alone (temporaries): no part, nothing of a user's."""
    return not any(not name.startswith(".") for name in entries)


class _RemoteEntry:
    """A ``FileInfo`` with the two ``os.DirEntry`` methods the checks use."""

    def __init__(self, info):
        self.info = info

    def is_file(self) -> bool:
        return self.info.type.name == "File"

    def stat(self):
        return os.stat_result((0, 0, 0, 0, 0, 0, self.info.size or 0, 0, 0, 0))


def _entries(out) -> dict:
    """``{name: entry}`` of a dataset directory (``os.DirEntry``, or ``_RemoteEntry`` at a URI)."""
    if isinstance(out, storage.Location):
        return {name: _RemoteEntry(info) for name, info in out.entries().items()}
    with os.scandir(out) as it:
        return {e.name: e for e in it}


def _remove_written(job: Job, out) -> None:
    """Remove what a run into a fresh directory wrote: its parts and manifest (the caller holds the lock). In
    a fresh directory every planned part and the manifest are this run's."""
    planned = {part_name(i) for i in range(len(job.parts))}
    names = [name for name in _entries(out) if name in planned]
    for path in [out / name for name in names] + [manifest_path(out)]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _refuse_unknown(out, job: Job, entries: dict) -> None:
    """Refuse entries that readers would take for data and that are not the job's parts."""
    expected = len(job.parts)
    unknown = []
    for name, entry in entries.items():
        if name.startswith((".", "_")):
            continue
        i = int(name[5:11]) if len(name) == 19 and name.startswith("part-") and name.endswith(".parquet") \
            and name[5:11].isdigit() else -1
        if not (0 <= i < expected and entry.is_file()):
            unknown.append(name)
    if unknown:
        unknown.sort()
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ScalesweepError(f"dataset {str(out)!r} holds {unknown[0]!r}{more}, which is not one of its "
                              f"{expected} parts; readers would take it for data: move it out of the directory")


def _remove_dead_temps(out) -> None:
    """Temporary files of runs that are gone: those of dead processes on this host, and part temps whose
    names carry no owner (no run names its temps so). A URI holds none (parts are uploaded whole)."""
    if isinstance(out, storage.Location):
        return
    remove_stale_temps(out)
    for tmp in out.glob(".part-*.tmp"):
        if "~" not in tmp.name:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _part_is_sound(path, rows: int, schema) -> bool:
    """A part with no manifest entry: the plan's row count, the job's schema and metadata, and every page
    reads back with its checksum."""
    import pyarrow.parquet as pq

    try:
        with storage.opened(path) as src:
            pf = pq.ParquetFile(src, page_checksum_verification=True)
            try:
                if pf.metadata.num_rows != rows or not pf.schema_arrow.equals(schema, check_metadata=True):
                    return False
                for _ in pf.iter_batches(batch_size=1 << 16):
                    pass
                return True
            finally:
                pf.close()
    except Exception:
        return False


def _verify(job: Job, out, manifest: Manifest, entries: dict) -> tuple[list[int], list[str], bool]:
    """Check the parts present against the manifest; returns (parts to compute, names of parts that failed and
    were removed, whether the manifest changed)."""
    files = manifest.files
    names = [part_name(i) for i in range(len(job.parts))]
    present = [i for i in range(len(job.parts)) if names[i] in entries]
    planned = set(names)
    changed = False
    for name in [n for n in files if n not in entries or n not in planned]:  # entries of parts not there
        del files[name]
        changed = True
    recorded = [i for i in present if names[i] in files]
    unrecorded = [i for i in present if names[i] not in files]

    def recorded_ok(i: int) -> bool:
        e = files[names[i]]
        try:
            if e["rows"] != job.part_rows(i) or e["bytes"] != entries[names[i]].stat().st_size:
                return False
            return file_digest(out / names[i])["sha256"] == e["sha256"]
        except (OSError, KeyError, TypeError):
            return False

    bad = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # hashing releases the GIL
        for i, ok in zip(recorded, pool.map(recorded_ok, recorded), strict=True):
            if not ok:
                bad.append(i)
        if unrecorded:
            start = job.parts[0][0]
            schema = job.compute(job.spec, start, start + 1)[0].schema  # every part has the same schema

            def check(i: int):
                path = out / names[i]
                return {"rows": job.part_rows(i), **file_digest(path)} if _part_is_sound(path, job.part_rows(i),
                                                                                         schema) else None

            for i, entry in zip(unrecorded, pool.map(check, unrecorded), strict=True):
                if entry is None:
                    bad.append(i)
                else:
                    files[names[i]] = entry
                    changed = True
    for i in bad:
        files.pop(names[i], None)
        with contextlib.suppress(FileNotFoundError):
            (out / names[i]).unlink()
        changed = True
    bad.sort()
    have = set(present) - set(bad)
    missing = [i for i in range(len(job.parts)) if i not in have]
    return missing, [names[i] for i in bad], changed


def prepare(job: Job, out) -> tuple[Job, Manifest, list[int], list[str]]:
    """Open the dataset in ``out`` for ``job`` (the caller holds the lock): check the spec and the entries,
    remove dead runs' temporary files, verify the parts present. Returns the job (with the first run's
    command line, so every part carries the same metadata), the manifest, the indices of the parts to compute
    and the names of parts that failed verification."""
    entries = _entries(out)
    data = None
    path = manifest_path(out)
    if not _is_fresh(entries) and path.is_file():  # beside a fresh directory a manifest is stale: replaced
        try:
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            raise ScalesweepError(f"dataset {str(out)!r}: its manifest {str(path)!r} is damaged; remove the "
                                  "directory and the manifest") from None
        if data.get("spec_hash") != job.spec_hash:
            raise ScalesweepError(f"dataset {str(out)!r} was written from a different spec (hash "
                                  f"{str(data.get('spec_hash'))[:12]}, this run {job.spec_hash[:12]}); use another "
                                  "directory or remove it")
        spec_hash = job.spec_hash
        job = replace(job, spec={**job.spec, "command_line": data.get("command_line")})
        job.__dict__["spec_hash"] = spec_hash  # the command line is not part of the hash
    elif not _is_fresh(entries):
        raise ScalesweepError(f"dataset {str(out)!r} exists and is not a scalesweep dataset (no manifest "
                              f"{str(path)!r}); use an empty or new directory")
    _refuse_unknown(out, job, entries)
    _remove_dead_temps(out)
    if data is None:
        manifest = Manifest(out, {"scalesweep_version": __version__, "kind": job.kind, "spec_hash": job.spec_hash,
                                  "parts": len(job.parts), "rows": job.rows, "complete": False,
                                  "command_line": job.spec.get("command_line"), "files": {}})
        manifest.write()
        return job, manifest, list(range(len(job.parts))), []
    manifest = Manifest(out, data)
    missing, recomputed, changed = _verify(job, out, manifest, entries)
    if missing and data.get("complete") is not False:
        data["complete"] = False
        data.pop("finished", None)
        changed = True
    if changed:
        manifest.write()
    return job, manifest, missing, recomputed


def finish(manifest: Manifest) -> None:
    """Mark the dataset complete in its manifest."""
    manifest.data.update(complete=True, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    manifest.write()


def _compute(job: Job, out, manifest: Manifest, missing: list[int], engine: str, client, progress,
             threads) -> list[dict]:
    """Compute and write the ``missing`` parts, recording each in the manifest as it lands."""
    done = len(job.parts) - len(missing)
    summaries = []
    if progress is not None:
        progress(done, len(job.parts))

    def landed(summary: dict, i: int) -> None:
        nonlocal done
        summaries.append({**summary, "index": i})
        manifest.record(part_name(i), summary["file"])
        done += 1
        if progress is not None:
            progress(done, len(job.parts))

    if engine == "local":
        for i in missing:
            start, stop = job.parts[i]
            landed(write_part(job.compute, job.spec, start, stop, str(out / part_name(i)), threads,
                              parquet_defaults()["compression"]), i)
        return summaries
    from distributed import as_completed

    # The spec (which may hold a budget file's values) goes to the cluster once, not with every task. Under a
    # key of its own (hash=False): a content-hashed key is the one an earlier run of the same job released,
    # and that release reaching the scheduler late would drop this run's copy ("lost dependencies").
    [spec] = client.scatter([job.spec], hash=False)
    codec = parquet_defaults()["compression"]
    futures = {client.submit(write_part, job.compute, spec, *job.parts[i], str(out / part_name(i)), -1, codec,
                             key=f"scalesweep-{job.spec_hash[:16]}-{i}", retries=3, pure=False): i
               for i in missing}
    try:
        for fut in as_completed(list(futures)):
            landed(fut.result(), futures[fut])
    except BaseException:
        client.cancel(list(futures))
        raise
    return summaries


def _running_on_worker(dask_worker, prefix: str) -> int:
    """How many tasks whose keys start with ``prefix`` a worker is still executing (cancelled ones included)."""
    busy = ("executing", "long-running", "cancelled", "resumed")
    return sum(1 for key, ts in dask_worker.state.tasks.items()
               if isinstance(key, str) and key.startswith(prefix) and ts.state in busy)


RUNNING_WAIT = 120.0  # seconds a failed Dask run waits for its parts in flight before cleaning up


def _wait_for_running(client, prefix: str) -> None:
    """Wait (up to ``RUNNING_WAIT``) until no worker executes a task of this job: a cancelled task that
    had started runs to its end and writes its part."""
    deadline = time.monotonic() + RUNNING_WAIT
    with contextlib.suppress(Exception):
        while time.monotonic() < deadline:
            if not sum(client.run(_running_on_worker, prefix=prefix).values()):
                return
            time.sleep(0.1)


def run(job: Job, outdir, *, engine: str = "local", client=None, progress=None, threads: int | None = None) -> dict:
    """Write every missing or damaged part of ``job`` into ``outdir``, holding the directory's lock. Returns rows,
    parts, parts computed, parts reused, the names of parts recomputed because they failed verification
    (``recomputed``), seconds, and the parts' summaries.

    A run into a directory it created or found empty that stops on a user error in computing a part (a
    ``ScalesweepError`` from the job's compute function, such as a bad row of the spec) removes its parts,
    manifest and lock, and the directory if it created it: a rerun would stop on the same error, so there is
    nothing to resume. Any other failure (an interrupt, a write error such as a full disk, a lost Dask
    worker), and any failure of a run into an existing dataset, keeps what landed for a resume."""
    if engine not in ("local", "dask"):
        raise ScalesweepError(f"unknown engine {engine!r} (local or dask)")
    t0 = time.perf_counter()
    out, created = _open_dir(outdir)
    if engine == "dask" and isinstance(out, storage.Location) and out.in_process:
        raise ScalesweepError(f"cannot write dataset {str(out)!r} with Dask: {out.scheme}:// lives in this process, "
                              "which the workers do not share")
    try:
        lock = take_lock(out)
    except BaseException:
        if created:  # another run's lock (it made the directory meanwhile), or none could be made
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    manifest = None
    fresh = False
    try:
        fresh = _is_fresh(_entries(out))
        job, manifest, missing, recomputed = prepare(job, out)
        summaries = _compute(job, out, manifest, missing, engine, client, progress, threads)
        _remove_dead_temps(out)  # of Dask tasks whose worker died mid-part (the task was retried)
        finish(manifest)
    except BaseException as exc:
        discard = fresh and isinstance(exc, ScalesweepError) and getattr(exc, "input_error", False)
        if discard:
            if engine == "dask":  # cancelled parts still running on a worker would land after the clean-up
                _wait_for_running(client, f"scalesweep-{job.spec_hash[:16]}-")
            with contextlib.suppress(OSError, ScalesweepError):
                _remove_written(job, out)
        elif manifest is not None and manifest.dirty:  # keep the entries of the parts that did land
            with contextlib.suppress(Exception):
                manifest.write()
        release_lock(out, lock)
        if discard and created:
            with contextlib.suppress(OSError):  # not empty: something else was put there meanwhile
                out.rmdir()
        raise
    release_lock(out, lock)
    infeasible: dict[str, int] = {}
    for s in summaries:
        for reason, count in s.get("infeasible", {}).items():
            infeasible[reason] = infeasible.get(reason, 0) + count
    return {"rows": job.rows, "parts": len(job.parts), "computed": len(missing),
            "reused": len(job.parts) - len(missing), "recomputed": recomputed, "seconds": time.perf_counter() - t0,
            "infeasible": infeasible, "part_summaries": {s["index"]: s for s in summaries}}


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client``: joined to ``scheduler``, or on a LocalCluster of ``workers`` processes that is
    shut down afterwards. The dashboard's address, when there is one, is logged (``scalesweep`` logger, INFO:
    a status line on stderr from the CLI)."""
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
            _log_dashboard(client)
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise ScalesweepError(f"--workers must be >= 1, got {n}")
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        _log_dashboard(client)
        yield client


def _log_dashboard(client) -> None:
    link = getattr(client, "dashboard_link", None)
    if link:
        logging.getLogger("scalesweep").info(f"Dask dashboard: {link}")


def read_dataset_metadata(outdir) -> dict:
    """The scalesweep metadata shared by every part of a dataset directory."""
    import pyarrow.dataset as ds

    out = storage.locate(outdir)
    remote = isinstance(out, storage.Location)
    md = ds.dataset(out.path if remote else str(out), format="parquet",
                    filesystem=out.fs if remote else None).schema.metadata or {}
    if METADATA_KEY not in md:
        raise ScalesweepError(f"{outdir}: no scalesweep metadata")
    return json.loads(md[METADATA_KEY])
