"""Telling a PostgreSQL DSN from a SQLite path, and showing one without its secret.

No driver import here: the CLI decides which store ``--db`` names, and prints
where it serves, before (or without) loading psycopg.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ENV_HUB_DB = "ASYNCSTREAM_HUB_DB"
_SCHEMES = ("postgresql://", "postgres://")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def is_postgres_dsn(db: str) -> bool:
    """True if ``db`` names a PostgreSQL database (a URI) rather than a file."""
    return db.lower().startswith(_SCHEMES)


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``, fit for logs and messages."""
    if not is_postgres_dsn(dsn):
        return _KEYWORD_PASSWORD.sub(r"\1***", dsn)
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hosts}"
    query = [
        (k, "***" if k.lower() == "password" else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
