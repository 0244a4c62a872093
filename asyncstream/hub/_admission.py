"""Admission of ingest requests: how many the hub works on at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ._errors import HubHTTPError
from ._metrics import HubMetrics


class IngestGate:
    """Admits at most ``limit`` ingest requests at once; the rest get 503 at once.

    Refusing (rather than queueing) keeps memory bounded by ``limit`` bodies and
    tells clients to back off via ``Retry-After``.
    """

    def __init__(self, limit: int, retry_after: float, metrics: HubMetrics) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"<IngestGate in_flight={self.in_flight}/{self.limit}>"

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        if self.in_flight >= self.limit:
            raise HubHTTPError(
                503,
                "overloaded",
                f"{self.in_flight} ingest requests in progress (limit {self.limit})",
                headers={"Retry-After": f"{self.retry_after:g}"},
            )
        self.in_flight += 1
        self._metrics.ingest_in_flight.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            self._metrics.ingest_in_flight.dec()
