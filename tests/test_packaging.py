"""Packaging: the wheel builds with the declared setuptools floor (installed at exactly that version in a fresh
virtual environment), carries the LICENSE and its metadata, and takes its version from the one place it is
written; the fully annotated modules pass mypy with the project's configuration."""

import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import scalesweep as ss

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# pip's own wording when it cannot reach an index (resolution, connection, timeouts, proxies)
UNREACHABLE = re.compile(r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
                         r"resolution|Network is unreachable|Max retries exceeded|ConnectTimeout|ReadTimeout|"
                         r"ProxyError|Could not fetch URL|No route to host")


def _run(cmd: list, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def setuptools_floor() -> str:
    """The X of the build requirement ``setuptools>=X``."""
    reqs = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=([\d.]+)", reqs[0].replace(" ", "")) if len(reqs) == 1 else None
    assert m, f"the build requirements name setuptools once, as setuptools>=X: {reqs}"
    return m[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the source tree by setuptools==<floor> (no build isolation)."""
    tmp = tmp_path_factory.mktemp("floor")
    env = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    py = str(env / "bin" / "python")
    pip = [py, "-m", "pip", "--disable-pip-version-check", "--timeout", "20", "--retries", "1"]
    res = _run([*pip, "install", "--quiet", f"setuptools=={setuptools_floor()}", "wheel"])
    if res.returncode != 0:
        reason = UNREACHABLE.search(res.stdout + res.stderr)
        if reason:
            pytest.skip(f"the package registry cannot be reached to install setuptools ({reason[0]})")
        pytest.fail(f"installing setuptools=={setuptools_floor()} failed:\n{res.stderr[-2000:]}")
    src = tmp / "src"  # a copy: an in-tree build would leave build/ and egg-info in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "scalesweep", src / "scalesweep",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    res = _run([*pip, "wheel", "--quiet", "--no-build-isolation", "--no-deps", "-w", str(tmp / "dist"), str(src)])
    assert res.returncode == 0, f"the wheel does not build with setuptools=={setuptools_floor()}:\n{res.stderr[-3000:]}"
    wheels = list((tmp / "dist").glob("scalesweep-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _metadata(whl: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        return names, z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()


def test_wheel_builds_with_the_declared_floor_and_carries_the_license(wheel):
    names, meta = _metadata(wheel)
    assert "License-Expression: MIT" in meta.splitlines()
    assert "License-File: LICENSE" in meta.splitlines()
    license_files = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert len(license_files) == 1
    with zipfile.ZipFile(wheel) as z:
        assert z.read(license_files[0]).decode() == (ROOT / "LICENSE").read_text()
    assert "Copyright (c) 2026 the scalesweep authors" in (ROOT / "LICENSE").read_text()
    assert "scalesweep/py.typed" in names and "scalesweep/laws.py" in names
    classifiers = [line.split(": ", 1)[1] for line in meta.splitlines() if line.startswith("Classifier: ")]
    assert "Typing :: Typed" in classifiers and not any(c.startswith("License ::") for c in classifiers)


def test_the_version_is_written_once(wheel):
    _, meta = _metadata(wheel)
    assert f"Version: {ss.__version__}" in meta.splitlines()
    assert wheel.name.startswith(f"scalesweep-{ss.__version__}-")
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "scalesweep._version.__version__"}
    defined = [p.relative_to(ROOT).as_posix() for p in (ROOT / "scalesweep").rglob("*.py")
               if re.search(r"^__version__\s*=", p.read_text(), re.MULTILINE)]
    assert defined == ["scalesweep/_version.py"]


def checked_modules() -> list[str]:
    """The modules ``[tool.mypy]`` holds to full annotation (``disallow_untyped_defs``)."""
    return [m for o in PYPROJECT["tool"]["mypy"]["overrides"] if o.get("disallow_untyped_defs") for m in o["module"]]


def test_types(request, tmp_path):
    modules = checked_modules()
    assert {"scalesweep", "scalesweep.api", "scalesweep.laws", "scalesweep.fit", "scalesweep.lookup"} <= set(modules)
    # mypy's cache in pytest's (kept between runs), or a fresh one where pytest runs without its cache
    cache = request.config.cache.mkdir("mypy") if hasattr(request.config, "cache") else tmp_path
    args = [a for m in modules for a in ("-m", m)]
    res = _run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                str(cache), *args], cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: no issues found" in res.stdout
