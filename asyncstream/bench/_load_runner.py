"""Run a load test against a hub: worker processes, then the hub's own account.

A run has two phases against the same hub: one sender alone (the baseline rate),
then ``processes x tasks`` senders at once. Each phase starts every worker
process, waits until all have imported and said ready, then lets them go at the
same instant. Afterwards the hub's job summary says what it stored for each task
and its ``/metrics`` how many requests it refused as overloaded.

The hub is the user's own (a URL) or one started for the run (:func:`own_hub`):
SQLite on a temporary file, or PostgreSQL in a schema made for the run and
dropped at the end, served by one or more hub processes.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from ._load import LoadShape, PhaseFigures, TaskOutcome, phase_figures, rejections

Echo = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LoadTarget:
    """The hub to load: its URL and key."""

    url: str
    api_key: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Api-Key {self.api_key}"} if self.api_key else {}


@dataclass(frozen=True, slots=True)
class LoadConfig:
    shape: LoadShape
    deadline: float = 300.0
    mode: str = "threads"
    baseline: bool = True
    nice: int = 0


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    baseline: PhaseFigures | None
    contention: PhaseFigures


@dataclass(frozen=True, slots=True)
class OwnHub:
    """The hub a load run starts itself: its store, processes and database."""

    target: LoadTarget
    store: str
    workers: int
    # The DSN of the run's own schema (PostgreSQL only): what the bare COPY
    # baseline writes into, beside the hub's rows.
    dsn: str | None = None

    @property
    def label(self) -> str:
        processes = f"{self.workers} hub process{'es' if self.workers > 1 else ''}"
        where = "PostgreSQL" if self.store == "postgres" else "SQLite"
        return f"{where}, {processes}"


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` with ``schema`` as every session's search path."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def postgres_run_schema(server: str) -> Iterator[str]:
    """A schema of its own on ``server`` for one run, dropped at the end;
    yields a DSN whose tables live in it."""
    import psycopg

    from ..hub._dsn import redact_dsn

    schema = f"asyncstream_load_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"cannot reach PostgreSQL at {redact_dsn(server)}: {exc}"
        ) from exc
    try:
        yield with_search_path(server, schema)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def _serve(
    db_path: Path | None, store: str, dsn: str | None, workers: int
) -> Iterator[LoadTarget]:
    from ..hub import HubProcess

    hub = HubProcess(
        db_path,
        api_key=secrets.token_hex(16),
        store="postgres" if store == "postgres" else "sqlite",
        dsn=dsn,
        workers=workers,
        extra_args=("--log-level", "warning"),
    )
    hub.start(timeout=60.0)
    try:
        yield LoadTarget(hub.url, hub.api_key)
    finally:
        hub.stop()
        hub.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def own_hub(store: str, workers: int = 1, dsn: str | None = None) -> Iterator[OwnHub]:
    """A hub in processes of its own, on a database made for the run and removed
    afterwards: a temporary SQLite file, or a fresh schema on the PostgreSQL
    server ``dsn``. SQLite is one process on one file: ``workers`` must be 1."""
    if store == "sqlite":
        if workers != 1:
            raise ValueError(
                f"a SQLite hub runs as one process, not {workers}:"
                " several hub processes need the PostgreSQL store"
            )
        with (
            tempfile.TemporaryDirectory(prefix="asyncstream-load-hub-") as tmp,
            _serve(Path(tmp, "hub.sqlite3"), store, None, 1) as target,
        ):
            yield OwnHub(target, store, 1)
        return
    if store != "postgres":
        raise ValueError(f"unknown store {store!r}: sqlite or postgres")
    if dsn is None:
        raise ValueError("the PostgreSQL store needs a DSN")
    with (
        postgres_run_schema(dsn) as schema_dsn,
        _serve(None, store, schema_dsn, workers) as target,
    ):
        yield OwnHub(target, store, workers, schema_dsn)


def _read_lines(
    stream: IO[str], into: list[dict[str, Any]], lock: threading.Lock
) -> None:
    for line in stream:
        if line.strip():
            message = json.loads(line)
            with lock:
                message["_at"] = time.monotonic()
                into.append(message)


def _start_workers(
    target: LoadTarget, spec: dict[str, Any], processes: int, nice: int
) -> list[subprocess.Popen[str]]:
    workers = []
    for p in range(processes):
        worker = subprocess.Popen(
            [sys.executable, "-m", "asyncstream.bench._load_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdin is not None
        worker_spec = {**spec, "prefix": f"{spec['jobid']}-p{p:02d}", "nice": nice}
        worker.stdin.write(
            json.dumps({**worker_spec, "url": target.url, "api_key": target.api_key})
            + "\n"
        )
        worker.stdin.flush()
        workers.append(worker)
    return workers


def _wait_ready(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"a load worker failed to start (said {line!r})")


def _hub_tasks(target: LoadTarget, jobid: str) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=target.url, headers=target.headers, timeout=60) as c:
        response = c.get(f"/api/jobs/{jobid}/")
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        return {task["id"]: task for task in response.json()["tasks"]}


def _overloaded(target: LoadTarget) -> int | None:
    try:
        response = httpx.get(
            target.url + "/metrics", headers=target.headers, timeout=30
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return rejections(response.text)


def run_phase(
    target: LoadTarget, shape: LoadShape, config: LoadConfig, jobid: str, spool: str
) -> PhaseFigures:
    """Run ``shape`` against the hub at once; return the figures."""
    spec = {
        "jobid": jobid,
        "tasks": shape.tasks,
        "results": shape.results,
        "deadline": config.deadline,
        "mode": config.mode,
        "spool_dir": spool,
    }
    refused_before = _overloaded(target)
    workers = _start_workers(target, spec, shape.processes, config.nice)
    lines: list[dict[str, Any]] = []
    lock = threading.Lock()
    try:
        _wait_ready(workers)
        readers = []
        for worker in workers:
            assert worker.stdout is not None
            reader = threading.Thread(
                target=_read_lines, args=(worker.stdout, lines, lock), daemon=True
            )
            reader.start()
            readers.append(reader)
        start = time.monotonic()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.close()
        # No wall-clock limit: the delivery deadline bounds each batch, not a
        # task, so a task that keeps making progress may run longer than it.
        for worker in workers:
            worker.wait()
        for reader in readers:
            reader.join(10)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    tasks = [line for line in lines if "task" in line]
    wall = max((line["_at"] for line in tasks), default=start) - start
    stored = _hub_tasks(target, jobid)
    refused_after = _overloaded(target)
    refused = (
        None
        if refused_before is None or refused_after is None
        else refused_after - refused_before
    )
    outcomes = [TaskOutcome.from_worker(t, stored.get(t["task"])) for t in tasks]
    return phase_figures(shape, outcomes, wall, overloaded=refused)


def run_load(target: LoadTarget, config: LoadConfig, echo: Echo) -> LoadOutcome:
    """The single-sender baseline (unless switched off), then the contention."""
    run_id = f"load-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="asyncstream-load-spool-") as spool:
        baseline = None
        if config.baseline:
            one = LoadShape(1, 1, config.shape.results)
            echo(f"single sender: {one} results ...")
            baseline = run_phase(target, one, config, f"{run_id}-single", spool)
        echo(f"contention: {config.shape} results ...")
        contention = run_phase(target, config.shape, config, run_id, spool)
    return LoadOutcome(baseline, contention)
