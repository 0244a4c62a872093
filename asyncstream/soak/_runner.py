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
5. the hub's record of every task is checked (:mod:`._check`): each path
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

import anyio
import httpx

from .._config import HubSettings
from ..hub import HubProcess
from ._chaos import FAULT_KINDS, DumpGate, FaultKind, HubChaos, plan_chaos, run_chaos
from ._check import Violation
from ._config import SoakConfig
from ._producer import Producer, chunk_sizes, input_paths
from ._report import RoundRecord, SoakResult, rss_kib
from ._round_check import check_round
from ._round_plan import featured_fault, task_specs
from ._round_resend import resend_spools
from ._tasks import TaskOutcome, run_async_task, run_sync_task

API_KEY = "soak-key"


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

    async def run_round(
        self, number: int, chaos: HubChaos, client: httpx.AsyncClient
    ) -> RoundRecord:
        rng = random.Random(f"{self.config.seed}:{number}")
        featured = featured_fault(self.rng, number, self.order)
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
        chunks = chunk_sizes(rng, len(paths))
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
                specs = task_specs(
                    cfg,
                    rng,
                    number,
                    stream,
                    outage=plan.outage,
                    hub_url=self.hub.url,
                    api_key=API_KEY,
                    spool_dir=self.spool_dir,
                )
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
        settings = HubSettings.resolve(hub_url=self.hub.url, api_key=API_KEY)
        await resend_spools(
            outcomes, chaos, record, settings=settings, spool_dir=self.spool_dir
        )
        await chaos.reset()
        await check_round(outcomes, producer, client, plan.outage, record)
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
