"""Allocation-rule presets (published N*(C), D*(C) that are not loss laws) and `compare`."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError

from .helpers import assert_one_line_error

RULES = [n for n in ss.PRESETS if ss.PRESETS[n].family == "allocation_rule"]


def test_llama3_reproduces_the_papers_extrapolation():
    """Sheet §6.2: Fig. 3 values give 0.299 (3.8e25)^0.537 = 1.63e13 tokens and C/(6D) = 3.9e11 params,
    consistent with the stated 402B parameters on 16.55T tokens."""
    df = ss.frontier("llama3_2024", [3.8e25])
    assert df.tokens[0] == pytest.approx(0.299 * 3.8e25**0.537, rel=1e-14)
    assert df.tokens[0] == pytest.approx(1.63e13, rel=0.01) and df.params[0] == pytest.approx(3.9e11, rel=0.01)
    assert 6 * df.params[0] * df.tokens[0] == pytest.approx(3.8e25, rel=1e-14)


def test_published_values():
    # DeepSeek (sheet §6.1): M_opt = 0.1715 C^0.5243 with N = M/6; D_opt = 5.8316 C^0.4757; C = M D.
    df = ss.frontier("deepseek2024", [1e22])
    assert 6 * df.params[0] == pytest.approx(0.1715 * 1e22**0.5243, rel=1e-14)
    assert df.tokens[0] == pytest.approx(5.8316 * 1e22**0.4757, rel=1e-14)
    assert 6 * df.params[0] * df.tokens[0] == pytest.approx(1e22, rel=1e-3)  # the two fits are consistent
    # Porian tuned (sheet §6.3): about 16 tokens per parameter from 1e19 to 1e21.
    df = ss.frontier("porian2024_tuned", [1e19, 1e20, 1e21])
    assert ((df.tokens_per_param > 15) & (df.tokens_per_param < 17)).all()
    # Kaplan Table 6 (sheet §1.5): at C_min = 1 PF-day, N = 1.3e9 and D = 2e10; per 10x, N x5.4, D x1.9.
    df = ss.frontier("kaplan2020-table6", [8.64e19, 8.64e20])
    assert df.params[0] == pytest.approx(1.3e9, rel=1e-14) and df.tokens[0] == pytest.approx(2e10, rel=1e-14)
    assert df.params[1] / df.params[0] == pytest.approx(10**0.73, rel=1e-13)


@pytest.mark.parametrize("name", RULES)
def test_rules_have_no_loss_unless_a_loss_law_is_given(name):
    df = ss.frontier(name, np.geomspace(1e19, 1e25, 7))
    assert df.feasible.all() and df.loss.isna().all() and (df.active_constraint == "none").all()
    with_loss = ss.frontier(name, np.geomspace(1e19, 1e25, 7), loss_law="hoffmann2022")
    law = ss.get_law("hoffmann2022")
    np.testing.assert_allclose(with_loss.loss, law.loss(df.params.to_numpy(), df.tokens.to_numpy()), rtol=1e-15)


def test_a_rule_that_breaks_a_limit_is_infeasible():
    df = ss.frontier("porian2024_tuned", [1e20, 1e24], max_params=1e10)
    assert df.feasible.tolist() == [True, False] and np.isnan(df.params[1])
    with pytest.raises(ScalesweepError, match="--loss-law applies to allocation rules"):
        ss.frontier("hoffmann2022", [1e20], loss_law="hoffmann2022")
    with pytest.raises(ScalesweepError, match="must be a loss law"):
        ss.frontier("llama3_2024", [1e20], loss_law="deepseek2024")


def test_rules_in_a_scenario_sweep(tmp_path):
    from scalesweep.scenarios import SweepSpec, run

    run(SweepSpec({"law": ["llama3_2024", "hoffmann2022"], "flops": [1e21, 1e23]}), tmp_path / "o.parquet")
    out = pd.read_parquet(tmp_path / "o.parquet")
    rule = out[out.law.astype(str) == "llama3_2024"]
    np.testing.assert_array_equal(rule.params, ss.frontier("llama3_2024", [1e21, 1e23]).params)
    assert rule.loss.isna().all() and out[out.law.astype(str) == "hoffmann2022"].loss.notna().all()
    run(SweepSpec({"law": ["llama3_2024", "hoffmann2022"], "flops": [1e21, 1e23], "loss_law": "besiroglu2024"}),
        tmp_path / "o2.parquet")
    out = pd.read_parquet(tmp_path / "o2.parquet")
    rule = out[out.law.astype(str) == "llama3_2024"]
    np.testing.assert_allclose(rule.loss, ss.frontier("llama3_2024", [1e21, 1e23], loss_law="besiroglu2024").loss,
                               rtol=1e-15)
    hoff = out[out.law.astype(str) == "hoffmann2022"]  # a loss law keeps its own loss
    np.testing.assert_array_equal(hoff.loss, ss.frontier("hoffmann2022", [1e21, 1e23]).loss)
    with pytest.raises(ScalesweepError, match="field 'loss_law': 'deepseek2024' is not a loss law"):
        run(SweepSpec({"law": "llama3_2024", "flops": 1e21, "loss_law": "deepseek2024"}), tmp_path / "o3.parquet")


def test_compare(tmp_path):
    df = ss.api.compare([1e24])
    assert list(df.law.astype(str)) == list(ss.PRESETS)  # every preset, answerable or not
    no_answer = df.law.astype(str).isin(["kaplan2020-N", "kaplan2020-D"])  # laws of N or D alone
    assert df.feasible.tolist() == (~no_answer).tolist()
    assert (df.infeasible_reason[no_answer] == "unsupported_family").all() and df.params[no_answer].isna().all()
    for name in ("hoffmann2022", "llama3_2024", "kaplan2020"):
        row = df[df.law.astype(str) == name].iloc[0]
        assert row.params == ss.frontier(name, [1e24]).params[0]
    assert df[df.family.astype(str) == "allocation_rule"].loss.isna().all()
    res = CliRunner().invoke(cli, ["compare", "--flops", "1e24,1e25", "--laws", "hoffmann2022,llama3_2024",
                                   "-o", str(tmp_path / "c.parquet")], catch_exceptions=False)
    assert res.exit_code == 0 and res.stdout == "" and "wrote 4 rows" in res.stderr
    assert len(pd.read_parquet(tmp_path / "c.parquet")) == 4
    res = CliRunner().invoke(cli, ["compare", "--flops", "1e24", "--laws", "hoffmann2022,llama3_2024"])
    assert res.stdout.splitlines()[0] == \
        "law,family,flops,params,tokens,tokens_per_param,loss,feasible,infeasible_reason"
    assert '"llama3_2024"' in res.stdout
    assert_one_line_error(CliRunner().invoke(cli, ["compare", "--flops", "1e24", "--laws", "nope"]),
                          "unknown law 'nope'", code=1)
    assert_one_line_error(CliRunner().invoke(cli, ["compare", "--flops", "-1"]), "flops: value #1", code=1)


def test_single_variable_kaplan_laws():
    """Sheet §1.1: L(N) examples 2.83 / 2.38 / 1.99 at 1e8 / 1e9 / 1e10; L(C_min) at 1 PF-day = 3.1e8^0.05;
    doubling N multiplies L(N) by 2^-0.076."""
    ln = ss.get_law("kaplan2020-N")
    np.testing.assert_allclose(ln.loss([1e8, 1e9, 1e10], 1.0), [2.83, 2.38, 1.99], atol=0.006)
    assert ln.loss(2e9, 1.0) / ln.loss(1e9, 1.0) == pytest.approx(2**-0.076, rel=1e-14)
    assert ss.get_law("kaplan2020-D").loss(1.0, 5.4e13) == pytest.approx(1.0, rel=1e-15)
    df = ss.frontier("kaplan2020-Cmin", [8.64e19, 8.64e21])
    np.testing.assert_allclose(df.loss, [3.1e8**0.05, (3.1e8 / 100) ** 0.05], rtol=1e-14)
    assert df.feasible.all() and df.params.isna().all()
    assert ss.frontier("kaplan2020-C", [8.64e19 * 1.6e7]).loss[0] == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ScalesweepError, match="law of N alone"):
        ss.frontier("kaplan2020-N", [1e20])
    with pytest.raises(ScalesweepError, match="must be one of 0, 1, 2, 3"):
        ss.get_law("kaplan2020-N", variable=7)
    # surfaces work: L(N) ignores D
    grid = ss.surface(ln, [1e9, 1e10], [1e9, 1e12])
    assert grid[0, 0] == grid[0, 1]
