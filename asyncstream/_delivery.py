"""What became of a task's results: the delivery report, and the errors of a
delivery that failed.

A hub rejection is raised as itself; an unavailable hub becomes the
:class:`DeliveryError` that says where the undelivered batches were spooled
(:mod:`._spool`); a completion the hub refuses because batches it had
acknowledged are gone is a :class:`DeliveryError` naming them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from ._exceptions import AsyncStreamError, DeliveryError, HubError, HubRejectedError
from ._sender_stats import SenderStatistics
from ._spool import missing_seqs, short_seqs

__all__ = ["DeliveryReport", "lost_batches_error", "reraise"]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """How a task's results were streamed: results, batches, retried requests.

    ``duplicates`` counts batches the hub already held (a retry after a lost
    acknowledgement); they were counted once.
    """

    items: int
    batches: int
    retries: int
    duplicates: int = 0

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
