"""datasets.create / update / delete / list / iter / get as pictograph 1.69.146 calls them."""

from __future__ import annotations

import pytest

from pictograph import ConflictError, Dataset, DatasetClass, ForbiddenError, NotFoundError, ValidationError

from helpers169 import API, unique_name


def test_create_with_config_and_get_by_name_or_id(client):
    name = unique_name("create")
    ds = client.datasets.create(
        name,
        readme="# Road signs",
        annotation_types=["bbox", "polygon", "keypoint"],
        classes=[DatasetClass(name="car", type="bbox", color="#112233"), {"name": "sign"}],
    )
    assert isinstance(ds, Dataset)
    assert ds.name == name
    assert ds.description == "# Road signs", "a readme is kept as the description"
    assert ds.annotation_types == ["bbox", "polygon", "keypoint"]
    assert [(c.name, c.type, c.color) for c in ds.classes][0] == ("car", "bbox", "#112233")
    assert ds.classes[1].color, "a class without colour is given one"
    assert ds.organization_id
    assert (ds.image_count, ds.archived_image_count, ds.total_size) == (0, 0, 0)
    assert (ds.is_public, ds.is_archived, ds.storage_class) == (False, False, "standard")
    assert ds.updated_at is not None

    assert client.datasets.get(name).id == ds.id
    assert client.datasets.get(dataset_id=ds.id).name == name
    assert client.datasets.get(ds.id).name == name, "a UUID is accepted where a name is"


def test_create_defaults_and_description(client):
    ds = client.datasets.create(unique_name("defaults"), description="plain")
    assert ds.annotation_types == ["bbox"]
    assert ds.classes == []
    assert ds.description == "plain"


def test_create_duplicate_conflicts(client, member_client):
    name = unique_name("dup")
    member_client.datasets.create(name)
    with pytest.raises(ConflictError) as ei:
        client.datasets.create(name)
    assert ei.value.status_code == 409
    assert ei.value.code == "conflict"


def test_create_invalid_is_validation_error(client):
    with pytest.raises(ValidationError) as ei:
        client.datasets.create(unique_name("bad"), annotation_types=["cuboid"])
    assert ei.value.status_code == 422
    assert ei.value.field_errors, "field errors come from error.details.errors"


def test_names_are_per_org(client, other_org_client):
    name = unique_name("per-org")
    client.datasets.create(name)
    other_org_client.datasets.create(name)
    with pytest.raises(NotFoundError):
        other_org_client.datasets.get(dataset_id=client.datasets.get(name).id)


def test_update_rename_readme_types_classes(client):
    name = unique_name("upd")
    ds = client.datasets.create(name, classes=[{"name": "car"}])
    new_name = unique_name("upd-renamed")
    out = client.datasets.update(
        name,
        new_name=new_name,
        readme="card",
        annotation_types=["polygon"],
        classes=[{"name": "bus", "type": "polygon"}],
    )
    assert out.id == ds.id
    assert out.name == new_name
    assert out.description == "card"
    assert out.annotation_types == ["polygon"]
    assert [c.name for c in out.classes] == ["bus"], "classes replace the list"
    with pytest.raises(NotFoundError):
        client.datasets.get(name)
    # by id, description wins over readme
    out = client.datasets.update(dataset_id=ds.id, description="desc")
    assert out.description == "desc"


def test_update_classes_base_keeps_concurrent_additions(client):
    name = unique_name("base")
    read = client.datasets.create(name, classes=[{"name": "car"}, {"name": "bus"}])
    # another writer adds a class after our read
    client.datasets.update(name, classes=[*read.classes, DatasetClass(name="tram")])
    # our edit: drop bus, add bike, relative to what we read
    edited = [c for c in read.classes if c.name != "bus"] + [DatasetClass(name="bike")]
    out = client.datasets.update(name, classes=edited, classes_base=read.classes)
    assert sorted(c.name for c in out.classes) == ["bike", "car", "tram"]


def test_update_errors(client):
    a, b = unique_name("ua"), unique_name("ub")
    client.datasets.create(a)
    client.datasets.create(b)
    with pytest.raises(ConflictError):
        client.datasets.update(a, new_name=b)
    with pytest.raises(NotFoundError):
        client.datasets.update(unique_name("missing"), description="x")
    with pytest.raises(ValidationError):
        client.datasets.update(a, classes=[{"name": ""}])


def test_delete_roles_and_summary(client, member_client, admin_client, images):
    name = unique_name("del")
    ds = client.datasets.create(name)
    client.images.upload(name, images("a.jpg"))
    with pytest.raises(ForbiddenError):
        member_client.datasets.delete(name)
    summary = admin_client.datasets.delete(name)
    assert summary["id"] == ds.id
    assert summary["images_deleted"] == 1
    with pytest.raises(NotFoundError):
        client.datasets.get(name)
    with pytest.raises(NotFoundError):
        client.datasets.delete(name)
    other = client.datasets.create(unique_name("del-id"))
    assert client.datasets.delete(dataset_id=other.id)["name"] == other.name


def test_list_and_iter_page_with_has_more(client, raw):
    prefix = unique_name("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        client.datasets.create(n)
    listed = [d.name for d in client.datasets.iter(page_size=2)]
    assert [n for n in listed if n.startswith(prefix)] == names
    assert len(listed) == len(set(listed))
    assert [d.name for d in client.datasets.iter(page_size=2, max_total=3)] == listed[:3]

    everything = client.datasets.list(limit=1000)
    assert [d.name for d in everything] == listed
    page = client.datasets.list(limit=2, offset=1)
    assert [d.name for d in page] == listed[1:3]
    assert client.datasets.list(archived=True) == []

    body = raw().get(f"{API}/datasets/", params={"limit": 2, "offset": 0}).json()
    assert body["pagination"] == {"limit": 2, "offset": 0, "total": len(listed), "has_more": True}
    assert body["data"] == body["datasets"]
    last = raw().get(f"{API}/datasets/", params={"limit": 2, "offset": len(listed) - 1}).json()
    assert last["pagination"]["has_more"] is False


def test_get_name_with_slash_space_and_unicode(client, images):
    name = unique_name("a b/é?#")
    client.datasets.create(name)
    img = client.images.upload(name, images("x.png"))
    assert client.datasets.get(name).image_count == 1
    assert client.images.get(name, "x.png").id == img.id
    out = client.datasets.update(name, description="ok")
    assert out.name == name


def test_get_include_images(client, images):
    name = unique_name("incl")
    client.datasets.create(name)
    for i in range(3):
        client.images.upload(name, images(f"{i}.jpg"))
    ds = client.datasets.get(name, include_images=True, images_limit=2, images_offset=1)
    assert ds.images is not None and len(ds.images) == 2
    assert all(i.directory_path == "/" and i.content_type == "image/jpeg" for i in ds.images)
    assert client.datasets.get(name).images is None


def test_unknown_dataset_is_not_found(client):
    with pytest.raises(NotFoundError) as ei:
        client.datasets.get(unique_name("nothing"))
    assert ei.value.code == "not_found"
    assert ei.value.request_id
