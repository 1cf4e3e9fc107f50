"""Projects CRUD and the dataset read paths (list / iter / get / get_by_id)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from pictograph import (
    ConflictError,
    Dataset,
    ForbiddenError,
    NotFoundError,
    Project,
    ProjectClass,
)

from compat_helpers import API, unique_name


def _record_requests(client):
    """Collect (method, path, query) of every request this client's transport sends."""
    seen = []
    http = client._transport._client  # the SDK's single httpx.Client
    hooks = dict(http.event_hooks)
    hooks["request"] = list(hooks.get("request", [])) + [
        lambda req: seen.append((req.method, req.url.path, dict(req.url.params)))
    ]
    http.event_hooks = hooks
    return seen


# ───────────── projects ─────────────


def test_projects_create_with_config(client, member_client):
    name = unique_name("proj")
    p = client.projects.create(
        name,
        description="traffic signs",
        annotation_types=["bbox", "polygon"],
        classes=[
            ProjectClass(name="stop", type="bbox", color="#ff0000"),
            {"name": "yield", "type": "polygon"},
        ],
    )
    assert isinstance(p, Project)
    assert p.name == name
    assert p.description == "traffic signs"
    assert p.id and p.organization_id
    assert set(p.annotation_types) == {"bbox", "polygon"}
    assert [c.name for c in p.classes] == ["stop", "yield"]
    assert p.classes[0].type == "bbox"
    assert (p.classes[0].color or "").lower() == "#ff0000"
    assert p.classes[1].type == "polygon"
    assert p.classes[1].color, "the server assigns a default colour when none is given"
    assert p.image_count == 0 and p.archived_images == 0 and p.completed_image_count == 0
    assert isinstance(p.created_at, datetime)

    got = client.projects.get(name)
    assert got.id == p.id
    assert got.description == "traffic signs"
    assert [c.name for c in got.classes] == ["stop", "yield"]

    ds = client.datasets.get(name)
    assert isinstance(ds, Dataset)
    assert ds.id == p.id and ds.name == name and ds.description == "traffic signs"
    assert [c.name for c in ds.classes] == ["stop", "yield"]
    assert ds.image_count == 0
    assert ds.images is None

    # member+ may create projects
    other = member_client.projects.create(unique_name("proj-member"))
    assert other.id != p.id


def test_projects_create_defaults(client):
    name = unique_name("proj-min")
    p = client.projects.create(name)
    assert p.name == name
    assert p.classes == []
    assert p.annotation_types == ["bbox"]


def test_projects_create_duplicate_conflicts(client, member_client):
    name = unique_name("dup")
    client.projects.create(name)
    with pytest.raises(ConflictError) as ei:
        client.projects.create(name)
    assert ei.value.status_code == 409
    with pytest.raises(ConflictError):
        member_client.projects.create(name)


def test_project_names_are_per_org(client, other_org_client):
    name = unique_name("same-name")
    a = client.projects.create(name)
    b = other_org_client.projects.create(name)
    assert a.id != b.id
    assert client.datasets.get(name).id == a.id
    assert other_org_client.datasets.get(name).id == b.id


def test_projects_update(client):
    name = unique_name("upd")
    created = client.projects.create(name, description="before", classes=[{"name": "a", "type": "bbox"}])

    p = client.projects.update(name, description="after")
    assert p.id == created.id and p.name == name
    assert p.description == "after"
    assert [c.name for c in p.classes] == ["a"]

    p = client.projects.update(name, classes=[{"name": "b", "type": "polygon"}, {"name": "c", "type": "keypoint"}])
    assert [c.name for c in p.classes] == ["b", "c"], "classes is a replace, not a merge"
    assert [c.type for c in p.classes] == ["polygon", "keypoint"]
    assert p.description == "after"

    new_name = unique_name("upd-renamed")
    p = client.projects.update(name, new_name=new_name)
    assert p.id == created.id and p.name == new_name
    assert p.description == "after" and [c.name for c in p.classes] == ["b", "c"]

    with pytest.raises(NotFoundError):
        client.projects.get(name)
    with pytest.raises(NotFoundError):
        client.datasets.get(name)
    assert client.projects.get(new_name).id == created.id
    assert client.datasets.get(new_name).description == "after"


def test_projects_update_errors(client):
    taken = unique_name("taken")
    client.projects.create(taken)
    name = unique_name("upd-err")
    client.projects.create(name)
    with pytest.raises(ConflictError):
        client.projects.update(name, new_name=taken)
    with pytest.raises(NotFoundError):
        client.projects.update(unique_name("missing"), description="x")


def test_projects_delete_roles(client, member_client, admin_client, images):
    name = unique_name("del")
    p = client.projects.create(name)
    img = client.images.upload(p.id, images("one.png"))

    with pytest.raises(ForbiddenError) as ei:
        member_client.projects.delete(name)
    assert ei.value.status_code == 403
    assert client.projects.get(name).id == p.id
    assert client.images.get(img.id).id == img.id

    summary = admin_client.projects.delete(name)
    assert isinstance(summary, dict)
    assert summary.get("name") == name
    assert summary.get("id") == p.id

    with pytest.raises(NotFoundError):
        client.projects.get(name)
    with pytest.raises(NotFoundError):
        client.datasets.get(name)
    with pytest.raises(NotFoundError):
        client.datasets.get_by_id(p.id)
    with pytest.raises(NotFoundError):
        client.images.get(img.id)
    with pytest.raises(NotFoundError):
        admin_client.projects.delete(name)

    # the name is free again
    assert client.projects.create(name).id != p.id


def test_projects_list_includes_created(client):
    name = unique_name("plist")
    p = client.projects.create(name)
    names = [x.name for x in client.projects.iter(page_size=50)]
    assert name in names
    assert len(names) == len(set(names))
    assert any(x.id == p.id for x in client.projects.list(limit=200))


# ───────────── datasets list / iter ─────────────


def test_datasets_list_and_iter_paging(client):
    created = [unique_name("page") for _ in range(5)]
    for n in created:
        client.projects.create(n)

    listed = client.datasets.list(limit=1000)
    names = [d.name for d in listed]
    assert set(created) <= set(names)
    assert len(names) == len(set(names)), "list must not repeat datasets"
    assert all(isinstance(d, Dataset) for d in listed)

    assert len(client.datasets.list(limit=2)) == 2
    assert len(client.datasets.list()) == min(100, len(names))

    seen = _record_requests(client)
    iterated = [d.name for d in client.datasets.iter(page_size=2)]
    assert sorted(iterated) == sorted(names), "iter(page_size=2) must visit every dataset exactly once"
    pages = [r for r in seen if r[1] == f"{API}/datasets/"]
    # the pager stops on a short page; an exact multiple costs one extra empty page
    assert len(pages) == len(names) // 2 + 1
    assert [int(q["offset"]) for _, _, q in pages] == [2 * i for i in range(len(pages))]
    assert all(q["limit"] == "2" for _, _, q in pages)

    capped = client.datasets.iter(page_size=2, max_total=3).all()
    assert len(capped) == 3
    assert len({d.id for d in capped}) == 3
    assert client.datasets.iter(page_size=2).first() is not None


def test_datasets_list_has_counts(client, images):
    name = unique_name("counts-list")
    p = client.projects.create(name)
    for i in range(2):
        client.images.upload(p.id, images(f"c{i}.png"))
    [entry] = [d for d in client.datasets.list(limit=1000) if d.name == name]
    assert entry.id == p.id
    assert entry.image_count == 2


# ───────────── get / get_by_id ─────────────


def test_datasets_get_and_get_by_id(client, images):
    name = unique_name("get")
    p = client.projects.create(name, description="d")
    f = images("x.jpg", size=(40, 30))
    client.images.upload(p.id, f, folder_path="/a")

    by_name = client.datasets.get(name)
    by_id = client.datasets.get_by_id(p.id)
    for ds in (by_name, by_id):
        assert ds.id == p.id
        assert ds.name == name
        assert ds.description == "d"
        assert ds.image_count == 1
        assert ds.total_size == f.stat().st_size
        assert ds.images is None

    with pytest.raises(NotFoundError):
        client.datasets.get(name.upper())  # names are case-sensitive
    with pytest.raises(NotFoundError):
        client.datasets.get(unique_name("nope"))
    with pytest.raises(NotFoundError):
        client.datasets.get_by_id(str(uuid.uuid4()))


def test_datasets_get_name_with_space(client, images):
    name = f"road signs {uuid.uuid4().hex[:8]}"
    p = client.projects.create(name)
    client.images.upload(p.id, images("s.png"))
    ds = client.datasets.get(name)
    assert ds.id == p.id and ds.name == name and ds.image_count == 1
    assert client.projects.get(name).id == p.id


def test_datasets_get_include_images_paging(client, images):
    name = unique_name("embed")
    p = client.projects.create(name)
    files = {n: images(n, size=(30 + i, 20 + i)) for i, n in enumerate(["a.png", "b.png", "c.png"])}
    uploaded = {n: client.images.upload(p.id, f, folder_path="/imgs") for n, f in files.items()}

    full = client.datasets.get(name, include_images=True)
    assert full.images is not None and len(full.images) == 3
    by_name = {i.filename: i for i in full.images}
    assert set(by_name) == set(files)
    for i, n in enumerate(["a.png", "b.png", "c.png"]):
        di = by_name[n]
        assert di.id == uploaded[n].id
        assert di.status == "new"
        assert di.virtual_folder_path == "/imgs"
        assert (di.width, di.height) == (30 + i, 20 + i)
        assert di.file_size == files[n].stat().st_size
        assert di.is_archived is False
        assert di.annotation_count == 0

    page1 = client.datasets.get(name, include_images=True, images_limit=2, images_offset=0).images
    page2 = client.datasets.get(name, include_images=True, images_limit=2, images_offset=2).images
    page3 = client.datasets.get(name, include_images=True, images_limit=2, images_offset=4).images
    assert len(page1) == 2 and len(page2) == 1 and page3 == []
    ids1, ids2 = {i.id for i in page1}, {i.id for i in page2}
    assert not (ids1 & ids2)
    assert ids1 | ids2 == {u.id for u in uploaded.values()}


def test_dataset_counters(client, images):
    name = unique_name("counters")
    p = client.projects.create(name)
    files = [images(f"k{i}.png") for i in range(3)]
    imgs = [client.images.upload(p.id, f) for f in files]

    ds = client.datasets.get(name)
    assert (ds.image_count, ds.completed_image_count, ds.archived_images) == (3, 0, 0)
    assert ds.total_size == sum(f.stat().st_size for f in files)

    res = client.batch.update(name, [imgs[0].id, imgs[1].id], status="complete")
    assert res.success and res.processed == 2
    ds = client.datasets.get(name)
    assert (ds.image_count, ds.completed_image_count, ds.archived_images) == (3, 2, 0)

    client.images.delete(imgs[2].id)
    ds = client.datasets.get(name)
    assert (ds.image_count, ds.completed_image_count, ds.archived_images) == (2, 2, 1)
    assert ds.total_size == files[0].stat().st_size + files[1].stat().st_size
    assert client.datasets.get_by_id(p.id).archived_images == 1


# ───────────── tenancy ─────────────


def test_other_org_gets_not_found(client, other_org_client, images, tmp_path):
    name = unique_name("private")
    p = client.projects.create(name)
    img = client.images.upload(p.id, images("secret.png"))

    with pytest.raises(NotFoundError):
        other_org_client.datasets.get(name)
    with pytest.raises(NotFoundError):
        other_org_client.datasets.get_by_id(p.id)
    with pytest.raises(NotFoundError):
        other_org_client.projects.get(name)
    with pytest.raises(NotFoundError):
        other_org_client.images.get(img.id)
    with pytest.raises(NotFoundError):
        other_org_client.annotations.get(img.id)
    with pytest.raises(NotFoundError):
        other_org_client.images.download(img.id, tmp_path / "stolen.png")
    with pytest.raises(NotFoundError):
        other_org_client.datasets.download(name, tmp_path / "dump")
    with pytest.raises(NotFoundError):
        other_org_client.batch.move(name, [img.id], target_folder_path="/x")
    assert name not in [d.name for d in other_org_client.datasets.list(limit=1000)]
    assert not (tmp_path / "stolen.png").exists()

    # and nothing changed for the owner
    assert client.images.get(img.id).virtual_folder_path == "/"
