"""The hubs a bench run measures against, each in a process of its own.

* a **discard** hub: parses and validates result batches, keeps nothing;
* a **streams** hub (memory store, fault injection on) holding the input streams
  every reading row shares, with a 20 ms ``delay`` fault switched on for the
  latency rows;
* a **SQLite** hub started fresh, on a new database, for each measurement that
  writes to one, so that no row inherits another's database size.

The streams are fed once: a base stream, referenced as many times as a size
needs (``expand_paths`` reads each reference in order), plus a short one for the
remainder, so that a 10M-path run does not keep 10M paths in the hub.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from ..hub import HubProcess

API_KEY = "bench-key"
STREAM_BASE = 250_000  # paths in the base stream, the most a reference reads
FEED_CHUNK = 10_000
_QUIET = ("--log-level", "warning")


def _stop(hub: HubProcess) -> None:
    hub.stop()
    hub.log_path.unlink(missing_ok=True)


class BenchHubs:
    """Start the discard and streams hubs on entry; stop every hub on exit."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="asyncstream-bench-")
        self.discard = HubProcess(
            None, api_key=API_KEY, store="discard", extra_args=_QUIET
        )
        self.streams = HubProcess(
            None, api_key=API_KEY, store="memory", enable_faults=True, extra_args=_QUIET
        )
        self._base: dict[str, Any] | None = None
        self._base_size = 0
        self._remainders: dict[int, dict[str, Any]] = {}
        self._sqlite_runs = 0

    def __enter__(self) -> Self:
        try:
            self.discard.start()
            self.streams.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop both hubs and remove the temporary databases."""
        _stop(self.discard)
        _stop(self.streams)
        self._tmp.cleanup()

    @contextlib.contextmanager
    def fresh_sqlite(self) -> Iterator[HubProcess]:
        """A SQLite hub on a new database, stopped and deleted afterwards."""
        self._sqlite_runs += 1
        db = Path(self._tmp.name, f"hub-{self._sqlite_runs}.sqlite3")
        hub = HubProcess(db, api_key=API_KEY, extra_args=_QUIET)
        hub.start()
        try:
            yield hub
        finally:
            _stop(hub)
            for path in db.parent.glob(db.name + "*"):
                path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def page_latency(self, seconds: float) -> Iterator[None]:
        """Delay every stream page by ``seconds`` while the block runs."""
        if not seconds:
            yield
            return
        self.streams.faults.delay(seconds, path_prefix="/api/streams/")
        try:
            yield
        finally:
            self.streams.faults.reset()

    def prepare_streams(self, largest: int) -> None:
        """Feed the base stream, big enough for ``largest`` paths (at most
        :data:`STREAM_BASE`), before any reading row is timed."""
        self._base_size = min(largest, STREAM_BASE)
        self._base = self._feed(self._base_size)

    def references(self, n: int) -> list[dict[str, Any]]:
        """Stream references that add up to exactly ``n`` paths."""
        if self._base is None or not self._base_size:
            raise RuntimeError("prepare_streams() first")
        whole, rest = divmod(n, self._base_size)
        refs = [self._base] * whole
        if rest:
            if rest not in self._remainders:
                self._remainders[rest] = self._feed(rest)
            refs.append(self._remainders[rest])
        return refs

    def _feed(self, n: int) -> dict[str, Any]:
        headers = {"Authorization": f"Api-Key {API_KEY}"}
        with httpx.Client(base_url=self.streams.url, headers=headers, timeout=60) as c:
            stream = c.post("/api/streams/", json={}).raise_for_status().json()
            for start in range(0, n, FEED_CHUNK):
                paths = [
                    {"path": f"/mmfs1/data/bench-fileset/in{i % 97:02d}/file{i}.dat"}
                    for i in range(start, min(n, start + FEED_CHUNK))
                ]
                url = f"/api/streams/{stream['id']}/paths/"
                c.post(url, json={"paths": paths}).raise_for_status()
            c.post(f"/api/streams/{stream['id']}/close").raise_for_status()
        return {"stream": stream["url"], "count": n}
