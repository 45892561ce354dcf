"""One home per concept: integer codes are paired with names once (``codes``), the family registry agrees
with them and with what the kernels can do, and no code outside the registry branches on a family's name."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from scalesweep import codes
from scalesweep.kernels.inverse import level_x
from scalesweep.kernels.loss import closed_form_x, gap_max_x, initial_x, loss_point
from scalesweep.laws import FAMILIES, PRESETS, Family, family_of_code, get_law

PACKAGE = Path(__file__).resolve().parent.parent / "scalesweep"


def test_family_codes_and_names_agree():
    assert [FAMILIES[name].id for name in codes.FAMILY_NAMES] == list(range(len(codes.FAMILY_NAMES)))
    for name in codes.FAMILY_NAMES:
        assert getattr(codes, name.upper()) == FAMILIES[name].id
        assert family_of_code(FAMILIES[name].id).name == name


def test_active_constraint_and_solver_codes_agree_with_their_names():
    for code_name, name in [("NONE", "none"), ("MIN_PARAMS", "min_params"), ("MAX_PARAMS", "max_params"),
                            ("MIN_TOKENS", "min_tokens"), ("MAX_TOKENS", "max_tokens"),
                            ("MIN_TPP", "min_tokens_per_param"), ("MAX_TPP", "max_tokens_per_param"),
                            ("MEMORY", "memory"), ("UNIQUE_TOKENS", "unique_tokens"), ("MAX_DAYS", "max_days"),
                            ("MAX_OVERFIT", "max_overfit"), ("MAX_CONVERGENCE_GAP", "max_convergence_gap")]:
        assert codes.ACTIVE_NAMES[getattr(codes, code_name)] == name
    assert len(set(codes.ACTIVE_NAMES)) == len(codes.ACTIVE_NAMES)
    # codes are appended: a stored table's dictionary codes keep their meaning
    assert codes.ACTIVE_NAMES[:11] == ("none", "min_params", "max_params", "min_tokens", "max_tokens",
                                       "min_tokens_per_param", "max_tokens_per_param", "memory", "unique_tokens",
                                       "max_days", "max_overfit")
    assert [codes.SOLVER_NAMES[c] for c in (codes.SOLVER_AUTO, codes.SOLVER_NEWTON, codes.SOLVER_NEWTON_MID)] == \
        ["auto", "newton", "newton-midpoint"]


def _preset_of(family):
    return get_law(next(name for name, p in PRESETS.items() if p.family == family and
                        FAMILIES[family].frontier_error(name, p.params) is None))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_registry_capabilities_match_the_kernels(family):
    """What the registry says a family can do is what the kernels do: an initial guess where the frontier is
    solved, a closed form exactly where one is declared, a level curve exactly where target-loss is declared."""
    spec = FAMILIES[family]
    law = _preset_of(family)
    c = math.log(1e23 / 6.0)
    if spec.has_loss:
        assert math.isfinite(loss_point(spec.id, law.vector, 1e9, 2e10))
    if spec.frontier == "solve":
        assert math.isfinite(initial_x(spec.id, law.vector, c))
    assert math.isfinite(closed_form_x(spec.id, law.vector, c)) == spec.closed_form
    assert math.isfinite(gap_max_x(spec.id, law.vector, c, 0.05)) == spec.convergence_limit
    reachable = loss_point(spec.id, law.vector, 1e9, 2e10) if spec.has_loss else 2.0
    assert math.isfinite(level_x(spec.id, law.vector, math.inf, reachable)) == spec.target_loss


def test_a_half_registered_family_fails_loudly():
    base = dict(id=codes.CHINCHILLA, name="chinchilla", formula="", param_names=("E",), positive=(), source="",
                closed_form=False, target_loss=False, has_loss=True, fit=None)
    with pytest.raises(TypeError, match="initial guess"):
        Family(**base, frontier="solve", initial_guess="")
    with pytest.raises(TypeError, match="allocate"):
        Family(**{**base, "has_loss": False}, frontier="rule", initial_guess="")
    with pytest.raises(TypeError, match="codes.FAMILY_NAMES"):
        Family(**{**base, "name": "new_family"}, frontier="solve", initial_guess="x")
    with pytest.raises(TypeError, match="'U_D' is not one of its parameters"):
        Family(**base, frontier="solve", initial_guess="x", unique_tokens_param="U_D")
    with pytest.raises(TypeError):  # a required piece left out entirely
        Family(id=0, name="chinchilla", formula="", param_names=("E",), positive=(), source="")


def test_no_code_outside_the_registry_branches_on_a_family_name():
    names = "|".join(FAMILIES)
    branch = re.compile(rf"""(==|!=|\bin\b)\s*[(\[]?\s*["']({names})["']""")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "laws.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if branch.search(line):
                offenders.append(f"{path.name}:{i}: {line.strip()}")
    assert offenders == []


def test_the_kernels_take_their_constants_from_codes():
    """No family id, constraint code or physical constant is written as a literal in the kernels."""
    for path in (PACKAGE / "kernels").glob("*.py"):
        text = path.read_text()
        assert "8.64e19" not in text and "0.076 / 0.103" not in text, path.name
        assert not re.search(r"family\s*(<=|>=|<|>)\s*\d", text), path.name
        assert not re.search(r"^[A-Z_]+ = \d+\s*$", text, re.M) or path.name in ("fit.py", "frontier.py",
                                                                                 "inverse.py"), path.name


def test_law_arrays_pad_with_nan():
    from scalesweep.laws import law_arrays

    fams, P = law_arrays([get_law("kaplan2020"), get_law("hoffmann2022")])
    assert fams.tolist() == [codes.KAPLAN, codes.CHINCHILLA] and P.shape == (2, 5)
    assert np.isnan(P[0, 4]) and P[1, 4] == get_law("hoffmann2022").params["beta"]


def _imports(path: Path) -> set[str]:
    """The scalesweep modules a module imports (at top level or inside functions)."""
    import ast

    pkg = "scalesweep." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    base = pkg.rsplit(".", 1)[0] if path.name != "__init__.py" else pkg
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                root = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                mod = f"{root}.{node.module}" if node.module else root
                names = [f"{mod}.{a.name}" for a in node.names]
                out.update(n for n in names if (PACKAGE.parent / (n.replace(".", "/") + ".py")).exists())
                out.add(mod)
            elif node.module and node.module.startswith("scalesweep"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("scalesweep"))
    return {m for m in out if m != pkg and m != "scalesweep"}


def test_no_import_cycles_between_modules():
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        name = "scalesweep." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        graph[name] = {m for m in _imports(path) if not m.endswith("__init__")}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in graph.get(node, ()):
            if state.get(dep) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, dep]))
            if dep not in state:
                visit(dep, [*stack, node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])
    # the lowest layers import nothing of the package above them
    assert graph["scalesweep.codes"] == set() and graph["scalesweep.errors"] == set()
    # the API is used by the front ends only (the command line, the report, the calculator)
    front_ends = {"scalesweep.cli", "scalesweep.report", "scalesweep.web"}
    assert "scalesweep.api" not in set().union(*(deps for name, deps in graph.items() if name not in front_ends))
