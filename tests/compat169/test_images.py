"""images.list / iter / get / download / delete, addressed by dataset and path (1.69.146)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from pictograph import BBoxAnnotation, BoundingBox, Image, NotFoundError, ValidationError

from helpers169 import API, unique_name


@pytest.fixture
def populated(client, dataset, images):
    """a.jpg at the root, b.png and a.jpg in /cars, c.jpg in /cars/red."""
    ids = {}
    for folder, rel in (("/", "a.jpg"), ("/cars", "b.png"), ("/cars", "a.jpg"), ("/cars/red", "c.jpg")):
        local = "/".join(p for p in (folder.strip("/"), rel) if p)
        img = client.images.upload(dataset.name, images(local), directory_path=folder)
        ids[f"{folder}|{rel}"] = img
    return dataset, ids


def test_list_and_iter_with_filters(client, populated):
    ds, ids = populated
    everything = client.images.list(ds.name)
    assert len(everything) == 4 and all(isinstance(i, Image) for i in everything)
    assert {i.directory_path for i in client.images.list(ds.name, directory_path="/cars")} == {"/cars"}
    by_name = client.images.list(ds.name, filename="a.jpg")
    assert sorted(i.directory_path for i in by_name) == ["/", "/cars"]
    assert [i.filename for i in client.images.list(ds.id, filename="c.jpg")] == ["c.jpg"]
    assert client.images.list(ds.name, status="complete") == []
    assert client.images.list(ds.name, split="train") == []
    assert len(client.images.list(ds.name, limit=2, offset=3)) == 1
    iterated = [i.id for i in client.images.iter(ds.name, page_size=3)]
    assert sorted(iterated) == sorted(i.id for i in everything)
    assert len(iterated) == len(set(iterated))
    with pytest.raises(ValidationError):
        client.images.list(ds.name, status="bogus")


def test_get_by_filename_or_id(client, populated):
    ds, ids = populated
    assert client.images.get(ds.name, "b.png").id == ids["/cars|b.png"].id
    got = client.images.get(ds.name, ids["/cars/red|c.jpg"].id)
    assert (got.filename, got.directory_path, got.dataset_id) == ("c.jpg", "/cars/red", ds.id)
    with pytest.raises(ValueError, match="more than one directory"):
        client.images.get(ds.name, "a.jpg")
    with pytest.raises(NotFoundError):
        client.images.get(ds.name, "zzz.jpg")


def test_download_by_filename_path_and_id(client, populated, images, tmp_path):
    ds, ids = populated
    root = client.images.download(ds.name, "a.jpg", tmp_path / "root.jpg")
    assert root.read_bytes() == (images.root / "a.jpg").read_bytes()
    nested = client.images.download(ds.name, "cars/red/c.jpg", tmp_path / "c.jpg")
    assert nested.read_bytes() == (images.root / "cars/red/c.jpg").read_bytes()
    by_id = client.images.download(ds.name, ids["/cars|a.jpg"].id, tmp_path / "cars-a.jpg")
    assert by_id.read_bytes() == (images.root / "cars/a.jpg").read_bytes()
    with pytest.raises(NotFoundError):
        client.images.download(ds.name, "red/c.jpg", tmp_path / "nope.jpg")
    assert not (tmp_path / "nope.jpg").exists()


def test_metadata_twin_of_the_path_route(populated, raw):
    ds, ids = populated
    r = raw().get(f"{API}/images/{quote(ds.name, safe='')}/cars/red/c.jpg/metadata")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == ids["/cars/red|c.jpg"].id
    assert r.json()["image"] == r.json()["data"]
    r = raw().get(f"{API}/images/{ids['/|a.jpg'].id}/metadata")
    assert r.json()["data"]["virtual_folder_path"] == "/"


def test_dataset_name_with_slash_on_per_image_routes(client, images, tmp_path):
    name = unique_name("x/y z")
    client.datasets.create(name)
    client.images.upload(name, images("q/p.png"), directory_path="/q")
    out = client.images.download(name, "q/p.png", tmp_path / "p.png")
    assert out.read_bytes() == (images.root / "q/p.png").read_bytes()
    client.images.delete(name, "q/p.png")
    assert client.images.list(name) == []


def test_delete_archives_then_permanent(client, member_client, populated, images, tmp_path):
    ds, ids = populated
    client.images.delete(ds.name, "cars/b.png")
    assert [i.filename for i in client.images.list(ds.name, directory_path="/cars")] == ["a.jpg"]
    archived = [i for i in client.images.list(ds.name, include_archived=True) if i.is_archived]
    assert [i.id for i in archived] == [ids["/cars|b.png"].id]
    after = client.datasets.get(ds.name)
    assert (after.image_count, after.archived_image_count) == (3, 1)
    # the name is free again
    client.images.upload(ds.name, images("cars/b.png"), directory_path="/cars")
    # permanent, by id, by a member
    member_client.images.delete(ds.name, ids["/cars/red|c.jpg"].id, permanent=True)
    with pytest.raises(NotFoundError):
        client.images.get(ds.name, ids["/cars/red|c.jpg"].id)
    with pytest.raises(NotFoundError):
        client.images.delete(ds.name, "cars/red/c.jpg")


def test_min_confidence_is_reported_and_filters(client, populated):
    ds, ids = populated
    target = ids["/cars|b.png"]
    client.annotations.save(
        ds.name, target.id,
        [BBoxAnnotation(name="car", bounding_box=BoundingBox(x=0, y=0, w=1, h=1), confidence=0.4),
         BBoxAnnotation(name="car", bounding_box=BoundingBox(x=1, y=1, w=1, h=1), confidence=0.9)],
    )
    client.annotations.save(
        ds.name, "a.jpg", [BBoxAnnotation(name="car", bounding_box=BoundingBox(x=0, y=0, w=1, h=1))]
    )
    assert client.images.get(ds.name, target.id).min_confidence == 0.4
    assert client.images.get(ds.name, "c.jpg").min_confidence is None
    low = client.images.list(ds.name, min_confidence_lt=0.5)
    assert [i.id for i in low] == [target.id]
    assert len(client.images.list(ds.name, min_confidence_lt=1.0)) == 1
    assert client.images.get(ds.name, "b.png").annotation_count == 2


def test_unknown_and_other_org_images_are_not_found(client, other_org_client, populated, tmp_path):
    ds, ids = populated
    with pytest.raises(NotFoundError):
        other_org_client.images.list(ds.name)
    with pytest.raises(NotFoundError):
        other_org_client.images.download(ds.id, "a.jpg", tmp_path / "x.jpg")
    with pytest.raises(NotFoundError):
        client.images.download(unique_name("missing"), "a.jpg", tmp_path / "y.jpg")
