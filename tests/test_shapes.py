"""Model shapes (scalesweep/shapes.py) and parameter conventions, against the reference formulas of
tests/reference.py (Kaplan Eq. 2.1 written out, a scipy root for d_model, Pearce & Song's N_T)."""

import io

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from scalesweep import questions, shapes
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.laws import PRESETS, as_laws, get_law
from scalesweep.options import Shape
from scalesweep.tables import COLUMNS

from . import reference as ref


def test_gpt3_175b_comes_out_as_published():
    """Brown et al. 2020 Table 2.1: 175B is 96 layers of d_model 12,288 in 96 heads of 128 (aspect ratio 128)."""
    s = shapes.shape(175e9, shapes.ShapeSpec(convention="total"))
    assert (s["n_layer"], s["d_model"], s["n_heads"], s["d_ff"]) == (96, 12288, 96, 4 * 12288)
    assert s["non_embedding_params"] == ref.kaplan_non_embedding(96, 12288) == 12 * 96 * 12288**2
    assert s["embedding_params"] == ref.embedding(50257, 12288)
    assert s["total_params"] == s["non_embedding_params"] + s["embedding_params"]


@pytest.mark.parametrize("n_e", [1e6, 3.3e7, 1e9, 6.7e9, 7e10, 1e12])
@pytest.mark.parametrize("aspect, head", [(128.0, 128), (40.0, 64), (200.0, 128)])
def test_non_embedding_shapes_match_a_root_finder(n_e, aspect, head):
    s = shapes.shape(n_e, shapes.ShapeSpec(convention="non_embedding", aspect_ratio=aspect, head_size=head))
    n_layer, d_model = ref.shape_by_search(n_e, aspect, head)
    assert (s["n_layer"], s["d_model"]) == (n_layer, d_model)
    assert s["d_model"] % head == 0 and s["n_heads"] == d_model / head
    assert s["non_embedding_params"] == ref.kaplan_non_embedding(n_layer, d_model)


def test_positional_embeddings_count_when_asked():
    spec = shapes.ShapeSpec(convention="non_embedding", vocab=32000, context=2048, positional=True)
    s = shapes.shape(7e9, spec)
    assert s["embedding_params"] == ref.embedding(32000, s["d_model"], 2048)


def test_pearce_song_total_is_the_special_case():
    """N_T = N_E + omega N_E^(1/3), omega = 47,491 (Pearce & Song's script: vocab 32k, d/n_layer = A)."""
    aspect = 12 * (47491.0 / 32000) ** 3  # the aspect ratio their omega stands for (about 39.2)
    assert aspect == pytest.approx(39.2, abs=0.05)
    assert shapes.omega(32000, aspect) == pytest.approx(47491.0, rel=1e-14)
    assert ref.pearce_song_omega(32000, aspect) == pytest.approx(47491.0, rel=1e-14)
    n_e = np.geomspace(790, 1.6e9, 25)  # Kaplan's range, as in their simulation
    np.testing.assert_allclose(shapes.to_total(n_e, 32000, aspect), ref.pearce_song_total(n_e), rtol=1e-14)
    np.testing.assert_allclose(shapes.to_non_embedding(ref.pearce_song_total(n_e), 32000, aspect), n_e, rtol=1e-12)


def test_a_total_count_is_split_before_shaping():
    spec = shapes.ShapeSpec(convention="total", vocab=32000, aspect_ratio=64.0)
    s = shapes.shape(7e9, spec)
    n_e = shapes.to_non_embedding(7e9, 32000, 64.0)
    assert n_e + 32000 * np.cbrt(64.0 * n_e / 12) == pytest.approx(7e9, rel=1e-13)
    assert (s["n_layer"], s["d_model"]) == ref.shape_by_search(n_e, 64.0, 128)
    assert s["total_params"] == pytest.approx(7e9, rel=0.03)  # rounding the shape moves the count a little


def test_nan_rows_stay_nan():
    s = shapes.shape(np.array([np.nan, 1e9]))
    assert np.isnan(s["n_layer"][0]) and np.isnan(s["embedding_params"][0]) and s["n_layer"][1] >= 1


def test_laws_carry_their_parameter_convention():
    assert get_law("hoffmann2022").params_convention == "total"
    assert get_law("kaplan2020").params_convention == "non_embedding"
    assert get_law("kaplan2020", alpha_N=0.08).params_convention == "non_embedding"
    assert {p.params_convention for p in PRESETS.values()} == {"total", "non_embedding"}


def test_frontier_shape_columns_follow_each_laws_convention():
    laws = as_laws("hoffmann2022,kaplan2020")
    res = questions.frontier(laws, np.array([1e23]), shape=Shape(vocab=32000)).columns
    for i, law in enumerate(laws):
        n = res["params"][i]
        spec = shapes.ShapeSpec(vocab=32000, convention=law.params_convention)
        want = shapes.shape(n, spec)
        assert res["d_model"][i] == want["d_model"] and res["n_layer"][i] == want["n_layer"]
    # hoffmann2022 counts total parameters: the split puts the embedding inside params
    n_e = shapes.to_non_embedding(res["params"][0], 32000, 128.0)
    assert (res["n_layer"][0], res["d_model"][0]) == ref.shape_by_search(n_e, 128.0, 128)
    # kaplan2020 counts non-embedding parameters: params is N_E itself
    assert (res["n_layer"][1], res["d_model"][1]) == ref.shape_by_search(res["params"][1], 128.0, 128)
    forced = questions.frontier(laws, np.array([1e23]), shape=Shape(params_convention="total")).columns
    assert (forced["n_layer"][1], forced["d_model"][1]) == ref.shape_by_search(
        shapes.to_non_embedding(res["params"][1], 50257, 128.0), 128.0, 128)


def test_shape_columns_are_opt_in_and_registered():
    plain = questions.frontier(as_laws("hoffmann2022"), np.array([1e23])).columns
    assert not set(shapes.SHAPE_COLUMNS) & set(plain)
    asked = questions.frontier(as_laws("hoffmann2022"), np.array([1e23]), shapes=True).columns
    assert set(shapes.SHAPE_COLUMNS) <= set(asked)
    assert COLUMNS["n_layer"].type == "int" and COLUMNS["embedding_params"].unit == "parameters"
    infeasible = questions.frontier(as_laws("hoffmann2022"), np.array([1e10]), shapes=True,
                                    constraints=questions.Constraints(min_params=1e10)).columns
    assert not infeasible["feasible"][0] and np.isnan(infeasible["n_layer"][0])


@pytest.mark.parametrize("kwargs, needle", [
    (dict(positions="rotary"), "unknown positions 'rotary'"),
    (dict(params_convention="embedding"), "unknown parameter convention 'embedding'"),
    (dict(vocab=0), "--vocab must be a whole number >= 1"),
    (dict(aspect_ratio=-1), "--aspect-ratio must be a finite number > 0"),
])
def test_shape_options_are_checked(kwargs, needle):
    with pytest.raises(ScalesweepError) as err:
        Shape(**kwargs)
    assert needle in str(err.value)


def test_cli_shape_options():
    """--vocab, --context, --aspect-ratio, ... on frontier (in /tmp/cli_planning.diff until applied)."""
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e23", "--vocab", "32000", "--format", "csv"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout))
    assert {"n_layer", "d_model", "n_heads", "non_embedding_params", "embedding_params"} <= set(df.columns)


# ------------------------------------------------------------------------------------- FLOPs per token

HOFF = dict(e=1.6934, a=406.4, b=410.72, alpha=0.33917084, beta=0.2849083)


def test_flops_per_token_of_a_real_shape():
    """A shape whose real-valued d and n_layer are whole (d = 4096, 32 layers at aspect ratio 128): the
    models against Kaplan Eq. 2.2 and Hoffmann App. F written out with integer sizes."""
    n_e = 12 * 32 * 4096**2
    spec = shapes.ShapeSpec(convention="non_embedding", vocab=32000, context=2048, aspect_ratio=128.0)
    assert shapes.flops_per_token(n_e, "6N", spec) == 6 * n_e
    assert shapes.flops_per_token(n_e, "kaplan", spec) == pytest.approx(
        ref.kaplan_flops_per_token(n_e, 32, 2048, 4096), rel=1e-14)
    assert shapes.flops_per_token(n_e, "chinchilla", spec) == pytest.approx(
        ref.chinchilla_flops_per_token(32000, 2048, 32, 4096, 32, 4 * 4096), rel=1e-14)


def test_flops_per_token_of_the_chinchilla_70b_shape():
    """Chinchilla 70B (Hoffmann et al. 2022, Table 4: 80 layers, d_model 8192, 64 heads of 128, d_ff 32768;
    vocabulary 32,000, Table A8) at n_ctx 2048: aspect ratio 102.4 makes the real-valued shape exactly this one,
    so the chinchilla FLOPs model is App. F's count written out with integer sizes."""
    n_e = 12 * 80 * 8192**2
    spec = shapes.ShapeSpec(convention="non_embedding", vocab=32000, context=2048, aspect_ratio=8192 / 80,
                            head_size=128)
    sh = shapes.shape(n_e, spec)
    assert (sh["n_layer"], sh["d_model"], sh["n_heads"], sh["d_ff"]) == (80, 8192, 64, 32768)
    assert shapes.flops_per_token(n_e, "chinchilla", spec) == pytest.approx(
        ref.chinchilla_flops_per_token(32000, 2048, 80, 8192, 64, 32768), rel=1e-14)


@pytest.mark.parametrize("n_layer, d_model, d_ff, n_heads, key_size, ratio", [
    (10, 640, 2560, 10, 64, 1.03), (20, 1024, 4096, 16, 64, 1.10), (24, 1280, 5120, 10, 128, 1.08),
    (26, 1792, 7168, 14, 128, 1.04), (28, 2048, 8192, 16, 128, 1.03), (40, 3584, 14336, 28, 128, 0.99)])
def test_app_f_layer_count_reproduces_table_a4(n_layer, d_model, d_ff, n_heads, key_size, ratio):
    """Hoffmann et al. 2022, Table A4: App. F's FLOPs over 6ND for six shapes, printed to two decimals. The
    per-layer terms of the reference count (attention and dense block, the terms the chinchilla FLOPs model
    shares) reproduce every row when, as the table's authors did, embeddings and logits are left out of the
    FLOPs and N counts the blocks, a relative-position matrix per layer and one vocabulary matrix (n_ctx 2048,
    vocabulary 32,000)."""
    seq, vocab = 2048, 32000
    layers_only = (ref.chinchilla_flops_per_token(vocab, seq, n_layer, d_model, n_heads, d_ff)
                   - ref.chinchilla_flops_per_token(vocab, seq, 0, d_model, n_heads, d_ff))
    kh = key_size * n_heads
    n = n_layer * (4 * d_model * kh + 2 * d_model * d_ff) + n_layer * d_model * kh + vocab * d_model
    assert round(layers_only / (6 * n), 2) == ratio


@pytest.mark.parametrize("model", ["6N", "kaplan", "chinchilla"])
@pytest.mark.parametrize("flops", [1e19, 1e21, 1e23, 1e25, 1e27])
def test_flops_model_frontier_matches_scipy(model, flops):
    """C = f(N) D is non-linear in N: the frontier's N, D and loss against scipy's root of dL/d ln N (complex-
    step derivative of f), to 1e-9 relative."""
    law = get_law("hoffmann2022")
    spec = shapes.ShapeSpec(convention="non_embedding", vocab=32000, context=2048, aspect_ratio=128.0)
    n, d, loss = questions.frontier_flops_model(law, np.array([flops]), model, spec)
    rn, rd, rl = ref.chinchilla_frontier_stationary(
        flops, lambda x: ref.continuous_shape_flops(x, model, 32000, 2048, 128.0, 128), **HOFF)
    assert n[0] == pytest.approx(rn, rel=1e-9) and d[0] == pytest.approx(rd, rel=1e-9)
    assert loss[0] == pytest.approx(rl, rel=1e-12)


def _law_loss(law):
    """The law's loss written out from its published form, on complex numbers too (for the complex step)."""
    p = law.params
    if law.family == "chinchilla":
        return lambda n, d: p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
    r = p["alpha_N"] / p["alpha_D"]
    return lambda n, d: ((p["N_c"] / n) ** r + p["D_c"] / d) ** p["alpha_D"]


@pytest.mark.parametrize("name", ["hoffmann2022", "kaplan2020"])
@pytest.mark.parametrize("convention", ["total", "non_embedding"])
@pytest.mark.parametrize("model", ["6N", "kaplan", "chinchilla"])
@pytest.mark.parametrize("flops", [1e13, 1e17, 1e21, 1e25, 1e29])
def test_flops_model_frontier_matches_scipy_in_both_conventions(name, convention, model, flops):
    """Both families, both parameter counts (a total count through Pearce & Song's N_E + omega N_E^(1/3)),
    budgets from a few thousand parameters up, against a complex-step brentq reference, to 1e-9 relative."""
    law = get_law(name)
    spec = shapes.ShapeSpec(convention=convention, vocab=32000, context=2048, aspect_ratio=64.0, head_size=64)
    n, d, loss = questions.frontier_flops_model(law, np.array([flops]), model, spec)
    w = ref.pearce_song_omega(32000, 64.0) if convention == "total" else 0.0
    rn, rd, rl = ref.curve_frontier_stationary(flops, _law_loss(law), model, 32000, 2048, 64.0, 64, omega=w)
    if np.isnan(rn) or rn < 1.0:
        assert np.isnan(n[0])
        return
    assert n[0] == pytest.approx(rn, rel=1e-9) and d[0] == pytest.approx(rd, rel=1e-9)
    assert loss[0] == pytest.approx(rl, rel=1e-12)


def test_flops_model_budgets_where_one_parameter_is_the_best_or_too_dear():
    """A budget at which one parameter's FLOPs buy under one token is NaN; a budget just above it lands on the
    domain's ends, never outside them (N >= 1, D >= 1)."""
    law = get_law("hoffmann2022")
    spec = shapes.ShapeSpec(convention="total", vocab=32000, context=2048)
    one = float(shapes.flops_per_token(1.0, "chinchilla", spec))
    c = np.array([one * 0.5, one * (1 + 1e-12), one * 3, one * 1e3])
    n, d, _ = questions.frontier_flops_model(law, c, "chinchilla", spec)
    assert np.isnan(n[0]) and np.isnan(d[0])
    assert (n[1:] >= 1.0).all() and (d[1:] >= 1.0).all()
    np.testing.assert_allclose(d[1:] * shapes.flops_per_token(n[1:], "chinchilla", spec), c[1:], rtol=1e-12)


@pytest.mark.parametrize("model", ["kaplan", "chinchilla"])
@pytest.mark.parametrize("convention", ["total", "non_embedding"])
def test_flops_model_rows_never_leave_the_domain_nor_depend_on_each_other(model, convention):
    """Every feasible row has N >= 1 and D >= 1, down to the smallest budget that buys a token; and a budget's
    answer is the same bits alone as beside others (here a budget below one FLOP, which widens the table)."""
    law = get_law("hoffmann2022")
    spec = shapes.ShapeSpec(convention=convention)
    one = float(shapes.flops_per_token(1.0, model, spec))
    c = np.concatenate([np.geomspace(one, 1e60, 20_001), one * (1 + np.geomspace(1e-15, 1e-3, 500))])
    n, d, _ = questions.frontier_flops_model(law, c, model, spec)
    ok = ~np.isnan(n)
    assert ok.all() and (n >= 1.0).all() and (d >= 1.0).all()
    sample = c[::499]
    beside, _, _ = questions.frontier_flops_model(law, np.concatenate([[2e-8], sample]), model, spec)
    alone = np.array([questions.frontier_flops_model(law, np.array([x]), model, spec)[0][0] for x in sample])
    np.testing.assert_array_equal(beside[1:], alone)


def test_the_domain_ends_of_a_law_that_wants_no_data_are_exact():
    """A law whose optimum lies at D = 1 (A = 1e300: parameters are all that matter) gets D = 1, never a few
    ulp below it, with a FLOPs model and with 6N."""
    law = get_law("hoffmann2022", A=1e300)
    n, d, _ = questions.frontier_flops_model(law, np.geomspace(1e20, 1e24, 41), "chinchilla", shapes.ShapeSpec())
    assert (d >= 1.0).all() and (d < 1.0 + 1e-12).all()
    plain = questions.frontier([law], np.geomspace(1e20, 1e24, 41)).columns
    assert (plain["tokens"] >= 1.0).all() and (plain["tokens"] < 1.0 + 1e-12).all()


def test_flops_model_frontier_is_the_same_on_any_thread_count():
    import numba

    law = get_law("hoffmann2022")
    spec = shapes.ShapeSpec(convention="total")
    c = np.geomspace(1e15, 1e28, 20_001)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = questions.frontier_flops_model(law, c, "chinchilla", spec)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = questions.frontier_flops_model(law, c, "chinchilla", spec)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_6n_model_is_the_closed_form_and_the_default_is_unchanged():
    laws = as_laws("hoffmann2022,kaplan2020")
    c = np.geomspace(1e19, 1e25, 7)
    base = questions.frontier(laws, c).columns
    explicit = questions.frontier(laws, c, shape=Shape(flops_model="6N")).columns
    assert list(explicit) == list(base)
    for k in base:
        if k == "infeasible_reason":
            np.testing.assert_array_equal(explicit[k][0], base[k][0])
        else:
            np.testing.assert_array_equal(np.asarray(explicit[k][0] if k == "law" else explicit[k]),
                                          np.asarray(base[k][0] if k == "law" else base[k]))
    n, _, _ = questions.frontier_flops_model(laws[0], c, "6N", shapes.ShapeSpec())
    np.testing.assert_allclose(n, base["params"][:7], rtol=1e-12)


def test_flops_model_in_the_frontier():
    c = np.array([1e21, 1e24])
    res = questions.frontier(as_laws("kaplan2020"), c, shape=Shape(flops_model="kaplan", context=2048)).columns
    spec = shapes.ShapeSpec(convention="non_embedding", context=2048)
    np.testing.assert_allclose(res["tokens"], c / shapes.flops_per_token(res["params"], "kaplan", spec), rtol=1e-14)
    assert (res["flops"] == c).all() and res["feasible"].all()
    plain = questions.frontier(as_laws("kaplan2020"), c).columns
    assert (res["params"] < plain["params"]).all()  # attention FLOPs make parameters dearer
    with pytest.raises(ScalesweepError, match="solves frontiers without limits: --max-params"):
        questions.frontier(as_laws("kaplan2020"), c, shape=Shape(flops_model="kaplan"),
                           constraints=questions.Constraints(max_params=1e9))
    with pytest.raises(ScalesweepError, match="supports the chinchilla and kaplan families, not muennighoff2023"):
        questions.frontier(as_laws("muennighoff2023"), c, shape=Shape(flops_model="chinchilla"))
    with pytest.raises(ScalesweepError, match="--flops-model kaplan has a solver of its own: --solver newton "):
        questions.frontier(as_laws("kaplan2020"), c, shape=Shape(flops_model="kaplan"), solver="newton")
    with pytest.raises(ScalesweepError, match="unknown FLOPs model '7N'"):
        Shape(flops_model="7N")


def test_a_budget_below_one_parameters_flops_is_infeasible_with_a_reason():
    """kaplan2020 counts non-embedding parameters: with the full count one parameter already costs the
    embedding and logits FLOPs (~1.3e6 per token), more than a 1e5 budget."""
    res = questions.frontier(as_laws("kaplan2020"), np.array([1e5, 1e22]), shape=Shape(flops_model="chinchilla"))
    cols = res.columns
    assert cols["feasible"].tolist() == [False, True] and np.isnan(cols["params"][0])
    assert res.infeasible() == {"budget": 1}


# ------------------------------------------------------------------------- the accepted deviation of a shape

@pytest.mark.parametrize("n_e", np.geomspace(1e7, 1e13, 40))
@pytest.mark.parametrize("aspect, head", [(128.0, 128), (40.0, 64), (200.0, 128), (1000.0, 256)])
def test_a_shape_is_within_half_a_layer_of_its_count(n_e, aspect, head):
    """The accepted deviation: 12 n_layer d_model^2 within 6 d_model^2 of N_E (n_layer the nearest whole
    number of layers at the rounded width)."""
    s = shapes.shape(n_e, shapes.ShapeSpec(convention="non_embedding", aspect_ratio=aspect, head_size=head))
    half_layer = 6 * s["d_model"] ** 2
    assert abs(s["non_embedding_params"] - n_e) <= half_layer * (1 + 1e-12)
    assert abs(s["non_embedding_params"] - n_e) / n_e <= 1 / (2 * s["n_layer"] - 1) + 1e-12


@pytest.mark.parametrize("kwargs, needle", [
    (dict(head_size=100000), "one head of --head-size 100000 is wider than the d_model"),
    (dict(aspect_ratio=1e9), "--aspect-ratio 1e+09 gives d_model"),
])
def test_options_that_give_no_shape_near_the_row_are_refused(kwargs, needle):
    """Before, --head-size 100000 gave one layer of d_model 100000 (1.2e11 parameters) for a row of 9.5e7, and
    --aspect-ratio 1e9 a shape 177x its row; now one line naming the option."""
    with pytest.raises(ScalesweepError) as err:
        questions.frontier(as_laws("hoffmann2022"), np.array([1e18, 1e24]), shape=Shape(**kwargs))
    assert needle in str(err.value) and "no transformer shape within half a layer of params" in str(err.value)
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e18:1e24:2", "--" + next(iter(kwargs)).replace(
        "_", "-"), str(next(iter(kwargs.values()))), "--columns", "params,n_layer,d_model"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr


def test_a_model_smaller_than_one_layer_of_one_head_is_refused():
    """A total count mostly embedding (2.1e4 parameters with a 32k vocabulary): no shape exists."""
    with pytest.raises(ScalesweepError, match="give a smaller --head-size, or a larger budget"):
        shapes.shape(np.array([2.1e4, 1e9]), shapes.ShapeSpec(vocab=32000))


def test_large_head_size_is_fine_for_a_model_wide_enough():
    s = shapes.shape(1e13, shapes.ShapeSpec(convention="non_embedding", head_size=4096))
    assert s["d_model"] % 4096 == 0 and abs(s["non_embedding_params"] / 1e13 - 1) < 0.05


def test_default_shapes_are_unchanged():
    """Every row the default rule could shape before is shaped the same way (the check only refuses)."""
    n = np.geomspace(1e8, 1e13, 50)
    for convention in shapes.CONVENTIONS:
        spec = shapes.ShapeSpec(convention=convention)
        s = shapes.shape(n, spec)
        n_e = n if convention == "non_embedding" else shapes.to_non_embedding(n, spec.embedding_rows, 128.0)
        d = np.maximum(128, 128 * np.round(np.cbrt(128 * n_e / 12) / 128))
        np.testing.assert_array_equal(s["d_model"], d)
        np.testing.assert_array_equal(s["n_layer"], np.maximum(1, np.round(n_e / (12 * d * d))))


def test_a_shape_too_large_for_whole_numbers_is_one_error_in_the_api_too():
    import scalesweep as ss

    with pytest.raises(ScalesweepError, match="column 'n_layer': 3.89134e[+]28 is too large for a whole-number column"):
        ss.frontier("hoffmann2022", [1e200], flops_model="kaplan", params_convention="total")
