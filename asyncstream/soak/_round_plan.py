"""What a soak round runs: the featured fault and the tasks with their knobs."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ._chaos import FAULT_KINDS, FaultKind
from ._config import SoakConfig
from ._tasks import FAST_RETRY, TaskMode, TaskSpec


def featured_fault(
    rng: random.Random, number: int, order: list[FaultKind]
) -> FaultKind:
    """The fault round ``number`` features: each kind once first, then weighted."""
    if number <= len(order):
        return order[number - 1]
    return rng.choices(FAULT_KINDS, (3, 3, 3, 1.5, 1))[0]


def task_specs(
    config: SoakConfig,
    rng: random.Random,
    number: int,
    stream: dict[str, Any],
    *,
    outage: bool,
    hub_url: str,
    api_key: str,
    spool_dir: Path,
) -> list[TaskSpec]:
    """The tasks of round ``number`` and their knobs, drawn from ``rng``.

    An outage round gives them a short delivery deadline, so that they end in
    ``DeliveryError`` and a spool file; one task in four rounds stops itself.
    """
    quick = config.quick
    n_tasks = rng.randint(2, 3) if quick else rng.randint(1, 3)
    second: TaskMode = rng.choice(("async", "detached"))
    third: TaskMode = rng.choice(("sync", "async", "detached"))
    modes: list[TaskMode] = ["sync", second, third][:n_tasks]
    rng.shuffle(modes)
    batch_size = rng.choice((20, 50, 100, 250))
    specs = []
    aborting = rng.randrange(len(modes)) if rng.random() < 0.25 else None
    for index, mode in enumerate(modes):
        options: dict[str, Any] = {
            "batch_size": batch_size,
            "linger": rng.choice((0.02, 0.1, 0.4)),
            "max_pending_items": batch_size * rng.choice((2, 4, 8)),
            "max_inflight_batches": rng.choice((1, 2, 4)),
            "request_timeout": config.request_timeout,
            "delivery_timeout": config.outage_delivery_timeout
            if outage
            else config.delivery_timeout,
            "retry_policy": FAST_RETRY,
            "spool_dir": str(spool_dir),
            "hub_url": hub_url,
            "api_key": api_key,
        }
        inline = [
            {"path": f"/soak/r{number:04d}/inline/t{index}-{i}"}
            for i in range(rng.randint(0, 3))
        ]
        specs.append(
            TaskSpec(
                taskid=f"soak-s{config.seed}-r{number:04d}-t{index}",
                index=index,
                mode=mode,
                inline=inline,
                stream_url=str(stream["url"]),
                stream_count=int(stream["count"]),
                page_size=rng.choice((37, 100, 500)),
                options=options,
                hub_url=hub_url,
                api_key=api_key,
                stop_after=rng.randint(1, int(stream["count"]))
                if index == aborting
                else None,
                stop_how=rng.choice(("abort", "raise")),
            )
        )
    return specs
