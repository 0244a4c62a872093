"""What a stream status is made of, built from its options and checked once.

:class:`StreamOptions` are the keyword-only knobs of both stream classes (the
async :class:`~._stream_results.AsyncStreamTaskResults` and the sync
``StreamTaskResults``); :func:`build_parts` turns them into the task's header,
hub settings, client, batch sender and delivery, each option checked by the part
that owns it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import anyio
import httpx

from ._config import HubSettings
from ._delivery import Delivery
from ._exceptions import InvalidInputError
from ._hub_client import HubClient
from ._identity import TaskIdentity
from ._payload import TaskHeader
from ._result_buffer import DEFAULT_MAX_BATCH_BYTES
from ._retry import Clock, RetryPolicy, Sleep
from ._send_budget import DEFAULT_MAX_PENDING_BYTES
from ._sender import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DELIVERY_TIMEOUT,
    DEFAULT_LINGER,
    DEFAULT_MAX_INFLIGHT_BATCHES,
    DEFAULT_MAX_PENDING_ITEMS,
    BatchSender,
)

__all__ = ["StreamOptions", "StreamParts", "build_parts"]


class StreamOptions(TypedDict, total=False):
    """The keyword-only knobs both stream classes take (defaults in build_parts)."""

    hub_url: str | None
    api_key: str | None
    verify_tls: bool | None
    client: httpx.AsyncClient | None
    transport: httpx.AsyncBaseTransport | None
    batch_size: int
    linger: float
    max_pending_items: int
    max_inflight_batches: int
    max_batch_bytes: int
    max_pending_bytes: int
    adaptive_batch_size: bool
    delivery_timeout: float
    add_timeout: float | None
    request_timeout: float
    spool_dir: str | None
    retry_policy: RetryPolicy | None
    started: datetime | None
    clock: Clock
    sleep: Sleep


@dataclass(frozen=True, slots=True)
class StreamParts:
    """The parts of one stream status, and the options they were built with."""

    header: TaskHeader
    identity: TaskIdentity
    settings: HubSettings
    client: HubClient
    sender: BatchSender
    delivery: Delivery
    batch_size: int
    linger: float
    max_batch_bytes: int
    delivery_timeout: float
    clock: Clock


def build_parts(
    taskname: str,
    input_paths: list[Any],
    jobid: Any,
    queue_name: str | None,
    taskid: str,
    *,
    hub_url: str | None = None,
    api_key: str | None = None,
    verify_tls: bool | None = None,
    client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    linger: float = DEFAULT_LINGER,
    max_pending_items: int = DEFAULT_MAX_PENDING_ITEMS,
    max_inflight_batches: int = DEFAULT_MAX_INFLIGHT_BATCHES,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    adaptive_batch_size: bool = False,
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
    add_timeout: float | None = None,
    request_timeout: float = 30.0,
    spool_dir: str | None = None,
    retry_policy: RetryPolicy | None = None,
    started: datetime | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = anyio.sleep,
) -> StreamParts:
    """Build and check every part of a stream status from its arguments."""
    header = TaskHeader.build(
        taskname, input_paths, jobid, queue_name, taskid=taskid, started=started
    )
    if not isinstance(taskid, str) or not taskid:
        raise InvalidInputError(f"taskid must be a non-empty string, got {taskid!r}")
    if hub_url is None and client is not None and str(client.base_url):
        hub_url = str(client.base_url)
    settings = HubSettings.resolve(
        hub_url=hub_url, api_key=api_key, verify_tls=verify_tls
    )
    hub = HubClient(
        settings,
        client=client,
        transport=transport,
        timeout=httpx.Timeout(request_timeout, connect=min(5.0, request_timeout)),
        retry_policy=retry_policy,
        sleep=sleep,
        clock=clock,
    )
    sender = BatchSender(
        hub,
        header.identity,
        batch_size=batch_size,
        linger=linger,
        max_pending_items=max_pending_items,
        max_inflight_batches=max_inflight_batches,
        max_batch_bytes=max_batch_bytes,
        max_pending_bytes=max_pending_bytes,
        adaptive_batch_size=adaptive_batch_size,
        delivery_timeout=delivery_timeout,
        add_timeout=add_timeout,
        clock=clock,
        sleep=sleep,
    )
    delivery = Delivery(
        sender,
        header.identity,
        spool_dir=spool_dir,
        hub_url=settings.url,
        delivery_timeout=delivery_timeout,
    )
    return StreamParts(
        header=header,
        identity=header.identity,
        settings=settings,
        client=hub,
        sender=sender,
        delivery=delivery,
        batch_size=batch_size,
        linger=linger,
        max_batch_bytes=max_batch_bytes,
        delivery_timeout=delivery_timeout,
        clock=clock,
    )
