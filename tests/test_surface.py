import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import scalesweep as ss
from scalesweep.api import write_surface
from scalesweep.tables import read_metadata

from . import reference as ref
from .helpers import assert_one_line_error, run

PRESETS = [n for n in ss.PRESETS if ss.PRESETS[n].family != "allocation_rule"]  # rules have no loss


@pytest.mark.parametrize("name", PRESETS)
def test_grid_matches_dense_reference(name):
    law = ss.get_law(name)
    n = np.geomspace(1e5, 1e13, 37)
    d = np.geomspace(1e7, 1e15, 41)
    got = ss.surface(law, n, d)
    assert got.shape == (37, 41)
    np.testing.assert_allclose(got, ref.surface_dense(law.family, dict(law.params), n, d), rtol=1e-14, atol=0)


@given(
    st.floats(0.05, 1.5), st.floats(0.05, 1.5), st.floats(0.0, 5.0), st.floats(1.0, 1e4), st.floats(1.0, 1e4),
    st.lists(st.floats(1.0, 1e15), min_size=1, max_size=6), st.lists(st.floats(1.0, 1e15), min_size=1, max_size=6),
)
@settings(max_examples=60, deadline=None)
def test_chinchilla_grid_property(alpha, beta, E, A, B, n, d):
    law = ss.get_law("hoffmann2022", alpha=alpha, beta=beta, E=E, A=A, B=B)
    np.testing.assert_allclose(ss.surface(law, n, d), ref.surface_dense("chinchilla", dict(law.params), n, d),
                               rtol=1e-13)


def test_out_buffer_is_reused_and_float32():
    law = ss.get_law("kaplan2020")
    n, d = np.geomspace(1e6, 1e10, 8), np.geomspace(1e8, 1e12, 5)
    buf = np.empty((8, 5), dtype=np.float32)
    res = ss.surface(law, n, d, out=buf)
    assert res is buf
    np.testing.assert_allclose(buf, ref.surface_dense("kaplan", dict(law.params), n, d), rtol=1e-6)
    with pytest.raises(ss.ScalesweepError, match="shape"):
        ss.surface(law, n, d, out=np.empty((5, 8)))


@pytest.mark.parametrize("bad", [[1e9, np.nan], [1e9, np.inf], [0.0], [-1e9], []])
def test_surface_rejects_bad_axes(bad):
    with pytest.raises(ss.ScalesweepError, match="params"):
        ss.surface("hoffmann2022", bad, [1e10])


def test_isoflop_slices():
    law = ss.get_law("hoffmann2022")
    df = ss.isoflop(law, [6e18, 3e21], np.geomspace(1e7, 1e10, 5))
    assert len(df) == 10 and list(df.columns) == ["flops", "params", "tokens", "loss"]
    np.testing.assert_allclose(df.tokens, df.flops / (6 * df.params), rtol=1e-15)
    np.testing.assert_allclose(df.loss, ref.loss("chinchilla", dict(law.params), df.params, df.tokens), rtol=1e-14)


@pytest.mark.parametrize("name", ["hoffmann2022", "kaplan2020"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_write_surface_streams_in_chunks(tmp_path, name, dtype):
    law = ss.get_law(name)
    n, d = np.geomspace(1e6, 1e11, 23), np.geomspace(1e8, 1e13, 17)
    path = tmp_path / "s.parquet"
    summary = write_surface(path, law, n, tokens=d, dtype=dtype, chunk_points=50, grid={"x": 1})
    assert summary["rows"] == 23 * 17
    f = pq.ParquetFile(path)
    assert f.metadata.num_row_groups == 12  # 2 params rows (34 points) per chunk of <= 50 points
    t = f.read().to_pandas()
    np.testing.assert_array_equal(t.params, np.repeat(n, 17))
    np.testing.assert_array_equal(t.tokens, np.tile(d, 23))
    np.testing.assert_array_equal(t.flops, 6.0 * t.params * t.tokens)
    expect = ref.surface_dense(law.family, dict(law.params), n, d).ravel()
    np.testing.assert_allclose(t.loss, expect, rtol=1e-14 if dtype == "float64" else 1e-6)
    assert str(t.loss.dtype) == dtype
    meta = read_metadata(path)
    assert meta["law"]["preset"] == name and meta["form"] == "grid" and meta["grid"] == {"x": 1}
    assert meta["scalesweep_version"] == ss.__version__


def test_write_surface_isoflop_form(tmp_path):
    law = ss.get_law("besiroglu2024")
    c, n = np.geomspace(1e18, 1e21, 4), np.geomspace(1e7, 1e10, 9)
    path = tmp_path / "iso.parquet"
    write_surface(path, law, n, flops=c, chunk_points=20)
    t = pq.read_table(path).to_pandas()
    expect = ss.isoflop(law, c, n)
    np.testing.assert_array_equal(t.flops, expect.flops)
    np.testing.assert_array_equal(t.params, expect.params)
    np.testing.assert_allclose(t.tokens, expect.tokens, rtol=1e-15)
    np.testing.assert_allclose(t.loss, expect.loss, rtol=1e-15)
    assert read_metadata(path)["form"] == "isoflop"


def test_surface_identical_for_one_and_two_threads():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    n, d = np.geomspace(1e6, 1e12, 301), np.geomspace(1e8, 1e14, 257)
    out = []
    for threads in (1, 2):
        ss.set_threads(threads)
        out.append([ss.surface(name, n, d).tobytes() for name in ("hoffmann2022", "kaplan2020")])
    ss.set_threads(None)
    assert out[0] == out[1]


@pytest.mark.parametrize("name", ["kaplan2020", "hoffmann2022"])
def test_write_surface_memory_is_bounded_by_the_chunk(tmp_path, name):
    """Peak memory follows the chunk size, not the grid: 2M points (4 columns = 64 MB) in 64K-point chunks."""
    import tracemalloc

    import pyarrow as pa

    n, d = np.geomspace(1e6, 1e12, 1024), np.geomspace(1e8, 1e14, 2048)
    chunk = 1 << 16
    peak_arrow = 0

    def watch(done, total):
        nonlocal peak_arrow
        peak_arrow = max(peak_arrow, pa.total_allocated_bytes())

    write_surface(tmp_path / "warm.parquet", name, n[:2], tokens=d, chunk_points=chunk)  # compile first
    tracemalloc.start()
    write_surface(tmp_path / "s.parquet", name, n, tokens=d, chunk_points=chunk, progress=watch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full = n.size * d.size * 8 * 4
    assert peak < full / 10, (peak, full)  # numpy buffers: ~4 columns x 64K points x 8 B = 2 MB
    assert peak_arrow < full / 10, (peak_arrow, full)
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_rows == n.size * d.size


# ------------------------------------------------------------------- families without a loss of their own

LOSSLESS = [n for n, p in ss.PRESETS.items() if not ss.FAMILIES[p.family].has_loss]  # the allocation rules


def test_lossless_presets_are_the_allocation_rules():
    assert set(LOSSLESS) == {"deepseek2024", "llama3_2024", "porian2024_tuned", "kaplan2020-table6"}


@pytest.mark.parametrize("name", LOSSLESS)
@pytest.mark.parametrize("form", [["--tokens-range", "1e9:1e12:5"], ["--flops-range", "1e19:1e21:3"]])
@pytest.mark.parametrize("partitioned", [False, True])
def test_surface_refuses_a_family_without_a_loss(tmp_path, name, form, partitioned):
    out = tmp_path / ("ds" if partitioned else "s.parquet")
    args = ["surface", "--law", name, "--params-range", "1e7:1e10:5", *form, "-o", out]
    res = run(args + (["--partition-rows", "5"] if partitioned else []), ok=False)
    assert_one_line_error(res, f"surface does not support {name} (family allocation_rule): it has no loss", code=1)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_surface_of_a_lossless_law_to_stdout_prints_nothing(tmp_path):
    res = run(["surface", "--law", "deepseek2024", "--params-range", "1e7:1e10:5", "--tokens-range", "1e9:1e12:5"],
              ok=False)
    assert_one_line_error(res, "no loss surface", code=1)
    assert res.stdout == ""
    with pytest.raises(ss.ScalesweepError, match="no loss surface"):
        write_surface(tmp_path / "s.parquet", "llama3_2024", [1e9, 1e10], tokens=[1e10, 1e11])
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize("name", LOSSLESS)
def test_api_surface_and_isoflop_refuse_a_family_without_a_loss(name):
    with pytest.raises(ss.ScalesweepError, match="no loss surface"):
        ss.api.surface(name, [1e9, 1e10], [1e10, 1e11])
    with pytest.raises(ss.ScalesweepError, match="no loss surface"):
        ss.api.isoflop(name, [1e20], [1e9, 1e10])


def test_compute_laws_have_a_surface_of_6ND():
    """kaplan2020-C is L(C) = (1.6e7 / C_PFdays)^0.057 (Kaplan Table 5), a loss law (the registry lists
    `surface` among its answers): its surface is that law at C = 6ND, written out here by hand."""
    n = np.array([1e7, 1e8, 1e9])
    d = np.array([1e9, 1e11])
    res = run(["surface", "--law", "kaplan2020-C", "--params-range", "1e7:1e9:3", "--tokens-range", "1e9:1e11:2",
               "--format", "csv"])
    import io

    import pandas as pd

    got = pd.read_csv(io.StringIO(res.stdout))
    pf_days = 6.0 * np.repeat(n, 2) * np.tile(d, 3) / (1e15 * 86400)
    np.testing.assert_allclose(got.loss, (1.6e7 / pf_days) ** 0.057, rtol=1e-14)


@pytest.mark.parametrize("shape", [(300, 700), (3, 140_001), (1, 200_000), (513, 257)])
def test_kaplan_grid_is_numpy_broadcasting_bit_for_bit_on_any_thread_count(shape):
    """The float64 Kaplan grid runs numpy's power over blocks in threads: equal, bit for bit, to the numpy
    expression a user writes, for 1 and 2 threads, short rows (many rows per block) and long rows (blocks of
    columns within a row)."""
    from scalesweep import surfaces

    law = ss.get_law("kaplan2020")
    q = law.params
    n, d = np.geomspace(1e6, 1e12, shape[0]), np.geomspace(1e8, 1e14, shape[1])
    want = ((q["N_c"] / n[:, None]) ** (q["alpha_N"] / q["alpha_D"]) + q["D_c"] / d[None, :]) ** q["alpha_D"]
    assert want.size >= 2 * surfaces.BLOCK_POINTS  # the threaded path, not the kernel
    before = ss.set_threads(None)
    try:
        for threads in (1, 2):
            ss.set_threads(min(threads, before))
            got = ss.surface(law, n, d)
            np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))
    finally:
        ss.set_threads(before)
    np.testing.assert_allclose(got[:, ::997], ref.surface_dense("kaplan", law.params, n, d[::997]), rtol=1e-14)


@pytest.mark.parametrize("form", ["grid", "isoflop"])
def test_write_surface_overlapped_equals_one_chunk_at_a_time(tmp_path, monkeypatch, form):
    """write_surface computes the next chunk while one is encoded (three buffer sets in turn): the file equals,
    byte for byte, the one written chunk by chunk from a single buffer set."""
    import hashlib

    from scalesweep import surfaces

    law = ss.get_law("kaplan2020")
    n, other = np.geomspace(1e7, 1e10, 37), np.geomspace(1e18, 1e22, 23)
    kw = {"tokens": other} if form == "grid" else {"flops": other}
    write_surface(tmp_path / "a.parquet", law, n, chunk_points=50, **kw)  # 23 or 37 chunks through the pipeline
    monkeypatch.setattr(surfaces, "overlapped", lambda items, consume, depth=1: [consume(b) for b in items])
    write_surface(tmp_path / "b.parquet", law, n, chunk_points=50, **kw)
    digest = [hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() for f in ("a.parquet", "b.parquet")]
    assert digest[0] == digest[1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_streamed_chinchilla_rows_equal_the_compiled_kernel_bit_for_bit(dtype):
    """The streamed chinchilla grid (axis terms by Python's float power, one numpy add per chunk) gives the
    compiled kernel's values bit for bit, for every chinchilla preset and random axes."""
    from scalesweep.codes import CHINCHILLA
    from scalesweep.kernels.surface import surface_grid
    from scalesweep.surfaces import _ChinchillaRows

    rng = np.random.default_rng(7)
    names = [name for name in PRESETS if ss.get_law(name).family_id == CHINCHILLA]
    assert "hoffmann2022" in names
    for name in names:
        law = ss.get_law(name)
        for _ in range(3):
            n, d = np.sort(10 ** rng.uniform(3, 14, 203)), 10 ** rng.uniform(5, 16, 131)
            expect = np.empty((n.size, d.size), dtype)
            surface_grid(law.family_id, law.vector, n, d, expect)
            got = np.empty_like(expect)
            rows = _ChinchillaRows(law, n, d)
            for start in range(0, n.size, 50):  # chunk by chunk, as the stream fills them
                rows.fill(slice(start, start + 50), got[start:start + 50])
            assert got.tobytes() == expect.tobytes(), name


def test_a_streamed_chunk_with_nan_keeps_its_nulls():
    """A streamed column is the same Arrow array ``tables.arrow_float`` makes: NaN as null, no validity
    bitmap when there is no NaN."""
    from scalesweep.surfaces import _arrow
    from scalesweep.tables import arrow_float

    for a in (np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, 3.0]), np.array([np.nan], np.float32),
              np.arange(5, dtype=np.float32), np.array([np.inf, -np.inf])):
        got, expect = _arrow(a), arrow_float(a)
        assert got.equals(expect) and got.null_count == int(np.isnan(a).sum())
        assert (got.buffers()[0] is None) == (expect.buffers()[0] is None)


def test_a_streamed_grid_surface_of_chinchilla_loads_no_compiled_kernel():
    """A chinchilla grid written in a fresh process never dispatches a compiled kernel (their loading is about
    half a second of a CLI run)."""
    import subprocess
    import sys

    code = ("import numba.core.registry as r, numpy as np, scalesweep as ss, tempfile, os\n"
            "calls = []\n"
            "real = r.CPUDispatcher._compile_for_args\n"
            "r.CPUDispatcher._compile_for_args = lambda self, *a, **k: calls.append(self.py_func.__name__) or "
            "real(self, *a, **k)\n"
            "d = tempfile.mkdtemp()\n"
            "ss.write_surface(os.path.join(d, 's.parquet'), 'hoffmann2022', np.geomspace(1e6, 1e9, 40), "
            "tokens=np.geomspace(1e8, 1e11, 30), chunk_points=100)\n"
            "print(calls)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


@pytest.mark.parametrize("law, dtype", [("hoffmann2022", "float64"), ("hoffmann2022", "float32"),
                                        ("kaplan2020", "float64")])
def test_a_streamed_surface_never_loads_numba(tmp_path, law, dtype):
    """The CLI streams a chinchilla grid and a float64 kaplan grid with numpy: the process never imports numba
    (about half a second of start-up), and still writes the surface the kernel would."""
    import subprocess
    import sys

    out = tmp_path / "s.parquet"
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalesweep.cli import cli\n"
            f"r = CliRunner().invoke(cli, ['surface', '--law', '{law}', '--params-range', '1e8:1e10:400', "
            f"'--tokens-range', '1e9:1e12:400', '--dtype', '{dtype}', '-o', r'{out}'])\n"
            "assert r.exit_code == 0, r.output\nprint('numba' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
    import pyarrow.parquet as pq

    got = pq.read_table(out).column("loss").to_numpy()
    n, d = np.geomspace(1e8, 1e10, 400), np.geomspace(1e9, 1e12, 400)
    want = ss.surface(law, n, d, dtype=np.dtype(dtype)).reshape(-1)
    bits = np.uint32 if dtype == "float32" else np.uint64
    np.testing.assert_array_equal(got.view(bits), want.view(bits))
