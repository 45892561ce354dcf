"""Bulk scenario sweeps: a table of scenarios, or a sweep spec whose lists expand as a cartesian product.

Both forms use the field names of ``options.FIELDS`` (plus ``law.NAME`` or ``law_NAME`` for parameter
overrides, written to the output as ``law_NAME``: column names hold no dots). Rows are
produced and solved chunk by chunk (a sweep is decoded from its row index, a table is read in batches), so
memory follows the chunk size, not the sweep. Every chunk goes through one compiled parallel pass whatever
mix of laws, budgets and constraints it holds. Validation happens before any solving: a sweep spec is
checked field by field (so every expanded row is valid), a table row by row; the first bad value stops the
run with its row number and field, and the output file only appears when the whole run succeeded.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import engine, storage, units
from .errors import ScalesweepError
from .grid import parse_range
from .codes import FAMILY_NAMES
from .laws import FAMILIES, PRESETS, get_law, law_arrays, preset_name
from .options import DEFAULTS, ENERGY_FIELDS, FIELDS, STRING_FIELDS, check_rules
from .output import jsonable, table_writer
from .pipeline import overlapped
from .readers import csv_row_offset, scan_csv, toml_loads, yaml_load
from .tables import (COLUMNS, OVERRIDE_PREFIX, arrow_column, arrow_float32, input_column, metadata,
                     scenario_result_columns, to_arrow)
from .validate import RULES, bad_mask, check_size, clip, parse_size, suggest

CHUNK_ROWS = 1 << 18  # scenarios per chunk (= Parquet row group): the engine's per-chunk arrays stay in cache
# Columns written dictionary-encoded in Parquet (names repeated over many rows); the rest plain.
# Input columns whose names are also result columns are written with a budget_ prefix.
INPUT_RENAMES = {"pf_days": "budget_pf_days", "gpu_hours": "budget_gpu_hours", "usd": "budget_usd"}
AS_USED = ("mfu", "bytes_per_param")  # inputs written as used (their default where not given): never null
# A field's explicit list longer than this is described in the metadata by its length and ends, not item by item.
METADATA_LIST_ITEMS = 100
SPEC_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".csv": "csv", ".parquet": "parquet",
                 ".pq": "parquet"}


def _override(name: str) -> str | None:
    """The law parameter a field overrides (``law.alpha`` or ``law_alpha``: ``alpha``), or None."""
    for prefix in ("law.", OVERRIDE_PREFIX):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return None


def _is_override(name: str) -> bool:
    return _override(name) is not None


def output_name(name: str) -> str:
    """The output column of an input field: ``law_NAME`` for an override, ``budget_`` before a budget form
    that shares its name with a result column, the field's name otherwise."""
    param = _override(name)
    return OVERRIDE_PREFIX + param if param is not None else INPUT_RENAMES.get(name, name)


def _check_field_names(names, where: str) -> None:
    seen = {}
    for name in names:
        if name not in FIELDS and not _is_override(name):
            raise ScalesweepError(f"{where}: unknown field {name!r}{suggest(name, FIELDS)} (fields: "
                                  f"{', '.join(FIELDS)}, law.NAME or law_NAME)")
        if output_name(name) in seen:
            raise ScalesweepError(f"{where}: fields {seen[output_name(name)]!r} and {name!r} override the same "
                                  "parameter; give one")
        seen[output_name(name)] = name


class _Laws:
    """The laws met so far: (preset, overrides) -> index, and the kernel arrays for all of them."""

    def __init__(self):
        self.index: dict[tuple, int] = {}
        self.laws = []
        self._arrays = None

    def get(self, name: str, overrides: tuple) -> int:
        key = (name, overrides)
        i = self.index.get(key)
        if i is None:
            law = get_law(name, **dict(overrides))
            i = self.index[key] = len(self.laws)
            self.laws.append(law)
            self._arrays = None
        return i

    def arrays(self):
        if self._arrays is None:
            self._arrays = law_arrays(self.laws)
        return self._arrays


def _shown(v) -> str:
    """A value for a message: a list or mapping by its kind (it may be long), anything else by its repr."""
    if not isinstance(v, (list, dict)):
        return clip(v)
    text = repr(v)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"a {'list' if isinstance(v, list) else 'mapping'} ({text})"


def _check_law_override(law_name: str, param: str, where: str) -> None:
    fam = FAMILIES[PRESETS[law_name].family]
    if param not in fam.param_names:
        raise ScalesweepError(f"{where}: law.{param} is not a parameter of {law_name} "
                              f"(family {fam.name}: {', '.join(fam.param_names)})")


# ---------------------------------------------------------------------------------------------- sources


class SweepSpec:
    """A YAML/TOML mapping of field -> value or list of values; lists expand as a cartesian product
    (the last field varies fastest). A numeric field may also be a log range string ``LO:HI:COUNT``."""

    def __init__(self, mapping: dict, source: str = "spec"):
        if not isinstance(mapping, dict) or not mapping:
            raise ScalesweepError(f"{source}: a sweep spec is a mapping of field: value or [values]")
        self.source = source
        self.fields: dict[str, list] = {}
        self.given: dict[str, list] = {}  # the items as written, a range as {"range": "LO:HI:COUNT"}
        self._arrays: dict[str, np.ndarray] = {}
        _check_field_names([str(name) for name in mapping], source)
        for name, value in mapping.items():
            name = str(name)
            values = value if isinstance(value, list) else [value]
            if not values:
                raise ScalesweepError(f"{source}: field {name!r} has an empty list")
            self.fields[name], self.given[name] = self._check_values(name, values)
        self._check_laws()
        given = {name: True for name in self.fields}
        check_rules(given, 1, lambda i: source)
        self.counts = [len(v) for v in self.fields.values()]
        self.rows = math.prod(self.counts)
        check_size(f"{source}: the sweep (the product of its list lengths)", self.rows)
        self.strides = [math.prod(self.counts[j + 1:]) for j in range(len(self.counts))]

    def _check_values(self, name, values):
        where = f"{self.source}: field {name!r}"
        if name in STRING_FIELDS:
            out = []
            for i, v in enumerate(values):
                if not isinstance(v, str):
                    raise ScalesweepError(f"{where}, item {i + 1}: expected a name, got {_shown(v)}")
                if not v.strip():
                    raise ScalesweepError(f"{where}, item {i + 1}: the name is empty")
                if name in ("law", "loss_law"):
                    try:
                        v = preset_name(v)
                    except ScalesweepError as exc:
                        raise ScalesweepError(f"{where}, item {i + 1}: {exc}") from None
                if name == "gpu":
                    v = units.gpu_preset(v).name
                out.append(v)
            return out, out
        out, given = [], []
        for i, v in enumerate(values):
            if isinstance(v, str) and ":" in v:
                expanded = parse_range(v, f"{where}, item {i + 1}").values()
                if not _is_override(name) and bad_mask(FIELDS[name]["rule"], expanded).any():
                    raise ScalesweepError(f"{where}, item {i + 1}: the range {v!r} gives values that are not "
                                          f"{RULES[FIELDS[name]['rule']]}")
                out.extend(expanded.tolist())
                given.append({"range": v.strip()})
                continue
            if isinstance(v, (list, dict)):
                raise ScalesweepError(f"{where}, item {i + 1}: expected a number, got {_shown(v)}")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                try:  # YAML reads 1e21 (no dot) as a string; counts of params, tokens or FLOPs take sizes (7B)
                    v = (parse_size(v) if FIELDS.get(name, {}).get("size") else float(v)) if isinstance(v, str) else None
                except ValueError:
                    v = None
                if v is None:
                    raise ScalesweepError(f"{where}, item {i + 1}: expected a number, got {clip(values[i])}")
            if _is_override(name):
                if not math.isfinite(v):
                    raise ScalesweepError(f"{where}, item {i + 1}: must be finite, got {clip(v)}")
            elif bad_mask(FIELDS[name]["rule"], np.array([float(v)]))[0] or math.isnan(v):
                raise ScalesweepError(f"{where}, item {i + 1}: must be {RULES[FIELDS[name]['rule']]}, "
                                      f"got {values[i]!r}")
            out.append(float(v))
            given.append(float(v))
        return out, given

    def _check_laws(self):
        names = self.fields.get("law", [DEFAULTS["law"]])
        for field, values in self.fields.items():
            if _is_override(field):
                for law_name in names:
                    _check_law_override(law_name, _override(field), f"{self.source}: field {field!r}")
                    for v in values:
                        try:
                            get_law(law_name, **{_override(field): v})
                        except ScalesweepError as exc:
                            raise ScalesweepError(f"{self.source}: field {field!r} with law {law_name}: {exc}") from None

    def columns(self) -> list[str]:
        return list(self.fields)

    def law_names(self) -> list[str]:
        return self.fields.get("law", [DEFAULTS["law"]])

    def describe(self) -> dict:
        """The spec for the metadata: each field's items as written (a range by its ``LO:HI:COUNT`` text, not
        its values; a list of over ``METADATA_LIST_ITEMS`` items by its length, first and last item)."""
        fields = {}
        for name, items in self.given.items():
            if len(items) > METADATA_LIST_ITEMS:
                items = {"items": len(items), "first": items[0], "last": items[-1]}
            fields[name] = items
        return {"kind": "sweep", "source": self.source, "fields": fields, "rows": self.rows}

    def label(self, i: int) -> str:
        return f"{self.source}, scenario {i + 1}"

    def chunks(self, chunk_rows: int):
        """Yield (start, {field: values}) with numeric fields as float64 arrays and string fields as
        (codes, names) pairs."""
        for start in range(0, self.rows, chunk_rows):
            stop = min(self.rows, start + chunk_rows)
            yield start, stop - start, self.columns_for(start, stop)

    def columns_for(self, start: int, stop: int) -> dict:
        """The scenarios start..stop-1, decoded from their index (mixed radix over the fields' lists)."""
        cols = {}
        for (name, values), count, stride in zip(self.fields.items(), self.counts, self.strides, strict=True):
            if name in STRING_FIELDS:
                codes = np.arange(count, dtype=np.int32)
                cols[name] = (np.zeros(stop - start, np.int32) if count == 1 else _digit(codes, start, stop, stride),
                              values)
            else:
                arr = self._arrays.get(name)
                if arr is None:  # converted once per spec, not per chunk
                    arr = self._arrays[name] = np.asarray(values, dtype=np.float64)
                cols[name] = np.float64(arr[0]) if count == 1 else _digit(arr, start, stop, stride)
        return cols

    def count_rows(self) -> int:
        return self.rows


def _digit(values: np.ndarray, start: int, stop: int, stride: int) -> np.ndarray:
    """``values[(i // stride) % len(values)]`` for i in start..stop-1: one mixed-radix digit of the scenario
    index, mapped to its values. The digit is constant over runs of ``stride`` consecutive rows, so the column
    is built as repeated runs (or, for the fastest field, tiled) rather than by a division per row."""
    count, m = values.size, stop - start
    if stride == 1:
        shift = start % count
        return np.tile(values, -(-(m + shift) // count))[shift:shift + m]
    first, last = start // stride, (stop - 1) // stride
    repeats = np.full(last - first + 1, stride, dtype=np.int64)
    repeats[0] = min(stop, (first + 1) * stride) - start
    if repeats.size > 1:
        repeats[-1] = stop - last * stride
    return np.repeat(values[np.arange(first, last + 1) % count], repeats)


class TableSpec:
    """A CSV or Parquet table, one scenario per row; empty cells take the field's default (or no limit).

    A CSV table's shape is checked in one pass before anything is solved (``readers.scan_csv``): every row has
    as many fields as the header. That pass also notes where rows start, so a part of a partitioned run reads
    its own rows from their byte offset; a Parquet part reads only the row groups that hold its rows."""

    def __init__(self, path: Path, kind: str, source: str | None = None):
        import pyarrow.parquet as pq

        self.path, self.kind, self.source = path, kind, str(path) if source is None else source
        self.layout = None
        where = f"scenario table {self.source!r}"
        try:
            if kind == "csv":
                self.layout = scan_csv(path, skipinitialspace=True)
                if self.layout.open_quote is not None or self.layout.lone_cr is not None:
                    self.layout.check(path, where)
            if kind == "parquet":
                pf = pq.ParquetFile(path)
                names = pf.schema_arrow.names
                self.rows = pf.metadata.num_rows
            else:
                import pandas as pd

                names = list(pd.read_csv(path, nrows=0, skipinitialspace=True).columns)
                self.rows = None
        except ScalesweepError:
            raise
        except Exception as exc:  # malformed file: pyarrow/pandas raise many types
            raise ScalesweepError(f"cannot read {where}: {_first_line(exc)}") from None
        if not names:
            raise ScalesweepError(f"scenario table {self.source!r} has no columns")
        header = self.layout.header if self.layout is not None else [str(n) for n in names]
        dup = next((n for i, n in enumerate(header) if n in header[:i]), None)
        if dup is not None:
            raise ScalesweepError(f"{where}: column {dup!r} appears twice" + (" in the header" if self.layout else ""))
        _check_field_names([str(n) for n in names], where)
        self.names = [str(n) for n in names]
        if self.layout is not None:
            self.layout.check_names(self.names, where)
            self.layout.check(path, where)
            self.rows = self.layout.rows
        if self.rows == 0:
            raise ScalesweepError(f"scenario table {self.source!r} has no rows")

    def columns(self) -> list[str]:
        return self.names

    def law_names(self) -> list[str]:
        return []

    def describe(self) -> dict:
        return {"kind": "table", "source": self.source, "columns": self.names}

    def label(self, i: int) -> str:
        return f"{self.source}, row {i + 1}"

    def _frames(self, chunk_rows):
        import pandas as pd

        try:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                for batch in pq.ParquetFile(self.path).iter_batches(batch_size=chunk_rows):
                    yield batch.to_pandas()
            else:
                dtypes = {n: str for n in self.names if n in STRING_FIELDS}
                yield from pd.read_csv(self.path, chunksize=chunk_rows, dtype=dtypes, skipinitialspace=True,
                                       index_col=False)
        except ScalesweepError:
            raise
        except Exception as exc:
            raise ScalesweepError(f"cannot read scenario table {self.source!r}: {_first_line(exc)}") from None

    def _cols(self, df, start: int) -> dict:
        import pandas as pd

        cols = {}
        for name in self.names:
            s = df[name]
            if name in STRING_FIELDS:
                s = s.astype("string").str.strip()
                cat = pd.Categorical(s.mask(s == ""))  # a cell of spaces is empty
                cols[name] = (cat.codes.astype(np.int32), list(cat.categories))  # code -1: empty cell
                continue
            v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.isnan(v) & s.notna().to_numpy() & (s.astype("string").str.strip() != "").to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                raise ScalesweepError(f"{self.label(start + i)}, field {name!r}: expected a number, "
                                      f"got {clip(s.iloc[i])}")
            cols[name] = v
        return cols

    def chunks(self, chunk_rows: int):
        start = 0
        for df in self._frames(chunk_rows):
            m = len(df)
            if m == 0:
                continue
            yield start, m, self._cols(df, start)
            start += m
        self._check_count(start, self.rows)

    def _check_count(self, got: int, want: int) -> None:
        if got != want:
            raise ScalesweepError(f"cannot read scenario table {self.source!r}: read {got} rows where the file has "
                                  f"{want} (was it changed during the run?)")

    def count_rows(self) -> int:
        return self.rows

    def columns_for(self, start: int, stop: int) -> dict:
        """Rows start..stop-1 of the table (what one part of a partitioned run reads): the Parquet row groups
        that hold them, or the CSV rows from the byte offset where row ``start`` begins."""
        import pandas as pd

        try:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                pf = pq.ParquetFile(self.path)
                bounds = np.cumsum([0] + [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
                first = int(np.searchsorted(bounds, start, side="right")) - 1
                last = int(np.searchsorted(bounds, stop, side="left"))
                table = pf.read_row_groups(list(range(first, last)))
                df = table.slice(start - int(bounds[first]), stop - start).to_pandas()
            else:
                dtypes = {n: str for n in self.names if n in STRING_FIELDS}
                offset = csv_row_offset(self.path, self.layout, start)
                with open(self.path, "rb") as fh:
                    fh.seek(offset)
                    df = pd.read_csv(fh, header=None, names=self.names, nrows=stop - start, dtype=dtypes,
                                     skipinitialspace=True, index_col=False)
        except ScalesweepError:
            raise
        except Exception as exc:
            raise ScalesweepError(f"cannot read scenario table {self.source!r}: {_first_line(exc)}") from None
        self._check_count(len(df), stop - start)
        return self._cols(df, start)


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_spec(path) -> SweepSpec | TableSpec:
    """A scenario spec from a path or a URI (``storage``): .yaml/.yml/.toml sweep, or .csv/.parquet table."""
    name = storage.shown(path)
    if not storage.is_file(path):
        raise ScalesweepError(f"spec {name!r} does not exist")
    kind = SPEC_SUFFIXES.get(Path(name).suffix.lower())
    if kind is None:
        raise ScalesweepError(f"spec {name!r}: unknown file type (use .yaml, .yml, .toml, .csv or .parquet)")
    if kind in ("csv", "parquet"):
        return TableSpec(Path(storage.local_file(path)), kind, source=name)
    try:
        text = storage.read_bytes(path).decode()
        if kind == "toml":
            mapping = toml_loads(text, name)
        else:
            mapping = yaml_load(text, name)
    except ScalesweepError:
        raise
    except Exception as exc:  # YAML/TOML syntax errors, undecodable bytes
        hint = ""
        if kind == "toml" and "overwrite" in str(exc).lower():
            hint = ' (in TOML, write law_alpha = [...], or quote dotted field names: "law.alpha" = [...])'
        raise ScalesweepError(f"cannot parse spec {name!r}: {_first_line(exc)}{hint}") from None
    if isinstance(mapping, dict) and isinstance(mapping.get("law"), dict):  # TOML [law] table / dotted keys
        raise ScalesweepError(f"spec {name!r}: 'law' must be a preset name or a list of names; write "
                              'parameter overrides as law_alpha = [...] (or quoted, "law.alpha" = [...])')
    return SweepSpec(mapping, source=name)


# --------------------------------------------------------------------------------------------- solving


def _solve_chunk(spec, start: int, m: int, cols: dict, laws: _Laws, present: list[str]):
    """Validate one chunk and solve it. Returns (inputs used, law index per row, result columns)."""
    label = spec.label
    # Numeric fields: the per-kind rules (sweep specs were checked already; this is cheap and also covers
    # table rows).
    inputs = {}
    for name in present:
        if name in STRING_FIELDS or _is_override(name):
            continue
        v = cols[name]
        bad = bad_mask(FIELDS[name]["rule"], np.asarray(v, dtype=np.float64).reshape(-1))
        if bad.any():
            i = int(np.argmax(bad))
            val = np.asarray(v).reshape(-1)[i]
            raise ScalesweepError(f"{label(start + (i if np.ndim(v) else 0))}, field {name!r}: must be "
                                  f"{RULES[FIELDS[name]['rule']]}, got {val:g}")
        inputs[name] = v
    # Hardware: a preset per row, with peak_tflops / gpu_memory_gb / board_power_w columns overriding where given.
    peak = np.full(m, np.nan)
    mem = np.full(m, np.nan)
    power = np.full(m, np.nan)
    if "gpu" in cols:
        codes, names = cols["gpu"]
        hw = []
        for j, nm in enumerate(names):
            try:
                hw.append(units.gpu_preset(nm))
            except ScalesweepError as exc:
                raise ScalesweepError(f"{label(start + int(np.argmax(codes == j)))}, field 'gpu': {exc}") from None
        lut_p = np.array([h.peak_tflops for h in hw] + [np.nan])
        lut_m = np.array([h.memory_gb for h in hw] + [np.nan])
        lut_w = np.array([np.nan if h.board_power_w is None else h.board_power_w for h in hw] + [np.nan])
        peak, mem, power = lut_p[codes], lut_m[codes], lut_w[codes]  # code -1 (empty cell): the trailing NaN
    given = {name: ~np.isnan(inputs[name]) if np.ndim(inputs[name]) else not np.isnan(inputs[name])
             for name in present if name in inputs}
    given["gpu"] = ~np.isnan(peak)
    check_rules(given, m, lambda i: label(start + i))
    if "peak_tflops" in inputs:
        peak = np.where(np.isnan(inputs["peak_tflops"]), peak, inputs["peak_tflops"])
    if "gpu_memory_gb" in inputs:
        mem = np.where(np.isnan(inputs["gpu_memory_gb"]), mem, inputs["gpu_memory_gb"])
    inputs["peak_tflops"], inputs["gpu_memory_gb"] = peak, mem
    if set(ENERGY_FIELDS) & set(present):  # energy asked for: each row's board power, and the energy defaults
        if "board_power_w" in inputs:
            power = np.where(np.isnan(inputs["board_power_w"]), power, inputs["board_power_w"])
        inputs["board_power_w"] = power
        for name, default in (("power_fraction", units.DEFAULT_POWER_FRACTION), ("pue", units.DEFAULT_PUE)):
            inputs[name] = np.where(np.isnan(inputs[name]), default, inputs[name]) if name in inputs else default
    for name in ("mfu", "bytes_per_param", "inference_tokens"):
        if name in inputs:
            inputs[name] = np.where(np.isnan(inputs[name]), DEFAULTS[name], inputs[name])
        else:
            inputs[name] = np.float64(DEFAULTS[name])
    # Laws: preset per row plus overrides -> an index into the laws met so far.
    law_idx = _law_index(spec, start, m, cols, laws, present)
    fams, P = laws.arrays()
    res = engine.solve(inputs, m, fams, P, law_idx)
    if "loss_law" in cols:
        cols["loss_law"] = _canonical(spec, start, cols["loss_law"], "loss_law")
        _rule_losses(spec, start, cols["loss_law"], fams[law_idx], res)
    return inputs, law_idx, res


def _rule_losses(spec, start, loss_law_col, row_fams, res):
    """Evaluate the rows of laws without a loss of their own (allocation rules) with the row's loss law."""
    codes, names = loss_law_col
    lossless = np.array([not FAMILIES[name].has_loss for name in FAMILY_NAMES])[row_fams]
    for j, nm in enumerate(names):
        rows = np.flatnonzero((codes == j) & lossless)
        if not rows.size:
            continue
        if not FAMILIES[PRESETS[nm].family].has_loss:
            raise ScalesweepError(f"{spec.label(start + int(rows[0]))}, field 'loss_law': {nm!r} is not a loss law")
        law = get_law(nm)
        res["loss"][rows] = np.where(res["feasible"][rows], law.loss(res["params"][rows], res["tokens"][rows]), np.nan)


def _canonical(spec, start, col, field: str):
    """A table's law column (codes, names) with every name that occurs as its preset's canonical name
    (``laws.preset_name``: aliases and any case); names that do not occur are kept as they are."""
    codes, names = col
    out = list(names)
    for j, nm in enumerate(names):
        if (codes == j).any():
            try:
                out[j] = preset_name(nm)
            except ScalesweepError as exc:
                raise ScalesweepError(f"{spec.label(start + int(np.argmax(codes == j)))}, field {field!r}: "
                                      f"{exc}") from None
    return codes, out


def _law_index(spec, start, m, cols, laws: _Laws, present):
    overrides = [n for n in present if _is_override(n)]
    if "law" in cols:
        cols["law"] = _canonical(spec, start, cols["law"], "law")  # the output names the canonical preset
        codes, names = cols["law"]
        codes = np.where(codes < 0, len(names), codes)  # empty cell: the default law
        names = [*names, DEFAULTS["law"]]
    else:
        codes, names = np.zeros(m, np.int32), [DEFAULTS["law"]]
    if not overrides:
        lut = np.array([laws.get(nm, ()) if nm in PRESETS else -1 for nm in names], dtype=np.int64)
        return lut[codes]
    ov = np.stack([np.broadcast_to(np.asarray(cols[n], dtype=np.float64), (m,)) for n in overrides], axis=1)
    key = np.concatenate([codes[:, None].astype(np.float64), ov], axis=1)
    uniq, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    lut = np.empty(len(uniq), dtype=np.int64)
    for u, (row, i) in enumerate(zip(uniq, first, strict=True)):
        nm = names[int(row[0])]
        given = tuple((_override(o), float(v)) for o, v in zip(overrides, row[1:], strict=True) if not np.isnan(v))
        where = f"{spec.label(start + int(i))}"
        for p, _ in given:
            _check_law_override(nm, p, where)
        try:
            lut[u] = laws.get(nm, given)
        except ScalesweepError as exc:
            raise ScalesweepError(f"{where}, law {nm}: {exc}") from None
    return lut[inverse.reshape(-1)]


def _input_spec(name: str):
    """The column registry's description of an input field's output column."""
    spec = input_column(output_name(name) if _is_override(name) else name)
    return replace(spec, null="") if name in AS_USED else spec


def _float_dtype(dtype) -> np.dtype:
    """The type of the result columns: float64 (the default) or float32."""
    dt = np.dtype(dtype)
    if dt not in (np.float64, np.float32):
        raise ScalesweepError(f"--dtype must be float64 or float32, got {dt}")
    return dt


def output_schema(present: list[str], dtype=np.float64) -> tuple[pa.Schema, list[str]]:
    """Columns: scenario_id, law, the spec's input fields, mfu, bytes_per_param, then every result, each with
    its type and field metadata from the column registry. With ``dtype`` float32 the float results are float32
    (the inputs stay float64: they are written as given)."""
    inputs = [n for n in present if n not in ("law", "flops")]
    inputs += [name for name in AS_USED if name not in inputs]
    fields = [COLUMNS[name].field(name) for name in ("scenario_id", "law")]
    fields += [_input_spec(name).field(output_name(name)) for name in inputs]
    narrow = pa.float32() if _float_dtype(dtype) == np.float32 else None
    fields += [COLUMNS[name].field(name, narrow if COLUMNS[name].type == "float" else None)
               for name in scenario_result_columns(present)]
    return pa.schema(fields), inputs


def _batch(schema, inputs_order, start, m, cols, inputs, law_idx, laws: _Laws, res) -> pa.RecordBatch:
    arrays = [arrow_column("scenario_id", COLUMNS["scenario_id"], np.arange(start, start + m, dtype=np.int64), m),
              arrow_column("law", COLUMNS["law"], (law_idx, [law.name for law in laws.laws]), m)]
    for name in inputs_order:  # a string field's empty cell (code -1) and a number's (NaN) are null
        arrays.append(arrow_column(output_name(name), _input_spec(name), inputs[name] if name in AS_USED
                                   else cols[name], m))
    names = schema.names[2 + len(inputs_order):]
    result = to_arrow({name: res[name] for name in names}, m)
    for name, col in zip(names, result.columns, strict=True):
        if schema.field(name).type == pa.float32():  # the float64 result rounded to nearest; NaN stays null
            col = arrow_float32(np.broadcast_to(np.asarray(res[name], dtype=np.float64), (m,)), name)
        arrays.append(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def run(spec, path, *, fmt: str | None = None, chunk_rows: int = CHUNK_ROWS, command_line: str | None = None,
        progress=None, dtype="float64") -> dict:
    """Solve every scenario of ``spec`` (a path or a loaded spec) and stream the results to ``path`` (format by
    suffix or ``fmt``; ``-`` is stdout). ``dtype="float32"`` writes the float results as float32 (half the
    bytes; about 7 significant digits; the metadata records it). Returns a summary: rows, feasible, infeasible
    (count per reason), seconds."""
    import time

    dtype = _float_dtype(dtype)
    if not isinstance(spec, (SweepSpec, TableSpec)):
        spec = load_spec(spec)
    present = spec.columns()
    schema, inputs_order = output_schema(present, dtype)
    laws = _Laws()
    t0 = time.perf_counter()
    done = feasible = 0
    reasons: dict[str, int] = {}
    meta = metadata_for(spec, command_line, _metadata_fields(spec, dtype))
    with table_writer(path, schema.with_metadata(meta), fmt) as w:
        def solved():
            nonlocal feasible
            for start, m, cols in spec.chunks(chunk_rows):
                inputs, law_idx, res = _solve_chunk(spec, start, m, cols, laws, present)
                feasible += int(res["feasible"].sum())
                _count_reasons(reasons, res["infeasible_reason"])
                yield _batch(schema, inputs_order, start, m, cols, inputs, law_idx, laws, res)

        def write(batch):
            nonlocal done
            w.write(batch, row_group_size=batch.num_rows)
            done += batch.num_rows
            if progress is not None:
                progress(done, spec.rows)  # None: a CSV table not counted ahead

        overlapped(solved(), write)  # chunk k+1 is solved while chunk k is encoded
    return {"rows": done, "feasible": feasible, "infeasible": reasons, "seconds": time.perf_counter() - t0,
            "laws": [law.name for law in laws.laws]}


def _count_reasons(into: dict, reason) -> None:
    codes, names = reason
    for i, c in enumerate(np.bincount(codes[codes >= 0], minlength=len(names))):
        if c:
            into[names[i]] = into.get(names[i], 0) + int(c)


def solve_part(spec, start: int, stop: int, dtype="float64") -> tuple[pa.RecordBatch, dict]:
    """Scenarios start..stop-1 as one record batch (and its infeasible counts): what a dataset part holds.
    The same code path as ``run``, so a partitioned run equals a single-file run row for row."""
    present = spec.columns()
    schema, inputs_order = output_schema(present, dtype)
    laws = _Laws()
    cols = spec.columns_for(start, stop)
    inputs, law_idx, res = _solve_chunk(spec, start, stop - start, cols, laws, present)
    reasons: dict[str, int] = {}
    _count_reasons(reasons, res["infeasible_reason"])
    return _batch(schema, inputs_order, start, stop - start, cols, inputs, law_idx, laws, res), reasons


def _metadata_fields(spec, dtype=np.float64) -> dict:
    """What the metadata says about a spec, besides the command line (JSON-ready); ``dtype`` only when the
    float results are float32."""
    fields = {"spec": spec.describe(), "defaults": DEFAULTS, "laws": {n: PRESETS[n].citation for n in spec.law_names()}}
    if np.dtype(dtype) != np.float64:
        fields["dtype"] = str(np.dtype(dtype))
    return jsonable(fields)


def metadata_for(spec, command_line=None, fields: dict | None = None) -> dict:
    """The table metadata of a run of ``spec``; ``fields`` (from ``_metadata_fields``) when made already."""
    return metadata("scenarios", **(fields if fields is not None else _metadata_fields(spec)),
                    command_line=command_line)


def job(spec_path, *, partition_rows: int, command_line=None, dtype="float64"):
    """A partitioned scenario run: parts of consecutive scenarios. The spec file's bytes go into the job's
    hash, so a changed file never resumes into an old directory."""
    import hashlib

    from .dataset import Job, plan

    path = spec_path if storage.is_uri(spec_path) else str(Path(spec_path).resolve())
    loaded = load_spec(path)
    rows = loaded.count_rows()
    digest = hashlib.sha256(storage.read_bytes(path)).hexdigest()
    # The metadata's description of the spec is made once here; every part adds only the command line.
    fields = _metadata_fields(loaded, _float_dtype(dtype))
    if fields["spec"].get("source") == path:  # the spec as the user named it, as a single-file run records it
        fields["spec"]["source"] = str(spec_path)
    spec = {"path": path, "sha256": digest, "metadata": fields, "command_line": command_line}
    if "dtype" in fields:  # float32 results (a float64 job's spec, and so its hash, is as it always was)
        spec["dtype"] = fields["dtype"]
    return Job("scenarios", spec, plan(rows, partition_rows), rows, compute_part)


def compute_part(spec: dict, start: int, stop: int):
    """Scenarios start..stop-1 of a job as an Arrow table with the scenario schema and metadata."""
    loaded = load_spec(spec["path"])
    batch, reasons = solve_part(loaded, start, stop, spec.get("dtype", "float64"))
    md = metadata_for(loaded, spec["command_line"], spec.get("metadata"))
    table = pa.Table.from_batches([batch]).replace_schema_metadata(md)
    return table, {"rows": table.num_rows, "infeasible": reasons}
