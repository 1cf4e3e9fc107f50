"""annotations.get / save / delete by dataset and path (1.69.146), with the 1.69 extensions:
``attributes`` objects, bbox ``oriented_box`` and keypoint ``instance_id``."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from pictograph import (
    BBoxAnnotation,
    BoundingBox,
    KeypointAnnotation,
    NotFoundError,
    Point,
    ValidationError,
)

from helpers169 import ANNOTATION_LIST, API, UA_163, UA_169, dumped, every_type, legacy_view, unique_name

CLASSES = [{"name": "car"}, {"name": "road"}, {"name": "nose"}]


@pytest.fixture
def classy(client, images):
    """A dataset with classes, one image at the root and one in /cars/red."""
    name = unique_name("anns")
    client.datasets.create(name, annotation_types=["bbox", "polygon", "polyline", "keypoint"], classes=CLASSES)
    root = client.images.upload(name, images("root.jpg"))
    nested = client.images.upload(name, images("cars/red/n.png"), directory_path="/cars/red")
    return name, root, nested


def test_save_get_roundtrip_every_type_and_extension(client, classy):
    name, root, nested = classy
    sent = every_type()
    res = client.annotations.save(name, "root.jpg", sent)
    assert (res.image_id, res.previous_count, res.new_count, res.status) == (root.id, 0, len(sent), "new")
    got = client.annotations.get(name, "root.jpg")
    assert got == sent, "1.69 reads back exactly what it saved"
    assert got[0].oriented_box.angle == 15.5
    assert got[4].instance_id == 1 and got[0].attributes == {"occluded": True, "colour": "red"}
    # the same list by id, by directory_path and by "dir/filename"
    assert client.annotations.get(name, root.id) == sent
    client.annotations.save(name, "n.png", sent[:2], directory_path="/cars/red")
    assert client.annotations.get(name, "cars/red/n.png") == sent[:2]
    assert client.annotations.get(name, nested.id) == sent[:2]
    assert client.images.get(name, nested.id).annotation_count == 2


def test_save_replaces_and_delete(client, member_client, classy):
    name, root, _ = classy
    client.annotations.save(name, "root.jpg", every_type())
    one = [BBoxAnnotation(name="car", bounding_box=BoundingBox(x=1, y=1, w=2, h=2))]
    res = member_client.annotations.save(name, root.id, one)
    assert (res.previous_count, res.new_count) == (6, 1)
    assert client.annotations.get(name, "root.jpg") == one
    deleted = client.annotations.delete(name, "root.jpg")
    assert (deleted.image_id, deleted.deleted_count) == (root.id, 1)
    assert client.annotations.get(name, "root.jpg") == []
    assert client.annotations.save(name, "root.jpg", []).new_count == 0


def test_status_is_unchanged_by_saves(client, classy):
    name, root, _ = classy
    client.batch.update(name, [root.id], status="review")
    assert client.annotations.save(name, "root.jpg", every_type()).status == "review"


def test_class_not_in_dataset_is_rejected(client, classy):
    name, _, _ = classy
    with pytest.raises(ValidationError) as ei:
        client.annotations.save(name, "root.jpg", [KeypointAnnotation(name="tail", keypoint=Point(x=1, y=1))])
    assert ei.value.status_code == 422
    assert ei.value.code == "validation_error"
    assert any("name" in e.get("loc", []) for e in ei.value.field_errors), ei.value.field_errors


def test_dataset_without_classes_accepts_any_name(client, dataset, images):
    client.images.upload(dataset.name, images("x.jpg"))
    anns = [KeypointAnnotation(name="anything", keypoint=Point(x=1, y=1), instance_id=4)]
    assert client.annotations.save(dataset.name, "x.jpg", anns).new_count == 1


def test_unknown_image_or_dataset(client, classy):
    name, _, _ = classy
    with pytest.raises(NotFoundError):
        client.annotations.get(name, "missing.jpg")
    with pytest.raises(NotFoundError):
        client.annotations.get(name, "n.png")  # it lives in /cars/red, not at the root
    with pytest.raises(NotFoundError):
        client.annotations.save(unique_name("nope"), "root.jpg", [])


BAD_EXTENSIONS = {
    "oriented-box-zero-width": {"id": "a", "name": "car", "type": "bbox",
                                "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1},
                                "oriented_box": {"cx": 0, "cy": 0, "w": 0, "h": 1, "angle": 0}},
    "oriented-box-angle-360": {"id": "a", "name": "car", "type": "bbox",
                               "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1},
                               "oriented_box": {"cx": 0, "cy": 0, "w": 1, "h": 1, "angle": 360}},
    "oriented-box-on-polygon": {"id": "a", "name": "car", "type": "polygon",
                                "polygon": {"paths": [[{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}]]},
                                "oriented_box": {"cx": 0, "cy": 0, "w": 1, "h": 1}},
    "instance-id-zero": {"id": "a", "name": "nose", "type": "keypoint", "keypoint": {"x": 0, "y": 0}, "instance_id": 0},
    "instance-id-on-bbox": {"id": "a", "name": "car", "type": "bbox",
                            "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}, "instance_id": 1},
    "attributes-string": {"id": "a", "name": "car", "type": "bbox",
                          "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}, "attributes": "x"},
}


@pytest.mark.parametrize("case", sorted(BAD_EXTENSIONS))
def test_invalid_extensions_are_422(classy, raw, case):
    name, _, _ = classy
    r = raw(user_agent=UA_169).post(
        f"{API}/annotations/{quote(name, safe='')}/root.jpg", json={"annotations": [BAD_EXTENSIONS[case]]}
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert isinstance(body["detail"], list) and body["error"]["details"]["errors"]


def test_path_route_ignores_a_body_image_id(classy, raw):
    """1.69's upstream refuses `image_id` in the body; this server accepts and ignores it on
    the path route (the id route still checks it, as 1.6.3 sends it)."""
    name, root, nested = classy
    http = raw(user_agent=UA_169)
    ann = dumped(every_type()[:1])
    r = http.post(f"{API}/annotations/{quote(name, safe='')}/root.jpg", json={"image_id": nested.id, "annotations": ann})
    assert r.status_code == 200, r.text
    assert r.json()["image_id"] == root.id
    r = http.post(f"{API}/annotations/{root.id}", json={"image_id": nested.id, "annotations": ann})
    assert r.status_code == 422


def test_reads_are_shaped_by_user_agent(client, classy, raw):
    """1.6.3 (and callers without a User-Agent) get the 1.6.3 shape; 1.69 and other
    callers get the annotations as stored."""
    name, root, _ = classy
    sent = dumped(every_type())
    client.annotations.save(name, "root.jpg", every_type())
    url = f"{API}/annotations/{root.id}"
    for ua in (UA_169, "curl/8.5.0"):
        assert raw(user_agent=ua).get(url).json()["annotations"] == sent, ua
    for ua in (UA_163, "pictograph-python/1.68.0", ""):
        got = raw(user_agent=ua).get(url).json()["annotations"]
        assert got == [legacy_view(a) for a in sent], ua
        assert all("oriented_box" not in a and "instance_id" not in a for a in got)
        assert all(isinstance(a["attributes"], list) for a in got)
    # both shapes parse with the 1.69 models
    assert len(ANNOTATION_LIST.validate_python(raw(user_agent=UA_163).get(url).json()["annotations"])) == 6


def test_member_saves_and_deletes(member_client, classy):
    name, _, _ = classy
    member_client.annotations.save(name, "root.jpg", every_type())
    assert member_client.annotations.delete(name, "root.jpg").deleted_count == 6


def test_other_org_gets_not_found(other_org_client, classy):
    name, root, _ = classy
    with pytest.raises(NotFoundError):
        other_org_client.annotations.get(name, root.id)
    with pytest.raises(NotFoundError):
        other_org_client.annotations.get(name, "root.jpg")
