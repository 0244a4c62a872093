"""What became of a task's results: the delivery report, and a failed delivery.

:class:`Delivery` holds the one error a stream status ended in and does what
goes with it, once: every batch the hub did not acknowledge is spooled
(:mod:`._spool`) and an unavailable hub becomes the :class:`DeliveryError` that
says where; a hub rejection is raised as itself. A completion the hub refuses
because batches it had acknowledged are gone is a :class:`DeliveryError` naming
them. Nothing is discarded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NoReturn

from ._batch_keys import Batch
from ._batch_split import RefusedItem
from ._deadline import Deadline
from ._exceptions import (
    AsyncStreamError,
    DeliveryError,
    HubError,
    HubRejectedError,
    HubUnavailableError,
)
from ._hub_client import HubClient
from ._identity import TaskIdentity
from ._sender import BatchSender
from ._sender_stats import SenderStatistics
from ._spool import missing_seqs, short_seqs, spool_undelivered

logger = logging.getLogger("asyncstream.streamstatus")

__all__ = ["Delivery", "DeliveryReport", "lost_batches_error", "reraise"]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """How a task's results were streamed: results, batches, retried requests.

    ``duplicates`` counts batches the hub already held (a retry after a lost
    acknowledgement); they were counted once. ``last_error`` says why the last
    failed request failed: the hub's status and reason, or the connection error.
    """

    items: int
    batches: int
    retries: int
    duplicates: int = 0
    # Why the last failed request failed (status and reason, or the error).
    last_error: str | None = None
    # Results the hub refused for good, each with the hub's reason.
    refused: tuple[RefusedItem, ...] = ()

    def as_status(self) -> dict[str, int]:
        """The ``status["streamed"]`` entry of the payload."""
        return {"items": self.items, "batches": self.batches, "retries": self.retries}

    @classmethod
    def of(cls, stats: SenderStatistics) -> DeliveryReport:
        """The report of a sender's statistics."""
        return cls(
            items=stats.items_added,
            batches=stats.batches_cut,
            retries=stats.retries,
            duplicates=stats.duplicates,
            last_error=stats.last_error,
            refused=stats.refused,
        )


def reraise(err: AsyncStreamError, exc: HubError) -> NoReturn:
    """Raise ``err``, the error that ``exc`` became, from the handler of ``exc``.

    A hub rejection is raised as itself (with a note), an unavailable hub as the
    DeliveryError it became.
    """
    if err is exc:
        raise exc
    raise err from exc


def lost_batches_error(taskid: str, exc: HubRejectedError) -> DeliveryError | None:
    """The error of a completion refused for batches the hub no longer holds
    (a 409 listing ``missing``); ``None`` for any other rejection."""
    missing = missing_seqs(exc)
    if not missing:
        return None
    return DeliveryError(
        f"task {taskid!r}: the hub acknowledged but no longer holds"
        f" batches {short_seqs(missing)}; they cannot be re-sent from here",
        undelivered_seqs=missing,
    )


class Delivery:
    """The delivery of one task's batches: drained, completed, or failed once."""

    def __init__(
        self,
        sender: BatchSender,
        identity: TaskIdentity,
        *,
        spool_dir: str | None,
        hub_url: str,
        delivery_timeout: float,
    ) -> None:
        self._sender = sender
        self._identity = identity
        self._spool_dir = spool_dir
        self._hub_url = hub_url
        self._delivery_timeout = delivery_timeout
        self.error: AsyncStreamError | None = None

    def failed(
        self, exc: HubError, *, payload: dict[str, Any] | None = None
    ) -> AsyncStreamError:
        """Spool every unacknowledged batch (once); return the error to raise."""
        if self.error is None:
            self._sender.note_error(exc)
            self.error = spool_undelivered(
                exc,
                self._sender.undelivered(),
                identity=self._identity,
                batches_cut=self._sender.batches_cut,
                payload=payload,
                refused=self._sender.refused(),
                spool_dir=self._spool_dir,
                hub_url=self._hub_url,
                delivery_timeout=self._delivery_timeout,
            )
        return self.error

    def spool_late(self, batches: list[Batch]) -> None:
        """Spool batches cut after the delivery ended (results of work done
        before a run stopped, handed over late): a spool file of their own,
        beside the one :meth:`failed` wrote, written and logged as that one
        was. Never raises: it runs while the task's own error propagates."""
        if not batches:
            return
        try:
            spool_undelivered(
                HubUnavailableError("delivery had already failed"),
                batches,
                identity=self._identity,
                batches_cut=self._sender.batches_cut,
                payload=None,
                spool_dir=self._spool_dir,
                hub_url=self._hub_url,
                delivery_timeout=self._delivery_timeout,
            )
        except Exception:
            logger.exception("task %s: late results not spooled", self._identity.taskid)

    async def drain_after_error(self, owner: object) -> None:
        """Deliver what a failed task recorded; spool what cannot be delivered."""
        try:
            await self._sender.drain()
        except HubError as exc:
            self.failed(exc)
        except BaseException:
            self.failed(HubUnavailableError("interrupted"))
            raise
        else:
            logger.info("%r: delivered the results of a failed task", owner)

    async def complete(
        self, client: HubClient, payload: dict[str, Any], deadline: Deadline
    ) -> None:
        """Tell the hub the task is complete with ``payload``."""
        taskid = self._identity.taskid
        assert taskid is not None
        try:
            await client.complete_task(
                taskid,
                self._sender.batches_cut,
                payload,
                identity=self._identity,
                deadline=deadline,
            )
        except HubUnavailableError as exc:
            # Every batch is in: spool just the completion, for resend to post.
            raise self.failed(exc, payload=payload) from exc
        except HubRejectedError as exc:
            self.error = lost_batches_error(taskid, exc)
            if self.error is None:
                raise
            raise self.error from exc
