"""scalesweep: compiled, high-throughput sweeps over neural scaling laws.

Public API::

    import scalesweep as ss
    law = ss.get_law("hoffmann2022", alpha=0.35)     # or an alias, any case: ss.get_law("Chinchilla")
    grid = ss.surface(law, params, tokens)           # 2-D loss array
    df = ss.frontier(law, flops, max_params=70e9)    # constrained compute-optimal allocation
    df = ss.frontier(law, [1e5], unit="gpu_hours", gpu="H100-SXM", gpus=512)   # real units
    df = ss.target_loss(law, [2.0], inference_tokens=1e13)                     # least compute for a loss
    df = ss.compare([1e23, 1e25])                                              # every preset side by side
    df = ss.solve_scenarios({"law": ["besiroglu2024", "kaplan2020"], "flops": "1e21:1e25:5"})  # or a DataFrame
    ss.run_scenarios("sweep.yaml", "results.parquet")                          # bulk scenarios to a file
    res = ss.fit(params, tokens, loss, bootstrap=200)                          # fit your own runs
    bands = ss.frontier_bands(res.samples, "chinchilla", flops, [5, 50, 95])   # bootstrap bands
    ss.Lookup("table.parquet").query([3e23])                                   # lookup tables
    ss.provenance(df)                  # what a DataFrame answer carries in df.attrs["scalesweep"]

Names are imported on first use, so ``import scalesweep`` (and the CLI's start-up) loads no compiled code.
``ss.fit`` is the ``scalesweep.fit`` module, which is callable: calling it calls ``scalesweep.fit.fit``.
"""

from typing import Any

from ._version import __version__  # noqa: F401  (the package version)

# name -> (module, attribute): what ``import scalesweep`` offers, loaded when first asked for.
_EXPORTS = {
    "frontier": ("api", "frontier"),
    "target_loss": ("api", "target_loss"),
    "surface": ("api", "surface"),
    "isoflop": ("api", "isoflop"),
    "write_surface": ("api", "write_surface"),
    "set_threads": ("api", "set_threads"),
    "compare": ("api", "compare"),
    "loss_at": ("api", "loss_at"),
    "frontier_bands": ("api", "frontier_bands"),
    "solve_scenarios": ("api", "solve_scenarios"),
    "provenance": ("api", "provenance"),
    "fit": ("fit", None),  # a callable module: ss.fit(params, tokens, loss) is scalesweep.fit.fit
    "FitResult": ("fit", "FitResult"),
    "ACTIVE_NAMES": ("codes", "ACTIVE_NAMES"),
    "Constraints": ("options", "Constraints"),
    "Hardware": ("options", "Hardware"),
    "Workload": ("options", "Workload"),
    "Shape": ("options", "Shape"),
    "ScalesweepError": ("errors", "ScalesweepError"),
    "ALIASES": ("laws", "ALIASES"),
    "DEFAULT_LAW": ("laws", "DEFAULT_LAW"),
    "FAMILIES": ("laws", "FAMILIES"),
    "PRESETS": ("laws", "PRESETS"),
    "Law": ("laws", "Law"),
    "get_law": ("laws", "get_law"),
    "load_law_file": ("laws", "load_law_file"),
    "Lookup": ("lookup", "Lookup"),
    "build_lookup": ("lookup", "build_lookup"),
    "write_lookup": ("lookup", "write_lookup"),
    "run_scenarios": ("scenarios", "run"),
    "isoflop_sim": ("studies", "isoflop_sim"),
    "resolution": ("studies", "resolution"),
    "GPUS": ("units", "GPUS"),
    "plot": ("plot", None),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _EXPORTS:  # a submodule (scalesweep.api, ...), or nothing
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'scalesweep' has no attribute {name!r}") from None
    module, attr = _EXPORTS[name]
    mod = importlib.import_module(f".{module}", __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
