"""The README's examples are its promise: every ``$ command`` in a fenced block whose first line starts with
``$ `` is run (in order, in one scratch directory holding a copy of ``data/``) and its output must equal the
lines that follow it in the README, with timings masked, and the count of fit starts that reached the best
(which moves by a few between CPUs: the last bits of ``exp``/``log`` differ with the machine's SIMD paths). ``scalesweep`` commands run in-process with stdout
treated as a terminal (so tables print fixed-width, as a reader sees them) and stderr interleaved; any
other command (``printf``, ``cat``) runs in bash.

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


def run_command(command: str, cwd: Path) -> str:
    """What a user at a terminal sees: stdout and stderr, interleaved."""
    if not command.startswith("scalesweep "):
        res = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True)
        return res.stdout + res.stderr
    from click.testing import CliRunner

    from scalesweep import output
    from scalesweep.cli import cli

    args = shlex.split(command, comments=True)[1:]
    old_cwd, old_tty = os.getcwd(), output.stdout_is_terminal
    os.chdir(cwd)
    output.stdout_is_terminal = lambda: True
    try:
        res = CliRunner().invoke(cli, args, terminal_width=110)
    finally:
        os.chdir(old_cwd)
        output.stdout_is_terminal = old_tty
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.output


def _mask_seconds_column(lines):
    """Blank the values of a fixed-width column named 'seconds' (how long each row took)."""
    out, span = [], None
    for line in lines:
        if span is None and re.search(r"(^|\s)seconds(\s|$)", line):
            end = line.index("seconds") + len("seconds")
            start = len(line[: line.index("seconds")].rstrip())
            span = (start, end)
            out.append(line)
        elif span is not None and len(line) >= span[1]:
            out.append(line[: span[0]] + " <t>".rjust(span[1] - span[0]) + line[span[1]:])
        else:
            out.append(line)
    return out


def normalise(lines):
    return [STARTS.sub(r"<k> of \1 starts within", TIMING.sub("<t> s", line.rstrip()))
            for line in _mask_seconds_column(lines)]


def actual_outputs(scratch: Path):
    shutil.copytree(ROOT / "data", scratch / "data")
    text = README.read_text()
    results = []
    for _, _, cmds in blocks(text):
        for command, expected in cmds:
            got = run_command(command, scratch).rstrip("\n")
            results.append((command, expected, got.splitlines() if got else []))
    return results


@pytest.mark.slow
def test_readme_examples_match_real_runs(tmp_path):
    mismatches = []
    for command, expected, got in actual_outputs(tmp_path):
        if normalise(expected) != normalise(got):
            mismatches.append(f"$ {command}\n--- README\n" + "\n".join(expected) + "\n--- actual\n" + "\n".join(got))
    assert not mismatches, "README examples are stale (python -m tests.test_readme --update):\n\n" + \
        "\n\n".join(mismatches)


def test_readme_has_examples_for_every_command():
    from scalesweep.cli import cli

    text = README.read_text()
    commands = {c for _, _, cmds in blocks(text) for c, _ in cmds}
    for name in cli.commands:
        assert any(c.startswith(f"scalesweep {name}") for c in commands), name


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
