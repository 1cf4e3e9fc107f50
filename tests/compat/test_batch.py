"""Batch move / copy / delete / update, partial failures and errors."""

from __future__ import annotations

import uuid

import pytest

from pictograph import (
    BatchResult,
    BBoxAnnotation,
    BoundingBox,
    ForbiddenError,
    KeypointAnnotation,
    NotFoundError,
    Point,
)

from compat_helpers import (
    API,
    IMAGE_STATUSES,
    active_images,
    assert_same_annotations,
    download_bytes,
    images_in_folder,
    unique_name,
)


def _failed_ids(result: BatchResult) -> list[str]:
    return [f.id for f in result.failed]


# ───────────── move ─────────────


def test_move(client, member_client, dataset, images):
    a = client.images.upload(dataset.id, images("m1.png"))
    b = client.images.upload(dataset.id, images("m2.png"))
    c = client.images.upload(dataset.id, images("m3.png"))

    res = member_client.batch.move(dataset.name, [a.id, b.id], target_folder_path="/sorted/cars")
    assert isinstance(res, BatchResult)
    assert res.success is True and res.processed == 2 and res.failed == []
    assert {"/", "/sorted/cars"} <= set(res.affected_folders)

    assert client.images.get(a.id).virtual_folder_path == "/sorted/cars"
    assert client.images.get(b.id).virtual_folder_path == "/sorted/cars"
    assert client.images.get(c.id).virtual_folder_path == "/"
    assert set(images_in_folder(client, dataset.name, "/sorted/cars")) == {"m1.png", "m2.png"}
    assert client.datasets.get(dataset.name).image_count == 3

    back = client.batch.move(dataset.name, [a.id], target_folder_path="/")
    assert back.success and back.processed == 1
    assert client.images.get(a.id).virtual_folder_path == "/"


def test_move_partial_failure(client, dataset, images):
    good = client.images.upload(dataset.id, images("ok.png"))
    other_ds = client.projects.create(unique_name("elsewhere"))
    foreign = client.images.upload(other_ds.id, images("foreign.png"))
    bogus = str(uuid.uuid4())

    res = client.batch.move(dataset.name, [good.id, bogus, foreign.id], target_folder_path="/dest")
    assert res.success is False
    assert res.processed == 1
    assert sorted(_failed_ids(res)) == sorted([bogus, foreign.id])
    assert all(f.reason for f in res.failed)
    assert client.images.get(good.id).virtual_folder_path == "/dest"
    assert client.images.get(foreign.id).virtual_folder_path == "/", "an image of another dataset is untouched"


# ───────────── copy ─────────────


def _src_and_dst(client, dataset, images):
    src_file = images("src/a.jpg", seed=1)
    dst_file = images("dst/a.jpg", seed=2)
    src = client.images.upload(dataset.id, src_file, folder_path="/src")
    dst = client.images.upload(dataset.id, dst_file, folder_path="/dst")
    return src, dst, src_file, dst_file


def test_copy_rename(client, dataset, images, tmp_path):
    src, dst, src_file, dst_file = _src_and_dst(client, dataset, images)

    res = client.batch.copy(dataset.name, [src.id], target_folder_path="/dst", duplicate_handling="rename")
    assert res.success is True and res.processed == 1 and res.failed == []
    assert "/dst" in res.affected_folders
    in_dst = images_in_folder(client, dataset.name, "/dst")
    assert set(in_dst) == {"a.jpg", "a-2.jpg"}
    assert in_dst["a.jpg"].id == dst.id
    assert download_bytes(client, in_dst["a-2.jpg"].id, tmp_path) == src_file.read_bytes()
    assert download_bytes(client, dst.id, tmp_path) == dst_file.read_bytes()

    client.batch.copy(dataset.name, [src.id], target_folder_path="/dst")  # rename is the default
    assert set(images_in_folder(client, dataset.name, "/dst")) == {"a.jpg", "a-2.jpg", "a-3.jpg"}

    # the source is untouched; counts include the copies
    assert client.images.get(src.id).virtual_folder_path == "/src"
    assert client.datasets.get(dataset.name).image_count == 4


def test_copy_skip(client, dataset, images, tmp_path):
    src, dst, _, dst_file = _src_and_dst(client, dataset, images)
    res = client.batch.copy(dataset.name, [src.id], target_folder_path="/dst", duplicate_handling="skip")
    assert res.success is False
    assert res.processed == 0
    assert _failed_ids(res) == [src.id]
    in_dst = images_in_folder(client, dataset.name, "/dst")
    assert list(in_dst) == ["a.jpg"] and in_dst["a.jpg"].id == dst.id
    assert download_bytes(client, dst.id, tmp_path) == dst_file.read_bytes()
    assert client.datasets.get(dataset.name).image_count == 2


def test_copy_overwrite(client, dataset, images, tmp_path):
    src, dst, src_file, _ = _src_and_dst(client, dataset, images)
    res = client.batch.copy(dataset.name, [src.id], target_folder_path="/dst", duplicate_handling="overwrite")
    assert res.success is True and res.processed == 1
    in_dst = images_in_folder(client, dataset.name, "/dst")
    assert list(in_dst) == ["a.jpg"]
    assert download_bytes(client, in_dst["a.jpg"].id, tmp_path) == src_file.read_bytes()
    assert client.datasets.get(dataset.name).image_count == 2


def test_copy_annotations_flag(client, dataset, images):
    src = client.images.upload(dataset.id, images("annotated.png"), folder_path="/src")
    anns = [
        BBoxAnnotation(id="b1", name="car", bounding_box=BoundingBox(x=1, y=1, w=4, h=4), confidence=0.5),
        KeypointAnnotation(id="k1", name="nose", keypoint=Point(x=2, y=3)),
    ]
    client.annotations.save(src.id, anns)
    assert client.batch.update(dataset.name, [src.id], status="review").success

    res = client.batch.copy(dataset.name, [src.id], target_folder_path="/with", copy_annotations=True)
    assert res.success and res.processed == 1
    [copy_with] = images_in_folder(client, dataset.name, "/with").values()
    assert copy_with.filename == "annotated.png"
    meta = client.images.get(copy_with.id)
    assert meta.status == "review" and meta.annotation_count == 2
    assert_same_annotations(anns, client.annotations.get(copy_with.id))

    res = client.batch.copy(dataset.name, [src.id], target_folder_path="/without", copy_annotations=False)
    assert res.success and res.processed == 1
    [copy_without] = images_in_folder(client, dataset.name, "/without").values()
    meta = client.images.get(copy_without.id)
    assert meta.status == "new" and meta.annotation_count == 0
    assert client.annotations.get(copy_without.id) == []

    # the source keeps its annotations
    assert_same_annotations(anns, client.annotations.get(src.id))


# ───────────── delete ─────────────


def test_delete_archives(client, dataset, images):
    imgs = [client.images.upload(dataset.id, images(f"d{i}.png")) for i in range(3)]
    res = client.batch.delete(dataset.name, [imgs[0].id, imgs[1].id])
    assert res.success is True and res.processed == 2
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (1, 2)
    assert client.images.get(imgs[0].id).is_archived is True
    assert [i.id for i in active_images(client, dataset.name)] == [imgs[2].id]

    # is_archived=False restores
    res = client.batch.update(dataset.name, [imgs[0].id, imgs[1].id], is_archived=False)
    assert res.success and res.processed == 2
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (3, 0)
    assert client.images.get(imgs[0].id).is_archived is False


def test_delete_permanent_needs_admin(client, member_client, admin_client, dataset, images):
    a = client.images.upload(dataset.id, images("p1.png"))
    b = client.images.upload(dataset.id, images("p2.png"))

    with pytest.raises(ForbiddenError) as ei:
        member_client.batch.delete(dataset.name, [a.id], permanent=True)
    assert ei.value.status_code == 403
    assert client.images.get(a.id).is_archived is False
    assert client.datasets.get(dataset.name).image_count == 2

    res = admin_client.batch.delete(dataset.name, [a.id], permanent=True)
    assert res.success is True and res.processed == 1
    with pytest.raises(NotFoundError):
        client.images.get(a.id)
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (1, 0)
    assert client.images.get(b.id).id == b.id


# ───────────── update ─────────────


def test_update_status_display_name_archive(client, dataset, images):
    a = client.images.upload(dataset.id, images("u1.png"))
    b = client.images.upload(dataset.id, images("u2.png"))

    for status in IMAGE_STATUSES:
        res = client.batch.update(dataset.name, [a.id, b.id], status=status)
        assert res.success and res.processed == 2
        assert client.images.get(a.id).status == status
        assert client.images.get(b.id).status == status
    assert client.datasets.get(dataset.name).completed_image_count == 2

    res = client.batch.update(dataset.name, [a.id], display_name="Front view")
    assert res.success and res.processed == 1
    assert client.images.get(a.id).filename == "u1.png", "display_name does not rename the file"

    res = client.batch.update(dataset.name, [b.id], is_archived=True)
    assert res.success and res.processed == 1
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (1, 1)


# ───────────── errors ─────────────


OPS = {
    "move": lambda c, ds, ids: c.batch.move(ds, ids, target_folder_path="/x"),
    "copy": lambda c, ds, ids: c.batch.copy(ds, ids, target_folder_path="/x"),
    "delete": lambda c, ds, ids: c.batch.delete(ds, ids),
    "update": lambda c, ds, ids: c.batch.update(ds, ids, status="review"),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_id_invalid_is_not_found(client, dataset, images, op):
    client.images.upload(dataset.id, images("present.png"))
    with pytest.raises(NotFoundError):
        OPS[op](client, dataset.name, [str(uuid.uuid4()), str(uuid.uuid4())])


@pytest.mark.parametrize("op", sorted(OPS))
def test_unknown_dataset_is_not_found(client, dataset, images, op):
    img = client.images.upload(dataset.id, images("real.png"))
    with pytest.raises(NotFoundError):
        OPS[op](client, unique_name("no-such-dataset"), [img.id])
    assert client.images.get(img.id).status == "new"


def test_invalid_values_are_422(client, dataset, images, raw):
    img = client.images.upload(dataset.id, images("v.png"))
    http = raw("owner")

    def send(method, path, body):
        return http.request(method, f"{API}/batch/images/{path}", json=body,
                            headers={"Idempotency-Key": uuid.uuid4().hex})

    base = {"dataset_name": dataset.name, "image_ids": [img.id]}
    for bad_status in ("in_progress", "done", ""):
        r = send("PATCH", "update", {**base, "updates": {"status": bad_status}})
        assert r.status_code == 422, f"status={bad_status!r}: HTTP {r.status_code} {r.text[:200]}"
    r = send("PATCH", "update", {**base, "updates": {}})
    assert r.status_code == 422, f"empty updates: HTTP {r.status_code} {r.text[:200]}"
    r = send("POST", "copy", {**base, "target_folder_path": "/y", "duplicate_handling": "merge",
                              "copy_annotations": False})
    assert r.status_code == 422, f"duplicate_handling=merge: HTTP {r.status_code} {r.text[:200]}"

    assert client.images.get(img.id).status == "new"
    assert images_in_folder(client, dataset.name, "/y") == {}
