"""Scenario sweeps: limits mixing lists and single values, no dataset left behind by a bad row, and compact
metadata for range fields."""

import json

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import scalesweep as ss
from scalesweep import dataset
from scalesweep import scenarios as sc
from scalesweep.errors import ScalesweepError
from scalesweep.tables import METADATA_KEY, read_metadata

from .helpers import assert_one_line_error, run


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def bits(a):
    return np.asarray(a, dtype=np.float64).view(np.uint64)


# ------------------------------------------------------------------------ limits: lists mixed with values


@pytest.mark.parametrize("text, per_row", [
    ("flops: 1e20\nmax_params: 1e10\nmin_params: [1e9, 2e9]\n",
     [dict(max_params=1e10, min_params=1e9), dict(max_params=1e10, min_params=2e9)]),
    ("flops: 1e20\nmax_params: [1e10, 7e10]\nunique_tokens: 1e12\n",
     [dict(max_params=1e10, unique_tokens=1e12), dict(max_params=7e10, unique_tokens=1e12)]),
    ("flops: 1e21\nmin_tokens: [1e10, 5e11]\nmax_tokens_per_param: 30\nmax_overfit: [0.5, 0.6]\n",
     [dict(min_tokens=1e10, max_tokens_per_param=30, max_overfit=0.5),
      dict(min_tokens=1e10, max_tokens_per_param=30, max_overfit=0.6),
      dict(min_tokens=5e11, max_tokens_per_param=30, max_overfit=0.5),
      dict(min_tokens=5e11, max_tokens_per_param=30, max_overfit=0.6)]),
])
def test_limits_mixing_lists_and_single_values(tmp_path, text, per_row):
    spec = write(tmp_path, "s.yaml", text)
    run(["scenarios", spec, "-o", tmp_path / "o.parquet"])
    df = pd.read_parquet(tmp_path / "o.parquet")
    assert len(df) == len(per_row)
    flops = float(df.budget_flops[0])
    for i, cons in enumerate(per_row):
        ref = ss.frontier("hoffmann2022", [flops], **cons)
        assert df.feasible[i] == ref.feasible[0]
        for col in ("params", "tokens", "loss", "epochs", "overfit_penalty"):
            if col in ref:
                assert df[col][i] == pytest.approx(ref[col][0], rel=1e-14, nan_ok=True), col
        assert str(df.active_constraint[i]) == str(ref.active_constraint[0])
    # the partitioned run (one row per part) gives the same rows and leaves a complete dataset
    run(["scenarios", spec, "--partition-rows", 1, "-o", tmp_path / "d"])
    parts = pads.dataset(tmp_path / "d", format="parquet").to_table().to_pandas()
    for col in ("params", "tokens", "loss"):
        assert np.array_equal(bits(parts[col]), bits(df[col]))
    assert json.loads(dataset.manifest_path(tmp_path / "d").read_text())["complete"] is True


def test_mixed_limits_with_a_loss_at_budget_law(tmp_path):
    """A law without an allocation cannot honour a limit, whether the limit is a list or a single value."""
    spec = write(tmp_path, "s.yaml", "law: [kaplan2020-C, hoffmann2022]\nflops: 1e20\nmax_params: 1e10\n"
                 "min_params: [1e9, 2e9]\n")
    sc.run(spec, tmp_path / "o.parquet")
    df = pd.read_parquet(tmp_path / "o.parquet")
    assert df.infeasible_reason.astype(str).tolist()[:2] == ["no_allocation"] * 2
    assert df.feasible.tolist() == [False, False, True, True]


# ---------------------------------------------------------------- partitioned runs stopped by a bad row


@pytest.mark.parametrize("text, needle", [
    ("flops,mfu\n1e22,0.4\n1e23,1.5\n", "row 1: mfu needs gpu or peak_tflops"),
    ("flops,gpu,mfu\n1e22,H100-SXM,0.4\n1e23,H100-SXM,1.5\n", "row 2, field 'mfu'"),
    ("flops\n1e22\nabc\n", "row 2, field 'flops': expected a number, got 'abc'"),
])
def test_a_bad_row_leaves_no_dataset(tmp_path, text, needle):
    spec = write(tmp_path, "bad.csv", text)
    res = run(["scenarios", spec, "--partition-rows", 1, "-o", tmp_path / "ds"], ok=False)
    assert_one_line_error(res, needle, 1)
    assert not (tmp_path / "ds").exists()
    # a directory found empty is kept, and left empty
    (tmp_path / "empty").mkdir()
    res = run(["scenarios", spec, "--partition-rows", 1, "-o", tmp_path / "empty"], ok=False)
    assert_one_line_error(res, needle, 1)
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_bad_row_in_a_parquet_table_leaves_no_dataset(tmp_path):
    pd.DataFrame({"flops": [1e22, 1e23, -1.0]}).to_parquet(tmp_path / "bad.parquet")
    res = run(["scenarios", tmp_path / "bad.parquet", "--partition-rows", 1, "-o", tmp_path / "ds"], ok=False)
    assert_one_line_error(res, "row 3, field 'flops'", 1)
    assert not (tmp_path / "ds").exists()


def test_an_existing_dataset_survives_a_refused_run(tmp_path):
    good = write(tmp_path, "good.csv", "flops\n1e22\n1e23\n")
    out = tmp_path / "ds"
    run(["scenarios", good, "--partition-rows", 1, "-o", out])
    before = sorted(p.name for p in out.iterdir())
    bad = write(tmp_path, "bad.csv", "flops\n1e22\nabc\n")
    res = run(["scenarios", bad, "--partition-rows", 1, "-o", out], ok=False)
    assert_one_line_error(res, "written from a different spec", 1)
    assert sorted(p.name for p in out.iterdir()) == before
    assert run(["scenarios", good, "--partition-rows", 1, "-o", out]).output.count("0 computed") == 1


def test_an_interrupt_keeps_the_parts_that_landed(tmp_path, monkeypatch):
    """Only a user error from computing a part discards a fresh dataset; an interrupt keeps it for a resume."""
    spec = write(tmp_path, "s.csv", "flops\n1e22\n1e23\n1e24\n")
    real = sc.solve_part

    def solve_part(loaded, start, stop, *args):
        if start == 1:
            raise KeyboardInterrupt
        return real(loaded, start, stop, *args)

    monkeypatch.setattr(sc, "solve_part", solve_part)
    job = sc.job(spec, partition_rows=1)
    with pytest.raises(KeyboardInterrupt):
        dataset.run(job, tmp_path / "ds")
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [dataset.part_name(0)]
    assert dataset.manifest_path(tmp_path / "ds").is_file()
    monkeypatch.undo()
    summary = dataset.run(sc.job(spec, partition_rows=1), tmp_path / "ds")
    assert summary["reused"] == 1 and summary["computed"] == 2


def test_a_user_error_in_a_resumed_dataset_keeps_it(tmp_path, monkeypatch):
    spec = write(tmp_path, "s.csv", "flops\n1e22\n1e23\n1e24\n")
    real = sc.solve_part
    fail = [KeyboardInterrupt]

    def solve_part(loaded, start, stop, *args):
        if start == 1:
            raise fail[0]
        return real(loaded, start, stop, *args)

    monkeypatch.setattr(sc, "solve_part", solve_part)
    with pytest.raises(KeyboardInterrupt):
        dataset.run(sc.job(spec, partition_rows=1), tmp_path / "ds")
    fail[0] = ScalesweepError("a later failure")
    with pytest.raises(ScalesweepError, match="a later failure"):  # the resume is not into a fresh directory
        dataset.run(sc.job(spec, partition_rows=1), tmp_path / "ds")
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [dataset.part_name(0)]
    assert dataset.manifest_path(tmp_path / "ds").is_file()


# ------------------------------------------------------------------------------- metadata of range fields


def test_a_range_field_is_described_by_its_range(tmp_path):
    spec = write(tmp_path, "s.yaml", 'flops: "1e18:1e22:5000"\nmax_params: [1e9, 1e10]\nlaw: hoffmann2022\n')
    out = tmp_path / "o.parquet"
    sc.run(spec, out)
    meta = read_metadata(out)
    assert meta["spec"]["fields"] == {"flops": [{"range": "1e18:1e22:5000"}], "max_params": [1e9, 1e10],
                                      "law": ["hoffmann2022"]}
    assert meta["spec"]["rows"] == 10000
    assert len(pq.read_schema(out).metadata[METADATA_KEY]) < 2000
    # a partitioned run: every part carries the same small metadata, and the same data bit for bit
    run(["scenarios", spec, "--partition-rows", 3000, "-o", tmp_path / "ds"])
    parts = sorted((tmp_path / "ds").glob("part-*.parquet"))
    assert len(parts) == 4
    mds = {pq.read_schema(p).metadata[METADATA_KEY] for p in parts}
    assert len(mds) == 1 and len(next(iter(mds))) < 2000
    assert json.loads(next(iter(mds)))["spec"]["fields"]["flops"] == [{"range": "1e18:1e22:5000"}]
    single = pq.read_table(out)
    table = pads.dataset(tmp_path / "ds", format="parquet").to_table()
    for name in single.column_names:
        a, b = single[name].combine_chunks(), table[name].combine_chunks()
        if str(a.type) == "double":
            assert a.is_null().equals(b.is_null()), name
            assert np.array_equal(bits(a.fill_null(0.0).to_numpy()), bits(b.fill_null(0.0).to_numpy())), name
        else:
            assert a.equals(b), name


def test_mixed_items_and_long_lists_in_the_metadata(tmp_path):
    values = ", ".join(f"{v:.6e}" for v in np.geomspace(1e20, 1e22, 150))
    spec = write(tmp_path, "s.yaml", f'flops: ["1e18:1e19:3", 5e19]\nmax_params: [{values}]\n')
    loaded = sc.load_spec(spec)
    fields = loaded.describe()["fields"]
    assert fields["flops"] == [{"range": "1e18:1e19:3"}, 5e19]
    assert fields["max_params"] == {"items": 150, "first": float(f"{1e20:.6e}"), "last": float(f"{1e22:.6e}")}
    assert loaded.rows == 4 * 150


def test_the_job_hash_is_deterministic(tmp_path):
    spec = write(tmp_path, "s.yaml", 'flops: "1e18:1e22:1000"\nmax_params: [1e9, 1e10]\n')
    a, b = sc.job(spec, partition_rows=100), sc.job(spec, partition_rows=100, command_line="other")
    assert a.spec_hash == b.spec_hash
    assert len(json.dumps(a.spec["metadata"])) < 2000
    spec.write_text('flops: "1e18:1e22:1001"\nmax_params: [1e9, 1e10]\n')
    assert sc.job(spec, partition_rows=100).spec_hash != a.spec_hash


# ------------------------------------------------------------------------ CSV headers written with spaces


def test_csv_header_with_spaces_after_commas_reads_like_values_do(tmp_path):
    """Values after ', ' are read with the space skipped; the header's names are read the same way, in a single
    file and in parts (each part reads its rows by offset with the header's names)."""
    spaced = write(tmp_path, "spaced.csv", "flops, max_params, law\n1e22, 1e9, hoffmann2022\n3e22, 2e9, kaplan2020\n")
    plain = write(tmp_path, "plain.csv", "flops,max_params,law\n1e22,1e9,hoffmann2022\n3e22,2e9,kaplan2020\n")
    ss.run_scenarios(plain, tmp_path / "want.parquet")
    want = pq.read_table(tmp_path / "want.parquet")
    ss.run_scenarios(spaced, tmp_path / "got.parquet")
    got = pq.read_table(tmp_path / "got.parquet")
    assert got.column_names == want.column_names
    assert got.drop(["law"]).to_pandas().equals(want.drop(["law"]).to_pandas())
    assert got.column("law").to_pylist() == ["hoffmann2022", "kaplan2020"]
    run(["scenarios", spaced, "--partition-rows", "1", "-o", tmp_path / "ds"])
    parts = pads.dataset(str(tmp_path / "ds"), format="parquet").to_table().sort_by("flops")
    np.testing.assert_array_equal(bits(parts.column("params")), bits(want.column("params")))


# ------------------------------------------------------------------------ law aliases in specs


@pytest.mark.parametrize("name, text", [
    ("al.csv", "law,loss_law,flops\nChinchilla,,1e22\nllama3,EPOCH,1e22\nkaplan,,1e21\n"),
    ("al.yaml", "law: [Chinchilla, llama3, kaplan]\nloss_law: EPOCH\nflops: [1e22, 1e21]\n"),
])
def test_law_aliases_in_specs_resolve_and_outputs_name_the_preset(tmp_path, name, text):
    canonical = {"Chinchilla": "hoffmann2022", "llama3": "llama3_2024", "kaplan": "kaplan2020", "EPOCH": "besiroglu2024"}
    plain = text
    for alias, preset in canonical.items():
        plain = plain.replace(alias, preset)
    ss.run_scenarios(write(tmp_path, name, text), tmp_path / "a.parquet")
    ss.run_scenarios(write(tmp_path, "plain" + name, plain), tmp_path / "b.parquet")
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    assert set(a["law"].astype(str)) <= set(canonical.values())
    pd.testing.assert_frame_equal(a, b, check_categorical=False)


def test_sizes_with_suffixes_in_sweep_specs(tmp_path):
    """A count of params, tokens or FLOPs in a sweep spec takes a suffix like the command line (7B is 7e9 exactly);
    other fields do not."""
    ss.run_scenarios(write(tmp_path, "a.yaml", "flops: 6e22\nmax_params: [7B, 1.5e10]\nunique_tokens: 1.5T\n"),
                     tmp_path / "a.parquet")
    ss.run_scenarios(write(tmp_path, "b.yaml", "flops: 6e22\nmax_params: [7e9, 1.5e10]\nunique_tokens: 1.5e12\n"),
                     tmp_path / "b.parquet")
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert a["max_params"].tolist() == [7e9, 1.5e10]
    res = run(["scenarios", write(tmp_path, "c.yaml", "flops: 6e22\nmax_params: 7X\n")], ok=False)
    assert_one_line_error(res, "field 'max_params', item 1: expected a number, got '7X'")
    res = run(["scenarios", write(tmp_path, "d.yaml", "flops: 6e22\ngpu: A100\nmfu: 4B\n")], ok=False)
    assert_one_line_error(res, "field 'mfu', item 1: expected a number, got '4B'")


def test_partitioned_and_single_file_runs_record_the_spec_as_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text("flops,max_params\n1e22,1e9\n1e23,\n1e24,1e11\n")
    run(["scenarios", "s.csv", "-o", "one.parquet"])
    run(["scenarios", "s.csv", "--partition-rows", "2", "-o", "ds"])
    single = json.loads(pq.read_schema("one.parquet").metadata[METADATA_KEY])["spec"]
    parts = sorted((tmp_path / "ds").glob("*.parquet"))
    assert len(parts) == 2
    for part in parts:
        assert json.loads(pq.read_schema(part).metadata[METADATA_KEY])["spec"] == single
    assert single["source"] == "s.csv"
