"""A malformed API key is refused where it is configured, named but never shown.

A key with a line end, a trailing space or a non-ASCII character cannot travel in
an HTTP header: it is refused at configuration time, naming the variable it came
from, and a request that cannot be sent (httpx's ``LocalProtocolError``, whose
message quotes the header) fails at once instead of being retried. No log line
and no printed message carries the key.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from asyncstream import AsyncStreamTaskResults
from asyncstream._config import ENV_API_KEY, HubSettings
from asyncstream._exceptions import ConfigurationError, HubProtocolError
from asyncstream._hub_client import HubClient
from asyncstream.cli import main
from asyncstream.hub import running_hub

SECRET = "s3cr3t-k3y-value"
BAD_KEYS = {
    "newline": SECRET + "\n",
    "trailing-space": SECRET + " ",
    "non-ascii": SECRET + "é",
    "inner-cr": "s3cr3t\r-k3y-value",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_malformed_key_in_the_environment_is_refused_naming_the_variable(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_API_KEY, key)
    with pytest.raises(ConfigurationError) as info:
        HubSettings.resolve(hub_url="http://127.0.0.1:9")
    message = str(info.value)
    assert ENV_API_KEY in message
    assert "s3cr3t" not in message
    assert "k3y" not in message


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_a_stream_status_with_a_malformed_key_fails_before_any_request(
    key: str,
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncStreamTaskResults(
            "t", [], 1, "q.q#f", "task-1", hub_url="http://127.0.0.1:9", api_key=key
        )
    assert "api_key" in str(info.value)
    assert "s3cr3t" not in str(info.value)


def test_a_well_formed_key_passes() -> None:
    settings = HubSettings.resolve(hub_url="http://h.test", api_key="A-z_0.9~+/=")
    assert settings.headers() == {"Authorization": "Api-Key A-z_0.9~+/="}


async def test_a_request_that_cannot_be_sent_is_not_retried_and_never_quoted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real httpx/h11 refusal of a header value: one attempt, no key shown.

    (httpcore's own DEBUG trace quotes the header; the configuration check above
    is what keeps such a key from reaching it.)
    """
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="asyncstream")
    retries: list[float] = []
    async with running_hub() as hub:
        # Past the configuration check, as a key set by other means would be.
        bad = httpx.AsyncClient(
            base_url=hub.url, headers={"Authorization": f"Api-Key {SECRET}\n"}
        )
        async with bad, HubClient(HubSettings(hub.url), client=bad) as client:
            with pytest.raises(HubProtocolError) as info:
                await client.post_results(
                    "task-1",
                    0,
                    b"{}",
                    deadline=client.deadline(60),
                    on_retry=lambda exc, delay: retries.append(delay),
                )
    assert retries == []
    assert "LocalProtocolError" in str(info.value)
    shown = "\n".join(
        [str(info.value), *(r.getMessage() for r in caplog.records), caplog.text]
    )
    assert SECRET not in shown
    # Nothing that a traceback would print carries it either.
    assert info.value.__suppress_context__
    assert info.value.__cause__ is None


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_cli_verbs_refuse_a_malformed_key_without_printing_it(
    key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spool = tmp_path / "t.jsonl"
    spool.write_text('{"format": "asyncstream-spool", "taskid": "t", "batches": 0}\n')
    runner = CliRunner()
    resent = runner.invoke(
        main, ["resend", str(spool), "--hub", "http://127.0.0.1:9", "--api-key", key]
    )
    assert resent.exit_code != 0
    assert "--api-key" in resent.output
    ran = runner.invoke(
        main,
        ["run", "x:y", str(tmp_path), "--hub", "http://127.0.0.1:9"],
        env={ENV_API_KEY: key},
    )
    assert ran.exit_code == 2, ran.output
    assert ENV_API_KEY in ran.output
    for text in (resent.output, ran.output, caplog.text):
        assert "s3cr3t" not in text
