"""Reading user inputs: CSV or Parquet tables (by suffix), with one-line errors naming the file and row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ScalesweepError


def read_table_file(path, what: str):
    """A whole CSV or Parquet file (by suffix) as a DataFrame; one-line errors naming ``what``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ScalesweepError(f"{what} {str(path)!r} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pandas()
        return pd.read_csv(path)
    except Exception as exc:  # malformed file: pyarrow/pandas raise many types
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScalesweepError(f"cannot read {what} {str(path)!r}: {msg}") from None


def read_flops_file(path, column: str | None = None) -> np.ndarray:
    """Budgets from a CSV or Parquet file: the named column, the 'flops' column, or the only column."""
    import pandas as pd

    path = Path(path)
    df = read_table_file(path, "flops file")
    if column is None:
        if "flops" in df.columns:
            column = "flops"
        elif len(df.columns) == 1:
            column = df.columns[0]
        else:
            raise ScalesweepError(
                f"flops file {str(path)!r} has no 'flops' column; name one with --flops-column "
                f"(columns: {', '.join(map(repr, map(str, df.columns)))})")
    if column not in df.columns:
        raise ScalesweepError(f"flops file {str(path)!r} has no column {column!r}")
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raw = df[column].iloc[i]
        shown = repr(raw) if isinstance(raw, str) else str(float(raw))
        raise ScalesweepError(f"flops file {str(path)!r}, row {i + 1}: {shown} is not a finite budget > 0")
    if values.size == 0:
        raise ScalesweepError(f"flops file {str(path)!r} has no rows")
    return values
