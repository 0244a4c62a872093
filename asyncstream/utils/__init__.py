"""Helpers for task authors, laid out as the seed's ``arcapix.dynamo.server.utils``.

``asyncstream.utils.inputs.expand_paths`` turns a task's ``paths`` (path objects
and stream references) into a flat stream of path objects.
"""

from .inputs import ExpandedPaths, expand_paths

__all__ = ["ExpandedPaths", "expand_paths"]
