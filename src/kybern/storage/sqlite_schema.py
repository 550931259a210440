"""The SQLite schema and connection setup for the sqlite backend (kine's log-structured layout).

One table, ``kv``, holds one row per revision: the row's ``id`` *is* the revision. A create,
update or delete of a key appends a row; nothing is ever updated in place. The latest row of
a key (highest id) says what the key holds now; the latest row at or below ``R`` says what it
held at revision ``R``. A delete appends a tombstone (``deleted = 1``).

``prev_revision`` points at the key's previous row. It is how events get their ``prev`` value
(instead of a second ``old_value`` copy of every value, which would double the file) and how
compaction finds superseded rows. Compaction only removes a row once the row that supersedes it
is itself at or below the compact revision, so a row that some event > compacted_rev() points
at is always still there.

``id INTEGER PRIMARY KEY AUTOINCREMENT`` makes SQLite remember the highest id ever used in
``sqlite_sequence``, so a revision is never reused even after compaction deleted the highest
rows. ``meta`` holds the compact revision, written in the same transaction as the compaction.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass

TABLES = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

COMPACT_REV_KEY = "compact_rev"

# The WAL is truncated back to this size whenever a checkpoint resets it, so a burst of writes
# does not leave a huge -wal file behind for good.
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024

INSERT_ROW = (
    "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)

LATEST_ROW = (
    "SELECT id, deleted, create_revision, value FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1"
)

READ_COMPACT_REV = "SELECT value FROM meta WHERE key = ?"

WRITE_COMPACT_REV = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"


@dataclass(frozen=True, slots=True)
class StoredState:
    """What a freshly opened database says about revisions."""

    current_rev: int
    compacted_rev: int


def connect(path: str) -> sqlite3.Connection:
    """Open a connection in autocommit mode: transactions are always explicit BEGIN/COMMIT."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def lock_exclusive(path: str) -> int:
    """Create the parent directories and take ``<path>.lock``; returns the fd that holds it.

    The writer keeps the current revision in memory, so a second process writing the same
    file would hand out the same revisions: refuse to start instead. The kernel drops the
    lock when the process dies, kill -9 included.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"{path} is already open in another kybern store") from None
    return fd


def open_writer(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the database and return the one connection allowed to write."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = connect(path)
    # auto_vacuum only takes effect before the first table exists: new files get it, an old
    # file without it keeps working (free pages are still reused, just never given back).
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"sqlite refused WAL mode for {path} (got {mode})")
    # FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss,
    # not only kill -9. Group commit keeps this affordable.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    conn.execute("PRAGMA wal_autocheckpoint = 1000")
    conn.executescript(TABLES)
    return conn


def open_reader(path: str) -> sqlite3.Connection:
    """A read-only connection; WAL lets it read a consistent snapshot while the writer writes."""
    conn = connect(path)
    conn.execute("PRAGMA query_only = 1")
    return conn


def load_state(conn: sqlite3.Connection) -> StoredState:
    """Recover the current and compact revisions from a database (never from memory)."""
    seq_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").fetchone()
    max_row = conn.execute("SELECT MAX(id) FROM kv").fetchone()
    compacted = read_compact_rev(conn)
    current = max(int(seq_row[0]) if seq_row else 0, int(max_row[0] or 0), compacted)
    return StoredState(current_rev=current, compacted_rev=compacted)


def read_compact_rev(conn: sqlite3.Connection) -> int:
    row = conn.execute(READ_COMPACT_REV, (COMPACT_REV_KEY,)).fetchone()
    return int(row[0]) if row else 0


def file_sizes(path: str) -> tuple[int, int]:
    """(database bytes, -wal bytes); a missing file counts as 0."""
    return _size(path), _size(path + "-wal")


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0
