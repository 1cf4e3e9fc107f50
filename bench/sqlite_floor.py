#!/usr/bin/env python3
"""What SQLite alone takes for the 100,000-id batch statements (not a test).

Usage: bench/sqlite_floor.py DB [--rounds N] [--batch K] [--ops status,move,archive,restore]
                             [--pragma NAME=VALUE ...]

DB is a seeded pictograph.db, e.g. the one bench/batch_ab.sh or bench/scale.sh leaves in its
scratch directory (`pictograph-scale --work DIR --sizes 1000000 …` makes DIR/data/pictograph.db).
For each round and operation, the database is copied to a scratch file next to it, and the
statements the server sends for a batch of K ids spread evenly over the dataset (every n-th
image in listing order) run in one transaction, in chunks of 10,000 ids, with the server's
settings (WAL, synchronous NORMAL with the log synced once the commit returns, as the
server's answer waits for, default page cache, no automatic checkpoint); a restore
first archives the same images (untimed) and, as the server does, reads each chunk's rows
with whether a live image has their name before it updates them. Prints the
time of the statements, of the commit and in all, and the bytes written to the log; then the
medians. The server's own time for the same request is these plus parsing, reading the rows
for the answer, and the answer itself: compare with bench/batch_ab.sh or bench/scale.sh.
"""

import argparse
import json
import sqlite3

from floor_rounds import report, spread_ids, sqlite_copy, sqlite_timed

SETS = {
    "status": "status = 'review', updated_at = ?",
    "move": "folder = '/moved-by-bench', updated_at = ?",
    "archive": "is_archived = 1, updated_at = ?",
    "restore": "is_archived = 0, updated_at = ?",
}
# The read of a restore: each row, and whether a live image has its name now.
RESTORE_READ = (
    "SELECT json_group_array(json_array(i.id, i.folder, i.filename, i.is_archived, "
    "CASE WHEN i.is_archived <> 0 AND EXISTS (SELECT 1 FROM images l "
    "WHERE l.dataset_seq = i.dataset_seq AND l.folder = i.folder "
    "AND l.filename = i.filename AND l.is_archived = 0 AND l.id <> i.id) "
    "THEN 1 ELSE 0 END)) FROM images i "
    "WHERE i.dataset_seq + 0 = (SELECT seq FROM datasets WHERE id = ?) "
    "AND i.id IN (SELECT value FROM json_each(?))"
)
CHUNK = 10_000


def update_sql(op):
    """The UPDATE the server sends for one chunk of operation `op`."""
    return (
        f"UPDATE OR FAIL images SET {SETS[op]}, version = version + 1 "
        "WHERE dataset_seq + 0 = (SELECT seq FROM datasets WHERE id = ?) "
        "AND id IN (SELECT value FROM json_each(?))"
    )


def one(src, scratch, op, dataset, ids, pragmas):
    """Runs one operation over `ids` of `dataset` on a fresh copy of `src`, with the extra
    settings `pragmas`; (statements s, commit s, log bytes, ids)."""
    db = sqlite_copy(sqlite3, src, scratch, pragmas)
    sql = update_sql(op)
    at = 1_767_225_600_000_000  # 2026-01-01, in microseconds as images keep times
    chunks = [json.dumps(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]
    if op == "restore":
        archive = update_sql("archive")
        db.execute("BEGIN IMMEDIATE")
        for chunk in chunks:
            db.execute(archive, (at, dataset, chunk))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def run():
        for chunk in chunks:
            if op == "restore":
                db.execute(RESTORE_READ, (dataset, chunk)).fetchone()
            db.execute(sql, (at, dataset, chunk))

    return sqlite_timed(db, scratch, run, len(ids))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=100_000)
    p.add_argument("--ops", default="status,move,archive,restore")
    p.add_argument(
        "--pragma",
        action="append",
        default=[],
        help="a setting to try, e.g. cache_size=-65536 (repeatable)",
    )
    a = p.parse_args()
    ops = a.ops.split(",")
    for op in ops:
        if op not in SETS:
            p.error(f"unknown operation {op!r}: use {', '.join(SETS)}")
    scratch = a.db + ".floor"
    db = sqlite3.connect(a.db)
    dataset, ids = spread_ids(db, a.batch)
    db.close()
    print(f"SQLite {sqlite3.sqlite_version}; {a.db}")
    report(ops, a.rounds, lambda op: one(a.db, scratch, op, dataset, ids, a.pragma), "log")


if __name__ == "__main__":
    main()
