"""Figures from the files the other commands write (matplotlib, the optional extra ``plot``).

* ``plot_frontier``: params, tokens and (when a file has it) loss against compute, log-log, one line per law of
  each file, percentile bands shaded (``frontier --bands``), a marker where a limit binds
  (``active_constraint``), a top axis in GPU-hours (files with ``gpu_hours``) or PF-days.
* ``plot_surface``: a params x tokens surface as filled loss contours on log-spaced levels, labelled iso-loss
  lines, iso-FLOP lines (C = 6ND) labelled with their budget, and frontier files on top with a marker where
  they cross each iso-FLOP line. An IsoFLOP-form surface draws ``plot_isoflop``'s figure.
* ``plot_isoflop``: loss against N per budget, the minimum of each curve marked, from an IsoFLOP surface or
  a runs file (params, tokens or flops, loss: what ``scalesweep fit`` reads).
* ``plot_fit``: a fit's law file against its runs: predicted vs observed loss, residuals against compute.

Every function takes ``labels`` (legend names of the frontier lines, one per line, in drawing order),
``title``, ``size`` ("W,H" or (W, H), inches) and ``dpi``, writes ``output`` when given (PDF, PNG or SVG by
suffix, atomically; text stays text in PDF and SVG) and returns the matplotlib Figure. Figures are built
without pyplot, so the caller's backend and open figures are left alone. Big files are sampled while they
are read, one row group at a time: at most ``MAX_AXIS`` points per grid axis, ``MAX_ROWS`` frontier rows.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .codes import ACTIVE_NAMES, FLOPS_PER_PARAM_TOKEN, PF_DAY
from . import storage
from .errors import ScalesweepError
from .output import atomic_path, check_target
from .tables import read_metadata

FORMATS = {".pdf": "pdf", ".png": "png", ".svg": "svg"}
# Text as text: SVG <text> elements; PDF TrueType (Type 42) fonts, embedded. No dates, so a figure redrawn
# from the same files is the same file.
RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "scalesweep"}
SAVE_METADATA = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}
DEFAULT_DPI = 150
MAX_AXIS = 512  # grid points kept per surface axis
MAX_CURVES, MAX_CURVE_POINTS = 16, 1024  # IsoFLOP budgets drawn, and points per budget
MAX_ROWS = 20_000  # frontier rows kept per file
LEVEL_DECADES = 2  # surface levels span 10^-2 .. 1 of the loss range above its minimum
BUDGET_TOLERANCE = math.log10(1.01)  # runs whose 6ND differ by less than 1% share a budget
FRONTIER_COMMANDS = ("frontier", "lookup", "lookup query", "target-loss")
OVERLAY_COLORS = ["tab:red", "tab:orange", "white", "tab:pink", "tab:cyan", "black"]  # frontiers on a surface
LIMIT_MARKERS = dict(zip(ACTIVE_NAMES[1:], "^vs>D<Ph*Xd", strict=True))  # a marker per limit that can bind


# ---------------------------------------------------------------------------------- labels and conventions


def law_label(law: dict | None) -> str | None:
    """A law's name in a legend: its preset (with any overrides), or its family + "(fitted)" for a law from a
    file without a preset."""
    if not law:
        return None
    name = law.get("preset") or f"{law.get('family', 'law')} (fitted)"
    return name + ("+" + ",".join(law["overrides"]) if law.get("overrides") else "")


def n_convention(law: dict | None) -> str | None:
    """What a law's N counts: "non-embedding", "total" or None (not said). From the law's ``params_convention``
    field (``Law.to_dict`` writes it), else from its ``conventions`` text."""
    recorded = (law or {}).get("params_convention")
    if recorded in ("total", "non_embedding"):
        return recorded.replace("_", "-")
    text = ((law or {}).get("conventions") or "").lower()
    if "non-embedding" in text or "excludes embeddings" in text:
        return "non-embedding"
    if "total parameters" in text or "incl. embeddings" in text:
        return "total"
    return None


def _convention_note(laws) -> str | None:
    """A note when the laws drawn on one axis count N differently (Kaplan's non-embedding N beside
    Chinchilla's total N), naming which law counts which."""
    by: dict[str, list[str]] = {}
    for law in laws:
        conv = n_convention(law)
        if conv is not None:
            by.setdefault(conv, []).append(law_label(law) or "?")
    if len(by) < 2:
        return None
    parts = [f"{conv} parameters for {', '.join(dict.fromkeys(names))}" for conv, names in by.items()]
    return "N counts " + "; ".join(parts) + ": the curves are not on the same footing"


def _sci(x: float) -> str:
    """3×10²⁰ (plain text, so that it stays text in every format)."""
    exp = math.floor(math.log10(x) + 1e-9)
    mant = x / 10.0**exp
    sup = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"10{sup}" if abs(mant - 1) < 1e-6 else f"{mant:.2g}×10{sup}"


def _level_text(levels) -> list[str]:
    """Loss levels as text, each with the decimals that tell it from its nearest neighbour."""
    gaps = np.diff(levels)
    near = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf]) if len(levels) > 1 else np.array([1.0])
    return [f"{v:.{max(1, math.ceil(-math.log10(g)))}f}" for v, g in zip(levels, near, strict=True)]


def _apply_labels(lines: list[dict], labels, what: str) -> None:
    """Give the lines the user's ``labels`` (one per line), or make automatic labels distinct: a law drawn
    from several files is told apart by the files' limits, then by the file names."""
    if labels is not None:
        labels = [str(x) for x in _as_list(labels)]
        if len(labels) != len(lines):
            have = ", ".join(line["label"] for line in lines)
            raise ScalesweepError(f"{what}: {len(labels)} label(s) for {len(lines)} line(s) ({have}); give one "
                                  "label per line, in order")
        for line, label in zip(lines, labels, strict=True):
            line["label"] = label
        return
    for key in (_limits_text, lambda line: Path(line["path"]).name):
        names = [line["label"] for line in lines]
        clash = {x for x in names if names.count(x) > 1}
        for line in lines:
            if line["label"] in clash:
                line["label"] += f" ({key(line)})"


def _limits_text(line) -> str:
    limits = {**line["meta"].get("constraints", {}), **line["meta"].get("hardware", {})}
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in limits.items()) \
        or "no limits"


# --------------------------------------------------------------------------------------- figures and files


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ScalesweepError("plotting needs matplotlib: pip install 'scalesweep[plot]'") from None
    return matplotlib, Figure, FigureCanvasAgg


def _size(size, default) -> tuple[float, float]:
    if size is None:
        return default
    parts = size.split(",") if isinstance(size, str) else list(size)
    try:
        w, h = (float(x) for x in parts)
    except (TypeError, ValueError):
        raise ScalesweepError(f"size must be W,H in inches (two numbers), got {size!r}") from None
    if not (0 < w <= 100 and 0 < h <= 100):
        raise ScalesweepError(f"size must be W,H in inches, each in (0, 100], got {size!r}")
    return w, h


def _figure(size, default, dpi):
    """A Figure on its own Agg canvas (no pyplot), constrained layout; size and dpi checked."""
    _, Figure, Canvas = _matplotlib()
    dpi = DEFAULT_DPI if dpi is None else dpi
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 10 <= dpi <= 2400:
        raise ScalesweepError(f"dpi must be a number from 10 to 2400, got {dpi!r}")
    fig = Figure(figsize=_size(size, default), dpi=dpi, layout="constrained")
    Canvas(fig)
    return fig


def _target(output, inputs) -> Path | None:
    """The image path, checked before anything is read: writable, a known suffix, none of the inputs."""
    if output is None:
        return None
    output = check_target(output, tuple(p for p in inputs if p is not None))
    if output.suffix.lower() not in FORMATS:
        raise ScalesweepError(f"cannot write {str(output)!r}: the image format follows the suffix "
                              f"({', '.join(FORMATS)})")
    return output


def _finish(fig, output, title, layout_done=None):
    """Title, layout (``layout_done(fig)`` runs once the layout is fixed: labels placed along lines need the
    final axes), then the file; returns the Figure."""
    matplotlib = _matplotlib()[0]
    if title:
        fig.suptitle(title)
    if layout_done is not None:
        with matplotlib.rc_context(RC):
            fig.get_layout_engine().execute(fig)
        fig.set_layout_engine("none")
        layout_done(fig)
    if output is not None:
        fmt = FORMATS[output.suffix.lower()]
        with matplotlib.rc_context(RC), atomic_path(output) as tmp:
            fig.savefig(tmp, format=fmt, dpi=fig.dpi, metadata=SAVE_METADATA[fmt])
    return fig


def _as_list(paths) -> list:
    """One path (or label) or several, as a list."""
    if paths is None:
        return []
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


# ------------------------------------------------------------------------------------------------ reading


def _open(path, columns, what, commands=None) -> tuple[list[str], dict]:
    """Column names and scalesweep metadata of a Parquet file, checked: it exists, has ``columns`` and (with
    ``commands``) was written by one of those commands. Nothing else is read."""
    name = storage.shown(path)
    if not storage.is_file(path):
        raise ScalesweepError(f"{what} {name!r} does not exist")
    try:
        with storage.opened(path) as src:
            names = pq.read_schema(src).names
    except Exception as exc:  # not Parquet
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScalesweepError(f"cannot read {what} {name!r}: {msg}") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise ScalesweepError(f"{what} {name!r} has no column {missing[0]!r} (is it a scalesweep {what}?)")
    try:
        meta = read_metadata(path)
    except ScalesweepError:
        meta = {}
    if commands is not None and meta.get("command") not in commands:
        raise ScalesweepError(f"{name!r} is not a {what} (written by `scalesweep {meta.get('command')}`)")
    return names, meta


def _rows(path, columns, max_rows=MAX_ROWS):
    """``columns`` of a Parquet file as a DataFrame; above ``max_rows`` rows, every k-th row only, read one row
    group at a time."""
    import pyarrow as pa

    pf = pq.ParquetFile(storage.input_file(path))
    step = -(-pf.metadata.num_rows // max_rows)
    if step <= 1:
        return pf.read(columns=columns).to_pandas()
    parts, start = [], 0
    for g in range(pf.num_row_groups):
        rows = pf.metadata.row_group(g).num_rows
        take = np.arange(-start % step, rows, step)
        if take.size:
            parts.append(pf.read_row_group(g, columns=columns).take(take))
        start += rows
    return pa.concat_tables(parts).to_pandas()


def _even(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of 0..n-1, evenly spaced, both ends included."""
    return np.arange(n) if n <= most else np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))


def _grid(path, outer, inner, most_outer, most_inner, *, minima=False, sorted_axes=True):
    """Sample a grid file whose rows are ``outer``-major (each value of ``outer`` holds the whole ``inner``
    axis) while reading it, one row group at a time: at most most_outer x most_inner points, evenly spaced
    indices. Returns the sampled outer values, inner values, loss (outer x inner) and, with ``minima``, for
    each sampled outer row the (inner value, loss) where its loss is lowest over the full inner axis."""
    where = f"surface file {str(path)!r}"
    pf = pq.ParquetFile(storage.input_file(path))
    total = pf.metadata.num_rows
    n_in, seen, first = total, 0, None
    for batch in pf.iter_batches(batch_size=1 << 16, columns=[outer]):
        v = batch.column(0).to_numpy(zero_copy_only=False)
        first = v[0] if first is None else first
        change = np.flatnonzero(v != first)
        if change.size:
            n_in = seen + int(change[0])
            break
        seen += v.size
    if total == 0 or total % n_in:
        raise ScalesweepError(f"{where} is not a complete grid ({total} rows, {n_in} per value of {outer})")
    io, ii = _even(total // n_in, most_outer), _even(n_in, most_inner)
    want = (io[:, None] * n_in + ii[None, :]).ravel()  # ascending row numbers of the sample
    got = {c: np.empty(want.size) for c in (outer, inner, "loss")}
    low = np.full((io.size, 2), np.nan)
    start = 0
    for g in range(pf.num_row_groups):
        stop = start + pf.metadata.row_group(g).num_rows
        a, b = np.searchsorted(want, [start, stop])
        spans = np.flatnonzero((io * n_in < stop) & ((io + 1) * n_in > start)) if minima else ()
        if a < b or len(spans):
            best = []
            for c in ("loss", outer, inner):  # a column at a time: one row group of one column in memory
                v = pf.read_row_group(g, columns=[c]).column(0).to_numpy()
                got[c][a:b] = v[want[a:b] - start]
                if c == "loss":
                    for r in spans:  # the lowest loss of each sampled outer row, over every inner value
                        lo, hi = max(io[r] * n_in, start) - start, min((io[r] + 1) * n_in, stop) - start
                        if np.isfinite(v[lo:hi]).any():
                            k = lo + int(np.nanargmin(v[lo:hi]))
                            if not v[k] >= low[r, 1]:
                                low[r, 1] = v[k]
                                best.append((r, k))
                elif c == inner:
                    for r, k in best:
                        low[r, 0] = v[k]
        start = stop
    o, i = (got[c].reshape(io.size, ii.size) for c in (outer, inner))
    if not ((o == o[:, :1]).all() and (i == i[:1]).all()) or (sorted_axes and not (
            (np.diff(o[:, 0]) > 0).all() and (np.diff(i[0]) > 0).all())):
        raise ScalesweepError(f"{where}: rows are not in {outer}-major grid order")
    return o[:, 0], i[0], got["loss"].reshape(io.size, ii.size), low


def _frontier_lines(paths) -> list[dict]:
    """The lines of frontier files, one per law (a file of several laws has a ``law`` column): label, law
    metadata, the rows, and which rows each panel can draw (feasible, finite > 0). A file with nothing to
    draw in any panel is refused, saying why."""
    lines = []
    for path in _as_list(paths):
        names, meta = _open(path, ["flops", "params", "tokens"], "frontier file", FRONTIER_COMMANDS)
        bands = [c for c in names if re.fullmatch(r"(params|tokens|loss)_p[0-9.]+", c)]
        keep = ["flops", "params", "tokens", "loss", "feasible", "active_constraint", "law", "gpu_hours", *bands]
        df = _rows(path, [c for c in keep if c in names])
        laws = meta.get("laws") or [meta.get("law") or {}]
        if "law" in df:
            by_name = {law_label(d): d for d in laws}
            values = df["law"].astype(str)
            groups = [(by_name.get(v, {"preset": v}), df[(values == v).to_numpy()]) for v in dict.fromkeys(values)]
        else:
            groups = [(laws[0], df)]
        file_lines = []
        for law, g in groups:
            ok = _positive(g["flops"])
            if "feasible" in g:
                ok &= g["feasible"].to_numpy(bool, na_value=False)
            line = {"path": path, "meta": meta, "law": law, "df": g, "bands": bands,
                    "label": law_label(law) or Path(path).name,
                    "ok": ok & _positive(g["params"]) & _positive(g["tokens"]),
                    "ok_loss": ok & _positive(g["loss"]) if "loss" in g else np.zeros(len(g), bool)}
            file_lines.append(line)
        if not any(line["ok"].any() or line["ok_loss"].any() for line in file_lines):
            raise ScalesweepError(f"frontier file {str(path)!r} has nothing to plot: {_why_empty(df)}")
        lines += file_lines
    return lines


def _positive(col) -> np.ndarray:
    v = col.to_numpy(np.float64, na_value=np.nan)
    return np.isfinite(v) & (v > 0)


def _why_empty(df) -> str:
    feasible = df["feasible"].to_numpy(bool, na_value=False) if "feasible" in df else np.ones(len(df), bool)
    if not feasible.any():
        return "every row is infeasible"
    if "loss" in df and _positive(df["loss"])[feasible].any():
        return "its law gives a loss at each budget but no allocation (params and tokens are empty)"
    return "no feasible row has finite params and tokens"


def _allocating(lines, what) -> list[dict]:
    """Frontier lines for an overlay that needs N and D: a file none of whose laws allocates is refused."""
    for path in dict.fromkeys(line["path"] for line in lines):
        if not any(line["ok"].any() for line in lines if line["path"] == path):
            df = next(line["df"] for line in lines if line["path"] == path)
            raise ScalesweepError(f"frontier file {str(path)!r} has nothing to plot on a {what}: {_why_empty(df)}")
    return lines


# ---------------------------------------------------------------------------------------------- drawing


def _handles():
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return Line2D, Patch


def _legend(fig, handles, note, ncols) -> None:
    """The figure's one legend, below the axes; a note on the parameter conventions is its title."""
    legend = fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), ncols), fontsize=8,
                        frameon=False, title=note, title_fontsize=8)
    legend.get_title().set_style("italic")


def _limit_markers(ax, line, ok, x, y, color, used: set) -> None:
    """A marker at each drawn row (``ok``) where a limit binds, shaped by the limit; its name goes into
    ``used``."""
    if "active_constraint" not in line["df"]:
        return
    active = line["df"]["active_constraint"].astype(str).to_numpy()
    for name, marker in LIMIT_MARKERS.items():
        at = ok & (active == name)
        if at.any():
            ax.plot(np.asarray(x)[at], np.asarray(y)[at], marker, color=color, mec="black", mew=0.6, ms=6,
                    ls="none", label="_nolegend_")
            used.add(name)


def _limit_handles(used) -> list:
    Line2D, _ = _handles()
    return [Line2D([], [], marker=m, ls="none", mfc="0.7", mec="black", ms=6, label=f"{name} binds")
            for name, m in LIMIT_MARKERS.items() if name in used]


def _compute_axis(lines) -> tuple[str, float]:
    """The top axis of a compute panel: GPU-hours when every file has them at one rate, else PF-days."""
    if all("gpu_hours" in line["df"] for line in lines):
        rates = np.concatenate([(line["df"]["gpu_hours"] / line["df"]["flops"]).to_numpy(np.float64, na_value=np.nan)
                                for line in lines])
        rates = rates[np.isfinite(rates) & (rates > 0)]
        if rates.size and rates.max() <= rates.min() * (1 + 1e-9):
            gpus = sorted({line["meta"].get("hardware", {}).get("gpu") or "" for line in lines} - {""})
            return f"GPU-hours ({', '.join(gpus)})" if gpus else "GPU-hours", 1.0 / float(np.median(rates))
    return "PF-days", PF_DAY


def plot_frontier(paths, output=None, *, labels=None, title=None, size=None, dpi=None):
    """Params, tokens and loss against compute (log-log) for frontier files: one line per law of each file
    (a file written for several laws has a ``law`` column), the widest percentile band shaded, a marker
    where a limit binds. A law with nothing to draw is listed as such; a file with nothing to draw is
    refused. Returns the Figure."""
    _matplotlib()
    paths = _as_list(paths)
    if not paths:
        raise ScalesweepError("plot frontier: give at least one frontier file")
    output = _target(output, paths)
    from matplotlib.ticker import LogFormatter

    lines = _frontier_lines(paths)
    _apply_labels(lines, labels, "plot frontier")
    panels = ["params", "tokens"] + (["loss"] if any(line["ok_loss"].any() for line in lines) else [])
    fig = _figure(size, (3.9 * len(panels) + 0.6, 4.4), dpi)
    axes = fig.subplots(1, len(panels), sharex=True, squeeze=False)[0]
    Line2D, Patch = _handles()
    handles, used, bands = [], set(), set()
    for i, line in enumerate(lines):
        color, df = f"C{i % 10}", line["df"]
        drawn = False
        for ax, what in zip(axes, panels, strict=True):
            ok = line["ok_loss"] if what == "loss" else line["ok"]
            if not ok.any():
                continue
            drawn = True
            ax.plot(df["flops"][ok], df[what][ok], color=color, lw=1.6, label=line["label"])
            qs = sorted(float(c.rsplit("_p", 1)[1]) for c in line["bands"] if c.startswith(what + "_p"))
            if len(qs) >= 2:
                lo, hi = f"{what}_p{qs[0]:g}", f"{what}_p{qs[-1]:g}"
                ax.fill_between(df["flops"][ok], df[lo][ok], df[hi][ok], color=color, alpha=0.2, lw=0)
                bands.add(f"p{qs[0]:g}–p{qs[-1]:g}")
            _limit_markers(ax, line, ok, df["flops"], df[what], color, used)
        handles.append(Line2D([], [], color=color, lw=1.6,
                              label=line["label"] if drawn else f"{line['label']} (nothing to draw)"))
    if bands:
        handles.append(Patch(color="0.5", alpha=0.3, lw=0, label=f"bootstrap band {', '.join(sorted(bands))}"))
    handles += _limit_handles(used)
    top, per = _compute_axis(lines)
    ylabels = {"params": "compute-optimal params N", "tokens": "compute-optimal tokens D",
               "loss": "loss at the optimum (nats/token)"}
    for ax, what in zip(axes, panels, strict=True):
        ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOP)", ylabel=ylabels[what])
        ax.grid(True, which="major", alpha=0.3)
        if what == "loss":  # a loss axis spans about a decade: plain numbers, minor ticks labelled
            ax.yaxis.set_major_formatter(LogFormatter())
            ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        sec = ax.secondary_xaxis("top", functions=(lambda c: c / per, lambda u: u * per))
        sec.set_xlabel(top)
    _legend(fig, handles, _convention_note(line["law"] for line in lines), 5)
    return _finish(fig, output, "compute-optimal frontier" if title is None else title)


def plot_surface(path, output=None, *, frontier=None, levels: int = 20, labels=None, title=None, size=None,
                 dpi=None):
    """Loss over the params x tokens grid of a surface file: filled contours on log-spaced levels (fine near
    the minimum, where the frontier runs), labelled iso-loss lines, iso-FLOP lines (C = 6ND) labelled with
    their budget, and the frontier files in ``frontier`` on top with a marker at each iso-FLOP budget. An
    IsoFLOP-form surface draws the IsoFLOP curves (``plot_isoflop``). Returns the Figure."""
    _matplotlib()
    frontiers = _as_list(frontier)
    output = _target(output, (path, *frontiers))
    _, meta = _open(path, ["params", "tokens", "loss"], "surface file", ("surface",))
    if meta.get("form") == "isoflop":
        return _isoflop_figure(_surface_curves(path, meta), frontiers, output, labels, title, size, dpi)
    if meta.get("form") != "grid":
        raise ScalesweepError(f"surface file {str(path)!r} is not a params x tokens grid (form "
                              f"{meta.get('form')!r})")
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= 200:
        raise ScalesweepError(f"levels must be a whole number from 2 to 200, got {levels!r}")
    n, d, z, _ = _grid(path, "params", "tokens", MAX_AXIS, MAX_AXIS)
    if n.size < 2 or d.size < 2:
        raise ScalesweepError(f"surface file {str(path)!r} is not a complete grid of at least 2 x 2 points")
    z = np.ma.masked_invalid(z)
    if z.count() == 0:
        raise ScalesweepError(f"surface file {str(path)!r} has no finite loss to draw")
    flines = _allocating(_frontier_lines(frontiers), "surface") if frontiers else []
    _apply_labels(flines, labels, "plot surface")
    from matplotlib.colors import BoundaryNorm

    fig = _figure(size, (7.0, 5.8), dpi)
    ax = fig.add_subplot()
    lo, hi = float(z.min()), float(z.max())
    span = hi - lo if hi > lo else max(abs(lo), 1.0) * 1e-6
    bounds = lo + np.concatenate([[0.0], np.geomspace(span * 10.0**-LEVEL_DECADES, span, levels)])
    filled = ax.contourf(d, n, z, levels=bounds, cmap="viridis", norm=BoundaryNorm(bounds, 256), extend="neither")
    filled.set_rasterized(True)  # the fill as an image in PDF/SVG; lines and text stay vectors
    shown = bounds[1:-1][:: max(1, levels // 8)]
    text = dict(zip(shown, _level_text(shown), strict=True))
    fig.colorbar(filled, ax=ax, label="loss L (nats/token)", ticks=shown, format=lambda v, _: text.get(v, f"{v:.3g}"))
    iso = ax.contour(d, n, z, levels=shown, colors="white", linewidths=0.6, alpha=0.9)
    nn, dd = np.meshgrid(n, d, indexing="ij")
    c_lo, c_hi = (math.log10(FLOPS_PER_PARAM_TOKEN * n[i] * d[i]) for i in (0, -1))
    decades = np.arange(math.ceil(c_lo + 0.1 * (c_hi - c_lo)), math.floor(c_hi - 0.1 * (c_hi - c_lo)) + 1)
    decades = decades[:: max(1, -(-decades.size // 7))]
    budgets = ax.contour(d, n, np.log10(FLOPS_PER_PARAM_TOKEN * nn * dd), levels=decades, colors="black",
                         linestyles="--", linewidths=0.7, alpha=0.7)
    Line2D, _ = _handles()
    from matplotlib.patheffects import withStroke

    handles = [Line2D([], [], color="white", lw=0.8, label="iso-loss L", path_effects=[withStroke(linewidth=2.2,
                                                                                                 foreground="0.5")]),
               Line2D([], [], color="black", ls="--", lw=0.7, label="iso-FLOP C = 6ND")]
    used: set[str] = set()
    marked = False
    for line, color in zip(flines, OVERLAY_COLORS * len(flines), strict=False):
        df, ok = line["df"], line["ok"]
        if not ok.any():
            handles.append(Line2D([], [], color=color, lw=2, label=f"frontier: {line['label']} (nothing to draw)"))
            continue
        ax.plot(df["tokens"][ok], df["params"][ok], color=color, lw=2, label=f"frontier: {line['label']}")
        _limit_markers(ax, line, ok, df["tokens"], df["params"], color, used)
        lc = np.log10(df["flops"][ok].to_numpy(float))
        o = np.argsort(lc)
        at = 10.0 ** decades[(decades >= lc.min()) & (decades <= lc.max())]
        if at.size:
            marked = True
            ax.plot(10 ** np.interp(np.log10(at), lc[o], np.log10(df["tokens"][ok].to_numpy(float))[o]),
                    10 ** np.interp(np.log10(at), lc[o], np.log10(df["params"][ok].to_numpy(float))[o]),
                    "o", color=color, mec="black", mew=0.6, ms=5, label="_nolegend_")
        handles.append(Line2D([], [], color=color, lw=2, label=f"frontier: {line['label']}"))
    if marked:
        handles.append(Line2D([], [], marker="o", ls="none", mfc="0.7", mec="black", mew=0.6, ms=5,
                              label="frontier at the iso-FLOP budgets"))
    handles += _limit_handles(used)
    ax.set(xscale="log", yscale="log", xlim=(d[0], d[-1]), ylim=(n[0], n[-1]), xlabel="training tokens D",
           ylabel="parameters N")
    _legend(fig, handles, _convention_note([meta.get("law"), *(line["law"] for line in flines)]), 3)
    # each iso-FLOP label 15% along its line's visible part from the upper left (the frontier runs mid-way)
    ln, ld = np.log10(n[[0, -1]]), np.log10(d[[0, -1]])
    c6 = decades - math.log10(FLOPS_PER_PARAM_TOKEN)
    x = np.maximum(ld[0], c6 - ln[1]) + 0.15 * (np.minimum(ld[1], c6 - ln[0]) - np.maximum(ld[0], c6 - ln[1]))
    spots = list(zip(10**x, 10 ** (c6 - x), strict=True))

    def place_labels(fig):  # along the lines, once the axes have their final shape
        ax.clabel(iso, fmt=text, fontsize=7)
        for t in ax.clabel(budgets, fmt=lambda v: f"{_sci(10.0**v)} FLOP", fontsize=7, manual=spots):
            t.set_bbox(dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.75))

    name = law_label(meta.get("law")) or Path(path).name
    return _finish(fig, output, f"loss surface: {name}" if title is None else title, place_labels)


# ------------------------------------------------------------------------------------------ IsoFLOP curves


def _surface_curves(path, meta) -> dict:
    """The curves of an IsoFLOP-form surface: at most MAX_CURVES budgets, MAX_CURVE_POINTS points each, and
    each budget's minimum over all of its rows."""
    c, n, z, low = _grid(path, "flops", "params", MAX_CURVES, MAX_CURVE_POINTS, minima=True, sorted_axes=False)
    curves = [{"flops": c[k], "params": n, "loss": z[k], "min": tuple(low[k]), "fit": None} for k in range(c.size)]
    name = law_label(meta.get("law")) or Path(path).name
    return {"curves": curves, "name": name, "law": meta.get("law"), "runs": False}


def _runs_curves(path, columns) -> dict:
    """The curves of a runs file: runs grouped by budget (6ND within 1%), budgets of at least 3 runs kept; each
    curve's minimum is the vertex of a parabola in log N (Chinchilla's Approach 2), or its lowest run when
    the parabola opens downward or has its vertex outside the runs."""
    from .fit import read_runs

    n, d, loss = read_runs(path, **(columns or {}))
    c = FLOPS_PER_PARAM_TOKEN * n * d
    order = np.argsort(c, kind="stable")
    groups = [g for g in np.split(order, np.flatnonzero(np.diff(np.log10(c[order])) > BUDGET_TOLERANCE) + 1)
              if np.unique(n[g]).size >= 3]
    if not groups:
        raise ScalesweepError(f"runs file {str(path)!r} has no budget with 3 or more model sizes (runs share a "
                              "budget when 6ND, or their flops, agree within 1%)")
    curves = []
    for g in (groups[k] for k in _even(len(groups), MAX_CURVES)):
        g = g[np.argsort(n[g], kind="stable")]
        x = np.log10(n[g])
        a, b, c0 = np.polyfit(x, loss[g], 2)
        v = -b / (2 * a) if a > 0 else np.nan
        best = (10**v, c0 - b * b / (4 * a)) if x[0] <= v <= x[-1] else (n[g][np.argmin(loss[g])], loss[g].min())
        xs = np.linspace(x[0], x[-1], 64)
        curves.append({"flops": float(np.exp(np.log(c[g]).mean())), "params": n[g], "loss": loss[g], "min": best,
                       "fit": (10**xs, np.polyval([a, b, c0], xs)) if a > 0 else None})
    return {"curves": curves, "name": Path(path).name, "law": None, "runs": True}


def plot_isoflop(path, output=None, *, frontier=None, columns=None, labels=None, title=None, size=None, dpi=None):
    """Loss against N per budget (Chinchilla's IsoFLOP curves), the minimum of each curve marked, from an
    IsoFLOP-form surface file or a runs file (CSV or Parquet: params, tokens or flops, loss; ``columns``
    renames them as ``fit.read_runs`` takes them). Frontier files in ``frontier`` are drawn as loss against
    N. Returns the Figure."""
    _matplotlib()
    frontiers = _as_list(frontier)
    output = _target(output, (path, *frontiers))
    meta = {}
    if Path(str(path)).suffix.lower() in (".parquet", ".pq") and storage.is_file(path):
        _, meta = _open(path, [], "IsoFLOP file")
    if meta.get("command") == "surface":
        if meta.get("form") != "isoflop":
            raise ScalesweepError(f"{str(path)!r} is a params x tokens surface, not IsoFLOP curves: draw it with "
                                  "plot surface")
        _open(path, ["params", "flops", "loss"], "surface file")
        data = _surface_curves(path, meta)
    elif meta.get("command"):
        raise ScalesweepError(f"{str(path)!r} is not an IsoFLOP surface or a runs file (written by "
                              f"`scalesweep {meta['command']}`)")
    else:
        data = _runs_curves(path, columns)
    return _isoflop_figure(data, frontiers, output, labels, title, size, dpi)


def _isoflop_figure(data, frontiers, output, labels, title, size, dpi):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, LogNorm

    flines = _frontier_lines(frontiers) if frontiers else []
    _apply_labels(flines, labels, "plot isoflop")
    curves = data["curves"]
    fig = _figure(size, (6.8, 5.0), dpi)
    ax = fig.add_subplot()
    budgets = np.array([cv["flops"] for cv in curves])
    cmap = ListedColormap(_matplotlib()[0].colormaps["viridis"](np.linspace(0.0, 0.85, 256)))  # no pale yellow
    norm = LogNorm(budgets.min(), budgets.max() if budgets.max() > budgets.min() else budgets.min() * 10)
    Line2D, _ = _handles()
    for cv in curves:
        color = cmap(norm(cv["flops"]))
        if data["runs"]:  # the points, and the parabola through them
            ax.plot(cv["params"], cv["loss"], "o", color=color, ms=4, label="_nolegend_")
            if cv["fit"] is not None:
                ax.plot(*cv["fit"], color=color, lw=1.2, label="_nolegend_")
        else:
            ax.plot(cv["params"], cv["loss"], color=color, lw=1.4, label="_nolegend_")
        ax.plot(*cv["min"], "*", color="black", ms=9, mec="white", mew=0.5, label="_nolegend_")
    handles = [Line2D([], [], marker="*", ls="none", color="black", ms=9, label="minimum of each curve")]
    if data["runs"]:
        handles.insert(0, Line2D([], [], marker="o", color="0.4", ms=4, lw=1.2, label="runs, parabola in log N"))
    for i, line in enumerate(flines):
        df, ok = line["df"], line["ok"] & line["ok_loss"]
        color = f"C{(i + 3) % 10}"
        if ok.any():
            ax.plot(df["params"][ok], df["loss"][ok], "--", color=color, lw=1.4, label=f"frontier: {line['label']}")
        handles.append(Line2D([], [], ls="--", color=color, lw=1.4, label=f"frontier: {line['label']}"
                              + ("" if ok.any() else " (nothing to draw)")))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="budget C (FLOP)")
    ax.set(xscale="log", xlabel="parameters N", ylabel="loss L (nats/token)")
    ax.grid(True, which="major", alpha=0.3)
    _legend(fig, handles, _convention_note([data["law"], *(line["law"] for line in flines)]), 3)
    return _finish(fig, output, f"IsoFLOP curves: {data['name']}" if title is None else title)


# -------------------------------------------------------------------------------------------- diagnostics


def plot_fit(law_file, runs_file=None, output=None, *, columns=None, labels=None, title=None, size=None, dpi=None):
    """A fit against its runs: predicted vs observed loss (with y = x), and residuals (observed - predicted)
    against compute C = 6ND, coloured by N. ``runs_file`` None: the runs file the law file's fit names;
    ``columns`` renames the runs' columns as ``fit.read_runs`` takes them. Runs the fit left out
    (``--exclude-highest``) are drawn hollow. ``labels``: one name for the law. Returns the Figure."""
    _matplotlib()
    from matplotlib.colors import LogNorm

    from . import fit as F
    from .laws import load_law_file
    from .readers import json_loads

    law = load_law_file(law_file)
    label = law_label(law.to_dict())
    if labels is not None:
        labels = _as_list(labels)
        if len(labels) != 1:
            raise ScalesweepError(f"plot fit: {len(labels)} labels for one law; give one label")
        label = str(labels[0])
    where = f"law file {str(law_file)!r}"
    data = json_loads(storage.read_bytes(law_file), where) if Path(str(law_file)).suffix.lower() == ".json" else {}
    info = data.get("fit") if isinstance(data, dict) and isinstance(data.get("fit"), dict) else {}
    left = info.get("excluded_highest_loss")
    if runs_file is None:
        runs_file = info.get("runs_file")
        if not isinstance(runs_file, str):
            raise ScalesweepError(f"law file {str(law_file)!r} names no runs file: give the runs file")
    output = _target(output, (law_file, runs_file))
    if not law.spec.has_loss:
        raise ScalesweepError(f"law file {str(law_file)!r}: family {law.family} has no loss to compare with runs")
    n, d, observed = F.read_runs(runs_file, **(columns or {}))
    predicted = np.asarray(law.loss(n, d), dtype=np.float64)
    resid = observed - predicted
    left_out = F._weights(n.size, left if isinstance(left, int) and 0 < left < n.size else 0, observed) == 0
    used = ~left_out & np.isfinite(resid)
    rmse = float(np.sqrt(np.mean(resid[used] ** 2))) if used.any() else float("nan")
    fig = _figure(size, (10.0, 4.4), dpi)
    a1, a2 = fig.subplots(1, 2)
    norm = LogNorm(n.min(), n.max() if n.max() > n.min() else n.min() * 10)
    kw = dict(c=n[used], cmap="viridis", norm=norm, s=14, edgecolors="none")
    a1.scatter(predicted[used], observed[used], **kw)
    points = a2.scatter(FLOPS_PER_PARAM_TOKEN * n[used] * d[used], resid[used], **kw)
    Line2D, _ = _handles()
    handles = [Line2D([], [], color="0.3", ls="--", lw=1, label="predicted = observed")]
    if left_out.any():
        hollow = dict(facecolors="none", edgecolors="0.3", s=16, linewidths=0.8)
        a1.scatter(predicted[left_out], observed[left_out], **hollow)
        a2.scatter(FLOPS_PER_PARAM_TOKEN * n[left_out] * d[left_out], resid[left_out], **hollow)
        handles.append(Line2D([], [], marker="o", ls="none", mfc="none", mec="0.3",
                              label=f"left out of the fit ({int(left_out.sum())} highest losses)"))
    span = [np.nanmin([predicted.min(), observed.min()]), np.nanmax([predicted.max(), observed.max()])]
    a1.plot(span, span, "--", color="0.3", lw=1)
    a1.set(xlabel="predicted loss (nats/token)", ylabel="observed loss (nats/token)")
    a1.text(0.03, 0.97, f"{label}\n{int(used.sum())} runs, RMSE {rmse:.3g} nats/token", transform=a1.transAxes,
            va="top", fontsize=8)
    a2.axhline(0.0, color="0.3", ls="--", lw=1)
    a2.set(xscale="log", xlabel="training compute C = 6ND (FLOP)", ylabel="observed − predicted (nats/token)")
    for ax in (a1, a2):
        ax.grid(True, alpha=0.3)
    fig.colorbar(points, ax=[a1, a2], label="parameters N")
    _legend(fig, handles, None, 2)
    default = f"fit diagnostics: {label} on {Path(runs_file).name}"
    return _finish(fig, output, default if title is None else title)


