"""The example tasks registered on a Celery app, ready for a worker.

Start a worker from the repository's root (the hub and broker URLs come from the
environment; ``CELERY_BROKER_URL`` defaults to the local Redis)::

    ASYNCSTREAM_HUB_URL=http://127.0.0.1:8000 ASYNCSTREAM_API_KEY=... \\
    celery -A examples.celery_app worker -Q 'london.default#custom' --loglevel=info

The tasks are registered as ``dynamo.custom.snapdiff_delete``,
``dynamo.custom.snapdiff_move`` (their plain faces as ``..._sync``) and
``dynamo.custom.file_sizes``; send one with
``snapdiff_delete.apply_async(kwargs={...}, queue="london.default#custom")``.
Messages are acknowledged late, so a task whose worker dies is run again; the
glue makes that re-run count each result once at the hub. ``tests/celery/
test_examples.py`` runs all three on a real worker over a scratch tree.
"""

from __future__ import annotations

import os

from celery import Celery

from asyncstream.celery import custom_task

from .checksum import file_sizes
from .snapdiff import (
    delete_handler,
    delete_handler_sync,
    move_handler,
    move_handler_sync,
)

app = Celery(
    "asyncstream-examples",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1"),
)
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 1

snapdiff_delete = custom_task(app, name="snapdiff_delete")(delete_handler)
snapdiff_move = custom_task(app, name="snapdiff_move")(move_handler)
snapdiff_delete_sync = custom_task(app, name="snapdiff_delete_sync")(
    delete_handler_sync
)
snapdiff_move_sync = custom_task(app, name="snapdiff_move_sync")(move_handler_sync)
file_sizes_task = custom_task(app, name="file_sizes")(file_sizes)
