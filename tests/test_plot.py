"""Plots: rendered to files that are valid, non-empty images; bad inputs give one line."""

import builtins
import os

import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError

from .helpers import assert_one_line_error, write_frontier_file

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
