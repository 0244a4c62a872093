"""One page of an input stream: checked against protocol v1, decoded when needed.

A page answer is JSON: ``results`` (the path objects), ``next``, ``count``,
``closed`` and ``ahead`` (the cursors of full pages further on). Decoded, a page
of path objects is five to six times larger than its body, so a hub that repeats
what the reader needs to go on (everything but the path objects) in the
``Stream-Page`` header of the answer (the ``page header`` extension) lets the
reader keep the body as bytes until its consumer gets to the page
(:func:`decode_results`), and hold many more pages ahead within one memory
budget. An answer without the header is decoded at once, as it always was.

:func:`fetch_page` requests one page; :func:`parse_page` checks a decoded answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

import httpx
import orjson

from ._deadline import Deadline
from ._exceptions import HubProtocolError
from ._hub_answers import check_response
from ._hub_connection import HubConnection
from ._paths import PathObject
from ._retry import OnRetry

# The header of a page answer that repeats the page's fields, ``results`` as the
# number of paths: ``{"results": 5000, "next": ..., "count": ..., "closed":
# ..., "ahead": [...]}`` as JSON (ASCII: cursors are opaque URL-safe text).
PAGE_HEADER: Final = "Stream-Page"

# At most this many ``ahead`` cursors of one answer are kept: the budget of pages
# in flight is far smaller, and a misbehaving hub cannot grow the list unbounded.
MAX_AHEAD: Final = 32


@dataclass(frozen=True, slots=True)
class Page:
    """One validated page of an input stream.

    ``results`` is ``None`` while the page is still its ``body``, the bytes of
    the answer, to be decoded when the consumer gets to it; ``size`` is the
    number of paths either way."""

    results: list[PathObject] | None
    next: str | None
    count: int
    closed: bool
    ahead: tuple[str, ...] = ()
    body: bytes | None = None
    size: int = -1

    def __post_init__(self) -> None:
        if self.size < 0:
            object.__setattr__(self, "size", len(self.results or ()))


@dataclass(frozen=True, slots=True)
class PageAnswer:
    """A page answer with the page header: its fields, and the body undecoded."""

    fields: Any
    body: bytes


async def fetch_page(
    client: HubConnection,
    url: str,
    cursor: str | None,
    *,
    page_size: int,
    wait: float,
    deadline: Deadline,
    on_retry: OnRetry,
) -> Page:
    """Request the page at ``cursor`` of the stream at ``url``, retried until
    ``deadline``, long-polled ``wait`` seconds on an open stream."""
    answer = await client.request(
        "GET",
        url,
        params=page_query(cursor, page_size, wait),
        deadline=deadline,
        on_retry=on_retry,
        decode=read_page_answer,
    )
    return parse_page_answer(answer, url)


def page_query(
    cursor: str | None, page_size: int, wait: float | None
) -> dict[str, Any]:
    """The query of a page request: no cursor for the first page, no wait for none."""
    params: dict[str, Any] = {"page_size": page_size}
    if cursor:
        params["cursor"] = cursor
    if wait:
        params["wait"] = wait
    return params


def read_page_answer(response: httpx.Response) -> Any:
    """Decode a page answer as the hub client does any answer, except that one
    with the page header is kept as bytes (a :class:`PageAnswer`)."""
    header = response.headers.get(PAGE_HEADER)
    if header is None or not response.is_success:
        return check_response(response)
    try:
        fields = json.loads(header)
    except ValueError:
        fields = header  # reported by parse_page_answer, with the stream's URL
    return PageAnswer(fields, response.content)


def parse_page_answer(answer: Any, url: str) -> Page:
    """The page of a stream page answer, decoded (a dict) or not (:class:`PageAnswer`).

    Raises :class:`HubProtocolError` on an answer outside the protocol."""
    if not isinstance(answer, PageAnswer):
        if not isinstance(answer, dict):
            raise HubProtocolError(
                f"stream page from {url}: expected a JSON object, got {answer!r:.200}"
            )
        return parse_page(answer, url)
    fields = answer.fields
    size = fields.get("results") if isinstance(fields, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise HubProtocolError(
            f"stream page from {url}: the {PAGE_HEADER} header must be a JSON object"
            f" with 'results' a number of paths, got {fields!r:.200}"
        )
    page = parse_page({**fields, "results": []}, url, size=size)
    return Page(None, page.next, page.count, page.closed, page.ahead, answer.body, size)


def decode_results(page: Page, url: str) -> list[PathObject]:
    """The path objects of a page kept as its body, checked against its header."""
    if page.results is not None:
        return page.results
    assert page.body is not None
    try:
        answer = orjson.loads(page.body)
    except orjson.JSONDecodeError:
        # orjson refuses the \udcXX escapes of a file name's bytes that are not
        # UTF-8 (the protocol's wire form); the json module keeps them.
        try:
            answer = json.loads(page.body)
        except ValueError:
            raise HubProtocolError(
                f"stream page from {url}: the body is not JSON"
            ) from None
    if not isinstance(answer, dict):
        raise HubProtocolError(f"stream page from {url}: the body is not an object")
    decoded = parse_page(answer, url)
    said = (page.size, page.next, page.count, page.closed, page.ahead)
    found = (decoded.size, decoded.next, decoded.count, decoded.closed, decoded.ahead)
    if said != found:
        raise HubProtocolError(
            f"stream page from {url}: the {PAGE_HEADER} header said (results, next,"
            f" count, closed, ahead) = {said!r:.300}, the body {found!r:.300}"
        )
    assert decoded.results is not None
    return decoded.results


def parse_page(answer: dict[str, Any], url: str, *, size: int | None = None) -> Page:
    """Check a page answer against protocol v1; raise :class:`HubProtocolError`.

    ``size``: the number of paths a page header announces, its ``results``
    being still undecoded."""
    results, nxt = answer.get("results"), answer.get("next")
    count, closed = answer.get("count"), answer.get("closed")
    ahead = answer.get("ahead", [])
    problem = None
    has_results = bool(results) if size is None else size > 0
    if not isinstance(results, list):
        problem = "'results' is not a list"
    elif nxt is not None and (not isinstance(nxt, str) or not nxt):
        problem = f"'next' must be a non-empty string or null, got {nxt!r:.100}"
    elif not isinstance(count, int) or isinstance(count, bool) or count < 0:
        problem = f"'count' must be a non-negative integer, got {count!r:.100}"
    elif not isinstance(closed, bool):
        problem = f"'closed' must be a boolean, got {closed!r:.100}"
    elif nxt is None and not closed:
        problem = "'next' is null but the stream is not closed"
    elif nxt is not None and closed and not has_results:
        problem = "an empty page of a closed stream still has a 'next' cursor"
    elif not isinstance(ahead, list) or not all(
        isinstance(c, str) and c for c in ahead
    ):
        problem = f"'ahead' must be a list of non-empty strings, got {ahead!r:.100}"
    elif ahead and (nxt is None or not has_results):
        problem = "'ahead' cursors on a page without results or without 'next'"
    elif not _all_path_objects(results):
        for index, item in enumerate(results):
            path = item.get("path") if isinstance(item, dict) else None
            if not isinstance(path, str) or not path:
                problem = f"results[{index}] is not a path object: {item!r:.200}"
                break
    if problem is not None:
        raise HubProtocolError(f"stream page from {url}: {problem}")
    cursors = tuple(ahead[:MAX_AHEAD])
    return Page(results, nxt, count, closed, cursors)  # type: ignore[arg-type]


_get_path = itemgetter("path")


def _all_path_objects(results: list[Any]) -> bool:
    """True if every item is a dict whose ``"path"`` is a non-empty string.

    The check of every path of every page read, on the event loop: done in C
    rather than item by item in Python, which cost the loop a third of a
    microsecond per path, and in two passes over the page: fetching each
    ``"path"`` refuses anything but a dict (decoded JSON holds no other
    mapping) and a dict without one, joining the paths refuses anything but
    strings (decoded JSON holds no string subclass). ``False`` sends the caller
    to the item-by-item check, which names the first bad item."""
    try:
        paths = list(map(_get_path, results))
        "".join(paths)
    except (KeyError, TypeError):
        return False
    return "" not in paths
