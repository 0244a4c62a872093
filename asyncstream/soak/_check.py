"""What the soak checks after each round: the hub's record of a task, no I/O.

:func:`check_task` compares what a task added (each accepted ``add()``, in order)
with what the hub holds for it — ``GET /api/tasks/{id}/`` and every page of
``GET /api/tasks/{id}/results/`` — and names each path that is missing, stored
twice, stored in the wrong state or with other keys, or stored without having
been added, plus a summary, batch count or completion that does not match.
:func:`read_task_answer` fetches that record; :func:`check_stream` checks that
an input stream holds exactly what its producer appended.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .._paths import STATES, PathObject, State

# Past this many per task, one line says how many more there were.
MAX_VIOLATIONS_PER_TASK = 20
# A results listing longer than this many pages is itself a violation.
MAX_PAGES = 100_000


@dataclass(frozen=True, slots=True)
class Added:
    """One accepted ``add()``: the state and the exact path object sent."""

    state: State
    obj: PathObject

    @property
    def path(self) -> str:
        return str(self.obj["path"])


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken guarantee: which task (or stream), which path, what was wrong."""

    taskid: str
    path: str | None
    problem: str

    def __str__(self) -> str:
        where = f" path {self.path!r}" if self.path is not None else ""
        return f"task {self.taskid}{where}: {self.problem}"

    def as_json(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "path": self.path, "problem": self.problem}


@dataclass(frozen=True, slots=True)
class HubTaskAnswer:
    """What the hub says about a task: its summary and every stored result row."""

    task: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Expectation:
    """What must hold for one task beyond its added results.

    ``complete``: the task reached ``dump()`` (directly or through a resend), so
    the hub must show it completed. ``inputs``: every input path the task was
    given, when it read them all; each must have been added exactly once.
    ``batches``: how many batches the client cut, when it completed.
    ``payload_summary``: the summary ``dump()`` returned, if it returned.
    """

    complete: bool
    inputs: Sequence[str] | None = None
    batches: int | None = None
    payload_summary: Mapping[str, int] | None = None


def summary_of(added: Sequence[Added]) -> dict[str, int]:
    """The count per state of ``added``, every state present."""
    summary: dict[str, int] = dict.fromkeys(STATES, 0)
    for item in added:
        summary[item.state] += 1
    return summary


def _check_inputs(
    taskid: str, added: Sequence[Added], inputs: Sequence[str]
) -> list[Violation]:
    out: list[Violation] = []
    given = Counter(inputs)
    seen = Counter(a.path for a in added)
    for path, n in seen.items():
        if n > given.get(path, 0):
            what = "was not in its input" if path not in given else f"came {n} times"
            out.append(Violation(taskid, path, f"the task read this path: it {what}"))
    out.extend(
        Violation(taskid, path, "input path never reached the task")
        for path in given
        if path not in seen
    )
    return out


def _check_rows(
    taskid: str, added: Sequence[Added], rows: Sequence[Mapping[str, Any]]
) -> list[Violation]:
    out: list[Violation] = []
    wanted: dict[str, Added] = {}
    for item in added:
        wanted.setdefault(item.path, item)
    stored: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        stored.setdefault(str(row.get("path")), []).append(row)
    for path, found in stored.items():
        expected = wanted.get(path)
        if expected is None:
            out.append(
                Violation(
                    taskid,
                    path,
                    f"stored as {found[0].get('state')!r} at the hub but never added",
                )
            )
            continue
        if len(found) > 1:
            out.append(
                Violation(
                    taskid,
                    path,
                    f"stored {len(found)} times at the hub (duplicated result)",
                )
            )
        row = dict(found[0])
        state = row.pop("state", None)
        if state != expected.state:
            out.append(
                Violation(
                    taskid, path, f"stored as {state!r}, added as {expected.state!r}"
                )
            )
        elif row != expected.obj:
            out.append(
                Violation(taskid, path, f"stored as {row!r}, added as {expected.obj!r}")
            )
    out.extend(
        Violation(
            taskid,
            item.path,
            f"added as {item.state!r} but missing at the hub (lost result)",
        )
        for path, item in wanted.items()
        if path not in stored
    )
    return out


def check_task(
    taskid: str,
    added: Sequence[Added],
    answer: HubTaskAnswer | None,
    expect: Expectation,
) -> list[Violation]:
    """Every way the hub's record of ``taskid`` differs from what was added.

    ``answer`` is ``None`` when the hub does not know the task at all. An empty
    list means: every added path is stored exactly once with its state and keys,
    and the summary (and completion, batch count, payload) agree.
    """
    out: list[Violation] = []
    if expect.inputs is not None:
        out += _check_inputs(taskid, added, expect.inputs)
    else:
        counts = Counter(a.path for a in added)
        out += [
            Violation(taskid, p, f"the task added this path {n} times")
            for p, n in counts.items()
            if n > 1
        ]
    summary = summary_of(added)
    if expect.payload_summary is not None and dict(expect.payload_summary) != summary:
        out.append(
            Violation(
                taskid,
                None,
                f"dump() summary {dict(expect.payload_summary)} != added {summary}",
            )
        )
    if answer is None:
        if added:
            out.append(
                Violation(
                    taskid,
                    None,
                    f"the hub does not know the task: {len(added)} added results lost",
                )
            )
        elif expect.complete:
            out.append(Violation(taskid, None, "the hub does not know the task"))
        return out
    out += _check_rows(taskid, added, answer.results)
    task = answer.task
    if task.get("summary") != summary:
        out.append(
            Violation(
                taskid, None, f"hub summary {task.get('summary')} != added {summary}"
            )
        )
    if expect.complete:
        if task.get("state") != "completed":
            out.append(
                Violation(
                    taskid,
                    None,
                    f"task is {task.get('state')!r} at the hub, not completed",
                )
            )
        payload = task.get("payload") or {}
        stored = payload.get("status", {}).get("summary") if payload else None
        if task.get("state") == "completed" and stored != summary:
            out.append(
                Violation(
                    taskid,
                    None,
                    f"completion payload summary {stored} != added {summary}",
                )
            )
        if expect.batches is not None and task.get("batches") != expect.batches:
            out.append(
                Violation(
                    taskid,
                    None,
                    f"hub holds {task.get('batches')} batches,"
                    f" the client cut {expect.batches}",
                )
            )
    return _capped(taskid, out)


def _capped(taskid: str, out: list[Violation]) -> list[Violation]:
    if len(out) <= MAX_VIOLATIONS_PER_TASK:
        return out
    more = len(out) - MAX_VIOLATIONS_PER_TASK
    return [
        *out[:MAX_VIOLATIONS_PER_TASK],
        Violation(taskid, None, f"... and {more} more violations"),
    ]


def check_stream(
    stream_id: str, appended: Sequence[PathObject], stored: Sequence[PathObject]
) -> list[Violation]:
    """Violations if the stream does not hold exactly ``appended``, in order."""
    if list(stored) == list(appended):
        return []
    where = f"stream:{stream_id}"
    for index, (a, s) in enumerate(zip(appended, stored, strict=False)):
        if a != s:
            return [
                Violation(where, a.get("path"), f"stream position {index} holds {s!r}")
            ]
    return [
        Violation(
            where,
            None,
            f"stream holds {len(stored)} paths, the producer appended {len(appended)}",
        )
    ]


async def read_task_answer(
    client: httpx.AsyncClient, taskid: str, *, page_size: int = 1000
) -> HubTaskAnswer | None:
    """The hub's record of ``taskid`` (``None`` if it does not know it)."""
    response = await client.get(f"/api/tasks/{taskid}/")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    rows = await _read_pages(client, f"/api/tasks/{taskid}/results/", page_size)
    return HubTaskAnswer(response.json(), rows)


async def _read_pages(
    client: httpx.AsyncClient, url: str, page_size: int
) -> list[dict[str, Any]]:
    """Every row of a paged endpoint (results or a closed stream), in order."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"page_size": page_size}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(url, params=params)
        page.raise_for_status()
        body = page.json()
        rows += body["results"]
        cursor = body["next"]
        if cursor is None or not body["results"]:
            return rows
    raise RuntimeError(f"{url}: more than {MAX_PAGES} pages")


async def read_stream(
    client: httpx.AsyncClient, stream_id: str, *, page_size: int = 1000
) -> list[PathObject]:
    """Every path of a closed stream, in order."""
    return await _read_pages(client, f"/api/streams/{stream_id}/paths/", page_size)
