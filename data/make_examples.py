"""Write the SYNTHETIC example inputs of the fitting commands (no real training runs are in them):

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

* ``example_multi_epoch_runs.csv`` (``scalesweep fit --family data_constrained``): columns params, tokens,
  unique_tokens, loss. Three unique-data budgets U_D = 1e8, 5e8 and 2.5e9 tokens; five model sizes from 2e7 to 1e9 parameters (log-spaced, whole thousands); each trained for 1, 2, 4, 8, 16, 32 and 64 epochs
of its unique data (tokens = epochs x U_D): 105 runs. The smallest models sit below the size U_N that Muennighoff
et al.'s law deems compute-optimal for the largest U_D, the others above it, so that both decay constants shape
the losses.

Every loss is the data-constrained law of Muennighoff et al. 2023 ('Scaling Data-Constrained Language Models',
arXiv:2305.16264, appendix), written out below with numpy:

    L = E + A/N'^alpha + B/D'^beta,
    D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*)),  R_D = D/U_D - 1   (D' = D within one epoch),
    N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)),  R_N = N/U_N - 1   (N' = N for N <= U_N),
    U_N = G (G U_D)^(beta/alpha),  G = (alpha A/(beta B))^(1/(alpha+beta)),

with the base constants E, A, B, alpha, beta (``DC_*``) of the ``muennighoff2023`` preset (the released fit in
huggingface/datablations) and the decay constants R_D* = 13.7, R_N* = 6.2 (NOT the paper's 15.4 and 5.3, and on
no start grid of ``scalesweep fit``), plus Gaussian noise of standard deviation ``NOISE`` nats (a generator of
its own, seeded with ``DC_SEED``), rounded to six decimals.

``python data/make_examples.py`` rewrites the three files beside this script (the same bytes every time).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

E, A, B, ALPHA, BETA = 1.75, 400.0, 3500.0, 0.31, 0.37
NOISE = 0.004
SEED = 2024
HERE = Path(__file__).resolve().parent

# The multi-epoch runs: the muennighoff2023 base constants, off-grid decay constants, their own generator.
DC_E, DC_A, DC_B = math.exp(0.6254804), math.exp(6.255414), math.exp(7.3049974)
DC_ALPHA = DC_BETA = 0.3526596
R_D_STAR, R_N_STAR = 13.7, 6.2
UNIQUE = (1e8, 5e8, 2.5e9)
EPOCHS = (1, 2, 4, 8, 16, 32, 64)
DC_SEED = 2305


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


def data_constrained_loss(n: np.ndarray, d: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The data-constrained law at N = n, D = d with u unique tokens available."""
    r_d = d / u - 1.0
    d_eff = np.where(d <= u, d, u + u * R_D_STAR * (1.0 - np.exp(-r_d / R_D_STAR)))
    g = (DC_ALPHA * DC_A / (DC_BETA * DC_B)) ** (1.0 / (DC_ALPHA + DC_BETA))
    u_n = g * (g * np.minimum(u, d)) ** (DC_BETA / DC_ALPHA)
    r_n = n / u_n - 1.0
    n_eff = np.where(n <= u_n, n, u_n + u_n * R_N_STAR * (1.0 - np.exp(-r_n / R_N_STAR)))
    return DC_E + DC_A / n_eff**DC_ALPHA + DC_B / d_eff**DC_BETA


def multi_epoch_runs(rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    sizes = np.round(np.geomspace(2e7, 1e9, 5), -3)
    rows = []
    for u in UNIQUE:
        for n in sizes:
            d = np.array([e * u for e in EPOCHS])
            y = data_constrained_loss(np.full(d.size, n), d, np.full(d.size, u)) + rng.normal(0.0, NOISE, d.size)
            rows += [(float(n), float(di), u, round(float(yi), 6)) for di, yi in zip(d, y, strict=True)]
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
    with open(HERE / "example_multi_epoch_runs.csv", "w") as fh:
        fh.write("params,tokens,unique_tokens,loss\n")
        for n, d, u, y in multi_epoch_runs(np.random.default_rng(DC_SEED)):
            fh.write(f"{n:.0f},{d:.0f},{u:.0f},{y:.6f}\n")


if __name__ == "__main__":
    main()
