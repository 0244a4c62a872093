"""The public surface: a sorted __all__, seed-parity modules, one exception tree."""

from __future__ import annotations

import importlib

import asyncstream
from asyncstream import AsyncStreamError


def test_all_is_sorted_and_importable() -> None:
    assert asyncstream.__all__ == sorted(asyncstream.__all__)
    for name in asyncstream.__all__:
        assert hasattr(asyncstream, name), name


def test_seed_parity_imports() -> None:
    # The seed's arcapix.dynamo.server.<module> becomes asyncstream.<module>.
    status = importlib.import_module("asyncstream.status")
    queue = importlib.import_module("asyncstream.queue")
    assert status.FileActionStatus is asyncstream.FileActionStatus
    assert queue.get_formatted_queue_name is asyncstream.get_formatted_queue_name


def test_every_exception_derives_from_the_root() -> None:
    errors = [
        getattr(asyncstream, name)
        for name in asyncstream.__all__
        if isinstance(getattr(asyncstream, name), type)
        and issubclass(getattr(asyncstream, name), BaseException)
    ]
    assert len(errors) >= 15
    for error in errors:
        assert issubclass(error, AsyncStreamError), error
    assert issubclass(asyncstream.AsyncStreamTimeout, TimeoutError)
    assert issubclass(asyncstream.InvalidInputError, ValueError)
    assert issubclass(asyncstream.PathTypeError, TypeError)
    assert issubclass(asyncstream.UsageError, RuntimeError)


def test_exception_tree_is_drawn_in_the_docstring() -> None:
    doc = asyncstream._exceptions.__doc__ or ""
    errors = [
        name
        for name in asyncstream.__all__
        if isinstance(getattr(asyncstream, name), type)
        and issubclass(getattr(asyncstream, name), AsyncStreamError)
    ]
    for name in errors:
        assert name in doc, f"{name} missing from the drawn exception tree"
