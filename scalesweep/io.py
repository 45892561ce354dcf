"""Arrow/Parquet output: self-describing metadata and atomic writes.

Every table carries one key-value entry, ``scalesweep``, holding JSON: tool version, command, law
(family, preset, parameters, citation), constraints, grid and the command line. Files are written to a
temporary name beside the target and renamed into place only when complete, so a failed or interrupted
run never leaves a partial file under the target name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .errors import ScalesweepError

METADATA_KEY = b"scalesweep"
WRITE_OPTIONS = dict(compression="snappy")


def _jsonable(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return obj.item()
    return obj


def make_metadata(**fields) -> dict[bytes, bytes]:
    return {METADATA_KEY: json.dumps(_jsonable({"scalesweep_version": __version__, **fields})).encode()}


def read_metadata(path) -> dict:
    """The scalesweep JSON metadata of a Parquet file written by this tool."""
    md = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in md:
        raise ScalesweepError(f"{path}: no scalesweep metadata (not written by scalesweep?)")
    return json.loads(md[METADATA_KEY])


def check_output_path(path) -> Path:
    """Fail early, with one line, if ``path`` cannot be written (before any computing is done)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ScalesweepError(f"cannot write {str(path)!r}: it is a directory")
    if not parent.is_dir():
        raise ScalesweepError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScalesweepError(f"cannot write {str(path)!r}: directory {str(parent)!r} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ScalesweepError(f"cannot write {str(path)!r}: file is not writable")
    return path


@contextlib.contextmanager
def atomic_parquet_writer(path, schema: pa.Schema, metadata: dict[bytes, bytes], **options):
    """Yield a ``pq.ParquetWriter`` on a temporary file beside ``path``; rename it into place on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed and the target is left
    untouched (an older file of that name survives).
    """
    path = check_output_path(path)
    schema = schema.with_metadata(metadata)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ScalesweepError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    writer = None
    try:
        writer = pq.ParquetWriter(tmp, schema, **{**WRITE_OPTIONS, **options})
        yield writer
        writer.close()
        writer = None
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_table(path, table: pa.Table, metadata: dict[bytes, bytes], **options) -> None:
    """Write a whole in-memory table atomically."""
    with atomic_parquet_writer(path, table.schema, metadata, **options) as w:
        w.write_table(table)


def read_table_file(path, what: str):
    """A whole CSV or Parquet file (by suffix) as a DataFrame; one-line errors naming ``what``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ScalesweepError(f"{what} {str(path)!r} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path).to_pandas()
        return pd.read_csv(path)
    except Exception as exc:  # malformed file: pyarrow/pandas raise many types
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScalesweepError(f"cannot read {what} {str(path)!r}: {msg}") from None
