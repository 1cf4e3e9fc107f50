"""Annotations: canonical JSON round trip, replace semantics, delete, validation."""

from __future__ import annotations

import copy
import uuid

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
    PolylineAnnotation,
    PolylineGeometry,
    ValidationError,
)

from compat_helpers import API, ImageFactory, assert_same_annotations, unique_name

CLASSES = [
    {"name": "car", "type": "bbox"},
    {"name": "building", "type": "polygon"},
    {"name": "road", "type": "polyline"},
    {"name": "nose", "type": "keypoint"},
]


def P(x: float, y: float) -> Point:
    return Point(x=x, y=y)


def four_annotations() -> list:
    return [
        BBoxAnnotation(
            id="a-bbox",
            name="car",
            bounding_box=BoundingBox(x=1.5, y=2, w=30, h=20.25),
            confidence=0.9,
            attributes=["occluded", {"k": "v"}],
        ),
        PolygonAnnotation(
            id="a-poly",
            name="building",
            polygon=PolygonGeometry(
                paths=[
                    [P(0, 0), P(40, 0), P(40, 30), P(0, 30)],
                    [P(10, 10), P(20, 10), P(20, 20)],  # a hole
                ]
            ),
        ),
        PolylineAnnotation(
            id="a-line",
            name="road",
            polyline=PolylineGeometry(path=[P(0, 5), P(10, 15), P(20, 5)]),
            created_by="compat-suite",
        ),
        KeypointAnnotation(id="a-kp", name="nose", keypoint=P(3.25, 4.75), attributes=[{"visible": True}]),
    ]


@pytest.fixture
def classy(client, images):
    """A project with four classes (one per annotation type) and one uploaded image."""
    p = client.projects.create(
        unique_name("ann"),
        annotation_types=["bbox", "polygon", "polyline", "keypoint"],
        classes=CLASSES,
    )
    img = client.images.upload(p.id, images("scene.png", size=(64, 48)))
    return p, img


def test_save_get_roundtrip_all_types(client, classy):
    _, img = classy
    assert client.annotations.get(img.id) == []

    sent = four_annotations()
    res = client.annotations.save(img.id, sent)
    assert res.image_id == img.id
    assert (res.previous_count, res.new_count) == (0, 4)
    assert res.status in ("new", "annotate", "review", "complete")

    got = client.annotations.get(img.id)
    assert_same_annotations(sent, got)

    meta = client.images.get(img.id)
    assert meta.annotation_count == 4
    assert meta.status == res.status == "new", "saving annotations does not change the image status"


def test_save_replaces(client, classy):
    _, img = classy
    client.annotations.save(img.id, four_annotations())

    only = [BBoxAnnotation(id="solo", name="car", bounding_box=BoundingBox(x=0, y=0, w=5, h=5))]
    res = client.annotations.save(img.id, only)
    assert (res.previous_count, res.new_count) == (4, 1)
    assert_same_annotations(only, client.annotations.get(img.id))
    assert client.images.get(img.id).annotation_count == 1

    res = client.annotations.save(img.id, [])
    assert (res.previous_count, res.new_count) == (1, 0)
    assert client.annotations.get(img.id) == []
    assert client.images.get(img.id).annotation_count == 0


def test_generated_ids_and_bounding_boxes(client, classy):
    """ids auto-filled by the SDK survive; a flat polyline (zero-height box) stays readable."""
    _, img = classy
    sent = [
        BBoxAnnotation(name="car", bounding_box=BoundingBox(x=-5, y=-5, w=10, h=10)),
        PolylineAnnotation(name="road", polyline=PolylineGeometry(path=[P(0, 100), P(50, 100), P(100, 100)])),
        PolygonAnnotation(
            name="building",
            bounding_box=BoundingBox(x=0, y=0, w=2, h=2),
            polygon=PolygonGeometry(paths=[[P(0, 0), P(2, 0), P(2, 2)]]),
        ),
    ]
    client.annotations.save(img.id, sent)
    got = client.annotations.get(img.id)
    assert_same_annotations(sent, got)
    assert [a.id for a in got] == [a.id for a in sent]


def test_delete_annotations(client, member_client, classy):
    _, img = classy
    client.annotations.save(img.id, four_annotations())
    res = member_client.annotations.delete(img.id)
    assert res.image_id == img.id
    assert res.deleted_count == 4
    assert client.annotations.get(img.id) == []
    assert client.images.get(img.id).annotation_count == 0
    assert client.annotations.delete(img.id).deleted_count == 0


def test_class_not_in_project_is_rejected(client, classy):
    _, img = classy
    client.annotations.save(img.id, four_annotations()[:1])
    bad = [BBoxAnnotation(name="truck", bounding_box=BoundingBox(x=0, y=0, w=1, h=1))]
    with pytest.raises(ValidationError) as ei:
        client.annotations.save(img.id, bad)
    assert ei.value.status_code in (400, 422)
    # case-sensitive match
    with pytest.raises(ValidationError):
        client.annotations.save(img.id, [BBoxAnnotation(name="Car", bounding_box=BoundingBox(x=0, y=0, w=1, h=1))])
    assert [a.id for a in client.annotations.get(img.id)] == ["a-bbox"], "a rejected save changes nothing"


def test_project_without_classes_accepts_any_name(client, dataset, images):
    img = client.images.upload(dataset.id, images("free.png"))
    sent = [
        BBoxAnnotation(name="anything-goes", bounding_box=BoundingBox(x=1, y=1, w=2, h=2)),
        KeypointAnnotation(name="Whatever Else", keypoint=P(0, 0)),
    ]
    res = client.annotations.save(img.id, sent)
    assert res.new_count == 2
    assert_same_annotations(sent, client.annotations.get(img.id))


def test_unknown_image(client):
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError):
        client.annotations.get(missing)
    with pytest.raises(NotFoundError):
        client.annotations.save(missing, [BBoxAnnotation(name="car", bounding_box=BoundingBox(x=0, y=0, w=1, h=1))])
    with pytest.raises(NotFoundError):
        client.annotations.delete(missing)


# ───────────── server-side validation (raw HTTP; the SDK models refuse these) ─────────────

VALID_BBOX = {
    "id": "v1",
    "name": "car",
    "type": "bbox",
    "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0},
    "confidence": 1.0,
    "attributes": [],
}


def _with(**changes):
    ann = copy.deepcopy(VALID_BBOX)
    ann["id"] = "bad"  # distinct from the valid item sent alongside
    for key, value in changes.items():
        if value is _DROP:
            ann.pop(key, None)
        else:
            ann[key] = value
    return ann


_DROP = object()

INVALID = {
    "bbox-zero-width": _with(bounding_box={"x": 0, "y": 0, "w": 0, "h": 4}),
    "bbox-negative-height": _with(bounding_box={"x": 0, "y": 0, "w": 3, "h": -1}),
    "bbox-missing-geometry": _with(bounding_box=_DROP),
    "bbox-extra-geometry-key": _with(bounding_box={"x": 0, "y": 0, "w": 1, "h": 1, "r": 0}),
    "confidence-above-one": _with(confidence=1.5),
    "confidence-negative": _with(confidence=-0.1),
    "blank-name": _with(name="   "),
    "blank-id": _with(id=""),
    "unknown-type": _with(type="box"),
    "unknown-key": _with(reviewer={"annotator": "x"}),
    "metadata-not-object": _with(metadata="x"),
    "attributes-not-list": _with(attributes="nope"),
    "polygon-ring-of-two": {
        "id": "p", "name": "building", "type": "polygon",
        "polygon": {"paths": [[{"x": 0, "y": 0}, {"x": 1, "y": 1}]]},
        "confidence": 1.0, "attributes": [],
    },
    "polygon-no-rings": {
        "id": "p", "name": "building", "type": "polygon",
        "polygon": {"paths": []}, "confidence": 1.0, "attributes": [],
    },
    "polyline-one-point": {
        "id": "l", "name": "road", "type": "polyline",
        "polyline": {"path": [{"x": 0, "y": 0}]}, "confidence": 1.0, "attributes": [],
    },
    "keypoint-with-bbox": {
        "id": "k", "name": "nose", "type": "keypoint", "keypoint": {"x": 1, "y": 1},
        "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}, "confidence": 1.0, "attributes": [],
    },
    "point-extra-key": {
        "id": "k", "name": "nose", "type": "keypoint", "keypoint": {"x": 1, "y": 1, "z": 2},
        "confidence": 1.0, "attributes": [],
    },
}


@pytest.fixture(scope="module")
def raw_target(server, tmp_path_factory):
    """One image in a classed project, with one valid annotation already saved."""
    with Client(api_key=server.keys["owner"], base_url=server.base_url) as c:
        p = c.projects.create(
            unique_name("ann-raw"),
            annotation_types=["bbox", "polygon", "polyline", "keypoint"],
            classes=CLASSES,
        )
        img = c.images.upload(p.id, ImageFactory(tmp_path_factory.mktemp("raw-img"))("t.png"))
        c.annotations.save(img.id, [BBoxAnnotation(id="keep", name="car", bounding_box=BoundingBox(x=1, y=1, w=1, h=1))])
    return img.id


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_payload_is_422_with_detail_list(server, raw, raw_target, case):
    http = raw("owner")
    resp = http.post(
        f"{API}/annotations/{raw_target}",
        json={"image_id": raw_target, "annotations": [VALID_BBOX, INVALID[case]]},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert resp.status_code == 422, f"{case}: HTTP {resp.status_code} {resp.text[:300]}"
    body = resp.json()
    assert isinstance(body.get("detail"), list) and body["detail"], f"{case}: detail must be a non-empty list: {body}"
    for item in body["detail"]:
        assert isinstance(item, dict) and "loc" in item and "msg" in item, f"{case}: bad detail item {item}"

    with Client(api_key=server.keys["owner"], base_url=server.base_url) as c:
        assert [a.id for a in c.annotations.get(raw_target)] == ["keep"], f"{case}: rejected save changed data"


def test_valid_raw_payload_is_accepted(client, dataset, images, raw):
    """Control for the parametrized cases: the same request shape with valid items succeeds."""
    img = client.images.upload(dataset.id, images("ctrl.png"))
    http = raw("owner")
    items = [VALID_BBOX, dict(VALID_BBOX, id="v2")]
    resp = http.post(
        f"{API}/annotations/{img.id}",
        json={"image_id": img.id, "annotations": items},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert resp.status_code in (200, 201), resp.text
    body = resp.json()
    assert body["image_id"] == img.id and body["previous_count"] == 0 and body["new_count"] == 2
    got = http.get(f"{API}/annotations/{img.id}")
    assert got.status_code == 200
    assert got.json()["annotations"] == items


def test_readme_shorthand_with_metadata_reads_back_canonical(client, dataset, images, raw):
    """The seed README's shorthand (`bbox: [x, y, w, h]`, point lists, `metadata`) cannot be
    sent by the 1.6.3 client, but a plain HTTP client or our Rust SDK can: the official client
    then reads it back as canonical models (the closing polygon point dropped, `metadata`
    withheld since its models forbid the key), while a caller asking for metadata gets it."""
    img = client.images.upload(dataset.id, images("shorthand.png"))
    metadata = {"annotator": "john@example.com", "difficulty": "easy", "verified": True}
    items = [
        {"id": "ann-1", "name": "person", "type": "bbox", "bbox": [100, 200, 50, 80],
         "confidence": 0.95, "metadata": metadata},
        {"id": "ann-2", "name": "car", "type": "polygon", "polygon": [[10, 20], [30, 40], [50, 60], [10, 20]]},
        {"id": "ann-3", "name": "road", "type": "polyline", "polyline": [[0, 100], [50, 100], [100, 100]]},
        {"id": "ann-4", "name": "landmark", "type": "keypoint", "keypoint": [150, 200]},
    ]
    http = raw("owner")
    resp = http.post(
        f"{API}/annotations/{img.id}",
        json={"image_id": img.id, "annotations": items},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["new_count"] == 4

    got = client.annotations.get(img.id)
    assert [type(a) for a in got] == [BBoxAnnotation, PolygonAnnotation, PolylineAnnotation, KeypointAnnotation]
    box, poly, line, kp = got
    assert (box.bounding_box.x, box.bounding_box.y, box.bounding_box.w, box.bounding_box.h) == (100, 200, 50, 80)
    assert box.confidence == 0.95
    assert [(p.x, p.y) for p in poly.polygon.paths[0]] == [(10, 20), (30, 40), (50, 60)]
    assert [(p.x, p.y) for p in line.polyline.path] == [(0, 100), (50, 100), (100, 100)]
    assert (kp.keypoint.x, kp.keypoint.y) == (150, 200)

    plain = http.get(f"{API}/annotations/{img.id}").json()["annotations"]
    assert all("metadata" not in a and "bbox" not in a for a in plain), plain
    asked = http.get(f"{API}/annotations/{img.id}", params={"include": "metadata"}).json()["annotations"]
    assert asked[0]["metadata"] == metadata
    assert all("metadata" not in a for a in asked[1:]), asked
    bad = http.get(f"{API}/annotations/{img.id}", params={"include": "everything"})
    assert bad.status_code == 422 and bad.json()["detail"], bad.text
