"""What every route of one hub app shares."""

from __future__ import annotations

from dataclasses import dataclass

from ._admission import IngestGate
from ._faults import FaultInjector
from ._metrics import HubMetrics
from ._signals import StreamSignals
from ._store import HubStore


@dataclass(slots=True)
class HubContext:
    """What the routes share; available as ``app.state.hub``."""

    store: HubStore
    metrics: HubMetrics
    gate: IngestGate
    signals: StreamSignals
    faults: FaultInjector | None
    max_page_size: int
