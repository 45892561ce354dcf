"""``scalesweep report``: one self-contained HTML file of interactive charts and tables from result files.

Inputs are what the other commands write: frontier, target-loss, scenarios, compare and lookup tables
(Parquet or Arrow with their ``scalesweep`` metadata; CSV, JSON and JSON Lines, which carry none, are accepted
when they look like one, ``_check_columns`` and ``_check_rows``) and the law files of ``scalesweep fit``.

A result table has a budget (``flops``) or a target loss (``target_loss``), and its columns are result
columns (those of ``tables.COLUMNS`` up to the study and fit tables' own, ``RESULT_COLUMNS``), scenario inputs
and law overrides. Refused, whatever the format: the per-budget and per-point tables of ``fit-isoflop`` and
``fit-envelope --table``, study and ``fit-compare`` tables (by their columns when there is no metadata), a
runs file (several rows of one budget and nothing that tells them apart: no law, scenario_id or target_loss
column), and values that no result holds: text or booleans in a numeric column, infinities, a missing value
in a column that is never missing, and a budget, size, loss or cost that is not > 0. For each input the
report has a section with

* what made it: the command, the law(s) with their parameters and citation, the limits, hardware and
  workload, the scalesweep version and the command line (from the metadata; CSV and JSON have none);
* charts (plotly.js): params, tokens, loss and tokens per parameter against compute (a target-loss table:
  compute, params and tokens against the target), log axes, one trace per law. Zoom with the mouse (drag a
  box; double-click resets), hover a point for every value of its row, and show or hide a law with its
  checkbox (or its legend entry). A fit's law file draws the fitted law's frontier and, when the runs file
  it names can be read, the observed against the fitted loss of each run;
* the table, each number shown to 6 significant digits with its exact value in the cell's ``data-value``.

The file needs no network: plotly.js is inlined from the installed ``plotly`` package (the optional extra
``report``), and nothing else is loaded. It is written atomically through ``output.write_bytes``. Big tables
are sampled while they are read (every k-th row, at most ``MAX_ROWS``), and the table shows at most
``MAX_TABLE_ROWS`` rows; the section says so when it does.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import storage
from ._version import __version__
from .errors import ScalesweepError
from .output import SUFFIXES, check_target, write_bytes
from .tables import METADATA_KEY, OVERRIDE_PREFIX, column

MAX_ROWS = 20_000  # rows read per table (charts and hover); bigger tables are sampled evenly
MAX_TABLE_ROWS = 2_000  # rows shown in a section's HTML table
LAW_FILE_FRONTIER = (1e18, 1e26, 33)  # budgets at which a fit's law file is drawn: LO, HI, COUNT
# Tables a report draws, by the ``command`` in their metadata.
DRAWN_COMMANDS = ("frontier", "target-loss", "scenarios", "compare", "lookup", "lookup query")
Y_COLUMNS = (("params", "Model size N", "parameters"), ("tokens", "Training tokens D", "tokens"),
             ("loss", "Loss", "nats/token"), ("tokens_per_param", "Tokens per parameter", "D/N"))
TARGET_Y_COLUMNS = (("flops", "Training compute", "FLOP"), ("params", "Model size N", "parameters"),
                    ("tokens", "Training tokens D", "tokens"))
LOG_Y = {"params", "tokens", "flops", "tokens_per_param"}


@dataclass
class Result:
    """One input of a report: a table (``frame``) or a fit's law file (``law``), with what made it."""

    path: str
    kind: str  # "table" or "law"
    meta: dict | None = None  # the scalesweep metadata (None: the format carries none)
    frame: object = None  # pandas DataFrame of the rows read
    total_rows: int = 0  # rows in the file (more than len(frame) when sampled)
    law: object = None  # laws.Law of a law file
    law_data: dict = field(default_factory=dict)  # the law file as written (fit diagnostics, bootstrap)
    notes: list = field(default_factory=list)  # what the reader had to say (sampling, a missing runs file)

    @property
    def name(self) -> str:
        return storage.shown(self.path)


# ------------------------------------------------------------------------------------------------ reading


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _known_column(name: str) -> bool:
    """A column some scalesweep table has: a result column, a scenario input, a law override."""
    from .options import FIELDS

    if name in FIELDS or name.startswith(OVERRIDE_PREFIX):
        return True
    try:
        column(name)
    except KeyError:
        return False
    return True


def _column_tables() -> tuple[tuple[str, ...], dict[str, str]]:
    """The result columns (``tables.COLUMNS`` before the study and fit tables' own), and the table each of
    the others belongs to (column -> what writes it)."""
    from .tables import COLUMNS

    keys = list(COLUMNS)
    starts = [("method", "a resolution study"), ("trial", "an IsoFLOP simulation study"),
              ("runs", "fit-isoflop --table"), ("run", "fit-envelope --table"), ("estimator", "fit-compare")]
    owner: dict[str, str] = {}
    for (first, what), nxt in zip(starts, [*starts[1:], (None, None)], strict=True):
        stop = keys.index(nxt[0]) if nxt[0] else len(keys)
        owner.update(dict.fromkeys(keys[keys.index(first):stop], what))
    return tuple(keys[:keys.index(starts[0][0])]), owner


RESULT_COLUMNS, OTHER_TABLE_COLUMNS = _column_tables()
# Values that are > 0 in every row that has them.
POSITIVE_COLUMNS = ("target_loss", "flops", "params", "tokens", "loss", "tokens_per_param", "budget_flops",
                    "gpu_hours", "wall_days", "n_layer", "d_model", "n_heads")
# Rows that share a budget are told apart by one of these (a runs file has none).
ROW_KEYS = ("law", "scenario_id", "target_loss")


def _check_columns(name: str, names) -> None:
    """A table without metadata is accepted as a result table when every column is a result column, a scenario
    input or a law override, and it has a budget (flops) or a target loss to draw against."""
    other = [c for c in names if str(c) in OTHER_TABLE_COLUMNS]
    if other:
        raise ScalesweepError(f"result {name!r} is a table of `scalesweep {OTHER_TABLE_COLUMNS[str(other[0])]}` "
                              f"(column {other[0]!r}), not a result; a report draws the tables of "
                              f"{', '.join(DRAWN_COMMANDS)} and fit law files")
    unknown = [c for c in names if not _known_column(str(c))]
    if unknown:
        raise ScalesweepError(f"result {name!r} is not a scalesweep table: {unknown[0]!r} is not a scalesweep column")
    if "flops" not in names and "target_loss" not in names:
        raise ScalesweepError(f"result {name!r} is not a frontier, target-loss or scenarios table: it has no "
                              "flops or target_loss column")


def _check_rows(name: str, df) -> None:
    """Refuse a table whose rows no result has (see the module docstring): one line naming the first bad
    value's row (counted from 1, as in the file) and column."""
    import pandas as pd

    from .tables import COLUMNS
    from .validate import clip

    cols = [str(c) for c in df.columns]
    if "flops" in cols and not any(k in cols for k in ROW_KEYS) and len(df) > 1:
        flops = pd.to_numeric(df["flops"], errors="coerce")
        if flops.duplicated().any():
            keys = f"{', '.join(ROW_KEYS[:-1])} or {ROW_KEYS[-1]}"
            raise ScalesweepError(f"result {name!r} looks like a runs file, not a result: several rows share a "
                                  f"flops budget and no {keys} column tells them apart (fit it with scalesweep "
                                  "fit-isoflop, then report the law file)")
    for c in cols:
        spec = COLUMNS.get(c)
        if spec is None or spec.type not in ("float", "int"):
            continue
        raw = df[c]
        if raw.dtype.kind == "b" or (raw.dtype == object and raw.map(lambda v: isinstance(v, bool)).any()):
            raise ScalesweepError(f"result {name!r}: column {c!r} holds true/false where a number belongs")
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        missing = raw.isna().to_numpy()
        problems = (
            (~missing & np.isnan(values), "is not a number"),
            (np.isinf(values), "is infinite"),
            (missing if not spec.null or (c == "flops" and "target_loss" not in cols) else np.zeros_like(missing),
             "has no value, and this column always has one" if c != "flops" else "has no value (only a "
             "target-loss row may have no budget)"),
            ((values <= 0) if c in POSITIVE_COLUMNS else np.zeros_like(missing), "must be > 0"),
        )
        for bad, what in problems:
            if bad.any():
                i = int(np.argmax(bad))
                v = raw.iloc[i]
                shown = "" if missing[i] else f": {clip(v) if isinstance(v, str) else repr(float(values[i]))}"
                raise ScalesweepError(f"result {name!r}: row {i + 1}, column {c!r}{shown} {what}")


def _sampled_parquet(src, notes: list):
    """A Parquet file's rows (every k-th above ``MAX_ROWS``, one row group at a time) as an Arrow table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    total = pf.metadata.num_rows
    step = -(-total // MAX_ROWS)
    if step <= 1:
        return pf.read(), total
    parts, start = [], 0
    for g in range(pf.num_row_groups):
        rows = pf.metadata.row_group(g).num_rows
        take = np.arange(-start % step, rows, step)
        if take.size:
            parts.append(pf.read_row_group(g).take(take))
        start += rows
    notes.append(f"{total:,} rows: every {step:,}th row is drawn")
    return pa.concat_tables(parts), total


def _sample_frame(df, notes: list):
    """Every k-th row of a DataFrame above ``MAX_ROWS`` (formats read whole: CSV, JSON)."""
    total = len(df)
    step = -(-total // MAX_ROWS)
    if step <= 1:
        return df, total
    notes.append(f"{total:,} rows: every {step:,}th row is drawn")
    return df.iloc[::step].reset_index(drop=True), total


def _table_metadata(name: str, schema_md) -> dict:
    md = schema_md or {}
    if METADATA_KEY not in md:
        raise ScalesweepError(f"result {name!r} is not a scalesweep table: it has no scalesweep metadata")
    try:
        meta = json.loads(md[METADATA_KEY])
    except ValueError as exc:
        raise ScalesweepError(f"result {name!r}: its scalesweep metadata is not JSON ({_first_line(exc)})") from None
    if not isinstance(meta, dict):
        raise ScalesweepError(f"result {name!r}: its scalesweep metadata is not an object")
    command = meta.get("command")
    if command not in DRAWN_COMMANDS:
        raise ScalesweepError(f"result {name!r} was written by `scalesweep {command}`; a report draws the tables of "
                              f"{', '.join(DRAWN_COMMANDS)} and fit law files")
    return meta


def _frame(table):
    """An Arrow table as a DataFrame: dictionary columns as strings, nulls as NaN / None."""
    import pyarrow as pa

    cols = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        cols[name] = col
    return pa.table(cols).to_pandas()


def _json_rows(name: str, data) -> list:
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ScalesweepError(f"result {name!r} is not a scalesweep table: expected a JSON array of row objects")
    return data


def read_result(path) -> Result:
    """Read one input of a report (see the module docstring); a one-line ScalesweepError if it is not one."""
    import pandas as pd

    from .readers import json_loads, read_table_file

    name = storage.shown(path)
    if not storage.is_file(path):
        loc = storage.locate(path)
        if not isinstance(loc, storage.Location) and os.path.isdir(loc):
            raise ScalesweepError(f"result {name!r} is a directory; give a file (a partitioned dataset's part)")
        raise ScalesweepError(f"result {name!r} does not exist")
    suffix = Path(name).suffix.lower()
    fmt = SUFFIXES.get(suffix) if suffix != ".toml" else "law"
    notes: list[str] = []
    if fmt is None or fmt == "table":
        raise ScalesweepError(f"result {name!r}: cannot tell its format from the suffix; give a Parquet, Arrow, CSV, "
                              "JSON or JSON Lines table, or a law file (.json)")
    if fmt in ("parquet", "arrow"):
        import pyarrow as pa

        try:
            with storage.opened(path) as src:
                if fmt == "parquet":
                    import pyarrow.parquet as pq

                    meta = _table_metadata(name, pq.read_schema(src).metadata)
                    table, total = _sampled_parquet(src, notes)
                else:
                    reader = pa.ipc.open_file(src)
                    meta = _table_metadata(name, reader.schema.metadata)
                    table = reader.read_all()
                    total = table.num_rows
        except ScalesweepError:
            raise
        except Exception as exc:  # not Parquet / Arrow: pyarrow raises many types
            raise ScalesweepError(f"cannot read result {name!r}: {_first_line(exc)}") from None
        df = _frame(table)
        if fmt == "arrow":
            df, total = _sample_frame(df, notes)
        _check_rows(name, df)
        return Result(name, "table", meta, df, total, notes=notes)
    if fmt == "csv":
        df = read_table_file(path, "result", lambda names: _check_columns(name, names))
        _check_rows(name, df)
        df, total = _sample_frame(df, notes)
        return Result(name, "table", None, df, total, notes=notes)
    try:
        raw = storage.read_bytes(path)
    except OSError as exc:
        raise ScalesweepError(f"cannot read result {name!r}: {exc.strerror or exc}") from None
    if fmt == "law" or (fmt == "json" and raw.lstrip()[:1] == b"{"):
        return _read_law(path, name, raw, notes)
    where = f"result {name!r}"
    try:
        if fmt == "json":
            rows = _json_rows(name, json_loads(raw, where))
        else:
            rows = [_json_rows(name, [json_loads(line, f"{where}, line {i + 1}")])[0]
                    for i, line in enumerate(raw.splitlines()) if line.strip()]
    except ScalesweepError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScalesweepError(f"{where} is not valid JSON: {_first_line(exc)}") from None
    if not rows:
        raise ScalesweepError(f"{where} has no rows")
    names = list(dict.fromkeys(k for r in rows for k in r))
    _check_columns(name, names)
    df = pd.DataFrame.from_records(rows, columns=names)
    _check_rows(name, df)
    df, total = _sample_frame(df, notes)
    return Result(name, "table", None, df, total, notes=notes)


def _read_law(path, name: str, raw: bytes, notes: list) -> Result:
    """A law file (what ``scalesweep fit`` writes, or any file ``--law-file`` reads)."""
    from .laws import load_law_file
    from .readers import json_loads, toml_loads

    law = load_law_file(path)
    where = f"law file {name!r}"
    data = toml_loads(raw.decode("utf-8"), where) if name.lower().endswith(".toml") else json_loads(raw, where)
    return Result(name, "law", None, law=law, law_data=dict(data), notes=notes)


# ------------------------------------------------------------------------------------------------ charts


def _num(v) -> float | None:
    """A JSON number, or None for a missing value (NaN, None, pandas NA)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt_value(v) -> str:
    """How a cell shows a value: numbers to 6 significant digits, nulls empty, booleans lower case."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    try:
        import pandas as pd

        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    return str(v)


def exact_value(v) -> str:
    """A cell's exact value (``data-value``): shortest round-trip text of a float, ``""`` for a null."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    return fmt_value(v)


def _law_names(res: Result) -> list[str]:
    """The law of every row: the ``law`` column, or the one law of the metadata."""
    df = res.frame
    if "law" in df.columns:
        return [str(x) if x is not None and x == x else "" for x in df["law"]]
    law = (res.meta or {}).get("law")
    label = (law.get("preset") or law.get("family")) if isinstance(law, dict) else None
    return [label or Path(res.name).name] * len(df)


def _traces(res: Result, x: str, y: str, mode: str) -> list[dict]:
    """One scatter trace per law: (x, y) points of the rows, hover showing every value of the row."""
    df = res.frame
    cols = [str(c) for c in df.columns]
    laws = _law_names(res)
    xs, ys = df[x].to_numpy(), df[y].to_numpy()
    cells = [[fmt_value(v) for v in df[c]] for c in cols]
    hover = "<br>".join(f"{html.escape(c)}: %{{customdata[{i}]}}" for i, c in enumerate(cols))
    out = []
    for law in dict.fromkeys(laws):
        idx = [i for i, name in enumerate(laws) if name == law]
        if mode == "lines+markers":
            idx.sort(key=lambda i: (_num(xs[i]) is None, _num(xs[i]) or 0.0))
        out.append({
            "type": "scatter", "mode": mode, "name": law, "legendgroup": law,
            "x": [_num(xs[i]) for i in idx], "y": [_num(ys[i]) for i in idx],
            "customdata": [[cells[k][i] for k in range(len(cols))] for i in idx],
            "hovertemplate": hover + f"<extra>{html.escape(law)}</extra>",
            "meta": {"law": law},
        })
    return out


def _layout(title: str, xtitle: str, ytitle: str, logy: bool) -> dict:
    return {"title": {"text": title}, "height": 360, "margin": {"l": 70, "r": 20, "t": 40, "b": 50},
            "xaxis": {"title": {"text": xtitle}, "type": "log", "exponentformat": "power"},
            "yaxis": {"title": {"text": ytitle}, "type": "log" if logy else "linear", "exponentformat": "power"},
            "hovermode": "closest", "legend": {"orientation": "h", "y": -0.25}}


def table_charts(res: Result) -> list[dict]:
    """The charts of a table: against the budget (or the target loss for target-loss tables)."""
    df = res.frame
    command = (res.meta or {}).get("command")
    target = command == "target-loss" or ("target_loss" in df.columns and command is None)
    x, xtitle = ("target_loss", "Target loss (nats/token)") if target else ("flops", "Training compute (FLOP)")
    mode = "markers" if command == "scenarios" or "scenario_id" in df.columns else "lines+markers"
    charts = []
    for y, title, unit in TARGET_Y_COLUMNS if target else Y_COLUMNS:
        if y not in df.columns or y == x or df[y].isna().all():
            continue
        charts.append({"data": _traces(res, x, y, mode),
                       "layout": _layout(title, xtitle, f"{title} ({unit})", y in LOG_Y)})
    return charts


def law_file_tables(res: Result):
    """The fitted law's frontier as a Result (a table like ``frontier`` writes), and the runs chart data."""
    from .api import frontier

    law = res.law
    lo, hi, n = LAW_FILE_FRONTIER
    if law.spec.frontier != "solve":
        res.notes.append(f"family {law.family} has no loss-minimising frontier; its parameters are listed only")
        return None
    df = frontier(law, np.logspace(math.log10(lo), math.log10(hi), n))
    meta = dict(df.attrs.pop(METADATA_KEY.decode(), {}))
    df.insert(0, "law", law.name)
    return Result(res.path, "table", meta, df, len(df))


def runs_chart(res: Result) -> dict | None:
    """Observed and fitted loss of the runs a fit names (``fit.runs_file``), against 6ND; None without one."""
    from .fit import read_runs

    runs_file = (res.law_data.get("fit") or {}).get("runs_file")
    if not runs_file:
        return None
    if not storage.is_file(runs_file):
        res.notes.append(f"the runs file {runs_file!r} the fit names is not there: no runs chart")
        return None
    try:
        n, d, y = read_runs(runs_file)
    except ScalesweepError as exc:
        res.notes.append(f"the runs file could not be read ({exc}): no runs chart")
        return None
    c = 6.0 * n * d
    fitted = np.asarray(res.law.loss(n, d), dtype=np.float64)
    hover = "params: %{customdata[0]}<br>tokens: %{customdata[1]}<br>loss: %{customdata[2]}<br>fitted: %{customdata[3]}"
    custom = [[fmt_value(a), fmt_value(b), fmt_value(e), fmt_value(f)] for a, b, e, f in zip(n, d, y, fitted,
                                                                                              strict=True)]
    data = [{"type": "scatter", "mode": "markers", "name": "observed", "x": c.tolist(), "y": y.tolist(),
             "customdata": custom, "hovertemplate": hover + "<extra>observed</extra>", "meta": {"law": "observed"}},
            {"type": "scatter", "mode": "markers", "name": "fitted", "x": c.tolist(),
             "y": [_num(v) for v in fitted], "marker": {"symbol": "x"}, "customdata": custom,
             "hovertemplate": hover + "<extra>fitted</extra>", "meta": {"law": "fitted"}}]
    return {"data": data, "layout": _layout(f"Runs of the fit ({len(n)})", "6ND (FLOP)", "Loss (nats/token)",
                                            False)}


# ------------------------------------------------------------------------------------------------- HTML


def _script_json(obj) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    return (json.dumps(obj, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


# Control characters and bidirectional overrides (which reorder the text around them): shown as \\uXXXX.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _e(text) -> str:
    """Text for HTML: escaped, with control characters and bidirectional overrides written as ``\\uXXXX``."""
    return html.escape(_INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text)), quote=True)


def _law_text(law: dict) -> str:
    params = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                       for k, v in (law.get("parameters") or {}).items())
    name = law.get("preset") or f"{law.get('family', 'law')} (fitted)"
    if law.get("overrides"):
        name += "+" + ",".join(law["overrides"])
    cite = f" — {law['citation']}" if law.get("citation") else ""
    return f"{name} ({law.get('family', '?')}: {params}){cite}"


def _provenance_rows(res: Result) -> list[tuple[str, str]]:
    """(label, text) lines of what made a result."""
    if res.kind == "law":
        law = res.law
        rows = [("law file", res.name), ("law", _law_text(law.to_dict()))]
        fit = res.law_data.get("fit")
        if isinstance(fit, dict):
            for key in ("method", "objective", "n_points", "excluded_highest_loss", "objective_value", "runs_file"):
                if key in fit:
                    rows.append((f"fit {key}", fmt_value(fit[key]) if not isinstance(fit[key], str) else fit[key]))
        boot = res.law_data.get("bootstrap")
        if isinstance(boot, dict) and isinstance(boot.get("standard_errors"), dict):
            rows.append(("bootstrap standard errors",
                         ", ".join(f"{k} {fmt_value(v)}" for k, v in boot["standard_errors"].items())))
        return rows
    meta = res.meta
    if meta is None:
        return [("metadata", "none: CSV and JSON files carry no scalesweep metadata (Parquet and Arrow files do)")]
    rows = [("command", f"scalesweep {meta.get('command', '?')}")]
    laws = meta.get("laws") or ([meta["law"]] if isinstance(meta.get("law"), dict) else [])
    if isinstance(laws, dict):  # scenarios: name -> citation
        rows += [("law", f"{k} — {v}") for k, v in laws.items()]
    else:
        rows += [("law", _law_text(law)) for law in laws if isinstance(law, dict)]
    for key in ("constraints", "hardware", "workload", "grid"):
        value = meta.get(key)
        if isinstance(value, dict) and value:
            rows.append((key, ", ".join(f"{k} {fmt_value(v)}" for k, v in value.items())))
        elif key in ("constraints",) and isinstance(value, dict):
            rows.append((key, "none"))
    spec = meta.get("spec")
    if spec is not None:
        rows.append(("spec", json.dumps(spec, default=str)))
    rows.append(("rows", f"{res.total_rows:,}"))
    rows.append(("scalesweep version", str(meta.get("scalesweep_version", "?"))))
    rows.append(("command line", meta.get("command_line") or "not recorded (written through the Python API)"))
    return rows


def _table_html(res: Result, table_id: str) -> str:
    df = res.frame
    cols = [str(c) for c in df.columns]
    shown = df.head(MAX_TABLE_ROWS)
    head = "".join(f'<th title="{_e(_column_title(c))}">{_e(c)}</th>' for c in cols)
    body = []
    for row in shown.itertuples(index=False, name=None):
        cells = "".join(f'<td data-value="{_e(exact_value(v))}">{_e(fmt_value(v))}</td>' for v in row)
        body.append(f"<tr>{cells}</tr>")
    more = ""
    if len(df) > len(shown):
        more = f'<p class="note">The table shows the first {len(shown):,} of the {len(df):,} rows read.</p>'
    return (f'<div class="tablewrap"><table id="{table_id}" class="result"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{more}')


def _column_title(name: str) -> str:
    try:
        spec = column(name)
    except KeyError:
        return name
    return spec.description + (f" [{spec.unit}]" if spec.unit else "")


def _section(index: int, res: Result) -> tuple[str, list]:
    """A section's HTML and its charts [(div id, figure)]."""
    sid = f"r{index}"
    charts: list[dict] = []
    table = res
    if res.kind == "law":
        table = law_file_tables(res)
        runs = runs_chart(res)
        if table is not None:
            charts += table_charts(table)
        if runs is not None:
            charts.append(runs)
    else:
        charts = table_charts(res)
    laws = list(dict.fromkeys(t["meta"]["law"] for ch in charts for t in ch["data"]))
    figs = [(f"{sid}-chart{k}", ch) for k, ch in enumerate(charts)]
    prov = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _provenance_rows(res))
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in res.notes)
    toggles = "".join(f'<label><input type="checkbox" class="law-toggle" data-section="{sid}" '
                      f'data-law="{_e(law)}" checked> {_e(law)}</label> ' for law in laws)
    parts = [f'<section id="{sid}" class="result-section"><h2>{_e(res.name)}</h2>',
             f'<table class="provenance">{prov}</table>', notes]
    if figs:
        parts.append(f'<div class="toggles" data-section="{sid}">Show: {toggles}</div>')
        parts.append('<div class="charts">' + "".join(f'<div class="chart" id="{div}"></div>' for div, _ in figs)
                     + "</div>")
    if table is not None:
        heading = "Frontier of the fitted law" if res.kind == "law" else "Table"
        parts.append(f"<h3>{heading}</h3>" + _table_html(table, f"{sid}-table"))
    elif res.kind == "law":
        params = "".join(f'<tr><th>{_e(k)}</th><td data-value="{_e(exact_value(float(v)))}">{_e(fmt_value(v))}</td>'
                         f"</tr>" for k, v in res.law.params.items())
        parts.append(f'<h3>Parameters</h3><table id="{sid}-table" class="result">{params}</table>')
    parts.append("</section>")
    return "".join(parts), figs


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table.provenance th { text-align: left; padding-right: 1em; vertical-align: top; white-space: nowrap; }
table.provenance td { font-family: ui-monospace, monospace; font-size: .9em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: .5em; }
.tablewrap { max-height: 32em; overflow: auto; border: 1px solid #ddd; }
table.result { border-collapse: collapse; font-size: .85em; font-variant-numeric: tabular-nums; }
table.result th, table.result td { border: 1px solid #e4e4e4; padding: .15em .4em; text-align: right; }
table.result thead th { position: sticky; top: 0; background: #f4f4f4; }
.note { color: #8a5a00; } .toggles label { margin-right: 1em; }
"""

_JS = """
(function () {
  var figures = JSON.parse(document.getElementById("scalesweep-figures").textContent);
  var config = {responsive: true, displaylogo: false, scrollZoom: true};
  Object.keys(figures).forEach(function (id) {
    Plotly.newPlot(id, figures[id].data, figures[id].layout, config);
  });
  document.querySelectorAll("input.law-toggle").forEach(function (box) {
    box.addEventListener("change", function () {
      var section = box.getAttribute("data-section"), law = box.getAttribute("data-law");
      Object.keys(figures).forEach(function (id) {
        if (id.indexOf(section + "-") !== 0) return;
        var idx = [];
        figures[id].data.forEach(function (t, i) { if (t.meta && t.meta.law === law) idx.push(i); });
        if (idx.length) Plotly.restyle(id, {visible: box.checked ? true : "legendonly"}, idx);
      });
    });
  });
})();
"""


def plotly_js() -> str:
    """plotly.js as shipped in the installed plotly package (``pip install 'scalesweep[report]'``)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ScalesweepError("the report needs plotly (its plotly.js is inlined): pip install 'scalesweep[report]'") \
            from None
    return get_plotlyjs()


def build_report(paths, *, title: str | None = None) -> str:
    """The HTML text of a report of ``paths`` (result files)."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ScalesweepError("report needs at least one result file")
    js = plotly_js()
    results = [read_result(p) for p in paths]
    sections, figures = [], {}
    for i, res in enumerate(results):
        text, figs = _section(i, res)
        sections.append(text)
        figures.update(dict(figs))
    title = title or "scalesweep report: " + ", ".join(Path(r.name).name for r in results)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style>"
            f"<script>{js}</script></head><body>"
            f"<h1>{_e(title)}</h1><p class=\"generated\">Made by scalesweep {_e(__version__)}. Charts: drag to zoom, "
            "double-click to reset, hover a point for its row; the checkboxes (and legend entries) show or hide a "
            "law.</p>" + "".join(sections)
            + f'<script type="application/json" id="scalesweep-figures">{_script_json(figures)}</script>'
            + f"<script>{_JS}</script></body></html>\n")


def write_report(paths, output, *, title: str | None = None) -> dict:
    """Write the report of ``paths`` to ``output`` (an .html file, atomically); returns what was written."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    target = check_target(output, tuple(paths))
    if Path(str(target)).suffix.lower() not in (".html", ".htm"):
        raise ScalesweepError(f"cannot write {str(output)!r}: a report is HTML; give a .html name")
    text = build_report(paths, title=title).encode("utf-8")
    write_bytes(output, text)
    return {"inputs": len(paths), "bytes": len(text)}
