"""Plots from the Parquet files the other commands write (matplotlib, the optional extra ``plot``).

* ``plot_frontier``: params and tokens against flops, log-log, one line per law of each file (a file of
  several laws has a ``law`` column), with a shaded band where a file holds percentile columns
  (``frontier --bands``). Allocation rules (no loss) are drawn like any frontier: only params and tokens are.
* ``plot_surface``: loss contours over a params x tokens surface (``surface`` grid form), with the frontier
  of a frontier file overlaid (one line per law).

The image format follows the output's suffix: .png or .svg. Files are written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .errors import ScalesweepError
from .output import atomic_path, check_target
from .tables import read_metadata

FORMATS = {".png": "png", ".svg": "svg"}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ScalesweepError("plotting needs matplotlib: pip install 'scalesweep[plot]'") from None
    return plt


FRONTIER_COMMANDS = ("frontier", "lookup", "lookup query", "target-loss")
OVERLAY_COLORS = ["white", "tab:red", "tab:orange", "black", "tab:pink", "tab:cyan"]  # frontiers on the contours


def _read(path, columns, what, commands=None):
    path = Path(path)
    if not path.is_file():
        raise ScalesweepError(f"{what} {str(path)!r} does not exist")
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # not Parquet
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScalesweepError(f"cannot read {what} {str(path)!r}: {msg}") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise ScalesweepError(f"{what} {str(path)!r} has no column {missing[0]!r} (is it a scalesweep {what}?)")
    try:
        meta = read_metadata(path)
    except ScalesweepError:
        meta = {}
    if commands is not None and meta.get("command") not in commands:
        raise ScalesweepError(f"{str(path)!r} is not a {what} (written by `scalesweep {meta.get('command')}`)")
    table = pq.read_table(path)
    label = meta.get("law", {}) or {}
    name = label.get("preset") or path.stem
    if label.get("overrides"):
        name += "+" + ",".join(label["overrides"])
    return table, names, name


def _target(output, inputs) -> Path:
    """The image path, checked before anything is read: writable, a known suffix, none of the inputs."""
    output = check_target(output, tuple(p for p in inputs if p is not None))
    if output.suffix.lower() not in FORMATS:
        raise ScalesweepError(f"cannot write {str(output)!r}: the image format follows the suffix (.png or .svg)")
    return output


def _save(fig, output: Path):
    fmt = FORMATS[output.suffix.lower()]
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")


def _frontier_lines(path) -> list[dict]:
    """The lines of a frontier file, one per law (a file of several laws has a ``law`` column): label, the
    frame of its rows, and which rows can be drawn on log-log axes (feasible, params and tokens finite > 0).
    A file whose every line is empty is refused, saying why."""
    table, names, name = _read(path, ["flops", "params", "tokens"], "frontier file", FRONTIER_COMMANDS)
    df = table.to_pandas()
    if "law" in names:
        laws = df["law"].astype(str)
        groups = [(law, df[(laws == law).to_numpy()]) for law in dict.fromkeys(laws)]
    else:
        groups = [(name, df)]
    lines = []
    for label, g in groups:
        ok = np.ones(len(g), bool) if "feasible" not in names else g["feasible"].to_numpy(bool, na_value=False)
        for c in ("flops", "params", "tokens"):
            v = g[c].to_numpy(np.float64, na_value=np.nan)
            ok = ok & np.isfinite(v) & (v > 0)
        lines.append({"label": label, "df": g, "ok": ok, "names": names})
    if not any(line["ok"].any() for line in lines):
        raise ScalesweepError(f"frontier file {str(path)!r} has nothing to plot: {_why_empty(df, names)}")
    return lines


def _why_empty(df, names) -> str:
    feasible = df["feasible"].to_numpy(bool, na_value=False) if "feasible" in names else np.ones(len(df), bool)
    if not feasible.any():
        return "every row is infeasible"
    loss = df["loss"].to_numpy(np.float64, na_value=np.nan) if "loss" in names else np.full(len(df), np.nan)
    if np.isfinite(loss[feasible]).any():
        return "its law gives a loss at each budget but no allocation (params and tokens are empty)"
    return "no feasible row has finite params and tokens"


def _unique_labels(lines: list[tuple[object, dict]]) -> None:
    """Prefix a label shared by lines of different files with the file's name."""
    labels = [line["label"] for _, line in lines]
    for path, line in lines:
        if labels.count(line["label"]) > 1:
            line["label"] = f"{Path(path).name}: {line['label']}"


def plot_frontier(paths, output, *, title: str | None = None) -> None:
    """Params and tokens vs flops (log-log): one line per law of each frontier file (a file written for
    several laws has a ``law`` column), bands shaded when present. A law with nothing to draw (a loss at a
    budget but no allocation, or only infeasible rows) is listed in the legend as such; a file with nothing
    to draw at all is refused."""
    plt = _pyplot()
    if not paths:
        raise ScalesweepError("plot frontier: give at least one frontier file")
    output = _target(output, paths)
    lines = [(path, line) for path in paths for line in _frontier_lines(path)]
    _unique_labels(lines)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    try:
        for _, line in lines:
            df, ok, names, name = line["df"], line["ok"], line["names"], line["label"]
            for ax, what in zip(axes, ("params", "tokens"), strict=True):
                if not ok.any():
                    ax.plot([], [], label=f"{name} (nothing to draw)")
                    continue
                (drawn,) = ax.plot(df["flops"][ok], df[what][ok], label=name)
                qs = sorted(float(m.group(1)) for c in names if (m := re.fullmatch(rf"{what}_p([0-9.]+)", c)))
                if len(qs) >= 2:
                    lo, hi = f"{what}_p{qs[0]:g}", f"{what}_p{qs[-1]:g}"
                    ax.fill_between(df["flops"][ok], df[lo][ok], df[hi][ok], color=drawn.get_color(), alpha=0.2,
                                    label=f"{name} p{qs[0]:g}-p{qs[-1]:g}")
        for ax, what in zip(axes, ("params", "tokens"), strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("training compute C (FLOPs)")
            ax.set_ylabel(f"compute-optimal {what}")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(title or "compute-optimal frontier")
        _save(fig, output)
    finally:
        plt.close(fig)


def plot_surface(path, output, *, frontier=None, levels: int = 20, title: str | None = None) -> None:
    """Loss contours over the params x tokens grid of a surface file, the frontier of ``frontier`` on top."""
    plt = _pyplot()
    output = _target(output, (path, frontier))
    table, _, name = _read(path, ["params", "tokens", "loss"], "surface file", ("surface",))
    meta = read_metadata(path)
    if meta.get("form") != "grid":
        raise ScalesweepError(f"surface file {str(path)!r} is not a params x tokens grid (use `surface --tokens-range`)")
    n = table.column("params").to_numpy()
    d = table.column("tokens").to_numpy()
    loss = table.column("loss").to_numpy().astype(np.float64)
    n_axis = np.unique(n)
    d_axis = np.unique(d)
    if n_axis.size * d_axis.size != loss.size or n_axis.size < 2 or d_axis.size < 2:
        raise ScalesweepError(f"surface file {str(path)!r} is not a complete grid of at least 2 x 2 points")
    z = loss.reshape(n_axis.size, d_axis.size)  # params-major, as `surface` writes it
    if not (np.array_equal(n[:: d_axis.size], n_axis) and np.array_equal(d[: d_axis.size], d_axis)):
        raise ScalesweepError(f"surface file {str(path)!r}: rows are not in params-major grid order")
    flines = _frontier_lines(frontier) if frontier is not None else []
    fig, ax = plt.subplots(figsize=(6.5, 5))
    try:
        cs = ax.contourf(d_axis, n_axis, z, levels=levels, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="loss (nats/token)")
        for line, color in zip(flines, OVERLAY_COLORS * len(flines), strict=False):
            fdf, ok = line["df"], line["ok"]
            if ok.any():
                ax.plot(fdf["tokens"][ok], fdf["params"][ok], color=color, lw=2, label=f"frontier ({line['label']})")
            else:
                ax.plot([], [], color=color, lw=2, label=f"frontier ({line['label']}, nothing to draw)")
        if flines:
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(d_axis[0], d_axis[-1])
        ax.set_ylim(n_axis[0], n_axis[-1])
        ax.set_xlabel("training tokens D")
        ax.set_ylabel("parameters N")
        ax.set_title(title or f"loss surface ({name})")
        _save(fig, output)
    finally:
        plt.close(fig)
