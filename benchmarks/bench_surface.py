"""Surface throughput on a 4096 x 4096 grid (16.8M points), against numpy in the same run.

* chinchilla (memory-bound): kernel into a reused buffer vs numpy filling an array of the same size;
* kaplan (one power per point): kernel vs the numpy broadcasting expression a user would write;
* CLI to Parquet vs pyarrow alone writing the identical table with the same writer options (target <= 1.3x),
  with the parts of the CLI run beside it: the process floor (`python -c "import scalesweep.cli,
  pyarrow.parquet"`: a streamed chinchilla surface loads no numba) and ``write_surface`` in a warm process. pyarrow encodes a file in one thread, so the encoding is the same work
  on both sides; what the CLI adds is start-up, the final fsync's tail and the chunk computed before the first
  one is encoded.
Run: python benchmarks/bench_surface.py [--size 4096]
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
import scalesweep as ss  # noqa: E402
from _timing import median_time, row  # noqa: E402
from bench_startup import cpu, wall  # noqa: E402
from scalesweep.output import parquet_defaults  # noqa: E402
from scalesweep.surfaces import CHUNK_POINTS, DICTIONARY_COLUMNS  # noqa: E402


NO_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"  # numpy 2.x dispatch targets that carry its AVX-512 loops


def kaplan(n, d, buf, repeat):
    """The Kaplan surface (one power per point) against the numpy broadcasting expression a user would write."""
    from numpy._core._multiarray_umath import __cpu_features__

    kl = ss.get_law("kaplan2020")
    q = dict(kl.params)

    def numpy_kaplan():
        return ((q["N_c"] / n[:, None]) ** (q["alpha_N"] / q["alpha_D"]) + q["D_c"] / d[None, :]) ** q["alpha_D"]

    simd = "AVX-512" if __cpu_features__.get("AVX512F") and "X86_V4" not in os.environ.get(
        "NPY_DISABLE_CPU_FEATURES", "") else "no AVX-512"
    t_np, _ = median_time(numpy_kaplan, repeat=3)
    row(f"numpy broadcasting, kaplan (numpy {simd})", t_np)
    t_k, _ = median_time(lambda: ss.surface(kl, n, d, out=buf), repeat=repeat)
    row(f"scalesweep.surface(kaplan2020, out=buf) ({simd})", t_k, f"{t_np / t_k:5.2f}x numpy (target >= 1.8)")
    assert np.array_equal(buf, numpy_kaplan())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--kaplan-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    m = args.size
    n = np.geomspace(1e6, 1e12, m)
    d = np.geomspace(1e8, 1e14, m)
    buf = np.empty((m, m))
    buf.fill(0.0)  # fault the pages in once: both sides then write into warm memory
    if not args.kaplan_only:
        print(f"CPU: {cpu()}")
    print(f"surface: {m} x {m} = {m * m / 1e6:.1f}M points, float64, {numba.get_num_threads()} threads, "
          f"median of {args.repeat}")

    t_fill, _ = median_time(lambda: buf.fill(1.0), repeat=args.repeat)
    row("numpy: buf.fill(1.0) (same size, preallocated)", t_fill)
    law = ss.get_law("hoffmann2022")
    t_ch, _ = median_time(lambda: ss.surface(law, n, d, out=buf), repeat=args.repeat)
    row("scalesweep.surface(hoffmann2022, out=buf)", t_ch, f"{t_ch / t_fill:5.2f}x fill time (target <= 1.2)")
    p = dict(law.params)
    t_np_ch, _ = median_time(lambda: p["E"] + p["A"] / n[:, None] ** p["alpha"] + p["B"] / d[None, :] ** p["beta"],
                             repeat=3)
    row("numpy broadcasting, chinchilla", t_np_ch, f"scalesweep {t_np_ch / t_ch:5.1f}x faster")

    kaplan(n, d, buf, args.repeat)
    if not args.kaplan_only:
        # numpy without AVX-512 (its power falls back to the scalar loop): what a user's CPU without it sees
        env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": NO_AVX512}
        out = subprocess.run([sys.executable, __file__, "--size", str(m), "--repeat", str(args.repeat), "--kaplan-only"],
                             env=env, capture_output=True, text=True, check=True).stdout
        print(f"  -- the same, numpy with NPY_DISABLE_CPU_FEATURES={NO_AVX512!r} --")
        print("".join(line + "\n" for line in out.splitlines() if "kaplan" in line), end="")
    else:
        return

    with tempfile.TemporaryDirectory() as tmp:
        ref_path = os.path.join(tmp, "pyarrow.parquet")
        grid = ss.surface(law, n, d)
        table = pa.table({"params": np.repeat(n, m), "tokens": np.tile(d, m),
                          "flops": 6.0 * np.repeat(n, m) * np.tile(d, m), "loss": grid.ravel()})
        del grid

        def pyarrow_write():
            pq.write_table(table, ref_path, row_group_size=CHUNK_POINTS,
                           use_dictionary=DICTIONARY_COLUMNS, **parquet_defaults())

        t_pa, _ = median_time(pyarrow_write, repeat=3)
        row("pyarrow alone: write_table(identical table)", t_pa)
        out = os.path.join(tmp, "cli.parquet")
        cmd = ["scalesweep", "surface", "--law", "hoffmann2022", "--params-range", f"1e6:1e12:{m}",
               "--tokens-range", f"1e8:1e14:{m}", "-o", out]
        subprocess.run(cmd, check=True, capture_output=True)  # warm the cache

        def cli():
            subprocess.run(cmd, check=True, capture_output=True)

        t_cli, t_clis = median_time(cli, repeat=5, warmup=0)
        verdict = "met" if t_cli / t_pa <= 1.3 else "NOT met"
        row("scalesweep surface CLI -> Parquet (process wall)", t_cli,
            f"{t_cli / t_pa:5.2f}x pyarrow (target <= 1.3: {verdict}; runs "
            + ", ".join(f"{t:.2f}" for t in t_clis) + ")")
        t_api, _ = median_time(lambda: ss.write_surface(out, law, n, tokens=d), repeat=3)
        row("scalesweep.write_surface (in process)", t_api, f"{t_api / t_pa:5.2f}x pyarrow")
        floor, _ = wall([sys.executable, "-c", "import scalesweep.cli, pyarrow.parquet"], 5)
        row("floor: python -c 'import scalesweep.cli, pyarrow.parquet'", floor,
            f"(floor + pyarrow) / pyarrow = {(floor + t_pa) / t_pa:4.2f}x")
        same = pq.read_table(out).equals(table)
        print(f"  CLI output equals the pyarrow table: {same}; file {os.path.getsize(out) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
