"""The soak's checker flags every way a task's results can be wrong at the hub.

A soak that cannot fail proves nothing: these feed :func:`check_task` hub answers
with a duplicated, a lost, a mislabelled and a foreign result, and check that each
is named with its task and path.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import httpx

from asyncstream.hub import running_hub
from asyncstream.soak._chaos import FAULT_KINDS, plan_chaos
from asyncstream.soak._check import (
    Added,
    Expectation,
    HubTaskAnswer,
    Violation,
    check_stream,
    check_task,
    summary_of,
)
from asyncstream.soak._producer import Producer

ADDED = [
    Added("processed", {"path": "/a"}),
    Added("skipped", {"path": "/b", "size": 3}),
    Added("failures", {"path": "/c", "message": ["E1: no"]}),
]
INPUTS = ["/a", "/b", "/c"]


def hub_answer(
    rows: list[dict[str, Any]], *, summary: dict[str, int] | None = None
) -> HubTaskAnswer:
    summary = summary if summary is not None else summary_of(ADDED)
    task = {
        "id": "t1",
        "state": "completed",
        "summary": summary,
        "batches": 2,
        "payload": {"status": {"summary": summary}},
    }
    return HubTaskAnswer(task, rows)


def rows_of(added: list[Added]) -> list[dict[str, Any]]:
    return [{"state": a.state, **a.obj} for a in added]


EXPECT = Expectation(complete=True, inputs=INPUTS, batches=2)


def problems(violations: list[Violation]) -> list[tuple[str | None, str]]:
    return [(v.path, v.problem) for v in violations]


def test_a_faithful_hub_answer_has_no_violation() -> None:
    assert check_task("t1", ADDED, hub_answer(rows_of(ADDED)), EXPECT) == []


def test_a_duplicated_result_is_flagged_with_its_path() -> None:
    rows = [*rows_of(ADDED), {"state": "skipped", "path": "/b", "size": 3}]
    violations = check_task("t1", ADDED, hub_answer(rows), EXPECT)
    assert problems(violations) == [
        ("/b", "stored 2 times at the hub (duplicated result)")
    ]
    assert str(violations[0]).startswith("task t1 path '/b': stored 2 times")


def test_a_missing_result_is_flagged_with_its_path() -> None:
    violations = check_task("t1", ADDED, hub_answer(rows_of(ADDED[:2])), EXPECT)
    assert problems(violations) == [
        ("/c", "added as 'failures' but missing at the hub (lost result)")
    ]


def test_wrong_state_lost_message_and_foreign_path_are_flagged() -> None:
    rows = [
        {"state": "skipped", "path": "/a"},
        {"state": "skipped", "path": "/b", "size": 3},
        {"state": "failures", "path": "/c"},
        {"state": "processed", "path": "/z"},
    ]
    found = problems(check_task("t1", ADDED, hub_answer(rows), EXPECT))
    assert ("/a", "stored as 'skipped', added as 'processed'") in found
    assert any(p == "/c" and "stored as {'path': '/c'}" in m for p, m in found)
    assert ("/z", "stored as 'processed' at the hub but never added") in found


def test_summary_completion_and_batches_are_checked() -> None:
    answer = hub_answer(rows_of(ADDED), summary={**summary_of(ADDED), "aborted": 1})
    answer.task.update(state="running", batches=1)
    found = [m for _, m in problems(check_task("t1", ADDED, answer, EXPECT))]
    assert any(m.startswith("hub summary") for m in found)
    assert "task is 'running' at the hub, not completed" in found
    assert "hub holds 1 batches, the client cut 2" in found


def test_an_unknown_task_with_added_results_lost_them_all() -> None:
    found = problems(check_task("t1", ADDED, None, EXPECT))
    assert found == [(None, "the hub does not know the task: 3 added results lost")]


def test_a_path_read_twice_or_never_is_flagged() -> None:
    added = [*ADDED, ADDED[0]]
    expect = Expectation(complete=False, inputs=[*INPUTS, "/d"])
    found = problems(check_task("t1", added, None, expect))
    assert ("/a", "the task read this path: it came 2 times") in found
    assert ("/d", "input path never reached the task") in found


def test_check_stream_names_the_first_position_that_differs() -> None:
    appended = [{"path": "/a"}, {"path": "/b"}]
    assert check_stream("s", appended, appended) == []
    [v] = check_stream("s", appended, [{"path": "/a"}, {"path": "/a"}])
    assert (v.taskid, v.path) == ("stream:s", "/b")
    [v] = check_stream("s", appended, [*appended, {"path": "/b"}])
    assert v.problem == "stream holds 3 paths, the producer appended 2"


def test_chaos_plans_are_reproducible_and_feature_their_kind() -> None:
    for kind in FAULT_KINDS:
        plans = [
            plan_chaos(
                random.Random(42),
                kind,
                max_extra=4,
                request_timeout=0.5,
                outage_seconds=2.5,
            )
            for _ in range(2)
        ]
        assert plans[0] == plans[1]
        kinds = [step.kind for step in plans[0].steps]
        assert kind in kinds
        assert kinds.count("kill") <= 1
        if kind == "outage":
            assert kinds[-1] == "outage"
            assert set(kinds[:-1]) <= {"503"}


async def test_producer_stores_each_path_once_when_answers_are_lost() -> None:
    """Lost answers are retried; the stream the tasks read holds each path once."""
    paths = [{"path": f"/p{i}"} for i in range(10)]
    async with running_hub(store="memory") as hub:
        # Two creates' answers are lost: the producer makes another stream (the
        # orphans stay empty and open), and reads back exactly what it appended.
        # A lost append answer is tests/runtime/test_feed_append_retry.py's case.
        hub.faults.drop_after_commit(2, path_prefix="/api/streams/")
        async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client:
            producer = Producer(
                client, paths, [4, 3, 3], (0.0, 0.0), random.Random(0), 1e18
            )
            with anyio.fail_after(10):
                await producer.run()
            url = f"/api/streams/{producer.stream_id}/paths/"
            page = (await client.get(url, params={"page_size": 100})).json()
    assert producer.error is None
    assert hub.faults.injected["drop"] == 2
    assert page["results"] == paths
    assert producer.appended == paths
