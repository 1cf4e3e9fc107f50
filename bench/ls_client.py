"""The Label Studio side of the benchmark: what a user's import/export script would do over its API.

Usage:
  python bench/ls_client.py project TITLE CLASSES             -> prints the new project's id
  python bench/ls_client.py import PROJECT_ID FOLDER [--batch N] [--parallel P]
  python bench/ls_client.py export PROJECT_ID OUT_DIR

Reads LS_URL (e.g. http://127.0.0.1:8081) and LS_TOKEN (a legacy API token, sent as
`Authorization: Token ...`). Runs in Label Studio's own venv (it ships `requests`).

project: an object-detection project (Image + RectangleLabels, one label per class folder).
import:  POST /api/projects/ID/import, multipart, one form field per file, in batches of N
         files (default 100: the server's DATA_UPLOAD_MAX_NUMBER_FILES), P batches at once
         (default 1, one after the other). Community edition imports synchronously, so a batch
         is done (its tasks created) when its request returns. Exits non-zero unless every
         file became a task.
export:  GET /api/projects/ID/export?exportType=YOLO_WITH_IMAGES&download_all_tasks=true
         (the server copies every image into a zip with the label files), streams the zip to
         disk and unpacks it into OUT_DIR; exits non-zero unless it holds one image per task.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def session() -> tuple[requests.Session, str]:
    s = requests.Session()
    s.headers["Authorization"] = f"Token {os.environ['LS_TOKEN']}"
    return s, os.environ["LS_URL"].rstrip("/")


def create_project(title: str, classes: list[str]) -> int:
    labels = "".join(f'<Label value="{c}"/>' for c in classes)
    config = (
        '<View><Image name="image" value="$image"/>'
        f'<RectangleLabels name="label" toName="image">{labels}</RectangleLabels></View>'
    )
    s, url = session()
    r = s.post(f"{url}/api/projects", json={"title": title, "label_config": config}, timeout=60)
    if r.status_code != 201:
        raise RuntimeError(f"project creation failed: HTTP {r.status_code}: {r.text[:500]}")
    return r.json()["id"]


def import_folder(project: int, folder: Path, batch: int, parallel: int) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    batches = [files[i : i + batch] for i in range(0, len(files), batch)]
    s, url = session()

    def send(paths: list[Path]) -> int:
        handles = [open(p, "rb") for p in paths]
        try:
            # One field per file, each with its own name: the server reads one file per field.
            form = [(f"file{i}", (p.name, h)) for i, (p, h) in enumerate(zip(paths, handles))]
            r = s.post(f"{url}/api/projects/{project}/import", files=form, timeout=3600)
        finally:
            for h in handles:
                h.close()
        if r.status_code != 201:
            raise RuntimeError(f"import failed: HTTP {r.status_code}: {r.text[:500]}")
        return int(r.json()["task_count"])

    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        created = sum(pool.map(send, batches))
    elapsed = time.perf_counter() - start
    print(f"import: {len(files)} files in {len(batches)} requests, {created} tasks, {elapsed:.2f} s in-process")
    return 0 if created == len(files) else 1


def export(project: int, out: Path) -> int:
    s, url = session()
    start = time.perf_counter()
    tasks = s.get(f"{url}/api/projects/{project}", timeout=60).json()["task_number"]
    out.mkdir(parents=True, exist_ok=True)
    zpath = out / "export.zip"
    params = {"exportType": "YOLO_WITH_IMAGES", "download_all_tasks": "true"}
    with s.get(f"{url}/api/projects/{project}/export", params=params, stream=True, timeout=3600) as r:
        if r.status_code != 200:
            raise RuntimeError(f"export failed: HTTP {r.status_code}: {r.text[:500]}")
        with open(zpath, "wb") as f:
            for chunk in r.iter_content(1 << 20):
                f.write(chunk)
    with zipfile.ZipFile(zpath) as z:
        z.extractall(out)
    zpath.unlink()
    images = sum(1 for p in out.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    elapsed = time.perf_counter() - start
    print(f"export: {images} images of {tasks} tasks, {elapsed:.2f} s in-process")
    return 0 if images == tasks else 1


def main() -> int:
    op, args = sys.argv[1], sys.argv[2:]
    if op == "project":
        print(create_project(args[0], args[1].split(",")))
        return 0
    if op == "import":
        batch, parallel = 100, 1
        rest = args[2:]
        while rest:
            flag, value, rest = rest[0], int(rest[1]), rest[2:]
            if flag == "--batch":
                batch = value
            elif flag == "--parallel":
                parallel = value
            else:
                print(f"unknown option {flag}", file=sys.stderr)
                return 2
        return import_folder(int(args[0]), Path(args[1]), batch, parallel)
    if op == "export":
        return export(int(args[0]), Path(args[1]))
    print(json.dumps({"error": f"unknown operation {op}"}), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
