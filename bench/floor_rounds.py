"""The round loop and report of bench/sqlite_floor.py and bench/postgres_floor.py (imported,
not run)."""

import statistics


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
