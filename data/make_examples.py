"""Write the two SYNTHETIC example inputs of ``scalesweep.approaches`` (no real training runs are in them):

* ``example_isoflop_runs.csv`` (Approach 2): columns flops, params, tokens, loss. Seven budgets from 1e18 to
  1e21 FLOPs, nine model sizes per budget spread evenly in log N over 1.2 decades around the 20-tokens-per-
  parameter guess N = sqrt(C/120), tokens = C/(6N). The sizes of the largest budget are shifted down by 0.75
  decades, so that its minimum lies beyond the largest size sampled (an extrapolated minimum, flagged).
* ``example_training_curves.csv`` (Approach 1): columns run, params, tokens, loss. Twelve model sizes from
  1e7 to 3e9 parameters, each with 24 checkpoints log-spaced from 2 to 200 tokens per parameter.

Every loss is the Chinchilla-form law L = E + A/N^alpha + B/D^beta with the constants below (off-grid
exponents; they are not any paper's fit) plus Gaussian noise (standard deviation ``NOISE`` nats for the IsoFLOP
runs, ``NOISE / 2`` for the checkpoints; one generator seeded with ``SEED``), rounded to six decimals. A
checkpoint's loss is the law at the tokens seen so far, as if each checkpoint were the end of a schedule tuned
to it (the idealisation behind Hoffmann et al.'s Approach 1). For this law N_opt(C) = G (C/6)^a with
a = beta/(alpha+beta) = 0.5441 and G = (alpha A/(beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, Eq. 4).

``python data/make_examples.py`` rewrites both files beside this script (the same bytes every time).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

E, A, B, ALPHA, BETA = 1.75, 400.0, 3500.0, 0.31, 0.37
NOISE = 0.004
SEED = 2024
HERE = Path(__file__).resolve().parent


def loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return E + A / n**ALPHA + B / d**BETA


def isoflop_runs(rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    rows = []
    budgets = [1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21]
    for c in budgets:
        shift = -0.75 if c == budgets[-1] else 0.0
        n = 10 ** (np.log10(np.sqrt(c / 120)) + shift + np.linspace(-0.6, 0.6, 9))
        n = np.round(n, -3)  # whole thousands of parameters, as a model config gives
        d = np.round(c / (6 * n))
        y = loss(n, d) + rng.normal(0, NOISE, n.size)
        rows += [(c, float(ni), float(di), round(float(yi), 6)) for ni, di, yi in zip(n, d, y, strict=True)]
    return rows


def training_curves(rng: np.random.Generator) -> list[tuple[str, float, float, float]]:
    rows = []
    for k, n in enumerate(np.round(np.geomspace(1e7, 3e9, 12), -3)):
        d = np.round(n * np.geomspace(2, 200, 24))
        y = loss(n, d) + rng.normal(0, NOISE / 2, d.size)
        rows += [(f"m{k:02d}", float(n), float(di), round(float(yi), 6)) for di, yi in zip(d, y, strict=True)]
    return rows


def main() -> None:
    rng = np.random.default_rng(SEED)
    with open(HERE / "example_isoflop_runs.csv", "w") as fh:
        fh.write("flops,params,tokens,loss\n")
        for c, n, d, y in isoflop_runs(rng):
            fh.write(f"{c:g},{n:.0f},{d:.0f},{y:.6f}\n")
    with open(HERE / "example_training_curves.csv", "w") as fh:
        fh.write("run,params,tokens,loss\n")
        for r, n, d, y in training_curves(rng):
            fh.write(f"{r},{n:.0f},{d:.0f},{y:.6f}\n")


if __name__ == "__main__":
    main()
