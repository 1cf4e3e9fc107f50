"""Exports read by the formats' real readers: pycocotools for COCO, Ultralytics' dataset check
and label loader for YOLO, supervision's YOLO and Pascal VOC dataset loaders, lxml's XML Schema validator; counts and boxes must equal the
dataset's as the API serves it, and what a format cannot hold must be reported."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import supervision as sv
import yaml
from lxml import etree
from pycocotools.coco import COCO

from conftest import HERE, Server

TOL = 1e-6


def warnings_of(report: dict[str, Any]) -> dict[str, int]:
    return {w["code"]: w["count"] for w in report["warnings"]}


def boxes(truth: dict[str, Any]) -> dict[str, list[tuple]]:
    """Image path -> sorted (class, x1, y1, x2, y2) of its bbox annotations."""
    out = {}
    for rel, t in truth.items():
        out[rel] = sorted(
            (a["name"], b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"])
            for a in t["annotations"]
            if a["type"] == "bbox"
            for b in [a["bounding_box"]]
        )
    return out


def same_boxes(got: list[tuple], want: list[tuple], tol: float = TOL) -> bool:
    return len(got) == len(want) and all(
        g[0] == w[0] and all(math.isclose(p, q, abs_tol=tol) for p, q in zip(g[1:], w[1:]))
        for g, w in zip(sorted(got), sorted(want))
    )


def test_coco_export_loads_in_pycocotools(server: Server, dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "coco"
    report = server.cli_json("export", dataset, str(out), "--format", "coco")
    assert warnings_of(report) == {"polyline_dropped": 1}

    coco = COCO(str(out / "annotations" / "instances.json"))
    truth = server.truth(dataset)
    holdable = [a for t in truth.values() for a in t["annotations"] if a["type"] != "polyline"]
    assert len(coco.getAnnIds()) == len(holdable) == 7
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == ["bus", "car", "nose", "road"]

    by_file = {img["file_name"]: img for img in coco.dataset["images"]}
    assert set(by_file) == set(truth)
    want_boxes = boxes(truth)
    for rel, t in truth.items():
        img = by_file[rel]
        assert (img["width"], img["height"]) == (t["width"], t["height"])
        assert (out / "images" / rel).is_file()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        name = lambda a: coco.cats[a["category_id"]]["name"]  # noqa: E731
        got = [
            (name(a), a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3])
            for a in anns
            if not a.get("segmentation") and not a.get("num_keypoints")
        ]
        assert same_boxes(got, want_boxes[rel]), (rel, got, want_boxes[rel])
        for a in anns:
            if a.get("segmentation"):
                # pycocotools rasterises the polygon: the triangle covers about half its box.
                mask = coco.annToMask(a)
                assert mask.shape == (t["height"], t["width"])
                assert 0.4 * a["bbox"][2] * a["bbox"][3] < mask.sum() < 0.6 * a["bbox"][2] * a["bbox"][3]
            if a.get("num_keypoints"):
                assert coco.cats[a["category_id"]]["keypoints"] == ["nose"]
                assert a["keypoints"] == [12.0, 14.0, 2]
    scores = [a["score"] for a in coco.dataset["annotations"] if "score" in a]
    assert scores == [0.5]


def label_path(image: Path) -> Path:
    """Where Ultralytics looks for an image's label file (its img2label_paths rule): the last
    /images/ of the path becomes /labels/ and the suffix becomes .txt."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    head, tail = str(image).rsplit(sa, 1)
    return Path(sb.join([head, tail]).rsplit(".", 1)[0] + ".txt")


def test_yolo_export_has_the_ultralytics_layout(server: Server, dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    report = server.cli_json("export", dataset, str(out), "--format", "yolo")
    assert warnings_of(report) == {
        "polyline_dropped": 1,
        "keypoint_dropped": 1,
        "polygon_dropped": 1,
        "confidence_dropped": 1,
    }

    data = yaml.safe_load((out / "data.yaml").read_text())
    names = data["names"]
    assert names == {0: "car", 1: "bus", 2: "road", 3: "nose"}
    assert data["nc"] == len(names)
    # No `path` key: Ultralytics resolves train/val against the YAML file's folder.
    assert "path" not in data
    assert data["train"] == "images/train" and data["val"] == "images/val"

    truth = server.truth(dataset)
    want = boxes(truth)
    seen = set()
    for split in ("train", "val"):
        images_dir = out / data[split]
        assert images_dir.is_dir()
        for image in sorted(images_dir.iterdir()):
            label = label_path(image)
            assert label.is_file(), f"no label file for {image}"
            for line in label.read_text().splitlines():
                fields = line.split()
                assert len(fields) == 5, line
                assert int(fields[0]) in names
                assert all(0.0 <= float(v) <= 1.0 for v in fields[1:]), line

        ds = sv.DetectionDataset.from_yolo(
            images_directory_path=str(images_dir),
            annotations_directory_path=str(out / "labels" / split),
            data_yaml_path=str(out / "data.yaml"),
        )
        assert ds.classes == [names[i] for i in range(len(names))]
        assert len(ds) == sum(1 for rel in truth if rel.startswith(split + "/"))
        for image_path, _image, det in ds:
            rel = f"{split}/{Path(image_path).name}"
            seen.add(rel)
            got = [(ds.classes[c], *map(float, xyxy)) for xyxy, c in zip(det.xyxy, det.class_id)]
            assert same_boxes(got, want[rel], tol=1e-4), (rel, got, want[rel])
    assert seen == set(truth)


def test_yolo_export_loads_in_ultralytics(server: Server, dataset: str, tmp_path: Path) -> None:
    """Ultralytics' own dataset check and label loader (what `yolo train data=…` runs first)
    accept the export: every image verified, none corrupt, boxes equal the dataset's."""
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics-settings"))
    os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    out = tmp_path / "yolo"
    server.cli_json("export", dataset, str(out), "--format", "yolo")
    data = check_det_dataset(str(out / "data.yaml"), autodownload=False)
    assert data["nc"] == 4
    assert data["names"] == {0: "car", 1: "bus", 2: "road", 3: "nose"}

    truth = server.truth(dataset)
    want = boxes(truth)
    seen = set()
    for split in ("train", "val"):
        assert Path(data[split]) == out / "images" / split
        ds = YOLODataset(img_path=data[split], data=data, task="detect", augment=False, cache=False)
        assert len(ds.labels) == sum(1 for rel in truth if rel.startswith(split + "/"))
        for label in ds.labels:
            rel = f"{split}/{Path(label['im_file']).name}"
            seen.add(rel)
            h, w = label["shape"]
            assert (w, h) == (truth[rel]["width"], truth[rel]["height"])
            got = [
                (data["names"][int(c)], (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                for c, (cx, cy, bw, bh) in zip(label["cls"].ravel(), label["bboxes"].tolist())
            ]
            assert same_boxes(got, want[rel], tol=1e-3), (rel, got, want[rel])
    assert seen == set(truth)


def test_voc_export_validates_and_round_trips(server: Server, dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "voc"
    report = server.cli_json("export", dataset, str(out), "--format", "voc")
    assert warnings_of(report) == {
        "polyline_dropped": 1,
        "keypoint_dropped": 1,
        "polygon_dropped": 1,
        "confidence_dropped": 1,
    }
    truth = server.truth(dataset)
    want = boxes(truth)

    schema = etree.XMLSchema(etree.parse(str(HERE / "voc.xsd")))
    xmls = sorted((out / "Annotations").rglob("*.xml"))
    assert len(xmls) == len(truth)
    for xml in xmls:
        doc = etree.parse(str(xml))
        schema.assertValid(doc)
        rel = str(xml.relative_to(out / "Annotations").with_suffix(""))
        image = next(r for r in truth if r.rsplit(".", 1)[0] == rel)
        assert doc.findtext("filename") == Path(image).name
        assert (out / "JPEGImages" / image).is_file()
        size = (int(doc.findtext("size/width")), int(doc.findtext("size/height")))
        assert size == (truth[image]["width"], truth[image]["height"])
    ids = (out / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    assert sorted(ids) == sorted(r.rsplit(".", 1)[0] for r in truth)

    # supervision reads the export (1-based VOC corners) back to the dataset's boxes, and
    # writes it out again; importing its files gives the same boxes.
    again = tmp_path / "voc-again"
    for split in ("train", "val"):
        ds = sv.DetectionDataset.from_pascal_voc(
            images_directory_path=str(out / "JPEGImages" / split),
            annotations_directory_path=str(out / "Annotations" / split),
        )
        for image_path, _image, det in ds:
            rel = f"{split}/{Path(image_path).name}"
            got = [(ds.classes[c], *map(float, xyxy)) for xyxy, c in zip(det.xyxy, det.class_id)]
            assert same_boxes(got, want[rel]), (rel, got, want[rel])
        ds.as_pascal_voc(
            images_directory_path=str(again / "JPEGImages" / split),
            annotations_directory_path=str(again / "Annotations" / split),
        )
    first = server.cli_json("import", str(again), "--format", "voc", "--dataset", "voc-again", "--create")
    assert first["uploaded"] == len(truth)
    assert boxes(server.truth("voc-again")) == want
    rerun = server.cli_json("import", str(again), "--format", "voc", "--dataset", "voc-again")
    assert (rerun["uploaded"], rerun["annotations_saved"]) == (0, 0)


def test_another_organisation_cannot_export(server: Server, dataset: str, tmp_path: Path) -> None:
    res = server.cli("export", dataset, str(tmp_path / "x"), "--format", "coco", "--json", key=server.other_key)
    assert res.returncode == 1
    assert '"status": 404' in res.stdout


def test_server_archive_loads_in_pycocotools(server: Server, dataset: str, tmp_path: Path) -> None:
    """The export job's tar archive (built by the server) holds the same COCO export."""
    import tarfile

    archive = tmp_path / "coco.tar"
    report = server.cli_json("export", dataset, str(archive), "--format", "coco", "--server")
    assert warnings_of(report) == {"polyline_dropped": 1}
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    coco = COCO(str(tmp_path / "unpacked" / "annotations" / "instances.json"))
    truth = server.truth(dataset)
    assert len(coco.getAnnIds()) == 7
    assert {img["file_name"] for img in coco.dataset["images"]} == set(truth)
    for rel in truth:
        assert (tmp_path / "unpacked" / "images" / rel).is_file()
