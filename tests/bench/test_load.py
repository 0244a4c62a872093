"""``asyncstream load``: its figures from what the workers and the hub said, and
a quick run end to end (that it ran and counted exactly, never how fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncstream._paths import STATES
from asyncstream.bench._load import (
    LoadShape,
    TaskOutcome,
    phase_figures,
    rejections,
    render_report,
)
from asyncstream.bench._load_copy import BATCH_SIZE, batch_rows, copy_baseline
from asyncstream.bench._load_worker import result_path
from asyncstream.cli import main
from asyncstream.hub._metrics import HubMetrics
from asyncstream.hub._sql_rows import result_rows
from asyncstream.hub._store import ResultBatch

SHAPE = LoadShape(processes=1, tasks=3, results=100)


def worker_line(
    task: str, sent: int = 100, seconds: float = 2.0, **more: object
) -> dict[str, object]:
    return {"task": task, "sent": sent, "seconds": seconds, "retries": 1, **more}


def hub_task(stored: int, state: str = "completed") -> dict[str, object]:
    return {"summary": {"processed": stored - 1, "failures": 1}, "state": state}


def test_a_task_is_exact_when_completed_with_what_it_sent() -> None:
    done = TaskOutcome.from_worker(worker_line("a"), hub_task(100))
    assert (done.stored, done.completed, done.exact) == (100, True, True)
    twice = TaskOutcome.from_worker(worker_line("a"), hub_task(101))
    assert not twice.exact
    open_task = TaskOutcome.from_worker(worker_line("a"), hub_task(100, "running"))
    assert not open_task.exact
    unknown = TaskOutcome.from_worker(worker_line("a"), None)
    assert (unknown.stored, unknown.exact) == (0, False)
    # A failed task spooled the rest: fewer stored is expected, more never.
    failed = TaskOutcome.from_worker(
        worker_line("a", error="DeliveryError: x"), hub_task(60, "running")
    )
    assert failed.exact
    assert not TaskOutcome.from_worker(
        worker_line("a", error="DeliveryError: x"), hub_task(160, "running")
    ).exact


def test_phase_figures_count_failures_rate_and_spread() -> None:
    outcomes = [
        TaskOutcome.from_worker(worker_line("a", seconds=2.0), hub_task(100)),
        TaskOutcome.from_worker(worker_line("b", seconds=3.0), hub_task(100)),
        TaskOutcome.from_worker(
            worker_line("c", sent=40, seconds=9.0, error="DeliveryError: late"),
            hub_task(30, "running"),
        ),
    ]
    figures = phase_figures(SHAPE, outcomes, 10.0, overloaded=7)
    assert figures.failed == ("c",)
    assert figures.not_exact == ()
    assert (figures.sent, figures.stored, figures.retries) == (240, 230, 3)
    assert figures.rate == 23.0
    assert (figures.median, figures.slowest, figures.spread) == (3.0, 9.0, 3.0)
    assert figures.errors == ("DeliveryError: late",)
    assert not figures.ok
    missing = phase_figures(SHAPE, outcomes[:2], 10.0)
    assert missing.failed == ("<1 tasks never reported>",)
    assert not missing.ok
    report = render_report(
        phase_figures(LoadShape(1, 1, 100), outcomes[:1], 1.0), missing
    )
    assert "ratio: contention 20 / single sender 100 results/s = 0.20" in report
    assert report.endswith("FAILED")


def test_rejections_read_from_the_hub_metrics() -> None:
    metrics = HubMetrics()
    assert rejections(metrics.render().decode()) == 0  # none refused yet
    for _ in range(12):
        metrics.reject("overloaded")
    metrics.reject("body_too_large")
    assert rejections(metrics.render().decode()) == 12
    assert rejections("# nothing\n") is None


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_run_against_its_own_hub_counts_every_result(tmp_path: Path) -> None:
    figures = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "-m", "asyncstream", "load", "--quick", "--json", figures],
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exactly once, no failed task: ok" in done.stdout
    document = json.loads(figures.read_text())
    single, contention = document["single_sender"], document["contention"]
    assert (single["tasks_reported"], single["stored"]) == (1, 5_000)
    assert contention["tasks_reported"] == 6
    assert contention["sent"] == contention["stored"] == 30_000
    assert contention["failed"] == contention["not_exact"] == []
    assert contention["overloaded_503"] is not None


def test_bare_copy_writes_the_rows_the_store_writes_for_the_same_batch() -> None:
    taskid, seq, start, stop = "copy-t000", 3, 1_500, 1_500 + BATCH_SIZE
    items: dict[str, list[dict[str, str]]] = {}
    for i in range(start, stop):  # as the sender adds them, one by one
        items.setdefault(STATES[i % 2], []).append({"path": result_path(taskid, i)})
    batch = ResultBatch(taskid, seq, "j", "load", "load", items, "d", BATCH_SIZE)  # type: ignore[arg-type]
    assert list(batch_rows(taskid, seq, start, stop)) == list(result_rows(batch))
    assert BATCH_SIZE == 2000  # the sender's default, read from its signature


async def test_bare_copy_stores_every_row_once_across_its_connections(
    postgres_dsn: str,
) -> None:
    from asyncstream.hub._postgres_setup import connect, migrate

    async with await connect(postgres_dsn) as conn:
        await migrate(conn, "the test schema")
    figures = await copy_baseline(
        postgres_dsn, "copy-t000", 1_234, batch_size=100, connections=3
    )
    assert (figures.rows, figures.batches, figures.connections) == (1_234, 13, 3)
    async with await connect(postgres_dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*), count(DISTINCT (seq, idx)), count(DISTINCT path),"
            " max(seq) FROM results WHERE taskid = 'copy-t000'"
        )
        assert await cursor.fetchone() == (1_234, 1_234, 1_234, 12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hub-workers", "2"], "--hub-workers 2 needs --store postgres"),
        (["--store", "sqlite", "--hub-workers", "3"], "a SQLite hub is one process"),
        (["--url", "http://127.0.0.1:1", "--store", "postgres"], "with --url"),
        (["--copy-baseline"], "--copy-baseline needs --store postgres"),
        (
            ["--store", "postgres", "--dsn", "/tmp/hub.sqlite3"],
            "--dsn must be a PostgreSQL URI",
        ),
        (
            ["--store", "postgres", "--copy-baseline", "--no-baseline"],
            "drop --no-baseline",
        ),
    ],
)
def test_hub_options_that_cannot_hold_are_refused_by_name(
    args: list[str], message: str
) -> None:
    done = CliRunner().invoke(main, ["load", "--quick", *args])
    assert done.exit_code == 2, done.output
    assert message in done.output


def _load_schemas(server: str) -> set[str]:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'asyncstream_load_%'"
        ).fetchall()
    return {row[0] for row in rows}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_against_its_own_postgres_hub_of_two_processes(
    postgres_server: str, tmp_path: Path
) -> None:
    figures = tmp_path / "load.json"
    schemas_before = _load_schemas(postgres_server)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "asyncstream",
            "load",
            "--quick",
            "--store",
            "postgres",
            "--hub-workers",
            "2",
            "--copy-baseline",
            "--json",
            figures,
        ],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "ASYNCSTREAM_HUB_DB": postgres_server},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("hub: PostgreSQL, 2 hub processes\n")
    assert "exactly once, no failed task: ok" in done.stdout
    assert "ratio: hub single sender" in done.stdout
    document = json.loads(figures.read_text())
    assert (document["store"], document["hub_processes"]) == ("postgres", 2)
    contention = document["contention"]
    assert contention["sent"] == contention["stored"] == 30_000
    assert contention["failed"] == contention["not_exact"] == []
    copy = document["bare_copy"]
    assert (copy["rows"], copy["batches"], copy["connections"]) == (5_000, 3, 4)
    assert copy["rows_per_second"] > 0
    # The run's schema, hub rows and COPY rows alike, is gone.
    assert _load_schemas(postgres_server) <= schemas_before
