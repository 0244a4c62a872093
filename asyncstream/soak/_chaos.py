"""The soak's chaos: faults injected into a hub process while a round runs.

:class:`HubChaos` drives the hub's fault endpoint (``POST /api/_faults/``, the
calls of :class:`~asyncstream.hub.RemoteFaultInjector`, async so that the
round's own tasks keep running) and SIGKILLs and restarts the hub. It counts the
faults the soak asked for and, from the hub's answers, the ones that fired.

:func:`plan_chaos` draws a round's schedule from a seeded ``random.Random``;
:func:`run_chaos` plays it while the round's tasks run.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import anyio
import httpx

from ..hub import HubProcess

FaultKind = Literal["503", "drop", "delay", "kill", "outage"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("503", "drop", "delay", "kill", "outage")
FAULTS_PATH: Final = "/api/_faults/"
RESULTS_PREFIX: Final = "/api/tasks/"
STREAMS_PREFIX: Final = "/api/streams/"

# Relative weights of the extra faults of a round (beside its featured one).
_EXTRA_WEIGHTS: Final[dict[FaultKind, float]] = {
    "503": 3.0,
    "drop": 2.0,
    "delay": 2.0,
    "kill": 0.4,
}


@dataclass(frozen=True, slots=True)
class ChaosStep:
    """One fault, ``at`` seconds into the round, with its drawn parameters."""

    at: float
    kind: FaultKind
    n: int = 1
    status: int = 503
    retry_after: float = 0.05
    seconds: float = 0.0
    path_prefix: str | None = None

    def describe(self) -> str:
        where = self.path_prefix or "/api/"
        if self.kind == "503":
            return f"{self.n}x{self.status} Retry-After {self.retry_after:g} on {where}"
        if self.kind == "drop":
            return f"{self.n} acks dropped after commit on {where}"
        if self.kind == "delay":
            return f"{self.n} requests held {self.seconds:.2f}s on {where}"
        if self.kind == "kill":
            return f"SIGKILL, restart after {self.seconds:.2f}s"
        return f"results refused (503) for {self.seconds:.2f}s at dump"


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    """A round's faults: ``featured`` always happens; ``steps`` in time order."""

    featured: FaultKind
    steps: tuple[ChaosStep, ...]

    @property
    def outage(self) -> bool:
        return self.featured == "outage"


def _draw(
    rng: random.Random,
    kind: FaultKind,
    at: float,
    *,
    request_timeout: float,
    outage_seconds: float,
) -> ChaosStep:
    if kind == "503":
        return ChaosStep(
            at,
            kind,
            n=rng.randint(2, 6),
            status=rng.choice((503, 503, 429, 502)),
            retry_after=rng.choice((0.01, 0.05, 0.2)),
            path_prefix=rng.choice((RESULTS_PREFIX, STREAMS_PREFIX, None)),
        )
    if kind == "drop":
        return ChaosStep(
            at,
            kind,
            n=rng.randint(1, 3),
            path_prefix=rng.choice((RESULTS_PREFIX, RESULTS_PREFIX, STREAMS_PREFIX)),
        )
    if kind == "delay":
        # Longer than the results client's timeout: the hub commits a batch
        # the client has given up on, and the retry must be absorbed.
        return ChaosStep(
            at,
            kind,
            n=rng.randint(1, 3),
            seconds=request_timeout * rng.uniform(1.5, 3.0),
            path_prefix=rng.choice((RESULTS_PREFIX, RESULTS_PREFIX, None)),
        )
    if kind == "kill":
        return ChaosStep(at, kind, seconds=rng.uniform(0.05, 0.6))
    return ChaosStep(at, kind, seconds=outage_seconds)


def plan_chaos(
    rng: random.Random,
    featured: FaultKind,
    *,
    max_extra: int,
    request_timeout: float,
    outage_seconds: float,
) -> ChaosPlan:
    """Draw a round's schedule: the featured fault early, then a few extras.

    An outage round only adds short 503 bursts (its tasks have a short delivery
    deadline on purpose, which a restart or long delay would miss before dump).
    At most one SIGKILL a round.
    """
    kw = {"request_timeout": request_timeout, "outage_seconds": outage_seconds}
    steps = (
        []
        if featured == "outage"
        else [_draw(rng, featured, rng.uniform(0.05, 0.35), **kw)]
    )
    kinds = list(_EXTRA_WEIGHTS)
    weights = list(_EXTRA_WEIGHTS.values())
    killed = featured == "kill"
    for _ in range(rng.randint(0, max_extra)):
        kind: FaultKind = (
            "503" if featured == "outage" else rng.choices(kinds, weights)[0]
        )
        if kind == "kill" and killed:
            kind = "503"
        killed = killed or kind == "kill"
        steps.append(_draw(rng, kind, rng.uniform(0.05, 1.2), **kw))
    steps.sort(key=lambda s: s.at)
    if featured == "outage":
        steps.append(_draw(rng, "outage", 0.0, **kw))
    return ChaosPlan(featured, tuple(steps))


class DumpGate:
    """Holds every task of a round before ``dump()`` until the gate opens.

    An outage round opens it only once the outage has begun, so that the outage
    meets the tasks' last batches and their completion. Waits are bounded.
    """

    def __init__(self, tasks: int, *, is_open: bool) -> None:
        self._tasks = tasks
        self._arrived = 0
        self._lock = threading.Lock()
        self._open = threading.Event()
        if is_open:
            self._open.set()

    def arrive(self) -> None:
        """A task finished adding (or failed): count it once."""
        with self._lock:
            self._arrived += 1

    @property
    def all_arrived(self) -> bool:
        with self._lock:
            return self._arrived >= self._tasks

    def open(self) -> None:
        self._open.set()

    def wait_sync(self, timeout: float) -> bool:
        return self._open.wait(timeout)

    async def wait(self, limit: float) -> bool:
        """Wait (polling: it is opened from any thread) at most ``limit`` s."""
        with anyio.move_on_after(limit):
            while not self._open.is_set():  # noqa: ASYNC110
                await anyio.sleep(0.01)
            return True
        return False


class HubChaos:
    """Inject faults into a :class:`HubProcess` and count them.

    ``requested`` counts the faults asked for by kind (``kill`` and ``outage``
    included); ``fired`` counts what the hub applied (``fail``, ``drop``,
    ``delay``), summed across its restarts.
    """

    def __init__(self, hub: HubProcess, *, api_key: str | None) -> None:
        self.hub = hub
        headers = {"Authorization": f"Api-Key {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=hub.url, headers=headers, timeout=httpx.Timeout(15.0)
        )
        self.requested: Counter[str] = Counter()
        self.fired: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()  # the hub's counts since its start
        self.restart_seconds: list[float] = []

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post_fault(self, **body: Any) -> None:
        """One call of the fault endpoint (the body of ``RemoteFaultInjector``'s)."""
        response = await self._client.post(FAULTS_PATH, json=body)
        response.raise_for_status()
        now = Counter({k: int(v) for k, v in response.json()["injected"].items()})
        self.fired.update(now - self._seen)
        self._seen = now

    async def reset(self) -> None:
        """Forget pending faults (and read what fired so far)."""
        await self.post_fault(fault="reset")

    async def inject(self, step: ChaosStep) -> None:
        """Apply one step (an outage step only starts the outage)."""
        self.requested[step.kind] += 1
        if step.kind == "503":
            await self.post_fault(
                fault="fail_next",
                n=step.n,
                status=step.status,
                retry_after=step.retry_after,
                path_prefix=step.path_prefix,
            )
        elif step.kind == "drop":
            await self.post_fault(
                fault="drop_after_commit", n=step.n, path_prefix=step.path_prefix
            )
        elif step.kind == "delay":
            await self.post_fault(
                fault="delay",
                seconds=step.seconds,
                n=step.n,
                path_prefix=step.path_prefix,
            )
        elif step.kind == "kill":
            await self.kill_and_restart(step.seconds)
        else:
            await self.post_fault(
                fault="fail_next",
                n=1_000_000,
                status=503,
                retry_after=0.1,
                path_prefix=RESULTS_PREFIX,
            )

    async def kill_and_restart(self, down: float) -> None:
        """SIGKILL the hub, leave it down ``down`` seconds, serve it again."""
        with anyio.CancelScope(shield=True):  # never leave the hub down
            await self.reset()  # pending rules die with it; keep the counts
            await anyio.to_thread.run_sync(self.hub.kill)
            await anyio.sleep(down)
            started = time.monotonic()
            await anyio.to_thread.run_sync(self.hub.start)
            self.restart_seconds.append(time.monotonic() - started)
            self._seen = Counter()


async def run_chaos(
    chaos: HubChaos,
    plan: ChaosPlan,
    gate: DumpGate,
    tasks_done: Callable[[], bool],
    limit: float,
) -> None:
    """Play ``plan`` while the tasks run; all of it within ``limit`` seconds.

    Steps still due once the tasks are done are skipped; an outage starts when
    every task waits at the gate, lasts its ``seconds``, and is lifted.
    """
    start = time.monotonic()
    with anyio.move_on_after(limit):
        for step in plan.steps:
            if step.kind == "outage":
                while not gate.all_arrived:  # noqa: ASYNC110 - tasks are threads too
                    await anyio.sleep(0.01)
                await chaos.inject(step)
                gate.open()
                await anyio.sleep(step.seconds)
                await chaos.reset()
                continue
            await anyio.sleep(max(0.0, start + step.at - time.monotonic()))
            if tasks_done():
                break
            await chaos.inject(step)
    gate.open()  # whatever happened, no task may wait for it any longer
