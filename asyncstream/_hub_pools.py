"""One connection pool per hub per event loop in a process, shared by its users.

A task's status, its ``expand_paths`` and the Celery glue each speak to the same
hub through a :class:`~._hub_client.HubClient` of their own (each with its own
retry policy and timeouts), but those clients borrow one ``httpx.AsyncClient``
from here: the pool of the hub's settings on the running event loop. The pool is
opened by its first user and closed when its last user lets go; the task
invoker holds it for the whole task, so everything the task does shares it.

Pools are bound to the loop that opened their connections, so they are keyed by
loop. A forked child (a prefork Celery worker) forgets its parent's pools without
touching them: their sockets and loop belong to the parent.

Loading the certificate authorities into an SSL context costs tens of
milliseconds, which httpx pays for every client it builds: a pool to an
``http://`` hub gets a context that never loads them (and refuses any TLS peer,
so a redirect to ``https`` fails closed), and the verifying context of
``https://`` hubs is built once per process, when the first such pool opens.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import httpx

from ._config import HubSettings
from ._http_client import PoolClient

__all__ = [
    "DEFAULT_TIMEOUT",
    "acquire_pool",
    "open_pools",
    "release_pool",
    "ssl_context_for",
]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
POOL_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=32)

PoolKey = tuple[int, anyio.lowlevel.EventLoopToken, HubSettings]


@dataclass(slots=True)
class _Pool:
    client: httpx.AsyncClient
    users: int = 0


_lock = threading.Lock()
_pools: dict[PoolKey, _Pool] = {}


def _forget_after_fork() -> None:
    global _lock, _pools
    _lock = threading.Lock()
    _pools = {}


os.register_at_fork(after_in_child=_forget_after_fork)


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    # One per process: httpx shares a context between its connections, and so
    # may every pool of the process.
    return httpx.create_ssl_context(verify=verify)


@functools.cache
def _plain_context() -> ssl.SSLContext:
    # No certificate authorities loaded and verification on: cheap to build, and
    # any TLS handshake with it fails instead of trusting the peer.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def ssl_context_for(url: str, verify: bool = True) -> ssl.SSLContext:
    """The SSL context a client of ``url`` needs: a real one only for https."""
    if url.lower().startswith("https:"):
        return _tls_context(verify)
    return _plain_context()


def acquire_pool(settings: HubSettings) -> tuple[PoolKey, httpx.AsyncClient]:
    """The shared pool of ``settings`` on the running loop; opened if none is.

    Pair every call with :func:`release_pool` of the key it returns.
    """
    key: PoolKey = (os.getpid(), anyio.lowlevel.current_token(), settings)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = _Pool(
                PoolClient(
                    base_url=settings.url,
                    headers=settings.headers(),
                    timeout=DEFAULT_TIMEOUT,
                    verify=ssl_context_for(settings.url, settings.verify_tls),
                    limits=POOL_LIMITS,
                )
            )
        pool.users += 1
        return key, pool.client


async def release_pool(key: PoolKey) -> None:
    """Let go of a pool; the last user closes it."""
    with _lock:
        pool = _pools.get(key)
        if pool is None:  # forgotten after a fork
            return
        pool.users -= 1
        if pool.users > 0:
            return
        del _pools[key]
    # Closing must finish even when the releasing task is being cancelled.
    with anyio.CancelScope(shield=True):
        await pool.client.aclose()


def open_pools(settings: HubSettings | None = None) -> int:
    """How many pools are open in this process (to ``settings``' hub, if given)."""
    with _lock:
        return sum(
            1
            for (pid, _, hub), _pool in _pools.items()
            if pid == os.getpid() and (settings is None or hub == settings)
        )
