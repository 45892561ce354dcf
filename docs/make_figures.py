"""Regenerate the README's figures (docs/*.png) from real runs of scalesweep.

The data come from the command line, as a user would make them (in a temporary directory); the figures from
``scalesweep.plot``:

* frontier.png  a law fitted to data/example_runs.csv with bootstrap bands and a 2e9-parameter limit, beside
                hoffmann2022 and kaplan2020 (non-embedding N: the figure says so), top axis in H100 GPU-hours
* surface.png   the hoffmann2022 loss surface with iso-loss and iso-FLOP lines, its frontier with and without
                a 1e12-token limit
* isoflop.png   IsoFLOP curves of hoffmann2022 (Chinchilla's budgets 6e18..3e21) with the frontier through
                their minima
* fit.png       the fit's diagnostics against the runs it was fitted to

Run from the repository root: python docs/make_figures.py
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DPI = 110


def scalesweep(*args):
    subprocess.run([sys.executable, "-m", "scalesweep", *map(str, args)], check=True, cwd=ROOT)


def main():
    from scalesweep import plot

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        scalesweep("fit", "data/example_runs.csv", "-o", t / "law.json", "--bootstrap", 200, "--seed", 0)
        budgets = ["--flops-range", "1e18:1e25:36", "--gpu", "H100-SXM"]
        scalesweep("frontier", "--law-file", t / "law.json", *budgets, "--bands", "5,95", "--max-params", "2e9",
                   "-o", t / "fitted.parquet")
        scalesweep("frontier", "--law", "hoffmann2022,kaplan2020", *budgets, "-o", t / "published.parquet")
        plot.plot_frontier([t / "fitted.parquet", t / "published.parquet"], DOCS / "frontier.png", dpi=DPI)

        scalesweep("surface", "--law", "hoffmann2022", "--params-range", "1e6:1e12:400", "--tokens-range",
                   "1e8:1e14:400", "-o", t / "surface.parquet")
        scalesweep("frontier", "--flops-range", "1e16:1e25:40", "-o", t / "free.parquet")
        scalesweep("frontier", "--flops-range", "1e16:1e25:40", "--max-tokens", "1e12", "-o", t / "capped.parquet")
        plot.plot_surface(t / "surface.parquet", DOCS / "surface.png", frontier=[t / "free.parquet",
                          t / "capped.parquet"], labels=["hoffmann2022", "hoffmann2022, at most 1e12 tokens"], dpi=DPI)

        scalesweep("surface", "--law", "hoffmann2022", "--params-range", "1e7:1e11:400", "--flops-range",
                   "6e18:3e21:9", "-o", t / "isoflop.parquet")
        scalesweep("frontier", "--flops-range", "3e18:6e21:30", "-o", t / "approach.parquet")
        plot.plot_isoflop(t / "isoflop.parquet", DOCS / "isoflop.png", frontier=t / "approach.parquet", dpi=DPI)

        plot.plot_fit(t / "law.json", ROOT / "data/example_runs.csv", DOCS / "fit.png", dpi=DPI)
    for name in ("frontier", "surface", "isoflop", "fit"):
        print(f"wrote {os.path.relpath(DOCS / f'{name}.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
