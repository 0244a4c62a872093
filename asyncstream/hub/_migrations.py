"""The hub's schema as one list of numbered migrations, for every SQL store.

Each :class:`Migration` carries its statements for SQLite and for PostgreSQL side
by side, so the two stores walk the same versions in the same order and cannot
drift: a change to one dialect without the other does not construct. A database
records the versions applied to it in ``schema_migrations``; opening a store
applies the missing ones in one transaction, so a crash mid-way leaves the old
version whole.

Version 1 is the layout the hub had before it was versioned (one count column per
result state), written with ``IF NOT EXISTS`` so that applying it to such a
database changes nothing and only records the version. Version 2 makes result
states data: counts move to ``task_counts`` (one row per task and state), so a
new state needs no schema change. Version 3 indexes the task listing: newest
first overall, within a job and within a task name. Version 4 is for retention
(:mod:`._retention`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._store import StoreError

# The states that had a column of their own in version 1. Frozen here: the list
# of states may grow, the old layout does not.
V1_STATE_COLUMNS = ("processed", "skipped", "aborted", "failures", "inprogress")


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: the statements that take version - 1 to version."""

    version: int
    summary: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]

    def statements(self, dialect: str) -> tuple[str, ...]:
        if dialect == "sqlite":
            return self.sqlite
        if dialect == "postgres":
            return self.postgres
        raise ValueError(f"unknown SQL dialect {dialect!r}")


class SchemaVersionError(StoreError):
    """The database was written by a newer hub than this one."""

    code = "schema_too_new"


_V1_COUNTS_SQLITE = ", ".join(
    f"{s} INTEGER NOT NULL DEFAULT 0" for s in V1_STATE_COLUMNS
)
_V1_COUNTS_PG = ", ".join(f"{s} BIGINT NOT NULL DEFAULT 0" for s in V1_STATE_COLUMNS)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "streams, tasks with a count column per state, batches, results",
        sqlite=(
            "CREATE TABLE IF NOT EXISTS streams ("
            " id TEXT PRIMARY KEY, count INTEGER NOT NULL, closed INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS stream_paths ("
            " stream TEXT NOT NULL, pos INTEGER NOT NULL, path TEXT NOT NULL,"
            " extra TEXT, PRIMARY KEY (stream, pos)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS tasks ("
            " id TEXT PRIMARY KEY, jobid TEXT, job_key TEXT, task TEXT NOT NULL,"
            " queue TEXT, batches INTEGER NOT NULL DEFAULT 0,"
            f" {_V1_COUNTS_SQLITE}, started TEXT NOT NULL, finished TEXT,"
            " payload TEXT)",
            "CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks (job_key)",
            "CREATE TABLE IF NOT EXISTS batches ("
            " taskid TEXT NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,"
            " PRIMARY KEY (taskid, seq)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS results ("
            " taskid TEXT NOT NULL, seq INTEGER NOT NULL, idx INTEGER NOT NULL,"
            " state TEXT NOT NULL, path TEXT NOT NULL, extra TEXT,"
            " PRIMARY KEY (taskid, seq, idx)) WITHOUT ROWID",
        ),
        postgres=(
            "CREATE TABLE IF NOT EXISTS streams ("
            " id TEXT PRIMARY KEY, count BIGINT NOT NULL, closed BOOLEAN NOT NULL)",
            "CREATE TABLE IF NOT EXISTS stream_paths ("
            " stream TEXT NOT NULL, pos BIGINT NOT NULL, path TEXT NOT NULL,"
            " extra TEXT, PRIMARY KEY (stream, pos))",
            "CREATE TABLE IF NOT EXISTS tasks ("
            " id TEXT PRIMARY KEY, jobid TEXT, job_key TEXT, task TEXT NOT NULL,"
            " queue TEXT, batches BIGINT NOT NULL DEFAULT 0,"
            f" {_V1_COUNTS_PG}, started TEXT NOT NULL, finished TEXT,"
            " payload TEXT)",
            "CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks (job_key)",
            "CREATE TABLE IF NOT EXISTS batches ("
            " taskid TEXT NOT NULL, seq BIGINT NOT NULL, digest TEXT NOT NULL,"
            " PRIMARY KEY (taskid, seq))",
            "CREATE TABLE IF NOT EXISTS results ("
            " taskid TEXT NOT NULL, seq BIGINT NOT NULL, idx INTEGER NOT NULL,"
            " state TEXT NOT NULL, path TEXT NOT NULL, extra TEXT,"
            " PRIMARY KEY (taskid, seq, idx))",
        ),
    ),
    Migration(
        2,
        "result states are data: counts per task and state in task_counts",
        sqlite=(
            "CREATE TABLE task_counts ("
            " taskid TEXT NOT NULL, state TEXT NOT NULL, count INTEGER NOT NULL,"
            " PRIMARY KEY (taskid, state)) WITHOUT ROWID",
            *(
                f"INSERT INTO task_counts SELECT id, '{s}', {s} FROM tasks"
                f" WHERE {s} != 0"
                for s in V1_STATE_COLUMNS
            ),
            *(f"ALTER TABLE tasks DROP COLUMN {s}" for s in V1_STATE_COLUMNS),
        ),
        postgres=(
            "CREATE TABLE task_counts ("
            " taskid TEXT NOT NULL, state TEXT NOT NULL, count BIGINT NOT NULL,"
            " PRIMARY KEY (taskid, state))",
            *(
                f"INSERT INTO task_counts SELECT id, '{s}', {s} FROM tasks"
                f" WHERE {s} != 0"
                for s in V1_STATE_COLUMNS
            ),
            *(f"ALTER TABLE tasks DROP COLUMN {s}" for s in V1_STATE_COLUMNS),
        ),
    ),
)

# The listing orders by (started, id) descending; each filter it takes by index
# has an index that ends in that order, so a page is read, not sorted.
_LISTING_INDEXES = (
    "CREATE INDEX tasks_by_started ON tasks (started, id)",
    "CREATE INDEX tasks_by_job_started ON tasks (job_key, started, id)",
    "CREATE INDEX tasks_by_name_started ON tasks (task, started, id)",
    "DROP INDEX tasks_by_job",
)
MIGRATIONS += (
    Migration(
        3,
        "indexes for the task and job listings",
        sqlite=_LISTING_INDEXES,
        postgres=_LISTING_INDEXES,
    ),
)

# Retention: a stream records when it was created, so that closed streams can
# age out; streams of older versions count from the upgrade. Completed tasks are
# found by their finish time.
MIGRATIONS += (
    Migration(
        4,
        "retention: stream creation times, tasks by finish time",
        sqlite=(
            "ALTER TABLE streams ADD COLUMN created TEXT",
            "UPDATE streams SET created = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
            "CREATE INDEX tasks_by_finished ON tasks (finished)",
        ),
        postgres=(
            "ALTER TABLE streams ADD COLUMN created TEXT",
            "UPDATE streams SET created = to_char(now() AT TIME ZONE 'UTC',"
            ' \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')',
            "CREATE INDEX tasks_by_finished ON tasks (finished)",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

# Where a database records its versions; the same in every dialect.
VERSIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, summary TEXT NOT NULL, applied TEXT NOT NULL)"
)


def pending_migrations(applied: set[int], where: str) -> list[Migration]:
    """The migrations a database with versions ``applied`` still needs, in order.

    A version this code does not know means a newer hub wrote the database: it
    is refused rather than read with a layout it was not written in.
    """
    unknown = sorted(v for v in applied if v > LATEST_VERSION)
    if unknown:
        raise SchemaVersionError(
            f"{where} has schema version {unknown[-1]}, newer than this hub"
            f" knows ({LATEST_VERSION}): upgrade asyncstream to open it"
        )
    return [m for m in MIGRATIONS if m.version not in applied]
