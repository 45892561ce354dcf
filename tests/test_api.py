"""The public Python API: what `import scalesweep` offers, loaded lazily, and the module entry point."""

import inspect
import subprocess
import sys

import pytest

import scalesweep as ss


def test_import_loads_nothing_compiled():
    code = "import sys, scalesweep; print('numba' in sys.modules, 'pyarrow' in sys.modules, scalesweep.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", ss.__version__]


def test_every_exported_name_resolves_and_unknown_names_fail():
    for name in ss.__all__:
        assert getattr(ss, name) is not None, name
    with pytest.raises(AttributeError):
        ss.no_such_thing  # noqa: B018
    assert callable(ss.frontier) and ss.frontier.__module__ == "scalesweep.api"


def test_api_module_holds_public_functions_only():
    import inspect

    from scalesweep import api

    private = [n for n, v in vars(api).items() if n.startswith("_") and inspect.isfunction(v)]
    assert private == []


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "scalesweep", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and ss.__version__ in res.stdout
    res = subprocess.run([sys.executable, "-m", "scalesweep", "frontier", "--flops-range", "1e20", "--gpus", "2"],
                         capture_output=True, text=True)
    assert res.returncode == 1 and res.stdout == "" and res.stderr == "Error: --gpus needs --gpu or --peak-tflops\n"


def test_option_dicts_suggest_the_closest_name():
    with pytest.raises(ss.ScalesweepError, match="unknown constraint 'max_param'; did you mean 'max_params'"):
        ss.build_lookup("hoffmann2022", 1e18, 1e20, 2, max_param=1e9)


@pytest.mark.parametrize("call, wrong, right", [
    (lambda **kw: ss.frontier("hoffmann2022", [1e22], **kw), "max_param", "max_params"),
    (lambda **kw: ss.target_loss("hoffmann2022", [2.0], **kw), "inference_token", "inference_tokens"),
    (lambda **kw: ss.surface("hoffmann2022", [1e9], [1e10], **kw), "dtyp", "dtype"),
    (lambda **kw: ss.compare([1e22], **kw), "law", "laws"),
])
def test_a_misspelled_keyword_is_one_line_naming_the_closest(call, wrong, right):
    with pytest.raises(ss.ScalesweepError, match=f"has no argument '{wrong}'; did you mean '{right}'") as info:
        call(**{wrong: 1})
    assert isinstance(info.value, TypeError)  # what Python's own error would be, for code that catches it
    assert "\n" not in str(info.value)
    assert ss.frontier.__name__ == "frontier" and "max_params" in str(inspect.signature(ss.frontier))
