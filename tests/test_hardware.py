"""The hardware catalogue (scalesweep/hardware.toml): datasheet figures, names and aliases, precisions, and user
files (--hardware-file and the user configuration directory).

Expected peaks are typed here from the vendors' datasheets (NVIDIA prints "with sparsity" figures: the dense
value is worked out here as half of the printed one), not read back from the catalogue."""

import io
import tomllib
from importlib.resources import files

import pandas as pd
import pytest
from pathlib import Path
from click.testing import CliRunner

from scalesweep import units
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.options import Hardware

from .helpers import assert_one_line_error


@pytest.fixture(autouse=True)
def _no_user_catalogue(tmp_path, monkeypatch):
    """Every test starts without a user catalogue (an empty configuration directory)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


# name: (dense bf16 TFLOP/s, dense fp8 TFLOP/s or None, memory GB, board power W or None)
DATASHEET = {
    "A100": (312.0, None, 80.0, 400.0),
    "A100-40GB": (312.0, None, 40.0, 400.0),
    "H100-SXM": (989.4, 3957.8 / 2, 80.0, 700.0),  # whitepaper dense bf16; datasheet fp8 3,958 with sparsity
    "H100-PCIe": (756.0, 3026 / 2, 80.0, 350.0),
    "H100-NVL": (1671 / 2, 3341 / 2, 94.0, 400.0),
    "H200": (989.4, 3957.8 / 2, 141.0, 700.0),
    "B200": (4500 / 2, 9000 / 2, 180.0, 1000.0),
    "GB200": (5000 / 2, 10000 / 2, 186.0, 1200.0),
    "MI300X": (1307.4, 2614.9, 192.0, 750.0),
    "MI325X": (1307.4, 2614.9, 256.0, 1000.0),
    "TPU-v4": (275.0, None, 32 * 2**30 / 1e9, 192.0),  # 32 GiB; measured maximum power per chip
    "TPU-v5e": (197.0, None, 16.0, None),
    "TPU-v5p": (459.0, 459.0, 95.0, None),
    "TPU-v6e": (918.0, None, 32.0, None),
    "Gaudi3": (1835.0, 1835.0, 128.0, 900.0),
}


def test_the_catalogue_holds_the_datasheet_figures():
    assert list(units.GPUS) == list(DATASHEET)
    for name, (bf16, fp8, mem, power) in DATASHEET.items():
        g = units.GPUS[name]
        assert g.peak_tflops == pytest.approx(bf16, rel=1e-12), name
        assert g.peak("bf16") == g.peak_tflops
        assert (g.fp8_tflops is None) == (fp8 is None) and (fp8 is None or g.fp8_tflops == pytest.approx(fp8)), name
        assert g.memory_gb == pytest.approx(mem, rel=1e-12), name
        assert g.board_power_w == power, name
        assert g.url.startswith("https://") and g.source, name


def test_the_readme_table_is_the_catalogue():
    """The README's catalogue table: every part, in order, with its aliases, dense peaks, memory, power and URL."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `") and "](https://" in line]

    def num(cell):
        return None if cell == "—" else float(cell.replace(",", ""))

    seen = []
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        if name not in units.GPUS:
            continue
        g = units.GPUS[name]
        seen.append(name)
        aliases = [] if cells[1] == "—" else [a.strip(" `") for a in cells[1].split(",")]
        assert aliases == list(g.aliases), name
        assert (num(cells[2]), num(cells[3])) == (g.peak_tflops, g.fp8_tflops), name
        assert num(cells[4]) == pytest.approx(g.memory_gb, abs=0.005), name
        assert num(cells[5]) == g.board_power_w, name
        assert cells[6].endswith(f"]({g.url})"), name
    assert seen == list(units.GPUS)


def test_todays_presets_keep_their_numbers():
    """The four presets scalesweep had before the catalogue: the same peaks and memory, bit for bit."""
    before = {"A100": (312.0, 80.0), "H100-SXM": (989.4, 80.0), "H100-PCIe": (756.0, 80.0), "H200": (989.4, 141.0)}
    for name, (peak, mem) in before.items():
        assert (units.GPUS[name].peak_tflops, units.GPUS[name].memory_gb) == (peak, mem)
        assert Hardware(gpu=name).peak == peak


def test_the_file_gives_dense_figures_only():
    """Every entry's source says what the datasheet prints; NVIDIA's sparse figures are twice the dense ones."""
    raw = tomllib.loads((files("scalesweep") / "hardware.toml").read_text())
    for name, t in raw.items():
        if "fp8_tflops" in t and name.startswith(("H1", "H2", "B2", "GB2")):
            assert t["fp8_tflops"] == pytest.approx(2 * t["bf16_tflops"], rel=1e-3), name
        assert "TFLOP" in t["source"] or "PFLOP" in t["source"], name


@pytest.mark.parametrize("alias, name", [("h100", "H100-SXM"), ("H100 SXM5", "H100-SXM"), ("a100_80gb", "A100"),
                                         ("A100-SXM4-40GB", "A100-40GB"), ("tpuv5p", "TPU-v5p"),
                                         ("trillium", "TPU-v6e"), ("gaudi 3", "Gaudi3"), ("mi300x", "MI300X"),
                                         ("GB200-NVL72", "GB200"), ("h200-sxm", "H200")])
def test_names_and_aliases_in_any_case(alias, name):
    assert units.gpu_preset(alias).name == name
    assert Hardware(gpu=alias).gpu == name


def test_aliases_are_unique_and_name_presets():
    keys = [units._gpu_key(k) for k in [*units.GPUS, *units.GPU_ALIASES]]
    assert len(keys) == len(set(keys))
    assert all(v in units.GPUS for v in units.GPU_ALIASES.values())


def test_precision_picks_the_dense_peak():
    assert Hardware(gpu="H100").peak == 989.4
    assert Hardware(gpu="H100", precision="fp8").peak == 1978.9
    assert Hardware(gpu="MI300X", precision="FP8").peak == 2614.9
    assert Hardware(gpu="H100", precision="fp8", peak_tflops=1500).peak == 1500  # an override wins
    with pytest.raises(ScalesweepError, match="A100 has no fp8 peak"):
        Hardware(gpu="A100", precision="fp8")
    with pytest.raises(ScalesweepError, match="unknown precision 'fp4'"):
        Hardware(gpu="H100", precision="fp4")
    with pytest.raises(ScalesweepError, match="--precision needs --gpu"):
        Hardware(peak_tflops=500, precision="fp8")


def test_fp8_doubles_the_gpu_hour_throughput():
    bf16 = units.model_flops_per_gpu_hour(Hardware(gpu="H100").peak, 0.4)
    fp8 = units.model_flops_per_gpu_hour(Hardware(gpu="H100", precision="fp8").peak, 0.4)
    assert fp8 / bf16 == pytest.approx(1978.9 / 989.4, rel=1e-15)


USER = """
[MyChip]
aliases = ["mine"]
bf16_tflops = 500.0
fp8_tflops = 1000.0
memory_gib = 64.0
board_power_w = 600.0
source = "our lab's measurement"
url = "https://example.org/mychip"

[H200]
bf16_tflops = 900.0
memory_gb = 141.0
source = "a derated H200"
url = "https://example.org/h200"
"""


def test_a_hardware_file_adds_and_replaces_parts(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(USER)
    chip = units.gpu_preset("MINE", path)
    assert (chip.name, chip.peak_tflops, chip.memory_gb) == ("MyChip", 500.0, pytest.approx(64 * 1.073741824))
    assert units.gpu_preset("h200", path).peak_tflops == 900.0
    assert units.gpu_preset("h200-sxm", path).peak_tflops == 900.0  # the built-in alias follows the part
    assert units.gpu_preset("H200").peak_tflops == 989.4  # without the file: the built-in part
    hw = Hardware(gpu="mychip", hardware_file=str(path), precision="fp8")
    assert (hw.gpu, hw.peak, hw.power) == ("MyChip", 1000.0, 600.0)
    with pytest.raises(ScalesweepError, match="unknown GPU 'mychip'"):
        Hardware(gpu="mychip")


def test_the_user_configuration_file_is_read_when_it_exists(tmp_path, monkeypatch):
    conf = tmp_path / "xdg"
    (conf / "scalesweep").mkdir(parents=True)
    (conf / "scalesweep" / "hardware.toml").write_text(USER)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(conf))
    assert units.user_catalogue_path() == conf / "scalesweep" / "hardware.toml"
    assert units.gpu_preset("mine").name == "MyChip"
    assert Hardware(gpu="H200").peak == 900.0
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    assert Hardware(gpu="H200").peak == 989.4


@pytest.mark.parametrize("text, needle", [
    ("[X]\nbf16_tflops = 1.0\nmemory_gb = 1.0\nsource = 's'\n", "[X]: missing url"),
    ("[X]\nbf16_tflops = -1.0\nmemory_gb = 1.0\nsource = 's'\nurl = 'u'\n", "bf16_tflops must be a finite number > 0"),
    ("[X]\nbf16_tflops = 1.0\nsource = 's'\nurl = 'u'\n", "give the memory once"),
    ("[X]\nbf16_tflop = 1.0\n", "unknown field 'bf16_tflop'; did you mean 'bf16_tflops'?"),
    ("[X\n", "not valid TOML"),
    ("[H100]\nbf16_tflops = 1.0\nmemory_gb = 1.0\nsource = 's'\nurl = 'u'\n",
     "H100 is an alias of H100-SXM; name the entry H100-SXM to replace it"),
    ("[X]\naliases = ['h200']\nbf16_tflops = 1.0\nmemory_gb = 1.0\nsource = 's'\nurl = 'u'\n",
     "alias 'h200' already names H200"),
])
def test_bad_hardware_files_are_one_line_errors(tmp_path, text, needle):
    path = tmp_path / "hw.toml"
    path.write_text(text)
    with pytest.raises(ScalesweepError) as err:
        units.gpu_preset("A100", path)
    assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ScalesweepError, match="cannot read it"):
        units.gpu_preset("A100", tmp_path / "missing.toml")


def _frontier(*args):
    return CliRunner().invoke(cli, ["frontier", "--flops-range", "1e22", "--format", "csv", *map(str, args)])


def test_cli_precision_and_hardware_file(tmp_path):
    """On the command line (options generated from the Hardware fields)."""
    bf16 = pd.read_csv(io.StringIO(_frontier("--gpu", "H100").stdout)).gpu_hours[0]
    fp8 = pd.read_csv(io.StringIO(_frontier("--gpu", "H100", "--precision", "fp8").stdout)).gpu_hours[0]
    assert bf16 == pytest.approx(1e22 / (989.4e12 * 0.4 * 3600), rel=1e-12)
    assert fp8 == pytest.approx(1e22 / (1978.9e12 * 0.4 * 3600), rel=1e-12)
    assert_one_line_error(_frontier("--gpu", "A100", "--precision", "fp8"), "A100 has no fp8 peak", 1)
    path = tmp_path / "hw.toml"
    path.write_text(USER)
    res = _frontier("--gpu", "H200", "--hardware-file", path)
    assert pd.read_csv(io.StringIO(res.stdout)).gpu_hours[0] == pytest.approx(1e22 / (900e12 * 0.4 * 3600))


def test_cli_gpu_from_a_hardware_file(tmp_path):
    """A part only the file names (needs the --gpu check to wait for the file: /tmp/cli_planning.diff)."""
    path = tmp_path / "hw.toml"
    path.write_text(USER)
    res = _frontier("--gpu", "mychip", "--hardware-file", path)
    assert res.exit_code == 0, res.output
    assert pd.read_csv(io.StringIO(res.stdout)).gpu_hours[0] == pytest.approx(1e22 / (500e12 * 0.4 * 3600))


def _entry_text(name, tflops):
    return f"[{name}]\nbf16_tflops = {tflops}\nmemory_gb = 80.0\nsource = 's'\nurl = 'u'\n"


@pytest.mark.parametrize("first, second", [("MyChip", "mychip"), ("MyChip", "MYCHIP"), ("my-chip", "My Chip"),
                                           ("my_chip", "My-Chip"), ("H200", "h200")])
def test_names_of_one_file_that_differ_only_in_case_are_refused(tmp_path, first, second):
    """Two entries whose names compare equal (case, spaces, underscores) would let the later replace the
    earlier without a word; the file is refused naming both."""
    path = tmp_path / "hw.toml"
    path.write_text(_entry_text(first, 500.0) + _entry_text(f'"{second}"', 100.0))
    with pytest.raises(ScalesweepError) as err:
        units.gpu_preset(first, path)
    assert f"[{second}] names the same part as [{first}]" in str(err.value) and "\n" not in str(err.value)
    res = _frontier("--gpu", first, "--hardware-file", path)
    assert_one_line_error(res, "names the same part as", 1)


def test_aliases_of_one_file_that_differ_only_in_case_are_refused(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(_entry_text("A", 1.0).replace("[A]\n", "[A]\naliases = ['fast']\n")
                    + _entry_text("B", 2.0).replace("[B]\n", "[B]\naliases = ['FAST']\n"))
    with pytest.raises(ScalesweepError, match="alias 'FAST' already names A"):
        units.gpu_preset("A", path)


def test_a_file_may_still_replace_a_catalogue_part_in_another_case(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text(_entry_text("h200", 900.0))
    assert units.gpu_preset("H200", path).peak_tflops == 900.0


def test_missing_fields_are_reported_together(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text("[X]\nmemory_gb = 1.0\n")
    with pytest.raises(ScalesweepError, match=r"\[X\]: missing bf16_tflops, source and url \(every entry needs"):
        units.gpu_preset("A100", path)


@pytest.mark.parametrize("kind", ["device", "directory", "fifo", "large", "binary"])
def test_only_a_small_regular_file_is_read(tmp_path, kind):
    """/dev/zero, a FIFO without a writer, a directory, an oversized or a binary file: one line at once (a
    read of /dev/zero would not end, and opening a FIFO without a writer would block)."""
    import os

    if kind == "device":
        path, needle = "/dev/zero", "is not a regular file"
    elif kind == "directory":
        path, needle = tmp_path, "is a directory"
    elif kind == "fifo":
        path, needle = tmp_path / "pipe", "is not a regular file"
        os.mkfifo(path)
    elif kind == "large":
        path, needle = tmp_path / "big.toml", "larger than 1024 KiB"
        path.write_text("# padding\n" * (units.MAX_HARDWARE_FILE_BYTES // 10 + 1))
    else:
        path, needle = tmp_path / "bin.toml", "not UTF-8 text"
        path.write_bytes(b"\xff\xfe[X]\n")
    with pytest.raises(ScalesweepError) as err:
        units.gpu_preset("A100", path)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert_one_line_error(_frontier("--gpu", "H100", "--hardware-file", path), needle, 1)


def test_a_file_at_the_size_limit_is_read(tmp_path):
    path = tmp_path / "hw.toml"
    text = _entry_text("Big", 7.0)
    path.write_text(text + "#" * (units.MAX_HARDWARE_FILE_BYTES - len(text) - 1) + "\n")
    assert path.stat().st_size == units.MAX_HARDWARE_FILE_BYTES
    assert units.gpu_preset("big", path).peak_tflops == 7.0
