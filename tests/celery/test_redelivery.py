"""A task run again under its id, and the task glue's own settings, in process.

``task.apply()`` runs the body in this thread against the hub process over
loopback: no broker, no worker, so these tests are fast enough to run for every
change of the glue.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from celery.app.task import Context

from asyncstream import HubUnavailableError, current_task_context
from asyncstream.celery import _queue_of, custom_task
from asyncstream.hub import HubProcess
from tests.celery import worker_app
from tests.celery.conftest import API_KEY, HubView


def _fail_first_run(taskid: str, count: int) -> None:
    """A first run that delivered ``count`` results, then failed: not completed."""
    result = worker_app.fails_midway.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": count},
        task_id=taskid,
    )
    with pytest.raises(ValueError, match="on fire"):
        result.get()


@pytest.mark.usefixtures("eager_app", "faults")
def test_a_reset_answered_409_is_read_again_and_the_task_runs(
    hub: HubProcess, hub_view: HubView
) -> None:
    taskid = "rerun-reset-refused-once"
    _fail_first_run(taskid, 7)
    # The hub refuses the first reset as it does for a task completed meanwhile;
    # reading the task again shows it still unfinished, so it is reset and run.
    hub.faults.fail_next(1, status=409, path_prefix=f"/api/tasks/{taskid}/reset")
    payload = worker_app.stream_sync.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 20},
        task_id=taskid,
    ).get()
    assert "seen" in payload  # the body ran
    task = hub_view.task(taskid)
    assert task is not None
    assert task["state"] == "completed"
    assert task["summary"] == payload["status"]["summary"]
    # The first run's seven results were dropped: only the second run's remain.
    paths = sorted(r["path"] for r in hub_view.results(taskid))
    assert paths == sorted(f"/fs/{i}" for i in range(20))


@pytest.mark.usefixtures("eager_app", "faults")
def test_a_reset_refused_for_another_reason_fails_the_task_naming_the_extension(
    hub: HubProcess, hub_view: HubView
) -> None:
    taskid = "rerun-reset-unsupported"
    _fail_first_run(taskid, 3)
    hub.faults.fail_next(1, status=404, path_prefix=f"/api/tasks/{taskid}/reset")
    result = worker_app.stream_sync.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 5},
        task_id=taskid,
    )
    with pytest.raises(Exception, match="404") as caught:
        result.get()
    assert getattr(caught.value, "__notes__", []) == [
        "the hub must support POST /api/tasks/{taskid}/reset"
        " (protocol v1 extension, docs/protocol.md)"
    ]
    # Nothing ran: the first run's results are all the hub holds.
    assert len(hub_view.results(taskid)) == 3


@pytest.mark.usefixtures("eager_app")
def test_a_task_that_does_not_stream_results_leaves_earlier_runs_alone(
    hub_view: HubView,
) -> None:
    taskid = "not-streamed-twice"
    _fail_first_run(taskid, 4)
    # Without stream_results the status is in memory: the earlier run's batches
    # stay untouched (a reset would drop them), even though the task talks to
    # the hub for its input stream.
    paths = [hub_view.stream(["/in/0", "/in/1"])]
    payload = worker_app.stream_sync.apply(
        kwargs={"jobid": 1, "paths": paths, "count": 2}, task_id=taskid
    ).get()
    assert payload["status"]["summary"]["processed"] == 4
    assert len(hub_view.results(taskid)) == 4
    task = hub_view.task(taskid)
    assert task is not None
    assert task["state"] == "running"


def test_a_task_made_at_call_time_streams_to_the_hub_of_its_status_options(
    monkeypatch: pytest.MonkeyPatch, hub: HubProcess, hub_view: HubView
) -> None:
    # An app with no hub configured and none in the environment: the task's
    # status_options are the only place the hub is named.
    monkeypatch.delenv("ASYNCSTREAM_HUB_URL", raising=False)
    monkeypatch.delenv("ASYNCSTREAM_API_KEY", raising=False)
    app = Celery("made-at-call-time", set_as_current=False)

    @custom_task(
        app,
        name="tagger",
        status_options={"hub_url": hub.url, "api_key": API_KEY, "batch_size": 2},
    )
    def tag(
        status: Any, *extra: Any, jobid: Any, paths: list[Any], **fields: Any
    ) -> Any:
        context = current_task_context()
        assert context is not None
        for path in paths:
            status.add("processed", path)
        payload = status.dump()
        return {
            **payload,
            "extra": list(extra),
            "fields": fields,
            "taskname": context.taskname,
            "jobid_seen": jobid,
        }

    result = tag.apply(
        args=("positional",),
        kwargs={
            "jobid": 42,
            "paths": ["/a", "/b", "/c"],
            "stream_results": True,
            "colour": "red",
        },
        task_id="made-at-call-time-1",
    )
    payload = result.get()
    assert payload["extra"] == ["positional"]
    assert payload["fields"] == {"colour": "red", "stream_results": True}
    assert payload["taskname"] == "tagger"
    assert payload["jobid_seen"] == 42
    assert payload["jobid"] == 42
    assert payload["status"]["task"] == "tagger"
    assert payload["status"]["streamed"]["batches"] == 2  # batch_size 2 was used
    task = hub_view.task("made-at-call-time-1")
    assert task is not None
    assert task["state"] == "completed"
    assert sorted(r["path"] for r in hub_view.results("made-at-call-time-1")) == [
        "/a",
        "/b",
        "/c",
    ]


def test_a_task_with_no_hub_anywhere_still_runs_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASYNCSTREAM_HUB_URL", raising=False)
    monkeypatch.delenv("ASYNCSTREAM_API_KEY", raising=False)
    app = Celery("no-hub", set_as_current=False)

    @custom_task(app)
    def count(status: Any, *, paths: list[Any], **fields: Any) -> Any:
        for path in paths:
            status.add("processed", path)
        return status.dump()

    payload = count.apply(kwargs={"jobid": 5, "paths": ["/x", "/y"]}).get()
    assert payload["status"]["summary"]["processed"] == 2
    assert [p["path"] for p in payload["paths"]] == ["/x", "/y"]


@pytest.mark.parametrize(
    ("delivery_info", "queue"),
    [
        ({"routing_key": "paris.low#custom", "queue": "other"}, "paris.low#custom"),
        ({"queue": "paris.low#custom"}, "paris.low#custom"),
        ({"routing_key": "", "queue": "paris.low#custom"}, "paris.low#custom"),
        ({"routing_key": None}, None),
        ({"routing_key": 7}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_queue_is_the_routing_key_else_the_delivery_queue(
    delivery_info: dict[str, Any] | None, queue: str | None
) -> None:
    assert _queue_of(Context(delivery_info=delivery_info)) == queue


@pytest.mark.usefixtures("eager_app", "faults")
def test_the_check_of_an_earlier_run_retries_an_unavailable_hub(
    hub: HubProcess, hub_view: HubView
) -> None:
    taskid = "rerun-hub-unavailable-for-a-moment"
    _fail_first_run(taskid, 6)
    # The reading of the task and the reset each meet two 503s: both are retried
    # within the resume timeout, as a hub restarting under a redelivery would be.
    hub.faults.fail_next(2, status=503, retry_after=0.01, path_prefix="/api/tasks/")
    hub.faults.fail_next(
        2, status=503, retry_after=0.01, path_prefix=f"/api/tasks/{taskid}/reset"
    )
    payload = worker_app.stream_sync.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 10},
        task_id=taskid,
    ).get()
    assert "seen" in payload
    assert sorted(r["path"] for r in hub_view.results(taskid)) == sorted(
        f"/fs/{i}" for i in range(10)
    )


# The default resume timeout is a minute: a check that ignored the task's
# one second would hang this test past its limit.
@pytest.mark.timeout(30)
@pytest.mark.usefixtures("faults")
def test_the_check_of_an_earlier_run_gives_up_after_the_resume_timeout(
    monkeypatch: pytest.MonkeyPatch, hub: HubProcess
) -> None:
    monkeypatch.delenv("ASYNCSTREAM_HUB_URL", raising=False)
    app = Celery("resume-timeout", set_as_current=False)
    app.conf.update(asyncstream_hub_url=hub.url, asyncstream_api_key=API_KEY)
    ran: list[str] = []

    @custom_task(app, resume_timeout=1.0)
    def quick(status: Any, **fields: Any) -> Any:
        ran.append("body")
        return status.dump()

    taskid = "resume-timeout-hub-down"
    hub.faults.fail_next(
        10_000, status=503, retry_after=0.01, path_prefix=f"/api/tasks/{taskid}/"
    )
    result = quick.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True}, task_id=taskid
    )
    with pytest.raises(HubUnavailableError):
        result.get()
    assert ran == []


def _hub_seen(app: Celery, **options: Any) -> Any:
    """The hub a task made on ``app`` with ``options`` finds in its context."""

    @custom_task(app, **options)
    def where(status: Any, **fields: Any) -> Any:
        status.dump()
        context = current_task_context()
        hub = context.hub if context else None
        return None if hub is None else [hub.url, hub.verify_tls]

    return where.apply(kwargs={"jobid": 1, "paths": []}).get()


def test_the_task_context_holds_the_hub_of_its_own_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "ASYNCSTREAM_HUB_URL",
        "ASYNCSTREAM_API_KEY",
        "ASYNCSTREAM_VERIFY_TLS",
    ):
        monkeypatch.delenv(name, raising=False)

    def app_with_hub() -> Celery:
        app = Celery("own-hub", set_as_current=False)  # not the current app
        app.conf.update(asyncstream_hub_url="http://127.0.0.1:9")
        return app

    assert _hub_seen(app_with_hub()) == ["http://127.0.0.1:9", True]
    options = {"hub_url": "https://127.0.0.1:8", "verify_tls": False}
    assert _hub_seen(app_with_hub(), status_options=options) == [
        "https://127.0.0.1:8",
        False,
    ]
    assert _hub_seen(Celery("no-hub-here", set_as_current=False)) is None
