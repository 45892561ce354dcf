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
"""

__version__ = "0.1.0"

from .api import frontier, isoflop, set_threads, surface, target_loss, write_frontier, write_surface  # noqa: E402
from .constraints import ACTIVE_NAMES, Constraints  # noqa: E402
from .errors import ScalesweepError  # noqa: E402
from .laws import DEFAULT_LAW, FAMILIES, PRESETS, Law, get_law, load_law_file  # noqa: E402
from .lookup import Lookup, build_lookup, write_lookup  # noqa: E402
from .scenarios import run as run_scenarios  # noqa: E402
from .studies import isoflop_sim, resolution  # noqa: E402
from .units import HARDWARE  # noqa: E402
from . import plot  # noqa: E402  (matplotlib is imported only when a plot is drawn)

__all__ = [
    "ACTIVE_NAMES",
    "DEFAULT_LAW",
    "FAMILIES",
    "HARDWARE",
    "PRESETS",
    "Constraints",
    "Law",
    "Lookup",
    "ScalesweepError",
    "build_lookup",
    "frontier",
    "get_law",
    "isoflop",
    "isoflop_sim",
    "load_law_file",
    "plot",
    "resolution",
    "run_scenarios",
    "set_threads",
    "surface",
    "target_loss",
    "write_frontier",
    "write_lookup",
    "write_surface",
]
