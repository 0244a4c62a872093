"""The delivery deadline, held line by line (what mutation testing found loose).

"One delivery deadline, on one clock: fail only without progress." A deadline
that has passed leaves no time at all (a batch that waited past it for a send
slot is not given a last request), the error says which batch and which
timeout, and settings the budget cannot hold are refused by name.
"""

from __future__ import annotations

import anyio
import pytest

from asyncstream import AsyncStreamTaskResults
from asyncstream._batch_keys import BatchSequence
from asyncstream._batch_post import post_batch
from asyncstream._config import HubSettings
from asyncstream._deadline import Deadline
from asyncstream._exceptions import HubUnavailableError, InvalidInputError
from asyncstream._hub_client import HubClient
from asyncstream._identity import TaskIdentity
from asyncstream.hub import RunningHub
from tests.guarantees._support import hub_paths


def test_a_passed_deadline_leaves_no_time_on_its_own_clock() -> None:
    now = [100.0]
    deadline = Deadline.after(2.5, clock=lambda: now[0])
    assert deadline.remaining() == 2.5
    now[0] = 102.0
    assert deadline.remaining() == 0.5
    assert not deadline.expired
    now[0] = 102.5
    assert deadline.remaining() == 0.0
    assert deadline.expired
    now[0] = 1_000.0  # long past: still nothing left, never negative
    assert deadline.remaining() == 0.0


async def test_a_batch_past_its_deadline_fails_without_a_last_request(
    hub: RunningHub,
) -> None:
    # The batch was cut at t=0 and nothing of its task was acknowledged since;
    # the sender's clock says t=10, past the 2 s delivery timeout (it waited
    # for a send slot that long). It must fail at once, not be posted.
    now = [0.0]
    sequence = BatchSequence(TaskIdentity("late-batch"), clock=lambda: now[0])
    batch = sequence.cut({"processed": [{"path": "/late/0"}]}, 1)
    now[0] = 10.0
    settings = HubSettings.resolve(hub_url=hub.url, api_key=hub.api_key)
    async with HubClient(settings, timeout=5.0) as client:
        with anyio.fail_after(5), pytest.raises(HubUnavailableError) as info:
            await post_batch(
                client,
                "late-batch",
                batch,
                delivery_timeout=2.0,
                progress_at=0.0,
                clock=lambda: now[0],
                on_retry=lambda exc, delay: None,
            )
    assert str(info.value) == "batch 0 not acknowledged in 2.0s"
    assert await hub_paths(hub, "late-batch") == []


def test_a_budget_without_a_batch_slot_is_refused_by_name() -> None:
    with pytest.raises(
        InvalidInputError, match=r"^max_inflight_batches must be at least 1, got 0$"
    ):
        AsyncStreamTaskResults(
            "p", [], 1, "q", "no-slot", hub_url="http://127.0.0.1:9",
            max_inflight_batches=0,
        )  # fmt: skip


@pytest.mark.parametrize("seconds", [-0.5, float("nan")])
def test_a_deadline_in_the_past_or_nowhere_is_refused_by_name(seconds: float) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"^a deadline must be 0 seconds away or more, got {seconds!r}$",
    ):
        Deadline.after(seconds)
    assert Deadline.after(0.0, clock=lambda: 7.0).when == 7.0
