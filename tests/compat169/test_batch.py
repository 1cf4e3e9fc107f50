"""batch.move / copy / delete / update as 1.69.146 calls them (``target_directory_path``,
``affected_directories``, ``renamed``, ``operation``)."""

from __future__ import annotations

import uuid

import pytest

from pictograph import BatchResult, BBoxAnnotation, BoundingBox, ForbiddenError, NotFoundError, ValidationError

from helpers169 import unique_name


def _upload(client, name, images, folder, filename):
    local = "/".join(p for p in (folder.strip("/"), filename) if p)
    return client.images.upload(name, images(local), directory_path=folder)


def _folders(client, name):
    return {(i.directory_path, i.filename) for i in client.images.list(name)}


def test_move(client, member_client, dataset, images):
    a = _upload(client, dataset.name, images, "/", "a.jpg")
    b = _upload(client, dataset.name, images, "/in", "b.jpg")
    res = member_client.batch.move(dataset.name, [a.id, b.id], target_directory_path="/sorted/cars")
    assert isinstance(res, BatchResult)
    assert (res.success, res.processed, res.failed, res.operation) == (True, 2, [], "moved")
    assert set(res.affected_directories) == {"/", "/in", "/sorted/cars"}
    assert _folders(client, dataset.name) == {("/sorted/cars", "a.jpg"), ("/sorted/cars", "b.jpg")}
    assert client.images.get(dataset.name, a.id).directory_path == "/sorted/cars"
    assert client.annotations.get(dataset.name, "sorted/cars/a.jpg") == [], "the path route follows the move"


def test_move_partial_failure(client, dataset, images):
    a = _upload(client, dataset.name, images, "/", "a.jpg")
    _upload(client, dataset.name, images, "/x", "a.jpg")
    unknown = str(uuid.uuid4())
    res = client.batch.move(dataset.name, [a.id, unknown], target_directory_path="/x")
    assert res.success is False and res.processed == 0
    reasons = {f.id: f.reason for f in res.failed}
    assert "already exists" in reasons[a.id]
    assert "not found" in reasons[unknown].lower()


def test_copy_rename_skip_overwrite(client, dataset, images):
    a = _upload(client, dataset.name, images, "/", "a.jpg")
    _upload(client, dataset.name, images, "/dst", "a.jpg")
    res = client.batch.copy(dataset.name, [a.id], target_directory_path="/dst")
    assert (res.processed, res.renamed, res.operation) == (1, 1, "copied")
    assert ("/dst", "a-2.jpg") in _folders(client, dataset.name)
    res = client.batch.copy(dataset.name, [a.id], target_directory_path="/dst", duplicate_handling="skip")
    assert (res.success, res.processed, [f.id for f in res.failed]) == (False, 0, [a.id])
    res = client.batch.copy(dataset.name, [a.id], target_directory_path="/dst", duplicate_handling="overwrite")
    assert res.processed == 1
    assert sorted(f for d, f in _folders(client, dataset.name) if d == "/dst") == ["a-2.jpg", "a.jpg"]


def test_copy_annotations_flag(client, dataset, images):
    a = _upload(client, dataset.name, images, "/", "a.jpg")
    anns = [BBoxAnnotation(name="car", bounding_box=BoundingBox(x=1, y=1, w=2, h=2), attributes={"k": 1})]
    client.annotations.save(dataset.name, "a.jpg", anns)
    client.batch.update(dataset.name, [a.id], status="complete")
    client.batch.copy(dataset.name, [a.id], target_directory_path="/with", copy_annotations=True)
    client.batch.copy(dataset.name, [a.id], target_directory_path="/without")
    assert client.annotations.get(dataset.name, "with/a.jpg") == anns
    assert client.images.get(dataset.name, client.images.list(dataset.name, directory_path="/with")[0].id).status == "complete"
    assert client.annotations.get(dataset.name, "without/a.jpg") == []
    assert client.images.list(dataset.name, directory_path="/without")[0].status == "new"


def test_delete_archives_and_permanent_needs_admin(client, member_client, admin_client, dataset, images):
    a = _upload(client, dataset.name, images, "/", "a.jpg")
    b = _upload(client, dataset.name, images, "/", "b.jpg")
    res = member_client.batch.delete(dataset.name, [a.id])
    assert (res.processed, res.operation) == (1, "archived")
    assert [i.is_archived for i in client.images.list(dataset.name, include_archived=True, filename="a.jpg")] == [True]
    with pytest.raises(ForbiddenError):
        member_client.batch.delete(dataset.name, [b.id], permanent=True)
    res = admin_client.batch.delete(dataset.name, [a.id, b.id], permanent=True)
    assert (res.processed, res.operation) == (2, "deleted")
    assert client.images.list(dataset.name, include_archived=True) == []


def test_update_status_display_name_archive(client, dataset, images):
    a = _upload(client, dataset.name, images, "/", "a.jpg")
    res = client.batch.update(dataset.name, [a.id], status="review", display_name="A")
    assert (res.processed, res.operation) == (1, "updated")
    assert client.images.get(dataset.name, a.id).status == "review"
    client.batch.update(dataset.name, [a.id], is_archived=True)
    assert client.images.list(dataset.name) == []
    client.batch.update(dataset.name, [a.id], is_archived=False)
    assert [i.id for i in client.images.list(dataset.name)] == [a.id]
    with pytest.raises(ValidationError):
        client.batch.update(dataset.name, [a.id], status="in_progress")
    with pytest.raises(ValueError):
        client.batch.update(dataset.name, [a.id])


@pytest.mark.parametrize("op", ["move", "copy", "delete"])
def test_every_id_invalid_or_unknown_dataset_is_not_found(client, dataset, images, op):
    _upload(client, dataset.name, images, "/", "a.jpg")
    with pytest.raises(NotFoundError):
        getattr(client.batch, op)(dataset.name, [str(uuid.uuid4())])
    with pytest.raises(NotFoundError):
        getattr(client.batch, op)(unique_name("missing"), [str(uuid.uuid4())])
