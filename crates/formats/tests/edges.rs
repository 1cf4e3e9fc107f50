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
    // name: the later one is numbered, a folder once for all its images. A folder named like
    // an earlier image but for the extension meets none of its files, so it keeps its name:
    // `e.xml` in YOLO, `e.txt` in VOC, `e.jpg` in every format.
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
        image("/e.jpg", "f.png"),
    ];
    let expected: [(Format, [&str; 10], u64); 4] = [
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
                "images/train/e.xml/f.png",
                "images/train/e.jpg/f.png",
            ],
            4,
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
                "JPEGImages/e.txt/f.png",
                "JPEGImages/e-2.xml/f.png",
                "JPEGImages/e.jpg/f.png",
            ],
            4,
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
                "images/e.jpg/f.png",
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
                "images/e.jpg/f.png",
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

/// (folder, filename) of every image a folder reads back as, sorted.
fn places(format: Format, root: &Path) -> Vec<(String, String)> {
    let plan = import(format, root).unwrap_or_else(|e| panic!("{format}: {e}"));
    let mut out: Vec<(String, String)> = plan
        .items
        .iter()
        .map(|i| (i.folder.clone(), i.filename.clone()))
        .collect();
    out.sort();
    out
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// An export read back puts every image in the folder it came from: the root folder's images
/// (which the layout puts in the train split) at the root, a real `/train` folder's in
/// `/train`, whichever of them `images/train` holds more of, and alone or together.
#[test]
fn a_yolo_round_trip_keeps_root_images_at_the_root() {
    let cases: [&[(&str, &str)]; 4] = [
        // Root images only: the layout Ultralytics expects, read back at the root.
        &[("/", "a.png"), ("/cars", "b.png"), ("/val", "c.png")],
        // A dataset that came from a YOLO folder: split folders only.
        &[
            ("/train", "a.png"),
            ("/train/sub", "b.png"),
            ("/val", "c.png"),
        ],
        // Both, the root's more numerous (the `/train` file is listed by name).
        &[
            ("/", "a.png"),
            ("/", "x.png"),
            ("/train", "x.png"),
            ("/", "y.png"),
            ("/test", "t.png"),
        ],
        // Both, `/train`'s more numerous (the root file is listed by name).
        &[
            ("/train", "a.png"),
            ("/train", "b.png"),
            ("/", "a.png"),
            ("/train/sub", "c.png"),
        ],
    ];
    for images in cases {
        let infos: Vec<ImageInfo> = images.iter().map(|(f, n)| image(f, n)).collect();
        let dir = tempfile::tempdir().unwrap();
        let (placed, _) = export_into(Format::Yolo, dir.path(), &infos);
        // Read back, a numbered file keeps its number but not its folder's.
        let expected: Vec<(&str, String)> = images
            .iter()
            .zip(&placed)
            .map(|((folder, _), path)| (*folder, path.rsplit('/').next().unwrap().to_string()))
            .collect();
        let expected: Vec<(&str, &str)> = expected.iter().map(|(f, n)| (*f, n.as_str())).collect();
        assert_eq!(
            places(Format::Yolo, dir.path()),
            owned(&expected),
            "{images:?} placed as {placed:?}"
        );
        let yaml = std::fs::read_to_string(dir.path().join("data.yaml")).unwrap();
        assert!(yaml.contains("train: images/train\n"), "{yaml}");
        // Each image still reads back with its own box.
        let own: Vec<(usize, Option<i64>)> =
            (0..infos.len()).map(|i| (i, Some(i as i64))).collect();
        assert_eq!(read_back(Format::Yolo, dir.path()), own);
    }
    // Root images stay where Ultralytics looks for them.
    let dir = tempfile::tempdir().unwrap();
    let (placed, _) = export_into(Format::Yolo, dir.path(), &[image("/", "a.png")]);
    assert_eq!(placed, ["images/train/a.png"]);

    // A folder made by another tool (no keys of ours) keeps its split folders.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("data.yaml"),
        "train: images/train\nval: images/val\nnames: [a]\n",
    );
    write(&root.join("images/train/a.png"), b"a");
    write(&root.join("images/val/sub/b.png"), b"b");
    write(&root.join("images/c.png"), b"c");
    assert_eq!(
        places(Format::Yolo, root),
        owned(&[("/", "c.png"), ("/train", "a.png"), ("/val/sub", "b.png")])
    );
}

/// Ultralytics pose lines (`class cx cy w h` and K points, `kpt_shape: [K, D]`) read as a box
/// and one keypoint per labelled point; visibility 1 is kept as `occluded`, 0 is no point.
#[test]
fn yolo_pose_lines_are_keypoints() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("data.yaml"),
        "path: ../datasets/people\ntrain: images/train\nval: images/val\n\
         kpt_shape: [3, 3]  # number of keypoints, dims\nflip_idx: [0, 2, 1]\n\
         names:\n  0: person\n  1: dog\nkpt_names:\n  0:\n    - nose\n    - \"left eye\"\n    - right_eye\n",
    );
    write(&root.join("images/train/a.png"), b"a");
    write(
        &root.join("labels/train/a.txt"),
        "0 0.5 0.5 0.5 0.5 0.5 0.2 2 0.45 0.15 1 0 0 0\n\
         1 0.25 0.25 0.25 0.25 0.2 0.2 2 0 0 0 0.25 0.2 2\n\
         0 0.5 0.5 0.25 0.25\n",
    );
    let plan = import(Format::Yolo, root).unwrap();
    assert_eq!(
        plan.classes,
        [
            "person",
            "dog",
            "person/nose",
            "person/left eye",
            "person/right_eye",
            // A class kpt_names does not name joints for: its points by index, as met.
            "dog/0",
            "dog/2"
        ]
    );
    assert_eq!(plan.items[0].folder, "/train");
    let anns = plan.items[0].annotations(200, 100);
    let got: Vec<(String, String, Value, Value)> = anns
        .iter()
        .map(|a| {
            let geometry = if a["type"] == "keypoint" {
                a["keypoint"].clone()
            } else {
                a["bounding_box"].clone()
            };
            (
                a["type"].as_str().unwrap().to_string(),
                a["name"].as_str().unwrap().to_string(),
                geometry,
                a["attributes"].clone(),
            )
        })
        .collect();
    let kp = |x: f64, y: f64| json!({"x": x, "y": y});
    let bx = |x: f64, y: f64, w: f64, h: f64| json!({"x": x, "y": y, "w": w, "h": h});
    let occluded = json!([{"occluded": "true"}]);
    assert_eq!(
        got,
        [
            (
                "bbox".into(),
                "person".into(),
                bx(50.0, 25.0, 100.0, 50.0),
                json!([])
            ),
            (
                "keypoint".into(),
                "person/nose".into(),
                kp(100.0, 20.0),
                json!([])
            ),
            (
                "keypoint".into(),
                "person/left eye".into(),
                kp(90.0, 15.0),
                occluded
            ),
            (
                "bbox".into(),
                "dog".into(),
                bx(25.0, 12.5, 50.0, 25.0),
                json!([])
            ),
            ("keypoint".into(), "dog/0".into(), kp(40.0, 20.0), json!([])),
            ("keypoint".into(), "dog/2".into(), kp(50.0, 20.0), json!([])),
            (
                "bbox".into(),
                "person".into(),
                bx(75.0, 37.5, 50.0, 25.0),
                json!([])
            ),
        ]
    );
    assert_eq!(codes(&plan.warnings), []);

    // Two values per point: `0 0` is a point not labelled.
    write(
        &root.join("data.yaml"),
        "kpt_shape:\n  - 2\n  - 2\nnames: [hand]\n",
    );
    write(
        &root.join("labels/train/a.txt"),
        "0 0.5 0.5 0.5 0.5 0 0 0.5 0.25\n",
    );
    let plan = import(Format::Yolo, root).unwrap();
    let anns = plan.items[0].annotations(100, 100);
    assert_eq!(anns.len(), 2, "{anns:?}");
    assert_eq!(anns[1]["name"], "hand/1");
    assert_eq!(anns[1]["keypoint"], kp(50.0, 25.0));

    // A kpt_shape that is not [K, 2] or [K, 3] stops the import.
    write(
        &root.join("data.yaml"),
        "kpt_shape: [17, 4]\nnames: [hand]\n",
    );
    let err = import(Format::Yolo, root).unwrap_err();
    assert!(err.contains("kpt_shape"), "{err}");
}

/// A dataset whose classes name joints (`person/nose` beside `person`) exports pose lines:
/// each joint with the smallest box of its class holding it (or the object of its
/// `instance_id`), visibility 1 for occluded points, `0 0 0` for points not labelled, and
/// objects of their own for joints no box holds; it reads back as the same annotations.
#[test]
fn keypoints_export_as_yolo_pose_and_read_back() {
    let classes: Vec<String> = ["person", "person/nose", "person/tail", "car", "person/ear"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let options = ExportOptions {
        dataset: "d".into(),
        classes: classes.clone(),
        polygons_as_boxes: false,
    };
    let joint =
        |id: &str, name: &str, x: f64, y: f64| canonical(id, name, &Shape::Keypoint([x, y]), 1.0);
    let mut occluded_ear = joint("5", "person/ear", 30.0, 30.0);
    occluded_ear["attributes"] = json!([{"occluded": "true"}]);
    let mut grouped = joint("9", "person/nose", 90.0, 90.0);
    grouped["instance_id"] = json!(4);
    let mut grouped_ear = joint("10", "person/ear", 92.0, 95.0);
    grouped_ear["instance_id"] = json!(4);
    let annotations = vec![
        canonical("1", "person", &Shape::Box([0.0, 0.0, 100.0, 100.0]), 1.0),
        canonical("2", "person", &Shape::Box([20.0, 20.0, 20.0, 20.0]), 1.0),
        canonical("3", "car", &Shape::Box([50.0, 0.0, 10.0, 10.0]), 1.0),
        joint("4", "person/nose", 25.0, 25.0),
        occluded_ear,
        joint("6", "person/nose", 60.0, 70.0),
        joint("7", "nose", 1.0, 1.0),
        joint("8", "person/tail", 150.0, 20.0),
        grouped,
        grouped_ear,
    ];
    let mut w = writer(Format::Yolo, options).unwrap();
    let img = ImageInfo {
        folder: "/".into(),
        filename: "p.png".into(),
        width: 200,
        height: 100,
        status: "new".into(),
    };
    let place = w.place(&img);
    let files = w.add(&img, &place, &annotations).unwrap();
    let pictograph_formats::Body::Bytes(text) = &files[0].body else {
        panic!()
    };
    let text = String::from_utf8(text.clone()).unwrap();
    // Slots: nose, tail, ear. Instance 4 takes the big box (both its points lie in it); the
    // small box takes the nose at 25,25 and the occluded ear (visibility 1); the car has no
    // points; the nose at 60,70 (the big box is instance 4's) and the tail outside every box
    // make an object of their own, boxed around them. The lone `nose` is no joint.
    assert_eq!(
        text,
        "0 0.25 0.5 0.5 1 0.45 0.9 2 0 0 0 0.46 0.95 2\n\
         0 0.15 0.3 0.1 0.2 0.125 0.25 2 0 0 0 0.15 0.3 1\n\
         1 0.275 0.05 0.05 0.1 0 0 0 0 0 0 0 0 0\n\
         0 0.525 0.45 0.45 0.5 0.3 0.7 2 0.75 0.2 2 0 0 0\n"
    );
    let done = w.finish().unwrap();
    assert_eq!(
        codes(&done.warnings),
        [("keypoint_dropped", 1), ("pose_box_derived", 1)]
    );
    let pictograph_formats::Body::Bytes(yaml) = &done.files[0].body else {
        panic!()
    };
    let yaml = String::from_utf8(yaml.clone()).unwrap();
    assert!(
        yaml.contains("nc: 2\nnames:\n  0: \"person\"\n  1: \"car\"\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains(
            "kpt_shape: [3, 3]\nkpt_names:\n  0:\n    - \"nose\"\n    - \"tail\"\n    - \"ear\"\n"
        ),
        "{yaml}"
    );

    // Read back: the same boxes and keypoints (the derived boxes added), the classes in order.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join(&place.path), b"p");
    write(&root.join(&files[0].path), text.as_bytes());
    write(&root.join("data.yaml"), yaml.as_bytes());
    let plan = import(Format::Yolo, root).unwrap();
    assert_eq!(
        plan.classes,
        ["person", "car", "person/nose", "person/tail", "person/ear"]
    );
    let anns = plan.items[0].annotations(200, 100);
    let kinds = |list: &[Value]| -> Vec<(String, String, bool)> {
        let mut v: Vec<(String, String, bool)> = list
            .iter()
            .filter(|a| a["type"] == "keypoint")
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    format!("{},{}", a["keypoint"]["x"], a["keypoint"]["y"]),
                    a["attributes"] != json!([]),
                )
            })
            .collect();
        v.sort();
        v
    };
    let mut expected = kinds(&annotations);
    expected.retain(|(name, ..)| name != "nose");
    assert_eq!(kinds(&anns), expected);
}

/// COCO keypoint visibility through an import and an export: 2 (visible) is a plain keypoint,
/// 1 (labelled, not visible) a keypoint marked `occluded`, 0 (not labelled) none; written
/// back, each gets its own visibility again, and the mark is no attribute lost.
#[test]
fn coco_keypoint_visibility_survives_import_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("images/a.png"), b"a");
    let doc = json!({
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
        "annotations": [{
            "id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50],
            "keypoints": [10, 11, 2, 20, 21, 1, 30, 31, 0], "num_keypoints": 2,
        }],
        "categories": [{"id": 1, "name": "person", "keypoints": ["nose", "eye", "ear"]}],
    });
    write(&root.join("annotations/instances.json"), doc.to_string());
    let plan = import(Format::Coco, root).unwrap();
    let anns = plan.items[0].annotations(100, 100);
    let points: Vec<(&str, &Value, &Value)> = anns
        .iter()
        .filter(|a| a["type"] == "keypoint")
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                &a["keypoint"],
                &a["attributes"],
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            ("person/nose", &json!({"x": 10.0, "y": 11.0}), &json!([])),
            (
                "person/eye",
                &json!({"x": 20.0, "y": 21.0}),
                &json!([{"occluded": "true"}])
            ),
        ]
    );

    // Written back: visibility 2 and 1; an object `attributes` (newer clients) says the same.
    let mut newer = canonical("n", "person/ear", &Shape::Keypoint([5.0, 6.0]), 1.0);
    newer["attributes"] = json!({"occluded": true});
    let mut not = canonical("m", "person/ear", &Shape::Keypoint([7.0, 8.0]), 1.0);
    not["attributes"] = json!([{"occluded": "false"}]);
    let mut list = anns.clone();
    list.extend([newer, not]);
    let mut w = writer(Format::Coco, ExportOptions::default()).unwrap();
    let img = image("/", "a.png");
    let place = w.place(&img);
    w.add(&img, &place, &list).unwrap();
    let done = w.finish().unwrap();
    assert_eq!(codes(&done.warnings), [], "the mark is held, not dropped");
    let pictograph_formats::Body::File(mut f) = done.files.into_iter().next().unwrap().body else {
        panic!("spooled")
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut f, &mut text).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let written: Vec<&Value> = v["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.get("keypoints"))
        .collect();
    assert_eq!(
        written,
        [
            &json!([10.0, 11.0, 2]),
            &json!([20.0, 21.0, 1]),
            &json!([5.0, 6.0, 1]),
            &json!([7.0, 8.0, 2])
        ]
    );
}

/// A COCO file written on Windows (`train\\cat.jpg`) names files below the images folder with
/// `\\` as separator; two entries of `images` naming one file are one image with the
/// annotations of both (reported); a `file_name` that climbs out of the folder, or names a
/// drive, stops the import before anything is read.
#[test]
fn coco_backslashes_and_file_names_listed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("images/train/cat.jpg"), b"c");
    write(&root.join("images/dog.jpg"), b"d");
    write(&dir.path().join("secret.jpg"), b"s");
    let coco = |images: Value, annotations: Value| {
        let doc = json!({
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        });
        write(&root.join("annotations/instances.json"), doc.to_string());
    };
    coco(
        json!([
            {"id": 3, "file_name": "train\\cat.jpg"},
            {"id": 1, "file_name": "train/cat.jpg"},
            {"id": 2, "file_name": ".\\dog.jpg"},
        ]),
        json!([
            {"image_id": 3, "category_id": 1, "bbox": [3, 3, 3, 3]},
            {"image_id": 1, "category_id": 1, "bbox": [1, 1, 1, 1]},
            {"image_id": 1, "category_id": 2, "bbox": [1, 1, 2, 2]},
            {"image_id": 2, "category_id": 2, "bbox": [2, 2, 2, 2]},
        ]),
    );
    let reader = pictograph_formats::ImportReader::open(Format::Coco, root).unwrap();
    assert_eq!(reader.total(), 2);
    let plan = import(Format::Coco, root).unwrap();
    assert_eq!(
        places(Format::Coco, root),
        owned(&[("/", "dog.jpg"), ("/train", "cat.jpg")])
    );
    let cat = plan.items.iter().find(|i| i.filename == "cat.jpg").unwrap();
    assert!(cat.path.ends_with("images/train/cat.jpg"), "{:?}", cat.path);
    // The annotations of both entries, the lower id's first.
    let xs: Vec<f64> = cat
        .annotations(10, 10)
        .iter()
        .map(|a| a["bounding_box"]["x"].as_f64().unwrap())
        .collect();
    assert_eq!(xs, [1.0, 1.0, 3.0]);
    assert_eq!(codes(&plan.warnings), [("duplicate_file_name_merged", 1)]);

    for bad in [
        "..\\secret.jpg",
        "train/../../secret.jpg",
        "C:\\data\\dog.jpg",
    ] {
        coco(json!([{"id": 1, "file_name": bad}]), json!([]));
        let err = import(Format::Coco, root).unwrap_err();
        assert!(
            err.contains("instances.json") && err.contains("image 1") && err.contains("file_name"),
            "{bad}: {err}"
        );
    }
}
