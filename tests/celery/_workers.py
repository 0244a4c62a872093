"""Brokers and worker processes for the Celery tests.

``choose_broker`` picks the broker (``ASYNCSTREAM_TEST_BROKER`` if set, else a
running RabbitMQ or Redis, else a Redis the tests start, else kombu's
``filesystem://``); ``CeleryWorker`` runs ``celery -A tests.celery.worker_app
worker`` as a process group of its own and waits until it answers a ping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Connection

ROOT = Path(__file__).resolve().parents[2]
APP_MODULE = "tests.celery.worker_app"
ENV_TEST_BROKER = "ASYNCSTREAM_TEST_BROKER"
ENV_TEST_BACKEND = "ASYNCSTREAM_TEST_BACKEND"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Broker:
    """The broker and result backend a test session uses, and where they came from."""

    url: str
    backend: str
    origin: str
    transport_options: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def kind(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def redelivers_on_connection_loss(self) -> bool:
        return self.kind in ("amqp", "pyamqp")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def reachable(url: str, timeout: float = 2.0) -> str | None:
    """None if a connection to ``url`` works, else why not."""
    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def backend_for(url: str) -> str:
    forced = os.environ.get(ENV_TEST_BACKEND)
    if forced:
        return forced
    if url.startswith(("redis://", "rediss://")):
        return url
    return "rpc://"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(workdir: Path) -> Broker | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = _free_port()
    process = subprocess.Popen(
        [
            *(binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""),
            *("--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        if reachable(url, 0.5) is None:
            return Broker(url, url, "a redis-server started by the tests", {}, process)
        time.sleep(0.1)
    process.kill()
    process.wait()
    return None


def _filesystem(workdir: Path) -> Broker:
    folder = workdir / "broker"
    for sub in ("queue", "processed"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    results = workdir / "results"
    results.mkdir(exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
        "control_folder": str(folder / "control"),
    }
    return Broker(
        "filesystem://",
        f"file://{results}",
        "kombu's filesystem:// transport (no broker reachable)",
        options,
    )


class BrokerUnreachable(RuntimeError):
    pass


def choose_broker(workdir: Path) -> Broker:
    """The session's broker: forced by the environment, running, started, or files."""
    forced = os.environ.get(ENV_TEST_BROKER)
    if forced == "filesystem://":
        return _filesystem(workdir)
    if forced:
        problem = reachable(forced)
        if problem is not None:
            raise BrokerUnreachable(
                f"{ENV_TEST_BROKER}={forced} is not reachable: {problem}"
            )
        return Broker(forced, backend_for(forced), f"${ENV_TEST_BROKER}")
    for url, name in ((RABBITMQ_URL, "RabbitMQ"), (REDIS_URL, "Redis")):
        if reachable(url, 1.0) is None:
            return Broker(url, backend_for(url), f"the running {name}")
    return _start_redis(workdir) or _filesystem(workdir)


class CeleryWorker:
    """``celery worker`` in a process group of its own, killed as a group."""

    def __init__(
        self,
        app: Celery,
        *,
        name: str,
        queues: list[str],
        pool: str = "prefork",
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        app_module: str | None = None,
    ) -> None:
        self.app = app
        self.app_module = app_module or APP_MODULE
        self.name = name
        self.queues = queues
        self.pool = pool
        self.concurrency = concurrency
        self.env = env or {}
        log_dir = log_dir or Path(tempfile.mkdtemp(prefix="asyncstream-worker-"))
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.nodename: str | None = None

    def __repr__(self) -> str:
        return f"<CeleryWorker {self.name} pool={self.pool} queues={self.queues}>"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            self.app_module,
            "worker",
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            f"--queues={','.join(self.queues)}",
            f"--hostname={self.name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ]

    def start(self, timeout: float = 45.0) -> float:
        """Start and wait until the worker answers a ping; return the seconds taken."""
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH")) if p
        )
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self!r} exited with {self.process.returncode}:\n{self.log()}"
                )
            for reply in self.app.control.ping(timeout=0.5) or []:
                for node in reply:
                    if node.startswith(self.name + "@"):
                        self.nodename = node
                        return time.monotonic() - began
        self.kill()
        raise TimeoutError(
            f"{self!r} did not answer a ping in {timeout}s:\n{self.log()}"
        )

    def log(self, tail: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _killpg(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: no shutdown at all."""
        self._killpg(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def terminate(self) -> None:
        """SIGTERM the main process only: Celery's warm shutdown."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown, then SIGKILL to the whole group whatever happened."""
        try:
            if self.running:
                self.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.wait(timeout)
        finally:
            self._killpg(signal.SIGKILL)
            if self.process is not None:
                self.process.wait()
