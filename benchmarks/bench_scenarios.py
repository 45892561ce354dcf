"""Scenario sweeps: 1,000,000 heterogeneous scenarios from a YAML spec to Parquet, end to end.

scalesweep: the `scalesweep scenarios` CLI (a fresh process each run, start-up included).
Baseline: what a user would write otherwise: a loop over the expanded scenarios, converting units by hand
and calling scipy's bounded `minimize_scalar` per row, timed on a sample and scaled to the full sweep.
Both sides solve the same problems (4 laws x 25 GPU counts x 10 durations x 10 MFUs x 10 data limits x
10 tokens-per-param caps = 1M); the sample is checked against scalesweep's rows.

The 1M sweep is also split into its parts: the process floor (`python -c "import numba, pyarrow.parquet"`),
the same sweep run again inside a warm process (no start-up, no kernel loading), and pyarrow alone writing the
identical 1M-row table with the same writer options (the encoding bound: scalesweep encodes in one thread, as
pyarrow does).

Targets: the 1M CLI run <= 1.5 s (process wall); --big: >= 2.5 M scenarios/s with peak RSS <= 1 GiB.
Run: python benchmarks/bench_scenarios.py [--repeat 5] [--sample 2000] [--big 50000000] [--scaling 1e4,...,1e8]
(--big also runs a sweep of that many scenarios once and reports its peak memory; --scaling prints rows/s of
in-process sweeps of each size on 1 and 2 threads, so a reader sees where fixed costs end and the slope begins;
sizes of 1e7 and more are timed once each.)
"""

import argparse
import itertools
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.optimize import minimize_scalar

sys.path.insert(0, os.path.dirname(__file__))
import scalesweep as ss  # noqa: E402
from _timing import row  # noqa: E402

LAWS = ["hoffmann2022", "hoffmann2022-printed", "besiroglu2024", "kaplan2020"]
GPUS = sorted({round(g) for g in np.geomspace(8, 16384, 25)})
DAYS = [1, 2, 3, 5, 7, 10, 14, 21, 30, 60]
MFU = [0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]
UNIQUE = np.geomspace(1e10, 1e14, 10).tolist()
TPP = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560]
PEAK, MEM, BPP = 989.4, 80.0, 16.0  # H100-SXM


def spec_text(gpus=GPUS):
    return (f"law: {LAWS}\ngpu: H100-SXM\ngpus: {gpus}\ndays: {DAYS}\nmfu: {MFU}\nunique_tokens: {UNIQUE}\n"
            f"max_tokens_per_param: {TPP}\nusd_per_gpu_hour: 2.0\n")


def baseline_row(law, gpus, days, mfu, unique, tpp):
    """One scenario the way a user would code it: units by hand, bounds in log N, bounded Brent."""
    p = dict(law.params)
    flops = gpus * days * 24 * PEAK * 1e12 * mfu * 3600
    s = flops / 6.0
    lo = max(0.0, math.log(s / unique), 0.5 * math.log(s / tpp))
    hi = min(math.log(s), math.log(gpus * MEM * 1e9 / BPP))
    if lo > hi:
        return math.nan
    if law.family == "chinchilla":
        def f(x):
            n = math.exp(x)
            return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / (s / n) ** p["beta"]
    else:
        def f(x):
            n = math.exp(x)
            return ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / (s / n)) ** p["alpha_D"]
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    return math.exp(min((lo, hi, res.x), key=f))


def run_cli(spec, out):
    t0 = time.perf_counter()
    subprocess.run(["scalesweep", "scenarios", str(spec), "-o", str(out)], check=True, capture_output=True)
    return time.perf_counter() - t0


ENCODE_RATE = [math.nan]  # rows/s of pyarrow alone writing the 1M-row scenario table (set by ``parts``)


def parts(spec, out, repeat, t_cli):
    """Where the 1M CLI run's time goes: the process floor, the same sweep in a warm process, and pyarrow alone
    writing the identical table (same row groups and writer options)."""
    from bench_startup import wall

    from scalesweep.output import dictionary_columns, parquet_defaults
    from scalesweep.scenarios import CHUNK_ROWS

    floor, _ = wall([sys.executable, "-c", "import numba, pyarrow.parquet"], repeat)
    row("floor: python -c 'import numba, pyarrow.parquet'", floor)
    ss.run_scenarios(spec, out)  # loads the kernels in this process
    t_warm = statistics.median(_timed(lambda: ss.run_scenarios(spec, out), repeat))
    row("the same sweep in a warm process (ss.run_scenarios)", t_warm,
        f"start-up and kernel loading: {t_cli - t_warm:.2f} s of the CLI run")
    table = pq.read_table(out)
    dictionary = dictionary_columns(table.schema)
    ref = out + ".pyarrow.parquet"

    def write():
        pq.write_table(table, ref, row_group_size=CHUNK_ROWS, use_dictionary=dictionary, **parquet_defaults())

    t_pa = statistics.median(_timed(write, repeat))
    ENCODE_RATE[0] = table.num_rows / t_pa
    same = pq.read_table(ref).equals(table)
    row("pyarrow alone: write_table(identical table)", t_pa,
        f"warm sweep {t_warm / t_pa:.2f}x, CLI {t_cli / t_pa:.2f}x pyarrow (same values read back: {same})")
    t_nostats = statistics.median(_timed(lambda: pq.write_table(
        table, ref, row_group_size=CHUNK_ROWS, use_dictionary=dictionary, write_statistics=False,
        **parquet_defaults()), repeat))
    row("  the same without column statistics", t_nostats, f"statistics: {1 - t_nostats / t_pa:.0%} of the encoding")
    os.unlink(ref)
    busy = split(spec, out)
    rows = table.num_rows / 1e6
    print(f"  inside one warm sweep, per million rows: the writer busy {busy['write'] / rows:.2f} s, the solving "
          f"side {busy['solve'] / rows:.2f} s (both on the same cores), wall {busy['wall'] / rows:.2f} s")


def split(spec, out):
    """Seconds the writer thread spends writing and the calling thread spends solving chunks, in one warm
    in-process sweep (``TableWriter.write`` and ``scenarios._solve_chunk`` timed where they run)."""
    from scalesweep import output
    from scalesweep import scenarios as sc

    busy = {"write": 0.0, "solve": 0.0}
    write, solve = output.TableWriter.write, sc._solve_chunk

    def timed(fn, key):
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                busy[key] += time.perf_counter() - t0
        return inner

    output.TableWriter.write, sc._solve_chunk = timed(write, "write"), timed(solve, "solve")
    try:
        t0 = time.perf_counter()
        ss.run_scenarios(spec, out)
        busy["wall"] = time.perf_counter() - t0
    finally:
        output.TableWriter.write, sc._solve_chunk = write, solve
    return busy


def _timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def scaling(sizes, repeat):
    """rows/s of ``ss.run_scenarios`` (in process, to Parquet) for sweeps of each size, on 1 and 2 threads."""
    from bench_startup import cpu

    most = ss.set_threads(None)
    print(f"scenarios scaling curve: 2 laws x 10 tokens-per-param caps x a budget range; {cpu()}; median of "
          f"{repeat} (one run from 1e7)")
    labels = [f"{t} thread" + ("s" if t > 1 else "") for t in range(1, most + 1)]
    print(f"  {'scenarios':>12}  " + "  ".join(f"{label:>18}" for label in labels))
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = os.path.join(tmp, "s.yaml"), os.path.join(tmp, "o.parquet")
        for n in sizes:
            with open(spec, "w") as fh:
                fh.write(f'law: [hoffmann2022, kaplan2020]\nmax_tokens_per_param: {TPP}\n'
                         f'flops: "1e18:1e26:{max(1, n // 20)}"\n')
            cells = []
            runs = repeat if n < 10_000_000 else 1  # a sweep this long is its own warm-up
            for threads in range(1, most + 1):
                ss.set_threads(threads)
                if runs > 1:
                    ss.run_scenarios(spec, out)  # warm
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    ss.run_scenarios(spec, out)
                    times.append(time.perf_counter() - t0)
                rows = pq.ParquetFile(out).metadata.num_rows
                cells.append(f"{rows / statistics.median(times) / 1e6:8.2f} M rows/s")
            print(f"  {rows:>12,}  " + "  ".join(f"{c:>18}" for c in cells))
    ss.set_threads(most)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--big", type=int, default=0, help="also run a sweep of about this many scenarios once")
    ap.add_argument("--scaling", default=None, help="sizes for the scaling curve, e.g. 1e4,1e5,1e6,1e7")
    args = ap.parse_args()
    if args.scaling:
        scaling([int(float(x)) for x in args.scaling.split(",")], args.repeat)
        return
    from bench_startup import cpu

    print(f"CPU: {cpu()}; {ss.set_threads(None)} numba threads")
    combos = list(itertools.product(LAWS, GPUS, DAYS, MFU, UNIQUE, TPP))
    n = len(combos)
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "sweep.yaml")
        out = os.path.join(tmp, "out.parquet")
        with open(spec, "w") as fh:
            fh.write(spec_text())
        run_cli(spec, out)  # warm the numba cache
        times = [run_cli(spec, out) for _ in range(args.repeat)]
        t_ss = statistics.median(times)
        df = pd.read_parquet(out, columns=["scenario_id", "params", "feasible", "active_constraint"])
        assert len(df) == n
        print(f"scenarios: {n:,} heterogeneous scenarios ({len(LAWS)} laws x {len(GPUS)} GPU counts x {len(DAYS)} "
              f"durations x {len(MFU)} MFUs x {len(UNIQUE)} data limits x {len(TPP)} tpp caps), "
              f"median of {args.repeat} CLI runs")
        row("scalesweep scenarios spec.yaml -o out.parquet (process)", t_ss,
            f"{n / t_ss / 1e6:5.2f} M scenarios/s  (target <= 1.5 s: {'met' if t_ss <= 1.5 else 'NOT met'}; runs: "
            + ", ".join(f"{t:.2f}" for t in times) + ")")
        parts(spec, out, args.repeat, t_ss)
        print(f"  feasible {int(df.feasible.sum()):,}; active constraints: "
              + ", ".join(f"{k} {v:,}" for k, v in df.active_constraint.value_counts().items() if v))
        rng = np.random.default_rng(0)
        pick = rng.choice(n, size=min(args.sample, n), replace=False)
        laws = {name: ss.get_law(name) for name in LAWS}
        t0 = time.perf_counter()
        got = np.array([baseline_row(laws[combos[i][0]], *combos[i][1:]) for i in pick])
        t_base = (time.perf_counter() - t0) / pick.size * n
        row(f"baseline: scipy minimize_scalar loop (scaled from {pick.size:,})", t_base,
            f"{n / t_base / 1e3:5.1f} k scenarios/s")
        print(f"  ratio: scalesweep is {t_base / t_ss:,.0f}x faster, start-up included")
        ours = df.params.to_numpy()[pick]
        both = np.isfinite(got) & np.isfinite(ours)
        assert (np.isfinite(got) == np.isfinite(ours)).all(), "feasibility differs from the baseline"
        print(f"  sample agreement: max |params/baseline - 1| = {np.max(np.abs(ours[both] / got[both] - 1)):.1e}")
        if args.big:
            reps = math.ceil(args.big / n)
            big_gpus = sorted({round(g) for g in np.geomspace(8, 16384 * 64, 40 * reps)})[:25 * reps]
            with open(spec, "w") as fh:
                fh.write(spec_text(big_gpus))
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            t = run_cli(spec, out)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            rows = pq.ParquetFile(out).metadata.num_rows
            rss = max(peak, before) / 1024
            rate = rows / t / 1e6
            print(f"  big sweep: {rows:,} scenarios in {t:.1f} s ({rate:.2f} M/s; target >= 2.5 M/s: "
                  f"{'met' if rate >= 2.5 else 'NOT met'}), peak RSS {rss:.0f} MiB (target <= 1024 MiB: "
                  f"{'met' if rss <= 1024 else 'NOT met'}; output {os.path.getsize(out) / 2**20:.0f} MiB)")
            print(f"    encoding bound at the 1M table's pyarrow rate: {rows / ENCODE_RATE[0] :.1f} s "
                  f"({ENCODE_RATE[0] / 1e6:.2f} M rows/s); scalesweep takes {t / (rows / ENCODE_RATE[0]):.2f}x that")


if __name__ == "__main__":
    main()
