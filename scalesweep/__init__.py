"""scalesweep: compiled, high-throughput sweeps over neural scaling laws.

Public API::

    import scalesweep as ss
    law = ss.get_law("hoffmann2022", alpha=0.35)
    grid = ss.surface(law, params, tokens)           # 2-D loss array
    df = ss.frontier(law, flops, max_params=70e9)    # constrained compute-optimal allocation
"""

__version__ = "0.1.0"

from .api import frontier, isoflop, set_threads, surface, target_loss, write_frontier, write_surface  # noqa: E402
from .constraints import ACTIVE_NAMES, Constraints  # noqa: E402
from .errors import ScalesweepError  # noqa: E402
from .laws import DEFAULT_LAW, FAMILIES, PRESETS, Law, get_law, load_law_file  # noqa: E402

__all__ = [
    "ACTIVE_NAMES", "Constraints", "DEFAULT_LAW", "FAMILIES", "Law", "PRESETS", "ScalesweepError", "frontier", "target_loss",
    "get_law", "isoflop", "load_law_file", "set_threads", "surface", "write_frontier", "write_surface",
]
