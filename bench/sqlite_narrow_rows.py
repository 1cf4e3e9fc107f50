#!/usr/bin/env python3
"""What narrower image rows would save SQLite's batch statements (not a test).

Usage: bench/sqlite_narrow_rows.py DB [--rounds N] [--batch K] [--ops archive,move,status]
                                   [--variants none,id,dataset,hash,times,all,A+B]

DB is a seeded pictograph.db made before the server's migration 0015, which stores the
dataset, hashes and times narrower since (see bench/sqlite_floor.py). Each variant is a copy of its
images in a table laid out as the server's, with some columns stored narrower:

  none     as the server stores them (text ids, dataset ids, hashes and times)
  id       image ids as 16 bytes instead of 36 characters
  dataset  the dataset as the datasets table's integer row id instead of its 36-character id
  hash     the SHA-256 as 32 bytes instead of 64 hex digits
  times    created_at and updated_at as microseconds since 1970 instead of 27 characters
  all      all four
  A+B      the columns of several of these, e.g. dataset+hash+times

with the same indexes (name, listing order over all and over live images, bytes) and the
same counter trigger on updates, built once per variant next to DB (DB.narrow-VARIANT, about
300-650 MB each for a million images; removed at the end). Each round then copies a variant
and runs the batch statement of each operation over K ids spread evenly over the largest
dataset, in chunks of 10,000, one transaction, with the server's log settings, and syncs
the log, as bench/sqlite_floor.py does. Prints each run with the bytes logged, then medians.
Uses the pysqlite3 module when it is installed (`pip install pysqlite3-binary`: a SQLite as
recent as the server's), the standard one otherwise.
"""

import argparse
import json
import os
import shutil

try:
    import pysqlite3 as sqlite3
except ImportError:
    import sqlite3

from floor_rounds import report, spread_ids, sqlite_copy, sqlite_timed

COLUMNS = ("id", "dataset", "hash", "times")
DEFAULT_VARIANTS = ("none",) + COLUMNS + ("all",)
SETS = {
    "archive": "is_archived = 1",
    "move": "folder = '/moved-by-bench'",
    "status": "status = 'review'",
}
CHUNK = 10_000
# 2026-01-01T00:00:00Z, in the two forms.
AT_TEXT = "'2026-01-01T00:00:00.000000Z'"
AT_MICROS = "1767225600000000"


def micros(column):
    """SQL turning an ISO time column (microseconds after the dot) into microseconds."""
    return (
        f"(unixepoch(substr(i.{column}, 1, 19)) * 1000000 "
        f"+ CAST(substr(i.{column}, 21, 6) AS INTEGER))"
    )


def narrowed(variant):
    """The columns variant `variant` stores narrower, or None for an unknown name."""
    if variant == "none":
        return set()
    if variant == "all":
        return set(COLUMNS)
    parts = set(variant.split("+"))
    return parts if parts <= set(COLUMNS) else None


def build(src, path, narrow):
    """Writes the variant with the `narrow` columns to `path` (once)."""
    if os.path.exists(path):
        return
    shutil.copyfile(src, path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = DELETE")
    id_ = "unhex(replace(i.id, '-', ''))" if "id" in narrow else "i.id"
    dataset = "d.rowid" if "dataset" in narrow else "i.dataset_id"
    hash_ = "unhex(i.blob_hash)" if "hash" in narrow else "i.blob_hash"
    created, updated = (
        (micros("created_at"), micros("updated_at"))
        if "times" in narrow
        else ("i.created_at", "i.updated_at")
    )
    live_marker = "x''" if "id" in narrow else "''"
    # The server's update trigger, for the narrow table (dataset found by row id there).
    row = db.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'images_counters_update'"
    ).fetchone()
    if row is None:
        raise SystemExit("the database has no images_counters_update trigger")
    trigger = row[0].replace("images_counters_update", "narrow_counters_update")
    trigger = trigger.replace(" ON images", " ON narrow")
    if "dataset" in narrow:
        trigger = trigger.replace("WHERE id = NEW.dataset_id", "WHERE rowid = NEW.dataset_id")
    db.executescript(
        f"""
        CREATE TABLE narrow (id PRIMARY KEY, dataset_id NOT NULL, folder TEXT NOT NULL,
            filename TEXT NOT NULL, display_name TEXT, status TEXT NOT NULL,
            is_archived INTEGER NOT NULL, blob_hash NOT NULL, file_size INTEGER NOT NULL,
            mime_type TEXT NOT NULL, width INTEGER, height INTEGER,
            annotation_count INTEGER NOT NULL, version INTEGER NOT NULL,
            created_at NOT NULL, updated_at NOT NULL);
        INSERT INTO narrow SELECT {id_}, {dataset}, i.folder, i.filename, i.display_name,
            i.status, i.is_archived, {hash_}, i.file_size, i.mime_type, i.width, i.height,
            i.annotation_count, i.version, {created}, {updated}
            FROM images i JOIN datasets d ON d.id = i.dataset_id ORDER BY i.rowid;
        CREATE UNIQUE INDEX narrow_name ON narrow (dataset_id, folder, filename,
            (CASE WHEN is_archived = 0 THEN {live_marker} ELSE id END));
        CREATE INDEX narrow_order ON narrow (dataset_id, created_at, id);
        CREATE INDEX narrow_live_order ON narrow (dataset_id, created_at, id)
            WHERE is_archived = 0;
        CREATE INDEX narrow_blob ON narrow (blob_hash);
        DROP TABLE images;
        """
    )
    db.executescript(trigger + ";")
    db.execute("VACUUM")
    db.close()


def one(path, narrow, op, ids, dataset):
    """Runs `op` on a copy of variant `path`; (statements s, commit s, log bytes, ids)."""
    scratch = path + ".run"
    db = sqlite_copy(sqlite3, path, scratch)
    at = AT_MICROS if "times" in narrow else AT_TEXT
    key = "dataset_id + 0" if "dataset" in narrow else "dataset_id || ''"
    value = "unhex(value)" if "id" in narrow else "value"
    sql = (
        f"UPDATE OR FAIL narrow SET {SETS[op]}, updated_at = {at}, version = version + 1 "
        f"WHERE {key} = ? AND id IN (SELECT {value} FROM json_each(?))"
    )
    if "id" in narrow:
        ids = [i.replace("-", "") for i in ids]
    chunks = [json.dumps(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]
    dataset = dataset[1] if "dataset" in narrow else dataset[0]

    def run():
        for chunk in chunks:
            db.execute(sql, (dataset, chunk))

    return sqlite_timed(db, scratch, run, len(ids))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=100_000)
    p.add_argument("--ops", default="archive,move,status")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    a = p.parse_args()
    ops, variants = a.ops.split(","), a.variants.split(",")
    for op in ops:
        if op not in SETS:
            p.error(f"unknown operation {op!r}: use {', '.join(SETS)}")
    for v in variants:
        if narrowed(v) is None:
            p.error(f"unknown variant {v!r}: use none, all or {'+'.join(COLUMNS)} parts")
    db = sqlite3.connect(a.db)
    if db.execute("SELECT 1 FROM pragma_table_info('images') WHERE name = 'dataset_seq'").fetchone():
        raise SystemExit("the database is laid out narrow already (migration 0015)")
    dataset_id, ids = spread_ids(db, a.batch)
    # The dataset as each variant names it: its id, or its row id in `datasets`.
    (row_id,) = db.execute("SELECT rowid FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
    dataset = (dataset_id, row_id)
    db.close()
    paths = {v: f"{a.db}.narrow-{v}" for v in variants}
    print(f"SQLite {sqlite3.sqlite_version}; {a.db}")
    try:
        for v in variants:
            build(a.db, paths[v], narrowed(v))
            print(f"{v}: {os.path.getsize(paths[v]) / 1e6:.0f} MB", flush=True)
        labels = [f"{v} {op}" for v in variants for op in ops]

        def measure(label):
            v, op = label.split(" ")
            return one(paths[v], narrowed(v), op, ids, dataset)

        report(labels, a.rounds, measure, "log")
    finally:
        for path in paths.values():
            if os.path.exists(path):
                os.remove(path)


if __name__ == "__main__":
    main()
