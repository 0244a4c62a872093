"""How many pages to read ahead, adapted to who is waiting: a decision without I/O.

A fixed depth is wrong one way or the other: two pages ahead cap a reader at
``2 x page_size`` paths per round trip (100k paths/s at 20 ms a page of 1000),
while a deep prefetch in front of a slow consumer only holds memory.
:class:`PrefetchDepth` watches the consumer ask for pages:

* it had to wait, and the budget was what held the requests back: the reader
  waits on the network, so the depth grows (``grow``) to what the round trip
  needs at the consumer's pace (a page's round trip over the time the consumer
  spent on its last page, plus the page it holds), at least double — one more
  page at a time took 14 pages to reach 16 from 2, and doubling three round
  trips, at 100 ms a page a large part of a short read;
* every page of the budget was already there, unread: the consumer is the
  bottleneck, so one page fewer is enough (``shrink``).

A task reading several streams reads them with one :class:`PrefetchDepth`: what
the first stream taught (its depth, its page bytes) holds for the next, which
starts where the last one settled instead of at two pages again.

The depth starts at the explicit ``prefetch`` setting when there is one, else at
two pages, and stays within ``floor .. ceiling``: the ceiling is that setting (a
cap, never exceeded), else :data:`MAX_DEPTH`, and never more pages than the
memory budget holds. A page waits for the consumer decoded (its bytes estimated
from its paths), or, from a hub that sends the page header, as the bytes of its
answer, five to six times smaller: only :data:`DECODED_PAGES` pages are ever
decoded at once, the one the consumer holds and the one it is handed next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

# Little's law: at 100 ms a page and 900k paths/s, 18 pages of 5000 are in
# flight, one held, a few ready, but a page's round trip is not the hub's
# latency: answers wait for the consumer's loop to read them, and at +100 ms
# they took 0.2-0.55 s (measured) with 24 pages, which ran dry every ~25 pages.
# The process's pool of connections to a hub is 32, shared with the sender
# (4 batches in flight by default): 28 pages use the rest, without making a
# batch wait for a page's connection, within the 32 cursors the hub announces.
MAX_DEPTH: Final = 28
# Pages decoded at once when pages wait as bytes: the consumer's, the next one.
DECODED_PAGES: Final = 2
# Memory the pages read ahead may hold, decoded, when nothing else is said.
DEFAULT_BUDGET_BYTES: Final = 32 * 1024 * 1024
# A decoded path object costs about this much beyond the characters of its path
# (a dict, a str, the page list's slot); the sample estimates the rest.
PATH_OVERHEAD_BYTES: Final = 300
START_DEPTH: Final = 2
_SAMPLE = 16  # paths of a page whose lengths estimate its bytes


def page_bytes(results: Sequence[Any]) -> int:
    """Roughly how many bytes a decoded page of path objects holds."""
    if not results:
        return 0
    sample = results[:: max(1, len(results) // _SAMPLE)][:_SAMPLE]
    chars = sum(len(item.get("path", "")) for item in sample) / len(sample)
    return int(len(results) * (PATH_OVERHEAD_BYTES + chars))


def pages_in_flight(round_trip: float | None, consumer_seconds: float | None) -> int:
    """The pages that keep a consumer busy for a whole round trip, plus the one
    it holds; 0 if either time is unknown."""
    if round_trip is None or consumer_seconds is None:
        return 0
    if consumer_seconds <= 0:
        return MAX_DEPTH  # no measurable work per page: as deep as allowed
    return min(MAX_DEPTH, math.ceil(round_trip / consumer_seconds) + 1)


@dataclass(slots=True)
class PrefetchDepth:
    """The number of pages the reader may hold or have in flight, adapted.

    ``cap`` is the explicit ``prefetch`` setting (``None``: adaptive up to
    :data:`MAX_DEPTH`); ``budget_bytes`` bounds pages x page bytes.
    """

    cap: int | None
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    depth: int = 0
    largest_page_bytes: int = 0  # decoded
    largest_waiting_bytes: int = 0  # as a page waits: decoded, or its body
    grown: int = 0
    shrunk: int = 0

    def __post_init__(self) -> None:
        if not self.depth:
            # An explicit setting is where the reading starts, as it always did.
            self.depth = min(self.cap or START_DEPTH, self.ceiling)

    @property
    def ceiling(self) -> int:
        """The deepest the budget and the cap allow now."""
        most = MAX_DEPTH if self.cap is None else self.cap
        decoded, waiting = self.largest_page_bytes, self.largest_waiting_bytes
        if waiting:
            # The pages decoded at once, and the others as they wait.
            held = min(DECODED_PAGES, most, self.budget_bytes // decoded)
            most = min(most, held + (self.budget_bytes - held * decoded) // waiting)
        return max(1, most)

    def page_read(self, results: Sequence[Any]) -> None:
        """Account for a decoded page's size; a bigger page may lower the ceiling."""
        size = page_bytes(results)
        self._account(size, size)

    def body_read(self, paths: int, body_bytes: int) -> None:
        """Account for a page that waits as the ``body_bytes`` of its answer, to
        be decoded into ``paths`` path objects when the consumer gets to it."""
        # Plain path objects cost PATH_OVERHEAD_BYTES beyond their text, which
        # is less than the body: an estimate on the safe side, before decoding.
        self._account(paths * PATH_OVERHEAD_BYTES + body_bytes, body_bytes)

    def _account(self, decoded: int, waiting: int) -> None:
        # Sizes only grow, so the ceiling only falls: the depth follows it down.
        self.largest_page_bytes = max(decoded, self.largest_page_bytes)
        self.largest_waiting_bytes = max(waiting, self.largest_waiting_bytes)
        self.depth = min(self.depth, self.ceiling)

    @property
    def floor(self) -> int:
        """The shallowest adaptive depth: below two pages nothing is read while
        the consumer works, and the depth would swing between one and two."""
        return min(START_DEPTH, self.ceiling)

    def consumer_asks(
        self,
        *,
        outstanding: int,
        buffered: int,
        round_trip: float | None = None,
        consumer_seconds: float | None = None,
    ) -> int:
        """The consumer asks for its next page: ``outstanding`` pages count against
        the budget (the one it held, those ready, those requested), ``buffered``
        of them are ready. ``round_trip``: the seconds the last page with paths
        took to arrive; ``consumer_seconds``: the seconds the consumer spent on
        the page it held. Returns the depth to use from now on."""
        if buffered == 0 and outstanding >= self.depth and self.depth < self.ceiling:
            # It must wait, and every page of the budget is in use: the reader
            # waits on the network.
            wanted = max(2 * self.depth, pages_in_flight(round_trip, consumer_seconds))
            self.depth = min(wanted, self.ceiling)
            self.grown += 1
        elif buffered and buffered >= self.depth - 1 and self.depth > self.floor:
            # Every page but the one it held is ready, unread: it sets the pace.
            self.depth -= 1
            self.shrunk += 1
        return self.depth
