"""Small helpers shared by the compatibility tests (no fixtures here).

Everything that talks to the server goes through the real ``pictograph``
1.6.3 client, except the few "raw" checks that need to send payloads the
client's own pydantic models would refuse to build.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any, Iterable

from PIL import Image as PILImage, ImageDraw
from pydantic import TypeAdapter

from pictograph import Annotation

API = "/api/v1/developer"

IMAGE_STATUSES = ("new", "annotate", "review", "complete")

# suffix -> (Pillow format name, MIME type the client infers for that suffix)
FORMATS: dict[str, tuple[str, str]] = {
    ".jpg": ("JPEG", "image/jpeg"),
    ".jpeg": ("JPEG", "image/jpeg"),
    ".png": ("PNG", "image/png"),
    ".webp": ("WEBP", "image/webp"),
    ".bmp": ("BMP", "image/bmp"),
    ".tif": ("TIFF", "image/tiff"),
    ".tiff": ("TIFF", "image/tiff"),
    ".gif": ("GIF", "image/gif"),
}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

ANNOTATION_LIST = TypeAdapter(list[Annotation])


def unique_name(prefix: str) -> str:
    """A dataset/project name that no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_image(
    path: Path,
    *,
    size: tuple[int, int] = (32, 24),
    seed: int = 0,
    fmt: str | None = None,
) -> Path:
    """Write a small deterministic image; ``seed`` changes the pixels (and bytes)."""
    path = Path(path)
    if fmt is None:
        fmt = FORMATS[path.suffix.lower()][0]
    rng = random.Random(seed)
    width, height = size
    background = tuple(rng.randrange(256) for _ in range(3))
    accent = tuple(255 - c for c in background)
    img = PILImage.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    draw.rectangle(
        [width // 4, height // 4, max(width // 4, 3 * width // 4 - 1), max(height // 4, 3 * height // 4 - 1)],
        fill=accent,
    )
    # A few seeded pixels so two images of the same colours still differ.
    for _ in range(8):
        draw.point((rng.randrange(width), rng.randrange(height)), fill=(rng.randrange(256),) * 3)
    if fmt == "GIF":
        img = img.convert("P", palette=PILImage.Palette.ADAPTIVE)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


class ImageFactory:
    """Creates image files under one root directory; every call gets new pixels."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._counter = 0

    def __call__(
        self,
        relpath: str,
        *,
        size: tuple[int, int] = (32, 24),
        seed: int | None = None,
    ) -> Path:
        self._counter += 1
        if seed is None:
            seed = self._counter * 7919
        return write_image(self.root / relpath, size=size, seed=seed)

    def raw(self, relpath: str, data: bytes) -> Path:
        """Write arbitrary bytes (non-images, fake images)."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


def active_images(client: Any, dataset_name: str) -> list[Any]:
    """The dataset's non-archived images, as ``DatasetImage`` summaries."""
    ds = client.datasets.get(dataset_name, include_images=True, images_limit=10000)
    assert ds.images is not None, "include_images=True must return an 'images' list"
    return [img for img in ds.images if not img.is_archived]


def images_in_folder(client: Any, dataset_name: str, folder: str) -> dict[str, Any]:
    """filename -> DatasetImage for the non-archived images in one virtual folder."""
    found: dict[str, Any] = {}
    for img in active_images(client, dataset_name):
        if img.virtual_folder_path == folder:
            assert img.filename not in found, f"two active {img.filename!r} in {folder!r}"
            found[img.filename] = img
    return found


def download_bytes(client: Any, image_id: str, tmp_dir: Path) -> bytes:
    out = Path(tmp_dir) / f"dl-{uuid.uuid4().hex}"
    client.images.download(image_id, out)
    return out.read_bytes()


def enclosing_box(points: Iterable[Any]) -> tuple[float, float, float, float]:
    pts = list(points)
    xs = [p.x for p in pts]
    ys = [p.y for p in pts]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def _comparable(sent: Any, got: Any) -> Any:
    """Account for the one liberty the server may take: a computed bounding box.

    Polygons and polylines may be saved without ``bounding_box``; the server is
    allowed to fill it in. If it does, it must be the enclosing rectangle.
    """
    if sent.type in ("polygon", "polyline") and sent.bounding_box is None and got.bounding_box is not None:
        if sent.type == "polygon":
            pts = [p for ring in sent.polygon.paths[:1] for p in ring]
        else:
            pts = list(sent.polyline.path)
        x, y, w, h = enclosing_box(pts)
        bb = got.bounding_box
        assert (bb.x, bb.y, bb.w, bb.h) == (x, y, w, h), (
            f"computed bounding_box {bb} is not the enclosing rectangle of {sent.id}"
        )
        return got.model_copy(update={"bounding_box": None})
    return got


def assert_same_annotations(sent: list[Any], got: list[Any]) -> None:
    """The server returns what was saved: same order, same objects."""
    assert len(got) == len(sent), f"expected {len(sent)} annotations, got {len(got)}"
    for s, g in zip(sent, got):
        assert type(g) is type(s), f"{s.id}: type {type(g).__name__} != {type(s).__name__}"
        assert _comparable(s, g) == s, f"annotation {s.id} changed on the round trip:\n sent {s!r}\n got  {g!r}"


def annotations_from_json_file(path: Path) -> tuple[Any, list[Any]]:
    """Parse an ``<image>.json`` written by ``datasets.download``.

    Returns (raw payload, parsed annotations).
    """
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    raw = payload.get("annotations") if isinstance(payload, dict) else payload
    assert isinstance(raw, list), f"{path.name}: no annotation list in {payload!r}"
    return payload, ANNOTATION_LIST.validate_python(raw)
