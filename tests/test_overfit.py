"""Kaplan's overfitting measure (Eq. 4.3) as an output column and as a frontier limit (Eq. 4.4)."""

import math

import numpy as np
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError

from . import reference as ref

KAPLAN = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}  # Table 2 (sheet §1.2)


def delta_l(n, d):
    """Eq. 4.3 written from the sheet: L(N, D)/L(N, inf) - 1 with the Eq. 1.5 law."""
    p = KAPLAN
    return ref.loss("kaplan", p, n, d) / (p["N_c"] / n) ** p["alpha_N"] - 1.0


def test_penalty_column_is_eq_4_3():
    df = ss.frontier("hoffmann2022", np.geomspace(1e19, 1e26, 15), overfit=True)
    np.testing.assert_allclose(df.overfit_penalty, delta_l(df.params, df.tokens), rtol=1e-12)
    # Kaplan's own frontier keeps N^0.74/D fixed, so its overfitting is the same at every budget
    k = ss.frontier("kaplan2020", np.geomspace(1e19, 1e26, 15), overfit=True)
    np.testing.assert_allclose(k.overfit_penalty, k.overfit_penalty[0], rtol=1e-10)


def test_eq_4_4_criterion():
    """dL <= 0.02 is D >~ 5e3 N^0.74 (Eq. 4.4): the limit the solver enforces."""
    r = KAPLAN["alpha_N"] / KAPLAN["alpha_D"]
    q = (1.02) ** (1 / KAPLAN["alpha_D"]) - 1
    k = KAPLAN["D_c"] / (q * KAPLAN["N_c"] ** r)
    assert r == pytest.approx(0.74, abs=0.003) and k == pytest.approx(5e3, rel=0.15)
    flops = np.geomspace(1e18, 1e27, 28)
    for law in ("kaplan2020", "hoffmann2022", "besiroglu2024"):
        df = ss.frontier(law, flops, max_overfit=0.02, solver="newton-midpoint")
        assert (df.overfit_penalty <= 0.02 * (1 + 1e-9)).all()
        active = df.active_constraint == "max_overfit"
        np.testing.assert_allclose(df.overfit_penalty[active], 0.02, rtol=1e-9)
        # against scipy with the limit as a params interval: N <= (C/(6K))^(1/(1+r))
        p = dict(ss.get_law(law).params)
        fam = ss.get_law(law).family
        for c, row in zip(flops[::5], df.iloc[::5].itertuples(), strict=True):
            n_hi = (c / (6 * k)) ** (1 / (1 + r))
            n_ref, _, l_ref, _ = ref.frontier_scipy(fam, p, [c], max_params=n_hi)
            assert row.loss == pytest.approx(l_ref[0], rel=1e-10)
            assert row.params == pytest.approx(n_ref[0], rel=1e-5)
    assert active.any()


def test_scenarios_and_lookup_carry_it(tmp_path):
    from scalesweep.scenarios import SweepSpec, run

    run(SweepSpec({"law": "kaplan2020", "flops": [1e21, 1e23], "max_overfit": [0.01, 0.05]}), tmp_path / "o.parquet")
    import pandas as pd

    out = pd.read_parquet(tmp_path / "o.parquet")
    assert (out.overfit_penalty <= out.max_overfit * (1 + 1e-9)).all()
    _, info = ss.build_lookup("kaplan2020", 1e20, 1e24, 4, max_overfit=0.02)
    assert info["constraints"]["max_overfit"] == 0.02


def test_bad_input():
    with pytest.raises(ScalesweepError, match="--max-overfit must be a finite number > 0"):
        ss.frontier("kaplan2020", [1e21], max_overfit=-1)
    with pytest.raises(ScalesweepError, match="--max-overfit"):
        ss.frontier("kaplan2020", [1e21], max_overfit=math.nan)
    res = CliRunner().invoke(cli, ["target-loss", "--law", "kaplan2020", "--loss", "2.5", "--max-overfit", "0.02"])
    assert res.exit_code == 1 and "--max-overfit is a frontier limit; target-loss does not support it" in res.stderr
