"""The one-line loss question: loss_at(params, tokens, laws) and `scalesweep loss`. Expected losses are the
published formulas evaluated here with the papers' constants."""

import io

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.questions import loss_at

from . import reference as ref

# hoffmann2022: unrounded Approach-3 constants (Hoffmann et al. 2022 Eq. 10, TeX source)
H = dict(E=1.6934, A=406.4, B=410.72, alpha=0.33917084, beta=0.2849083)


def test_chinchilla_loss_of_a_7b_model_on_2t_tokens():
    df = loss_at("7B", "2T", "hoffmann2022")
    assert list(df.columns) == ["law", "params", "tokens", "loss", "irreducible_loss", "gap"]
    want = ref.chinchilla_loss(7e9, 2e12, **H)
    assert df.loss[0] == pytest.approx(want, rel=1e-14)
    assert df.irreducible_loss[0] == 1.6934
    assert df.gap[0] == pytest.approx(want - 1.6934, rel=1e-13)
    # by hand: 406.4 / 7e9^0.33917 = 0.1861, 410.72 / 2e12^0.28491 = 0.1285; 1.6934 + 0.3146 = 2.0080
    assert df.loss[0] == pytest.approx(2.0080, abs=5e-4)


def test_several_laws_and_points_law_major():
    df = loss_at([1e9, 7e9], [2e11, 2e12], "hoffmann2022,kaplan2020")
    assert df.law.astype(str).tolist() == ["hoffmann2022"] * 2 + ["kaplan2020"] * 2
    np.testing.assert_allclose(df.loss[:2], ref.chinchilla_loss(np.array([1e9, 7e9]), np.array([2e11, 2e12]), **H),
                               rtol=1e-14)
    # Kaplan Eq. 1.5 with Table 2: [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, no irreducible term
    n, d = np.array([1e9, 7e9]), np.array([2e11, 2e12])
    kaplan = ((6.4e13 / n) ** (0.076 / 0.103) + 1.8e13 / d) ** 0.103
    np.testing.assert_allclose(df.loss[2:], kaplan, rtol=1e-13)
    assert (df.irreducible_loss[2:] == 0).all() and (df.gap[2:] == df.loss[2:]).all()


def test_one_size_against_many_token_counts():
    df = loss_at("7B", ["1T", "2T", "15T"])
    assert df.params.tolist() == [7e9] * 3 and df.tokens.tolist() == [1e12, 2e12, 15e12]
    assert df.loss.is_monotonic_decreasing


def test_data_constrained_irreducible_is_its_e():
    df = loss_at("7B", "2T", "muennighoff2023")
    assert df.irreducible_loss[0] == pytest.approx(np.exp(0.6254804), rel=1e-15)


@pytest.mark.parametrize("args, needle", [
    (("7B", "2T", "deepseek2024"), "deepseek2024 is an allocation rule"),
    (("7X", "2T", None), "params: '7X' is not a number or a size"),
    (("-7", "2T", None), "params: value #1 is -7.0"),
    (([1e9, 2e9], [1e12, 2e12, 3e12], None), "give as many params as tokens"),
])
def test_bad_questions_are_refused(args, needle):
    with pytest.raises(ScalesweepError) as err:
        loss_at(*args)
    assert needle in str(err.value)


def test_cli_loss_command():
    """`scalesweep loss` (the command is in /tmp/cli_planning.diff until applied to cli.py)."""
    res = CliRunner().invoke(cli, ["loss", "--params", "7B", "--tokens", "2T", "--law", "hoffmann2022,kaplan2020",
                                   "--format", "csv"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout))
    assert df.law.tolist() == ["hoffmann2022", "kaplan2020"]
    assert df.loss[0] == pytest.approx(ref.chinchilla_loss(7e9, 2e12, **H), rel=1e-14)


def test_convergence_gap_column():
    """L(N, D) / L(N, inf) - 1, written out per family; on the kaplan2020-steps frontier it is Kaplan's
    alpha_N / alpha_S (Eq. B.5: training stops about 10% above the converged loss)."""
    from scalesweep import questions
    from scalesweep.laws import as_laws
    from scalesweep.tables import COLUMNS

    c = np.array([1e21, 1e24])
    res = questions.frontier(as_laws("kaplan2020-steps,kaplan2020,hoffmann2022,deepseek2024"), c,
                             convergence_gap=True).columns
    gap, n, d, loss = res["convergence_gap"], res["params"], res["tokens"], res["loss"]
    np.testing.assert_allclose(gap[:2], 0.077 / 0.76, rtol=1e-12)
    kaplan_inf = (6.4e13 / n[2:4]) ** 0.076  # Eq. 1.5 with D -> inf: (N_c/N)^alpha_N
    np.testing.assert_allclose(gap[2:4], loss[2:4] / kaplan_inf - 1, rtol=1e-12)
    chin_inf = H["E"] + H["A"] / n[4:6] ** H["alpha"]
    np.testing.assert_allclose(gap[4:6], loss[4:6] / chin_inf - 1, rtol=1e-12)
    assert np.isnan(gap[6:]).all()  # an allocation rule has no loss
    assert COLUMNS["convergence_gap"].type == "float"
    assert "convergence_gap" not in questions.frontier(as_laws("hoffmann2022"), c).columns
