"""The task glue without a broker: ``task.apply()`` runs the body in this process."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import pytest
from celery import Celery

from asyncstream.celery import TASK_NAME_PREFIX, ForgottenDumpWarning, custom_task
from tests.celery import worker_app
from tests.celery.conftest import HubView

QUEUE = "london.highpriority#custom"


# The workers' app without a broker (tests/celery/conftest.py).
pytestmark = pytest.mark.usefixtures("eager_app")


def test_registers_bound_task_under_the_contract_name() -> None:
    app = Celery("registration", set_as_current=False)

    @custom_task(app, name="my-plugin", acks_late=True)
    def plugin(status: Any, **fields: Any) -> Any:
        """Says what it does (Celery shows it)."""
        return status.dump()

    assert plugin.name == TASK_NAME_PREFIX + "my-plugin"
    assert app.tasks["dynamo.custom.my-plugin"].name == plugin.name
    assert plugin.acks_late is True
    assert plugin.__name__ == "plugin"
    registered = app.tasks["dynamo.custom.my-plugin"]
    assert registered.__doc__ == "Says what it does (Celery shows it)."
    assert registered.__module__ == __name__
    assert worker_app.stream_sync.name == "dynamo.custom.stream_sync"
    # That app's only: an app made later does not get it.
    later = Celery("later", set_as_current=False)
    assert "dynamo.custom.my-plugin" not in later.tasks


def test_task_gets_status_first_and_ignores_unknown_keywords() -> None:
    result = worker_app.context_async.apply(
        kwargs={"jobid": 1, "paths": [], "colour": "blue", "n": 3},
        task_id="ctx-1",
        routing_key=QUEUE,
    )
    assert result.get() == {
        "status": "AsyncFileActionStatus",
        "taskid": "ctx-1",
        "queue": QUEUE,
        "fields": ["colour", "jobid", "n", "paths", "stream_results"],
    }


def test_plain_task_returns_the_contract_payload_in_memory() -> None:
    payload = worker_app.stream_sync.apply(
        kwargs={"jobid": 3, "paths": ["/a", {"path": "/b", "size": 1}], "count": 10},
        routing_key=QUEUE,
    ).get()
    assert payload["jobid"] == 3
    assert [p["path"] for p in payload["paths"]][:2] == ["/a", "/b"]
    assert payload["status"]["summary"]["processed"] == 11
    assert payload["status"]["summary"]["failures"] == 1
    assert payload["seen"]["queue"] == QUEUE
    assert payload["seen"]["site"] == "london"


@pytest.mark.parametrize("task", ["forgets_dump", "forgets_dump_async"])
def test_forgotten_dump_is_dumped_with_a_warning(task: str, hub_view: HubView) -> None:
    with pytest.warns(ForgottenDumpWarning, match="without status.dump"):
        result = getattr(worker_app, task).apply(
            kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 4}
        )
    payload = result.get()
    assert payload["status"]["summary"]["processed"] == 4
    task_at_hub = hub_view.task(result.id)
    assert task_at_hub is not None
    assert task_at_hub["state"] == "completed"
    assert task_at_hub["summary"]["processed"] == 4


def test_failed_streaming_task_delivers_what_it_recorded(hub_view: HubView) -> None:
    result = worker_app.fails_midway.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 5}
    )
    with pytest.raises(ValueError, match="on fire"):
        result.get()
    task = hub_view.task(result.id)
    assert task is not None
    assert task["state"] == "running"  # delivered, not completed
    assert task["summary"]["processed"] == 5


def test_rerun_of_incomplete_task_resets_it_first(hub_view: HubView) -> None:
    taskid = "rerun-after-failure"
    worker_app.fails_midway.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 7},
        task_id=taskid,
    )
    assert hub_view.task(taskid)["summary"]["processed"] == 7  # type: ignore[index]
    payload = worker_app.stream_sync.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 20},
        task_id=taskid,
    ).get()
    task = hub_view.task(taskid)
    assert task is not None
    assert task["state"] == "completed"
    assert task["summary"] == payload["status"]["summary"]
    assert sorted(r["path"] for r in hub_view.results(taskid)) == sorted(
        f"/fs/{i}" for i in range(20)
    )


def test_completed_task_is_not_run_again(hub_view: HubView) -> None:
    taskid = "done-once"
    kwargs = {"jobid": 2, "paths": [], "stream_results": True, "count": 30}
    first = worker_app.stream_sync.apply(kwargs=kwargs, task_id=taskid).get()
    again = worker_app.stream_sync.apply(kwargs=kwargs, task_id=taskid).get()
    # The body did not run: the stored payload has no "seen" (the body adds it).
    assert "seen" in first
    assert again == {k: v for k, v in first.items() if k != "seen"}
    assert hub_view.task(taskid)["batches"] == first["status"]["streamed"]["batches"]  # type: ignore[index]
    assert len(hub_view.results(taskid)) == 30


def test_streaming_without_a_hub_url_says_how_to_configure(eager_app: Celery) -> None:
    eager_app.conf.asyncstream_hub_url = None
    result = worker_app.stream_sync.apply(
        kwargs={"jobid": 1, "paths": [], "stream_results": True}
    )
    with pytest.raises(Exception, match="asyncstream_hub_url"):
        result.get()


def test_every_task_that_forgets_dump_is_warned(hub_view: HubView) -> None:
    def forget(taskid: str) -> None:
        worker_app.forgets_dump.apply(
            kwargs={"jobid": 1, "paths": [], "stream_results": True, "count": 1},
            task_id=taskid,
        ).get()

    # Python's default filter shows a warning once per place; each task that
    # forgets must still be told.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        forget("forgot-1")
        forget("forgot-2")
    said = [str(w.message) for w in record if w.category is ForgottenDumpWarning]
    assert len(said) == 2
    assert "forgot-1" in said[0]
    assert "forgot-2" in said[1]


def test_without_an_app_the_task_is_shared_by_every_app() -> None:
    # Celery keeps shared tasks for the life of the process: a name of its own
    # for every run of this test in one process.
    name = f"shared-plugin-{uuid.uuid4().hex}"

    @custom_task(name=name)
    def shared(status: Any, **fields: Any) -> Any:
        return status.dump()

    later = Celery("later-shared", set_as_current=False)
    assert later.tasks[TASK_NAME_PREFIX + name].name == shared.name
