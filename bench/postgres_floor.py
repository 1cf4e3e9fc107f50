#!/usr/bin/env python3
"""What PostgreSQL alone takes for the 100,000-id batch statements (not a test).

Usage: bench/postgres_floor.py URL [--rounds N] [--batch K] [--ops OPS] [--what-if]
                              [--distinct-hashes]

URL is a database seeded by the scale tool, e.g. the `scale` database bench/scale.sh leaves in
its cluster after a run (postgres://postgres@127.0.0.1:5434/scale). The largest dataset is
used; K ids (default 100,000) are spread evenly over it in listing order.

For each round and operation (status, move, archive, restore, copy, and purge: a permanent
delete's statements, without the freeing of bytes the server does after them), the database is
copied to a scratch database floor_run (dropped afterwards), its images table and indexes are read
into shared buffers, and one psql session sends the statements the server sends for that
batch, in chunks of 10,000 ids, in one transaction, after a checkpoint. A restore first
archives the same images (committed, untimed). Prints the time of the statements, of the
commit and in all, and the WAL written; then the medians. The server's own time for the same
request is these plus parsing, its round trips and the answer: compare with bench/scale.sh.
The cluster needs the pg_prewarm extension (in PostgreSQL's contrib, installed with it here).

--distinct-hashes first gives every image bytes of its own (on a scratch copy, floor_source),
as real photos have; the scale tool's images all share one.

--what-if also times two designs the server does not use, to show where a move's time goes:
  move-heap-only   the move with the unique name index dropped first (untimed): no index
                   holds `folder` any more, so each row is updated in place on its page
                   (a heap-only update) instead of getting a new entry in all five indexes;
  move-name-table  the best case of keeping names in a table of their own: the names
                   (id, dataset, folder, filename) are copied into a narrow table with the
                   unique index and `images_name` is dropped (committed, untimed), then
                   one statement updates the folder there and a second, heap-only one
                   updates folder, version and time in `images`.
"""

import argparse
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

from floor_rounds import report

CHUNK = 10_000
AT = "1767225600000000"  # 2026-01-01, in microseconds as images keep times
IDS = "ARRAY(SELECT jsonb_array_elements_text((SELECT ids FROM floor_chunks WHERE n = {n})))"
# The server's read of a chunk's rows before a move, a copy or a permanent delete.
READ = (
    "SELECT COALESCE(CAST(json_agg(json_build_array(id, folder, filename, is_archived)) AS TEXT), '[]') "
    "FROM images WHERE dataset_seq + 0 = :'ds' AND id = ANY({ids})"
)
# The read of a restore: each row, and whether a live image has its name now.
RESTORE_READ = (
    "SELECT COALESCE(CAST(json_agg(json_build_array(i.id, i.folder, i.filename, i.is_archived, "
    "CASE WHEN i.is_archived <> 0 AND EXISTS (SELECT 1 FROM images l "
    "WHERE l.dataset_seq = i.dataset_seq AND l.folder = i.folder "
    "AND l.filename = i.filename AND l.is_archived = 0 AND l.id <> i.id) "
    "THEN 1 ELSE 0 END)) AS TEXT), '[]') FROM images i "
    "WHERE i.dataset_seq + 0 = :'ds' AND i.id = ANY({ids})"
)
UPDATE = (
    "UPDATE images SET {sets}, version = version + 1, updated_at = " + AT + " "
    "WHERE dataset_seq + 0 = :'ds' AND id = ANY({ids}) {tail}"
)
COPY = (
    "INSERT INTO images (id, dataset_seq, folder, filename, display_name, status, is_archived, "
    "blob_hash, file_size, mime_type, width, height, annotation_count, version, created_at, "
    "updated_at) SELECT m.new_id, i.dataset_seq, '/floor-copies', m.filename, NULL, 'new', 0, "
    "i.blob_hash, i.file_size, i.mime_type, i.width, i.height, 0, 1, " + AT + ", " + AT + " "
    "FROM (SELECT e->>0 AS src, e->>1 AS new_id, e->>2 AS filename FROM "
    "jsonb_array_elements((SELECT plan FROM floor_chunks WHERE n = {n})) AS t(e)) m "
    "CROSS JOIN images i WHERE i.id = m.src AND i.dataset_seq + 0 = :'ds'"
)
# A permanent delete: the DELETE feeds one JSON value of what it removed.
PURGE = (
    "WITH changed AS (DELETE FROM images WHERE dataset_seq + 0 = :'ds' AND id = ANY({ids}) "
    "RETURNING id, folder, encode(blob_hash, 'hex') AS hash) "
    "SELECT COALESCE(CAST(json_agg(json_build_array(id, folder, hash)) AS TEXT), '[]') FROM changed"
)
NAME_TABLE = (
    "CREATE TABLE floor_names (id TEXT PRIMARY KEY, dataset_seq BIGINT NOT NULL, "
    "folder TEXT NOT NULL, filename TEXT NOT NULL, is_archived BIGINT NOT NULL) "
    "WITH (fillfactor = 80);\n"
    "INSERT INTO floor_names SELECT id, dataset_seq, folder, filename, is_archived FROM images;\n"
    "CREATE UNIQUE INDEX floor_names_name ON floor_names (dataset_seq, folder, filename, "
    "(CASE WHEN is_archived = 0 THEN '' ELSE id END));\n"
    "DROP INDEX images_name;\n"
    "ANALYZE floor_names;\n"
)


def statements(op, chunks):
    """(set-up, committed and untimed before; timed statements, sent in one transaction) of
    one operation."""
    setup, timed = [], []
    for n in range(chunks):
        ids = IDS.format(n=n)
        if op == "status":
            timed.append(UPDATE.format(sets="status = 'review'", ids=ids, tail="RETURNING id, folder"))
        elif op in ("move", "move-heap-only"):
            timed.append(READ.format(ids=ids))
            timed.append(UPDATE.format(sets="folder = '/floor-moved'", ids=ids, tail=""))
        elif op == "move-name-table":
            timed.append(READ.format(ids=ids))
            timed.append(
                "UPDATE floor_names SET folder = '/floor-moved' "
                f"WHERE dataset_seq + 0 = :'ds' AND id = ANY({ids})"
            )
            timed.append(UPDATE.format(sets="folder = '/floor-moved'", ids=ids, tail=""))
        elif op == "archive":
            timed.append(
                UPDATE.format(
                    sets="is_archived = 1", ids=ids, tail="AND is_archived = 0 RETURNING id, folder"
                )
            )
        elif op == "restore":
            setup.append(UPDATE.format(sets="is_archived = 1", ids=ids, tail=""))
            timed.append(RESTORE_READ.format(ids=ids))
            timed.append(UPDATE.format(sets="is_archived = 0", ids=ids, tail=""))
        elif op == "copy":
            timed.append(READ.format(ids=ids))
            timed.append(COPY.format(n=n))
        elif op == "purge":
            timed.append(PURGE.format(ids=ids))
    if op == "move-heap-only":
        setup.insert(0, "DROP INDEX images_name")
    if op == "move-name-table":
        setup.insert(0, NAME_TABLE)
    return setup, timed


def psql(url, script):
    """Runs a psql script on `url`; its standard output."""
    out = subprocess.run(
        ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"psql failed:\n{out.stderr}")
    return out.stdout


def on_database(url, name):
    """`url` with its database replaced by `name`."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def copy_database(url, name):
    """Copies the database of `url` into a fresh database `name` of the same server (one of
    that name is dropped first); the copy's URL."""
    source = urlsplit(url).path.lstrip("/")
    psql(
        on_database(url, "postgres"),
        f"DROP DATABASE IF EXISTS {name} WITH (FORCE);\n"
        f'CREATE DATABASE {name} TEMPLATE "{source}" STRATEGY FILE_COPY;\n',
    )
    return on_database(url, name)


def drop_database(url):
    """Drops the database of `url`, if it exists."""
    name = urlsplit(url).path.lstrip("/")
    psql(on_database(url, "postgres"), f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")


def one(url, op, batch):
    """Runs one operation on a fresh copy of the database; (statements s, commit s, WAL
    bytes, ids)."""
    run = copy_database(url, "floor_run")
    setup, timed = statements(op, (batch + CHUNK - 1) // CHUNK)
    script = "\n".join(
        [
            "\\pset tuples_only on",
            # The copy's pages in shared buffers, as the source's were after seeding.
            "CREATE EXTENSION IF NOT EXISTS pg_prewarm;",
            "\\o /dev/null",
            "SELECT pg_prewarm(oid) FROM pg_class WHERE oid = 'images'::regclass "
            "OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'images'::regclass);",
            "\\o",
            "SELECT dataset_seq AS ds FROM images GROUP BY dataset_seq ORDER BY COUNT(*) DESC LIMIT 1 \\gset",
            # Every n-th image of the dataset in listing order, as 10,000-id chunks: the ids
            # (a JSON array, as the server binds them) and, for a copy, its plan.
            "CREATE TABLE floor_chunks AS "
            "SELECT (r - 1) / " + str(CHUNK) + " AS n, jsonb_agg(id ORDER BY r) AS ids, "
            "jsonb_agg(jsonb_build_array(id, gen_random_uuid()::text, filename) ORDER BY r) AS plan "
            "FROM (SELECT id, filename, row_number() OVER (ORDER BY created_at, id) AS r FROM "
            "(SELECT id, filename, created_at, row_number() OVER (ORDER BY created_at, id) AS p, "
            "count(*) OVER () AS total FROM images WHERE dataset_seq = :'ds') a "
            f"WHERE (p - 1) % GREATEST(total / {batch}, 1) = 0) b WHERE r <= {batch} GROUP BY 1;",
            "SELECT sum(jsonb_array_length(ids)) AS k FROM floor_chunks \\gset",
            *[s.rstrip(";\n") + ";" for s in setup],
            "CHECKPOINT;",
            "SELECT pg_current_wal_insert_lsn() AS wal0 \\gset",
            "\\o /dev/null",
            "\\timing on",
            "BEGIN;",
            *[s + ";" for s in timed],
            "COMMIT;",
            "\\timing off",
            "\\o",
            "SELECT 'wal ' || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'wal0');",
            "SELECT 'ids ' || :k;",
        ]
    )
    stdout = psql(run, script)
    drop_database(run)
    times = [float(m) for m in re.findall(r"^Time: ([\d.]+) ms", stdout, re.M)]
    if len(times) != len(timed) + 2:
        sys.exit(f"{op}: expected {len(timed) + 2} timings, got {len(times)}:\n{stdout}")
    wal = int(re.search(r"^\s*wal (\d+)", stdout, re.M).group(1))
    ids = int(re.search(r"^\s*ids (\d+)", stdout, re.M).group(1))
    return sum(times[:-1]) / 1000, times[-1] / 1000, wal, ids


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=100_000)
    p.add_argument("--ops", default="status,move,archive,restore,copy,purge")
    p.add_argument("--what-if", action="store_true")
    p.add_argument("--distinct-hashes", action="store_true")
    a = p.parse_args()
    known = (
        "status", "move", "archive", "restore", "copy", "purge", "move-heap-only", "move-name-table"
    )
    ops = a.ops.split(",")
    if a.what_if:
        ops += ["move-heap-only", "move-name-table"]
    for op in ops:
        if op not in known:
            p.error(f"unknown operation {op!r}: use {', '.join(known)}")
    version = psql(a.url, "\\pset tuples_only on\nSHOW server_version;").strip()
    print(f"PostgreSQL {version}; each operation on a fresh copy of the database")
    source = a.url
    if a.distinct_hashes:
        source = copy_database(a.url, "floor_source")
        with open(os.path.join(os.path.dirname(__file__), "distinct_hashes.sql")) as f:
            psql(source, f.read())
    try:
        report(ops, a.rounds, lambda op: one(source, op, a.batch), "WAL")
    finally:
        if a.distinct_hashes:
            drop_database(source)


if __name__ == "__main__":
    main()
