"""Peak memory of the big commands: does it stay flat as the row count grows (streamed) or grow with it?

Each case runs `python -m scalesweep ...` in a fresh process, writing Parquet into a temporary directory, and
reports that child's peak resident memory (ru_maxrss from os.wait4, the child alone, started from a small
launcher so that no parent's memory is counted) and its wall time; the
output is checked for its row count and deleted before the next case (the big ones are gigabytes).

Cases, for each size N (rows):
  frontier     --flops-range 1e16:1e28:N                                     single file | --partition-rows
  surface      --params-range 1e7:1e11:1000 --tokens-range 1e9:1e13:N/1000   single file | --partition-rows
  scenarios    a sweep spec: 2 laws x 10 max_tokens_per_param x flops range of N/20     single | partitioned
  target-loss  the same sweep with target_loss: "1.9:4:N/20" (the CLI's --loss takes a comma list, which
               cannot hold millions of values, so the scenario form is what answers N targets at once)
  lookup       lookup build --flops-range 1e16:1e26 --points-per-decade (N-1)/10   single | --partition-rows
A `floor` row (a 3-row frontier) gives the start-up footprint the others are compared with.

Run: python benchmarks/bench_memory.py [--sizes 1e6,1e7,5e7] [--commands frontier,surface,...]
     [--modes single,partitioned] [--partition-rows 1000000] [--timeout 1800]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_startup import cpu  # noqa: E402

COMMANDS = ["frontier", "surface", "scenarios", "target-loss", "lookup"]


def sweep_spec(n: int, target: bool) -> str:
    """2 laws x 10 limits x a log range of n/20 budgets (or target losses) = n scenarios."""
    k = max(1, n // 20)
    tpp = "[5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560]"
    field = f'target_loss: "1.9:4:{k}"' if target else f'flops: "1e18:1e26:{k}"'
    return f"law: [hoffmann2022, besiroglu2024]\nmax_tokens_per_param: {tpp}\n{field}\n", 20 * k


def case_args(command: str, n: int, tmp: str, out: str):
    """The scalesweep arguments of one case and the rows it should write."""
    if command == "frontier":
        return ["frontier", "--flops-range", f"1e16:1e28:{n}", "-o", out], n
    if command == "surface":
        k = max(1, n // 1000)
        return ["surface", "--params-range", "1e7:1e11:1000", "--tokens-range", f"1e9:1e13:{k}", "-o", out], 1000 * k
    if command in ("scenarios", "target-loss"):
        text, rows = sweep_spec(n, command == "target-loss")
        spec = os.path.join(tmp, "sweep.yaml")
        with open(spec, "w") as fh:
            fh.write(text)
        return ["scenarios", spec, "-o", out], rows
    if command == "lookup":
        ppd = max(1, (n - 1) // 10)
        args = ["lookup", "build", "--flops-range", "1e16:1e26", "--points-per-decade", str(ppd), "-o", out]
        return args, 10 * ppd + 1
    raise ValueError(command)


# The child is started by this small launcher, not by the benchmark process itself: Linux keeps the peak RSS
# of the memory image a process had before execve (with vfork, posix_spawn or fork: the parent's), so a
# child spawned directly from a parent that has imported pyarrow and read outputs would report the parent's
# peak. The launcher's own image is a few MB.
LAUNCHER = """
import os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.posix_spawn(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as fh:
    fh.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_child(args, timeout):
    """Run `python -m scalesweep ARGS`; return (exit status, peak RSS in MiB, seconds, stderr tail)."""
    import signal

    with tempfile.TemporaryDirectory() as tmp:
        result, errpath = os.path.join(tmp, "result"), os.path.join(tmp, "stderr")
        with open(errpath, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, result, sys.executable, "-m", "scalesweep",
                                     *args], stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            seconds = time.perf_counter() - t0
        with open(errpath, "rb") as fh:
            tail = fh.read().decode(errors="replace").strip().splitlines()
        try:
            with open(result) as fh:
                code, kib = (int(x) for x in fh.read().split())
        except (OSError, ValueError):
            code, kib = proc.returncode or -9, 0
    return code, kib / 1024, seconds, (tail[-1] if tail else "")


def rows_written(path) -> int:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    if os.path.isdir(path):
        return ds.dataset(path, format="parquet").count_rows()
    return pq.ParquetFile(path).metadata.num_rows


def size_mib(path) -> float:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20
    return os.path.getsize(path) / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7,5e7", help="row counts, comma-separated (default 1e6,1e7,5e7)")
    ap.add_argument("--commands", default=",".join(COMMANDS), help=f"subset of {','.join(COMMANDS)}")
    ap.add_argument("--modes", default="single,partitioned", help="single and/or partitioned")
    ap.add_argument("--partition-rows", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per case before it is killed")
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(commands) - set(COMMANDS)) + sorted(set(modes) - {"single", "partitioned"})
    if unknown:
        ap.error(f"unknown command or mode: {', '.join(unknown)}")

    import numba
    import pyarrow

    import scalesweep

    print(f"memory: peak RSS of one `python -m scalesweep` process per case; {cpu()}")
    print(f"  scalesweep {scalesweep.__version__}, numba {numba.__version__}, pyarrow {pyarrow.__version__}, "
          f"python {sys.version.split()[0]}; {numba.config.NUMBA_NUM_THREADS} threads")
    header = f"  {'command':<12} {'mode':<12} {'rows':>12} {'peak RSS MB':>12} {'seconds':>9} {'output MiB':>11}  note"
    print(header)
    print("  " + "-" * (len(header) - 2))
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        cases = [("floor", "single", 3)] + [(c, m, n) for c in commands for m in modes for n in sizes]
        for command, mode, n in cases:
            out = os.path.join(tmp, "out" if mode == "partitioned" and command != "lookup" else "out.parquet")
            if command == "floor":
                cli, rows = ["frontier", "--flops-range", "1e20:1e22:3", "-o", out], 3
            else:
                cli, rows = case_args(command, n, tmp, out)
            if mode == "partitioned":
                cli += ["--partition-rows", str(args.partition_rows)]
            code, peak, seconds, tail = run_child(cli, args.timeout)
            note = ""
            if code != 0:
                note = f"exit {code}: {tail[:100]}"
                got, mib = 0, 0.0
            else:
                try:
                    got, mib = rows_written(out), size_mib(out)
                    if got != rows:
                        note = f"wrote {got:,} rows, expected {rows:,}"
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    got, mib, note = 0, 0.0, f"unreadable output: {exc!r}"[:100]
            prev = results.get((command, mode))
            if prev and code == 0 and prev[1] > 0:
                growth = (peak - results[("floor", "single")][0]) / max(prev[0] - results[("floor", "single")][0], 1)
                if peak > 1.5 * prev[0] and peak - prev[0] > 100:
                    note = (note + "; " if note else "") + f"grows with rows ({peak / prev[0]:.1f}x RSS for " \
                                                           f"{rows / prev[1]:.0f}x rows; {growth:.1f}x above the floor)"
            results[(command, mode)] = (peak, rows if code == 0 else 0)
            print(f"  {command:<12} {mode:<12} {rows:>12,} {peak:>12.0f} {seconds:>9.2f} {mib:>11.0f}  {note}",
                  flush=True)
            shutil.rmtree(out, ignore_errors=True)
            for leftover in (out, out + ".parts"):
                if os.path.isdir(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
                elif os.path.exists(leftover):
                    os.remove(leftover)


if __name__ == "__main__":
    main()
