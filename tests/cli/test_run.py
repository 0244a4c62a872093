"""``asyncstream run`` as a child process, on real trees, against a real hub."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asyncstream.hub import HubProcess

from .conftest import Tree, asyncstream, fetched_results, sizes_of, stored_results

QUEUE = "london.highpriority#custom"


def test_sync_task_on_a_tree_reports_every_file_and_exits_1_for_failures(
    tree: Tree, tmp_path: Path
) -> None:
    db = tmp_path / "hub.sqlite3"
    result = asyncstream(
        "run", "runtasks:sizes_sync", str(tree.root), "--db", str(db),
        "--queue", QUEUE, "--field", f"expect_queue={QUEUE}",
    )  # fmt: skip

    assert result.code == 1, result.err
    assert result.summary == {
        "processed": 3000, "skipped": 0, "aborted": 0, "failures": 3, "inprogress": 0
    }  # fmt: skip
    assert "3003 results for 3003 paths" in result.out
    assert re.search(r"\d+ paths/s \(streamed to the hub in \d+ batches\)", result.out)
    assert f"asyncstream hub serve --db {db}" in result.out
    assert f"/api/tasks/{result.taskid}/results/" in result.out
    stored = stored_results(db, result.taskid)
    assert sizes_of(stored) == tree.sizes
    failed = [r for r in stored if r["state"] == "failures"]
    assert sorted(r["path"] for r in failed) == tree.bad
    assert all(r["message"] == ["bad by name"] for r in failed)


def _given_hub(hub: HubProcess) -> tuple[str, ...]:
    # The shared hub spares each run an embedded hub process of its own; the
    # embedded hub itself is proven by the first test and tests/cli/test_run_*.
    return ("--hub", hub.url, "--api-key", str(hub.api_key))


def test_async_task_on_a_tree_exits_0_when_every_file_is_processed(
    tree: Tree, hub: HubProcess
) -> None:
    result = asyncstream(
        "run", "runtasks:sizes_async", str(tree.good), *_given_hub(hub),
        "--queue", QUEUE, "--field", f"expect_queue={QUEUE}", "--jobid", "4242",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert result.summary["processed"] == 3000
    assert "job 4242" in result.out
    assert sizes_of(fetched_results(hub, result.taskid)) == tree.sizes


def test_no_stream_returns_results_in_memory_and_the_hub_still_stores_them(
    tree: Tree, hub: HubProcess
) -> None:
    subdir = tree.good / "d07"
    result = asyncstream(
        "run", "runtasks:sizes_sync", str(subdir), "--no-stream", *_given_hub(hub)
    )

    assert result.code == 0, result.err
    assert "returned in memory, then stored at the hub" in result.out
    expected = {p: s for p, s in tree.sizes.items() if p.startswith(f"{subdir}/")}
    assert result.summary["processed"] == len(expected) == 100
    assert sizes_of(fetched_results(hub, result.taskid)) == expected


def test_paths_on_stdin_are_fed_one_per_line(tree: Tree, hub: HubProcess) -> None:
    chosen = sorted(tree.sizes)[:500]
    stdin = "\n".join(chosen[:250]) + "\n\n" + "\n".join(chosen[250:]) + "\n"

    result = asyncstream(
        "run", "runtasks:sizes_async", "-", *_given_hub(hub), stdin=stdin
    )

    assert result.code == 0, result.err
    assert result.summary["processed"] == 500
    assert "streamed to the hub" in result.out  # stdin: size unknown, so streamed
    assert sizes_of(fetched_results(hub, result.taskid)) == {
        p: tree.sizes[p] for p in chosen
    }


@pytest.mark.parametrize("task", ["celery_sizes", "plain_celery_sizes"])
def test_celery_task_runs_without_a_broker_against_a_given_hub(
    tree: Tree, hub: HubProcess, task: str
) -> None:
    subdir = tree.good / "d11"
    result = asyncstream(
        "run", f"runtasks:{task}", str(subdir), "--hub", hub.url,
        "--api-key", str(hub.api_key), "--queue", QUEUE,
    )  # fmt: skip

    assert result.code == 0, result.err
    assert f"({'celery'})" in result.out
    assert f"results: {hub.url}/api/tasks/{result.taskid}/results/" in result.out
    results = fetched_results(hub, result.taskid)
    assert sizes_of(results) == {
        p: s for p, s in tree.sizes.items() if p.startswith(f"{subdir}/")
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nocolon"], "Error: 'nocolon' is not MODULE:FUNCTION"),
        (["no_such_module:f"], "Error: no module named 'no_such_module'"),
        (["runtasks:nope"], "Error: module 'runtasks' has no attribute 'nope'"),
        (["runtasks:sizes_sync", "/no/such/dir"], "Error: no such file or directory"),
        (
            ["runtasks:sizes_sync", "--field", "x"],
            "Error: --field 'x' is not KEY=VALUE",
        ),
    ],
    ids=["no-colon", "no-module", "no-attribute", "missing-path", "bad-field"],
)
def test_usage_errors_are_one_line_with_exit_2(
    tree: Tree, args: list[str], message: str
) -> None:
    paths = [] if "/no/such/dir" in args else [str(tree.good / "d01")]
    result = asyncstream("run", *args, *paths)

    assert result.code == 2
    assert result.err.startswith(message)
    assert result.err.count("\n") == 1, result.err
    assert result.out == ""


def test_task_that_raises_is_one_line_with_exit_3(tree: Tree, hub: HubProcess) -> None:
    result = asyncstream(
        "run", "runtasks:raises", str(tree.good / "d02"), *_given_hub(hub)
    )

    assert result.code == 3
    assert result.err == "Error: task raised ValueError: boom on purpose\n"


def test_task_without_payload_or_streamed_results_exits_3(
    tree: Tree, hub: HubProcess
) -> None:
    result = asyncstream(
        "run", "runtasks:forgets_payload", str(tree.good / "d03"),
        "--no-stream", *_given_hub(hub),
    )  # fmt: skip

    assert result.code == 3
    assert result.err == (
        "Error: task 'forgets_payload' returned NoneType and streamed no results:"
        " end it with 'return status.dump()'\n"
    )


def test_unreachable_hub_is_one_line_with_exit_3(tree: Tree) -> None:
    from asyncstream.hub._serve import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = asyncstream("run", "runtasks:sizes_sync", str(tree.good), "--hub", url)

    assert result.code == 3
    assert result.err.startswith(f"Error: cannot reach the hub at {url}")
    assert "asyncstream hub serve" in result.err
    assert result.err.count("\n") == 1


def test_help_documents_every_exit_status() -> None:
    result = asyncstream("run", "--help")

    assert result.code == 0
    for line in (
        "0  every path",
        "1  some paths failed",
        "2  usage error",
        "3  the task",
    ):
        assert line in result.out
