"""Law families, published presets and the names they go by.

A law is a family id plus a float64 parameter vector (see ``DESIGN.md``): one compiled kernel serves every
preset and every user override. Every preset cites the paper, equation or table and arXiv id its constants
come from.

Families
--------
``chinchilla``  L(N, D) = E + A/N^alpha + B/D^beta                  (Hoffmann et al. 2022, Eq. 2 / Eq. 10)
``kaplan``      L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D  (Kaplan et al. 2020, Eq. 1.5 = 4.1)
``data_constrained``  chinchilla form in effective data and parameters (Muennighoff et al. 2023, appendix)
``kaplan_steps``  L(N, S_min) with the critical batch B_crit(L) (Kaplan et al. 2020, Eq. 1.6 and 1.4)

N is parameters, D is training tokens, L is loss in nats/token. Training compute is C = 6*N*D FLOPs.

Names: where a law is asked for, a preset's name or an alias (``ALIASES``: ``chinchilla`` is
``hoffmann2022``) is read without regard to case, with spaces and underscores read as hyphens
(``preset_name``); the canonical preset name is what outputs record. Where a family is asked for
(``fit --family``, a law file's ``family``), ``chinchilla`` and ``kaplan`` are the families.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import codes
from .errors import ScalesweepError
from .validate import suggest

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

FRONTIER_KINDS = ("solve", "rule", "budget_loss")
# The papers most presets cite: author, year, title, arXiv id.
_KAPLAN2020 = "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', arXiv:2001.08361"
_HOFFMANN2022 = "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', arXiv:2203.15556"
_MUENNIGHOFF2023 = "Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', arXiv:2305.16264"


@dataclass(frozen=True)
class FitSpec:
    """How ``scalesweep fit`` fits a family: the start grid of the multi-start L-BFGS (in the fit kernel's
    theta order, ``kernels/fit.py``), the maps between theta and the family's parameters, and the methods.

    ``base`` names the parameters a base law may fix (the fit then searches only the other theta entries), and
    ``base_theta`` maps a base law's parameters to the start-grid axes (theta entries) they fix; ``()``/None: the
    family takes no base law."""

    grid: dict[str, list[float]]
    to_params: Callable[[np.ndarray], dict[str, float]]
    to_theta: Callable[[Mapping[str, float]], np.ndarray]
    methods: tuple[str, ...] = ("lbfgs",)
    base: tuple[str, ...] = ()
    base_theta: Callable[[Mapping[str, float]], dict[str, float]] | None = None


@dataclass(frozen=True)
class Family:
    """A law family and everything the tool may ask of it. Every field without a default must be given, and
    ``__post_init__`` checks that the capabilities fit together, so a half-registered family fails at import.

    ``frontier`` says how a budget becomes an allocation: ``"solve"`` (the frontier kernel minimises the loss
    on the iso-FLOP line, Newton from ``kernels.loss.initial_x``; ``closed_form`` when
    ``kernels.loss.closed_form_x`` is exact), ``"rule"`` (``allocate(P, flops) -> (N, D)``, a formula, no loss
    of its own) or ``"budget_loss"`` (``budget_loss(P, flops) -> loss``, no allocation). ``target_loss``: the
    inverse kernel has the family's level curve. ``no_frontier(params)`` names laws of the family that have no
    frontier at all (None: every law has one). ``extra(P, loss, tokens)`` returns the ``extra_columns`` a
    frontier of this family adds.
    """

    id: int
    name: str
    formula: str
    param_names: tuple[str, ...]
    positive: tuple[str, ...]  # parameters that must be > 0; the others must be >= 0; all finite
    source: str
    frontier: str
    closed_form: bool
    target_loss: bool
    has_loss: bool
    initial_guess: str  # where Newton starts (kernels.loss.initial_x), for frontier == "solve"
    fit: FitSpec | None
    may_be_inf: tuple[str, ...] = ()  # parameters that may be +inf (e.g. unlimited unique data)
    choices: tuple[tuple[str, tuple[float, ...]], ...] = ()  # parameters restricted to a few values
    unique_tokens_param: str | None = None  # the parameter that --unique-tokens sets per row
    allocate: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    budget_loss: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    no_frontier: Callable[[str, Mapping[str, float]], str | None] | None = None
    extra_columns: tuple[str, ...] = ()
    extra: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, np.ndarray]] | None = None
    irreducible: str | None = None  # the parameter that is the loss as N, D -> inf (None: the loss tends to 0)
    # --max-convergence-gap: the frontier kernel bounds L(N, D)/L(N, inf) - 1 (kernels.loss.gap_max_x)
    convergence_limit: bool = False
    # --flops-model kaplan|chinchilla: the frontier on C = f(N) D (``kernels.frontier.curve_state`` has this family)
    flops_model: bool = False
    # params -> why they contradict each other (None: they agree); asked of a law file that states its parameters
    # (presets keep their published, rounded constants)
    inconsistent: Callable[[Mapping[str, float]], str | None] | None = None

    def __post_init__(self) -> None:
        def fail(why: str) -> None:
            raise TypeError(f"family {self.name!r} is registered incompletely: {why}")

        if codes.FAMILY_NAMES[self.id] != self.name:
            fail(f"codes.FAMILY_NAMES[{self.id}] is {codes.FAMILY_NAMES[self.id]!r}")
        if self.frontier not in FRONTIER_KINDS:
            fail(f"frontier must be one of {FRONTIER_KINDS}")
        if self.frontier == "solve" and not (self.has_loss and self.initial_guess):
            fail("a solved frontier needs a loss and an initial guess for Newton")
        if self.frontier == "rule" and (self.allocate is None or self.has_loss):
            fail("a rule needs allocate() and has no loss of its own")
        if self.frontier == "budget_loss" and self.budget_loss is None:
            fail("budget_loss() is missing")
        if (self.closed_form or self.target_loss) and self.frontier != "solve":
            fail("closed forms and target-loss solves exist only for solved frontiers")
        if self.convergence_limit and self.frontier != "solve":
            fail("a convergence-gap limit needs a solved frontier")
        if bool(self.extra_columns) != (self.extra is not None):
            fail("extra_columns and extra() go together")
        if self.fit is not None and not self.has_loss:
            fail("a fit needs a loss")
        unknown = [n for n in (*self.positive, *self.may_be_inf, *(c for c, _ in self.choices),
                               *([self.unique_tokens_param] if self.unique_tokens_param else []),
                               *([self.irreducible] if self.irreducible else [])) if n not in self.param_names]
        if unknown:
            fail(f"{unknown[0]!r} is not one of its parameters")

    @property
    def allocates(self) -> bool:
        """Whether the frontier gives N and D (a solve or a rule), so that limits on them can apply."""
        return self.frontier != "budget_loss"

    def frontier_error(self, law_name: str, params: Mapping[str, float]) -> str | None:
        """Why a law of this family has no frontier (None when it has one)."""
        return None if self.no_frontier is None else self.no_frontier(law_name, params)

    def irreducible_loss(self, params: Mapping[str, float]) -> float:
        """The loss as N and D grow without limit: the ``irreducible`` parameter, or 0 for pure power laws."""
        return float(params[self.irreducible]) if self.irreducible else 0.0


# ---------------------------------------------------------------------- family-specific numpy pieces


def _exp_or_inf(x: float) -> float:
    """e^x, or inf where it is beyond float64's range (x > ~709.78) instead of an OverflowError."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _chinchilla_theta_params(theta: np.ndarray) -> dict[str, float]:
    """theta = (ln A, ln B, ln E, alpha, beta) -> parameters; a log beyond float64's range gives inf (and one
    far below it 0), which validate_params refuses."""
    a, b, e, al, be = (float(v) for v in theta)
    return {"E": _exp_or_inf(e), "A": _exp_or_inf(a), "B": _exp_or_inf(b), "alpha": al, "beta": be}


def _chinchilla_params_theta(p: Mapping[str, float]) -> np.ndarray:
    return np.array([math.log(p["A"]), math.log(p["B"]), math.log(p["E"]), p["alpha"], p["beta"]])


def _dc_theta_params(theta: np.ndarray) -> dict[str, float]:
    """theta = (ln A, ln B, ln E, alpha, beta, ln R_D*, ln R_N*) -> parameters, with U_D = inf: a fitted law is
    for unlimited data until ``--unique-tokens`` (or ``U_D``) says how much there is."""
    return {**_chinchilla_theta_params(theta[:5]), "R_D_star": _exp_or_inf(float(theta[5])),
            "R_N_star": _exp_or_inf(float(theta[6])), "U_D": math.inf}


def _dc_params_theta(p: Mapping[str, float]) -> np.ndarray:
    return np.append(_chinchilla_params_theta(p), [math.log(p["R_D_star"]), math.log(p["R_N_star"])])


def _dc_base_theta(p: Mapping[str, float]) -> dict[str, float]:
    """The start-grid axes a base law fixes: its E, A, B, alpha, beta as (a, b, e, alpha, beta)."""
    return dict(zip(("a", "b", "e", "alpha", "beta"), _chinchilla_params_theta(p).tolist(), strict=True))


def _kaplan_theta_params(theta: np.ndarray) -> dict[str, float]:
    """theta = (ln N_c, ln D_c, alpha_N, alpha_D) -> parameters. A refit that ran off to a log beyond
    float64's range gives N_c or D_c = inf, which validate_params refuses and the bootstrap counts as failed."""
    x1, x2, an, ad = (float(v) for v in theta)
    return {"N_c": _exp_or_inf(x1), "D_c": _exp_or_inf(x2), "alpha_N": an, "alpha_D": ad}


def _kaplan_params_theta(p: Mapping[str, float]) -> np.ndarray:
    return np.array([math.log(p["N_c"]), math.log(p["D_c"]), p["alpha_N"], p["alpha_D"]])


def _rule_allocate(P: np.ndarray, flops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """N = N_coef (C/C_unit)^N_exp, D = D_coef (C/C_unit)^D_exp; a coefficient of 0 means "from C = 6ND"."""
    k = codes.FLOPS_PER_PARAM_TOKEN
    t = flops / P[:, 4]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        nn = np.where(P[:, 0] > 0, P[:, 0] * t ** P[:, 1], np.nan)
        dd = np.where(P[:, 2] > 0, P[:, 2] * t ** P[:, 3], np.nan)
        nn = np.where(np.isnan(nn), flops / (k * dd), nn)
        dd = np.where(np.isnan(dd), flops / (k * nn), dd)
    return nn, dd


def _rule_inconsistent(p: Mapping[str, float]) -> str | None:
    """A rule with N_exp + D_exp = 1 (to 1e-9) and both coefficients given allocates N D = N_coef D_coef C/C_unit,
    so C = 6ND needs 6 N_coef D_coef / C_unit = 1 (to 1e-6, relative)."""
    if p["N_coef"] == 0.0 or p["D_coef"] == 0.0 or abs(p["N_exp"] + p["D_exp"] - 1.0) > 1e-9:
        return None
    ratio = codes.FLOPS_PER_PARAM_TOKEN * p["N_coef"] * p["D_coef"] / p["C_unit"]
    if abs(ratio - 1.0) <= 1e-6:
        return None
    return (f"N_exp + D_exp = 1 but 6 N_coef D_coef / C_unit = 6 * {p['N_coef']!r} * {p['D_coef']!r} / "
            f"{p['C_unit']!r} = {ratio:.9g}, not 1, so the rule's N and D do not spend C = 6ND (give one coefficient "
            "as 0 to take it from C = 6ND)")


def _single_budget_loss(P: np.ndarray, flops: np.ndarray) -> np.ndarray:
    """L = (X_c/C)^alpha with C in PF-days for the compute laws (variable 2, 3); NaN for laws of N or D."""
    with np.errstate(invalid="ignore", divide="ignore"):
        val = (P[:, 0] / (flops / codes.PF_DAY)) ** P[:, 1]
    return np.where(P[:, 2] >= 2, val, np.nan)


def _single_no_frontier(law_name: str, params: Mapping[str, float]) -> str | None:
    if params["variable"] < 2:
        what = "N" if params["variable"] == 0 else "D"
        return f"{law_name} is a law of {what} alone: it has no compute-optimal frontier (use it with `surface`)"
    return None


def _steps_extra(P: np.ndarray, loss: np.ndarray, tokens: np.ndarray) -> dict[str, np.ndarray]:
    """Kaplan's training-steps view: B_crit = B_*/L^(1/alpha_B) (Eq. 1.4) and S_min = D / B_crit."""
    batch = P[:, 4] / loss ** (1.0 / P[:, 5])
    return {"batch": batch, "steps": tokens / batch}


# The start grids: Hoffmann et al. 2022 App. D.2 for chinchilla; a comparable grid around Kaplan's Table 2 for
# kaplan.
CHINCHILLA_FIT = FitSpec(
    grid={"a": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0], "b": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
          "e": [-1.0, -0.5, 0.0, 0.5, 1.0], "alpha": [0.0, 0.5, 1.0, 1.5, 2.0], "beta": [0.0, 0.5, 1.0, 1.5, 2.0]},
    to_params=_chinchilla_theta_params, to_theta=_chinchilla_params_theta, methods=("lbfgs", "vp"))
KAPLAN_FIT = FitSpec(
    grid={"ln_N_c": [math.log(10.0**k) for k in (11, 12, 13, 14, 15)],
          "ln_D_c": [math.log(10.0**k) for k in (11, 12, 13, 14, 15)],
          "alpha_N": [0.05, 0.1, 0.2, 0.4], "alpha_D": [0.05, 0.1, 0.2, 0.4]},
    to_params=_kaplan_theta_params, to_theta=_kaplan_params_theta)
# data_constrained: the chinchilla axes without their 0 exponents (N_opt(u), hence N', needs alpha, beta > 0), and
# the decay constants over two decades around Muennighoff et al.'s R_D* = 15.4, R_N* = 5.3. A base law fixes the
# first five axes, leaving the 9 starts of the decay constants.
DATA_CONSTRAINED_FIT = FitSpec(
    grid={"a": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0], "b": [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
          "e": [-1.0, -0.5, 0.0, 0.5, 1.0], "alpha": [0.25, 0.5, 1.0, 1.5, 2.0], "beta": [0.25, 0.5, 1.0, 1.5, 2.0],
          "ln_R_D_star": [math.log(v) for v in (1.0, 10.0, 100.0)],
          "ln_R_N_star": [math.log(v) for v in (1.0, 10.0, 100.0)]},
    to_params=_dc_theta_params, to_theta=_dc_params_theta, base=("E", "A", "B", "alpha", "beta"),
    base_theta=_dc_base_theta)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(
        id=codes.CHINCHILLA,
        name="chinchilla",
        formula="L = E + A/N^alpha + B/D^beta",
        param_names=("E", "A", "B", "alpha", "beta"),
        positive=("A", "B", "alpha", "beta"),
        source=f"{_HOFFMANN2022}, Eq. 2 (Approach 3 parametric loss)",
        frontier="solve", closed_form=True, target_loss=True, has_loss=True,
        initial_guess="the closed form (Hoffmann Eq. 4)", fit=CHINCHILLA_FIT, irreducible="E",
        convergence_limit=True, flops_model=True,
    ),
    Family(
        id=codes.KAPLAN,
        name="kaplan",
        formula="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
        param_names=("N_c", "D_c", "alpha_N", "alpha_D"),
        positive=("N_c", "D_c", "alpha_N", "alpha_D"),
        source=f"{_KAPLAN2020}, Eq. 1.5 = 4.1",
        frontier="solve", closed_form=True, target_loss=True, has_loss=True,
        initial_guess="the closed form of Eq. 1.5 with C = 6ND", fit=KAPLAN_FIT, convergence_limit=True,
        flops_model=True,
    ),
    Family(
        id=codes.DATA_CONSTRAINED,
        name="data_constrained",
        formula="L = E + A/N'^alpha + B/D'^beta, D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*)), "
        "N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*))",
        param_names=("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star", "U_D"),
        positive=("A", "B", "alpha", "beta", "R_D_star", "R_N_star", "U_D"),
        source=f"{_MUENNIGHOFF2023}, effective data D' and parameters N' (appendix 'Derivation of Data-Constrained "
        "Scaling Laws'); U_D = unique tokens available (inf: unlimited, which is the chinchilla law)",
        frontier="solve", closed_form=False, target_loss=False, has_loss=True,
        initial_guess="the chinchilla optimum of its base constants", fit=DATA_CONSTRAINED_FIT,
        may_be_inf=("R_D_star", "R_N_star", "U_D"), unique_tokens_param="U_D", irreducible="E",
    ),
    Family(
        id=codes.KAPLAN_STEPS,
        name="kaplan_steps",
        formula="L = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S, B_crit = B_*/L^(1/alpha_B), D = B_crit S_min",
        param_names=("N_c", "S_c", "alpha_N", "alpha_S", "B_star", "alpha_B"),
        positive=("N_c", "S_c", "alpha_N", "alpha_S", "B_star", "alpha_B"),
        source=f"{_KAPLAN2020}, Eq. 1.6 = 5.6 with B_crit of Eq. 1.4 = 5.3 and S_min, C_min of Eq. 5.4-5.5; "
        "budgets are C_min = 6 N B_crit S_min",
        frontier="solve", closed_form=False, target_loss=False, has_loss=True,
        initial_guess="Kaplan's Table 6 frontier N = 1.3e9 (C_min/PF-day)^0.73", fit=None,
        extra_columns=("batch", "steps"), extra=_steps_extra, convergence_limit=True,
    ),
    Family(
        id=codes.ALLOCATION_RULE,
        name="allocation_rule",
        formula="N = N_coef (C/C_unit)^N_exp, D = D_coef (C/C_unit)^D_exp (a coefficient of 0: from C = 6ND)",
        param_names=("N_coef", "N_exp", "D_coef", "D_exp", "C_unit"),
        positive=("C_unit",),
        source="published power-law allocations that are not loss laws (DeepSeek LLM 2024, Llama 3 2024, Porian "
        "et al. 2024, Kaplan et al. 2020 Table 6: each preset cites its fit); no loss of their own: the frontier "
        "leaves the loss empty (null) unless a loss law is given",
        frontier="rule", closed_form=False, target_loss=False, has_loss=False, initial_guess="", fit=None,
        allocate=_rule_allocate, inconsistent=_rule_inconsistent,
    ),
    Family(
        id=codes.KAPLAN_SINGLE,
        name="kaplan_single",
        formula="L = (X_c/X)^alpha, X = N (variable 0), D (1), C_min (2) or C (3) in PF-days",
        param_names=("X_c", "alpha", "variable"),
        positive=("X_c", "alpha"),
        source=f"{_KAPLAN2020}, Eq. 1.1-1.3 and Table 5 (App. A) single-variable laws; the compute laws give the "
        "loss at a budget (no allocation), N and D laws feed surfaces",
        frontier="budget_loss", closed_form=False, target_loss=False, has_loss=True, initial_guess="", fit=None,
        choices=(("variable", (0.0, 1.0, 2.0, 3.0)),), budget_loss=_single_budget_loss,
        no_frontier=_single_no_frontier,
    ),
)}
if sorted(f.id for f in FAMILIES.values()) != list(range(len(codes.FAMILY_NAMES))):
    raise TypeError("every family code in codes.FAMILY_NAMES needs exactly one registry entry")


def family_of_code(code: int) -> Family:
    """The registry entry of a family code (``codes.FAMILY_NAMES``)."""
    return FAMILIES[codes.FAMILY_NAMES[code]]


@dataclass(frozen=True, repr=False)
class Law:
    """A loss law: a family, its parameters, and where they came from.

    ``params`` maps parameter name to value, in the family's order (read-only). ``preset`` is the preset it
    started from (or ``None`` for a law file written from scratch); ``overrides`` names what was changed
    from it.
    """

    family: str
    params: Mapping[str, float]
    preset: str | None = None
    citation: str = ""
    conventions: str = ""
    overrides: tuple[str, ...] = ()
    source_file: str | None = None
    _vector: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fam = FAMILIES[self.family]
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        vec = np.array([self.params[n] for n in fam.param_names], dtype=np.float64)
        vec.setflags(write=False)
        object.__setattr__(self, "_vector", vec)

    @property
    def spec(self) -> Family:
        """The family's registry entry: parameters and capabilities."""
        return FAMILIES[self.family]

    @property
    def family_id(self) -> int:
        """The family's code (``codes.FAMILY_NAMES``), what the kernels dispatch on."""
        return FAMILIES[self.family].id

    @property
    def vector(self) -> np.ndarray:
        """Parameters as a read-only float64 array in the family's order (what the kernels take)."""
        return self._vector

    @property
    def params_convention(self) -> str:
        """How the law counts N: ``"non_embedding"`` (Kaplan et al. 2020 §2.1 and the fits that follow them) or
        ``"total"`` (embeddings included, Hoffmann et al. 2022 App. F); a law not from a preset counts total."""
        preset = PRESETS.get(self.preset) if self.preset else None
        return preset.params_convention if preset is not None else "total"

    @property
    def name(self) -> str:
        """The preset (or law file, or family) with ``+NAME,...`` for overridden parameters."""
        base = self.preset or (Path(self.source_file).name if self.source_file else self.family)
        return base + ("+" + ",".join(self.overrides) if self.overrides else "")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"Law({self.name!r}, {self.family}: {params})"

    def loss(self, params: ArrayLike, tokens: ArrayLike) -> np.ndarray | float:
        """Loss (nats/token) at N=params, D=tokens; numpy broadcasting, for convenience and plots."""
        from .kernels.loss import loss_array

        n, d = np.broadcast_arrays(np.asarray(params, float), np.asarray(tokens, float))
        out = loss_array(self.family_id, self.vector, n.ravel(), d.ravel())
        return out.reshape(n.shape) if n.ndim else float(out[0])

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Law:
        """The inverse of ``to_dict`` (parameters validated again)."""
        return cls(family=d["family"], params=validate_params(d["family"], d["parameters"]), preset=d.get("preset"),
                   citation=d.get("citation", ""), conventions=d.get("conventions", ""),
                   overrides=tuple(d.get("overrides", ())))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; ``load_law_file`` reads it back."""
        return {
            "family": self.family,
            "preset": self.preset,
            "parameters": dict(self.params),
            "overrides": list(self.overrides),
            "citation": self.citation,
            "conventions": self.conventions,
            "params_convention": self.params_convention,
        }


def law_arrays(laws: Sequence[Law]) -> tuple[np.ndarray, np.ndarray]:
    """(family codes, parameter matrix padded with NaN) for a list of laws: what the batch kernels take."""
    width = max(law.vector.size for law in laws)
    P = np.full((len(laws), width), np.nan)
    for i, law in enumerate(laws):
        P[i, : law.vector.size] = law.vector
    return np.array([law.family_id for law in laws], dtype=np.int64), P


@dataclass(frozen=True)
class Preset:
    """A published law: its family, constants, citation (paper, equation or table, arXiv id) and conventions."""

    family: str
    params: dict[str, float]
    citation: str
    conventions: str
    params_convention: str = "total"  # how N is counted: "total" (embeddings included) or "non_embedding"


PRESETS: dict[str, Preset] = {
    "hoffmann2022": Preset(
        family="chinchilla",
        # Unrounded Approach-3 constants from the paper's TeX source, as reproduced in Besiroglu et al.'s
        # notebook (epoch-research/analyzing-chinchilla).
        params={"E": 1.6934, "A": 406.4, "B": 410.72, "alpha": 0.33917084, "beta": 0.2849083},
        citation=f"{_HOFFMANN2022}, Eq. 10 / Approach 3 (unrounded TeX-source values, as reproduced by "
        "Besiroglu et al. 2024, arXiv:2404.10102)",
        conventions="N = total parameters incl. embeddings; D = training tokens (MassiveText, SentencePiece); "
        "L = smoothed final training loss, nats/token; C = 6ND FLOPs",
    ),
    "hoffmann2022-printed": Preset(
        family="chinchilla",
        # Eq. 10 exactly as printed (rounded); kept for comparison: the rounding moves the optimum noticeably.
        params={"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
        citation=f"{_HOFFMANN2022}, Eq. 10 / Approach 3 as printed (rounded)",
        conventions="N = total parameters incl. embeddings; D = training tokens; L in nats/token; C = 6ND FLOPs",
    ),
    "besiroglu2024": Preset(
        family="chinchilla",
        # Epoch AI replication, the paper's estimates (bootstrap SEs 0.03, 124.58, 1293.23, 0.02, 0.02).
        params={"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
        citation="Besiroglu, Erdil, Barnett, You 2024, 'Chinchilla Scaling: A replication attempt', "
        "arXiv:2404.10102, refit of Hoffmann et al.'s Approach 3 (Eq. 2) to the data read from their Fig. 4 (the "
        "paper's estimates)",
        conventions="Refit of Hoffmann et al.'s 240 runs (Fig. 4 data); N = total parameters; "
        "L in nats/token; C = 6ND FLOPs",
    ),
    "kaplan2020": Preset(
        family="kaplan",
        # Table 2 fit of the joint L(N, D) form of Eq. 1.5.
        params={"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
        citation=f"{_KAPLAN2020}, Eq. 1.5 = 4.1 with Table 2 values",
        conventions="N = NON-embedding parameters; D = tokens (WebText2, GPT-2 BPE, n_vocab 50257); "
        "L = WebText2 test loss, nats/token, 1024-token context; C = 6ND FLOPs",
        params_convention="non_embedding",
    ),
    "kaplan2020-steps": Preset(
        family="kaplan_steps",
        # L(N, S_min) joint fit (Table 3) and the critical batch (Table 5: B_* = 2.1e8 tokens, alpha_B = 0.21;
        # Eq. 1.4).
        params={"N_c": 6.5e13, "S_c": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76, "B_star": 2.1e8, "alpha_B": 0.21},
        citation=f"{_KAPLAN2020}, Eq. 1.6 = 5.6 (Table 3 joint fit) with B_crit of Eq. 1.4 (Table 5)",
        conventions="N = NON-embedding parameters; tokens D = E_min = B_crit S_min; budgets are C_min = 6 N D "
        "(compute at B << B_crit, Eq. 5.5); the frontier also reports batch (B_crit) and steps (S_min); "
        "L = WebText2 test loss, nats/token",
        params_convention="non_embedding",
    ),
    "deepseek2024": Preset(
        family="allocation_rule",
        # M_opt = 0.1715 C^0.5243 (M = non-embedding FLOPs/token), D_opt = 5.8316 C^0.4757 (Eq. 4);
        # params reported as M/6 (6N = 72 n_layer d^2, Kaplan-style non-embedding).
        params={"N_coef": 0.1715 / 6.0, "N_exp": 0.5243, "D_coef": 5.8316, "D_exp": 0.4757, "C_unit": 1.0},
        citation="DeepSeek-AI 2024, 'DeepSeek LLM: Scaling Open-Source Language Models with Longtermism', "
        "arXiv:2401.02954, Eq. 4 (M_opt and D_opt fits)",
        conventions="params = M/6 with M = non-embedding FLOPs per token incl. attention; C = M D FLOPs",
        params_convention="non_embedding",
    ),
    "llama3_2024": Preset(
        family="allocation_rule",
        # D*(C) = 0.299 C^0.537 tokens, the unrounded Fig. 3 values (the text's 0.29/0.53 give 1.05e13 tokens
        # at 3.8e25 FLOPs, not the stated 16.55T); params = C/(6D).
        params={"N_coef": 0.0, "N_exp": 0.0, "D_coef": 0.299, "D_exp": 0.537, "C_unit": 1.0},
        citation="Llama Team 2024, 'The Llama 3 Herd of Models', arXiv:2407.21783, §3.2.1, Fig. 3 (unrounded "
        "legend values)",
        conventions="tokens from the fit, params = C/(6D); N = total parameters; C in FLOPs",
    ),
    "porian2024_tuned": Preset(
        family="allocation_rule",
        # Tuned RefinedWeb fit from the authors' released data (formll/resolving-scaling-law-discrepancies):
        # N* = 0.1189 C^0.4969, D* = 1.4014 C^0.5031.
        params={"N_coef": 0.1189, "N_exp": 0.4969, "D_coef": 1.4014, "D_exp": 0.5031, "C_unit": 1.0},
        citation="Porian et al. 2024, 'Resolving Discrepancies in Compute-Optimal Scaling of Language Models', "
        "arXiv:2406.19146, tuned RefinedWeb fit (from the authors' released data)",
        conventions="N includes the head, excludes embeddings; C in FLOPs",
        params_convention="non_embedding",
    ),
    "kaplan2020-table6": Preset(
        family="allocation_rule",
        # N = 1.3e9 C_min^0.73, D = 2e10 C_min^0.27, C_min in PF-days (Table 6).
        params={"N_coef": 1.3e9, "N_exp": 0.73, "D_coef": 2e10, "D_exp": 0.27, "C_unit": 8.64e19},
        citation=f"{_KAPLAN2020}, Table 6 / Eq. 1.7 empirical frontier",
        conventions="N = NON-embedding parameters; budgets are C_min (training at B << B_crit); D is one "
        "epoch of data at B_crit, so 6ND = 2 C_min (Eq. 6.7)",
        params_convention="non_embedding",
    ),
    "kaplan2020-N": Preset(
        family="kaplan_single",
        params={"X_c": 8.8e13, "alpha": 0.076, "variable": 0.0},  # Eq. 1.1, Table 5
        citation=f"{_KAPLAN2020}, Eq. 1.1 and Table 5 (converged, data-unlimited)",
        conventions="L(N) = (8.8e13/N)^0.076, N = NON-embedding parameters; a function of N only",
        params_convention="non_embedding",
    ),
    "kaplan2020-D": Preset(
        family="kaplan_single",
        params={"X_c": 5.4e13, "alpha": 0.095, "variable": 1.0},  # Eq. 1.2, Table 5
        citation=f"{_KAPLAN2020}, Eq. 1.2 and Table 5 (large model, early-stopped)",
        conventions="L(D) = (5.4e13/D)^0.095, D = tokens; a function of D only",
    ),
    "kaplan2020-Cmin": Preset(
        family="kaplan_single",
        params={"X_c": 3.1e8, "alpha": 0.050, "variable": 2.0},  # Eq. 1.3, Table 5 (Fig. 1 draws 2.3e8)
        citation=f"{_KAPLAN2020}, Eq. 1.3 and Table 5 (Fig. 1 draws C_c = 2.3e8)",
        conventions="L(C_min) = (3.1e8/C_min)^0.050, C_min in PF-days (budgets are C_min); loss only",
        params_convention="non_embedding",
    ),
    "kaplan2020-C": Preset(
        family="kaplan_single",
        params={"X_c": 1.6e7, "alpha": 0.057, "variable": 3.0},  # Eq. 3.3, Table 5: naive fixed-batch fit
        citation=f"{_KAPLAN2020}, Eq. 3.3 and Table 5 (fixed batch of 2^19 tokens)",
        conventions="L(C) = (1.6e7/C)^0.057, C in PF-days, the naive fixed-batch fit; loss only",
        params_convention="non_embedding",
    ),
    "muennighoff2023": Preset(
        family="data_constrained",
        # Released log-form base fit a, b, e, alpha, beta = 6.255414, 7.3049974, 0.6254804, 0.3526596,
        # 0.3526596 and the decay constants R_D* = 15.387756, R_N* = 5.309743 (huggingface/datablations README).
        params={"E": math.exp(0.6254804), "A": math.exp(6.255414), "B": math.exp(7.3049974), "alpha": 0.3526596,
                "beta": 0.3526596, "R_D_star": 15.387756, "R_N_star": 5.309743, "U_D": math.inf},
        citation=f"{_MUENNIGHOFF2023}, appendix 'Derivation of Data-Constrained Scaling Laws' (constants as released "
        "in huggingface/datablations)",
        conventions="N = total parameters; D = training tokens (repeats counted), U_D = unique tokens available "
        "(set with --unique-tokens; default unlimited); C4, GPT-2-style models; L in nats/token; C = 6ND FLOPs",
    ),
}
DEFAULT_LAW = "hoffmann2022"

# Other names of the presets: the paper's model or lab, or its first author (keys in lower case).
ALIASES: dict[str, str] = {
    "chinchilla": "hoffmann2022",
    "hoffmann": "hoffmann2022",
    "chinchilla-printed": "hoffmann2022-printed",
    "epoch": "besiroglu2024",
    "besiroglu": "besiroglu2024",
    "kaplan": "kaplan2020",
    "deepseek": "deepseek2024",
    "llama3": "llama3_2024",
    "porian": "porian2024_tuned",
    "muennighoff": "muennighoff2023",
}


def _name_key(name: object) -> str:
    """Law names compare without case, and with spaces and underscores read as hyphens (``Llama3 2024``)."""
    return str(name).strip().lower().replace(" ", "-").replace("_", "-")


_PRESET_KEYS = {_name_key(p): p for p in PRESETS}
for _alias, _preset in ALIASES.items():
    if _preset not in PRESETS or _name_key(_alias) in _PRESET_KEYS:
        raise TypeError(f"alias {_alias!r} must name a preset and differ from every other name")
    _PRESET_KEYS[_name_key(_alias)] = _preset
if len({_name_key(p) for p in PRESETS}) != len(PRESETS):
    raise TypeError("two presets' names differ only in case, spaces or underscores")


def preset_name(name: str) -> str:
    """The canonical name of the preset ``name`` means: a preset's name or an alias (``ALIASES``), read
    without regard to case; an unknown name is an error with a did-you-mean."""
    found = _PRESET_KEYS.get(_name_key(name))
    if found is None:
        raise ScalesweepError(f"unknown law {name!r}{law_suggestion(name)} (presets: {', '.join(PRESETS)}; "
                              f"aliases: {', '.join(ALIASES)})")
    return found


def validate_params(family: str, params: Mapping[str, Any]) -> dict[str, float]:
    """Check a full parameter set for ``family``; return it as floats. Messages name the parameter."""
    fam = FAMILIES[family]
    unknown = [k for k in params if k not in fam.param_names]
    if unknown:
        raise ScalesweepError(
            f"unknown parameter {unknown[0]!r} for family {family!r} (parameters: {', '.join(fam.param_names)})"
        )
    missing = [k for k in fam.param_names if k not in params]
    if missing:
        raise ScalesweepError(f"missing parameter {missing[0]!r} for family {family!r}")
    out = {}
    for name in fam.param_names:
        raw = params[name]
        if isinstance(raw, bool):
            raise ScalesweepError(f"parameter {name!r} must be a number, got {raw!r}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ScalesweepError(f"parameter {name!r} must be a number, got {raw!r}") from None
        if not math.isfinite(value) and not (value == math.inf and name in fam.may_be_inf):
            raise ScalesweepError(f"parameter {name!r} must be finite, got {value!r}")
        if name in fam.positive and value <= 0:
            raise ScalesweepError(f"parameter {name!r} must be > 0, got {value!r}")
        if value < 0:
            raise ScalesweepError(f"parameter {name!r} must be >= 0, got {value!r}")
        for cname, allowed in fam.choices:
            if name == cname and value not in allowed:
                raise ScalesweepError(f"parameter {name!r} must be one of {', '.join(f'{a:g}' for a in allowed)}, "
                                      f"got {value!r}")
        out[name] = value
    return out


def law_suggestion(name: object) -> str:
    """A did-you-mean for an unknown law: the closest preset or alias, or the presets of a family the name
    resembles."""
    hint = suggest(_name_key(name), [*PRESETS, *ALIASES])
    if hint:
        return hint
    import difflib

    fam = difflib.get_close_matches(str(name).lower(), list(FAMILIES), n=1, cutoff=0.6)
    if fam:
        members = [p for p, preset in PRESETS.items() if preset.family == fam[0]]
        return f"; {fam[0]!r} is a family, did you mean {' or '.join(map(repr, members))}?"
    return ""


def get_law(name: str | Law = DEFAULT_LAW, **overrides: float | str) -> Law:
    """A preset by name or alias (``ALIASES``, any case), with any parameter overridden:
    ``get_law("hoffmann2022", alpha=0.35)``, ``get_law("Chinchilla")``. A Law is returned as it is, or with the
    overrides applied."""
    if isinstance(name, Law):
        base = name
        if not overrides:
            return base
        params = {**base.params, **overrides}
        return Law(
            family=base.family,
            params=validate_params(base.family, params),
            preset=base.preset,
            citation=base.citation,
            conventions=base.conventions,
            overrides=tuple(dict.fromkeys(base.overrides + tuple(overrides))),
            source_file=base.source_file,
        )
    name = preset_name(name)
    p = PRESETS[name]
    return Law(
        family=p.family,
        params=validate_params(p.family, {**p.params, **overrides}),
        preset=name,
        citation=p.citation,
        conventions=p.conventions,
        overrides=tuple(overrides),
    )


def as_law(law: str | Law | None = None) -> Law:
    """A Law from a Law, a preset name, or None (the default law)."""
    return get_law(DEFAULT_LAW if law is None else law)


def as_laws(laws: str | Law | Sequence[str | Law] | None = None) -> list[Law]:
    """Laws from one law, a preset name, comma-separated names (``"hoffmann2022,kaplan2020"``) or a list."""
    if isinstance(laws, str) and "," in laws:
        parts = [x.strip() for x in laws.split(",")]
        if not all(parts):
            raise ScalesweepError(f"an empty name in the law list {laws!r}")
        laws = parts
    if laws is None or isinstance(laws, (str, Law)):
        return [as_law(laws)]
    if not laws:
        raise ScalesweepError("no laws given")
    out = [as_law(x) for x in laws]
    names = [x.name for x in out]
    dup = next((x for x in names if names.count(x) > 1), None)
    if dup is not None:
        raise ScalesweepError(f"law {dup!r} is given twice")
    return out


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["alpha=0.35", "E=1.7"]`` -> ``{"alpha": "0.35", ...}`` (values checked by validate_params)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ScalesweepError(f"--set expects NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def load_law_file(path: str | os.PathLike[str]) -> Law:
    """Read a law from JSON or TOML.

    The file has ``family`` and ``parameters`` (a full set), or ``preset`` plus optional ``parameters``
    that override it. Other keys (fit diagnostics, notes) are ignored. A full set is also checked for
    consistency (``Family.inconsistent``: an allocation rule must spend C = 6ND).
    """
    from . import storage

    source = storage.shown(path)
    try:
        text = storage.read_bytes(path)
    except OSError as exc:
        raise ScalesweepError(f"cannot read law file {source!r}: {exc.strerror or exc}") from None
    from .readers import json_loads, toml_loads

    where = f"law file {source!r}"
    try:
        if Path(source).suffix.lower() == ".toml":
            data = toml_loads(text.decode("utf-8"), where)
        else:
            data = json_loads(text, where)
    except ScalesweepError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "TOML" if Path(source).suffix.lower() == ".toml" else "JSON"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScalesweepError(f"law file {source!r} is not valid {kind}: {msg}") from None
    if not isinstance(data, dict):
        raise ScalesweepError(f"law file {source!r} must hold an object with 'family' and 'parameters'")
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise ScalesweepError(f"law file {source!r}: 'parameters' must be a table of name = value")
    for name, value in params.items():
        if isinstance(value, (list, dict)):
            kind = "a list" if isinstance(value, list) else "a table"
            raise ScalesweepError(f"law file {source!r}: parameter {name!r} must be a number, got {kind}")
    for key in ("preset", "family", "citation", "conventions"):
        if data.get(key) is not None and not isinstance(data[key], str):
            got = "a list" if isinstance(data[key], list) else "a table" if isinstance(data[key], dict) \
                else repr(data[key])
            raise ScalesweepError(f"law file {source!r}: {key!r} must be a string, got {got}")
    preset = data.get("preset")
    family = data.get("family")
    if preset is not None:
        try:
            preset = preset_name(preset)
        except ScalesweepError:
            raise ScalesweepError(f"{where}: unknown preset {preset!r}{law_suggestion(preset)}") from None
        if family is not None and family != PRESETS[preset].family:
            raise ScalesweepError(
                f"law file {source!r}: preset {preset!r} is family {PRESETS[preset].family!r}, not {family!r}"
            )
        law = get_law(preset)
        try:
            law = get_law(law, **params)
        except ScalesweepError as exc:
            raise ScalesweepError(f"law file {source!r}: {exc}") from None
        return Law(
            family=law.family, params=law.params, preset=preset, citation=law.citation,
            conventions=law.conventions, overrides=law.overrides, source_file=source,
        )
    if family is None:
        raise ScalesweepError(f"law file {source!r} needs 'family' (one of: {', '.join(FAMILIES)}) or 'preset'")
    if family not in FAMILIES:
        raise ScalesweepError(f"law file {source!r}: unknown family {family!r}{suggest(family, FAMILIES)} "
                              f"(families: {', '.join(FAMILIES)})")
    try:
        params = validate_params(family, params)
    except ScalesweepError as exc:
        raise ScalesweepError(f"law file {source!r}: {exc}") from None
    check = FAMILIES[family].inconsistent
    why = None if check is None else check(params)
    if why is not None:
        raise ScalesweepError(f"law file {source!r}: {why}")
    return Law(
        family=family,
        params=params,
        citation=str(data.get("citation", "")),
        conventions=str(data.get("conventions", "")),
        source_file=source,
    )


def resolve_law(law: str | None = None, law_file: str | os.PathLike[str] | None = None,
                overrides: Mapping[str, float | str] | None = None) -> Law:
    """What every command does with ``--law``, ``--law-file`` and ``--set``."""
    if law is not None and law_file is not None:
        raise ScalesweepError("give either --law or --law-file, not both")
    if law is not None and not str(law).strip():
        raise ScalesweepError(f"--law is empty: give a preset name (default {DEFAULT_LAW}; see `scalesweep laws`)")
    base = load_law_file(law_file) if law_file is not None else get_law(law or DEFAULT_LAW)
    return get_law(base, **(overrides or {}))


def answers(f: Family) -> list[str]:
    """What a family can be asked, from its registry entry."""
    out = ["surface"] if f.has_loss else []
    out.append({"solve": "frontier (closed form)" if f.closed_form else "frontier (Newton)",
                "rule": "frontier (allocation rule; loss from --loss-law)",
                "budget_loss": "loss at a budget"}[f.frontier])
    if f.target_loss:
        out.append("target-loss")
    if f.fit is not None:
        out.append("fit (" + ", ".join(f.fit.methods) + ")")
    return out


def describe() -> dict[str, Any]:
    """Families, presets and aliases as plain data (``scalesweep laws --json``)."""
    return {
        "default": DEFAULT_LAW,
        "families": {
            f.name: {"formula": f.formula, "parameters": list(f.param_names), "source": f.source,
                     "answers": answers(f)}
            for f in FAMILIES.values()
        },
        "presets": {
            name: {
                "family": p.family,
                "parameters": dict(p.params),
                "citation": p.citation,
                "conventions": p.conventions,
            }
            for name, p in PRESETS.items()
        },
        "aliases": dict(ALIASES),
    }
