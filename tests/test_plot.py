"""Figures: checked by reading the written files back (SVG text elements, PDF pages and fonts, PNG size), by the
returned Figure's axes, lines and legend, and by pixel statistics; bad inputs give one line."""

import builtins
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError

from .helpers import assert_one_line_error, run, write_frontier_file

pytest.importorskip("matplotlib")
P = pytest.importorskip("scalesweep.plot")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FLOPS = [1e20, 1e21, 1e22, 1e23]
H22 = ss.PRESETS["hoffmann2022"].params


def chinchilla_opt(c, p=H22):
    """The closed-form optimum of L = E + A/N^a + B/D^b on C = 6ND (Hoffmann et al. 2022, Eq. 4)."""
    a, b = p["alpha"], p["beta"]
    g = (a * p["A"] / (b * p["B"])) ** (1 / (a + b))
    n = g * (np.asarray(c, float) / 6) ** (b / (a + b))
    return n, np.asarray(c, float) / (6 * n)


def chinchilla_loss(n, d, p=H22):
    return p["E"] + p["A"] / np.asarray(n, float) ** p["alpha"] + p["B"] / np.asarray(d, float) ** p["beta"]


def svg_texts(path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(el.itertext()) for el in root.iter("{http://www.w3.org/2000/svg}text")]


def pdf_texts(data: bytes) -> list[str]:
    """The strings shown in a PDF's content streams (Type 42 fonts: UTF-16BE codes), one per text object."""
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            stream = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        for obj in re.findall(rb"BT(.*?)ET", stream, re.S):
            raw = b"".join(re.sub(rb"\\(.)", lambda x: x.group(1), s, flags=re.S)
                           for s in re.findall(rb"\(((?:\\.|[^\\)])*)\)", obj))
            out.append(raw.decode("utf-16-be", "replace"))
    return out


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    return struct.unpack(">II", data[16:24])


def legend_texts(fig) -> list[str]:
    (legend,) = fig.legends
    return [t.get_text() for t in legend.get_texts()]


def data_lines(ax) -> list:
    """The lines of an axes that carry a law's data (not markers)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() != "None" and not ln.get_label().startswith("_")]


@pytest.fixture()
def files(tmp_path):
    write_frontier_file(tmp_path / "f.parquet", "hoffmann2022", [1e19, 1e21, 1e23, 1e25])
    df = ss.frontier("besiroglu2024", [1e19, 1e21, 1e23, 1e25])
    write_frontier_file(tmp_path / "b.parquet", "besiroglu2024", [1e19, 1e21, 1e23, 1e25], {
        "params_p5": df.params * 0.8, "params_p95": df.params * 1.2, "tokens_p5": df.tokens * 0.8,
        "tokens_p95": df.tokens * 1.2, "loss_p5": df.loss - 0.05, "loss_p95": df.loss + 0.1})
    ss.write_surface(tmp_path / "s.parquet", "hoffmann2022", np.geomspace(1e7, 1e11, 30),
                     tokens=np.geomspace(1e9, 1e13, 40))
    ss.write_surface(tmp_path / "iso.parquet", "hoffmann2022", np.geomspace(1e7, 1e11, 30), flops=[1e20, 1e21])
    return tmp_path


# ----------------------------------------------------------------------------------- formats and options


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_format_by_suffix_with_size_and_dpi(files, suffix):
    out = files / f"f{suffix}"
    fig = P.plot_frontier([files / "f.parquet", files / "b.parquet"], out, size=(8, 3), dpi=100)
    data = out.read_bytes()
    names = ["hoffmann2022", "besiroglu2024", "compute-optimal params N", "training compute C (FLOP)", "PF-days"]
    if suffix == ".png":
        assert png_size(data) == (800, 300)
    elif suffix == ".svg":
        texts = svg_texts(out)
        assert all(name in texts for name in names), texts
        root = ET.parse(out).getroot()
        assert (root.get("width"), root.get("height")) == ("576pt", "216pt")  # 8 x 3 inches
    else:
        assert data.startswith(b"%PDF-")
        assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) == 1
        assert b"/FontFile2" in data and b"DejaVuSans" in data  # TrueType, embedded
        assert re.search(rb"/MediaBox\s*\[\s*0\s+0\s+576\s+216\s*\]", data)
        texts = pdf_texts(data)  # "ff" and "fi" are drawn as ligature glyphs, coded apart from the letters
        assert all(name in texts for name in names[1:]), texts
        assert any(re.fullmatch("ho.{1,2}mann2022", t) for t in texts), texts
    assert fig.get_size_inches().tolist() == [8, 3]


def test_cli_writes_png(files):
    res = CliRunner().invoke(cli, ["plot", "frontier", str(files / "f.parquet"), str(files / "b.parquet"),
                                   "-o", str(files / "f.png")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert png_size((files / "f.png").read_bytes()) == tuple(round(x * P.DEFAULT_DPI) for x in (12.3, 4.4))
    res = CliRunner().invoke(cli, ["plot", "surface", str(files / "s.parquet"), "--frontier", str(files / "f.parquet"),
                                   "-o", str(files / "s.png")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (files / "s.png").read_bytes().startswith(PNG_MAGIC)


def test_without_output_a_figure_is_returned_and_nothing_written(files):
    before = sorted(os.listdir(files))
    fig = P.plot_surface(files / "s.parquet")
    assert type(fig).__name__ == "Figure" and sorted(os.listdir(files)) == before
    assert fig.canvas.get_width_height() == tuple(round(x * P.DEFAULT_DPI) for x in (7.0, 5.8))


def test_the_callers_backend_is_left_alone(files):
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        P.plot_frontier([files / "f.parquet"], files / "x.png")
        P.plot_surface(files / "s.parquet", files / "x.pdf")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_without_matplotlib_says_how_to_install(files, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ScalesweepError, match=r"pip install 'scalesweep\[plot\]'"):
        P.plot_frontier([files / "f.parquet"], files / "x.png")


# -------------------------------------------------------------------------------------------- frontier


def test_panels_bands_and_one_legend(files):
    fig = P.plot_frontier([files / "f.parquet", files / "b.parquet"])
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["compute-optimal params N", "compute-optimal tokens D",
                                                "loss at the optimum (nats/token)"]
    assert all(ax.get_legend() is None for ax in axes)
    assert legend_texts(fig) == ["hoffmann2022", "besiroglu2024", "bootstrap band p5–p95"]
    b = pd.read_parquet(files / "b.parquet")
    for ax, what in zip(axes, ("params", "tokens", "loss"), strict=True):
        lines = data_lines(ax)
        assert [ln.get_label() for ln in lines] == ["hoffmann2022", "besiroglu2024"]
        for ln, law in zip(lines, ("hoffmann2022", "besiroglu2024"), strict=True):
            np.testing.assert_allclose(ln.get_ydata(), ss.frontier(law, [1e19, 1e21, 1e23, 1e25])[what], rtol=1e-12)
        (band,) = ax.collections  # only the file with percentile columns has a band
        y = band.get_paths()[0].vertices[:, 1]
        assert np.isclose(y.min(), b[f"{what}_p5"].min()) and np.isclose(y.max(), b[f"{what}_p95"].max())


def test_a_fitted_law_is_named_by_its_family_never_the_file(tmp_path):
    law_file = tmp_path / "f3.json"
    law_file.write_text(json.dumps({"family": "chinchilla", "parameters": dict(H22)}))
    write_frontier_file(tmp_path / "f3.parquet", ss.load_law_file(law_file), FLOPS)
    out = tmp_path / "f3.svg"
    fig = P.plot_frontier([tmp_path / "f3.parquet"], out)
    assert legend_texts(fig) == ["chinchilla (fitted)"]
    texts = svg_texts(out)
    assert "chinchilla (fitted)" in texts and not any("f3" in t for t in texts)


def test_labels_title_and_their_errors(files):
    out = files / "x.svg"
    fig = P.plot_frontier([files / "f.parquet", files / "b.parquet"], out, labels=["Chinchilla", "Epoch"],
                          title="Figure 1")
    assert legend_texts(fig)[:2] == ["Chinchilla", "Epoch"]
    assert {"Chinchilla", "Epoch", "Figure 1"} <= set(svg_texts(out))
    for kwargs, needle in [({"labels": ["one"]}, "1 label(s) for 2 line(s) (hoffmann2022, besiroglu2024)"),
                           ({"size": "3"}, "size must be W,H in inches"), ({"size": (0, 4)}, "each in (0, 100]"),
                           ({"dpi": 0}, "dpi must be a number from 10 to 2400")]:
        with pytest.raises(ScalesweepError, match=re.escape(needle)) as err:
            P.plot_frontier([files / "f.parquet", files / "b.parquet"], files / "y.png", **kwargs)
        assert "\n" not in str(err.value)
    assert not (files / "y.png").exists()
    fig = P.plot_frontier([files / "f.parquet"], size="5,2.5", dpi=80)
    assert fig.canvas.get_width_height() == (400, 200)


def test_a_binding_limit_is_marked_with_one_legend_entry(tmp_path):
    flops = np.geomspace(1e20, 1e25, 11)
    write_frontier_file(tmp_path / "c.parquet", "hoffmann2022", flops, max_params=5e9)
    write_frontier_file(tmp_path / "d.parquet", "hoffmann2022", flops, max_params=2e10)
    write_frontier_file(tmp_path / "u.parquet", "hoffmann2022", flops)
    fig = P.plot_frontier([tmp_path / "u.parquet", tmp_path / "c.parquet", tmp_path / "d.parquet"])
    assert legend_texts(fig) == ["hoffmann2022 (no limits)", "hoffmann2022 (max_params 5e+09)",
                                 "hoffmann2022 (max_params 2e+10)", "max_params binds"]
    n_free, _ = chinchilla_opt(flops)
    params_ax = fig.axes[0]
    marks = [ln for ln in params_ax.get_lines() if ln.get_marker() == P.LIMIT_MARKERS["max_params"]]
    assert len(marks) == 2
    for mark, cap in zip(marks, (5e9, 2e10), strict=True):
        np.testing.assert_array_equal(mark.get_xdata(), flops[n_free > cap])
        np.testing.assert_allclose(mark.get_ydata(), cap, rtol=1e-12)


def test_top_axis_in_gpu_hours_or_pf_days(tmp_path):
    run(["frontier", "--flops-range", "1e20:1e23:4", "--gpu", "H100-SXM", "-o", tmp_path / "g.parquet"])
    write_frontier_file(tmp_path / "p.parquet", "hoffmann2022", FLOPS)
    per_gpu_hour = 989.4e12 * 0.4 * 3600  # H100 SXM dense bf16 peak x the default MFU x seconds per hour
    for files, label, per in ([["g.parquet"], "GPU-hours (H100-SXM)", per_gpu_hour],
                              [["g.parquet", "p.parquet"], "PF-days", 1e15 * 86400]):
        fig = P.plot_frontier([tmp_path / f for f in files])
        fig.draw_without_rendering()  # a secondary axis takes its limits when drawn
        for ax in fig.axes:
            (top,) = ax.child_axes
            assert top.get_xlabel() == label
            np.testing.assert_allclose(top.get_xlim(), np.array(ax.get_xlim()) / per, rtol=1e-9)


def test_a_note_when_parameter_conventions_differ(tmp_path):
    write_frontier_file(tmp_path / "k.parquet", "hoffmann2022,kaplan2020", FLOPS)
    write_frontier_file(tmp_path / "h.parquet", "hoffmann2022,besiroglu2024", FLOPS)
    out = tmp_path / "k.svg"
    fig = P.plot_frontier([tmp_path / "k.parquet"], out)
    note = fig.legends[0].get_title().get_text()
    assert "total parameters for hoffmann2022" in note and "non-embedding parameters for kaplan2020" in note
    assert note in svg_texts(out)
    assert P.plot_frontier([tmp_path / "h.parquet"]).legends[0].get_title().get_text() == ""


def test_a_file_of_several_laws_is_one_line_per_law(tmp_path):
    write_frontier_file(tmp_path / "two.parquet", "hoffmann2022,besiroglu2024", FLOPS)
    res = run(["plot", "frontier", tmp_path / "two.parquet", "-o", tmp_path / "two.svg"])
    assert "wrote" in res.stderr
    assert {"hoffmann2022", "besiroglu2024"} <= set(svg_texts(tmp_path / "two.svg"))
    fig = P.plot_frontier([tmp_path / "two.parquet"])
    for ax, what in zip(fig.axes, ("params", "tokens", "loss"), strict=True):
        lines = data_lines(ax)
        assert [ln.get_label() for ln in lines] == ["hoffmann2022", "besiroglu2024"]
        for ln in lines:
            np.testing.assert_array_equal(ln.get_xdata(), FLOPS)
            np.testing.assert_allclose(ln.get_ydata(), ss.frontier(ln.get_label(), FLOPS)[what], rtol=1e-12)


def test_an_allocation_rule_is_drawn_without_a_loss_panel(tmp_path):
    """deepseek2024 has no loss: its allocation is drawn, and there is no loss panel. Expected values from the
    rule as published (DeepSeek LLM 2024): M = 0.1715 C^0.5243 FLOPs/token, N = M/6, D = 5.8316 C^0.4757."""
    write_frontier_file(tmp_path / "rule.parquet", "deepseek2024", FLOPS)
    assert pd.read_parquet(tmp_path / "rule.parquet").loss.isna().all()
    fig = P.plot_frontier([tmp_path / "rule.parquet"], tmp_path / "rule.png")
    assert (tmp_path / "rule.png").read_bytes().startswith(PNG_MAGIC)
    c = np.array(FLOPS)
    params, tokens = (data_lines(ax)[0] for ax in fig.axes)
    np.testing.assert_allclose(params.get_ydata(), 0.1715 / 6 * c**0.5243, rtol=1e-12)
    np.testing.assert_allclose(tokens.get_ydata(), 5.8316 * c**0.4757, rtol=1e-12)


def test_a_loss_only_law_is_drawn_in_the_loss_panel_and_refused_on_a_surface(tmp_path):
    """kaplan2020-C gives a loss at each budget and no allocation: L = (1.6e7 / C[PF-days])^0.057."""
    write_frontier_file(tmp_path / "c.parquet", "kaplan2020-C", FLOPS)
    write_frontier_file(tmp_path / "mix.parquet", "hoffmann2022,kaplan2020-C", FLOPS)
    fig = P.plot_frontier([tmp_path / "c.parquet"])
    assert [len(data_lines(ax)) for ax in fig.axes] == [0, 0, 1]
    np.testing.assert_allclose(data_lines(fig.axes[2])[0].get_ydata(),
                               (1.6e7 / (np.array(FLOPS) / 8.64e19)) ** 0.057, rtol=1e-12)
    ss.write_surface(tmp_path / "s.parquet", "hoffmann2022", np.geomspace(1e7, 1e11, 5),
                     tokens=np.geomspace(1e9, 1e13, 5))
    res = run(["plot", "surface", tmp_path / "s.parquet", "--frontier", tmp_path / "c.parquet", "-o",
               tmp_path / "x.png"], ok=False)
    assert_one_line_error(res, "has nothing to plot on a surface: its law gives a loss at each budget but no "
                          "allocation", code=1)
    assert not (tmp_path / "x.png").exists()
    fig = P.plot_surface(tmp_path / "s.parquet", frontier=tmp_path / "mix.parquet")  # hoffmann2022 is drawn
    assert "frontier: kaplan2020-C (nothing to draw)" in legend_texts(fig)


def test_an_all_infeasible_frontier_is_refused_in_one_line(tmp_path):
    write_frontier_file(tmp_path / "inf.parquet", "hoffmann2022", FLOPS, max_params=1e5, max_tokens=1e5)
    res = run(["plot", "frontier", tmp_path / "inf.parquet", "-o", tmp_path / "x.png"], ok=False)
    assert_one_line_error(res, "has nothing to plot: every row is infeasible", code=1)
    assert not (tmp_path / "x.png").exists()


def test_a_long_frontier_is_sampled_while_read(tmp_path):
    flops = np.geomspace(1e16, 1e28, 50_001)
    write_frontier_file(tmp_path / "long.parquet", "hoffmann2022", flops)
    fig = P.plot_frontier([tmp_path / "long.parquet"])
    x = data_lines(fig.axes[0])[0].get_xdata()
    assert 10_000 < x.size <= P.MAX_ROWS and np.isin(x, flops).all() and x[0] == flops[0]


# --------------------------------------------------------------------------------------------- surface


def test_surface_levels_contours_and_iso_flop_lines(files):
    out = files / "s.svg"
    fig = P.plot_surface(files / "s.parquet", out, frontier=files / "f.parquet", levels=12)
    n, d = np.geomspace(1e7, 1e11, 30), np.geomspace(1e9, 1e13, 40)
    z = chinchilla_loss(n[:, None], d[None, :])
    ax = fig.axes[0]
    filled, iso, budgets = (c for c in ax.collections if hasattr(c, "levels"))
    lv = filled.levels
    assert lv.size == 13 and np.isclose(lv[0], z.min()) and np.isclose(lv[-1], z.max())
    steps = np.diff(np.log(lv[1:] - lv[0]))  # log-spaced above the minimum
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)
    assert steps[0] > 0 and np.isclose(lv[1] - lv[0], (z.max() - z.min()) * 10.0**-P.LEVEL_DECADES)
    # iso-FLOP lines: each path lies on C = 6ND of its level
    for level, segs in zip(budgets.levels, budgets.allsegs, strict=True):
        pts = np.concatenate(segs)
        np.testing.assert_allclose(np.log10(6 * pts[:, 0] * pts[:, 1]), level, atol=0.02)
    texts = svg_texts(out)
    for level in budgets.levels:
        assert f"{P._sci(10.0**level)} FLOP" in texts
    shown = [t for t in texts if re.fullmatch(r"\d\.\d+", t)]
    assert len(shown) >= 4 and all(z.min() <= float(t) <= z.max() for t in shown)
    assert {"training tokens D", "parameters N", "loss L (nats/token)", "loss surface: hoffmann2022",
            "frontier: hoffmann2022", "iso-FLOP C = 6ND"} <= set(texts)
    # the frontier's markers sit where it crosses the iso-FLOP lines drawn (the closed-form optimum)
    (marks,) = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    at = 10.0 ** budgets.levels[(budgets.levels >= 19) & (budgets.levels <= 25)]
    n_opt, d_opt = chinchilla_opt(at)
    np.testing.assert_allclose(marks.get_xdata(), d_opt, rtol=1e-9)
    np.testing.assert_allclose(marks.get_ydata(), n_opt, rtol=1e-9)


def test_surface_overlay_is_one_line_per_law(files):
    write_frontier_file(files / "two.parquet", "hoffmann2022,besiroglu2024", [1e19, 1e20, 1e21])
    fig = P.plot_surface(files / "s.parquet", frontier=files / "two.parquet", labels=["H", "B"])
    lines = data_lines(fig.axes[0])
    assert [ln.get_label() for ln in lines] == ["frontier: H", "frontier: B"]
    for ln, law in zip(lines, ("hoffmann2022", "besiroglu2024"), strict=True):
        exact = ss.frontier(law, [1e19, 1e20, 1e21])
        np.testing.assert_allclose(ln.get_xdata(), exact.tokens, rtol=1e-12)
        np.testing.assert_allclose(ln.get_ydata(), exact.params, rtol=1e-12)


def _surface(path, k):
    ss.write_surface(path, "hoffmann2022", np.geomspace(1e6, 1e12, k), tokens=np.geomspace(1e8, 1e14, k))


def test_a_big_surface_draws_like_its_sample(tmp_path):
    """A 2048² surface, sampled while read, gives the image of a 512² surface over the same range."""
    from matplotlib.image import imread

    _surface(tmp_path / "big.parquet", 2048)
    _surface(tmp_path / "small.parquet", 512)
    images = []
    for name in ("big", "small"):
        P.plot_surface(tmp_path / f"{name}.parquet", tmp_path / f"{name}.png", title="", dpi=60)
        images.append(imread(tmp_path / f"{name}.png")[..., :3])
    diff = np.abs(images[0] - images[1])
    assert diff.mean() < 0.01 and (diff.max(axis=2) > 0.1).mean() < 0.02
    colours = np.unique((images[0] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 20  # filled levels, not a blank or single-colour image


def test_reading_a_big_surface_keeps_memory_bounded(tmp_path):
    """Peak memory while drawing a 4096² surface (4 columns of 128 MiB): Python allocations (tracemalloc) plus
    Arrow's pool stay under a fifth of the columns, in a fresh process (Arrow's peak cannot be reset)."""
    _surface(tmp_path / "big.parquet", 4096)
    _surface(tmp_path / "small.parquet", 20)
    script = textwrap.dedent(f"""
        import tracemalloc, pyarrow as pa
        from scalesweep.plot import plot_surface
        plot_surface({str(tmp_path / 'small.parquet')!r})  # imports and font caches
        tracemalloc.start()
        plot_surface({str(tmp_path / 'big.parquet')!r}, {str(tmp_path / 'big.png')!r})
        print(tracemalloc.get_traced_memory()[1], pa.default_memory_pool().max_memory())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    python_peak, arrow_peak = (int(x) for x in out.stdout.split())
    columns = 4 * 8 * 4096**2
    assert python_peak + arrow_peak < columns / 5, (python_peak, arrow_peak)
    assert png_size((tmp_path / "big.png").read_bytes()) == (1050, 870)


# ---------------------------------------------------------------------------------------------- IsoFLOP


def test_isoflop_surface_draws_its_curves_with_minima(files):
    out = files / "iso.svg"
    fig = P.plot_surface(files / "iso.parquet", out, frontier=files / "f.parquet")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("parameters N", "loss L (nats/token)")
    df = pd.read_parquet(files / "iso.parquet")
    curves = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert len(curves) == len(stars) == 2
    for (c, g), curve, star in zip(df.groupby("flops"), curves, stars, strict=True):
        np.testing.assert_array_equal(curve.get_xdata(), g.params)
        best = g.loc[g.loss.idxmin()]
        assert (star.get_xdata()[0], star.get_ydata()[0]) == (best.params, best.loss)
    assert {"minimum of each curve", "frontier: hoffmann2022", "IsoFLOP curves: hoffmann2022"} <= set(svg_texts(out))


def test_isoflop_curves_sample_budgets_and_points_of_a_big_file(tmp_path):
    flops = np.geomspace(1e18, 1e24, 40)
    ss.write_surface(tmp_path / "iso.parquet", "hoffmann2022", np.geomspace(1e6, 1e12, 5000), flops=flops)
    fig = P.plot_isoflop(tmp_path / "iso.parquet")
    ax = fig.axes[0]
    curves = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert len(curves) == len(stars) == P.MAX_CURVES and all(c.get_xdata().size == P.MAX_CURVE_POINTS for c in curves)
    drawn = flops[P._even(40, P.MAX_CURVES)]
    n_axis = np.geomspace(1e6, 1e12, 5000)
    for c, star in zip(drawn, stars, strict=True):  # the minimum over all 5000 sizes, not over the drawn 1024
        loss = chinchilla_loss(n_axis, c / (6 * n_axis))
        assert star.get_xdata()[0] == n_axis[np.argmin(loss)]
        assert np.isclose(star.get_ydata()[0], loss.min(), rtol=1e-12)


def test_isoflop_from_runs_marks_each_parabola_vertex(tmp_path):
    """Runs on exact parabolas in log10 N (vertex x0, loss c0 per budget), tokens rounded so that 6ND varies by
    up to 0.5% within a budget: each budget is one curve and its minimum is the vertex."""
    rows, truth = [], []
    for c, x0, c0 in ((1e19, 8.3, 3.1), (1e20, 8.8, 2.8), (1e21, 9.3, 2.5)):
        for i, x in enumerate(np.linspace(x0 - 0.6, x0 + 0.5, 7)):
            rows.append({"params": 10**x, "tokens": c * (1 + 0.005 * (i % 2)) / (6 * 10**x),
                         "loss": 0.4 * (x - x0) ** 2 + c0})
        truth.append((10**x0, c0))
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    out = tmp_path / "runs.svg"
    fig = P.plot_isoflop(tmp_path / "runs.csv", out, title="Approach 2")
    stars = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "*"]
    assert len(stars) == 3
    for star, (n0, c0) in zip(stars, truth, strict=True):
        np.testing.assert_allclose([star.get_xdata()[0], star.get_ydata()[0]], [n0, c0], rtol=1e-6)
    assert {"Approach 2", "runs, parabola in log N", "minimum of each curve"} <= set(svg_texts(out))
    pd.DataFrame(rows[:2] + rows[7:9] + rows[14:16]).to_csv(tmp_path / "few.csv", index=False)
    with pytest.raises(ScalesweepError, match="has no budget with 3 or more model sizes"):
        P.plot_isoflop(tmp_path / "few.csv")


# ------------------------------------------------------------------------------------------ fit diagnostics


def test_fit_diagnostics_predicted_observed_and_residuals(tmp_path):
    rng = np.random.default_rng(1)
    n, d = 10 ** rng.uniform(7, 10, 60), 10 ** rng.uniform(9, 12, 60)
    noise = rng.normal(0, 0.02, 60)
    observed = chinchilla_loss(n, d) + noise
    pd.DataFrame({"N": n, "tokens": d, "loss": observed}).to_csv(tmp_path / "runs.csv", index=False)
    law = {"preset": "hoffmann2022", "fit": {"runs_file": str(tmp_path / "runs.csv"), "excluded_highest_loss": 2}}
    (tmp_path / "law.json").write_text(json.dumps(law))
    out = tmp_path / "fit.svg"
    fig = P.plot_fit(tmp_path / "law.json", None, out, columns={"params_column": "N"})
    a1, a2 = fig.axes[:2]
    keep = np.ones(60, bool)
    keep[np.argsort(-observed)[:2]] = False
    (used1, hollow1), (used2, hollow2) = a1.collections, a2.collections
    np.testing.assert_allclose(used1.get_offsets(), np.c_[chinchilla_loss(n, d), observed][keep], rtol=1e-12)
    np.testing.assert_allclose(used2.get_offsets(), np.c_[6 * n * d, noise][keep], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hollow1.get_offsets()[:, 1], observed[~keep], rtol=1e-12)
    texts = svg_texts(out)
    rmse = np.sqrt(np.mean(noise[keep] ** 2))
    assert f"58 runs, RMSE {rmse:.3g} nats/token" in "\n".join(texts)
    assert {"predicted loss (nats/token)", "left out of the fit (2 highest losses)",
            "fit diagnostics: hoffmann2022 on runs.csv"} <= set(texts)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("args, needle", [
    (["frontier", "{d}/nope.parquet", "-o", "{d}/x.png"], "does not exist"),
    (["frontier", "{d}/iso.parquet", "-o", "{d}/x.png"], "is not a frontier file (written by `scalesweep surface`)"),
    (["frontier", "{d}/f.parquet", "-o", "{d}/x.jpg"], "the image format follows the suffix (.pdf, .png, .svg)"),
    (["surface", "{d}/f.parquet", "-o", "{d}/x.png"], "is not a surface file (written by `scalesweep frontier`)"),
    (["surface", "{d}/s.parquet", "--frontier", "{d}/s.parquet", "-o", "{d}/x.png"], "is not a frontier file"),
    (["frontier", "{d}/f.parquet", "-o", "{d}/no/x.png"], "does not exist"),
])
def test_bad_input_on_the_command_line(files, args, needle):
    res = CliRunner().invoke(cli, ["plot", *[a.format(d=files) for a in args]])
    assert_one_line_error(res, needle, code=1)
    assert not any(name.startswith(("x.", ".x.")) for name in os.listdir(files))


@pytest.mark.parametrize("call, needle", [
    (lambda d: P.plot_isoflop(d / "f.parquet"), "is not an IsoFLOP surface or a runs file (written by `scalesweep "
                                                "frontier`)"),
    (lambda d: P.plot_isoflop(d / "s.parquet"), "is a params x tokens surface, not IsoFLOP curves"),
    (lambda d: P.plot_isoflop(d / "runs.csv"), "has no column 'loss'"),
    (lambda d: P.plot_surface(d / "cut.parquet"), "is not a complete grid (1199 rows, 40 per value of params)"),
    (lambda d: P.plot_fit(d / "plain.json", None, d / "x.png"), "names no runs file"),
    (lambda d: P.plot_fit(d / "plain.json", d / "runs.csv", d / "x.png", labels=["a", "b"]), "2 labels for one law"),
    (lambda d: P.plot_surface(d / "s.parquet", d / "x.gif"), "the image format follows the suffix"),
])
def test_bad_input_in_the_api(files, call, needle):
    pd.DataFrame({"params": [1e9], "tokens": [1e10]}).to_csv(files / "runs.csv", index=False)
    (files / "plain.json").write_text(json.dumps({"preset": "hoffmann2022"}))
    import pyarrow.parquet as pq

    t = pq.read_table(files / "s.parquet")
    pq.write_table(t.slice(0, t.num_rows - 1), files / "cut.parquet")
    with pytest.raises(ScalesweepError, match=re.escape(needle)) as err:
        call(files)
    assert "\n" not in str(err.value)
    assert not any(name.startswith(("x.", ".x.")) for name in os.listdir(files))


def test_labels_and_conventions():
    assert P.law_label({"preset": "hoffmann2022", "overrides": ["alpha"]}) == "hoffmann2022+alpha"
    assert P.law_label({"family": "kaplan", "preset": None}) == "kaplan (fitted)"
    conv = {name: P.n_convention({"conventions": p.conventions}) for name, p in ss.PRESETS.items()}
    assert conv["kaplan2020"] == conv["porian2024_tuned"] == conv["deepseek2024"] == "non-embedding"
    assert conv["hoffmann2022"] == conv["besiroglu2024"] == conv["muennighoff2023"] == "total"
    assert conv["kaplan2020-D"] is None and P.n_convention({"family": "chinchilla"}) is None
    # a law's own record (Law.to_dict) decides, and agrees with the text wherever the text says
    recorded = {name: P.n_convention(ss.get_law(name).to_dict()) for name in ss.PRESETS}
    assert all(recorded[name] == conv[name] for name in conv if conv[name] is not None)
    assert P.n_convention({"params_convention": "non_embedding", "conventions": "total parameters"}) == "non-embedding"
    assert [P._sci(x) for x in (1e20, 3e21, 6e-3)] == ["10²⁰", "3×10²¹", "6×10⁻³"]
