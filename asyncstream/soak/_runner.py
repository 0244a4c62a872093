"""``asyncstream soak``: hunt for lost or duplicated results under chaos.

Against a hub process (SQLite, faults enabled) on loopback, each round:

1. a producer creates an input stream and keeps appending while it is read;
2. one to three tasks (sync shim in threads, async core in this loop) expand it
   and add a state per path, some failures with messages;
3. a seeded chaos schedule injects 503/429 bursts with Retry-After, acks dropped
   after commit, delays longer than the results client's timeout, SIGKILL and
   restart of the hub, or (an *outage* round) refuses results past the tasks'
   delivery deadline so that they end in ``DeliveryError`` and a spool file;
4. spooled batches are re-sent with the resend machinery (under faults too);
5. the hub's record of every task is checked (:mod:`._soak_check`): each path
   exactly once with its state and keys, summary and completion as added.

Every loop is bounded (rounds, seconds, retries); the hub is killed at exit.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from .._config import HubSettings
from .._exceptions import DeliveryError
from .._hub_client import HubClient
from .._spool import read_spool, resend_spool
from ..hub import HubProcess
from ._chaos import (
    FAULT_KINDS,
    DumpGate,
    FaultKind,
    HubChaos,
    plan_chaos,
    run_chaos,
)
from ._check import (
    Expectation,
    Violation,
    check_stream,
    check_task,
    read_stream,
    read_task_answer,
)
from ._config import SoakConfig
from ._report import RoundRecord, SoakResult, rss_kib
from ._tasks import (
    FAST_RETRY,
    Producer,
    TaskAborted,
    TaskMode,
    TaskOutcome,
    TaskSpec,
    input_paths,
    run_async_task,
    run_sync_task,
)

API_KEY = "soak-key"


def _featured(rng: random.Random, number: int, order: list[FaultKind]) -> FaultKind:
    if number <= len(order):
        return order[number - 1]
    return rng.choices(FAULT_KINDS, (3, 3, 3, 1.5, 1))[0]


class Soak:
    """Runs the rounds against one hub process; see the module docstring."""

    def __init__(
        self, config: SoakConfig, workdir: Path, echo: Callable[[str], None]
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.echo = echo
        self.rng = random.Random(config.seed)
        self.order: list[FaultKind] = list(FAULT_KINDS)
        self.rng.shuffle(self.order)
        self.hub = HubProcess(
            workdir / "hub.sqlite3", api_key=API_KEY, store="sqlite", enable_faults=True
        )
        self.spool_dir = workdir / "spool"
        self.result = SoakResult(config)
        self.peak_rss_kib = 0

    # -- a round ------------------------------------------------------------------

    def _specs(
        self, rng: random.Random, number: int, stream: dict[str, Any], outage: bool
    ) -> list[TaskSpec]:
        quick = self.config.quick
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
                "request_timeout": self.config.request_timeout,
                "delivery_timeout": self.config.outage_delivery_timeout
                if outage
                else self.config.delivery_timeout,
                "retry_policy": FAST_RETRY,
                "spool_dir": str(self.spool_dir),
                "hub_url": self.hub.url,
                "api_key": API_KEY,
            }
            inline = [
                {"path": f"/soak/r{number:04d}/inline/t{index}-{i}"}
                for i in range(rng.randint(0, 3))
            ]
            specs.append(
                TaskSpec(
                    taskid=f"soak-s{self.config.seed}-r{number:04d}-t{index}",
                    index=index,
                    mode=mode,
                    inline=inline,
                    stream_url=str(stream["url"]),
                    stream_count=int(stream["count"]),
                    page_size=rng.choice((37, 100, 500)),
                    options=options,
                    hub_url=self.hub.url,
                    api_key=API_KEY,
                    stop_after=rng.randint(1, int(stream["count"]))
                    if index == aborting
                    else None,
                    stop_how=rng.choice(("abort", "raise")),
                )
            )
        return specs

    async def run_round(
        self, number: int, chaos: HubChaos, client: httpx.AsyncClient
    ) -> RoundRecord:
        rng = random.Random(f"{self.config.seed}:{number}")
        featured = _featured(self.rng, number, self.order)
        record = RoundRecord(number, featured)
        cfg = self.config
        plan = plan_chaos(
            rng,
            featured,
            max_extra=2 if cfg.quick else 4,
            request_timeout=cfg.request_timeout,
            outage_seconds=cfg.outage_delivery_timeout + 1.0,
        )
        paths = input_paths(number, rng.randint(*cfg.paths_range), rng)
        chunks = _chunks(rng, len(paths))
        record.paths = len(paths)
        started = time.monotonic()
        requested0, fired0 = Counter(chaos.requested), Counter(chaos.fired)
        restarts0 = len(chaos.restart_seconds)
        producer = Producer(
            client, paths, chunks, (0.005, 0.04), rng, started + cfg.round_limit
        )
        outcomes: list[TaskOutcome] = []
        with anyio.move_on_after(cfg.round_limit) as limit:
            async with anyio.create_task_group() as tg:
                tg.start_soon(producer.run)
                await producer.created.wait()
                if producer.stream_id is None:
                    tg.cancel_scope.cancel()
                    record.violations.append(
                        Violation("producer", None, f"no stream: {producer.error!r}")
                    )
                    return record
                stream = {
                    "url": f"/api/streams/{producer.stream_id}/paths/",
                    "count": len(paths),
                }
                specs = self._specs(rng, number, stream, plan.outage)
                gate = DumpGate(len(specs), is_open=not plan.outage)
                outcomes = [TaskOutcome(spec) for spec in specs]
                threads = []
                for outcome in outcomes:
                    if outcome.spec.mode == "sync":
                        thread = threading.Thread(
                            target=run_sync_task,
                            args=(outcome, gate, cfg.round_limit),
                            name=f"soak {outcome.spec.taskid}",
                            daemon=True,
                        )
                        thread.start()
                        threads.append(thread)
                    else:
                        tg.start_soon(run_async_task, outcome, gate, cfg.round_limit)

                def done() -> bool:
                    return all(o.finished.is_set() for o in outcomes)

                tg.start_soon(run_chaos, chaos, plan, gate, done, cfg.round_limit)
                while not done():  # noqa: ASYNC110 - threads cannot set an anyio event
                    await anyio.sleep(0.02)
        record.tasks = [o.spec.mode for o in outcomes]
        if limit.cancelled_caught:
            stuck = [o.spec.taskid for o in outcomes if not o.finished.is_set()]
            record.violations.append(
                Violation(
                    ",".join(stuck) or "round",
                    None,
                    f"round did not finish within {cfg.round_limit}s (hang):"
                    f" producer appended {len(producer.appended)}/{len(paths)}",
                )
            )
            self.result.aborted = f"round {number} hung"
        await chaos.reset()
        await self._resend(outcomes, chaos, record)
        await chaos.reset()
        await self._check(outcomes, producer, client, plan.outage, record)
        record.faults_requested = chaos.requested - requested0
        record.faults_fired = chaos.fired - fired0
        record.restart_seconds = sum(chaos.restart_seconds[restarts0:])
        record.producer_retries = producer.retries
        for o in outcomes:
            record.results += len(o.added)
            if o.report is not None:
                record.batches += o.report.batches
                record.retries += o.report.retries
                record.duplicates += o.report.duplicates
        record.seconds = time.monotonic() - started
        record.rss_kib, peak = rss_kib()
        # The kernel's high-water mark lags the current figure a little: keep
        # the peak monotonic across rounds.
        self.peak_rss_kib = record.peak_rss_kib = max(peak, self.peak_rss_kib)
        return record

    def _spool_files(self, taskid: str) -> list[Path]:
        return sorted(
            [
                *self.spool_dir.glob(f"{taskid}.jsonl"),
                *self.spool_dir.glob(f"{taskid}.*.jsonl"),
            ]
        )

    async def _resend(
        self, outcomes: list[TaskOutcome], chaos: HubChaos, record: RoundRecord
    ) -> None:
        """Re-send every spool file a task left, with the resend machinery."""
        settings = HubSettings.resolve(hub_url=self.hub.url, api_key=API_KEY)
        for outcome in outcomes:
            error, taskid = outcome.error, outcome.spec.taskid
            files = await anyio.to_thread.run_sync(self._spool_files, taskid)
            if isinstance(error, DeliveryError):
                record.delivery_errors += 1
                if error.spool_path is None or Path(error.spool_path) not in files:
                    record.violations.append(
                        Violation(
                            taskid, None, f"DeliveryError names no spool file: {error}"
                        )
                    )
            for path in files:
                await self._resend_one(taskid, path, settings, chaos, outcome, record)

    async def _resend_one(
        self,
        taskid: str,
        path: Path,
        settings: HubSettings,
        chaos: HubChaos,
        outcome: TaskOutcome,
        record: RoundRecord,
    ) -> None:
        # The resend meets faults too: refused requests and a lost acknowledgement.
        prefix = f"/api/tasks/{taskid}/"
        await chaos.post_fault(
            fault="fail_next", n=2, status=503, retry_after=0.02, path_prefix=prefix
        )
        await chaos.post_fault(fault="drop_after_commit", n=1, path_prefix=prefix)
        try:
            spool = read_spool(path)
            async with HubClient(settings, retry_policy=FAST_RETRY, timeout=5.0) as hub:
                report = await resend_spool(spool, hub, delivery_timeout=60.0)
        except Exception as exc:
            record.violations.append(
                Violation(taskid, None, f"resend of {path} failed: {exc!r}")
            )
            return
        record.resent_batches += report.batches
        record.resend_duplicates += report.duplicates
        await anyio.Path(path).unlink()
        if outcome.reached_dump and spool.payload is not None and not report.completed:
            record.violations.append(
                Violation(taskid, None, f"resending {path} did not complete the task")
            )

    async def _check(
        self,
        outcomes: list[TaskOutcome],
        producer: Producer,
        client: httpx.AsyncClient,
        outage: bool,
        record: RoundRecord,
    ) -> None:
        if producer.error is not None:
            record.violations.append(
                Violation("producer", None, f"the producer failed: {producer.error!r}")
            )
        if producer.stream_id is not None:
            stored = await read_stream(client, producer.stream_id)
            record.violations += check_stream(
                producer.stream_id, producer.appended, stored
            )
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

    # -- the whole soak -----------------------------------------------------------

    async def run(self) -> SoakResult:
        cfg = self.config
        start = time.monotonic()
        headers = {"Authorization": f"Api-Key {API_KEY}"}
        await anyio.to_thread.run_sync(self.hub.start)
        chaos = HubChaos(self.hub, api_key=API_KEY)
        try:
            async with httpx.AsyncClient(
                base_url=self.hub.url, headers=headers, timeout=30.0
            ) as client:
                for number in range(1, cfg.max_rounds + 1):
                    if (
                        number > cfg.min_rounds
                        and time.monotonic() - start >= cfg.duration
                    ):
                        break
                    record = await self.run_round(number, chaos, client)
                    self.result.rounds.append(record)
                    self.echo(record.line())
                    for v in record.violations:
                        self.echo(f"  VIOLATION {v}")
                    if self.result.aborted:
                        break
        finally:
            await chaos.aclose()
            self.result.seconds = time.monotonic() - start
        return self.result

    def close(self) -> None:
        """Kill the hub (SIGKILL: nothing to flush for a soak)."""
        self.hub.kill()


def _chunks(rng: random.Random, total: int) -> list[int]:
    """Chunk sizes summing to ``total``: a first chunk, then 10-25 appends."""
    first = rng.randint(1, max(1, total // 10))
    rest = total - first
    n = rng.randint(10, 25)
    sizes = [first]
    for i in range(n):
        size = rest // (n - i)
        sizes.append(size)
        rest -= size
    return [s for s in sizes if s > 0] or [total]


def run_soak(config: SoakConfig, *, echo: Callable[[str], None] = print) -> SoakResult:
    """Run a soak to the end; the hub process is gone when this returns.

    The hub's database and log are removed unless a violation was found (then
    their paths are echoed for a post-mortem).
    """
    workdir = Path(tempfile.mkdtemp(prefix="asyncstream-soak-"))
    soak = Soak(config, workdir, echo)
    echo(
        f"soak: seed {config.seed}, {'quick' if config.quick else 'full'},"
        f" duration {config.duration:g}s, hub {soak.hub.url} (sqlite in {workdir})"
    )
    try:
        result = anyio.run(soak.run)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)  # interrupted: nothing to keep
        soak.hub.log_path.unlink(missing_ok=True)
        raise
    finally:
        soak.close()
    if result.ok:
        shutil.rmtree(workdir, ignore_errors=True)
        soak.hub.log_path.unlink(missing_ok=True)
    else:
        echo(f"kept for inspection: {workdir} (hub log {soak.hub.log_path})")
    return result
