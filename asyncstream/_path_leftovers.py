"""What ``apply_paths`` does with the outcomes of a run that stopped early.

A cancellation, an interrupt, a failed delivery or a ``break`` can stop a run
while outcomes of work already done (files deleted, moved) are on their way to
the status: the rest of the chunk being recorded, chunks the engine finished
and nobody took. They are facts about files, so they are handed to the status
all the same, without awaiting (the run's own error is propagating), and never
twice: :func:`taken_of_run` says where the status stopped taking.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from ._path_outcomes import ChunkOutcomes, PathOutcome
from ._paths import PathObject, State

logger = logging.getLogger("asyncstream.apply")


def give_late(status: Any, outcomes: list[PathOutcome]) -> None:
    """Give ``status`` outcomes it did not take before the run stopped, with
    no await: the runtime's async status keeps them (delivered at its close, or
    spooled); a status with a plain ``add`` gets them added; any other can only
    be told about in the log."""
    if status is None:
        return
    keep = getattr(status, "keep_unrecorded", None)
    if keep is not None:
        keep([(o.state, o.path, o.message) for o in outcomes])
        return
    add = getattr(status, "add", None)
    if add is None or inspect.iscoroutinefunction(add):
        logger.warning(
            "%d paths were worked on and not recorded: the run stopped and"
            " %r can only be added to by awaiting",
            len(outcomes),
            status,
        )
        return
    for outcome in outcomes:
        add(outcome.state, outcome.path, message=outcome.message)


def taken_of_run(
    run: PathOutcome | tuple[State, list[PathObject]] | None,
    added: int,
    add_many: Any,
    status: Any,
) -> int:
    """How many results of ``run``, the run being recorded when the status
    raised, it took: ``added`` by one ``add`` each, or what the ``add_many``
    that raised says it took (the runtime's statuses say; any other is taken to
    have taken none: its rest is added again rather than lost). A lone outcome
    whose ``add`` raised was not taken."""
    if not isinstance(run, tuple):
        return 0
    if add_many is not None:
        taken = getattr(status, "add_many_taken", None)
        ok = isinstance(taken, int) and 0 <= taken <= len(run[1])
        added = taken if ok else 0  # type: ignore[assignment]
    return added


def outcomes_after(chunk: ChunkOutcomes, start: int) -> ChunkOutcomes:
    """The outcomes of ``chunk`` from position ``start`` on."""
    end = len(chunk.settled)
    return ChunkOutcomes(chunk.paths[start:end], chunk.settled[start:end])
