"""Where a file lives: a local path, or a URI on another filesystem.

A target is a URI when it starts with ``SCHEME://`` (a letter, then letters, digits, ``+``, ``-`` or ``.``;
two characters at least, so a Windows drive stays a path). ``locate`` turns a target into what the readers
and writers take:

- a local path (any ``str`` or ``os.PathLike`` without a scheme) is returned as it is, and ``file:///PATH``
  (or ``file://localhost/PATH``) becomes ``PATH``: both take the local code paths, with the local guarantees;
- ``s3://``, ``gs://`` (``gcs://``), ``hdfs://`` and ``abfs://`` become a ``Location`` on the filesystem
  ``pyarrow.fs.FileSystem.from_uri`` makes; any other scheme fsspec knows (``memory://``, ...) a ``Location``
  on the fsspec filesystem wrapped as a pyarrow one (``PyFileSystem(FSSpecHandler(...))``).

Credentials, endpoints and regions come from the environment as the libraries read it (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``GOOGLE_APPLICATION_CREDENTIALS``,
...), never from the URI: a URI with a user, a password or a query is refused, like one that names no file or
has a scheme nothing knows. A scheme whose package is missing (``gcsfs``, ``adlfs``, ...) is a one-line error
naming the ``pip install``.

Writing to a ``Location`` (``output.atomic_path``) goes to a local temporary file that is uploaded whole once
it is complete (``upload``). Reading: ``read_bytes`` for small text inputs (specs, law files); ``input_file``
for Parquet readers (a local path as it is, else a random-access Arrow file on the filesystem: only the
pages read are fetched); ``local_file`` for readers that need a file on disk (the CSV scanner seeks by byte
offset): a URI is downloaded once per process, while the object is unchanged, to a temporary directory that
is removed when the process exits (or by a later run, if the process was killed).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union
from urllib.parse import unquote, urlsplit

from .errors import ScalesweepError

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
PYARROW_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")
ALIASES = {"gcs": "gs"}  # schemes that name the same filesystem (for comparing targets)
OBJECT_STORES = ("s3", "gcs")  # pyarrow filesystem types whose first path component is a bucket
ENV_HINT = "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ..."
READ_ONLY_SCHEMES = ("http", "https")  # fsspec reads them; nothing can be written there
PROCESS_SCHEMES = ("memory",)  # filesystems inside this process: gone when it exits
# Whether this process ends with its command (the ``scalesweep`` console script, ``python -m scalesweep``):
# then an output in a ``PROCESS_SCHEMES`` filesystem would be lost, and is refused.
ONE_SHOT = False
# Schemes a name like ``file:x.parquet`` (one colon, no ``//``) was probably meant as.
KNOWN_SCHEMES = ("file", "memory", "http", "https", *PYARROW_SCHEMES)
_SCHEME_NO_SLASHES = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(?!//)")
# How long the Google Cloud client retries (a missing credential, an unreachable endpoint) before giving up;
# without a limit it retries for minutes inside a call that signals cannot interrupt.
GCS_RETRY_SECONDS = 10.0
# Who owns a temporary file or directory: this host and process (``output`` names its temporary files so).
HOST = socket.gethostname().replace(".", "_").replace("~", "_") or "host"
RUN_ID = f"{HOST}~{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if "OAuth2 access token" in text:  # the Google Cloud client, after its retries
        return "no Google Cloud credentials were found (GOOGLE_APPLICATION_CREDENTIALS, or run on Google Cloud)"
    return text.splitlines()[0] if text else type(exc).__name__


class Location:
    """A file (or directory) on a filesystem other than the local one: ``fs`` (a ``pyarrow.fs.FileSystem``),
    ``path`` (the filesystem's own path) and ``text`` (the URI as given, for messages). Paths join with ``/``
    like ``pathlib``: ``loc / "part-000000.parquet"``."""

    __slots__ = ("fs", "path", "text", "scheme")

    def __init__(self, fs: Any, path: str, text: str, scheme: str) -> None:
        self.fs, self.path, self.text, self.scheme = fs, path, text, scheme

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Location({self.text!r})"

    def __truediv__(self, name: str) -> Location:
        text = self.text if self.text.endswith("://") else f"{self.text.rstrip('/')}/"
        return Location(self.fs, f"{self.path.rstrip('/')}/{name}", text + name, self.scheme)

    @property
    def key(self) -> tuple[str, str]:
        """What two targets share when they are the same file."""
        return ALIASES.get(self.scheme, self.scheme), self.path.strip("/")

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.name)[1]

    @property
    def parent(self) -> Location:
        text = self.text.rstrip("/").rpartition("/")[0]
        return Location(self.fs, self.path.rstrip("/").rpartition("/")[0], text + "/" if text.endswith(":/") else text,
                        self.scheme)

    @property
    def in_process(self) -> bool:
        """Whether the filesystem lives in this process's memory (memory://): other processes do not see it."""
        return self.scheme == "memory"

    @property
    def bucket(self) -> str | None:
        """The bucket of an object store's path (None on other filesystems)."""
        return self.path.lstrip("/").partition("/")[0] if self.fs.type_name in OBJECT_STORES else None

    def info(self) -> Any:
        """The ``pyarrow.fs.FileInfo`` of this path; one line when the filesystem cannot be reached."""
        try:
            return self.fs.get_file_info(self.path)
        except (OSError, ValueError) as exc:  # unreachable, refused, or a path the filesystem cannot take
            raise ScalesweepError(f"cannot use {self.text!r}: {_first_line(exc)}") from None

    def kind(self) -> str:
        """What is there: "File", "Directory" (on an object store, a prefix objects are stored under) or
        "NotFound" (``pyarrow.fs.FileType`` names)."""
        return str(self.info().type.name)

    def is_file(self) -> bool:
        return self.kind() == "File"

    def is_dir(self) -> bool:
        return self.kind() == "Directory"

    def exists(self) -> bool:
        return self.kind() != "NotFound"

    def check_bucket(self) -> None:
        """One line if this path's bucket does not exist (object stores; nothing to check elsewhere)."""
        if self.bucket is not None and Location(self.fs, self.bucket, self.text, self.scheme).kind() == "NotFound":
            raise ScalesweepError(f"cannot use {self.text!r}: bucket {self.bucket!r} does not exist")

    def entries(self) -> dict[str, Any]:
        """``{name: FileInfo}`` of the files and subdirectories (prefixes) directly in this directory."""
        import pyarrow.fs as pafs

        try:
            found = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        except (OSError, ValueError) as exc:
            raise ScalesweepError(f"cannot list {self.text!r}: {_first_line(exc)}") from None
        return {info.base_name: info for info in found}

    def read_bytes(self) -> bytes:
        """The whole file (``FileNotFoundError`` if there is none, like ``Path.read_bytes``)."""
        with self.fs.open_input_stream(self.path) as fh:
            return fh.read()

    def unlink(self) -> None:
        """Remove the file (``FileNotFoundError`` if there is none, except on S3, whose deletes do not tell).
        On S3 through boto3 where it is installed: pyarrow's delete leaves an empty ``DIR/`` object behind
        (a directory marker), which readers of a prefix would take for a file."""
        client = _s3_client() if self.fs.type_name == "s3" else None
        if client is None:
            self.fs.delete_file(self.path)
            return
        bucket, _, key = self.path.partition("/")
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:  # botocore's errors are not OSErrors
            raise OSError(f"cannot remove {self.text!r}: {_first_line(exc)}") from None

    def remove_tree(self) -> None:
        """Remove this directory and everything under it."""
        import pyarrow.fs as pafs

        if self.fs.type_name != "s3" or _s3_client() is None:
            self.fs.delete_dir(self.path)
            return
        for info in self.fs.get_file_info(pafs.FileSelector(self.path, recursive=True, allow_not_found=True)):
            if info.type == pafs.FileType.File:
                (self / info.path[len(self.path):].strip("/")).unlink()


Local = Union[str, "os.PathLike[str]"]  # a local path
Target = Union[Local, Location]  # what the readers and writers take: a local path, a URI, or a Location


def is_uri(target: Target) -> bool:
    """Whether ``target`` is a URI (``file://`` included) rather than a plain local path."""
    return isinstance(target, Location) or (isinstance(target, str) and _SCHEME.match(target) is not None)


def locate(target: Target) -> Local | Location:
    """A local path (``target`` itself, or a ``file://`` URI's path) or a ``Location``; one line for a URI
    that cannot be used."""
    if not isinstance(target, str):
        return target  # a Location already, or an os.PathLike: always local
    m = _SCHEME.match(target)
    if m is None:
        half = _SCHEME_NO_SLASHES.match(target)
        if half is not None and half.group(1).lower() in KNOWN_SCHEMES:
            raise ScalesweepError(f"cannot use {target!r}: a URI is {half.group(1)}://...; for a local file of "
                                  f"that name write ./{target}")
        return target
    scheme = m.group(1).lower()
    if scheme == "file":
        return _file_path(target)
    parts = urlsplit(target)
    if "@" in parts.netloc:
        raise ScalesweepError(f"cannot use {redacted(target)!r}: credentials come from the environment "
                              f"({ENV_HINT}), not from the URI")
    if parts.query:
        raise ScalesweepError(f"cannot use {target!r}: options (endpoint, region, ...) come from the environment "
                              f"({ENV_HINT}), not from a query in the URI")
    if not target[m.end():].strip("/"):
        raise ScalesweepError(f"cannot use {target!r}: it names no file")
    fs, path = _filesystem(target, scheme)
    return Location(fs, path, target, scheme)


def redacted(text: str) -> str:
    """``text`` with the user and password of a URI replaced by ``***`` (for messages)."""
    m = _SCHEME.match(text)
    if m is None:
        return text
    netloc, slash, rest = text[m.end():].partition("/")
    if "@" not in netloc:
        return text
    return f"{text[:m.end()]}***@{netloc.rpartition('@')[2]}{slash}{rest}"


def object_key_problem(text: str, *, directory: bool = False) -> str | None:
    """Why the URI ``text`` cannot name an object (or, with ``directory``, a prefix) to write, from its text
    alone, before any network call: it names only a bucket, ends in ``/`` (for one object), or its scheme is
    read-only."""
    m = _SCHEME.match(text)
    if m is None:
        return None
    scheme = m.group(1).lower()
    if scheme in READ_ONLY_SCHEMES:
        return f"{scheme}:// is read-only (it can be an input, not an output)"
    if scheme in PROCESS_SCHEMES and ONE_SHOT:
        return f"{scheme}:// lives inside this process, which ends with the command; give a file or an object store"
    if not text[m.end():].strip("/"):
        return "it names no file"
    if text.endswith("/") and not directory:
        return "a name ending in / is a directory; give a file name"
    if scheme in ("s3", "gs", "gcs", "abfs", "abfss") and not urlsplit(text).path.strip("/"):
        return f"it names the bucket {urlsplit(text).netloc!r}, not an object in it; give {text.rstrip('/')}/NAME"
    return None


def _file_path(text: str) -> str:
    host, slash, rest = text[len("file://"):].partition("/")
    if not slash or host.lower() not in ("", "localhost"):
        raise ScalesweepError(f"cannot use {text!r}: a file:// URI names a path on this machine, "
                              "file:///ABSOLUTE/PATH")
    return unquote("/" + rest)


def _filesystem(text: str, scheme: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path) for a URI, or the one-line reason there is none."""
    if scheme in PYARROW_SCHEMES:
        import pyarrow as pa
        import pyarrow.fs as pafs

        try:
            if scheme in ("gs", "gcs"):
                import datetime

                parts = urlsplit(text)
                retry = datetime.timedelta(seconds=GCS_RETRY_SECONDS)
                return pafs.GcsFileSystem(retry_time_limit=retry), unquote(parts.netloc + parts.path)
            return pafs.FileSystem.from_uri(text)
        except pa.ArrowNotImplementedError:  # this pyarrow was built without it: fsspec may have it
            pass
        except (pa.ArrowInvalid, OSError) as exc:
            raise ScalesweepError(f"cannot use {text!r}: {_first_line(exc)}") from None
    try:
        import fsspec
    except ImportError:
        raise ScalesweepError(f"cannot use {text!r}: {scheme}:// needs fsspec: pip install fsspec") from None
    try:
        fs, path = fsspec.core.url_to_fs(text)
    except ImportError:
        from fsspec.registry import known_implementations

        known = known_implementations.get(scheme, {})
        package = str(known.get("class", scheme)).partition(".")[0]
        raise ScalesweepError(f"cannot use {text!r}: {scheme}:// needs the {package} package: "
                              f"pip install {package}") from None
    except ValueError as exc:
        if "not known" in str(exc).lower():
            raise ScalesweepError(f"cannot use {text!r}: unknown scheme {scheme!r} (a local path, file://, s3://, "
                                  "gs://, memory:// or another fsspec filesystem)") from None
        raise ScalesweepError(f"cannot use {text!r}: {_first_line(exc)}") from None
    except Exception as exc:  # a filesystem's own checks of the URI
        raise ScalesweepError(f"cannot use {text!r}: {_first_line(exc)}") from None
    import pyarrow.fs as pafs

    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def join(directory: Target, name: str) -> Target:
    """The file ``name`` in ``directory`` (a local path or a URI)."""
    loc = locate(directory)
    return loc / name if isinstance(loc, Location) else os.path.join(loc, name)


def shown(target: Target) -> str:
    """How messages name ``target``: a URI as given, a local path as ``pathlib`` writes it."""
    return str(target) if isinstance(target, Location) or is_uri(target) else str(Path(target))


def same(a: Target, b: Target) -> bool:
    """Whether two targets name the same file (a URI by its scheme and normalised path)."""
    a, b = locate(a), locate(b)
    if isinstance(a, Location) or isinstance(b, Location):
        return isinstance(a, Location) and isinstance(b, Location) and a.key == b.key
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


# ------------------------------------------------------------------------------------------- writing


def upload(local_path: Local, loc: Location) -> None:
    """Copy the finished local file ``local_path`` to ``loc``. The output stream is opened only now, is given
    the whole file in one call (memory-mapped, not read into memory) and is then closed: an object store
    completes the upload (one PUT, or a multipart upload completed at the end) only on that close, so no
    interrupt can fall between two pieces and commit part of the file, and a failed upload commits nothing."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(local_path)) as src:
            out = loc.fs.open_output_stream(loc.path)
            if src.size():
                out.write(src.read_buffer())
            out.close()
    except (OSError, NotImplementedError) as exc:  # fsspec filesystems that cannot write raise the latter
        raise ScalesweepError(f"cannot write {loc.text!r}: {_first_line(exc)}") from None


_EXCLUSIVE = threading.Lock()
S3_ENVIRONMENT = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION",
                  "AWS_DEFAULT_REGION")


def _s3_client() -> Any:
    """A boto3 S3 client configured from the environment (None without boto3); one per process and
    environment (making one takes a while)."""
    return _s3_client_for(os.getpid(), tuple(os.environ.get(name) for name in S3_ENVIRONMENT))


@functools.lru_cache(maxsize=4)
def _s3_client_for(pid: int, environment: tuple) -> Any:
    try:
        import boto3
    except ImportError:
        return None
    return boto3.client("s3")


def create_exclusive(loc: Location, data: bytes) -> bool:
    """Write ``data`` to ``loc`` unless something is there already; False if it was. On S3 a conditional
    PUT (``If-None-Match: *``, through boto3) decides between simultaneous writers; memory:// lives in one
    process, where a lock decides. Elsewhere (GCS, HDFS, other fsspec filesystems, S3 without boto3) the
    check and the write are two steps, so two runs starting at the same moment are not told apart."""
    client = _s3_client() if loc.fs.type_name == "s3" else None
    if client is not None:
        bucket, _, key = loc.path.partition("/")
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except Exception as exc:  # botocore's errors
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise ScalesweepError(f"cannot write {loc.text!r}: {_first_line(exc)}") from None
        return True
    with _EXCLUSIVE:
        if loc.exists():
            return False
        with tempfile.NamedTemporaryFile(prefix=".scalesweep-", suffix=".tmp") as tmp:
            tmp.write(data)
            tmp.flush()
            upload(tmp.name, loc)
    return True


# ------------------------------------------------------------------------------------------- reading


def read_bytes(target: Target) -> bytes:
    """The content of a (small) input file; ``FileNotFoundError`` if there is none."""
    loc = locate(target)
    return loc.read_bytes() if isinstance(loc, Location) else Path(loc).read_bytes()


def is_file(target: Target) -> bool:
    loc = locate(target)
    return loc.is_file() if isinstance(loc, Location) else os.path.isfile(loc)


def input_file(target: Target) -> Any:
    """What a Parquet reader opens: a local path as it is, or an open random-access Arrow file for a URI
    (the caller closes it); ``FileNotFoundError`` if there is no such file."""
    loc = locate(target)
    return loc.fs.open_input_file(loc.path) if isinstance(loc, Location) else loc


_COPIES: dict[tuple[str, str], tuple[tuple[int, int], str]] = {}  # Location.key -> ((size, mtime), local path)
_COPIES_LOCK = threading.Lock()
_COPIES_DIR: list[str] = []
COPIES_PREFIX = ".scalesweep-inputs."


def local_file(target: Target) -> Local:
    """A local path holding the input ``target``: the target itself when it is local (a ``file://`` URI's
    path); for another URI a copy, downloaded once per process while the object keeps its size and time,
    under the object's own name (so its suffix still tells its format). ``FileNotFoundError`` if there is no
    such file."""
    loc = locate(target)
    if not isinstance(loc, Location):
        return loc
    info = loc.info()
    if info.type.name != "File":
        raise FileNotFoundError(2, "No such file", loc.text)
    stamp = (info.size, info.mtime_ns)
    with _COPIES_LOCK:
        hit = _COPIES.get(loc.key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        folder = os.path.join(_copies_dir(), str(len(_COPIES)))
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, loc.name)
        with loc.fs.open_input_stream(loc.path) as src, open(path + ".part", "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        os.replace(path + ".part", path)
        _COPIES[loc.key] = (stamp, path)
        return path


def _copies_dir() -> str:
    """This process's directory of downloaded inputs (removed at exit); those of dead processes on this host
    are removed when it is made."""
    if not _COPIES_DIR:
        base = tempfile.gettempdir()
        for old in Path(base).glob(f"{COPIES_PREFIX}*~*.*"):
            host, _, pid = old.name[len(COPIES_PREFIX):].rpartition(".")[0].rpartition("~")
            if host == HOST and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        _COPIES_DIR.append(tempfile.mkdtemp(prefix=f"{COPIES_PREFIX}{RUN_ID}.", dir=base))
        atexit.register(shutil.rmtree, _COPIES_DIR[0], True)
    return _COPIES_DIR[0]


@contextlib.contextmanager
def opened(target: Target) -> Iterator[Any]:
    """``input_file`` as a context manager: an Arrow file opened here is closed on leaving."""
    src = input_file(target)
    try:
        yield src
    finally:
        if hasattr(src, "close"):
            src.close()
