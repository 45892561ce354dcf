"""Reading user inputs: CSV or Parquet tables (by suffix), with one-line errors naming the file and row.

CSV files are checked for their shape before pandas reads their values (``scan_csv``): every record must have
as many fields as the header, so that a row with a field too many is never taken for an index column and a
row with one too few never reads as empty cells. The scan follows pandas' own reading of the file: records
end at ``\\n`` or ``\\r\\n`` outside quotes (a ``\\r`` alone, which pandas reads inconsistently, is refused);
lines of spaces and tabs only are skipped; a quote opens a quoted field only at the start of a field (after
spaces too with ``skipinitialspace``) or right after the quote that closed one (``""`` inside a quoted field
is a quote), and any other quote is part of the field. Quoted fields may hold delimiters and line breaks.
The scan also keeps the byte offset of every ``CSV_STRIDE``-th data row, so that a part of a large table is
read from its own rows (``csv_row_offset``) instead of from the top of the file.

A table may be given as a URI (``s3://...``, ``memory://...``; see ``storage``): a Parquet file is read
through its filesystem, a CSV file from a local copy (``storage.local_file``: the scan needs byte offsets in a
file on disk); messages name the URI.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import storage
from .errors import ScalesweepError

CSV_STRIDE = 4096  # the scan keeps the byte offset of every CSV_STRIDE-th data row
SCAN_BLOCK = 1 << 24  # bytes the scan looks at in one step
_QUOTE, _COMMA, _LF, _CR, _SPACE, _TAB = 34, 44, 10, 13, 32, 9
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class CsvLayout:
    """What ``scan_csv`` found: the header's fields, where the data rows start, and the first shape error."""

    header: tuple  # the header's field names as the csv module reads them (for duplicate checks)
    fields: int  # fields per record
    rows: int  # data rows (blank lines not counted)
    marks: np.ndarray  # byte offset of data row k * CSV_STRIDE, k = 0, 1, ...
    skipinitialspace: bool
    ragged: tuple | None = None  # (byte offset, field count) of the first record whose count is not ``fields``
    open_quote: int | None = None  # byte offset of a quote that opens a field never closed
    lone_cr: int | None = None  # byte offset of the first line break that is a \r without \n

    def check(self, path, where: str) -> None:
        """Raise the shape error found, if any, as one line naming the line: ``{where}, line N: ...``."""
        if self.open_quote is not None:
            raise ScalesweepError(f"cannot read {where}: line {line_of(path, self.open_quote)}: a quoted field "
                                  "is not closed")
        if self.lone_cr is not None:
            raise ScalesweepError(f"cannot read {where}: line {line_of(path, self.lone_cr)} ends in \\r alone; "
                                  "save the file with \\n or \\r\\n line breaks")
        if self.ragged is not None:
            pos, n = self.ragged
            raise ScalesweepError(f"{where}, line {line_of(path, pos)}: {_plural(n, 'field')}, the header has "
                                  f"{self.fields}")

    def check_names(self, names, where: str) -> None:
        """Refuse a header pandas reads as another number of columns than the scan found (a safeguard: the
        two read files alike)."""
        if len(names) != self.fields:
            raise ScalesweepError(f"cannot read {where}: its header reads as {len(names)} columns but has "
                                  f"{self.fields} fields")

    def duplicate(self) -> str | None:
        """A column name the header gives twice, if any."""
        seen = set()
        for name in self.header:
            if name in seen:
                return name
            seen.add(name)
        return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Scan:
    """The CSV record scanner: fed consecutive blocks of a file, it classifies quotes, delimiters and line
    breaks (inside or outside quoted fields) with numpy and yields the records it completes."""

    def __init__(self, fh, size: int, start: int, skipinitialspace: bool):
        self.fh, self.size, self.skip_space = fh, size, skipinitialspace
        self.file_start = start  # the start of the file (after a UTF-8 byte order mark) or of a data row
        self.inside = False  # inside a quoted field
        self.last_close = -2  # position of the quote that last closed a quoted field
        self.last_open = -1
        self.rec_start = start  # where the record being read started
        self.rec_delims = 0  # its delimiters so far
        self.rec_content = False  # whether it has a byte other than space, tab or \r so far
        self.prev = None  # the byte before the current block (None: start of the file)
        self.lone_cr = None  # the first \r outside quotes without a \n after it

    def _byte(self, pos: int) -> int | None:
        if pos < self.file_start:
            return None
        self.fh.seek(pos)
        return self.fh.read(1)[0]

    def _field_start(self, pos: int, buf: np.ndarray, a: int) -> bool:
        """Whether position ``pos`` begins a field (a quote there opens a quoted field)."""
        p = pos - 1
        while True:
            b = buf[p - a] if p >= a else (self.prev if p == a - 1 else self._byte(p))
            if b is None or b in (_COMMA, _LF, _CR):
                return True
            if not (self.skip_space and b == _SPACE):
                return False
            p -= 1

    def _toggles(self, q: np.ndarray, buf: np.ndarray, a: int) -> np.ndarray:
        """Positions (in the block) of the quotes that open or close a quoted field."""
        if not q.size:
            return q
        # Fast path: every quote opens or closes (well-formed quoting); check the opening ones.
        k = np.arange(q.size)
        opening = ((k + self.inside) % 2) == 0
        qo = q[opening]
        prev = np.empty(qo.size, dtype=np.int16)
        inner = qo > 0
        prev[inner] = buf[qo[inner] - 1]
        prev[~inner] = _COMMA if a == self.file_start else self.prev  # the start of the file begins a field
        ok = (prev == _COMMA) | (prev == _LF) | (prev == _CR)
        after_close = np.zeros(qo.size, dtype=bool)
        ko = k[opening]
        has_prev_quote = ko > 0
        after_close[has_prev_quote] = q[ko[has_prev_quote] - 1] == qo[has_prev_quote] - 1
        after_close[~has_prev_quote] = self.last_close == a + qo[~has_prev_quote] - 1
        ok |= after_close
        if not ok.all() and self.skip_space:
            for i in np.flatnonzero(~ok & (prev == _SPACE)):
                ok[i] = self._field_start(a + int(qo[i]), buf, a)
        if ok.all():
            closing = q[~opening]
            if closing.size:
                self.last_close = a + int(closing[-1])
            if qo.size:
                self.last_open = a + int(qo[-1])
            self.inside = bool((self.inside + q.size) % 2)
            return q
        # Exact path: quote by quote, as pandas reads them.
        out = []
        for p in q.tolist():
            g = a + p
            if self.inside:
                out.append(p)
                self.inside, self.last_close = False, g
            elif self.last_close == g - 1 or self._field_start(g, buf, a):
                out.append(p)
                self.inside, self.last_open = True, g
        return np.asarray(out, dtype=np.intp)

    def blocks(self, block: int):
        """Yield (starts, delimiters) of the records completed in each block (global byte offsets; a record's
        delimiters outside quotes, -1 for a blank line); the last record may end at the end of the file."""
        a = self.file_start
        fh, size = self.fh, self.size
        while a < size:
            fh.seek(a)
            raw = fh.read(min(block, size - a) + 1)  # one byte more: what follows the block
            buf = np.frombuffer(raw, dtype=np.uint8)
            n = min(block, size - a)
            w = buf[:n]
            q = np.flatnonzero(w == _QUOTE)
            term = np.flatnonzero(w == _LF)
            cr = np.flatnonzero(w == _CR)
            lone = cr[np.append(buf, 0)[cr + 1] != _LF] if cr.size else cr  # a \r without a \n after it
            if lone.size:
                term = np.union1d(term, lone)
            delim = np.flatnonzero(w == _COMMA)
            inside0 = self.inside
            tog = self._toggles(q, buf, a)
            if tog.size:
                term = term[(np.searchsorted(tog, term) + inside0) % 2 == 0]
                delim = delim[(np.searchsorted(tog, delim) + inside0) % 2 == 0]
                lone = lone[(np.searchsorted(tog, lone) + inside0) % 2 == 0]
            elif inside0:
                term, delim, lone = term[:0], delim[:0], lone[:0]
            if lone.size and self.lone_cr is None:
                self.lone_cr = a + int(lone[0])
            c = np.searchsorted(delim, term)
            counts = np.diff(c, prepend=0)
            if counts.size:
                counts[0] += self.rec_delims
            starts = np.empty(term.size, dtype=np.int64)
            if term.size:
                starts[0] = self.rec_start
                starts[1:] = a + term[:-1] + 1
            # Blank lines: no delimiter and nothing but spaces, tabs and \r.
            cand = np.flatnonzero(counts == 0)
            tail_from = int(term[-1]) + 1 if term.size else 0
            if cand.size:
                ws = np.flatnonzero((w == _SPACE) | (w == _TAB) | (w == _CR))
                lo = np.where(cand == 0, 0, term[cand - 1] + 1)
                hi = term[cand]
                blank = (hi - lo) == (np.searchsorted(ws, hi) - np.searchsorted(ws, lo))
                if cand[0] == 0 and self.rec_content:
                    blank[0] = False
                counts[cand[blank]] = -1
            # Carry the record that runs past this block.
            if term.size:
                self.rec_start = a + tail_from
                self.rec_delims = delim.size - int(c[-1])
                self.rec_content = False
            else:
                self.rec_delims += delim.size
            tail = w[tail_from:]
            if tail.size and ((tail != _SPACE) & (tail != _TAB) & (tail != _CR)).any():
                self.rec_content = True
            self.prev = int(w[-1])
            a += n
            yield starts, counts
        if self.rec_start < size and (self.rec_content or self.rec_delims):
            yield np.array([self.rec_start], dtype=np.int64), np.array([self.rec_delims])


def line_of(path, pos: int) -> int:
    """The line number (1-based, as an editor counts lines) of byte ``pos`` of a file."""
    lines = done = 0
    with open(path, "rb") as fh:
        while done < pos:
            fh.seek(done)
            data = np.frombuffer(fh.read(min(SCAN_BLOCK, pos - done) + 1), dtype=np.uint8)  # and the next byte
            n = min(SCAN_BLOCK, pos - done, data.size)
            if not n:
                break
            w = data[:n]
            cr = np.flatnonzero(w == _CR)
            lines += int(np.count_nonzero(w == _LF)) + int(np.count_nonzero(np.append(data, 0)[cr + 1] != _LF))
            done += n
    return lines + 1


def _header(fh, start: int, stop: int, skipinitialspace: bool) -> tuple:
    fh.seek(start)
    text = fh.read(stop - start).decode("utf-8", errors="replace")
    return tuple(next(csv.reader(io.StringIO(text), skipinitialspace=skipinitialspace), []))


def _scan(path: Path, skipinitialspace: bool, block: int) -> CsvLayout:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        start = len(_BOM) if fh.read(len(_BOM)) == _BOM else 0
        scan = _Scan(fh, size, start, skipinitialspace)
        fields = header_start = header_end = ragged = None
        rows = 0
        marks = []
        for starts, counts in scan.blocks(block):
            if fields is not None and header_end is None and starts.size:
                header_end = int(starts[0])
            keep = counts >= 0
            if fields is None and keep.any():
                h = int(np.argmax(keep))
                fields, header_start = int(counts[h]) + 1, int(starts[h])
                if h + 1 < starts.size:
                    header_end = int(starts[h + 1])
                keep[h] = False
            starts, counts = starts[keep], counts[keep]
            if not starts.size:
                continue
            if ragged is None:
                bad = np.flatnonzero(counts + 1 != fields)
                if bad.size:
                    ragged = (int(starts[bad[0]]), int(counts[bad[0]]) + 1)
            marks.append(starts[(-rows) % CSV_STRIDE::CSV_STRIDE])
            rows += starts.size
        open_quote = scan.last_open if scan.inside else None
        if fields is None:
            return CsvLayout((), 0, 0, np.zeros(0, np.int64), skipinitialspace, None, open_quote, scan.lone_cr)
        header = _header(fh, header_start, size if header_end is None else header_end, skipinitialspace)
    return CsvLayout(header, fields, rows, np.concatenate(marks) if marks else np.zeros(0, np.int64),
                     skipinitialspace, ragged, open_quote, scan.lone_cr)


_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()


def scan_csv(path, *, skipinitialspace: bool = False, block: int = SCAN_BLOCK) -> CsvLayout:
    """The shape of a CSV file, found in one pass over it in blocks: the header's fields, where its data rows
    start and the first record whose field count differs from the header's (``CsvLayout.check`` reports it).
    Layouts are kept per file (path, size, modification time), so the parts of a run scan a file once."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, skipinitialspace, block)
    with _CACHE_LOCK:
        layout = _CACHE.get(key)
        if layout is None:
            layout = _scan(path, skipinitialspace, block)
            if len(_CACHE) >= 8:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = layout
    return layout


def csv_row_offset(path, layout: CsvLayout, row: int, *, block: int = 1 << 20) -> int:
    """The byte offset where data row ``row`` (0-based) of a scanned CSV file starts: from the nearest mark,
    the rows before it are scanned, not parsed."""
    start = int(layout.marks[row // CSV_STRIDE])
    skip = row % CSV_STRIDE
    if not skip:
        return start
    with open(path, "rb") as fh:
        scan = _Scan(fh, os.fstat(fh.fileno()).st_size, start, layout.skipinitialspace)
        for starts, counts in scan.blocks(block):
            starts = starts[counts >= 0]
            if skip < starts.size:
                return int(starts[skip])
            skip -= starts.size
    raise ScalesweepError(f"{str(path)!r} has no row {row + 1} (was it changed during the run?)")


def read_table_file(path, what: str, check_columns=None):
    """A whole CSV or Parquet file (by suffix) as a DataFrame; one-line errors naming ``what``. A CSV file's
    header is read first (``check_columns(names)`` may refuse it), then its shape is checked, then its values
    are read."""
    import pandas as pd

    name = storage.shown(path)
    src = storage.locate(path)
    src = src if isinstance(src, storage.Location) else Path(src)
    if not src.is_file():
        raise ScalesweepError(f"{what} {name!r} does not exist")
    where = f"{what} {name!r}"
    try:
        if src.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            with storage.opened(src) as fh:
                df = pq.read_table(fh).to_pandas()
            names = [str(c) for c in df.columns]
            dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
            if dup is not None:
                raise ScalesweepError(f"{where}: column {dup!r} appears twice")
            if check_columns is not None:
                check_columns(names)
            return df
        path = storage.local_file(src)
        layout = scan_csv(path)
        if layout.open_quote is not None or layout.lone_cr is not None:
            layout.check(path, where)
        names = [str(c) for c in pd.read_csv(path, nrows=0, index_col=False).columns]
    except ScalesweepError:
        raise
    except Exception as exc:  # malformed file: pyarrow/pandas raise many types
        raise ScalesweepError(f"cannot read {where}: {_first_line(exc)}") from None
    layout.check_names(names, where)
    dup = layout.duplicate()
    if dup is not None:
        raise ScalesweepError(f"{where}: column {dup!r} appears twice in the header")
    if check_columns is not None:
        check_columns(names)
    layout.check(path, where)
    try:
        df = pd.read_csv(path, index_col=False)
    except Exception as exc:
        raise ScalesweepError(f"cannot read {where}: {_first_line(exc)}") from None
    if len(df) != layout.rows:
        raise ScalesweepError(f"cannot read {where}: pandas read {len(df)} rows where the file has {layout.rows}")
    return df


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_flops_file(path, column: str | None = None) -> np.ndarray:
    """Budgets from a CSV or Parquet file: the named column, the 'flops' column, or the only column."""
    import pandas as pd

    name = storage.shown(path)

    def pick(names):
        nonlocal column
        if column is None:
            if "flops" in names:
                column = "flops"
            elif len(names) == 1:
                column = names[0]
            else:
                raise ScalesweepError(
                    f"flops file {name!r} has no 'flops' column; name one with --flops-column "
                    f"(columns: {', '.join(map(repr, names))})")
        if column not in names:
            raise ScalesweepError(f"flops file {name!r} has no column {column!r}")

    df = read_table_file(path, "flops file", pick)
    df.columns = [str(c) for c in df.columns]
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raw = df[column].iloc[i]
        shown = repr(raw) if isinstance(raw, str) else str(float(raw))
        raise ScalesweepError(f"flops file {name!r}, row {i + 1}: {shown} is not a finite budget > 0")
    if values.size == 0:
        raise ScalesweepError(f"flops file {name!r} has no rows")
    return values


# ------------------------------------------------------------------------------------- mappings (specs)


def _twice(where: str, key, lines: tuple) -> ScalesweepError:
    at = "" if not lines else f" (line {lines[0]})" if len(set(lines)) == 1 else f" (lines {lines[0]} and {lines[1]})"
    return ScalesweepError(f"{where}: key {str(key)!r} appears twice{at}")


def yaml_load(text: str, where: str):
    """YAML through a safe loader that refuses a key given twice in one mapping (PyYAML would keep the last):
    ``{where}: key 'flops' appears twice (lines 1 and 3)``."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden
                        continue
                    key = self.construct_object(key_node, deep=True)
                    line = key_node.start_mark.line + 1
                    try:
                        if key in seen:
                            raise _twice(where, key, (seen[key], line))
                        seen[key] = line
                    except TypeError:  # an unhashable key: the base class refuses it
                        continue
            return super().construct_mapping(node, deep)

    return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects


def json_loads(text, where: str):
    """JSON whose objects may not give a key twice (the json module would keep the last)."""
    import json

    def pairs(items):
        out = {}
        for key, value in items:
            if key in out:
                raise _twice(where, key, ())
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs)


def toml_loads(text: str, where: str):
    """TOML (tomllib refuses a key given twice; its message is made to name the key where it can be found)."""
    import re
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"Cannot overwrite a value \(at line (\d+),", msg)
        if m:
            lines = text.splitlines()
            n = int(m.group(1))
            key = _toml_key(lines[n - 1]) if n <= len(lines) else None
            earlier = [i + 1 for i, line in enumerate(lines[:n - 1]) if _toml_key(line) == key]
            if key is not None and earlier:
                raise _twice(where, key, (earlier[-1], n)) from None
        raise


def _toml_key(line: str) -> str | None:
    """The key of a ``key = value`` line (quotes removed), or None."""
    head, sep, _ = line.partition("=")
    head = head.strip()
    if not sep or not head or head.startswith(("#", "[")):
        return None
    if len(head) >= 2 and head[0] == head[-1] and head[0] in "\"'":
        return head[1:-1]
    return head
