"""Run a real hub for tests and benchmarks: in this event loop, or as a process.

``running_hub()`` serves the app with uvicorn on a free 127.0.0.1 port inside the
current event loop; ``HubProcess`` runs ``python -m asyncstream hub serve`` so a
test can SIGKILL it and restart it on the same database. Both can inject faults
(503s, dropped acknowledgements, delays) when asked to.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from .._hub_pools import ssl_context_for
from ._app import create_app
from ._dsn import ENV_HUB_DB
from ._faults import FAULTS_PATH, FaultInjector
from ._parent_death import die_with_parent
from ._serve import InProcessServer, StoreKind, free_port, loopback_socket, make_store
from ._serve import uvicorn_config as _uvicorn_config
from ._store import HubStore

__all__ = [
    "FaultInjector",
    "HubProcess",
    "RemoteFaultInjector",
    "RunningHub",
    "running_hub",
]


@dataclass(frozen=True, slots=True)
class RunningHub:
    """A hub served in this process: where it is and how to reach it."""

    url: str
    api_key: str | None
    store: HubStore
    fault_injector: FaultInjector | None
    app: FastAPI

    @property
    def faults(self) -> FaultInjector:
        """The hub's fault injector (an error if the hub runs without faults)."""
        if self.fault_injector is None:
            raise RuntimeError("this hub runs without fault injection (faults=False)")
        return self.fault_injector

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for this hub's key."""
        return {"Authorization": f"Api-Key {self.api_key}"} if self.api_key else {}


@asynccontextmanager
async def running_hub(
    *,
    store: StoreKind = "sqlite",
    db_path: str | os.PathLike[str] | None = None,
    api_key: str | None = "test-key",
    faults: bool = True,
    dsn: str | None = None,
    header_timeout: float | None = None,
    **app_options: Any,
) -> AsyncIterator[RunningHub]:
    """Serve a hub on a free loopback port in the current event loop.

    The SQLite store uses ``db_path``, or a database in a temporary directory that
    is removed afterwards; the PostgreSQL store uses ``dsn``. ``header_timeout``
    is the server's deadline for request headers; ``app_options`` go to
    :func:`create_app`.
    """
    with tempfile.TemporaryDirectory(prefix="asyncstream-hub-") as tmp:
        if store == "sqlite" and db_path is None:
            db_path = Path(tmp, "hub.sqlite3")
        hub_store = make_store(store, db_path, dsn=dsn)
        injector = FaultInjector() if faults else None
        app = create_app(
            hub_store,
            api_keys=[api_key] if api_key else [],
            faults=injector,
            **app_options,
        )
        with loopback_socket() as sock:
            port = sock.getsockname()[1]
            server = InProcessServer(
                _uvicorn_config(
                    app,
                    header_timeout=header_timeout,
                    log_config=None,
                    log_level="warning",
                )
            )
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                while not server.started:
                    if serving.done():
                        serving.result()  # startup failed: raise its error
                        raise RuntimeError("the hub stopped during startup")
                    await asyncio.sleep(0.005)
                yield RunningHub(
                    f"http://127.0.0.1:{port}", api_key, hub_store, injector, app
                )
            finally:
                app.state.hub.signals.wake_all()
                server.should_exit = True
                await serving


class RemoteFaultInjector:
    """The methods of :class:`FaultInjector`, driving a hub process over HTTP."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self._url = url.rstrip("/") + FAULTS_PATH
        self._headers = {"Authorization": f"Api-Key {api_key}"} if api_key else {}

    def _post(self, **body: Any) -> None:
        response = httpx.post(self._url, json=body, headers=self._headers, timeout=10)
        response.raise_for_status()

    def fail_next(
        self,
        n: int,
        *,
        status: int = 503,
        retry_after: float = 0.05,
        path_prefix: str | None = None,
    ) -> None:
        self._post(
            fault="fail_next",
            n=n,
            status=status,
            retry_after=retry_after,
            path_prefix=path_prefix,
        )

    def drop_after_commit(self, n: int, *, path_prefix: str | None = None) -> None:
        self._post(fault="drop_after_commit", n=n, path_prefix=path_prefix)

    def delay(
        self, seconds: float, *, n: int | None = None, path_prefix: str | None = None
    ) -> None:
        self._post(fault="delay", seconds=seconds, n=n, path_prefix=path_prefix)

    def reset(self) -> None:
        self._post(fault="reset")


class HubProcess:
    """``asyncstream hub serve`` in a child process, on a fixed loopback port.

    ``start()`` returns once ``/api/health/`` answers; ``kill()`` is SIGKILL (no
    shutdown at all), ``stop()`` is SIGTERM; ``restart()`` serves the same
    database on the same port again. The server's output goes to ``log_path``.
    The PostgreSQL store takes ``dsn`` (given by environment, not argument);
    ``workers`` > 1 serves the port with that many processes. On Linux the
    server is killed when the process that started it dies, even by SIGKILL
    (see ``_parent_death``).
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] | None,
        *,
        api_key: str | None = "test-key",
        store: StoreKind = "sqlite",
        enable_faults: bool = False,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        dsn: str | None = None,
        workers: int = 1,
    ) -> None:
        self.db_path = db_path
        self.dsn = dsn
        self.workers = workers
        self.api_key = api_key
        self.store = store
        self.enable_faults = enable_faults
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults = RemoteFaultInjector(self.url, api_key)
        self.extra_args = extra_args
        self.log_path = Path(
            tempfile.mkstemp(prefix="asyncstream-hub-", suffix=".log")[1]
        )
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        running = self._process is not None and self._process.poll() is None
        return f"<HubProcess {self.url} {'running' if running else 'stopped'}>"

    @property
    def pid(self) -> int | None:
        """The server process's id while it is started, else ``None``."""
        return None if self._process is None else self._process.pid

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "asyncstream", "hub", "serve"]
        command += [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--store",
            self.store,
        ]
        if self.db_path is not None:
            command += ["--db", str(self.db_path)]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        if self.enable_faults:
            command.append("--enable-faults")
        return command + list(self.extra_args)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers health checks.

        A hub that cannot start exits and is reported at once; the long
        ``timeout`` only serves a machine so loaded that starting is slow."""
        env = dict(os.environ)
        # The key goes by environment, so it does not show in the process list.
        env.pop("ASYNCSTREAM_API_KEY", None)
        if self.api_key:
            env["ASYNCSTREAM_API_KEY"] = self.api_key
        env.pop(ENV_HUB_DB, None)
        if self.dsn is not None:
            env[ENV_HUB_DB] = self.dsn
        with open(self.log_path, "ab") as log:
            # Several workers form a session of their own, so that SIGKILL
            # reaches them all and none is left holding the port.
            self._process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=self.workers > 1,
                preexec_fn=die_with_parent(),
            )
        deadline = time.monotonic() + timeout
        # One client for every probe: each new one would load the certificate
        # authorities again, tens of milliseconds apiece, for a plain-http URL.
        verify = ssl_context_for(self.url)
        with httpx.Client(timeout=1, verify=verify, trust_env=False) as probe:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    code, output = self._process.returncode, self.log_path.read_text()
                    raise RuntimeError(f"hub exited with {code}:\n{output}")
                try:
                    if probe.get(self.url + "/api/health/").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        self.kill()
        raise TimeoutError(
            f"hub did not answer within {timeout}s:\n{self.log_path.read_text()}"
        )

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if self.workers > 1 and sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            if self.workers > 1:
                os.killpg(process.pid, signal.SIGKILL)
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to flush or close anything."""
        self._signal(signal.SIGKILL, 10.0)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait for a graceful exit (SIGKILL after ``timeout``)."""
        self._signal(signal.SIGTERM, timeout)

    def restart(self) -> None:
        """Stop if running, then serve the same database on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> HubProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
