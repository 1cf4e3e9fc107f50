"""Harness for the export-format suite.

One ``pictograph serve`` per session on a throw-away data directory (the binary built by
``cargo build``, or ``$PICTOGRAPH_BIN``), a key minted with ``pictograph keys create``, and
one dataset imported from a COCO folder made here with real image files. Exports are made
with the ``pictograph export`` command and read back with the formats' own readers.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
PFX = "/api/v1/developer"
DATASET = "formats-check"


def binary() -> Path:
    raw = os.environ.get("PICTOGRAPH_BIN")
    path = Path(raw) if raw else REPO_ROOT / "target" / "debug" / "pictograph"
    return path if path.is_absolute() else Path.cwd() / path


@dataclass
class Server:
    url: str
    key: str
    other_key: str
    env: dict[str, str]

    def cli(self, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        env["PICTOGRAPH_BASE_URL"] = self.url
        env["PICTOGRAPH_API_KEY"] = key or self.key
        return subprocess.run(
            [str(binary()), *args], capture_output=True, text=True, env=env, timeout=120
        )

    def cli_json(self, *args: str) -> dict[str, Any]:
        res = self.cli(*args, "--json")
        assert res.returncode == 0, f"{args} failed:\n{res.stdout}\n{res.stderr}"
        return json.loads(res.stdout)

    def get(self, path: str, **params: Any) -> Any:
        r = requests.get(self.url + PFX + path, params=params, headers={"X-API-Key": self.key}, timeout=30)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: Any) -> Any:
        r = requests.post(self.url + PFX + path, json=body, headers={"X-API-Key": self.key}, timeout=30)
        r.raise_for_status()
        return r.json()

    def truth(self, dataset: str) -> dict[str, dict[str, Any]]:
        """The dataset as the API has it: image path -> {width, height, annotations}."""
        page = self.get("/images/", dataset=dataset, limit=1000)
        out = {}
        for img in page["images"]:
            folder = img["virtual_folder_path"].strip("/")
            rel = f"{folder}/{img['filename']}" if folder else img["filename"]
            anns = self.get(f"/annotations/{img['id']}")["annotations"] or []
            out[rel] = {"id": img["id"], "width": img["width"], "height": img["height"], "annotations": anns}
        return out


def _start(tmp: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICTOGRAPH_")}
    env["PICTOGRAPH_CONFIG_DIR"] = str(tmp / "config")
    data = tmp / "data"
    proc = subprocess.Popen(
        [str(binary()), "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=open(tmp / "server.log", "wb"),
        env=env,
    )
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("listening on ") and not found.is_set():
                url.append(line[len("listening on "):].rstrip("/"))
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(60) or not url:
        proc.kill()
        raise RuntimeError("pictograph serve did not start:\n" + (tmp / "server.log").read_text())
    return proc, url[0], env


def _key(env: dict[str, str], data: Path, org: str) -> str:
    res = subprocess.run(
        [str(binary()), "keys", "create", "--data-dir", str(data), "--org", org, "--role", "owner", "--tier", "unlimited"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1].strip()


def _png(path: Path, w: int, h: int, seed: int, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (w, h))
    img.putdata([((seed * 40) % 256, (x * 5) % 256, (y * 7) % 256) for y in range(h) for x in range(w)])
    img.save(path, fmt)


def make_coco_source(root: Path) -> None:
    """Train and val images with boxes (integer and fractional), a polygon, a keypoint, a
    box touching the border, a score, and an image without annotations."""
    _png(root / "images/train/a.png", 64, 48, 1)
    _png(root / "images/train/b.jpg", 40, 30, 2, "JPEG")
    _png(root / "images/val/c.png", 50, 50, 3)
    _png(root / "images/val/d.png", 20, 10, 4)
    doc = {
        "images": [
            {"id": 1, "file_name": "train/a.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "train/b.jpg", "width": 40, "height": 30},
            {"id": 3, "file_name": "val/c.png", "width": 50, "height": 50},
            {"id": 4, "file_name": "val/d.png", "width": 20, "height": 10},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 6, 20, 10], "area": 200, "iscrowd": 0, "segmentation": []},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 8, 34, 40], "area": 1360, "iscrowd": 0, "segmentation": []},
            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [0, 0, 30, 20], "area": 300, "iscrowd": 0,
             "segmentation": [[0, 0, 30, 0, 30, 20]]},
            {"id": 4, "image_id": 1, "category_id": 4, "keypoints": [12, 14, 2], "num_keypoints": 1,
             "bbox": [12, 14, 0, 0], "area": 0, "iscrowd": 0},
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [2, 3, 11, 7], "area": 77, "iscrowd": 0, "segmentation": [], "score": 0.5},
            {"id": 6, "image_id": 3, "category_id": 2, "bbox": [10, 12, 25, 30], "area": 750, "iscrowd": 0, "segmentation": []},
            {"id": 7, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0, "segmentation": []},
        ],
        "categories": [
            {"id": 1, "name": "car"}, {"id": 2, "name": "bus"}, {"id": 3, "name": "road"},
            {"id": 4, "name": "nose", "keypoints": ["nose"], "skeleton": []},
        ],
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations/instances.json").write_text(json.dumps(doc))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not binary().is_file():
        pytest.exit(f"binary not found: {binary()} (run `cargo build` first)", returncode=2)
    tmp = tmp_path_factory.mktemp("server")
    proc, url, env = _start(tmp)
    try:
        yield Server(url, _key(env, tmp / "data", "formats-org"), _key(env, tmp / "data", "other-org"), env)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def dataset(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The checked dataset: the COCO source imported, plus a polyline (which COCO, YOLO and
    VOC cannot hold)."""
    src = tmp_path_factory.mktemp("source")
    make_coco_source(src)
    report = server.cli_json("import", str(src), "--format", "coco", "--dataset", DATASET, "--create")
    assert report["uploaded"] == 4 and report["annotations"] == 7, report
    truth = server.truth(DATASET)
    a = truth["train/a.png"]
    anns = a["annotations"] + [{
        "id": "lane-1", "name": "road", "type": "polyline",
        "polyline": {"path": [{"x": 0.0, "y": 40.0}, {"x": 30.0, "y": 35.0}, {"x": 60.0, "y": 44.0}]},
        "confidence": 1.0, "attributes": [],
    }]
    server.post(f"/annotations/{a['id']}", {"image_id": a["id"], "annotations": anns})
    return DATASET
