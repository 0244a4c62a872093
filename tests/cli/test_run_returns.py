"""``asyncstream run`` refuses a streaming task that does not return its payload."""

from __future__ import annotations

import pytest

from asyncstream.hub import HubProcess

from .conftest import Tree, asyncstream


@pytest.mark.parametrize(
    ("task", "said"),
    [
        ("returns_a_string", "returned str 'all good!'"),
        ("async_returns_a_string", "returned str 'all good!'"),
        ("returns_dump_uncalled", "not called: missing '()'?"),
    ],
)
def test_a_streaming_task_returning_no_payload_exits_3_saying_so(
    tree: Tree, hub: HubProcess, task: str, said: str
) -> None:
    # The shared hub: an embedded one per run would only add a process start.
    result = asyncstream(
        "run", f"returnstasks:{task}", str(tree.good / "d04"), "--stream",
        "--hub", hub.url, "--api-key", str(hub.api_key),
    )  # fmt: skip

    assert result.code == 3, (result.out, result.err)
    assert said in result.err
    assert "end it with 'return status.dump()'" in result.err
    assert "Traceback" not in result.err
    assert result.err.splitlines()[-1].startswith("Error: task "), result.err
