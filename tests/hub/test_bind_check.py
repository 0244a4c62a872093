"""Without an API key the hub serves loopback addresses only, judged by address."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from asyncstream.cli import main
from asyncstream.hub import check_bind_allowed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_addresses_need_no_key(host: str) -> None:
    check_bind_allowed(host, [])


@pytest.mark.parametrize(
    "host",
    ["127.attacker.example", "0.0.0.0", "::", "192.0.2.7"],
)
def test_other_hosts_are_refused_without_a_key(host: str) -> None:
    with pytest.raises(ValueError, match=f"refusing to serve on {host}"):
        check_bind_allowed(host, [])
    check_bind_allowed(host, ["k"])  # with a key, any address


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    def resolve(host: str) -> list[str]:
        return {
            "box.internal": ["127.0.0.1", "203.0.113.5"],
            "lo.internal": ["127.0.0.1", "::1"],
        }[host]

    with pytest.raises(ValueError, match=r"box.internal \(203.0.113.5\)"):
        check_bind_allowed("box.internal", [], resolve=resolve)
    check_bind_allowed("lo.internal", [], resolve=resolve)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def resolve(host: str) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(ValueError, match="does not resolve"):
        check_bind_allowed("127.attacker.example", [], resolve=resolve)


def test_serve_refuses_a_lookalike_loopback_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASYNCSTREAM_API_KEY", raising=False)
    result = CliRunner().invoke(
        main,
        ["hub", "serve", "--host", "127.attacker.example", "--store", "memory"],
    )
    assert result.exit_code == 2
    assert "refusing to serve on 127.attacker.example" in result.output
