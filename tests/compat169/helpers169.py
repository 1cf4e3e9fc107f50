"""Small helpers shared by the 1.69.146 compatibility tests (no fixtures here)."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

from PIL import Image as PILImage, ImageDraw
from pydantic import TypeAdapter

from pictograph import (
    Annotation,
    BBoxAnnotation,
    BoundingBox,
    KeypointAnnotation,
    OrientedBoxGeometry,
    Point,
    PolygonAnnotation,
    PolygonGeometry,
    PolylineAnnotation,
    PolylineGeometry,
)

API = "/api/v1/developer"
UA_169 = "pictograph-python/1.69.146"
UA_163 = "pictograph-python/1.6.3"

# suffix -> Pillow format name
FORMATS: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
}

ANNOTATION_LIST = TypeAdapter(list[Annotation])


def unique_name(prefix: str) -> str:
    """A dataset name that no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_image(path: Path, *, size: tuple[int, int] = (32, 24), seed: int = 0) -> Path:
    """Write a small deterministic image; ``seed`` changes the pixels (and bytes)."""
    path = Path(path)
    fmt = FORMATS[path.suffix.lower()]
    rng = random.Random(seed)
    width, height = size
    background = tuple(rng.randrange(256) for _ in range(3))
    img = PILImage.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    draw.rectangle([width // 4, height // 4, 3 * width // 4, 3 * height // 4], fill=tuple(255 - c for c in background))
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

    def __call__(self, relpath: str, *, size: tuple[int, int] = (32, 24), seed: int | None = None) -> Path:
        self._counter += 1
        return write_image(self.root / relpath, size=size, seed=self._counter * 7919 if seed is None else seed)

    def raw(self, relpath: str, data: bytes) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


# relative path -> virtual directory with organize_by_class=True (the default)
FOLDER_LAYOUT = {
    "stop/001.jpg": "/stop",
    "stop/002.png": "/stop",
    "stop/night/005.jpg": "/stop",  # nested directories collapse to the first level
    "yield/003.jpg": "/yield",
    "004.jpg": "/",
}


def make_tree(images: ImageFactory, name: str = "tree") -> Path:
    for i, rel in enumerate(sorted(FOLDER_LAYOUT)):
        images(f"{name}/{rel}", size=(24 + i, 16 + i))
    images.raw(f"{name}/notes.txt", b"not an image, must be ignored\n")
    return images.root / name


def every_type() -> list[Any]:
    """One annotation of each type, using every 1.69 extension."""
    return [
        BBoxAnnotation(
            id="box-1",
            name="car",
            bounding_box=BoundingBox(x=10, y=20, w=30, h=40),
            oriented_box=OrientedBoxGeometry(cx=25, cy=40, w=28, h=36, angle=15.5),
            confidence=0.75,
            attributes={"occluded": True, "colour": "red"},
        ),
        BBoxAnnotation(id="box-2", name="car", bounding_box=BoundingBox(x=1, y=2, w=3, h=4), attributes=[{"k": "v"}]),
        PolygonAnnotation(
            id="poly-1",
            name="car",
            polygon=PolygonGeometry(paths=[[Point(x=0, y=0), Point(x=10, y=0), Point(x=10, y=10)]]),
            attributes={"truncated": False},
        ),
        PolylineAnnotation(
            id="line-1",
            name="road",
            polyline=PolylineGeometry(path=[Point(x=0, y=5), Point(x=20, y=5), Point(x=40, y=5)]),
            created_by="tester",
        ),
        KeypointAnnotation(id="kp-1", name="nose", keypoint=Point(x=3, y=4), instance_id=1),
        KeypointAnnotation(id="kp-2", name="nose", keypoint=Point(x=13, y=14), instance_id=2, confidence=0.5),
    ]


def dumped(annotations: list[Any]) -> list[dict[str, Any]]:
    """What the 1.69 client sends for a list of annotations."""
    return [a.model_dump(mode="json", exclude_none=True) for a in annotations]


def legacy_view(ann: dict[str, Any]) -> dict[str, Any]:
    """The shape the server hands a 1.6.3 reader (oriented_box/instance_id dropped, object
    attributes as a one-element list, an empty object as [])."""
    out = {k: v for k, v in ann.items() if k not in ("oriented_box", "instance_id")}
    attrs = out.get("attributes")
    if isinstance(attrs, dict):
        out["attributes"] = [attrs] if attrs else []
    return out


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
