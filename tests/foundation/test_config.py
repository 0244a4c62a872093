"""Hub settings: arguments, Celery configuration, environment; keys stay secret."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from asyncstream import ConfigurationError
from asyncstream._config import HubSettings, lookup_setting


def test_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCSTREAM_HUB_URL", "http://env:1")
    monkeypatch.setenv("ASYNCSTREAM_API_KEY", "env-key")
    settings = HubSettings.resolve(hub_url="http://arg:2/")
    assert settings.url == "http://arg:2"
    assert settings.api_key == "env-key"
    assert settings.headers() == {"Authorization": "Api-Key env-key"}


def test_celery_conf_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCSTREAM_HUB_URL", "http://env:1")
    app = SimpleNamespace(conf={"asyncstream_hub_url": "http://celery:3"})
    assert lookup_setting("ASYNCSTREAM_HUB_URL", app=app) == "http://celery:3"
    assert HubSettings.resolve(app=app).url == "http://celery:3"


def test_missing_url_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCSTREAM_HUB_URL", raising=False)
    with pytest.raises(ConfigurationError, match="ASYNCSTREAM_HUB_URL"):
        HubSettings.resolve()


def test_url_scheme_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="ftp://hub"):
        HubSettings.resolve(hub_url="ftp://hub")


def test_key_never_shows_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = HubSettings.resolve(hub_url="http://h:1", api_key="s3cret-value")
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings)


@pytest.mark.parametrize(
    ("flag", "verify"), [("0", False), ("false", False), ("1", True)]
)
def test_tls_verification_is_on_unless_turned_off(
    monkeypatch: pytest.MonkeyPatch, flag: str, verify: bool
) -> None:
    assert HubSettings.resolve(hub_url="https://h").verify_tls is True
    monkeypatch.setenv("ASYNCSTREAM_VERIFY_TLS", flag)
    assert HubSettings.resolve(hub_url="https://h").verify_tls is verify
