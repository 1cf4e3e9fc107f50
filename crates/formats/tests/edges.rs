//! Unusual but valid inputs, read and written by the format conversions.

use pictograph_formats::{canonical, import, writer, ExportOptions, Format, ImageInfo, Shape};
use serde_json::{json, Value};
use std::path::Path;

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn codes(warnings: &[pictograph_formats::Warning]) -> Vec<(&str, u64)> {
    warnings
        .iter()
        .map(|w| (w.code.as_str(), w.count))
        .collect()
}

/// (type, name, geometry) of each annotation of the image named `filename`.
fn shapes(plan: &pictograph_formats::ImportPlan, filename: &str) -> Vec<(String, String)> {
    let item = plan
        .items
        .iter()
        .find(|i| i.filename == filename)
        .unwrap_or_else(|| panic!("no {filename}"));
    item.annotations(100, 100)
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap().to_string(),
                a["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn coco_ids_beyond_f64_precision_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("images/a.png"), b"a");
    write(&root.join("images/b.png"), b"b");
    write(&root.join("images/c.png"), b"c");
    write(&root.join("images/d.png"), b"d");
    // 2^53 and 2^53 + 1 are the same f64; so are all ids above i64::MAX once saturated.
    let doc = r#"{"images": [
            {"id": 9007199254740992, "file_name": "a.png"},
            {"id": 9007199254740993, "file_name": "b.png"},
            {"id": 18446744073709551614, "file_name": "c.png"},
            {"id": 18446744073709551615, "file_name": "d.png"}
        ], "annotations": [
            {"image_id": 9007199254740992, "category_id": 1, "bbox": [1, 1, 2, 2]},
            {"image_id": 9007199254740993, "category_id": 18446744073709551615, "bbox": [1, 1, 2, 2]},
            {"image_id": 9007199254740993, "category_id": 18446744073709551615, "bbox": [1, 1, 2, 2]},
            {"image_id": 18446744073709551614, "category_id": 1, "bbox": [1, 1, 2, 2]},
            {"image_id": 18446744073709551615, "category_id": 18446744073709551615, "bbox": [1, 1, 2, 2]}
        ], "categories": [
            {"id": 1, "name": "one"},
            {"id": 18446744073709551615, "name": "big"},
            {"id": 18446744073709551614, "name": "other"}
        ]}"#;
    write(&root.join("annotations/instances.json"), doc);
    let plan = import(Format::Coco, root).unwrap();
    assert_eq!(plan.classes, ["one", "other", "big"]);
    let per: Vec<(String, Vec<(String, String)>)> = plan
        .items
        .iter()
        .map(|i| (i.filename.clone(), shapes(&plan, &i.filename)))
        .collect();
    let bbox = |n: &str| ("bbox".to_string(), n.to_string());
    assert_eq!(
        per,
        [
            ("a.png".to_string(), vec![bbox("one")]),
            ("b.png".to_string(), vec![bbox("big"), bbox("big")]),
            ("c.png".to_string(), vec![bbox("one")]),
            ("d.png".to_string(), vec![bbox("big")]),
        ]
    );
    assert_eq!(codes(&plan.warnings), []);
}

#[test]
fn coco_keypoints_next_to_a_segmentation_are_kept() {
    // The layout of COCO's person_keypoints files: every person has a polygon (or, in a
    // crowd, an RLE mask) and its keypoints.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("images/p.png"), b"p");
    let doc = json!({
        "images": [{"id": 1, "file_name": "p.png", "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 50, 10, 50, 90, 10, 90]], "bbox": [10, 10, 40, 80],
             "keypoints": [20, 15, 2, 0, 0, 0, 30, 40, 1], "num_keypoints": 2},
            {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1,
             "segmentation": {"size": [100, 100], "counts": "abc"}, "bbox": [60, 60, 20, 20],
             "keypoints": [70, 70, 2, 0, 0, 0, 0, 0, 0], "num_keypoints": 1},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": ["nose", "left_eye", "right_eye"]}],
    });
    write(&root.join("annotations/instances.json"), doc.to_string());
    let plan = import(Format::Coco, root).unwrap();
    let s = |t: &str, n: &str| (t.to_string(), n.to_string());
    assert_eq!(
        shapes(&plan, "p.png"),
        [
            s("polygon", "person"),
            s("keypoint", "person/nose"),
            s("keypoint", "person/right_eye"),
            s("bbox", "person"),
            s("keypoint", "person/nose"),
        ]
    );
    // The crowd flag has no place in a canonical annotation: it is reported.
    assert_eq!(
        codes(&plan.warnings),
        [("crowd_flag_dropped", 1), ("rle_as_box", 1)]
    );
}

#[test]
fn voc_difficult_and_truncated_flags_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("JPEGImages/a.jpg"), b"a");
    write(
        &root.join("Annotations/a.xml"),
        "<annotation><filename>a.jpg</filename>\
         <object><name>car</name><truncated>1</truncated><difficult>0</difficult>\
         <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>\
         <object><name>car</name><difficult>1</difficult>\
         <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>\
         <object><name>car</name><truncated>0</truncated><difficult>0</difficult>\
         <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>\
         </annotation>",
    );
    let plan = import(Format::Voc, root).unwrap();
    assert_eq!(plan.items[0].len(), 3);
    assert_eq!(
        codes(&plan.warnings),
        [("difficult_flag_dropped", 1), ("truncated_flag_dropped", 1)]
    );
}

#[test]
fn yolo_names_as_a_flow_list_over_several_lines() {
    // As YOLOv5's coco.yaml wrote them.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("data.yaml"),
        "train: images/train\nval: images/val\nnc: 4\n\
         names: ['person', 'traffic light', \"a, b\",\n        'it''s']  # class names\n\
         download: |\n  print('names: x')\n",
    );
    write(&root.join("images/train/a.png"), b"a");
    write(&root.join("labels/train/a.txt"), "3 0.5 0.5 0.2 0.2\n");
    let plan = import(Format::Yolo, root).unwrap();
    assert_eq!(plan.classes, ["person", "traffic light", "a, b", "it's"]);
    assert_eq!(
        shapes(&plan, "a.png"),
        [("bbox".to_string(), "it's".to_string())]
    );

    // A flow mapping, as some tools write it.
    write(&root.join("data.yaml"), "names: {0: cat, 1: 'dog'}\n");
    let plan = import(Format::Yolo, root).unwrap();
    assert_eq!(plan.classes, ["cat", "dog"]);
}

fn image(folder: &str, filename: &str) -> ImageInfo {
    ImageInfo {
        folder: folder.into(),
        filename: filename.into(),
        width: 100,
        height: 100,
        status: "new".into(),
    }
}

/// One box, its `x` telling which image it belongs to.
fn one_box(x: f64) -> Vec<Value> {
    vec![canonical(
        "1",
        "car",
        &Shape::Box([x, 10.0, 20.0, 20.0]),
        1.0,
    )]
}

/// Writes an export of `images` (in this order) into `root`, each image file holding its
/// index; answers where each image went and the warnings.
fn export_into(
    format: Format,
    root: &Path,
    images: &[ImageInfo],
) -> (Vec<String>, Vec<pictograph_formats::Warning>) {
    let mut w = writer(format, ExportOptions::default()).unwrap();
    let mut placed = Vec::new();
    let mut files = Vec::new();
    for (i, img) in images.iter().enumerate() {
        let place = w.place(img);
        // Placed before being written, as the exports place a page at a time.
        placed.push(place.path.clone());
        files.push((img, place, i));
    }
    for (img, place, i) in files {
        assert!(
            !root.join(&place.path).exists(),
            "{format}: {} written twice",
            place.path
        );
        write(&root.join(&place.path), i.to_string());
        for f in w.add(img, &place, &one_box(i as f64)).unwrap() {
            assert!(
                !root.join(&f.path).exists(),
                "{format}: {} written twice",
                f.path
            );
            save(root, f);
        }
    }
    let done = w.finish().unwrap();
    for f in done.files {
        save(root, f);
    }
    (placed, done.warnings)
}

fn save(root: &Path, f: pictograph_formats::OutFile) {
    match f.body {
        pictograph_formats::Body::Bytes(b) => write(&root.join(&f.path), b),
        pictograph_formats::Body::File(mut body) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut body, &mut bytes).unwrap();
            write(&root.join(&f.path), bytes);
        }
    }
}

/// Reads the export in `root` back: for each image file, by the index it holds, the `x` of
/// its one box, rounded (YOLO's normalised numbers read back within float rounding; `None`
/// without a box).
fn read_back(format: Format, root: &Path) -> Vec<(usize, Option<i64>)> {
    let plan = import(format, root).unwrap_or_else(|e| panic!("{format}: {e}"));
    let mut out: Vec<(usize, Option<i64>)> = plan
        .items
        .iter()
        .map(|item| {
            let i = std::fs::read_to_string(&item.path)
                .unwrap()
                .parse()
                .unwrap();
            let anns = item.annotations(100, 100);
            let x = anns
                .first()
                .map(|a| a["bounding_box"]["x"].as_f64().unwrap().round() as i64);
            (i, x)
        })
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

#[test]
fn images_sharing_an_output_file_are_numbered() {
    // `a.jpg` and `a.png` have one label file, as `/x.png` and `/train/x.png` have in the
    // YOLO layout (both go to the train split): the later one is numbered.
    let images = [
        image("/", "a.jpg"),
        image("/", "a.png"),
        image("/", "x.png"),
        image("/train", "x.png"),
        image("/other", "a.png"),
        image("/", "a.gif"),
    ];
    let expected: [(Format, [&str; 6], u64); 4] = [
        (
            Format::Yolo,
            [
                "images/train/a.jpg",
                "images/train/a-2.png",
                "images/train/x.png",
                "images/train/x-2.png",
                "images/train/other/a.png",
                "images/train/a-3.gif",
            ],
            3,
        ),
        (
            Format::Voc,
            [
                "JPEGImages/a.jpg",
                "JPEGImages/a-2.png",
                "JPEGImages/x.png",
                "JPEGImages/train/x.png",
                "JPEGImages/other/a.png",
                "JPEGImages/a-3.gif",
            ],
            2,
        ),
        (
            Format::Coco,
            [
                "images/a.jpg",
                "images/a.png",
                "images/x.png",
                "images/train/x.png",
                "images/other/a.png",
                "images/a.gif",
            ],
            0,
        ),
        (
            Format::Pictograph,
            [
                "images/a.jpg",
                "images/a.png",
                "images/x.png",
                "images/train/x.png",
                "images/other/a.png",
                "images/a.gif",
            ],
            0,
        ),
    ];
    for (format, paths, renamed) in expected {
        let dir = tempfile::tempdir().unwrap();
        let (placed, warnings) = export_into(format, dir.path(), &images);
        assert_eq!(placed, paths, "{format}");
        let expected_codes: &[(&str, u64)] = if renamed > 0 {
            &[("renamed_to_avoid_collision", renamed)]
        } else {
            &[]
        };
        assert_eq!(codes(&warnings), expected_codes, "{format}");
        if renamed > 0 {
            assert!(
                warnings[0].message.contains("/a.png as "),
                "{}",
                warnings[0].message
            );
        }
        // Every image reads back once, with its own box.
        let back = read_back(format, dir.path());
        let own: Vec<(usize, Option<i64>)> =
            (0..images.len()).map(|i| (i, Some(i as i64))).collect();
        assert_eq!(back, own, "{format}");
        // The same images in the same order: the same names.
        let again = tempfile::tempdir().unwrap();
        assert_eq!(
            export_into(format, again.path(), &images).0,
            paths,
            "{format}"
        );
    }
}

#[test]
fn a_file_and_a_folder_of_one_name_never_meet() {
    // An image `b.png` before a folder `/b.png`, a folder `/d` before an image `d` (no
    // extension), and a label file `e.txt` (YOLO) or `e.xml` (VOC) before a folder of that
    // name: the later one is numbered, a folder once for all its images. (A folder named
    // like an earlier image but for the extension is numbered in YOLO and VOC even when the
    // extension differs, `e.xml` in YOLO and `e.txt` in VOC: one hash per image keeps no
    // extension.)
    let images = [
        image("/", "b.png"),
        image("/b.png", "c.png"),
        image("/d", "x.png"),
        image("/", "d"),
        image("/b.png", "c2.png"),
        image("/d", "y.png"),
        image("/", "e.png"),
        image("/e.txt", "f.png"),
        image("/e.xml", "f.png"),
    ];
    let expected: [(Format, [&str; 9], u64); 4] = [
        (
            Format::Yolo,
            [
                "images/train/b.png",
                "images/train/b-2.png/c.png",
                "images/train/d/x.png",
                "images/train/d-2",
                "images/train/b-2.png/c2.png",
                "images/train/d/y.png",
                "images/train/e.png",
                "images/train/e-2.txt/f.png",
                "images/train/e-2.xml/f.png",
            ],
            5,
        ),
        (
            Format::Voc,
            [
                "JPEGImages/b.png",
                "JPEGImages/b-2.png/c.png",
                "JPEGImages/d/x.png",
                "JPEGImages/d-2",
                "JPEGImages/b-2.png/c2.png",
                "JPEGImages/d/y.png",
                "JPEGImages/e.png",
                "JPEGImages/e-2.txt/f.png",
                "JPEGImages/e-2.xml/f.png",
            ],
            5,
        ),
        (
            Format::Coco,
            [
                "images/b.png",
                "images/b-2.png/c.png",
                "images/d/x.png",
                "images/d-2",
                "images/b-2.png/c2.png",
                "images/d/y.png",
                "images/e.png",
                "images/e.txt/f.png",
                "images/e.xml/f.png",
            ],
            3,
        ),
        (
            Format::Pictograph,
            [
                "images/b.png",
                "images/b-2.png/c.png",
                "images/d/x.png",
                "images/d-2",
                "images/b-2.png/c2.png",
                "images/d/y.png",
                "images/e.png",
                "images/e.txt/f.png",
                "images/e.xml/f.png",
            ],
            3,
        ),
    ];
    for (format, paths, renamed) in expected {
        let dir = tempfile::tempdir().unwrap();
        let (placed, warnings) = export_into(format, dir.path(), &images);
        assert_eq!(placed, paths, "{format}");
        assert_eq!(
            codes(&warnings),
            [("renamed_to_avoid_collision", renamed)],
            "{format}"
        );
        // `d` has no image extension, so readers of a folder skip it; every other image reads
        // back once, with its own box.
        let back = read_back(format, dir.path());
        let own: Vec<(usize, Option<i64>)> = (0..images.len())
            .filter(|i| *i != 3 || format == Format::Pictograph || format == Format::Coco)
            .map(|i| (i, Some(i as i64)))
            .collect();
        assert_eq!(back, own, "{format}");
    }
}

#[test]
fn the_lossless_format_keeps_the_names_of_numbered_images() {
    let dir = tempfile::tempdir().unwrap();
    let images = [image("/", "b.png"), image("/b.png", "c.png")];
    export_into(Format::Pictograph, dir.path(), &images);
    let plan = import(Format::Pictograph, dir.path()).unwrap();
    let names: Vec<(&str, &str)> = plan
        .items
        .iter()
        .map(|i| (i.folder.as_str(), i.filename.as_str()))
        .collect();
    assert_eq!(names, [("/", "b.png"), ("/b.png", "c.png")]);
    assert!(plan.items[1].path.ends_with("images/b-2.png/c.png"));
}

#[test]
fn non_finite_numbers_are_not_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // YOLO: `nan` and `inf` parse as f64, but no annotation can hold them.
    write(&root.join("data.yaml"), "names: [a]\n");
    write(&root.join("images/x.png"), b"x");
    write(
        &root.join("labels/x.txt"),
        "0 nan 0.5 0.1 0.1\n0 0.5 0.5 inf 0.1\n0 0.5 0.5 0.1 0.1\n\n\n",
    );
    let plan = import(Format::Yolo, root).unwrap();
    assert_eq!(plan.items[0].len(), 1);
    assert_eq!(codes(&plan.warnings), [("unreadable_label", 2)]);

    // VOC: a corner that is not a finite number is an error naming the file.
    write(&root.join("JPEGImages/v.png"), b"v");
    write(
        &root.join("Annotations/v.xml"),
        "<annotation><object><name>a</name>\
         <bndbox><xmin>NaN</xmin><ymin>1</ymin><xmax>3</xmax><ymax>4</ymax></bndbox>\
         </object></annotation>",
    );
    let err = import(Format::Voc, root).unwrap_err();
    assert!(err.contains("v.xml") && err.contains("xmin"), "{err}");
}

#[test]
fn an_export_of_an_empty_dataset_reads_back() {
    for format in [Format::Yolo, Format::Voc, Format::Coco, Format::Pictograph] {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(
            format,
            ExportOptions {
                dataset: "d".into(),
                classes: vec!["b".into(), "a".into()],
                polygons_as_boxes: false,
            },
        )
        .unwrap();
        for f in w.finish().unwrap().files {
            let pictograph_formats::Body::File(mut body) = f.body else {
                write(
                    &dir.path().join(&f.path),
                    match f.body {
                        pictograph_formats::Body::Bytes(b) => b,
                        _ => unreachable!(),
                    },
                );
                continue;
            };
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut body, &mut bytes).unwrap();
            write(&dir.path().join(&f.path), bytes);
        }
        let plan = import(format, dir.path()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert!(plan.items.is_empty());
        if format != Format::Voc {
            assert_eq!(plan.classes, ["b", "a"], "{format}");
        }
    }
    // A folder in another layout is still refused.
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("data.yaml"), "names: [a]\n");
    write(&dir.path().join("train/images/x.png"), b"x");
    let err = import(Format::Yolo, dir.path()).unwrap_err();
    assert!(err.contains("no images/ folder"), "{err}");
}

#[test]
fn label_files_without_their_image_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("data.yaml"), "names: [a]\n");
    write(&root.join("images/train/x.png"), b"x");
    write(&root.join("labels/train/x.txt"), "0 0.5 0.5 0.1 0.1\n");
    write(&root.join("labels/train/gone.txt"), "0 0.5 0.5 0.1 0.1\n");
    write(&root.join("labels/val/gone too.txt"), "");
    write(&root.join("labels/train/classes.cache"), "");
    let plan = import(Format::Yolo, root).unwrap();
    assert_eq!(plan.items.len(), 1);
    assert_eq!(codes(&plan.warnings), [("label_without_image", 2)]);

    write(&root.join("JPEGImages/p.jpg"), b"p");
    let xml = "<annotation><object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin>\
               <xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>";
    write(&root.join("Annotations/p.xml"), xml);
    write(&root.join("Annotations/2007_000001.xml"), xml);
    let plan = import(Format::Voc, root).unwrap();
    assert_eq!(plan.items.len(), 1);
    assert_eq!(codes(&plan.warnings), [("annotation_without_image", 1)]);
}

/// A lossless manifest names files inside `images/` only: a path that climbs out of it, or
/// an absolute one, stops the import with the line that names it.
#[test]
fn a_manifest_cannot_reach_files_outside_its_images_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    write(&dir.path().join("secret.png"), b"not yours");
    write(&root.join("images/a.png"), b"png");
    write(
        &root.join("dataset.json"),
        json!({"classes": []}).to_string(),
    );
    for file in ["../../secret.png", "/etc/hostname", "sub/../../a.png", ""] {
        let line = json!({"file": file, "folder": "/", "filename": "a.png", "annotations": []});
        write(&root.join("annotations.jsonl"), format!("{line}\n"));
        let e = import(Format::Pictograph, &root).unwrap_err();
        assert!(
            e.contains("line 1") && e.contains("inside images/"),
            "{file}: {e}"
        );
    }
    let fine = json!({"file": "a.png", "folder": "/", "filename": "a.png", "annotations": []});
    write(&root.join("annotations.jsonl"), format!("{fine}\n"));
    assert_eq!(import(Format::Pictograph, &root).unwrap().items.len(), 1);
}

/// A YOLO prediction line (`class cx cy w h conf`, as `predict --save-txt --save-conf`
/// writes it) is a box with that confidence; a fifth value outside 0..1 is not one.
#[test]
fn yolo_prediction_lines_keep_their_confidence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("data.yaml"), "names: ['car']\n");
    write(&root.join("images/train/a.png"), b"a");
    write(
        &root.join("labels/train/a.txt"),
        "0 0.5 0.5 0.2 0.4 0.87\n0 0.5 0.5 0.2 0.4\n0 0.5 0.5 0.2 0.4 3\n",
    );
    let plan = import(Format::Yolo, root).unwrap();
    let item = plan.items.iter().find(|i| i.filename == "a.png").unwrap();
    let anns = item.annotations(100, 50);
    assert_eq!(anns.len(), 2, "{anns:?}");
    assert_eq!(anns[0]["confidence"], 0.87);
    assert_eq!(anns[1]["confidence"], 1.0);
    let bbox = &anns[0]["bounding_box"];
    assert_eq!(
        (bbox["x"].as_f64(), bbox["w"].as_f64()),
        (Some(40.0), Some(20.0))
    );
    assert_eq!(
        (bbox["y"].as_f64(), bbox["h"].as_f64()),
        (Some(15.0), Some(20.0))
    );
    assert_eq!(codes(&plan.warnings), [("unreadable_label", 1)]);
}
