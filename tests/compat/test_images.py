"""Single-image operations: upload result, get, download, delete (archive / permanent)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from pictograph import ConflictError, Image, NotFoundError

from compat_helpers import active_images, download_bytes, images_in_folder


def test_upload_returns_registered_image(client, dataset, images):
    f = images("photo.jpg", size=(64, 48))
    img = client.images.upload(dataset.id, f, folder_path="/cars")

    assert isinstance(img, Image)
    assert img.id
    assert img.filename == "photo.jpg"
    assert (img.width, img.height) == (64, 48)
    assert img.virtual_folder_path == "/cars"
    assert img.status == "new"
    assert img.mime_type == "image/jpeg"
    assert img.file_size == f.stat().st_size
    assert img.dataset_id == dataset.id
    assert img.is_archived is False
    assert img.annotation_count == 0
    assert img.image_url
    assert isinstance(img.created_at, datetime)

    got = client.images.get(img.id)
    assert got.model_dump(exclude={"image_url", "thumbnail_url", "annotation_url"}) == img.model_dump(
        exclude={"image_url", "thumbnail_url", "annotation_url"}
    )


def test_upload_same_name_same_folder_conflicts(client, dataset, images):
    f = images("dup.png")
    first = client.images.upload(dataset.id, f, folder_path="/a")
    with pytest.raises(ConflictError) as ei:
        client.images.upload(dataset.id, f, folder_path="/a")
    assert ei.value.status_code == 409
    with pytest.raises(ConflictError):
        client.images.upload(dataset.id, images("other-bytes.png"), filename="dup.png", folder_path="/a")

    second = client.images.upload(dataset.id, f, folder_path="/b")
    root = client.images.upload(dataset.id, f)
    assert len({first.id, second.id, root.id}) == 3
    assert (second.virtual_folder_path, root.virtual_folder_path) == ("/b", "/")
    assert client.datasets.get(dataset.name).image_count == 3
    assert set(images_in_folder(client, dataset.name, "/a")) == {"dup.png"}


def test_download_returns_original_bytes(client, dataset, images, tmp_path):
    f = images("orig.webp", size=(50, 40))
    img = client.images.upload(dataset.id, f)
    out = client.images.download(img.id, tmp_path / "nested" / "dir" / "copy.webp")
    assert out.read_bytes() == f.read_bytes()
    assert not (tmp_path / "nested" / "dir" / "copy.webp.part").exists()


def test_delete_archives_by_default(client, dataset, images, tmp_path):
    keep = client.images.upload(dataset.id, images("keep.png"))
    f = images("gone.png")
    img = client.images.upload(dataset.id, f, folder_path="/x")
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (2, 0)

    assert client.images.delete(img.id) is None
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (1, 1)
    archived = client.images.get(img.id)
    assert archived.is_archived is True
    assert [i.id for i in active_images(client, dataset.name)] == [keep.id]

    # an archived name no longer blocks the folder
    again = client.images.upload(dataset.id, f, folder_path="/x")
    assert again.id != img.id and again.is_archived is False
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (2, 1)
    assert download_bytes(client, again.id, tmp_path) == f.read_bytes()


def test_delete_permanent_by_member(client, member_client, dataset, images):
    img = client.images.upload(dataset.id, images("bye.png"))
    other = client.images.upload(dataset.id, images("stay.png"))

    assert member_client.images.delete(img.id, permanent=True) is None
    with pytest.raises(NotFoundError):
        client.images.get(img.id)
    ds = client.datasets.get(dataset.name)
    assert (ds.image_count, ds.archived_images) == (1, 0)
    assert client.images.get(other.id).id == other.id


def test_unknown_image_is_not_found(client, tmp_path):
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as ei:
        client.images.get(missing)
    assert ei.value.status_code == 404
    with pytest.raises(NotFoundError):
        client.images.download(missing, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    with pytest.raises(NotFoundError):
        client.images.delete(missing)
    with pytest.raises(NotFoundError):
        client.images.delete(missing, permanent=True)
