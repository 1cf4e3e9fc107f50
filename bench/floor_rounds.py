"""The round loop and report of bench/sqlite_floor.py, bench/sqlite_narrow_rows.py and
bench/postgres_floor.py, and the scratch copies of the SQLite ones (imported, not run)."""

import os
import shutil
import statistics
import time

SCRATCH_SUFFIXES = ("", "-wal", "-shm")


def spread_ids(db, batch):
    """The largest dataset of SQLite connection `db` and `batch` of its image ids spread
    evenly over it (every n-th in listing order): (dataset id, ids). Reads the images by
    the dataset's number (`dataset_seq`), or, in a database made before migration 0015, by
    its id."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(images)")}
    key = "dataset_seq" if "dataset_seq" in columns else "dataset_id"
    (value,) = db.execute(
        f"SELECT {key} FROM images GROUP BY {key} ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()
    ids = [
        r[0]
        for r in db.execute(f"SELECT id FROM images WHERE {key} = ? ORDER BY created_at, id", (value,))
    ]
    dataset = value
    if key == "dataset_seq":
        (dataset,) = db.execute("SELECT id FROM datasets WHERE seq = ?", (value,)).fetchone()
    return dataset, ids[:: max(1, len(ids) // batch)][:batch]


def sqlite_copy(sqlite3, src, scratch, pragmas=()):
    """Copies database `src` to `scratch` and opens it through module `sqlite3` with the
    server's log settings: WAL, synchronous NORMAL (the log is synced once the commit
    returns, see `sqlite_timed`), no automatic checkpoint within a batch; then `pragmas`
    (`NAME=VALUE` settings to try)."""
    shutil.copyfile(src, scratch)
    for suffix in SCRATCH_SUFFIXES[1:]:
        if os.path.exists(scratch + suffix):
            os.remove(scratch + suffix)
    db = sqlite3.connect(scratch, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA wal_autocheckpoint = 250000")
    for pragma in pragmas:
        db.execute(f"PRAGMA {pragma}")
    return db


def sqlite_timed(db, scratch, run, n):
    """Runs `run()` in one write transaction of `db` (a `sqlite_copy` at `scratch`), commits
    it and syncs the log, as the server's answer waits for; closes `db` and removes its
    files. Answers (statements s, commit s, log bytes, n), as `report` takes them."""
    start = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    run()
    statements = time.perf_counter()
    db.execute("COMMIT")
    log = os.open(scratch + "-wal", os.O_RDONLY)
    os.fdatasync(log)
    os.close(log)
    end = time.perf_counter()
    wal = os.path.getsize(scratch + "-wal")
    db.close()
    for suffix in SCRATCH_SUFFIXES:
        if os.path.exists(scratch + suffix):
            os.remove(scratch + suffix)
    return statements - start, end - statements, wal, n


def report(ops, rounds, measure, log):
    """Runs `measure(op)`, which answers (statements s, commit s, log bytes, ids), for each
    operation, round after round; prints each run, then the median of each operation's total.
    `log` names what the log is (e.g. "WAL")."""
    width = max(len(op) for op in ops)
    totals = {op: [] for op in ops}
    for r in range(1, rounds + 1):
        for op in ops:
            st, co, size, n = measure(op)
            totals[op].append(st + co)
            print(
                f"round {r} {op:{width}} {n:,} ids: statements {st * 1000:7.0f} ms, "
                f"commit {co * 1000:6.0f} ms, all {(st + co) * 1000:7.0f} ms, "
                f"{log} {size / 1e6:5.0f} MB",
                flush=True,
            )
    print("medians:")
    for op in ops:
        print(f"  {op:{width}} {statistics.median(totals[op]) * 1000:7.0f} ms")
