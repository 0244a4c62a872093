"""``asyncstream soak``: exactly-once under faults, hub kills and outages, for hours.

A tool for testing asyncstream itself; it needs the ``hub`` extra.
"""

from ._config import SoakConfig
from ._runner import run_soak

__all__ = ["SoakConfig", "run_soak"]
