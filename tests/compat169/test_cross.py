"""Cross-version: data written by 1.69.146 read by 1.6.3 and the other way round, on one
server. The 1.6.3 side runs in a subprocess with the legacy venv (``legacy`` fixture)."""

from __future__ import annotations

from pictograph import BBoxAnnotation, BoundingBox, KeypointAnnotation, Point

from helpers169 import ANNOTATION_LIST, FOLDER_LAYOUT, dumped, every_type, legacy_view, make_tree, unique_name

CLASSES = [{"name": "car", "type": "bbox"}, {"name": "road"}, {"name": "nose"}]


def test_written_by_169_read_by_163(client, legacy, images, tmp_path):
    name = unique_name("new-writes")
    client.datasets.create(name, readme="card", annotation_types=["bbox", "polygon", "polyline", "keypoint"], classes=CLASSES)
    report = client.images.upload_from_directory(name, make_tree(images))
    assert report.images_uploaded == 5
    sent = every_type()
    client.annotations.save(name, "004.jpg", sent)
    client.annotations.save(name, "stop/001.jpg", sent[:2])
    stop_ids = {i.filename: i.id for i in client.images.list(name, directory_path="/stop")}
    client.batch.update(name, [stop_ids["001.jpg"]], status="complete")
    client.batch.move(name, [stop_ids["002.png"]], target_directory_path="/moved")
    client.images.delete(name, "yield/003.jpg")
    live = {i.id: i for i in client.images.list(name)}

    got = legacy("read_dataset", name=name, download_dir=str(tmp_path / "dl"))
    assert got["listed"]
    ds = got["dataset"]
    assert (ds["name"], ds["by_id_name"], ds["description"]) == (name, name, "card")
    assert (ds["image_count"], ds["archived_images"]) == (4, 1)
    assert ds["classes"] == ["car", "road", "nose"]
    assert ds["project_annotation_types"] == ["bbox", "polygon", "polyline", "keypoint"]

    by_id = {i["id"]: i for i in got["images"]}
    assert set(by_id) == set(live)
    for image_id, img in live.items():
        old = by_id[image_id]
        assert (old["filename"], old["folder"]) == (img.filename, img.directory_path)
        assert (old["width"], old["height"], old["mime_type"]) == (img.width, img.height, img.content_type)
        assert old["status"] == img.status
    root = next(i for i in got["images"] if i["filename"] == "004.jpg")
    assert root["annotations"] == [legacy_view(a) for a in dumped(sent)], "1.6.3 reads the 1.6.3 shape"
    first = next(i for i in got["images"] if i["filename"] == "001.jpg")
    assert first["annotations"] == [legacy_view(a) for a in dumped(sent[:2])]
    assert first["status"] == "complete"
    assert next(i for i in got["images"] if i["filename"] == "002.png")["folder"] == "/moved"

    dl = got["download"]
    assert (dl["images_downloaded"], dl["annotations_downloaded"], dl["failures"]) == (4, 4, [])
    assert dl["annotation_files"]["004.jpg.json"] == root["annotations"]

    # 1.6.3 fetches the bytes 1.69 uploaded
    out = tmp_path / "legacy-bytes.jpg"
    assert legacy("download_image", image_id=root["id"], path=str(out))["size"] == out.stat().st_size
    assert out.read_bytes() == (images.root / "tree" / "004.jpg").read_bytes()


def test_written_by_163_read_by_169(client, legacy, images, tmp_path):
    name = unique_name("old-writes")
    tree = make_tree(images)
    wrote = legacy("write_dataset", name=name, folder=str(tree), classes=CLASSES)
    assert wrote["first"] == [5, 0, 0] and wrote["second"] == [0, 5, 0], "1.6.3's second run skips all"
    root_id = wrote["images"]["/|004.jpg"]
    canonical = [
        {"id": "b", "name": "car", "type": "bbox", "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0},
         "confidence": 0.5, "attributes": [{"k": "v"}]},
        {"id": "k", "name": "nose", "type": "keypoint", "keypoint": {"x": 3.0, "y": 3.0}, "confidence": 1.0,
         "attributes": []},
    ]
    assert legacy("save_annotations", image_id=root_id, annotations=canonical)["new_count"] == 2

    ds = client.datasets.get(name)
    assert (ds.id, ds.image_count, [c.name for c in ds.classes]) == (wrote["id"], 5, ["car", "road", "nose"])
    assert ds.annotation_types == ["bbox", "polygon", "polyline", "keypoint"]
    listed = {(i.directory_path, i.filename) for i in client.images.list(name)}
    assert listed == {(folder, rel.split("/")[-1]) for rel, folder in FOLDER_LAYOUT.items()}
    assert all(i.width and i.height and i.content_type for i in client.images.list(name))

    got = client.annotations.get(name, "004.jpg")
    assert dumped(got) == canonical, "1.69 reads 1.6.3's annotations unchanged"
    assert client.images.get(name, "004.jpg").min_confidence == 0.5
    # organize_by_class put stop/night/005.jpg into /stop
    out = client.images.download(name, "stop/005.jpg", tmp_path / "005.jpg")
    assert out.read_bytes() == (tree / "stop" / "night" / "005.jpg").read_bytes()
    report = client.datasets.download(name, tmp_path / "dl")
    assert (report.images_downloaded, report.annotations_downloaded, report.failures) == (5, 5, [])

    # 1.69 re-runs the folder upload over 1.6.3's data: everything is skipped
    again = client.images.upload_from_directory(name, tree)
    assert (again.images_uploaded, again.images_skipped, again.failures) == (0, 5, [])

    # a 1.6.3 batch (target_folder_path) seen by 1.69, and a 1.69 batch seen by 1.6.3
    moved = legacy("batch", operation="move", dataset_name=name, image_ids=[root_id], target_folder_path="/legacy")
    assert moved["success"] and "/legacy" in moved["affected_folders"]
    assert client.annotations.get(name, "legacy/004.jpg") == got
    client.batch.update(name, [root_id], status="review")
    assert next(i for i in legacy("read_dataset", name=name)["images"] if i["id"] == root_id)["status"] == "review"


def test_extended_annotations_survive_a_163_round_trip_in_163_shape(client, legacy, dataset, images):
    """1.69 saves extensions; 1.6.3 reads and saves the list back unchanged; what is left is
    the 1.6.3 shape (the extensions cannot travel through a 1.6.3 model)."""
    img = client.images.upload(dataset.name, images("r.jpg"))
    sent = [
        BBoxAnnotation(id="o", name="car", bounding_box=BoundingBox(x=0, y=0, w=4, h=2),
                       oriented_box={"cx": 2, "cy": 1, "w": 4, "h": 2, "angle": 45}, attributes={"a": 1}),
        KeypointAnnotation(id="p", name="nose", keypoint=Point(x=1, y=1), instance_id=3),
    ]
    client.annotations.save(dataset.name, "r.jpg", sent)
    old = legacy("get_annotations", image_id=img.id)
    assert old == [legacy_view(a) for a in dumped(sent)]
    assert legacy("save_annotations", image_id=img.id, annotations=old)["previous_count"] == 2
    back = client.annotations.get(dataset.name, "r.jpg")
    assert dumped(back) == old
    assert back[0].oriented_box is None and back[0].attributes == [{"a": 1}] and back[1].instance_id is None
    assert ANNOTATION_LIST.validate_python(old) == back


def test_renames_across_versions(client, legacy):
    name = unique_name("ren")
    ds = client.datasets.create(name)
    renamed = unique_name("ren-163")
    assert legacy("rename", name=name, new_name=renamed)["name"] == renamed
    assert client.datasets.get(renamed).id == ds.id
    final = unique_name("ren-169")
    client.datasets.update(renamed, new_name=final)
    assert legacy("read_dataset", name=final)["dataset"]["id"] == ds.id
