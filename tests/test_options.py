"""Options as values: the option classes validate once, refuse what would be ignored, and are the one
definition the CLI's options and the scenario fields are generated from."""

import math
from dataclasses import fields
from importlib.resources import files

import numpy as np
import pytest
from click.testing import CliRunner

from scalesweep import options as O
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError


def test_hardware_resolves_presets_and_overrides():
    hw = O.Hardware(gpu="a100")
    assert (hw.gpu, hw.peak, hw.memory) == ("A100", 312.0, 80.0)
    hw = O.Hardware(gpu="A100", gpu_memory_gb=40.0)
    assert (hw.peak, hw.memory) == (312.0, 40.0)
    hw = O.Hardware(peak_tflops=500.0, gpu_memory_gb=96.0)
    assert (hw.gpu, hw.peak, hw.memory) == (None, 500.0, 96.0)
    assert not O.Hardware().given and O.Hardware().peak is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(gpu="TPUv9"), "unknown GPU 'TPUv9'"),
    (dict(gpu_memory_gb=80.0), "--gpu-memory-gb needs --gpu or --peak-tflops"),
    (dict(gpus=8), "--gpus needs --gpu or --peak-tflops"),
    (dict(mfu=0.5), "--mfu needs --gpu or --peak-tflops"),
    (dict(usd_per_gpu_hour=2.0), "--usd-per-gpu-hour needs --gpu or --peak-tflops"),
    (dict(gpu="A100", bytes_per_param=12.0), "--bytes-per-param needs --gpus"),
    (dict(peak_tflops=900.0, gpus=8, bytes_per_param=12.0),
     r"--bytes-per-param needs --gpus and GPU memory \(--gpu or --gpu-memory-gb\)"),
    (dict(gpu="A100", max_days=3.0), "--max-days needs --gpus"),
    (dict(gpu="A100", peak_tflops=-1.0), "--peak-tflops must be a finite number > 0"),
    (dict(gpu="A100", peak_tflops=math.inf), "--peak-tflops must be a finite number > 0"),
    (dict(peak_tflops=math.nan), "--peak-tflops"),
    (dict(gpu="A100", gpus=2.5), "--gpus must be a whole number >= 1"),
])
def test_hardware_refuses_bad_or_ineffective_options(kwargs, match):
    with pytest.raises(ScalesweepError, match=match):
        O.Hardware(**kwargs)


@pytest.mark.parametrize("v", [0.0, -0.1, 1.01, math.nan, math.inf, "x", True])
def test_mfu_must_be_in_unit_interval(v):
    with pytest.raises(ScalesweepError, match=r"--mfu must be a number in \(0, 1\]"):
        O.Hardware(gpu="A100", mfu=v)
    assert O.Hardware(gpu="A100", mfu=1.0).mfu == 1.0


def test_constraints_validate_and_order():
    assert O.Constraints(max_params=1e9).as_dict() == {"max_params": 1e9}
    with pytest.raises(ScalesweepError, match=r"--min-params \(2e\+09\) is greater than --max-params"):
        O.Constraints(min_params=2e9, max_params=1e9)
    with pytest.raises(ScalesweepError, match="--max-tokens must be a finite number > 0"):
        O.Constraints(max_tokens=0)


def test_unknown_option_names_suggest_the_closest():
    with pytest.raises(ScalesweepError, match=r"unknown option 'max_param'; did you mean 'max_params'\?"):
        O.from_values(O.Constraints, {"max_param": 1e9})
    assert O.from_values(O.Constraints, {"max_params": 1e9, "min_params": None}) == O.Constraints(max_params=1e9)


def test_columns_carry_defaults_and_the_resolved_gpu():
    cols = O.columns(O.Hardware(gpu="H100-SXM", gpus=8), O.Workload(), O.Constraints(max_params=1e9))
    assert cols == {"peak_tflops": 989.4, "gpu_memory_gb": 80.0, "mfu": 0.4, "gpus": 8.0, "bytes_per_param": 16.0,
                    "inference_tokens": 0.0, "max_params": 1e9}


def test_cli_options_are_generated_from_the_option_classes():
    """Every option field appears in `frontier --help` as --name-with-dashes, with its help text."""
    text = " ".join(CliRunner().invoke(cli, ["frontier", "--help"], terminal_width=200).output.split())
    for cls in (O.Constraints, O.Hardware, O.Workload):
        for f in fields(cls):
            assert O.flag(f.name) in text
            assert " ".join(f.metadata["help"].split())[:40] in text


def test_scenario_fields_are_the_option_fields():
    names = {f.name for cls in (O.Budgets, *O.OPTION_CLASSES) for f in fields(cls)}
    frontier_only = {"kwh", "precision", "hardware_file"}  # not read by scenario tables
    assert set(O.FIELDS) == names - frontier_only | {"law", "loss_law"}
    assert O.STRING_FIELDS == ("law", "loss_law", "gpu")
    assert O.DEFAULTS == {"law": "hoffmann2022", "mfu": 0.4, "bytes_per_param": 16.0, "inference_tokens": 0.0}


def _needs_met(groups):
    return {x: True for g in groups for x in g[:1]}


@pytest.mark.parametrize("field, groups", O.REQUIRES)
def test_every_rule_is_enforced_for_options_and_for_scenario_rows(field, groups):
    """One rule table: each field alone (with a budget) is refused, with each group's first field it passes,
    and the option classes and the per-row check say the same thing."""
    budget = {"flops": True} if field not in O.BUDGET_FIELDS else {}
    for missing in range(len(groups)):
        # rows 1-2 leave the field out (a flops budget instead), row 3 gives it without one of its needs
        # (a needed field may need others in turn: the error names row 3 and some unmet need)
        given = {k: np.array([False, False, True]) for k in _needs_met(groups[:missing] + groups[missing + 1:])}
        given[field] = np.array([False, False, True])
        given["flops"] = np.array([True, True, field not in O.BUDGET_FIELDS])
        with pytest.raises(ScalesweepError, match="row 3: .* needs"):
            O.check_rules(given, 3, lambda i: f"row {i + 1}")
    O.check_rules({field: True, **budget, **_needs_met(groups)}, 1, lambda i: "x")
    hardware = {f.name for f in fields(O.Hardware)}
    if field in hardware:
        values = {"gpu": "H100-SXM", "peak_tflops": 500.0, "gpu_memory_gb": 40.0, "gpus": 8, "mfu": 0.5,
                  "usd_per_gpu_hour": 2.0, "bytes_per_param": 12.0, "max_days": 3.0, "precision": "fp8",
                  "hardware_file": None, "board_power_w": 700.0, "power_fraction": 0.8, "pue": 1.2,
                  "grid_gco2_per_kwh": 400.0, "usd_per_kwh": 0.1}
        if field == "hardware_file":  # a file to read: any existing catalogue file
            values["hardware_file"] = str(files("scalesweep") / "hardware.toml")
        with pytest.raises(ScalesweepError, match=f"{O.flag(field)} needs"):
            O.Hardware(**{field: values[field]})
        O.Hardware(**{k: values[k] for k in {field, *_needs_met(groups)}})
