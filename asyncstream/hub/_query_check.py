"""Refuse query parameters a route does not read.

A misspelt parameter (``?pagesize=10``, ``?job_id=7``) would otherwise be ignored
and the answer would look right while it is not: the client gets 422 naming the
parameter and the ones the route takes instead.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from ._errors import HubHTTPError

# Kept on the route itself: a dict keyed by id() could hand a new route the names
# of a collected one with the same id, and routes are not hashable.
_NAMES = "_asyncstream_query_names"


def _parameters_of(route: APIRoute) -> frozenset[str]:
    """The query parameter names ``route`` reads, its dependencies' included."""
    names: frozenset[str] | None = getattr(route, _NAMES, None)
    if names is None:
        names = frozenset(_query_names(route.dependant))
        setattr(route, _NAMES, names)
    return names


def _query_names(dependant: Dependant) -> list[str]:
    names = [param.alias for param in dependant.query_params]
    for sub in dependant.dependencies:
        names.extend(_query_names(sub))
    return names


async def refuse_unknown_query(request: Request) -> None:
    """A router dependency: 422 ``unknown_parameter`` for a name no route reads."""
    if not request.scope.get("query_string"):
        return  # no parameter at all (every ingest request): nothing to parse
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = _parameters_of(route)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise HubHTTPError(
            422,
            "unknown_parameter",
            f"unknown query parameter {unknown[0]!r}; this route takes: {takes}",
            field=unknown[0],
        )
