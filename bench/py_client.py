"""The official Python client (pictograph 1.6.3) side of the benchmark.

Usage:
  python bench/py_client.py upload FOLDER DATASET
  python bench/py_client.py download DATASET OUT_DIR

Reads PICTOGRAPH_API_KEY and PICTOGRAPH_BASE_URL. Uses the client's defaults (8 upload
workers, 10 download workers). Exits non-zero when any file failed, so a broken run is never
timed as a fast one.
"""

from __future__ import annotations

import sys
import time

from pictograph import Client
from pictograph.workflows import upload_dataset_from_folder


def main() -> int:
    op = sys.argv[1]
    start = time.perf_counter()
    with Client() as client:
        if op == "upload":
            folder, dataset = sys.argv[2], sys.argv[3]
            r = upload_dataset_from_folder(client, dataset, folder)
            failed = len(r.failures)
            done = r.images_uploaded + r.images_skipped
        elif op == "download":
            dataset, out = sys.argv[2], sys.argv[3]
            r = client.datasets.download(dataset, out, mode="full")
            failed = len(r.failures)
            done = r.images_downloaded
        else:
            print(f"unknown operation {op}", file=sys.stderr)
            return 2
    elapsed = time.perf_counter() - start
    print(f"{op}: {done} images, {failed} failed, {elapsed:.2f} s in-process")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
