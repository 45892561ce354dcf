"""Plots from the Parquet files the other commands write (matplotlib, the optional extra ``plot``).

* ``plot_frontier``: params and tokens against flops, log-log, one line per file (several laws on one
  chart), with a shaded band where a file holds percentile columns (``frontier --bands``).
* ``plot_surface``: loss contours over a params x tokens surface (``surface`` grid form), with the frontier
  of a frontier file overlaid.

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


def _save(fig, output):
    output = check_target(output)
    fmt = FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise ScalesweepError(f"cannot write {str(output)!r}: the image format follows the suffix (.png or .svg)")
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")


def plot_frontier(paths, output, *, title: str | None = None) -> None:
    """Params and tokens vs flops (log-log) for each frontier file; bands shaded when present."""
    plt = _pyplot()
    if not paths:
        raise ScalesweepError("plot frontier: give at least one frontier file")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    try:
        for path in paths:
            table, names, name = _read(path, ["flops", "params", "tokens"], "frontier file", FRONTIER_COMMANDS)
            df = table.to_pandas()
            ok = df["feasible"].to_numpy() if "feasible" in names else np.ones(len(df), bool)
            for ax, what in zip(axes, ("params", "tokens"), strict=True):
                (line,) = ax.plot(df["flops"][ok], df[what][ok], label=name)
                qs = sorted(float(m.group(1)) for c in names if (m := re.fullmatch(rf"{what}_p([0-9.]+)", c)))
                if len(qs) >= 2:
                    lo, hi = f"{what}_p{qs[0]:g}", f"{what}_p{qs[-1]:g}"
                    ax.fill_between(df["flops"], df[lo], df[hi], color=line.get_color(), alpha=0.2,
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
    fig, ax = plt.subplots(figsize=(6.5, 5))
    try:
        cs = ax.contourf(d_axis, n_axis, z, levels=levels, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="loss (nats/token)")
        if frontier is not None:
            ftable, fnames, fname = _read(frontier, ["flops", "params", "tokens"], "frontier file", FRONTIER_COMMANDS)
            fdf = ftable.to_pandas()
            ok = fdf["feasible"].to_numpy() if "feasible" in fnames else np.ones(len(fdf), bool)
            ax.plot(fdf["tokens"][ok], fdf["params"][ok], color="white", lw=2, label=f"frontier ({fname})")
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
