"""Partitioned datasets, locally and on a Dask LocalCluster: equality with single-file runs, resume,
refusal of a different spec, a worker killed mid-run."""

import builtins
import os
import signal

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep import dataset, questions, scenarios, surfaces
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.tables import read_metadata

from .helpers import assert_one_line_error

distributed = pytest.importorskip("distributed")

LAW = ss.get_law("hoffmann2022")
N = np.geomspace(1e7, 1e11, 60)
D = np.geomspace(1e9, 1e13, 70)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def read(path):
    return pd.read_parquet(path)


def same(a, b):
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True,
                                  check_categorical=False)


def sweep(tmp_path):
    p = tmp_path / "sweep.yaml"
    p.write_text("law: [hoffmann2022, kaplan2020, llama3_2024]\ngpu: H100-SXM\ngpus: [8, 64, 512]\n"
                 "days: [1, 7, 30]\nmfu: [0.3, 0.5]\nunique_tokens: [1e11, 1e12]\n")  # 108 scenarios
    return p


def test_local_partitions_equal_a_single_file(tmp_path):
    ss.write_surface(tmp_path / "s.parquet", LAW, N, tokens=D)
    job = surfaces.job(LAW, N, D, partition_rows=700)
    summary = dataset.run(job, tmp_path / "s_ds")
    assert summary["parts"] == 6 and summary["computed"] == 6
    same(read(tmp_path / "s_ds"), read(tmp_path / "s.parquet"))
    # same schema metadata as the single file (pyarrow.dataset sees one table)
    a = dataset.read_dataset_metadata(tmp_path / "s_ds")
    b = read_metadata(tmp_path / "s.parquet")
    assert a == b
    # IsoFLOP form and frontier too
    ss.write_surface(tmp_path / "i.parquet", LAW, N, flops=[1e20, 1e21, 1e22])
    dataset.run(surfaces.job(LAW, N, c=[1e20, 1e21, 1e22], partition_rows=60), tmp_path / "i_ds")
    same(read(tmp_path / "i_ds"), read(tmp_path / "i.parquet"))
    flops = np.geomspace(1e18, 1e26, 999)
    dataset.run(questions.frontier_job(LAW, flops, constraints=ss.Constraints(max_params=1e11), partition_rows=100),
                tmp_path / "f_ds")
    same(read(tmp_path / "f_ds"), ss.frontier(LAW, flops, max_params=1e11))


def test_dask_equals_local(tmp_path, client):
    spec = sweep(tmp_path)
    ss.run_scenarios(spec, tmp_path / "sc.parquet")
    job = scenarios.job(spec, partition_rows=25)
    summary = dataset.run(job, tmp_path / "sc_dask", engine="dask", client=client)
    assert summary["parts"] == 5 and summary["computed"] == 5
    same(read(tmp_path / "sc_dask"), read(tmp_path / "sc.parquet"))
    ss.write_surface(tmp_path / "s.parquet", LAW, N, tokens=D)
    dataset.run(surfaces.job(LAW, N, D, partition_rows=500), tmp_path / "s_dask", engine="dask",
                client=client)
    same(read(tmp_path / "s_dask"), read(tmp_path / "s.parquet"))
    # a CSV table spec too
    table = tmp_path / "t.csv"
    pd.DataFrame({"law": ["hoffmann2022", "kaplan2020"] * 20, "flops": np.geomspace(1e19, 1e25, 40)}).to_csv(
        table, index=False)
    ss.run_scenarios(table, tmp_path / "t.parquet")
    dataset.run(scenarios.job(table, partition_rows=7), tmp_path / "t_dask", engine="dask", client=client)
    same(read(tmp_path / "t_dask"), read(tmp_path / "t.parquet"))


def test_resume_recomputes_only_missing_parts(tmp_path):
    job = surfaces.job(LAW, N, D, partition_rows=700)
    out = tmp_path / "ds"
    dataset.run(job, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    (out / "part-000002.parquet").unlink()
    (out / ".part-000004.parquet.x.tmp").write_text("half-written by a killed run")
    summary = dataset.run(job, out)
    assert summary["computed"] == 1 and summary["reused"] == 5
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert all(after[k] == v for k, v in before.items() if k != "part-000002.parquet")
    assert not list(out.glob(".part-*"))
    ss.write_surface(tmp_path / "s.parquet", LAW, N, tokens=D)
    same(read(out), read(tmp_path / "s.parquet"))


def test_refuses_a_different_spec_or_a_foreign_directory(tmp_path):
    out = tmp_path / "ds"
    dataset.run(surfaces.job(LAW, N, D, partition_rows=700), out)
    names = sorted(p.name for p in out.iterdir())
    for job in (surfaces.job(LAW, N, D, partition_rows=1400),  # another part plan
                surfaces.job(ss.get_law("besiroglu2024"), N, D, partition_rows=700)):
        with pytest.raises(ScalesweepError, match="written from a different spec"):
            dataset.run(job, out)
    assert sorted(p.name for p in out.iterdir()) == names
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(ScalesweepError, match="is not a scalesweep dataset"):
        dataset.run(surfaces.job(LAW, N, D, partition_rows=700), tmp_path / "foreign")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ScalesweepError, match="it is a file"):
        dataset.run(surfaces.job(LAW, N, D, partition_rows=700), tmp_path / "afile")
    # a changed scenario file is a different spec
    spec = sweep(tmp_path)
    dataset.run(scenarios.job(spec, partition_rows=50), tmp_path / "sc")
    spec.write_text(spec.read_text().replace("mfu: [0.3, 0.5]", "mfu: [0.3, 0.6]"))
    with pytest.raises(ScalesweepError, match="different spec"):
        dataset.run(scenarios.job(spec, partition_rows=50), tmp_path / "sc")


def test_a_worker_killed_mid_run(tmp_path, client):
    pids = list(client.run(os.getpid).values())
    killed = []

    def progress(done, total):
        if done == 1 and not killed:  # after the first part lands, kill one worker process outright
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    job = surfaces.job(LAW, np.geomspace(1e7, 1e11, 400), D, partition_rows=700)
    summary = dataset.run(job, tmp_path / "ds", engine="dask", client=client, progress=progress)
    assert killed and summary["computed"] == summary["parts"] == 40
    ss.write_surface(tmp_path / "s.parquet", LAW, np.geomspace(1e7, 1e11, 400), tokens=D)
    same(read(tmp_path / "ds"), read(tmp_path / "s.parquet"))
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next test


def test_cli(tmp_path):
    spec = sweep(tmp_path)
    res = CliRunner().invoke(cli, ["scenarios", str(spec), "--partition-rows", "40", "-o", str(tmp_path / "ds")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "as 3 parts" in res.output and "3 computed" in res.output
    res = CliRunner().invoke(cli, ["scenarios", str(spec), "--partition-rows", "40", "-o", str(tmp_path / "ds")],
                             catch_exceptions=False)
    assert "0 computed, 3 already there" in res.output
    assert_one_line_error(CliRunner().invoke(cli, ["scenarios", str(spec), "--partition-rows", "41", "-o",
                                                   str(tmp_path / "ds")]), "different spec", code=1)
    assert_one_line_error(CliRunner().invoke(cli, ["surface", "--params-range", "1e8:1e9:3", "--tokens-range",
                                                   "1e9:1e10:3", "--workers", "2", "-o", str(tmp_path / "x")]),
                          "--scheduler and --workers need --engine dask", code=2)
    assert_one_line_error(CliRunner().invoke(cli, ["frontier", "--flops-range", "1e20:1e22:3", "--engine", "dask",
                                                   "--scheduler", "tcp://127.0.0.1:9"]), "give -o DIRECTORY", code=2)
    assert_one_line_error(CliRunner().invoke(cli, ["frontier", "--flops-range", "1e20:1e22:3", "--engine", "dask",
                                                   "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "f")]),
                          "cannot reach the Dask scheduler", code=1)


def test_without_dask_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith(("distributed", "dask")):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ScalesweepError, match=r"pip install 'scalesweep\[dask\]'"), dataset.dask_client(workers=1):
        pass


def test_lookup_build_in_parts_equals_local(tmp_path, client):
    from scalesweep.lookup import Lookup, write_lookup, write_lookup_parts

    info = write_lookup(tmp_path / "t.parquet", LAW, 1e18, 1e24, 8, max_params=3e9)
    for engine, kw in (("local", {}), ("dask", {"client": client})):
        out = tmp_path / f"t_{engine}.parquet"
        got = write_lookup_parts(out, LAW, 1e18, 1e24, 8, engine=engine, partition_rows=7, max_params=3e9, **kw)
        assert got["parts"] == 7 and not (tmp_path / f"t_{engine}.parquet.parts").exists()
        assert not dataset.manifest_path(tmp_path / f"t_{engine}.parquet.parts").exists()
        assert got["max_interpolation_error"] == info["max_interpolation_error"]  # segments across parts included
        a, b = Lookup(out), Lookup(tmp_path / "t.parquet")
        np.testing.assert_array_equal(a.flops, b.flops)
        for col in ("params", "tokens", "loss"):
            np.testing.assert_array_equal(a.columns[col], b.columns[col])
        assert a.max_error == b.max_error
    res = CliRunner().invoke(cli, ["lookup", "build", "--flops-range", "1e18:1e24", "--points-per-decade", "8",
                                   "--partition-rows", "10", "-o", str(tmp_path / "c.parquet")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert Lookup(tmp_path / "c.parquet").info["rows"] == 49


def test_cli_engine_dask_starts_and_stops_a_local_cluster(tmp_path):
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e18:1e26:101", "--max-params", "1e11",
                                   "--engine", "dask", "--workers", "1", "--partition-rows", "30",
                                   "-o", str(tmp_path / "f")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "as 4 parts" in res.output and "dask" in res.output
    same(read(tmp_path / "f"), ss.frontier(LAW, np.geomspace(1e18, 1e26, 101), max_params=1e11))


def test_partitioned_metadata_equals_single_file_metadata(tmp_path):
    """One builder per output kind: a part carries exactly the metadata of the single-file run."""
    for cmd, extra in ((["frontier", "--flops-range", "1e18:1e24:50", "--max-params", "1e10"], []),
                       (["surface", "--params-range", "1e8:1e10:20", "--tokens-range", "1e9:1e12:30"], []),
                       (["scenarios", str(sweep(tmp_path))], [])):
        single, parts = tmp_path / f"{cmd[0]}.parquet", tmp_path / f"{cmd[0]}_ds"
        res = CliRunner().invoke(cli, [*cmd, "-o", str(single)])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(cli, [*cmd, "-o", str(parts), "--partition-rows", "128", *extra])
        assert res.exit_code == 0, res.output
        a, b = read_metadata(single), dataset.read_dataset_metadata(parts)
        a.pop("command_line"), b.pop("command_line")  # the commands differ by -o and --partition-rows
        assert a == b, cmd[0]
        same(read(parts), read(single))


def test_dask_budget_array_goes_to_the_cluster_once(tmp_path, client):
    """Budgets that are no range (a file's values) stay an array in the spec; Dask gets the spec once (scattered),
    and each task names it by key instead of carrying it. The parts equal the local frontier."""
    flops = np.sort(np.random.default_rng(5).uniform(1e18, 1e24, 5000))
    job = questions.frontier_job(LAW, flops, constraints=ss.Constraints(max_params=1e10), partition_rows=1000)
    assert isinstance(job.spec["flops"], np.ndarray)
    sent = []
    real = client.submit

    def submit(fn, *args, **kw):
        sent.append(args)
        return real(fn, *args, **kw)

    client.submit = submit
    try:
        dataset.run(job, tmp_path / "f_ds", engine="dask", client=client)
    finally:
        del client.submit
    assert len(sent) == 5 and all(isinstance(a[1], distributed.Future) for a in sent)
    assert len({a[1].key for a in sent}) == 1
    same(read(tmp_path / "f_ds"), ss.frontier(LAW, flops, max_params=1e10))
