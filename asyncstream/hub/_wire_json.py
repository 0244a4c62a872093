"""The hub's JSON answers, able to carry a file name that is not UTF-8.

Such a name is held as a ``str`` with surrogate escapes (``os.fsdecode``), which
UTF-8 cannot encode: Starlette's ``JSONResponse`` would fail with a 500. The
answer is then written as ASCII JSON, where they are ``\\udcXX`` escapes (the
protocol's wire form); every other answer stays the compact UTF-8 it was.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class WireJSONResponse(JSONResponse):
    """``JSONResponse``, falling back to ASCII JSON for surrogate escapes."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(
                content, allow_nan=False, indent=None, separators=(",", ":")
            ).encode("ascii")
