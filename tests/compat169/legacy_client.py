"""One call of the pictograph 1.6.3 client, for the cross-version tests.

Run with the legacy venv's python (pictograph==1.6.3), never imported by pytest:

    python legacy_client.py <op> '<json args>'

The key and URL come from PICTOGRAPH_API_KEY / PICTOGRAPH_BASE_URL. The result is printed
as one JSON document on stdout. Everything read goes through the 1.6.3 models, so a shape
1.6.3 rejects makes the op fail (non-zero exit with the traceback on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import pictograph
from pydantic import TypeAdapter

from pictograph import Annotation, Client

assert pictograph.__version__ == "1.6.3", f"legacy client must be pictograph 1.6.3, got {pictograph.__version__}"

ANNOTATIONS = TypeAdapter(list[Annotation])


def _anns(items: list[Any]) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json", exclude_none=True) for a in items]


def read_dataset(c: Client, name: str, download_dir: str | None = None) -> dict[str, Any]:
    """Everything 1.6.3 can read about a dataset: list/iter, get, get_by_id, the project,
    every image's metadata, bytes and annotations, and optionally a full download."""
    listed = [d.name for d in c.datasets.iter(page_size=2)]
    ds = c.datasets.get(name, include_images=True, images_limit=10000)
    by_id = c.datasets.get_by_id(ds.id)
    project = c.projects.get(name)
    images = []
    for summary in ds.images or []:
        img = c.images.get(summary.id)
        anns = c.annotations.get(summary.id)
        images.append(
            {
                "id": img.id,
                "filename": img.filename,
                "folder": img.virtual_folder_path,
                "status": img.status,
                "width": img.width,
                "height": img.height,
                "mime_type": img.mime_type,
                "file_size": img.file_size,
                "is_archived": img.is_archived,
                "annotation_count": img.annotation_count,
                "annotations": _anns(anns),
            }
        )
    out: dict[str, Any] = {
        "listed": name in listed,
        "dataset": {
            "id": ds.id,
            "name": ds.name,
            "description": ds.description,
            "image_count": ds.image_count,
            "archived_images": ds.archived_images,
            "classes": [cl.name for cl in ds.classes],
            "by_id_name": by_id.name,
            "project_annotation_types": project.annotation_types,
        },
        "images": images,
    }
    if download_dir:
        report = c.datasets.download(name, download_dir)
        parsed = {}
        for path in sorted(Path(download_dir).glob("*.json")):
            payload = json.loads(path.read_text(encoding="utf-8"))
            parsed[path.name] = _anns(ANNOTATIONS.validate_python(payload["annotations"]))
        out["download"] = {
            "images_downloaded": report.images_downloaded,
            "annotations_downloaded": report.annotations_downloaded,
            "failures": [f.reason for f in report.failures],
            "annotation_files": parsed,
        }
    return out


def write_dataset(c: Client, name: str, folder: str, classes: list[dict[str, Any]]) -> dict[str, Any]:
    """Create a project, upload a folder twice (the second run skips everything), and list it."""
    from pictograph.workflows import upload_dataset_from_folder

    project = c.projects.create(name, annotation_types=["bbox", "polygon", "polyline", "keypoint"], classes=classes)
    first = upload_dataset_from_folder(c, name, folder)
    second = upload_dataset_from_folder(c, name, folder)
    ds = c.datasets.get(name, include_images=True)
    return {
        "id": project.id,
        "first": [first.images_uploaded, first.images_skipped, len(first.failures)],
        "second": [second.images_uploaded, second.images_skipped, len(second.failures)],
        "images": {f"{i.virtual_folder_path}|{i.filename}": i.id for i in ds.images or []},
    }


def save_annotations(c: Client, image_id: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    res = c.annotations.save(image_id, ANNOTATIONS.validate_python(annotations))
    return {"previous_count": res.previous_count, "new_count": res.new_count, "status": res.status}


def get_annotations(c: Client, image_id: str) -> list[dict[str, Any]]:
    return _anns(c.annotations.get(image_id))


def batch(c: Client, operation: str, dataset_name: str, image_ids: list[str], **kwargs: Any) -> dict[str, Any]:
    res = getattr(c.batch, operation)(dataset_name, image_ids, **kwargs)
    return res.model_dump(mode="json")


def rename(c: Client, name: str, new_name: str) -> dict[str, Any]:
    return {"name": c.projects.update(name, new_name=new_name).name}


def download_image(c: Client, image_id: str, path: str) -> dict[str, Any]:
    c.images.download(image_id, path)
    return {"size": Path(path).stat().st_size}


def delete_image(c: Client, image_id: str, permanent: bool = False) -> dict[str, Any]:
    c.images.delete(image_id, permanent=permanent)
    return {"deleted": image_id}


OPS: dict[str, Callable[..., Any]] = {
    "read_dataset": read_dataset,
    "write_dataset": write_dataset,
    "save_annotations": save_annotations,
    "get_annotations": get_annotations,
    "batch": batch,
    "rename": rename,
    "download_image": download_image,
    "delete_image": delete_image,
}


def main() -> None:
    op, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    with Client() as c:
        result = OPS[op](c, **args)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
