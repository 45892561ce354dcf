"""Helpers shared by the test modules: running the CLI, checking one-line errors, writing frontier files."""

import numpy as np
from click.testing import CliRunner

from scalesweep import questions
from scalesweep.cli import cli
from scalesweep.laws import as_laws
from scalesweep.options import Constraints
from scalesweep.output import write_table


def run(args, ok=True):
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output
    return res


def assert_one_line_error(res, needle, code=None):
    assert res.exit_code != 0
    if code is not None:
        assert res.exit_code == code
    err = res.stderr.strip()
    assert "Traceback" not in res.output and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    assert needle in err, err


def write_frontier_file(path, law, flops, extra_columns=None, **constraints):
    """A frontier file as `scalesweep frontier -o` writes it (plus optional extra columns, e.g. bands)."""
    import pyarrow as pa

    res = questions.frontier(as_laws(law), np.asarray(flops, dtype=np.float64), constraints=Constraints(**constraints))
    table = res.table(res.metadata("frontier", {}, None))
    for name, values in (extra_columns or {}).items():
        table = table.append_column(name, pa.array(np.asarray(values, dtype=np.float64)))
    write_table(path, table, "parquet")
