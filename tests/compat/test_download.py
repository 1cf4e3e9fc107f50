"""datasets.download: modes, status filter, what lands on disk, and the report."""

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
    Point,
    PolygonAnnotation,
    PolygonGeometry,
)

from compat_helpers import ImageFactory, annotations_from_json_file, assert_same_annotations, unique_name


@dataclass
class Fixture:
    name: str
    dataset_id: str
    files: dict[str, Path]  # filename -> local original
    ids: dict[str, str]  # filename -> image id
    annotations: dict[str, list]  # filename -> saved annotations


@pytest.fixture(scope="module")
def populated(server, tmp_path_factory) -> Fixture:
    """a.jpg (/, 2 annotations), b.png (/x, complete, 1 annotation), c.webp (/y, none),
    plus d.jpg which is archived and must never be downloaded."""
    make = ImageFactory(tmp_path_factory.mktemp("dl-src"))
    with Client(api_key=server.keys["owner"], base_url=server.base_url) as c:
        name = unique_name("download")
        p = c.projects.create(name)
        files = {
            "a.jpg": make("a.jpg", size=(40, 30)),
            "b.png": make("x/b.png", size=(41, 31)),
            "c.webp": make("y/c.webp", size=(42, 32)),
        }
        folders = {"a.jpg": "/", "b.png": "/x", "c.webp": "/y"}
        ids = {fn: c.images.upload(p.id, f, folder_path=folders[fn]).id for fn, f in files.items()}
        annotations = {
            "a.jpg": [
                BBoxAnnotation(id="a1", name="car", bounding_box=BoundingBox(x=1, y=2, w=3, h=4), confidence=0.75),
                KeypointAnnotation(id="a2", name="nose", keypoint=Point(x=5, y=6), attributes=[{"k": "v"}]),
            ],
            "b.png": [
                PolygonAnnotation(
                    id="b1",
                    name="roof",
                    bounding_box=BoundingBox(x=0, y=0, w=10, h=10),
                    polygon=PolygonGeometry(paths=[[Point(x=0, y=0), Point(x=10, y=0), Point(x=10, y=10)]]),
                )
            ],
            "c.webp": [],
        }
        for fn, anns in annotations.items():
            if anns:
                c.annotations.save(ids[fn], anns)
        assert c.batch.update(name, [ids["b.png"]], status="complete").success

        archived = c.images.upload(p.id, make("d.jpg"), folder_path="/")
        c.images.delete(archived.id)
    return Fixture(name=name, dataset_id=p.id, files=files, ids=ids, annotations=annotations)


def _listing(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


def _check_images(out: Path, fx: Fixture, names) -> None:
    for fn in names:
        assert (out / fn).read_bytes() == fx.files[fn].read_bytes(), f"{fn}: downloaded bytes differ"


def _check_annotation_files(out: Path, fx: Fixture, names) -> None:
    for fn in names:
        payload, parsed = annotations_from_json_file(out / f"{fn}.json")
        if isinstance(payload, dict) and "image_id" in payload:
            assert payload["image_id"] == fx.ids[fn]
        assert_same_annotations(fx.annotations[fn], parsed)


def test_full(client, populated, tmp_path):
    out = tmp_path / "full"
    calls = []
    report = client.datasets.download(
        populated.name, out, mode="full", progress=lambda d, t, fn: calls.append((d, t, fn))
    )
    assert report.failures == []
    assert report.dataset_id == populated.dataset_id
    assert report.images_downloaded == 3
    assert report.annotations_downloaded == 3, "every listed image carries an annotation_url"
    assert report.success
    names = ["a.jpg", "b.png", "c.webp"]
    assert _listing(out) == set(names) | {f"{n}.json" for n in names}
    _check_images(out, populated, names)
    _check_annotation_files(out, populated, names)
    assert len(calls) == 6 and sorted(d for d, _, _ in calls) == list(range(1, 7))
    assert all(t == 6 for _, t, _ in calls)


def test_images_only(client, populated, tmp_path):
    out = tmp_path / "imgs"
    report = client.datasets.download(populated.name, out, mode="images_only")
    assert report.failures == []
    assert (report.images_downloaded, report.annotations_downloaded) == (3, 0)
    assert _listing(out) == {"a.jpg", "b.png", "c.webp"}
    _check_images(out, populated, ["a.jpg", "b.png", "c.webp"])


def test_annotations_only(client, populated, tmp_path):
    out = tmp_path / "anns"
    report = client.datasets.download(populated.name, out, mode="annotations_only")
    assert report.failures == []
    assert (report.images_downloaded, report.annotations_downloaded) == (0, 3)
    assert _listing(out) == {"a.jpg.json", "b.png.json", "c.webp.json"}
    _check_annotation_files(out, populated, ["a.jpg", "b.png", "c.webp"])


def test_status_filter(client, populated, tmp_path):
    out = tmp_path / "complete"
    report = client.datasets.download(populated.name, out, mode="full", status_filter="complete")
    assert report.failures == []
    assert (report.images_downloaded, report.annotations_downloaded) == (1, 1)
    assert _listing(out) == {"b.png", "b.png.json"}
    _check_images(out, populated, ["b.png"])
    _check_annotation_files(out, populated, ["b.png"])

    out = tmp_path / "new"
    report = client.datasets.download(populated.name, out, mode="images_only", status_filter="new")
    assert report.failures == []
    assert report.images_downloaded == 2
    assert _listing(out) == {"a.jpg", "c.webp"}

    out = tmp_path / "review"
    report = client.datasets.download(populated.name, out, mode="full", status_filter="review")
    assert (report.images_downloaded, report.annotations_downloaded, report.failures) == (0, 0, [])
    assert _listing(out) == set()


def test_empty_dataset(client, dataset, tmp_path):
    report = client.datasets.download(dataset.name, tmp_path / "empty")
    assert (report.images_downloaded, report.annotations_downloaded, report.failures) == (0, 0, [])
    assert _listing(tmp_path / "empty") == set()


def test_unknown_dataset(client, tmp_path):
    with pytest.raises(NotFoundError):
        client.datasets.download(unique_name("missing"), tmp_path / "x")
