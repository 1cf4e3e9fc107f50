"""Uploads: the folder workflow, every supported format, HEIC, and the upload limits."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image as PILImage

from pictograph import ApiError, NotFoundError
from pictograph.workflows import UploadReport, upload_dataset_from_folder

from compat_helpers import FORMATS, PNG_MAGIC, active_images, download_bytes, unique_name
from conftest import HEIC_SAMPLE

# relative path -> expected virtual folder (organize_by_class=True)
FOLDER_LAYOUT = {
    "stop/001.jpg": "/stop",
    "stop/002.png": "/stop",
    "stop/night/005.jpg": "/stop",  # nested directories collapse to the first level
    "yield/003.jpg": "/yield",
    "004.jpg": "/",
}


def _make_tree(images):
    for i, rel in enumerate(sorted(FOLDER_LAYOUT)):
        images(f"tree/{rel}", size=(24 + i, 16 + i))
    images.raw("tree/notes.txt", b"not an image, must be ignored\n")
    images.raw("tree/stop/readme.md", b"# ignored too\n")
    return images.root / "tree"


# ───────────── upload_dataset_from_folder ─────────────


def test_upload_folder_twice_is_idempotent(client, images):
    root = _make_tree(images)
    name = unique_name("folder")
    calls = []

    report = upload_dataset_from_folder(
        client, name, root, progress=lambda done, total, fn: calls.append((done, total, fn))
    )
    assert isinstance(report, UploadReport)
    assert report.failures == []
    assert report.images_attempted == 5
    assert report.images_uploaded == 5
    assert report.images_skipped == 0
    assert report.success is True
    assert report.dataset_name == name

    assert len(calls) == 5, "progress fires once per image file"
    assert sorted(c[0] for c in calls) == [1, 2, 3, 4, 5]
    assert all(c[1] == 5 for c in calls)
    assert sorted(c[2] for c in calls) == sorted(r.split("/")[-1] for r in FOLDER_LAYOUT)

    ds = client.datasets.get(name)
    assert ds.image_count == 5
    placed = {i.filename: i.virtual_folder_path for i in active_images(client, name)}
    assert placed == {rel.split("/")[-1]: folder for rel, folder in FOLDER_LAYOUT.items()}

    again = upload_dataset_from_folder(client, name, root)
    assert again.failures == []
    assert again.images_attempted == 5
    assert again.images_uploaded == 0
    assert again.images_skipped == 5
    assert again.success is False  # nothing new uploaded
    assert client.datasets.get(name).image_count == 5


def test_upload_folder_flat(client, images):
    root = _make_tree(images)
    name = unique_name("flat")
    report = upload_dataset_from_folder(client, name, root, organize_by_class=False, parallel=False)
    assert report.success and report.images_uploaded == 5 and report.failures == []
    placed = {i.filename: i.virtual_folder_path for i in active_images(client, name)}
    assert placed == {rel.split("/")[-1]: "/" for rel in FOLDER_LAYOUT}


def test_upload_folder_into_existing_dataset(client, images):
    root = _make_tree(images)
    p = client.projects.create(unique_name("existing"), description="kept")
    report = upload_dataset_from_folder(client, p.name, root, create_if_missing=False)
    assert report.images_uploaded == 5 and report.success
    ds = client.datasets.get(p.name)
    assert ds.id == p.id and ds.description == "kept" and ds.image_count == 5


def test_upload_folder_missing_dataset_without_create(client, images):
    root = _make_tree(images)
    name = unique_name("absent")
    with pytest.raises(NotFoundError):
        upload_dataset_from_folder(client, name, root, create_if_missing=False)
    with pytest.raises(NotFoundError):
        client.projects.get(name)


def test_upload_empty_folder(client, tmp_path):
    (tmp_path / "empty").mkdir()
    name = unique_name("empty")
    report = upload_dataset_from_folder(client, name, tmp_path / "empty")
    assert report.images_attempted == 0 and report.success is False
    assert client.datasets.get(name).image_count == 0  # the dataset was still created


# ───────────── images.upload per format ─────────────


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"])
def test_upload_each_format(client, dataset, images, tmp_path, suffix):
    idx = list(FORMATS).index(suffix)
    size = (40 + idx, 30 + idx)
    f = images(f"sample{suffix}", size=size)
    img = client.images.upload(dataset.id, f, folder_path="/formats")

    assert img.filename == f.name
    assert (img.width, img.height) == size
    assert img.mime_type == FORMATS[suffix][1]
    assert img.file_size == f.stat().st_size
    assert img.virtual_folder_path == "/formats"
    assert img.status == "new"
    assert img.dataset_id == dataset.id

    got = client.images.get(img.id)
    assert (got.width, got.height) == size
    assert download_bytes(client, img.id, tmp_path) == f.read_bytes()


def test_upload_heic_is_converted_to_png(client, dataset, images, tmp_path):
    local = images.root / "sample.heic"
    local.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HEIC_SAMPLE, local)

    img = client.images.upload(dataset.id, local, folder_path="/phone")
    assert (img.width, img.height) == (320, 240)
    assert img.mime_type == "image/png"
    assert img.virtual_folder_path == "/phone"

    got = client.images.get(img.id)
    assert (got.width, got.height) == (320, 240)
    assert got.mime_type == "image/png"

    data = download_bytes(client, img.id, tmp_path)
    assert data.startswith(PNG_MAGIC)
    with PILImage.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "PNG"
        assert decoded.size == (320, 240)

    ds = client.datasets.get(dataset.name)
    assert ds.image_count == 1
    assert ds.total_size == got.file_size == len(data)


def test_upload_filename_override(client, dataset, images):
    f = images("local-name.png")
    img = client.images.upload(dataset.id, f, filename="renamed.png", folder_path="/train/images")
    assert img.filename == "renamed.png"
    assert img.virtual_folder_path == "/train/images"
    assert [i.filename for i in active_images(client, dataset.name)] == ["renamed.png"]


# ───────────── rejections ─────────────


def test_upload_unsupported_type_is_415(client, dataset, images):
    pdf = images.raw("doc.pdf", b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n")
    with pytest.raises(ApiError) as ei:
        client.images.upload(dataset.id, pdf, content_type="application/pdf")
    assert ei.value.status_code == 415
    assert client.datasets.get(dataset.name).image_count == 0


def test_upload_bytes_that_are_not_an_image(client, dataset, images):
    fake = images.raw("fake.png", b"this is plain text pretending to be a PNG\n" * 20)
    with pytest.raises(ApiError) as ei:
        client.images.upload(dataset.id, fake)
    assert ei.value.status_code is not None and 400 <= ei.value.status_code < 500
    assert client.datasets.get(dataset.name).image_count == 0
    assert active_images(client, dataset.name) == []


def test_upload_mismatched_type_is_rejected(client, dataset, images):
    """PNG bytes declared (by suffix) as JPEG."""
    png = images("really-png.png")
    disguised = images.raw("disguised.jpg", png.read_bytes())
    with pytest.raises(ApiError) as ei:
        client.images.upload(dataset.id, disguised)
    assert ei.value.status_code is not None and 400 <= ei.value.status_code < 500
    assert client.datasets.get(dataset.name).image_count == 0


def test_upload_over_50_mib_is_413(client, dataset, tmp_path):
    big = tmp_path / "big.jpg"
    with big.open("wb") as fh:
        fh.truncate(51 * 1024 * 1024)  # 51 MiB of zeros
    with pytest.raises(ApiError) as ei:
        client.images.upload(dataset.id, big)
    assert ei.value.status_code == 413
    assert client.datasets.get(dataset.name).image_count == 0


def test_upload_to_unknown_dataset(client, images):
    import uuid

    with pytest.raises(NotFoundError):
        client.images.upload(str(uuid.uuid4()), images("orphan.png"))
