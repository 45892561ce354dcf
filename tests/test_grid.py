import math

import numpy as np
import pytest

from scalesweep.errors import ScalesweepError
from scalesweep.grid import parse_range, row_chunks


def test_log_range_inclusive_and_exact_decades():
    r = parse_range("1e20:1e24:5")
    assert r.values().tolist() == [1e20, 1e21, 1e22, 1e23, 1e24]
    v = parse_range("3e18:7e25:1000").values()
    assert v[0] == 3e18 and v[-1] == 7e25 and v.size == 1000
    np.testing.assert_allclose(np.diff(np.log(v)), np.log(7e25 / 3e18) / 999, rtol=1e-9)
    assert parse_range("5e9").values().tolist() == [5e9]
    assert parse_range("5e9:5e9:1").values().tolist() == [5e9]
    assert str(parse_range("1e18:1e26:9")) == "1e+18:1e+26:9"


@pytest.mark.parametrize("text", ["", "1e18:1e20", "1:2:3:4", "x:1:2", "1:y:2", "1:2:z", "1:2:0", "2:1:3", "1:2:1",
                                  "nan:1:2", "1:inf:2", "-1:2:2", "0:2:2", "1e18:1e20:-3"])
def test_bad_ranges(text):
    with pytest.raises(ScalesweepError) as exc:
        parse_range(text, "--flops-range")
    assert str(exc.value).startswith("--flops-range: ")


def test_row_chunks_cover_everything_once():
    chunks = list(row_chunks(10, 7, 20))
    assert [(c.start, c.stop) for c in chunks] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert [(c.start, c.stop) for c in row_chunks(3, 100, 10)] == [(0, 1), (1, 2), (2, 3)]  # at least one row


@pytest.mark.parametrize("text", ["1e20:1e24:5", "1e18:1e26:1000", "3e19:7.1e23:777", "2:2:3", "5:5:1"])
def test_range_slices_equal_the_whole_range_and_numpy_linspace(text):
    """Chunks of a range (how long frontiers are generated) are bit-identical to the whole range, which is
    numpy's linspace in log10 with whole decades exact and the endpoints as given."""
    r = parse_range(text)
    k = np.linspace(math.log10(r.lo), math.log10(r.hi), r.count)
    ref = 10.0**k
    for i in np.flatnonzero(k == np.round(k)):
        ref[i] = float(f"1e{int(k[i])}")
    ref[0], ref[-1] = r.lo, r.hi
    whole = r.values()
    assert np.array_equal(whole, ref)
    for start in range(0, r.count, 7):
        assert np.array_equal(r.values(start, start + 13), whole[start:start + 13])
