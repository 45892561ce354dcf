"""Writing results: one atomic writer for every file the tool writes, and the formats a table can take.

Formats (``FORMATS``): ``parquet``, ``csv``, ``jsonl`` (one JSON object per line), ``json`` (one array of
objects), ``arrow`` (Arrow IPC file, which is Feather v2) and ``table`` (fixed-width text for a terminal).
A file's format follows its suffix unless ``--format`` says otherwise; an unknown suffix is an error. The
target ``-`` (or no ``-o``) is stdout: a fixed-width table on a terminal, CSV when piped.

A null (a missing value: see ``tables``) is an Arrow null in Parquet and Arrow files, an empty cell in CSV
and in the text table, and ``null`` in JSON. JSON output is strict JSON: infinities are written as ``null``
too. Parquet and Arrow files carry the ``scalesweep`` metadata and each column's field metadata; CSV and JSON
cannot.

Every local file is written to a temporary name beside the target (large files are written to disk while
they grow, by a background ``fdatasync`` after each large batch), flushed to disk (fsync), given the mode
any new file gets under the process umask (0644 under umask 022) and renamed into place; on any error or
interrupt the temporary file is removed and an older file of the target's name is kept. A target given as a
URI other than ``file://`` (``s3://``, ``gs://``, ``memory://``, ...; see ``storage``) is written to a local
temporary file (in ``tempfile.gettempdir()``, named the same way) and uploaded whole once it is complete
(``storage.upload``): the object appears only then, complete, and a failed or interrupted run leaves none.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import sys
import tempfile
from pathlib import Path

from . import storage
from .errors import ScalesweepError

FORMATS = ("parquet", "csv", "jsonl", "json", "arrow", "table")
SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".json": "json", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow", ".txt": "table"}
BINARY_FORMATS = ("parquet", "arrow")
STDOUT = "-"
# Parquet compression codecs offered (``--compression``). The default is snappy: measured on this project's
# outputs (a 16.8M-point surface, 5M scenarios), zstd files are 16-34% smaller but take 35-70% longer to
# write; lz4 is no smaller than snappy here; none is the fastest to write and the largest. "none" is
# pyarrow's "NONE".
COMPRESSIONS = ("snappy", "zstd", "lz4", "none")
DEFAULT_COMPRESSION = "snappy"
_compression: str | None = None  # --compression for the running command; None: the default


def set_compression(name: str | None) -> None:
    """The Parquet codec of every table written from now on (None: back to the default)."""
    global _compression
    if name is not None and name not in COMPRESSIONS:
        raise ScalesweepError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got {name!r}")
    _compression = name


_columns: tuple[str, ...] | None = None  # --columns for the running command; None: every column


def set_columns(names) -> None:
    """Write only these columns, in this order, in every table from now on (None: every column)."""
    global _columns
    if names is not None:
        names = tuple(n.strip() for n in names)
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            raise ScalesweepError(f"--columns must name columns once each, separated by commas, got {','.join(names)!r}")
    _columns = names


def columns_given() -> bool:
    return _columns is not None


def _project(schema):
    """The schema written under ``--columns`` (the selected fields, in the order given)."""
    if _columns is None:
        return schema
    unknown = [n for n in _columns if n not in schema.names]
    if unknown:
        raise ScalesweepError(f"--columns: no column {unknown[0]!r} in this output (columns: {', '.join(schema.names)})")
    import pyarrow as pa

    return pa.schema([schema.field(n) for n in _columns], metadata=schema.metadata)


FLOAT_DTYPES = ("float64", "float32")
_dtype: str | None = None  # --dtype for the running command; None: float64


def set_float_dtype(name: str | None) -> None:
    """The type of computed float columns in every table written from now on (None: back to float64)."""
    global _dtype
    if name is not None and name not in FLOAT_DTYPES:
        raise ScalesweepError(f"--dtype must be float64 or float32, got {name!r}")
    _dtype = name


def float_dtype() -> str:
    """``--dtype`` of the running command: "float64" (the default) or "float32"."""
    return _dtype or "float64"


def compression_given() -> bool:
    return _compression is not None


def parquet_defaults() -> dict:
    """The writer options every Parquet file gets (before a writer's own, such as dictionary columns)."""
    return {"compression": _compression or DEFAULT_COMPRESSION}


def dictionary_columns(schema) -> list[str]:
    """The columns a Parquet file dictionary-encodes unless its writer names others: the categorical ones (Arrow
    dictionaries). pyarrow's default tries every column and falls back where values do not repeat, which on a
    streamed table of unique floats costs more than the rest of the encoding."""
    import pyarrow as pa

    return [f.name for f in schema if pa.types.is_dictionary(f.type)]


def jsonable(obj, nonfinite: str = "string"):
    """``obj`` with numpy scalars as Python numbers and non-finite floats as ``"inf"``/``"-inf"``/``"nan"``
    (``nonfinite="string"``: law files read them back) or ``None`` (``"null"``: tables), so the JSON is strict."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if nonfinite == "null" else ("nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf"))
    if isinstance(obj, dict):
        return {str(k): jsonable(v, nonfinite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, nonfinite) for v in obj]
    if hasattr(obj, "tolist"):  # numpy array or scalar
        return jsonable(obj.tolist(), nonfinite)
    return obj


def stdout_is_terminal() -> bool:
    return sys.stdout is not None and sys.stdout.isatty()


STDOUT_CLOSED = "standard output is closed: give -o FILE"


class ClosedStdout(io.TextIOBase):
    """Stands in for ``sys.stdout`` when the process was started without one (``>&-``): writing data to it is
    the one-line error, everything else (status lines go to stderr) works."""

    def writable(self) -> bool:
        return True

    def write(self, text):
        raise ScalesweepError(STDOUT_CLOSED)

    @property
    def buffer(self):
        raise ScalesweepError(STDOUT_CLOSED)

    def flush(self):
        pass


def stdout():
    """The standard output stream; one line if the process was started without one."""
    if sys.stdout is None:
        raise ScalesweepError(STDOUT_CLOSED)
    return sys.stdout


def resolve_format(output, fmt: str | None) -> str:
    """The format of a table written to ``output`` (a path, ``-`` or None for stdout)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ScalesweepError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
        return fmt
    if output is None or str(output) == STDOUT:
        return "table" if stdout_is_terminal() else "csv"
    suffix = Path(str(output)).suffix.lower()
    if suffix not in SUFFIXES:
        raise ScalesweepError(f"cannot tell the format of {str(output)!r} from its suffix ({', '.join(SUFFIXES)}); "
                              "give --format")
    return SUFFIXES[suffix]


def check_target(path, inputs=()):
    """The file to write for ``-o path``, checked before any computing is done; one line if it cannot be.

    Only regular files are written: a directory, device, FIFO or socket is refused, and so is a name ending in
    ``/`` (a directory). A symbolic link is followed: the file it points to is replaced and the link stays.
    ``inputs`` are the files the command reads: writing over one of them is refused. A URI is checked on its
    filesystem (``_check_remote``) and returned as a ``storage.Location``; a local path (``file://`` URIs
    included) is returned as a ``Path``.
    """
    if storage.is_uri(path) and (problem := storage.object_key_problem(str(path))) is not None:
        raise ScalesweepError(f"cannot write {storage.redacted(str(path))!r}: {problem}")
    target = storage.locate(path)
    if isinstance(target, storage.Location):
        return _check_remote(target, inputs)
    text = str(target)
    if text.endswith(("/", os.sep)):
        raise ScalesweepError(f"cannot write {text!r}: a name ending in / is a directory; give a file name")
    path = Path(os.path.realpath(text)) if os.path.islink(text) else Path(text)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ScalesweepError(f"cannot write {text!r}: it is a directory")
    if path.exists() and not path.is_file():
        raise ScalesweepError(f"cannot write {text!r}: it is not a regular file (a device, FIFO or socket); "
                              "scalesweep writes only regular files")
    if not parent.is_dir():
        raise ScalesweepError(f"cannot write {text!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScalesweepError(f"cannot write {text!r}: directory {str(parent)!r} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ScalesweepError(f"cannot write {text!r}: file is not writable")
    _refuse_inputs(path, text, inputs)
    return path


def _check_remote(loc, inputs):
    """A URI target (its text already checked by ``storage.object_key_problem``): not a directory (on an
    object store, a prefix that objects are stored under), its bucket exists, and it is none of ``inputs``."""
    text = str(loc)
    if loc.is_dir():
        raise ScalesweepError(f"cannot write {text!r}: it is a directory (objects are stored under {text}/)")
    loc.check_bucket()
    _refuse_inputs(loc, text, inputs)
    return loc


def _refuse_inputs(target, text: str, inputs) -> None:
    for source in inputs:
        if source is not None and str(source) != STDOUT and storage.same(target, source):
            raise ScalesweepError(f"cannot write {text!r}: it is an input of this command ({str(source)!r}); "
                                  "give another output name")


# Temporary files are named ``.<target>.<host>~<pid>.<random>.tmp``: the run that owns one can be told apart,
# and a later run removes those whose process is gone (killed with SIGKILL, or a crashed machine's process
# on this host). The run's identity (``HOST``, ``RUN_ID``, ``_alive``) lives in ``storage``, whose downloaded
# inputs are owned the same way.
HOST, RUN_ID, _alive = storage.HOST, storage.RUN_ID, storage._alive


def remove_stale_temps(directory, target: str = "*") -> list[str]:
    """Remove the temporary files of ``target`` (a name or a glob) in ``directory`` that were left by dead
    processes on this host; returns their names. Files of live runs and of other hosts are kept."""
    removed = []
    for tmp in Path(directory).glob(f".{target}.*~*.*.tmp"):
        owner = tmp.name[:-len(".tmp")].rsplit(".", 2)
        if len(owner) != 3 or "~" not in owner[1]:
            continue
        host, _, pid = owner[1].rpartition("~")
        if host == HOST and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp.name)
    return removed


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask (0o644 under umask 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` to write; on success it is synced, given the umask's file mode
    and renamed to ``path``; on any exception (KeyboardInterrupt included) it is removed and ``path`` is left
    as it was. For a URI the temporary file is local and is uploaded whole on success (``storage.upload``)."""
    path = check_target(path)
    remote = isinstance(path, storage.Location)
    folder = tempfile.gettempdir() if remote else path.parent
    remove_stale_temps(folder, path.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{RUN_ID}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ScalesweepError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield tmp
        if remote:
            storage.upload(tmp, path)
            os.unlink(tmp)
            return
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_json(path, data, *, nonfinite: str = "string") -> None:
    """A JSON document (law files, manifests), strict JSON, written atomically; ``-`` writes to stdout."""
    text = json.dumps(jsonable(data, nonfinite), indent=1, allow_nan=False) + "\n"
    if str(path) == STDOUT:
        stdout().write(text)
        stdout().flush()
        return
    write_bytes(path, text.encode())


# --------------------------------------------------------------------------------------------- tables


def _plain(batch):
    """Dictionary columns decoded to strings (what CSV, JSON and text writers take)."""
    import pyarrow as pa

    cols = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _json_values(col) -> list[str]:
    """A column's values as JSON texts: shortest round-trip floats (non-finite and null as ``null``);
    a dictionary column encodes each distinct value once."""
    import pyarrow as pa

    if pa.types.is_dictionary(col.type):
        texts = [json.dumps(v) for v in col.dictionary.to_pylist()] + ["null"]
        codes = col.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return [texts[i] for i in codes.tolist()]
    if pa.types.is_floating(col.type):  # Arrow's shortest round-trip formatting, as in the CSV writer
        import pyarrow.compute as pc

        finite = pc.is_finite(col)
        text = pc.cast(pc.if_else(finite, col, pa.scalar(0.0, col.type)), pa.string())
        return pc.if_else(pc.fill_null(finite, False), text, pa.scalar("null")).to_pylist()
    values = col.to_pylist()
    if pa.types.is_boolean(col.type):
        return ["null" if v is None else ("true" if v else "false") for v in values]
    if pa.types.is_integer(col.type):
        return ["null" if v is None else str(v) for v in values]
    return [json.dumps(v) for v in values]


def _json_rows(batch) -> list[str]:
    """One JSON object per row, built column by column (a dict per row would be several times slower)."""
    template = "{{" + ",".join(json.dumps(name).replace("{", "{{").replace("}", "}}") + ":{}"
                               for name in batch.schema.names) + "}}"
    return [template.format(*row) for row in zip(*(_json_values(c) for c in batch.columns), strict=True)]


def _format_values(col) -> list[str]:
    import pyarrow as pa

    if pa.types.is_floating(col.type):
        return ["" if v is None else f"{v:.6g}" for v in col.to_pylist()]
    return ["" if v is None else str(v) for v in col.to_pylist()]


class _TextTable:
    """Fixed-width columns, right-aligned, widths set by the header and the first batch."""

    def __init__(self, sink, schema):
        self.sink, self.names, self.widths = sink, schema.names, None

    def write(self, batch):
        cols = [_format_values(c) for c in _plain(batch).columns]
        if self.widths is None:
            self.widths = [max([len(n), *map(len, c)]) for n, c in zip(self.names, cols, strict=True)]
            self._line(self.names)
        for row in zip(*cols, strict=True):
            self._line(row)

    def _line(self, values):
        line = "  ".join(v.rjust(w) for v, w in zip(values, self.widths, strict=True))
        self.sink.write((line.rstrip() + "\n").encode())

    def close(self):
        if self.widths is None:  # no rows: the header alone
            self.widths = [len(n) for n in self.names]
            self._line(self.names)


class _Lines:
    """JSON Lines, or one JSON array when ``array``."""

    def __init__(self, sink, array: bool):
        self.sink, self.array, self.first = sink, array, True
        if array:
            sink.write(b"[")

    def write(self, batch):
        for row in _json_rows(batch):
            if self.array:
                self.sink.write(("\n" if self.first else ",\n").encode())
            self.sink.write(row.encode() + (b"" if self.array else b"\n"))
            self.first = False

    def close(self):
        if self.array:
            self.sink.write(b"\n]\n" if not self.first else b"]\n")


class _Csv:
    def __init__(self, sink, schema):
        self.sink, self.writer = sink, None

    def write(self, batch):
        import pyarrow.csv as pcsv

        batch = _plain(batch)
        if self.writer is None:
            try:  # column names unquoted, like any CSV writer (pyarrow >= 17 has the option)
                options = pcsv.WriteOptions(quoting_style="needed", quoting_header="none")
            except TypeError:
                options = pcsv.WriteOptions(quoting_style="needed")
            self.writer = pcsv.CSVWriter(self.sink, batch.schema, write_options=options)
        self.writer.write_batch(batch)

    def close(self):
        if self.writer is not None:
            self.writer.close()


FLUSH_ROWS = 1 << 16  # batches of at least this many rows start writing the file to disk while it grows


class _Flusher:
    """Writes a growing file's bytes to disk while the file is still being written: ``kick()`` (after each
    batch) asks a background thread to ``fdatasync`` what has been written so far, so the final fsync of
    ``atomic_path`` has only the tail left (a 187 MiB file's fsync otherwise adds about 0.25 s after the
    encoding). Requests made while a sync runs merge into one. Best effort: a failed sync is ignored here,
    because the final fsync, which raises, still follows."""

    def __init__(self, path):
        import threading

        self._fd = os.open(path, os.O_RDONLY)
        self._cond = threading.Condition()
        self._wanted = self._closing = False
        self._thread = threading.Thread(target=self._run, name="scalesweep-flush", daemon=True)
        self._thread.start()

    def _run(self):
        sync = getattr(os, "fdatasync", os.fsync)
        while True:
            with self._cond:
                while not (self._wanted or self._closing):
                    self._cond.wait()
                if not self._wanted:
                    return
                self._wanted = False
            with contextlib.suppress(OSError):
                sync(self._fd)

    def kick(self):
        with self._cond:
            self._wanted = True
            self._cond.notify()

    def close(self):
        """Stop the thread (a sync in progress is finished first) and release the file."""
        with self._cond:
            self._wanted, self._closing = False, True
            self._cond.notify()
        self._thread.join()
        os.close(self._fd)


class TableWriter:
    """Streams record batches to a file or stdout in one format; ``close()`` commits (a file appears under
    its name only then), ``abort()`` discards. With ``digest`` a file's ``file_digest`` (size and SHA-256 of
    the bytes committed) is kept in ``self.digest`` on close."""

    def __init__(self, output, schema, fmt: str, *, parquet_options: dict | None = None, digest: bool = False):
        self.fmt, self.schema = fmt, _project(schema)  # --columns: the columns written
        self.want_digest, self.digest = digest, None
        self._fields = [(f.name, f.type) for f in schema]  # every batch must have exactly these columns
        self._select = self.schema.names if _columns is not None else None
        self.to_stdout = output is None or str(output) == STDOUT
        self._atomic = None
        self._flusher: _Flusher | None = None
        self._local = not self.to_stdout and not storage.is_uri(str(output))  # a file of this machine's
        if self.to_stdout:
            self._buffer = io.BytesIO() if fmt in BINARY_FORMATS else None
            self.sink = self._buffer if self._buffer is not None else stdout().buffer
        else:
            self._atomic = atomic_path(output)
            self._tmp = self._atomic.__enter__()
            self.sink = self._tmp
        try:
            self._open(parquet_options or {})
        except BaseException:
            self.abort()
            raise

    def _open(self, parquet_options):
        import pyarrow as pa

        fmt, sink = self.fmt, self.sink
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._w = pq.ParquetWriter(sink, self.schema, **{**parquet_defaults(),
                                                             "use_dictionary": dictionary_columns(self.schema),
                                                             **parquet_options})
        elif fmt == "arrow":  # an IPC file cannot change a dictionary between batches: strings instead
            self.schema = pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
                                     for f in self.schema], metadata=self.schema.metadata)
            self._w = pa.ipc.new_file(sink, self.schema)
        else:
            if isinstance(sink, str):
                self._fh = open(sink, "wb")  # noqa: SIM115  (closed in close/abort)
                sink = self._fh
            self._w = {"csv": lambda: _Csv(sink, self.schema), "jsonl": lambda: _Lines(sink, False),
                       "json": lambda: _Lines(sink, True), "table": lambda: _TextTable(sink, self.schema)}[fmt]()

    def write(self, batch, row_group_size: int | None = None):
        """Write a RecordBatch (or every batch of a Table)."""
        if hasattr(batch, "to_batches"):
            for b in batch.to_batches():
                self.write(b)
            return
        if [(f.name, f.type) for f in batch.schema] != self._fields:  # a writer given other columns may crash
            raise RuntimeError(f"batch columns {batch.schema.names} differ from the output's "
                               f"{[name for name, _ in self._fields]}")
        if self._select is not None:
            batch = batch.select(self._select)
        if self.fmt == "parquet":
            self._w.write_batch(batch, row_group_size=row_group_size or max(1, batch.num_rows))
        else:
            self._w.write(batch) if self.fmt != "arrow" else self._w.write_batch(_plain(batch))
        if self._local and batch.num_rows >= FLUSH_ROWS:
            if self._flusher is None:
                try:
                    self._flusher = _Flusher(self._tmp)
                except OSError:  # the file cannot be opened again: the final fsync does all the syncing
                    self._local = False
                    return
            self._flusher.kick()

    def _stop_flusher(self):
        if self._flusher is not None:
            flusher, self._flusher = self._flusher, None
            flusher.close()

    def close(self):
        try:
            self._w.close()
            self._stop_flusher()
            if getattr(self, "_fh", None) is not None:
                self._fh.close()
            if self.to_stdout:
                if self._buffer is not None:
                    stdout().buffer.write(self._buffer.getvalue())
                stdout().flush()
            if self._atomic is not None and self.want_digest:
                self.digest = file_digest(self._tmp)
        except BaseException:
            self.abort()
            raise
        if self._atomic is not None:
            self._atomic.__exit__(None, None, None)

    def abort(self):
        with contextlib.suppress(Exception):
            if getattr(self, "_fh", None) is not None:
                self._fh.close()
        with contextlib.suppress(Exception):
            self._stop_flusher()
        if self._atomic is not None:
            exc = sys.exc_info()
            with contextlib.suppress(BaseException):
                self._atomic.__exit__(*(exc if exc[0] is not None else (RuntimeError, RuntimeError("aborted"), None)))
            self._atomic = None


@contextlib.contextmanager
def table_writer(output, schema, fmt: str | None = None, *, parquet_options: dict | None = None,
                 digest: bool = False):
    """``with table_writer(path, schema) as w: w.write(batch)``: the file appears only if the block succeeds."""
    w = TableWriter(output, schema, resolve_format(output, fmt), parquet_options=parquet_options, digest=digest)
    try:
        yield w
    except BaseException:
        w.abort()
        raise
    w.close()


def write_table(output, table, fmt: str | None = None, *, digest: bool = False, **parquet_options):
    """A whole in-memory table to a file or stdout; with ``digest``, returns the file's ``file_digest``."""
    with table_writer(output, table.schema, fmt, parquet_options=parquet_options, digest=digest) as w:
        w.write(table, row_group_size=max(1, table.num_rows))
    return w.digest


def file_digest(path) -> dict:
    """``{"bytes": size, "sha256": hex}`` of a file's content (a URI's object is read as a stream)."""
    h, size = hashlib.sha256(), 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    loc = storage.locate(path)
    remote = isinstance(loc, storage.Location)
    with (loc.fs.open_input_stream(loc.path) if remote else open(loc, "rb", buffering=0)) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
            size += n
    return {"bytes": size, "sha256": h.hexdigest()}

