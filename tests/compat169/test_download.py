"""datasets.download (1.69.146: ``GET /datasets/{name}/download`` -> ``data.items``) in every
mode, with a status filter, by name and by id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pictograph import (
    BBoxAnnotation,
    BoundingBox,
    Client,
    KeypointAnnotation,
    NotFoundError,
    OrientedBoxGeometry,
    Point,
    PolygonAnnotation,
    PolygonGeometry,
)

from helpers169 import ANNOTATION_LIST, ImageFactory, read_json, unique_name


@dataclass
class Fixture:
    name: str
    dataset_id: str
    files: dict[str, Path]
    ids: dict[str, str]
    annotations: dict[str, list]


@pytest.fixture(scope="module")
def populated(server, tmp_path_factory) -> Fixture:
    """a.jpg (/, 2 annotations with extensions), b.png (/x, complete, 1 annotation),
    c.webp (/y, none), and d.jpg which is archived and never downloaded."""
    make = ImageFactory(tmp_path_factory.mktemp("dl-src"))
    with Client(api_key=server.keys["owner"], base_url=server.base_url) as c:
        name = unique_name("download")
        ds = c.datasets.create(name)
        files = {"a.jpg": make("a.jpg"), "b.png": make("x/b.png"), "c.webp": make("y/c.webp")}
        folders = {"a.jpg": "/", "b.png": "/x", "c.webp": "/y"}
        ids = {fn: c.images.upload(name, f, directory_path=folders[fn]).id for fn, f in files.items()}
        annotations = {
            "a.jpg": [
                BBoxAnnotation(id="a1", name="car", bounding_box=BoundingBox(x=1, y=2, w=3, h=4),
                               oriented_box=OrientedBoxGeometry(cx=2.5, cy=4, w=3, h=4, angle=90), confidence=0.75),
                KeypointAnnotation(id="a2", name="nose", keypoint=Point(x=5, y=6), attributes={"k": "v"}, instance_id=1),
            ],
            "b.png": [
                PolygonAnnotation(
                    id="b1", name="roof", bounding_box=BoundingBox(x=0, y=0, w=10, h=10),
                    polygon=PolygonGeometry(paths=[[Point(x=0, y=0), Point(x=10, y=0), Point(x=10, y=10)]]),
                )
            ],
            "c.webp": [],
        }
        for fn, anns in annotations.items():
            if anns:
                c.annotations.save(name, ids[fn], anns)
        assert c.batch.update(name, [ids["b.png"]], status="complete").success
        c.images.upload(name, make("d.jpg"))
        c.images.delete(name, "d.jpg")
    return Fixture(name=name, dataset_id=ds.id, files=files, ids=ids, annotations=annotations)


def _listing(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


def _check(out: Path, fx: Fixture, images=(), annotations=()) -> None:
    for fn in images:
        assert (out / fn).read_bytes() == fx.files[fn].read_bytes(), f"{fn}: downloaded bytes differ"
    for fn in annotations:
        payload = read_json(out / f"{fn}.json")
        assert payload["image_id"] == fx.ids[fn]
        assert ANNOTATION_LIST.validate_python(payload["annotations"]) == fx.annotations[fn]


def test_full(client, populated, tmp_path):
    out = tmp_path / "full"
    calls = []
    report = client.datasets.download(populated.name, out, progress=lambda d, t, fn: calls.append(d))
    assert report.failures == [] and report.success and not report.truncated
    assert report.dataset_id == populated.dataset_id
    assert (report.images_downloaded, report.annotations_downloaded) == (3, 3)
    names = ["a.jpg", "b.png", "c.webp"]
    assert _listing(out) == set(names) | {f"{n}.json" for n in names}
    _check(out, populated, names, names)
    assert sorted(calls) == list(range(1, 7))


def test_by_dataset_id_images_only(client, populated, tmp_path):
    out = tmp_path / "imgs"
    report = client.datasets.download(dataset_id=populated.dataset_id, output_dir=out, mode="images_only")
    assert (report.images_downloaded, report.annotations_downloaded, report.failures) == (3, 0, [])
    assert _listing(out) == {"a.jpg", "b.png", "c.webp"}
    _check(out, populated, images=["a.jpg", "b.png", "c.webp"])


def test_annotations_only(client, populated, tmp_path):
    out = tmp_path / "anns"
    report = client.datasets.download(populated.name, out, mode="annotations_only")
    assert (report.images_downloaded, report.annotations_downloaded, report.failures) == (0, 3, [])
    assert _listing(out) == {"a.jpg.json", "b.png.json", "c.webp.json"}
    _check(out, populated, annotations=["a.jpg", "b.png", "c.webp"])


def test_status_filter(client, populated, tmp_path):
    out = tmp_path / "complete"
    report = client.datasets.download(populated.name, out, status_filter="complete")
    assert (report.images_downloaded, report.annotations_downloaded, report.failures) == (1, 1, [])
    assert _listing(out) == {"b.png", "b.png.json"}
    _check(out, populated, ["b.png"], ["b.png"])
    report = client.datasets.download(populated.name, tmp_path / "review", status_filter="review")
    assert (report.images_downloaded, report.annotations_downloaded) == (0, 0)


def test_empty_and_unknown_dataset(client, dataset, tmp_path):
    report = client.datasets.download(dataset.name, tmp_path / "empty")
    assert (report.images_downloaded, report.annotations_downloaded, report.failures) == (0, 0, [])
    with pytest.raises(NotFoundError):
        client.datasets.download(unique_name("missing"), tmp_path / "x")
