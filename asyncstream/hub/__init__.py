"""The embedded hub: a server speaking protocol v1, behind the ``hub`` extra.

``create_app(store, ...)`` builds the ASGI app; ``asyncstream hub serve`` runs it
under uvicorn; ``running_hub`` and ``HubProcess`` run it for
``asyncstream run``, tests and benchmarks. The client side of
asyncstream never imports this package.
"""

from ._app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONCURRENT_INGEST, create_app
from ._auth import check_bind_allowed
from ._embedded import HubProcess, RemoteFaultInjector, RunningHub, running_hub
from ._faults import FaultInjector
from ._memory import DiscardStore, MemoryStore
from ._sqlite import SqliteStore
from ._store import HubStore, ResultBatch, TaskSummary

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONCURRENT_INGEST",
    "DiscardStore",
    "FaultInjector",
    "HubProcess",
    "HubStore",
    "MemoryStore",
    "RemoteFaultInjector",
    "ResultBatch",
    "RunningHub",
    "SqliteStore",
    "TaskSummary",
    "check_bind_allowed",
    "create_app",
    "running_hub",
]
