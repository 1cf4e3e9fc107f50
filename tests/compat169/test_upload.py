"""Uploads as 1.69.146 makes them: upload-url -> PUT -> JSON register without a storage path,
``images.upload_from_directory`` and ``images.bulk_upload``."""

from __future__ import annotations

import pytest

from pictograph import ApiError, ConflictError, Image, NotFoundError, UploadReport

from conftest import HEIC_SAMPLE
from helpers169 import API, FOLDER_LAYOUT, FORMATS, make_tree, unique_name


def test_upload_from_directory_twice_skips_everything(client, images):
    root = make_tree(images)
    name = unique_name("folder")
    calls = []
    report = client.images.upload_from_directory(
        name, root, progress=lambda done, total, fn: calls.append((done, total, fn))
    )
    assert isinstance(report, UploadReport)
    assert report.failures == []
    assert (report.images_attempted, report.images_uploaded, report.images_skipped) == (5, 5, 0)
    assert report.success is True
    assert sorted(c[0] for c in calls) == [1, 2, 3, 4, 5]

    listed = client.images.list(name)
    assert sorted((i.directory_path, i.filename) for i in listed) == sorted(
        (folder, rel.split("/")[-1]) for rel, folder in FOLDER_LAYOUT.items()
    )
    assert all(i.width and i.height for i in listed), "Pillow dimensions are registered"

    again = client.images.upload_from_directory(name, root)
    assert again.failures == []
    assert (again.images_attempted, again.images_uploaded, again.images_skipped) == (5, 0, 5)
    assert again.success is False
    assert client.datasets.get(name).image_count == 5


def test_upload_from_directory_preserve_structure_and_flat(client, images):
    root = make_tree(images)
    deep = unique_name("deep")
    client.images.upload_from_directory(deep, root, preserve_structure=True)
    folders = {i.filename: i.directory_path for i in client.images.list(deep)}
    assert folders["005.jpg"] == "/stop/night"
    flat = unique_name("flat")
    client.images.upload_from_directory(flat, root, organize_by_class=False, parallel=False)
    assert {i.directory_path for i in client.images.list(flat)} == {"/"}


def test_upload_from_directory_missing_dataset_without_create(client, images):
    with pytest.raises(NotFoundError):
        client.images.upload_from_directory(unique_name("absent"), make_tree(images), create_if_missing=False)


def test_upload_returns_the_registered_image(client, dataset, images):
    path = images("pics/a.png", size=(40, 30))
    img = client.images.upload(dataset.name, path, directory_path="/cars/red")
    assert isinstance(img, Image)
    assert (img.filename, img.directory_path, img.content_type) == ("a.png", "/cars/red", "image/png")
    assert (img.width, img.height, img.file_size) == (40, 30, path.stat().st_size)
    assert img.dataset_id == dataset.id
    assert (img.status, img.split, img.tags, img.is_archived) == ("new", None, [], False)
    # by dataset id too, and a filename override
    other = client.images.upload(dataset.id, path, filename="b.png")
    assert other.directory_path == "/"
    assert client.datasets.get(dataset.name).image_count == 2


def test_upload_same_name_conflicts(client, dataset, images):
    client.images.upload(dataset.name, images("a.jpg"), directory_path="/x")
    with pytest.raises(ConflictError) as ei:
        client.images.upload(dataset.name, images("a.jpg"), directory_path="/x")
    assert "already exists" in str(ei.value)
    client.images.upload(dataset.name, images("a.jpg"), directory_path="/y")


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_upload_each_format(client, dataset, images, suffix):
    img = client.images.upload(dataset.name, images(f"f{suffix}", size=(20, 10)))
    assert (img.width, img.height) == (20, 10)


def test_upload_heic_without_client_dimensions(client, dataset):
    # 1.69 sends width/height null when Pillow cannot decode the file.
    img = client.images.upload(dataset.name, HEIC_SAMPLE)
    assert img.content_type == "image/png"
    assert (img.width, img.height) == (320, 240)


def test_upload_unsupported_type(client, dataset, images):
    with pytest.raises(ApiError) as ei:
        client.images.upload(dataset.name, images("a.png"), content_type="application/pdf")
    assert ei.value.status_code == 415


def test_upload_to_unknown_dataset(client, images):
    with pytest.raises(NotFoundError):
        client.images.upload(unique_name("nope"), images("a.jpg"))


def test_register_is_matched_by_dataset_directory_and_filename(client, dataset, images, raw):
    """Two pending uploads of one file name in two folders: each JSON register (which names
    no storage path) takes the upload of its own folder."""
    http = raw()
    pending = {}
    for folder, seed in (("/a", 1), ("/b", 2)):
        path = images(f"{folder.strip('/')}/same.png", seed=seed)
        url = http.post(
            f"{API}/images/upload-url",
            json={"dataset": dataset.name, "filename": "same.png", "directory_path": folder, "content_type": "image/png"},
        )
        assert url.status_code == 200, url.text
        put = http.put(url.json()["data"]["upload_url"], content=path.read_bytes(), headers={"Content-Type": "image/png"})
        assert put.status_code in (200, 201), put.text
        pending[folder] = path.stat().st_size
    for folder in ("/b", "/a"):
        reg = http.post(
            f"{API}/images/register",
            json={"dataset": dataset.id, "filename": "same.png", "directory_path": folder,
                  "file_size": pending[folder], "content_type": "image/png", "width": None, "height": None},
        )
        assert reg.status_code in (200, 201), reg.text
        data = reg.json()["data"]
        assert (data["directory_path"], data["file_size"], data["width"]) == (folder, pending[folder], 32)
    again = http.post(
        f"{API}/images/register",
        json={"dataset": dataset.name, "filename": "same.png", "directory_path": "/a", "content_type": "image/png"},
    )
    assert again.status_code == 404, "the pending upload was consumed"
    assert again.json()["error"]["code"] == "not_found"


def test_bulk_upload_then_every_file_fails_as_existing(client, dataset, images):
    paths = [images("one.jpg"), images("two.png")]
    res = client.images.bulk_upload(dataset.name, paths, directory_path="/bulk")
    assert res.count == 2 and res.failed == []
    assert {(i.filename, i.directory_path) for i in res.succeeded} == {("one.jpg", "/bulk"), ("two.png", "/bulk")}
    res = client.images.bulk_upload(dataset.name, paths, directory_path="/bulk", max_workers=1)
    assert res.count == 0
    assert sorted(f.filename for f in res.failed) == ["one.jpg", "two.png"]
    assert all("already exists" in f.error and f.directory_path == "/bulk" for f in res.failed)
    assert client.datasets.get(dataset.name).image_count == 2
