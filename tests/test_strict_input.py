"""Strict input parsing: ragged CSV rows, keys given twice, lists or mappings where a value belongs and empty law
names are one-line errors naming the file and the line, key or field, with no output written; partitioned
scenario tables read each part's rows from where they start, with the same results as a single file."""

import io
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalesweep import readers
from scalesweep import scenarios as sc
from scalesweep.errors import ScalesweepError

from .helpers import assert_one_line_error, run


def write(tmp_path, name, text):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def refused(tmp_path, args, needle, out_name="o.parquet"):
    out = tmp_path / out_name
    res = run([*args, "-o", out], ok=False)
    assert_one_line_error(res, needle, 1)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


# ------------------------------------------------------------------------------------------ ragged rows


@pytest.mark.parametrize("text, needle", [
    # a field too many on the first row: pandas would take the first field for an index and shift the rest
    ("flops,max_params\n1e22,1,2,3\n", "line 2: 4 fields, the header has 2"),
    ("flops,max_params\n1e22,1e10\n1e23,1e10,5\n", "line 3: 3 fields, the header has 2"),
    # a field too few: pandas would read an empty cell
    ("flops,max_params\n1e22,1e10\n1e23\n", "line 3: 1 field, the header has 2"),
    ("flops,max_params\n1e22,1e10\n1e23", "line 3: 1 field, the header has 2"),  # no final line break
    # line numbers count blank lines and line breaks inside quoted fields
    ('flops,mfu\n\n"1e21\n",0.4\n1e22\n', "line 5: 1 field, the header has 2"),
    ("flops,mfu\r\n1e21,0.4\r\n  \r\n1e22,0.5,9\r\n", "line 4: 3 fields, the header has 2"),
    ('flops,law\n1e21,"hoffmann2022\n', "line 2: a quoted field is not closed"),
    ("flops,law\r1e21,hoffmann2022\r", "line 1 ends in \\r alone"),
    ("flops,mfu,flops\n1e21,0.4,1e22\n", "column 'flops' appears twice in the header"),
])
def test_ragged_scenario_tables_are_refused(tmp_path, text, needle):
    spec = write(tmp_path, "s.csv", text)
    refused(tmp_path, ["scenarios", spec], needle)


def test_a_ragged_row_past_the_first_chunk_writes_nothing(tmp_path):
    rows = "".join(f"{1e18 * (i + 1):g},0.4\n" for i in range(2500))
    spec = write(tmp_path, "s.csv", f"flops,mfu\n{rows}1e22\n{rows}")
    refused(tmp_path, ["scenarios", spec], f"s.csv', line {2502}: 1 field, the header has 2")
    out = tmp_path / "o.parquet"
    with pytest.raises(ScalesweepError, match="line 2502: 1 field"):
        sc.run(spec, out, chunk_rows=100)  # the first 25 chunks are fine; the file is checked before any
    assert not out.exists()


def test_a_ragged_row_in_a_partitioned_run_is_refused_before_any_part(tmp_path):
    rows = "".join(f"{1e18 * (i + 1):g},0.4\n" for i in range(300))
    spec = write(tmp_path, "s.csv", f"flops,mfu\n{rows}1e22,0.4,7\n")
    res = run(["scenarios", spec, "--partition-rows", "100", "-o", tmp_path / "ds"], ok=False)
    assert_one_line_error(res, "line 302: 3 fields, the header has 2", 1)
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").glob("part-*"))


@pytest.mark.parametrize("text, needle", [
    ("flops\n1e20\n1e21,5\n", "flops file '{f}', line 3: 2 fields, the header has 1"),
    ("flops,x\n1e20\n", "line 2: 1 field, the header has 2"),
    ("flops,x\n1e20,1,2\n", "line 2: 3 fields, the header has 2"),
    ("flops,flops\n1e20,1e21\n", "column 'flops' appears twice"),
])
def test_ragged_flops_files_are_refused(tmp_path, text, needle):
    f = write(tmp_path, "b.csv", text)
    refused(tmp_path, ["frontier", "--flops-file", f], needle.format(f=f))


def test_ragged_runs_files_are_refused(tmp_path):
    good = "1e8,1e9,3.0\n" * 9
    f = write(tmp_path, "r.csv", f"params,tokens,loss\n{good}2e8,1e9\n")
    refused(tmp_path, ["fit", f], "runs file", out_name="law.json")
    refused(tmp_path, ["fit", f], "line 11: 2 fields, the header has 3", out_name="law.json")
    f = write(tmp_path, "r.csv", f"params,tokens,loss\n1e8,1e9,3.0,4\n{good}")
    refused(tmp_path, ["fit", f], "line 2: 4 fields, the header has 3", out_name="law.json")


def test_well_formed_csv_variants_are_read(tmp_path):
    """Quoted fields (with commas, quotes and line breaks), CRLF, blank and whitespace lines, a BOM."""
    text = ('\ufeff"law","flops",max_params\r\n\r\n"hoffmann2022", "1e21",4e9\r\n   \r\n'
            'kaplan2020,"1e22\n",""\r\n"hoffmann2022",1e23,"5e9"')
    spec = write(tmp_path, "s.csv", text.encode())
    out = tmp_path / "o.parquet"
    run(["scenarios", spec, "-o", out])
    df = pd.read_parquet(out)
    assert df.law.astype(str).tolist() == ["hoffmann2022", "kaplan2020", "hoffmann2022"]
    assert df.flops.tolist() == [1e21, 1e22, 1e23]
    assert df.max_params.tolist()[0] == 4e9 and np.isnan(df.max_params[1]) and df.max_params.tolist()[2] == 5e9


# The scan follows pandas: a seeded sample of awkward files (quotes in and out of fields, delimiters and
# line breaks inside quotes, CRLF, blank and whitespace lines) must give pandas' records, field for field.
ALPHABET = [b"a", b"1", b",", b'"', b"\n", b" ", b"\t", b"\r\n", b'""', b"x y"]
WEIGHTS = [6, 6, 4, 3, 3, 2, 1, 1, 1, 1]


def _pandas_records(data, skip):
    kw = dict(header=None, dtype=str, keep_default_na=False, index_col=False, skipinitialspace=skip)
    try:
        df = pd.read_csv(io.BytesIO(data), names=range(40), **kw)
    except pd.errors.ParserError:
        return None
    except pd.errors.EmptyDataError:
        return []
    return [list(r) for r in df.itertuples(index=False)]


def test_the_scan_agrees_with_pandas():
    rng = random.Random(7)
    for _ in range(300):
        data = b"".join(rng.choices(ALPHABET, WEIGHTS, k=rng.randint(0, 30)))
        skip = rng.random() < 0.5
        want = _pandas_records(data, skip)
        for block in (1, rng.randint(2, 9), 1 << 20):
            scan = readers._Scan(io.BytesIO(data), len(data), 0, skip)
            got = [(s, c) for starts, counts in scan.blocks(block) for s, c in zip(starts, counts, strict=True)
                   if c >= 0]
            assert scan.inside == (want is None), data
            if want is None:
                break
            assert len(got) == len(want), (data, block)
        if want is None:
            continue
        for (start, delims), record in zip(got, want, strict=True):
            alone = pd.read_csv(io.BytesIO(data[start:]), header=None, dtype=str, keep_default_na=False,
                                skipinitialspace=skip, nrows=1)  # the record read from its offset
            fields = list(alone.iloc[0])
            assert len(fields) == delims + 1, (data, start)
            assert fields == record[:delims + 1] and not any(record[delims + 1:]), (data, start)


# ------------------------------------------------------------------------------------------- keys twice


@pytest.mark.parametrize("name, text, needle", [
    ("s.yaml", "flops: 1e22\nmfu: 0.3\nflops: 1e21\n", "s.yaml: key 'flops' appears twice (lines 1 and 3)"),
    ("s.yaml", "{flops: 1e22, 'flops': 1e21}\n", "key 'flops' appears twice (line 1)"),
    ("s.yaml", '{"flops": 1e22, "mfu": 0.4, "mfu": 0.5}\n', "key 'mfu' appears twice"),  # JSON is YAML
    ("s.yml", "flops: 1e22\nlaw.alpha: [0.3]\nlaw.alpha: 0.4\n", "key 'law.alpha' appears twice"),
    ("s.toml", "flops = 1e22\nflops = 1e21\n", "s.toml: key 'flops' appears twice (lines 1 and 2)"),
    ("s.toml", 'flops = 1e22\n"flops" = 1e21\n', "key 'flops' appears twice"),
])
def test_keys_given_twice_in_specs_are_refused(tmp_path, name, text, needle):
    spec = write(tmp_path, name, text)
    refused(tmp_path, ["scenarios", spec], needle)


@pytest.mark.parametrize("name, text, needle", [
    ("l.json", '{"preset": "hoffmann2022", "parameters": {"alpha": 0.3, "alpha": 0.4}}', "key 'alpha' appears twice"),
    ("l.json", '{"family": "chinchilla", "family": "kaplan", "parameters": {}}', "key 'family' appears twice"),
    ("l.toml", 'preset = "hoffmann2022"\n[parameters]\nalpha = 0.3\nalpha = 0.4\n',
     "key 'alpha' appears twice (lines 3 and 4)"),
])
def test_keys_given_twice_in_law_files_are_refused(tmp_path, name, text, needle):
    f = write(tmp_path, name, text)
    refused(tmp_path, ["frontier", "--law-file", f, "--flops-range", "1e20:1e22:3"], f"law file '{f}': {needle}")


def test_yaml_merge_keys_may_be_overridden():
    assert readers.yaml_load("a: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n", "s.yaml") == \
        {"a": {"x": 1, "y": 2}, "c": {"x": 3, "y": 2}}


# -------------------------------------------------------------------------------- non-scalars, empty names


@pytest.mark.parametrize("text, needle", [
    ("flops: [[1e20]]\n", "field 'flops', item 1: expected a number, got a list"),
    ("flops: [1e20, {a: 1}]\n", "field 'flops', item 2: expected a number, got a mapping"),
    ("flops: 1e20\nmfu: {a: 1}\n", "field 'mfu', item 1: expected a number, got a mapping"),
    ("flops: 1e20\nlaw: [[hoffmann2022]]\n", "field 'law', item 1: expected a name, got a list"),
    ("flops: 1e20\ngpu: {name: A100}\n", "field 'gpu', item 1: expected a name, got a mapping"),
    ("flops: 1e20\nlaw.alpha: [[0.3]]\n", "field 'law.alpha', item 1: expected a number, got a list"),
    ("flops: 1e20\nlaw: ''\n", "field 'law', item 1: the name is empty"),
    ('flops: 1e20\nlaw: ["hoffmann2022", ""]\n', "field 'law', item 2: the name is empty"),
    ('flops: 1e20\nlaw: "  "\n', "field 'law', item 1: the name is empty"),
    ("flops: 1e20\nlaw: llama3_2024\nloss_law: ''\n", "field 'loss_law', item 1: the name is empty"),
])
def test_values_that_are_not_scalars_or_empty_names_are_refused(tmp_path, text, needle):
    spec = write(tmp_path, "s.yaml", text)
    refused(tmp_path, ["scenarios", spec], f"s.yaml: {needle}")


def test_toml_tables_where_values_belong_are_refused(tmp_path):
    spec = write(tmp_path, "s.toml", "flops = 1e20\n[mfu]\nvalue = 0.4\n")
    refused(tmp_path, ["scenarios", spec], "field 'mfu', item 1: expected a number, got a mapping")
    spec = write(tmp_path, "s.toml", 'flops = 1e20\nlaw = ""\n')
    refused(tmp_path, ["scenarios", spec], "field 'law', item 1: the name is empty")


@pytest.mark.parametrize("text, needle", [
    ('{"preset": "hoffmann2022", "parameters": {"alpha": [0.3]}}', "parameter 'alpha' must be a number, got a list"),
    ('{"preset": "hoffmann2022", "parameters": {"E": {"v": 1}}}', "parameter 'E' must be a number, got a table"),
    ('{"family": "chinchilla", "parameters": {"E": 1, "A": 400, "B": 400, "alpha": 0.3, "beta": [0.3]}}',
     "parameter 'beta' must be a number, got a list"),
    ('{"preset": ["hoffmann2022"]}', "'preset' must be a string, got a list"),
    ('{"preset": 3}', "'preset' must be a string, got 3"),
    ('{"family": {"name": "chinchilla"}, "parameters": {}}', "'family' must be a string, got a table"),
    ('{"preset": "hoffmann2022", "citation": {"a": 1}}', "'citation' must be a string, got a table"),
])
def test_law_files_with_nested_values_are_refused(tmp_path, text, needle):
    f = write(tmp_path, "l.json", text)
    refused(tmp_path, ["frontier", "--law-file", f, "--flops-range", "1e20:1e22:3"], f"law file '{f}': {needle}")


# ----------------------------------------------------------------------------------- partitioned tables


def _table_text(n):
    """A CSV table of n rows with quoted fields (one holding a line break), empty cells, blank lines and CRLF;
    returns the text and the byte offset where each row starts."""
    rng = np.random.default_rng(3)
    laws = ["hoffmann2022", '"kaplan2020"', "besiroglu2024", ""]
    pieces, offsets = ["law,flops,unique_tokens,max_params\r\n"], []
    for i in range(n):
        if i % 997 == 5:
            pieces.append("\r\n   \n")  # blank lines are no rows
        offsets.append(sum(len(p) for p in pieces))
        flops = f"{10 ** rng.uniform(19, 25):.17g}"
        if i % 1000 == 7:
            flops = f'"{flops}\n"'  # a quoted line break
        data = "" if i % 13 == 0 else f"{10 ** rng.uniform(10, 13):.17g}"
        cap = "" if i % 3 else f"{10 ** rng.uniform(8, 11):.17g}"
        pieces.append(f"{laws[i % 4]},{flops},{data},{cap}\n")
    return "".join(pieces), offsets


def _same(a, b):
    pd.testing.assert_frame_equal(a.sort_values("scenario_id").reset_index(drop=True), b.reset_index(drop=True),
                                  check_exact=True, check_categorical=False)


def test_a_csv_table_in_three_parts_equals_a_single_file(tmp_path):
    text, _ = _table_text(10_000)
    spec = write(tmp_path, "t.csv", text)
    run(["scenarios", spec, "-o", tmp_path / "one.parquet"])
    run(["scenarios", spec, "--partition-rows", "3500", "-o", tmp_path / "ds"])
    assert len(list((tmp_path / "ds").glob("part-*.parquet"))) == 3
    one = pd.read_parquet(tmp_path / "one.parquet")
    assert len(one) == 10_000
    _same(pd.read_parquet(tmp_path / "ds"), one)


def test_a_parquet_table_with_row_groups_in_parts_equals_a_single_file(tmp_path):
    text, _ = _table_text(5000)
    df = pd.read_csv(io.StringIO(text), dtype={"law": str}, skipinitialspace=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "t.parquet", row_group_size=700)
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == 8
    run(["scenarios", tmp_path / "t.parquet", "-o", tmp_path / "one.parquet"])
    run(["scenarios", tmp_path / "t.parquet", "--partition-rows", "1200", "-o", tmp_path / "ds"])
    assert len(list((tmp_path / "ds").glob("part-*.parquet"))) == 5
    _same(pd.read_parquet(tmp_path / "ds"), pd.read_parquet(tmp_path / "one.parquet"))


def test_a_csv_part_is_read_from_the_offset_of_its_first_row(tmp_path, monkeypatch):
    text, offsets = _table_text(10_000)
    spec = write(tmp_path, "t.csv", text.encode())  # bytes: offsets are byte offsets
    loaded = sc.load_spec(spec)
    whole = loaded.columns_for(0, 10_000)
    for row in (0, 1, 4095, 4096, 4097, 7007, 9999):
        assert readers.csv_row_offset(spec, loaded.layout, row) == offsets[row]
    calls = []
    real = pd.read_csv

    def spy(src, *args, **kwargs):
        calls.append((src.tell() if hasattr(src, "tell") else src, kwargs))
        return real(src, *args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", spy)
    part = loaded.columns_for(7000, 7100)
    assert len(calls) == 1 and calls[0][0] == offsets[7000] and "skiprows" not in calls[0][1]
    for name, value in part.items():
        if isinstance(value, tuple):  # (codes, names) of a string field
            assert [value[1][c] if c >= 0 else None for c in value[0]] == \
                [whole[name][1][c] if c >= 0 else None for c in whole[name][0][7000:7100]]
        else:
            np.testing.assert_array_equal(value, whole[name][7000:7100])


def test_a_parquet_part_reads_only_its_row_groups(tmp_path, monkeypatch):
    n = 5000
    table = pa.table({"flops": np.geomspace(1e19, 1e25, n), "mfu": np.linspace(0.2, 0.6, n)})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=1000)
    loaded = sc.load_spec(tmp_path / "t.parquet")
    groups = []
    real = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, *args, **kwargs):
        groups.append(list(row_groups))
        return real(self, row_groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("read the whole file"))
    for (start, stop), want in [((2500, 3700), [2, 3]), ((0, 1000), [0]), ((999, 1001), [0, 1]), ((4999, 5000), [4])]:
        cols = loaded.columns_for(start, stop)
        assert groups[-1] == want
        np.testing.assert_array_equal(cols["flops"], table["flops"].to_numpy()[start:stop])


# ------------------------------------------------------------------------------------- over-long numbers


def test_over_long_number_text_is_refused_unread():
    """Reading tens of thousands of digits took seconds (the size pattern is quadratic in the length), and the
    message repeated the whole value: now the text is refused at once and the message shows its start."""
    import time

    from scalesweep import validate

    for text in ("1" * 60_000, "1" * 60_000 + "B", " " + "9" * 101):
        t0 = time.perf_counter()
        with pytest.raises(ScalesweepError) as err:
            validate.parse_size(text)
        assert time.perf_counter() - t0 < 0.1
        message = str(err.value)
        assert message.startswith("too long for a number (at most 100 characters), got '")
        assert len(message) < 160 and f"({len(text):,} characters)" in message
    with pytest.raises(ScalesweepError, match=r"^--max-params: too long for a number \(at most 100 characters\)"):
        validate.number("7" * 101, "--max-params", size=True)
    with pytest.raises(ScalesweepError, match=r"^--mfu: too long for a number"):
        validate.number("0." + "4" * 200, "--mfu", "fraction")
    # up to the limit, numbers are read as before
    assert validate.parse_size("1" + "0" * 99) == 1e99 and validate.number("0." + "1" * 98, "--mfu", "fraction") > 0
    assert validate.parse_size("7B") == 7e9


def test_messages_show_a_long_value_cut_short():
    from scalesweep import validate

    assert validate.clip("7Q") == "'7Q'"  # short values as before
    shown = validate.clip("x" * 5_000)
    assert shown == "'" + "x" * 39 + "... (5,000 characters)"
    for call in (lambda: validate.number("x" * 90, "--mfu", "fraction"),
                 lambda: validate.choice("y" * 5_000, ["a", "b"], "unit")):
        with pytest.raises(ScalesweepError) as err:
            call()
        assert len(str(err.value)) < 200 and "characters)" in str(err.value)


def test_an_over_long_budget_on_the_command_line_is_refused_at_once():
    import time

    t0 = time.perf_counter()
    res = run(["frontier", "--flops-range", "1" * 20_000], ok=False)
    assert time.perf_counter() - t0 < 3  # 17 s when the digits were read
    assert_one_line_error(res, "--flops-range: value '111", 1)


def test_long_values_are_shown_cut_short_in_every_message(tmp_path):
    long = "1" * 20_000
    (tmp_path / "long.csv").write_text(f"flops\n{long}\n")
    for args in (["frontier", "--flops-range", long], ["frontier", "--flops-range", f"1e20:1e22:{long}"],
                 ["frontier", "--max-params", long], ["scenarios", str(tmp_path / "long.csv")]):
        res = run(args, ok=False)
        err = res.stderr.strip()
        assert err.startswith("Error: ") and len(err.splitlines()) == 1
        assert len(err) < 400 and "(20,000 characters)" in err, err[:300]
