"""The README's examples are its promise: every ``$ command`` in a fenced block whose first line starts with
``$ `` is run (in order, in one scratch directory holding a copy of ``data/``) and its output must equal the
lines that follow it in the README, with timings masked, and the count of fit starts that reached the best
(which moves by a few between CPUs: the last bits of ``exp``/``log`` differ with the machine's SIMD paths)
and the port of a Dask dashboard link masked. Lines that depend on the state of the machine rather than on
the command are dropped from both sides, and never written into the README: the compile notice (printed
once per process when numba's on-disk cache is cold) and progress lines (printed only when work runs past
2 s). ``scalesweep`` commands run in-process with stdout treated as a terminal (so tables print
fixed-width, as a reader sees them) and stderr interleaved; any other command (``printf``, ``cat``,
``python -c``) runs in bash, with this interpreter's ``python`` first on the PATH. ``SCALESWEEP_*``
environment defaults are cleared for every command, so the examples show the built-in defaults.

Regenerate the README's outputs from real runs with ``python -m tests.test_readme --update``.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = "```"
TIMING = re.compile(r"\b\d+(\.\d+)? s\b")  # "in 0.80 s", "2.31 s"
STARTS = re.compile(r"\b\d+ of (\d+) starts within")  # "873 of 4500 starts within 1e-6 of the best"
PORT = re.compile(r"(https?://[\w.-]+):\d+")  # "Dask dashboard: http://127.0.0.1:45177/status"
# A relative error of a few ulps ("7.10543e-15"): its last digits depend on the CPU's vector instructions.
ROUNDOFF = re.compile(r"(?<![\w.])\d(\.\d+)?e-(1[3-9]|[2-9]\d)\b")
SIGNED_ZERO = re.compile(r"[+-](0\.0+%)")  # "+0.000%" or "-0.000%": a bias that rounds to zero, either sign
COMPILE_NOTICE = "compiling kernels once; later runs start in about a second"
# "scenarios: 1,572,864/6,000,000 rows (26%), 736k rows/s, 2.1 s elapsed, about 6.0 s left" (progress.describe)
PROGRESS = re.compile(r"^([^:]+: )?[\d,]+(/[\d,]+)? [\w ]+?( \(\d+%\))?(, [\d.]+[kMG]? [\w ]+/s)?, "
                      r"[\dhms. ]+ elapsed(, about [\dhms. ]+ left)?$")


def blocks(text: str):
    """(first line index, last line index, [(command, expected output lines)]) of each example block."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith(FENCE) and i + 1 < len(lines) and lines[i + 1].startswith("$ "):
            j = i + 1
            while not lines[j].startswith(FENCE):
                j += 1
            cmds = []
            for line in lines[i + 1:j]:
                if line.startswith("$ "):
                    cmds.append((line[2:], []))
                else:
                    cmds[-1][1].append(line)
            out.append((i + 1, j, cmds))
            i = j
        i += 1
    return out


def machine_dependent(line: str) -> bool:
    """A line whose presence depends on the machine's state (a cold cache, a slow CPU), not on the command."""
    line = line.rstrip()
    return line == COMPILE_NOTICE or PROGRESS.match(line) is not None


def run_command(command: str, cwd: Path) -> str:
    """What a user at a terminal sees: stdout and stderr, interleaved."""
    defaults = [var for var in os.environ if var.startswith("SCALESWEEP_")]
    if not command.startswith("scalesweep "):
        env = {k: v for k, v in os.environ.items() if k not in defaults}
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        res = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=env)
        return res.stdout + res.stderr
    from click.testing import CliRunner

    from scalesweep import output
    from scalesweep.cli import cli

    args = shlex.split(command, comments=True)[1:]
    old_cwd, old_tty = os.getcwd(), output.stdout_is_terminal
    os.chdir(cwd)
    output.stdout_is_terminal = lambda: True
    try:
        res = CliRunner().invoke(cli, args, terminal_width=110, env={var: None for var in defaults})
    finally:
        os.chdir(old_cwd)
        output.stdout_is_terminal = old_tty
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.output


def _mask_seconds_column(lines):
    """Blank the values of a fixed-width column named 'seconds' (how long each row took), and its width: the
    column is as wide as its widest value, so the header's padding moves with the timings too."""
    out, span = [], None
    for line in lines:
        if span is None and re.search(r"(^|\s)seconds(\s|$)", line):
            end = line.index("seconds") + len("seconds")
            start = len(line[: line.index("seconds")].rstrip())
            span = (start, end)
            out.append(line[:start] + "  seconds" + line[end:])
        elif span is not None and len(line) >= span[1]:
            out.append(line[: span[0]] + "  <t>" + line[span[1]:])
        else:
            out.append(line)
    return out


def normalise(lines):
    lines = [line for line in lines if not machine_dependent(line)]
    return [SIGNED_ZERO.sub(r"±\1", ROUNDOFF.sub("<eps>", PORT.sub(r"\1:<port>", STARTS.sub(r"<k> of \1 starts within",
                                                                     TIMING.sub("<t> s", line.rstrip())))))
            for line in _mask_seconds_column(lines)]


def actual_outputs(scratch: Path):
    shutil.copytree(ROOT / "data", scratch / "data")
    text = README.read_text()
    results = []
    for _, _, cmds in blocks(text):
        for command, expected in cmds:
            got = run_command(command, scratch).rstrip("\n").splitlines()
            results.append((command, expected, [line for line in got if not machine_dependent(line)]))
    return results


@pytest.mark.slow
def test_readme_examples_match_real_runs(tmp_path):
    mismatches = []
    for command, expected, got in actual_outputs(tmp_path):
        if normalise(expected) != normalise(got):
            mismatches.append(f"$ {command}\n--- README\n" + "\n".join(expected) + "\n--- actual\n" + "\n".join(got))
    assert not mismatches, "README examples are stale (python -m tests.test_readme --update):\n\n" + \
        "\n\n".join(mismatches)


def subcommand(command: str, cli) -> str | None:
    """The command name a ``scalesweep ...`` line runs, after the group's own options (``-q``,
    ``--max-rows N``)."""
    args = shlex.split(command, comments=True)
    if args[:1] != ["scalesweep"]:
        return None
    takes_value = {opt for p in cli.params if not getattr(p, "is_flag", False) for opt in p.opts}
    i = 1
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in takes_value else 1
    return args[i] if i < len(args) else None


def test_readme_has_examples_for_every_command():
    from scalesweep.cli import cli

    text = README.read_text()
    names = {subcommand(c, cli) for _, _, cmds in blocks(text) for c, _ in cmds}
    missing = [name for name in cli.commands if name not in names]
    assert not missing, f"commands without an example in the README: {missing}"


def test_normalise_masks_what_the_machine_decides():
    lines = [COMPILE_NOTICE,
             "scenarios: 1,572,864/6,000,000 rows (26%), 736k rows/s, 2.1 s elapsed, about 6.0 s left",
             "scenarios: 6,000,000/6,000,000 rows (100%), 1.35M rows/s, 4.5 s elapsed",
             "bootstrap: 524,288 resamples, 3.4M resamples/s, 4m05s elapsed",
             "wrote 6,000,000 scenarios to big.parquet in 4.63 s (6,000,000 feasible)",
             "Dask dashboard: http://127.0.0.1:45177/status"]
    assert normalise(lines) == ["wrote 6,000,000 scenarios to big.parquet in <t> s (6,000,000 feasible)",
                                "Dask dashboard: http://127.0.0.1:<port>/status"]
    # a 'seconds' column is as wide as its widest timing: the header's padding differs between runs
    slow = ["method  K      seconds", "  grid  2  0.000176091", "lookup  2   0.00111881"]
    fast = ["method  K    seconds", "  grid  2  0.0079985", "lookup  2  0.0080041"]
    assert normalise(slow) == normalise(fast) == ["method  K  seconds", "  grid  2  <t>", "lookup  2  <t>"]
    # errors of a few ulps differ between CPUs; larger ones are kept
    assert normalise(["lookup  7.10543e-15  1.2e-05"]) == normalise(["lookup  7.21645e-15  1.2e-05"]) \
        == ["lookup  <eps>  1.2e-05"]
    assert normalise(["0.0001"]) == ["0.0001"] and normalise(["2.5e-12"]) == ["2.5e-12"]
    assert normalise(["bias  +0.000%"]) == normalise(["bias  -0.000%"]) and normalise(["-0.001%"]) == ["-0.001%"]


def update():
    """Rewrite every example's output in the README with a real run's."""
    import tempfile

    text = README.read_text()
    lines = text.splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        results = iter(actual_outputs(Path(tmp)))
        new, pos = [], 0
        for first, last, cmds in blocks(text):
            new.extend(lines[pos:first])
            for _ in cmds:
                command, _, got = next(results)
                new.append("$ " + command)
                new.extend(got)
            pos = last
        new.extend(lines[pos:])
    README.write_text("\n".join(new) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update()
    else:
        sys.exit("usage: python -m tests.test_readme --update")
