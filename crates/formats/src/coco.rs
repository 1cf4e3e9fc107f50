//! COCO: one `annotations/instances.json` (`images`, `annotations`, `categories`) and the
//! images under `images/`, `file_name` relative to that folder.
//!
//! Boxes are `bbox` `[x, y, w, h]`; a polygon's outline is its `segmentation` (COCO polygon
//! lists are parts of one object, so holes cannot be held); a keypoint is a COCO keypoint
//! object of one point (`keypoints: [x, y, v]`, `num_keypoints: 1`, a zero-size `bbox`) whose
//! category names that one keypoint. A confidence below 1 is kept as `score`.
//!
//! Keypoint visibility `v` follows COCO: 2 for a visible point, 1 for a point labelled but
//! not visible, which an annotation marks with the attribute `occluded` (`[{"occluded":
//! "true"}]`, as an import of `v = 1` saves it), and 0 for a point not labelled, which is no
//! annotation at all (an import skips it).
//!
//! Reading, a `file_name` is a path below the images folder: `\` counts as `/` (files written
//! on Windows), and one that climbs out of the folder (`..`) or names a drive stops the
//! import. Entries of `images` that name one file are one image: their annotations are
//! merged, and the merge is reported (`duplicate_file_name_merged`).

use crate::shape::Shape;
use crate::{
    note_common_losses, place_plain, readable, Body, Classes, ExportOptions, Finished, ImageInfo,
    Names, OutFile, Placement, Warnings, Writer,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// Where the annotation file goes.
pub const ANNOTATIONS_PATH: &str = "annotations/instances.json";

pub struct CocoWriter {
    /// The output; receives the header and the `images` array as they come.
    main: BufWriter<File>,
    /// The `annotations` array, appended to `main` at the end.
    spool: BufWriter<File>,
    images: u64,
    annotations: u64,
    classes: Classes,
    /// Category indices used by keypoints.
    keypoint_classes: BTreeSet<usize>,
    names: Names,
    warnings: Warnings,
}

impl CocoWriter {
    pub fn new(options: ExportOptions) -> io::Result<CocoWriter> {
        let mut main = BufWriter::new(tempfile::tempfile()?);
        let info = json!({
            "description": options.dataset,
            "version": "1.0",
            "contributor": "pictograph",
        });
        write!(main, "{{\"info\":{info},\"licenses\":[],\"images\":[")?;
        Ok(CocoWriter {
            classes: Classes::new(&options.classes),
            main,
            spool: BufWriter::new(tempfile::tempfile()?),
            images: 0,
            annotations: 0,
            keypoint_classes: BTreeSet::new(),
            names: Names::new(None),
            warnings: Warnings::default(),
        })
    }

    fn push_annotation(&mut self, v: &Value) -> io::Result<()> {
        if self.annotations > 0 {
            self.spool.write_all(b",")?;
        }
        self.annotations += 1;
        serde_json::to_writer(&mut self.spool, v)?;
        Ok(())
    }
}

/// Area of a ring (shoelace formula).
fn ring_area(ring: &[[f64; 2]]) -> f64 {
    let n = ring.len();
    let mut twice = 0.0;
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + 1) % n]);
        twice += a[0] * b[1] - b[0] * a[1];
    }
    twice.abs() / 2.0
}

impl Writer for CocoWriter {
    fn place(&mut self, image: &ImageInfo) -> Placement {
        place_plain(&mut self.names, &mut self.warnings, "images", image)
    }

    fn add(
        &mut self,
        image: &ImageInfo,
        place: &Placement,
        annotations: &[Value],
    ) -> io::Result<Vec<OutFile>> {
        self.images += 1;
        let image_id = self.images;
        if image_id > 1 {
            self.main.write_all(b",")?;
        }
        serde_json::to_writer(
            &mut self.main,
            &json!({
                "id": image_id,
                "file_name": place.rel,
                "width": image.width,
                "height": image.height,
            }),
        )?;
        for raw in annotations {
            let Some(ann) = readable(&mut self.warnings, raw) else {
                continue;
            };
            note_common_losses(&mut self.warnings, &ann, "COCO", true);
            let class = self.classes.id(&ann.name);
            let mut out = json!({
                "id": self.annotations + 1,
                "image_id": image_id,
                "category_id": class + 1,
                "iscrowd": 0,
            });
            let obj = out.as_object_mut().expect("object");
            match &ann.shape {
                Shape::Box([x, y, w, h]) => {
                    obj.insert("bbox".into(), json!([x, y, w, h]));
                    obj.insert("area".into(), json!(w * h));
                    obj.insert("segmentation".into(), json!([]));
                }
                Shape::Polygon(rings) => {
                    if rings.len() > 1 {
                        self.warnings.add(
                            "polygon_holes_dropped",
                            "polygon(s) lost their holes: COCO polygons have no holes",
                        );
                    }
                    let outline = &rings[0];
                    let flat: Vec<f64> = outline.iter().flat_map(|p| [p[0], p[1]]).collect();
                    obj.insert("segmentation".into(), json!([flat]));
                    obj.insert("bbox".into(), json!(ann.shape.bounds()));
                    obj.insert("area".into(), json!(ring_area(outline)));
                }
                Shape::Polyline(_) => {
                    self.warnings.add(
                        "polyline_dropped",
                        "polyline annotation(s) dropped: COCO cannot hold open paths",
                    );
                    continue;
                }
                Shape::Keypoint([x, y]) => {
                    self.keypoint_classes.insert(class);
                    // Visibility: 1 labelled but not visible, 2 visible.
                    let v = if ann.occluded { 1 } else { 2 };
                    obj.insert("keypoints".into(), json!([x, y, v]));
                    obj.insert("num_keypoints".into(), json!(1));
                    obj.insert("bbox".into(), json!([x, y, 0.0, 0.0]));
                    obj.insert("area".into(), json!(0.0));
                    obj.insert("segmentation".into(), json!([]));
                }
            }
            if ann.confidence < 1.0 {
                obj.insert("score".into(), json!(ann.confidence));
            }
            self.push_annotation(&out)?;
        }
        Ok(Vec::new())
    }

    fn finish(self: Box<Self>) -> io::Result<Finished> {
        let CocoWriter {
            mut main,
            spool,
            classes,
            keypoint_classes,
            warnings,
            ..
        } = *self;
        let mut spool = spool.into_inner().map_err(|e| e.into_error())?;
        spool.seek(SeekFrom::Start(0))?;
        main.write_all(b"],\"annotations\":[")?;
        io::copy(&mut spool, &mut main)?;
        main.write_all(b"],\"categories\":")?;
        let categories: Vec<Value> = classes
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut c = json!({"id": i + 1, "name": name, "supercategory": ""});
                if keypoint_classes.contains(&i) {
                    c["keypoints"] = json!([name]);
                    c["skeleton"] = json!([]);
                }
                c
            })
            .collect();
        serde_json::to_writer(&mut main, &categories)?;
        main.write_all(b"}")?;
        let mut file = main.into_inner().map_err(|e| e.into_error())?;
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Finished {
            files: vec![OutFile {
                path: ANNOTATIONS_PATH.into(),
                body: Body::File(file),
            }],
            warnings: warnings.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{canonical, writer, Format};
    use std::io::Read;

    fn image(folder: &str, name: &str) -> ImageInfo {
        ImageInfo {
            folder: folder.into(),
            filename: name.into(),
            width: 100,
            height: 50,
            status: "new".into(),
        }
    }

    #[test]
    fn writes_valid_json_with_every_kind() {
        let mut w = writer(
            Format::Coco,
            ExportOptions {
                dataset: "d".into(),
                classes: vec!["car".into()],
                polygons_as_boxes: false,
            },
        )
        .unwrap();
        let anns = vec![
            canonical("1", "car", &Shape::Box([1.0, 2.0, 3.0, 4.0]), 1.0),
            canonical(
                "2",
                "lane",
                &Shape::Polyline(vec![[0.0, 0.0], [1.0, 1.0]]),
                1.0,
            ),
            canonical("3", "nose", &Shape::Keypoint([5.0, 6.0]), 0.5),
            canonical(
                "4",
                "road",
                &Shape::Polygon(vec![vec![[0.0, 0.0], [4.0, 0.0], [4.0, 3.0]]]),
                1.0,
            ),
        ];
        let x = image("/a/b", "x.png");
        let place = w.place(&x);
        assert_eq!(place.path, "images/a/b/x.png");
        assert!(w.add(&x, &place, &anns).unwrap().is_empty());
        let y = image("/", "y.png");
        let place = w.place(&y);
        w.add(&y, &place, &[]).unwrap();
        let done = w.finish().unwrap();
        assert_eq!(done.files.len(), 1);
        let Body::File(mut f) = done.files.into_iter().next().unwrap().body else {
            panic!("spooled");
        };
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["images"].as_array().unwrap().len(), 2);
        assert_eq!(v["images"][1]["file_name"], "y.png");
        let anns = v["annotations"].as_array().unwrap();
        assert_eq!(anns.len(), 3);
        assert_eq!(anns[0]["bbox"], json!([1.0, 2.0, 3.0, 4.0]));
        assert_eq!(anns[1]["keypoints"], json!([5.0, 6.0, 2]));
        assert_eq!(anns[1]["score"], json!(0.5));
        assert_eq!(anns[2]["area"], json!(6.0));
        let cats: Vec<&str> = v["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(cats, ["car", "lane", "nose", "road"]);
        assert_eq!(v["categories"][2]["keypoints"], json!(["nose"]));
        assert_eq!(done.warnings.len(), 1);
        assert_eq!(done.warnings[0].code, "polyline_dropped");
        assert_eq!(done.warnings[0].count, 1);
    }
}
