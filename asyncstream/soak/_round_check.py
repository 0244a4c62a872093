"""After a round: what the hub stored, checked against what the round did."""

from __future__ import annotations

import httpx

from .._exceptions import DeliveryError
from ._check import (
    Expectation,
    Violation,
    check_stream,
    check_task,
    read_stream,
    read_task_answer,
)
from ._producer import Producer
from ._report import RoundRecord
from ._tasks import TaskAborted, TaskOutcome


async def check_round(
    outcomes: list[TaskOutcome],
    producer: Producer,
    client: httpx.AsyncClient,
    outage: bool,
    record: RoundRecord,
) -> None:
    """Add to ``record`` what the hub's record of the round breaks.

    Each path exactly once with its state and keys, summary and completion as
    the tasks added them; an outage round may end in ``DeliveryError``, a task
    that stopped itself in ``TaskAborted``.
    """
    if producer.error is not None:
        record.violations.append(
            Violation("producer", None, f"the producer failed: {producer.error!r}")
        )
    if producer.stream_id is not None:
        stored = await read_stream(client, producer.stream_id)
        record.violations += check_stream(producer.stream_id, producer.appended, stored)
    for outcome in outcomes:
        spec, error = outcome.spec, outcome.error
        expected = isinstance(error, TaskAborted) or (
            outage and isinstance(error, DeliveryError)
        )
        if error is not None and not expected:
            record.violations.append(
                Violation(spec.taskid, None, f"the task raised {error!r}")
            )
        elif isinstance(error, DeliveryError) and not outcome.reached_dump:
            record.notes.append(f"{spec.taskid}: DeliveryError before dump()")
        inputs = None
        if outcome.read_all:
            inputs = [str(p["path"]) for p in spec.inline + producer.appended]
        payload_summary = None
        if outcome.payload is not None:
            payload_summary = outcome.payload["status"]["summary"]
        if isinstance(error, TaskAborted):
            record.notes.append(f"{spec.taskid}: {error}")
        expect = Expectation(
            complete=outcome.reached_dump,
            inputs=inputs,
            batches=outcome.report.batches
            if outcome.report and outcome.reached_dump
            else None,
            payload_summary=payload_summary,
        )
        answer = await read_task_answer(client, spec.taskid)
        record.violations += check_task(spec.taskid, outcome.added, answer, expect)
