"""Session fixtures for the Celery tests: broker, hub process, real workers.

Every process started here (hub, workers, a Redis of our own) is stopped by a
finalizer, also when a test fails; workers are killed as a process group.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery

from asyncstream.hub import HubProcess
from tests.celery import worker_app
from tests.celery._workers import Broker, BrokerUnreachable, CeleryWorker, choose_broker

SITE = "london"
API_KEY = "celery-test-key"


def _say(config: pytest.Config, line: str) -> None:
    """Write ``line`` to the test run's output, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="session")
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    try:
        chosen = choose_broker(tmp_path_factory.mktemp("broker"))
    except BrokerUnreachable as exc:
        pytest.fail(str(exc), pytrace=False)
    _say(
        request.config,
        f"\n[celery tests] broker {chosen.url} ({chosen.origin}),"
        f" result backend {chosen.backend}",
    )
    try:
        yield chosen
    finally:
        chosen.stop()


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(
        tmp_path_factory.mktemp("hub") / "hub.sqlite3",
        api_key=API_KEY,
        enable_faults=True,
    )
    # Generous: on a loaded machine, with coverage measuring it, the hub process
    # can take longer than the default to import and answer.
    process.start(timeout=60)
    try:
        yield process
    finally:
        process.kill()


class HubView:
    """Read what the hub holds for a task."""

    def __init__(self, hub: HubProcess) -> None:
        self.hub = hub
        self.client = httpx.Client(
            base_url=hub.url,
            headers={"Authorization": f"Api-Key {API_KEY}"},
            timeout=30,
        )

    def task(self, taskid: str) -> dict[str, Any] | None:
        response = self.client.get(f"/api/tasks/{taskid}/")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def results(self, taskid: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"page_size": 10_000}
            if cursor:
                params["cursor"] = cursor
            response = self.client.get(f"/api/tasks/{taskid}/results/", params=params)
            response.raise_for_status()
            page = response.json()
            found += page["results"]
            if (cursor := page["next"]) is None:
                return found

    def stream(self, paths: list[str]) -> dict[str, Any]:
        """A closed input stream holding ``paths``, as a task's stream reference."""
        created = self.client.post("/api/streams/", json={"paths": paths}).json()
        self.client.post(f"/api/streams/{created['id']}/close")
        return {"stream": created["url"], "count": len(paths)}


@pytest.fixture(scope="session")
def hub_view(hub: HubProcess) -> Iterator[HubView]:
    view = HubView(hub)
    try:
        yield view
    finally:
        view.client.close()


@pytest.fixture
def faults(hub: HubProcess) -> Iterator[Any]:
    try:
        yield hub.faults
    finally:
        hub.faults.reset()


@pytest.fixture
def eager_app(monkeypatch: pytest.MonkeyPatch, hub: HubProcess) -> Iterator[Celery]:
    """The workers' app without a broker, its hub given by its configuration."""
    monkeypatch.delenv("ASYNCSTREAM_HUB_URL", raising=False)
    monkeypatch.delenv("ASYNCSTREAM_API_KEY", raising=False)
    app = worker_app.app
    names = ("asyncstream_hub_url", "asyncstream_api_key")
    saved = {name: app.conf.get(name) for name in names}
    app.conf.update(asyncstream_hub_url=hub.url, asyncstream_api_key=API_KEY)
    try:
        yield app
    finally:
        app.conf.update(saved)


@pytest.fixture
def examples_app(broker: Broker) -> Any:
    """The Celery app of examples/, on the session's broker."""
    if broker.kind == "filesystem":
        pytest.skip("examples/celery_app.py takes no transport options (filesystem)")
    from examples import celery_app

    celery_app.app.conf.update(broker_url=broker.url, result_backend=broker.backend)
    return celery_app


@pytest.fixture(scope="session")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="session")
def celery_app(broker: Broker, hub: HubProcess) -> Iterator[Celery]:
    """The test process's copy of the workers' app, on the session's broker.

    The hub location goes into the app's configuration (lower-case names), the
    workers get it from their environment: both ways are exercised.
    """
    app = worker_app.app
    worker_app.configure(app, broker.url, broker.backend, broker.transport_options)
    app.conf.asyncstream_hub_url = hub.url
    app.conf.asyncstream_api_key = API_KEY
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="session")
def session_tag() -> str:
    return uuid.uuid4().hex[:8]


def queue_for(tag: str, role: str) -> str:
    """A real queue name of this session: ``london.t<tag>-<role>#custom``."""
    return f"{SITE}.t{tag}-{role}#custom"


WorkerFactory = Callable[..., CeleryWorker]


def _worker_env(
    broker: Broker, hub: HubProcess, spool_dir: Path, name: str, **extra: Any
) -> dict[str, str]:
    options = {**broker.transport_options, **extra.pop("transport_options", {})}
    return {
        worker_app.ENV_BROKER: broker.url,
        worker_app.ENV_BACKEND: broker.backend,
        worker_app.ENV_TRANSPORT_OPTIONS: json.dumps(options),
        worker_app.ENV_WORKER_NAME: name,
        "ASYNCSTREAM_HUB_URL": hub.url,
        "ASYNCSTREAM_API_KEY": API_KEY,
        "ASYNCSTREAM_SPOOL_DIR": str(spool_dir),
        **extra,
    }


@pytest.fixture(scope="session")
def session_workers(
    request: pytest.FixtureRequest,
    broker: Broker,
    hub: HubProcess,
    celery_app: Celery,
    spool_dir: Path,
    session_tag: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, CeleryWorker]]:
    """A prefork and a threads worker, each on its own queue and on a shared one."""
    logs = tmp_path_factory.mktemp("worker-logs")
    shared = queue_for(session_tag, "shared")
    workers = {
        pool: CeleryWorker(
            celery_app,
            name=f"{pool}-{session_tag}",
            queues=[queue_for(session_tag, pool), shared],
            pool=pool,
            concurrency=2,
            env=_worker_env(broker, hub, spool_dir, pool),
            log_dir=logs,
        )
        for pool in ("prefork", "threads")
    }
    try:
        for worker in workers.values():
            seconds = worker.start()
            _say(request.config, f"[celery tests] {worker!r} ready in {seconds:.1f}s")
        yield workers
    finally:
        for worker in workers.values():
            worker.stop()


@pytest.fixture
def start_worker(
    broker: Broker,
    hub: HubProcess,
    celery_app: Celery,
    spool_dir: Path,
    tmp_path: Path,
) -> Iterator[WorkerFactory]:
    """Start dedicated workers for one test; all are stopped after it."""
    started: list[CeleryWorker] = []

    def start(
        name: str,
        queues: list[str],
        *,
        pool: str = "prefork",
        concurrency: int = 1,
        app_module: str | None = None,
        **env: Any,
    ) -> CeleryWorker:
        worker = CeleryWorker(
            celery_app,
            name=name,
            queues=queues,
            pool=pool,
            concurrency=concurrency,
            env=_worker_env(broker, hub, spool_dir, name, **env),
            log_dir=tmp_path,
            app_module=app_module,
        )
        started.append(worker)
        worker.start()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop(timeout=10)
