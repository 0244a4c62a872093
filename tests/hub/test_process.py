"""The hub as a process: durability across SIGKILL, remote faults, the CLI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from asyncstream.cli import main
from asyncstream.hub import HubProcess

from .conftest import batch, key


def test_acknowledged_batches_survive_sigkill_and_restart(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    with HubProcess(db) as hub:
        headers = {"Authorization": "Api-Key test-key"}
        acknowledged: list[str] = []
        with httpx.Client(base_url=hub.url, headers=headers) as client:
            for seq in range(20):
                items = {"processed": [{"path": f"/fs/{seq}/{i}"} for i in range(250)]}
                response = client.post(
                    "/api/tasks/t1/results/",
                    json=batch(seq, items),
                    headers=key("t1", seq),
                )
                assert response.json() == {"accepted": 250, "duplicate": False}
                acknowledged += [p["path"] for p in items["processed"]]
            stream = client.post(
                "/api/streams/", json={"paths": ["/in/a", "/in/b"]}
            ).json()
        hub.kill()
        with pytest.raises(httpx.TransportError):
            httpx.get(hub.url + "/api/health/")
        hub.restart()
        with httpx.Client(base_url=hub.url, headers=headers) as client:
            task = client.get("/api/tasks/t1/").json()
            assert task["batches"] == 20
            assert task["summary"]["processed"] == 5000
            stored: list[str] = []
            cursor = None
            while True:
                params = {"page_size": 10_000} | ({"cursor": cursor} if cursor else {})
                page = client.get("/api/tasks/t1/results/", params=params).json()
                stored += [r["path"] for r in page["results"]]
                if (cursor := page["next"]) is None:
                    break
            assert stored == acknowledged
            assert client.get(stream["url"]).json()["results"] == [
                {"path": "/in/a"},
                {"path": "/in/b"},
            ]
            done = client.post("/api/tasks/t1/complete", json={"batches": 20})
            assert done.status_code == 200


def test_remote_faults_drive_a_hub_process(tmp_path: Path) -> None:
    with HubProcess(tmp_path / "hub.sqlite3", enable_faults=True) as hub:
        hub.faults.fail_next(1, retry_after=2)
        response = httpx.get(
            hub.url + "/api/tasks/x/", headers={"Authorization": "Api-Key test-key"}
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"


def test_serve_refuses_a_public_address_without_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASYNCSTREAM_API_KEY", raising=False)
    result = CliRunner().invoke(
        main, ["hub", "serve", "--host", "0.0.0.0", "--store", "memory"]
    )
    assert result.exit_code == 2
    assert "without an API key" in result.output


def test_serve_says_where_and_how_to_authenticate_but_not_the_key(
    tmp_path: Path,
) -> None:
    with HubProcess(None, store="memory", api_key="s3cret-key-value") as hub:
        pass
    log = hub.log_path.read_text()
    assert f"listening on {hub.url}" in log
    assert "Authorization: Api-Key <key>" in log
    assert "s3cret-key-value" not in log


def test_serve_help_documents_every_option() -> None:
    result = CliRunner().invoke(main, ["hub", "serve", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--db",
        "--api-key",
        "--store",
        "--enable-faults",
        "--max-body-bytes",
        "--max-concurrent-ingest",
        "--api-key-file",
        "ASYNCSTREAM_API_KEY_FILE",
        "--header-timeout",
        "--body-timeout",
        "Exit status",
        "ASYNCSTREAM_API_KEY",
    ):
        assert option in result.output


def test_bench_quick_reports_hub_and_store_rates() -> None:
    result = CliRunner().invoke(main, ["hub", "bench", "--quick", "--batches", "2"])
    assert result.exit_code == 0, result.output
    rows = [
        line.split()
        for line in result.output.splitlines()
        if line.strip()[:4].isdigit()
    ]
    assert [row[0] for row in rows] == ["1000", "5000"]
    for row in rows:
        assert float(row[1].replace(",", "")) > 0  # hub (sqlite)
        assert float(row[3]) > 0  # ratio
