"""Inputs and outputs at URIs (``storage``): an S3-compatible server (moto's, started here on localhost and
spoken to over HTTP by pyarrow, boto3 and polars as they speak to S3), memory:// and file://. Outputs read
back with other clients than scalesweep's (boto3, polars, fsspec) equal the local outputs; a failed or killed
run leaves no object; a partitioned run killed mid-way resumes; Dask workers write their parts to the bucket;
bad URIs are one-line errors."""

import inspect
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalesweep import dataset, fit, laws, lookup, output, plot, scenarios, storage
from scalesweep.tables import METADATA_KEY

from .helpers import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]
SPEC = "law: [hoffmann2022, kaplan2020]\nflops: [1e20, 1e21, 1e22, 1e23, 1e24]\nmax_params: [1e10, 1e12]\n"  # 20
COMMANDS = {"frontier": ["frontier", "--flops-range", "1e20:1e24:9"],
            "surface": ["surface", "--params-range", "1e8:1e10:5", "--tokens-range", "1e10:1e12:4"]}


def reads_through_storage(func):
    """A test of a module's inputs at URIs is expected to fail (strictly: it must fail) until the module reads
    them through ``storage``; it runs as a plain test once it does."""
    return pytest.mark.xfail("storage." not in inspect.getsource(func), strict=True,
                             reason=f"{func.__module__}.{func.__qualname__} reads local paths only")


@pytest.fixture(scope="module")
def endpoint():
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except Exception as exc:  # moto missing, or no local socket
        pytest.skip(f"moto's S3 server cannot start here: {exc}")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint, monkeypatch):
    """A new bucket, and the environment every client reads (pyarrow, boto3, polars, Dask workers, a
    subprocess): yields ``s3://BUCKET``."""
    for key, value in dict(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                           AWS_DEFAULT_REGION="us-east-1", AWS_ALLOW_HTTP="true").items():
        monkeypatch.setenv(key, value)
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    _client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


def _client():
    import boto3

    return boto3.client("s3")


def _split(uri):
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def keys(uri):
    """The keys of every object under ``uri`` (a bucket or a prefix), as boto3 lists them."""
    bucket, prefix = _split(uri)
    pages = _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix):].lstrip("/") for page in pages for o in page.get("Contents", []))


def put(uri, data: bytes):
    bucket, key = _split(uri)
    _client().put_object(Bucket=bucket, Key=key, Body=data)


def raw(uri) -> bytes:
    """An output's bytes, read by another client than scalesweep's."""
    if uri.startswith("s3://"):
        bucket, key = _split(uri)
        return _client().get_object(Bucket=bucket, Key=key)["Body"].read()
    if uri.startswith("memory://"):
        import fsspec

        return fsspec.filesystem("memory").cat(uri)
    return Path(storage.locate(uri)).read_bytes()


def same_table(a, b):
    """Equal rows, schemas (field metadata included) and scalesweep metadata but for the command line."""
    assert a.equals(b) and a.schema.equals(b.schema, check_metadata=False)
    assert [f.metadata for f in a.schema] == [f.metadata for f in b.schema]
    ma, mb = (json.loads(t.schema.metadata[METADATA_KEY]) for t in (a, b))
    ma.pop("command_line"), mb.pop("command_line")
    assert ma == mb


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def test_single_files_to_s3_memory_and_file_uris_equal_the_local_files(s3, tmp_path, spec):
    commands = {**COMMANDS, "scenarios": ["scenarios", spec]}
    memory = f"memory://{uuid.uuid4().hex}"
    (tmp_path / "uri").mkdir()
    for name, args in commands.items():
        run([*args, "-o", tmp_path / f"{name}.parquet"])
        run([*args, "-o", tmp_path / f"{name}.csv"])
        local = pq.read_table(tmp_path / f"{name}.parquet")
        for base in (s3, memory, (tmp_path / "uri").as_uri()):
            res = run([*args, "-o", f"{base}/{name}.parquet"])
            assert f"{base}/{name}.parquet" in res.stderr
            same_table(pq.read_table(io.BytesIO(raw(f"{base}/{name}.parquet"))), local)
            run([*args, "-o", f"{base}/{name}.csv"])
            assert raw(f"{base}/{name}.csv") == (tmp_path / f"{name}.csv").read_bytes()
    import polars as pl

    assert pl.read_parquet(f"{s3}/frontier.parquet").equals(pl.read_parquet(tmp_path / "frontier.parquet"))
    assert keys(s3) == sorted(f"{n}.{s}" for n in commands for s in ("csv", "parquet"))  # no temporary objects
    assert (tmp_path / "uri" / "frontier.parquet").stat().st_mode & 0o777 == output.new_file_mode()


def test_a_failed_or_interrupted_write_leaves_no_object(s3, monkeypatch):
    name = f"{uuid.uuid4().hex}.parquet"
    table = pa.table({"x": [1.0, 2.0]})
    for exc in (RuntimeError("a bug"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), output.table_writer(f"{s3}/{name}", table.schema) as w:
            w.write(table)
            raise exc

    def fail(self, batch, row_group_size=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.TableWriter, "write", fail)
    assert_one_line_error(run([*COMMANDS["frontier"], "-o", f"{s3}/{name}"], ok=False), "No space left")
    assert keys(s3) == [] and not list(Path(tempfile.gettempdir()).glob(f".{name}.*"))


def test_a_file_of_several_upload_parts_arrives_whole(s3):
    data = os.urandom(11 << 20)  # above the S3 client's part size: a multipart upload, completed at the end
    output.write_bytes(f"{s3}/big.bin", data)
    assert raw(f"{s3}/big.bin") == data


def test_targets_that_cannot_be_written(s3, tmp_path):
    put(f"{s3}/dir/x.csv", b"flops\n1e20\n")
    frontier = COMMANDS["frontier"]
    for target, needle in [(f"{s3}/dir", "it is a directory"), (f"{s3}/dir/", "ending in / is a directory"),
                           (f"s3://no-such-{uuid.uuid4().hex[:8]}/f.csv", "does not exist")]:
        assert_one_line_error(run([*frontier, "-o", target], ok=False), needle)
    put(f"{s3}/dir/y.parquet", b"PAR1")
    assert_one_line_error(run([*frontier, "--partition-rows", "3", "-o", f"{s3}/dir/y.parquet"], ok=False),
                          "it is a file")
    assert_one_line_error(run(["frontier", "--flops-file", f"{s3}/dir/x.csv", "-o", f"{s3}/dir/x.csv"], ok=False),
                          "it is an input of this command")
    assert_one_line_error(run([*frontier, "-o", f"{s3}/dir//x.csv"], ok=False), "Empty path component")
    (tmp_path / "b.csv").write_text("flops\n1e20\n")
    mem = f"memory://{uuid.uuid4().hex}"
    output.write_bytes(f"{mem}/b.csv", b"flops\n1e20\n")
    assert_one_line_error(run(["frontier", "--flops-file", f"{mem}/b.csv", "-o", f"{mem.replace('//', '///')}/b.csv"],
                              ok=False), "it is an input of this command")
    assert_one_line_error(run(["frontier", "--flops-file", tmp_path / "b.csv", "-o", (tmp_path / "b.csv").as_uri()],
                              ok=False), "it is an input of this command")
    assert keys(s3) == ["dir/x.csv", "dir/y.parquet"]


@pytest.mark.parametrize("target, needle", [
    ("xyz://bucket/f.parquet", "unknown scheme 'xyz'"),
    ("s3://key:secret@bucket/f.parquet", "credentials come from the environment"),
    ("s3://bucket/f.parquet?endpoint_override=localhost", "not from a query in the URI"),
    ("file://host/tmp/f.parquet", "file:///ABSOLUTE/PATH"),
    ("s3://", "it names no file"),
    ("memory://", "it names no file"),
])
def test_bad_uris_are_one_line_errors(target, needle):
    assert_one_line_error(run([*COMMANDS["frontier"], "-o", target], ok=False), needle)
    assert_one_line_error(run(["frontier", "--flops-file", target], ok=False), needle)


@pytest.mark.parametrize("target, needle", [
    ("s3://bucket", "it names the bucket 'bucket', not an object in it"),
    ("gs://bucket/", "ending in / is a directory"),
    ("s3://b/dir/", "ending in / is a directory"),
    ("http://127.0.0.1:9/f.parquet", "http:// is read-only"),
    ("https://example.invalid/ds", "https:// is read-only"),
    ("file:x.parquet", "a URI is file://...; for a local file of that name write ./file:x.parquet"),
    ("S3:bucket/x.csv", "a URI is S3://..."),
])
def test_outputs_refused_from_their_text_before_any_network_call(target, needle, monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("a filesystem was made for a target refused by its text")

    monkeypatch.setattr(storage, "_filesystem", no_network)
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run([*COMMANDS["frontier"], "-o", target], ok=False), needle)
    assert list(tmp_path.iterdir()) == []
    if target.endswith("/") or "://" not in target:
        return
    assert_one_line_error(run([*COMMANDS["frontier"], "--partition-rows", "1", "-o", target], ok=False), needle)


def test_a_password_in_a_uri_is_not_repeated():
    res = run([*COMMANDS["frontier"], "-o", "s3://alice:hunter2@bucket/f.parquet"], ok=False)
    assert_one_line_error(res, "credentials come from the environment")
    assert "hunter2" not in res.output and "alice" not in res.output and "s3://***@bucket/f.parquet" in res.output
    assert storage.redacted("s3://u:p@b/k/x") == "s3://***@b/k/x" and storage.redacted("s3://b/k") == "s3://b/k"


def test_google_cloud_without_credentials_gives_up_within_its_retry_limit(monkeypatch, tmp_path):
    import time

    monkeypatch.setattr(storage, "GCS_RETRY_SECONDS", 1.0)
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # no metadata server: what a laptop sees
    monkeypatch.setenv("GCE_METADATA_ROOT", "127.0.0.1:9")
    t0 = time.monotonic()
    res = run([*COMMANDS["frontier"], "-o", "gs://scalesweep-no-such-bucket/k.parquet"], ok=False)
    assert time.monotonic() - t0 < 30
    assert_one_line_error(res, "cannot use 'gs://scalesweep-no-such-bucket/k.parquet'")


def test_a_read_only_filesystem_write_is_one_line(tmp_path):
    fsspec = pytest.importorskip("fsspec")

    class ReadOnly(fsspec.implementations.memory.MemoryFileSystem):
        protocol = ("readonly",)

        def _open(self, path, mode="rb", **kwargs):
            if "w" in mode:
                raise NotImplementedError("write not supported")
            return super()._open(path, mode, **kwargs)

    fsspec.register_implementation("readonly", ReadOnly, clobber=True)
    assert_one_line_error(run([*COMMANDS["frontier"], "-o", "readonly://x/f.parquet"], ok=False),
                          "cannot write 'readonly://x/f.parquet': write not supported")


def test_a_scheme_whose_package_is_missing_names_the_install():
    try:
        import adlfs  # noqa: F401
    except ImportError:
        assert_one_line_error(run([*COMMANDS["frontier"], "-o", "az://container/f.parquet"], ok=False),
                              "az:// needs the adlfs package: pip install adlfs")
    else:
        pytest.skip("adlfs is installed")


def test_flops_files_and_lookup_tables_from_s3(s3, tmp_path):
    put(f"{s3}/in/budgets.csv", b"flops\n1e20\n3e21\n1e23\n")
    (tmp_path / "budgets.csv").write_bytes(raw(f"{s3}/in/budgets.csv"))
    run(["frontier", "--flops-file", f"{s3}/in/budgets.csv", "-o", tmp_path / "a.csv"])
    run(["frontier", "--flops-file", tmp_path / "budgets.csv", "-o", tmp_path / "b.csv"])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert_one_line_error(run(["frontier", "--flops-file", f"{s3}/in/none.csv"], ok=False),
                          f"flops file '{s3}/in/none.csv' does not exist")
    pq.write_table(pa.table({"flops": [1e20, 3e21, 1e23]}), tmp_path / "budgets.parquet")
    put(f"{s3}/in/budgets.parquet", (tmp_path / "budgets.parquet").read_bytes())
    run(["frontier", "--flops-file", f"{s3}/in/budgets.parquet", "-o", tmp_path / "c.csv"])
    assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    run(["lookup", "build", "--flops-range", "1e19:1e24", "-o", f"{s3}/t.parquet"])
    run(["lookup", "build", "--flops-range", "1e19:1e24", "-o", tmp_path / "t.parquet"])
    for table in (f"{s3}/t.parquet", tmp_path / "t.parquet"):
        run(["lookup", "query", table, "--flops-file", f"{s3}/in/budgets.csv", "-o", tmp_path / "q.csv"])
        assert lookup.Lookup(table).range == (1e19, 1e24)
    assert (tmp_path / "q.csv").read_text().count("\n") == 4


@reads_through_storage(scenarios.load_spec)
def test_scenario_specs_from_s3(s3, tmp_path, spec):
    run(["scenarios", spec, "-o", tmp_path / "local.parquet"])
    run(["scenarios", spec, "-o", tmp_path / "local.csv"])
    put(f"{s3}/spec.yaml", spec.read_bytes())
    run(["scenarios", f"{s3}/spec.yaml", "-o", tmp_path / "yaml.csv"])
    assert (tmp_path / "yaml.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    table = pq.read_table(tmp_path / "local.parquet")
    rows = table.select(["law", "flops", "max_params"]).to_pandas()
    put(f"{s3}/spec.csv", rows.to_csv(index=False).encode())
    (tmp_path / "spec.csv").write_bytes(raw(f"{s3}/spec.csv"))
    for source in (tmp_path / "spec.csv", f"{s3}/spec.csv"):
        run(["scenarios", source, "--partition-rows", "7", "-o", f"{s3}/from-{Path(str(source)).parent.name}"])
    import polars as pl

    a, b = (pl.read_parquet(f"{s3}/from-{d}/*.parquet") for d in (tmp_path.name, s3[5:]))
    assert a.equals(b) and a.height == 20
    assert_one_line_error(run(["scenarios", f"{s3}/none.yaml"], ok=False), f"spec '{s3}/none.yaml' does not exist")


@reads_through_storage(fit.read_runs)
def test_runs_files_from_s3(s3, tmp_path):
    runs = (ROOT / "data" / "example_runs.csv").read_bytes()
    put(f"{s3}/runs.csv", runs)
    (tmp_path / "runs.csv").write_bytes(runs)
    run(["fit", f"{s3}/runs.csv", "--method", "vp", "-o", f"{s3}/law.json"])
    run(["fit", tmp_path / "runs.csv", "--method", "vp", "-o", tmp_path / "law.json"])
    a, b = json.loads(raw(f"{s3}/law.json")), json.loads((tmp_path / "law.json").read_text())
    assert a["parameters"] == b["parameters"]


@reads_through_storage(laws.load_law_file)
def test_law_files_from_s3(s3, tmp_path):
    law = json.dumps({"preset": "hoffmann2022", "parameters": {"alpha": 0.35}}).encode()
    put(f"{s3}/law.json", law)
    (tmp_path / "law.json").write_bytes(law)
    run([*COMMANDS["frontier"], "--law-file", f"{s3}/law.json", "-o", tmp_path / "a.csv"])
    run([*COMMANDS["frontier"], "--law-file", tmp_path / "law.json", "-o", tmp_path / "b.csv"])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@reads_through_storage(lookup.Lookup.__init__)
def test_lookup_tables_on_memory_and_built_in_parts_on_s3(s3, tmp_path):
    mem = f"memory://{uuid.uuid4().hex}/t.parquet"
    run(["lookup", "build", "--flops-range", "1e19:1e24", "-o", mem])
    run(["lookup", "build", "--flops-range", "1e19:1e24", "--partition-rows", "20", "-o", f"{s3}/t.parquet"])
    assert lookup.Lookup(mem).query([3e21]).equals(lookup.Lookup(f"{s3}/t.parquet").query([3e21]))
    assert keys(s3) == ["t.parquet"]  # the parts and their manifest were removed once joined


@reads_through_storage(plot._open)
def test_plots_from_and_to_s3(s3, tmp_path):
    pytest.importorskip("matplotlib")
    run([*COMMANDS["frontier"], "-o", f"{s3}/f.parquet"])
    run(["plot", "frontier", f"{s3}/f.parquet", "-o", f"{s3}/f.svg"])
    assert raw(f"{s3}/f.svg").lstrip().startswith(b"<?xml")


SLOW_PARTS = """
import sys, time
from scalesweep import dataset
from scalesweep.__main__ import main
write_part = dataset.write_part
def slow(*args, **kwargs):
    summary = write_part(*args, **kwargs)
    time.sleep(0.3)
    return summary
dataset.write_part = slow
main()
"""


def test_a_partitioned_run_to_s3_killed_mid_way_resumes(s3, tmp_path, spec):
    """The run (in a subprocess, each part slowed down) is killed with SIGKILL after some parts landed: every
    part object seen, during the run and after it, is a whole Parquet file; the rerun takes over the dead run's
    lock, verifies what landed, writes the rest and reads back equal to a single-file run."""
    import polars as pl

    ds = f"{s3}/prefix/ds"
    args = ["scenarios", str(spec), "--partition-rows", "2", "-o", ds]  # 10 parts
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PARTS, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    seen: set = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < 3 and time.monotonic() < deadline and proc.poll() is None:
            for key in set(keys(f"{ds}/")) - seen:
                assert pq.read_table(io.BytesIO(raw(f"{ds}/{key}"))).num_rows == 2, key
                seen.add(key)
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert 3 <= len(seen) < 10, err.decode()
    landed = keys(f"{ds}/")
    assert all(pq.read_table(io.BytesIO(raw(f"{ds}/{key}"))).num_rows == 2 for key in landed)
    assert set(keys(f"{s3}/prefix")) <= {".ds.lock", ".ds.manifest.json", *(f"ds/{k}" for k in landed)}
    assert ".ds.lock" in keys(f"{s3}/prefix")  # the killed run's
    res = run(args)
    assert f"{len(landed)} already there" in res.stderr
    run(["scenarios", spec, "-o", tmp_path / "single.parquet"])
    assert pl.read_parquet(f"{ds}/*.parquet").equals(pl.read_parquet(tmp_path / "single.parquet"))
    assert keys(f"{s3}/prefix") == [".ds.manifest.json", *(f"ds/part-{i:06d}.parquet" for i in range(10))]
    assert json.loads(raw(f"{s3}/prefix/.ds.manifest.json"))["complete"] is True
    assert not _client().list_multipart_uploads(Bucket=s3[5:]).get("Uploads")


def test_resuming_on_s3_verifies_parts_refuses_strangers_and_respects_a_live_lock(s3, spec):
    ds = f"{s3}/ds"
    args = ["scenarios", spec, "--partition-rows", "5", "-o", ds]
    run(args)
    good = raw(f"{ds}/part-000001.parquet")
    put(f"{ds}/part-000001.parquet", good[:-9] + b"corrupted")
    res = run(args)
    assert "1 part" in res.stderr and "part-000001.parquet" in res.stderr and "recomputed" in res.stderr
    assert raw(f"{ds}/part-000001.parquet") == good
    put(f"{ds}/notes.txt", b"hello")
    assert_one_line_error(run(args, ok=False), "holds 'notes.txt'")
    _client().delete_object(Bucket=s3[5:], Key="ds/notes.txt")
    put(f"{s3}/.ds.lock", json.dumps({"host": "elsewhere", "pid": 1, "started": "now"}).encode())
    assert_one_line_error(run(args, ok=False), "is being written by pid 1 on elsewhere")
    assert raw(f"{s3}/.ds.lock").startswith(b'{"host": "elsewhere"')


def test_the_lock_is_a_conditional_create(s3):
    lock = storage.locate(f"{s3}/.ds.lock")
    assert storage.create_exclusive(lock, b"first") and not storage.create_exclusive(lock, b"second")
    assert raw(f"{s3}/.ds.lock") == b"first"


def test_partitioned_runs_to_memory_and_file_uris(tmp_path, spec):
    run(["scenarios", spec, "-o", tmp_path / "single.parquet"])
    single = pq.read_table(tmp_path / "single.parquet")
    mem = f"memory://{uuid.uuid4().hex}/ds"
    for target in (mem, (tmp_path / "ds").as_uri()):
        run(["scenarios", spec, "--partition-rows", "6", "-o", target])
        assert "4 already there" in run(["scenarios", spec, "--partition-rows", "6", "-o", target]).stderr
        loc = storage.locate(target)
        fs, root = (loc.fs, loc.path) if isinstance(loc, storage.Location) else (None, loc)
        import pyarrow.dataset as pads

        assert pads.dataset(root, filesystem=fs, format="parquet").to_table().equals(single)
    assert (tmp_path / ".ds.manifest.json").is_file() and not (tmp_path / ".ds.lock").exists()


def test_dask_workers_write_their_parts_to_s3(s3, tmp_path, spec):
    pytest.importorskip("distributed")
    import polars as pl

    res = run(["scenarios", spec, "--engine", "dask", "--workers", "1", "--partition-rows", "5", "-o", f"{s3}/dask"])
    assert "Dask dashboard: http" in res.stderr
    run(["scenarios", spec, "-o", tmp_path / "single.parquet"])
    assert pl.read_parquet(f"{s3}/dask/*.parquet").equals(pl.read_parquet(tmp_path / "single.parquet"))
    assert keys(s3) == [".dask.manifest.json", *(f"dask/part-{i:06d}.parquet" for i in range(4))]


def test_inputs_needing_a_file_on_disk_get_a_local_copy_kept_while_the_object_is_unchanged(s3):
    put(f"{s3}/a/runs.csv", b"x\n1\n")
    first = storage.local_file(f"{s3}/a/runs.csv")
    assert Path(first).name == "runs.csv" and Path(first).read_bytes() == b"x\n1\n"
    assert storage.local_file(f"{s3}/a/runs.csv") == first
    put(f"{s3}/a/runs.csv", b"x\n1\n2\n")
    assert Path(storage.local_file(f"{s3}/a/runs.csv")).read_bytes() == b"x\n1\n2\n"
    with pytest.raises(FileNotFoundError):
        storage.local_file(f"{s3}/a/none.csv")
    assert storage.local_file("plain/path.csv") == "plain/path.csv"
    assert storage.local_file("file:///tmp/a%20b.csv") == "/tmp/a b.csv"


def test_dask_cannot_write_to_memory():
    from scalesweep import surfaces

    job = surfaces.job(laws.get_law("hoffmann2022"), [1e8, 1e9], [1e10, 1e11], partition_rows=1)
    with pytest.raises(storage.ScalesweepError, match="lives in this process"):
        dataset.run(job, f"memory://{uuid.uuid4().hex}/ds", engine="dask", client=None)


def test_a_command_line_process_refuses_outputs_that_die_with_it(tmp_path):
    """The console script ends with its command: an in-process filesystem would lose the output. In-process
    callers (notebooks, the test runner) keep memory:// outputs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args in ([*COMMANDS["frontier"], "-o", "memory://x.parquet"],
                 [*COMMANDS["frontier"], "--partition-rows", "3", "-o", "memory://x/ds"]):
        res = subprocess.run([sys.executable, "-m", "scalesweep", *args], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=120)
        assert res.returncode == 1 and res.stdout == ""
        assert res.stderr.startswith("Error: cannot write") and len(res.stderr.splitlines()) == 1
        assert "memory:// lives inside this process, which ends with the command" in res.stderr
    mem = f"memory://{uuid.uuid4().hex}/f.parquet"
    run([*COMMANDS["frontier"], "-o", mem])  # in process: kept, and readable
    assert pq.read_table(storage.input_file(mem)).num_rows == 9
