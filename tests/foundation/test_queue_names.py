"""Queue-name helpers: formatting, parsing, legacy names, the current queue."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncstream import (
    ConfigurationError,
    ParsedQueueName,
    QueueNameError,
    TaskContext,
    get_current_site,
    get_current_task_queue_name,
    get_formatted_queue_name,
    task_context,
)
from asyncstream import queue as queue_module

NAME_PARTS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    min_size=1,
    max_size=30,
)


@given(site=NAME_PARTS, queue=NAME_PARTS, function=NAME_PARTS)
def test_queue_names_round_trip(site: str, queue: str, function: str) -> None:
    name = get_formatted_queue_name(site, queue, function)
    parsed = ParsedQueueName.parse(name)
    assert (parsed.site, parsed.queue, parsed.function) == (site, queue, function)
    assert str(parsed) == name


@given(site=NAME_PARTS)
def test_legacy_custom_queue_parses_as_default_queue(site: str) -> None:
    parsed = ParsedQueueName.parse(f"{site}-custom")
    assert (parsed.site, parsed.queue, parsed.function) == (site, "default", "custom")


def test_seed_example() -> None:
    parsed = ParsedQueueName.parse("london.highpriority#custom")
    assert parsed.site == "london"
    assert parsed.queue == "highpriority"
    assert parsed.function == "custom"
    assert str(parsed) == "london.highpriority#custom"
    assert ParsedQueueName.parse("new-york_2-custom").site == "new-york_2"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "london",
        "london.highpriority",
        "london#custom",
        "london.high.priority#custom",
        "lon don.q#custom",
        "london.q#",
        ".q#custom",
        "london.q#custom\n",
        "-custom",
    ],
)
def test_malformed_queue_name_is_a_value_error_naming_it(bad: str) -> None:
    with pytest.raises(QueueNameError, match="malformed queue name") as info:
        ParsedQueueName.parse(bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("site", "queue", "function"),
    [("lon.don", "q", "f"), ("london", "", "f"), ("london", "q", "f#g")],
)
def test_formatting_rejects_bad_parts(site: str, queue: str, function: str) -> None:
    with pytest.raises(QueueNameError, match="letters, digits"):
        get_formatted_queue_name(site, queue, function)


def test_current_queue_from_task_context() -> None:
    with task_context(TaskContext(taskid="t1", queue_name="paris.bulk#custom")):
        assert get_current_task_queue_name() == "paris.bulk#custom"
        assert get_current_site() == "paris"
        assert ParsedQueueName.current_task_queue().queue == "bulk"


def test_current_queue_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCSTREAM_QUEUE_NAME", "oslo-custom")
    assert get_current_task_queue_name() == "oslo-custom"
    assert get_current_site() == "oslo"
    with task_context(TaskContext(queue_name="rome.q#custom")):
        assert get_current_site() == "rome"


def test_no_current_queue_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCSTREAM_QUEUE_NAME", raising=False)
    with pytest.raises(ConfigurationError, match="ASYNCSTREAM_QUEUE_NAME"):
        get_current_task_queue_name()


def test_seed_parity_module_exports() -> None:
    assert queue_module.ParsedQueueName is ParsedQueueName
    assert sorted(queue_module.__all__) == [
        "ParsedQueueName",
        "get_current_site",
        "get_current_task_queue_name",
        "get_formatted_queue_name",
    ]
