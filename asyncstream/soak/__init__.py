"""``asyncstream soak``: exactly-once under faults, hub kills and outages, for hours.

A tool for testing asyncstream itself: it runs from a source checkout with the
``hub`` extra, and the wheel leaves it out.
"""

from ._config import SoakConfig
from ._runner import run_soak

__all__ = ["SoakConfig", "run_soak"]
