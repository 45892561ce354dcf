"""Plots: rendered to files that are valid, non-empty images; bad inputs give one line."""

import builtins
import os

import numpy as np
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError

from .helpers import assert_one_line_error, run, write_frontier_file

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def files(tmp_path):
    law = ss.get_law("hoffmann2022")
    flops = [1e19, 1e21, 1e23, 1e25]
    write_frontier_file(tmp_path / "f.parquet", law, flops)
    df = ss.frontier("besiroglu2024", flops)
    write_frontier_file(tmp_path / "b.parquet", "besiroglu2024", flops, {
        "params_p5": df.params * 0.8, "params_p95": df.params * 1.2,
        "tokens_p5": df.tokens * 0.8, "tokens_p95": df.tokens * 1.2})
    import numpy as np

    ss.write_surface(tmp_path / "s.parquet", law, np.geomspace(1e7, 1e11, 30), tokens=np.geomspace(1e9, 1e13, 40))
    ss.write_surface(tmp_path / "iso.parquet", law, np.geomspace(1e7, 1e11, 30), flops=[1e20, 1e21])
    return tmp_path


def test_frontier_png_and_svg(files):
    res = CliRunner().invoke(cli, ["plot", "frontier", str(files / "f.parquet"), str(files / "b.parquet"),
                                   "-o", str(files / "f.png")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = (files / "f.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    ss.plot.plot_frontier([files / "f.parquet"], files / "f.svg")
    text = (files / "f.svg").read_text()
    assert "<svg" in text[:2000] and text.rstrip().endswith("</svg>") and "hoffmann2022" in text


def test_surface_with_frontier(files):
    res = CliRunner().invoke(cli, ["plot", "surface", str(files / "s.parquet"), "--frontier", str(files / "f.parquet"),
                                   "-o", str(files / "s.png")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = (files / "s.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


@pytest.mark.parametrize("args, needle", [
    (["frontier", "{d}/nope.parquet", "-o", "{d}/x.png"], "does not exist"),
    (["frontier", "{d}/iso.parquet", "-o", "{d}/x.png"], "is not a frontier file (written by `scalesweep surface`)"),
    (["frontier", "{d}/f.parquet", "-o", "{d}/x.jpg"], "the image format follows the suffix"),
    (["surface", "{d}/iso.parquet", "-o", "{d}/x.png"], "is not a params x tokens grid"),
    (["surface", "{d}/f.parquet", "-o", "{d}/x.png"], "is not a surface file (written by `scalesweep frontier`)"),
    (["frontier", "{d}/f.parquet", "-o", "{d}/no/x.png"], "does not exist"),
])
def test_bad_input(files, args, needle):
    args = [a.format(d=files) for a in args]
    res = CliRunner().invoke(cli, ["plot", *args])
    assert_one_line_error(res, needle, code=1)
    assert not any(name.startswith(("x.", ".x.")) for name in os.listdir(files))


def test_without_matplotlib_says_how_to_install(files, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ScalesweepError, match=r"pip install 'scalesweep\[plot\]'"):
        ss.plot.plot_frontier([files / "f.parquet"], files / "x.png")


# ------------------------------------------------------------- what is drawn: one line per law, rules, no-allocation laws

FLOPS = [1e20, 1e21, 1e22, 1e23]


@pytest.fixture()
def drawn(monkeypatch):
    """Every ax.plot call: its axes, label and data (the panel is told by the axes' ylabel, read afterwards)."""
    import matplotlib.axes

    calls = []
    real_plot = matplotlib.axes.Axes.plot

    def record(ax, *args, **kwargs):
        lines = real_plot(ax, *args, **kwargs)
        x = np.asarray(args[0], dtype=float) if args else np.array([])
        y = np.asarray(args[1], dtype=float) if len(args) > 1 else np.array([])
        calls.append({"ax": ax, "label": kwargs.get("label"), "x": x, "y": y})
        return lines

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", record)
    return calls


def _by_panel(calls, what):
    return [c for c in calls if c["ax"].get_ylabel() == f"compute-optimal {what}"]


def test_a_file_of_several_laws_is_one_line_per_law(tmp_path, drawn):
    write_frontier_file(tmp_path / "two.parquet", "hoffmann2022,besiroglu2024", FLOPS)
    res = run(["plot", "frontier", tmp_path / "two.parquet", "-o", tmp_path / "two.svg"])
    assert "wrote" in res.stderr
    svg = (tmp_path / "two.svg").read_text()
    assert "hoffmann2022" in svg and "besiroglu2024" in svg  # both in the legend
    for what in ("params", "tokens"):
        lines = _by_panel(drawn, what)
        assert [c["label"] for c in lines] == ["hoffmann2022", "besiroglu2024"]
        for c in lines:  # each line is its own law's frontier, solved on its own
            exact = ss.frontier(c["label"], FLOPS)
            np.testing.assert_array_equal(c["x"], FLOPS)
            np.testing.assert_allclose(c["y"], exact[what], rtol=1e-12)


def test_same_law_in_two_files_gets_file_names(tmp_path, drawn):
    write_frontier_file(tmp_path / "a.parquet", "hoffmann2022,besiroglu2024", FLOPS)
    write_frontier_file(tmp_path / "b.parquet", "hoffmann2022", FLOPS, max_params=5e9)
    ss.plot.plot_frontier([tmp_path / "a.parquet", tmp_path / "b.parquet"], tmp_path / "x.png")
    assert [c["label"] for c in _by_panel(drawn, "params")] == [
        "a.parquet: hoffmann2022", "besiroglu2024", "b.parquet: hoffmann2022"]


def test_an_allocation_rule_is_drawn_without_a_loss(tmp_path, drawn):
    """deepseek2024 has no loss (the column is all NaN): its allocation is drawn. Expected values from the
    rule as published (DeepSeek LLM 2024): M = 0.1715 C^0.5243 FLOPs/token, N = M/6, D = 5.8316 C^0.4757."""
    write_frontier_file(tmp_path / "rule.parquet", "deepseek2024", FLOPS)
    import pandas as pd

    assert pd.read_parquet(tmp_path / "rule.parquet").loss.isna().all()
    run(["plot", "frontier", tmp_path / "rule.parquet", "-o", tmp_path / "rule.png"])
    assert (tmp_path / "rule.png").read_bytes().startswith(PNG_MAGIC)
    c = np.array(FLOPS)
    (params,) = _by_panel(drawn, "params")
    (tokens,) = _by_panel(drawn, "tokens")
    np.testing.assert_allclose(params["y"], 0.1715 / 6 * c**0.5243, rtol=1e-12)
    np.testing.assert_allclose(tokens["y"], 5.8316 * c**0.4757, rtol=1e-12)


@pytest.mark.parametrize("law", ["kaplan2020-C", "kaplan2020-Cmin"])
def test_a_loss_only_frontier_is_refused_in_one_line(tmp_path, law):
    """kaplan2020-C gives a loss at each budget and no allocation: params and tokens are empty."""
    write_frontier_file(tmp_path / "c.parquet", law, FLOPS)
    for args in (["frontier", tmp_path / "c.parquet"],
                 ["frontier", tmp_path / "c.parquet", tmp_path / "c.parquet"],
                 ["surface", tmp_path / "s.parquet", "--frontier", tmp_path / "c.parquet"]):
        if args[0] == "surface":
            ss.write_surface(tmp_path / "s.parquet", "hoffmann2022", np.geomspace(1e7, 1e11, 5),
                             tokens=np.geomspace(1e9, 1e13, 5))
        res = run(["plot", *args, "-o", tmp_path / "x.png"], ok=False)
        assert_one_line_error(res, "has nothing to plot: its law gives a loss at each budget but no allocation",
                              code=1)
        assert not (tmp_path / "x.png").exists()


def test_an_all_infeasible_frontier_is_refused_in_one_line(tmp_path):
    write_frontier_file(tmp_path / "inf.parquet", "hoffmann2022", FLOPS, max_params=1e5, max_tokens=1e5)
    res = run(["plot", "frontier", tmp_path / "inf.parquet", "-o", tmp_path / "x.png"], ok=False)
    assert_one_line_error(res, "has nothing to plot: every row is infeasible", code=1)


def test_a_law_without_allocation_beside_others_is_named_in_the_legend(tmp_path, drawn):
    write_frontier_file(tmp_path / "mix.parquet", "hoffmann2022,kaplan2020-C", FLOPS)
    run(["plot", "frontier", tmp_path / "mix.parquet", "-o", tmp_path / "mix.svg"])
    assert "kaplan2020-C (nothing to draw)" in (tmp_path / "mix.svg").read_text()
    lines = _by_panel(drawn, "params")
    assert [c["label"] for c in lines] == ["hoffmann2022", "kaplan2020-C (nothing to draw)"]
    assert lines[1]["x"].size == 0
    np.testing.assert_allclose(lines[0]["y"], ss.frontier("hoffmann2022", FLOPS).params, rtol=1e-12)


def test_surface_overlay_is_one_line_per_law(files, drawn):
    write_frontier_file(files / "two.parquet", "hoffmann2022,besiroglu2024", [1e19, 1e20, 1e21])
    run(["plot", "surface", files / "s.parquet", "--frontier", files / "two.parquet", "-o", files / "s2.png"])
    assert [c["label"] for c in drawn] == ["frontier (hoffmann2022)", "frontier (besiroglu2024)"]
    for c, law in zip(drawn, ("hoffmann2022", "besiroglu2024"), strict=True):
        exact = ss.frontier(law, [1e19, 1e20, 1e21])
        np.testing.assert_allclose(c["x"], exact.tokens, rtol=1e-12)
        np.testing.assert_allclose(c["y"], exact.params, rtol=1e-12)
