"""Copies a folder the way a store that acknowledges only durable bytes has to (not a test).

Every file is written to a temporary name beside its target, synced, renamed into place,
and its directory synced, by WORKERS threads at once (default 16, the number of files the
CLI uploads at once by default). It is `cp -r` with the durability our server gives an
acknowledged upload, and without HTTP, hashing or format checks: the floor for an upload
that must survive a crash.

With --sha256, each file's SHA-256 is also computed before it is written, as the server
does to store bytes by content: the floor for a durable, content-addressed upload.

Usage: durable_copy.py [--sha256] SRC DST [WORKERS]
"""

import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor


def store(job):
    path, out_dir, name, sha256 = job
    with open(path, "rb") as f:
        data = f.read()
    if sha256:
        hashlib.sha256(data).digest()
    tmp = os.path.join(out_dir, f".{name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(out_dir, name))
    dir_fd = os.open(out_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def main():
    args = sys.argv[1:]
    sha256 = "--sha256" in args
    args = [a for a in args if a != "--sha256"]
    src, dst = args[0], args[1]
    workers = int(args[2]) if len(args) > 2 else 16
    jobs = []
    for root, _, files in os.walk(src):
        out_dir = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(out_dir, exist_ok=True)
        jobs += [(os.path.join(root, name), out_dir, name, sha256) for name in files]
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(store, jobs):
            pass


if __name__ == "__main__":
    main()
