"""scalesweep: compiled, high-throughput sweeps over neural scaling laws.

Public API::

    import scalesweep as ss
    law = ss.get_law("hoffmann2022", alpha=0.35)
    grid = ss.surface(law, params, tokens)           # 2-D loss array
    df = ss.frontier(law, flops, max_params=70e9)    # constrained compute-optimal allocation
    df = ss.frontier(law, [1e5], unit="gpu_hours", gpu="H100-SXM", gpus=512)   # real units
    df = ss.target_loss(law, [2.0], inference_tokens=1e13)                     # least compute for a loss
    ss.run_scenarios("sweep.yaml", "results.parquet")                          # bulk scenarios
    ss.Lookup("table.parquet").query([3e23])                                   # lookup tables

Names are imported on first use, so ``import scalesweep`` (and the CLI's start-up) loads no compiled code.
"""

from ._version import __version__  # noqa: F401  (the package version)

# name -> (module, attribute): what ``import scalesweep`` offers, loaded when first asked for.
_EXPORTS = {
    "frontier": ("api", "frontier"),
    "target_loss": ("api", "target_loss"),
    "surface": ("api", "surface"),
    "isoflop": ("api", "isoflop"),
    "write_surface": ("api", "write_surface"),
    "set_threads": ("api", "set_threads"),
    "ACTIVE_NAMES": ("codes", "ACTIVE_NAMES"),
    "Constraints": ("options", "Constraints"),
    "Hardware": ("options", "Hardware"),
    "Workload": ("options", "Workload"),
    "ScalesweepError": ("errors", "ScalesweepError"),
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


def __getattr__(name):
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


def __dir__():
    return sorted([*globals(), *_EXPORTS])
