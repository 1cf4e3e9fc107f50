//! YOLO in the Ultralytics layout: `data.yaml` (splits and class names),
//! `images/<split>/…` and `labels/<split>/….txt`, one line per object with coordinates
//! normalised to 0..1: `class cx cy w h` for a box (detection), or with keypoints
//! `class cx cy w h px1 py1 v1 … pxK pyK vK` (pose, when `data.yaml` has `kpt_shape`).
//!
//! # Splits and folders
//!
//! The dataset's folders `/train`, `/val` and `/test` are the splits: `/val/cars/a.jpg` →
//! `images/val/cars/a.jpg`. Every other image (the root folder's, `/cars/…`) goes to the
//! `train` split at its own path: `/a.jpg` → `images/train/a.jpg`. A plain Ultralytics reader
//! trains on them all; to read the export back into the same folders, `data.yaml` records,
//! under keys of our own that Ultralytics ignores, the dataset folder each split folder holds:
//!
//! ```yaml
//! pictograph_folders:
//!   train: "/"
//!   val: "/val"
//! ```
//!
//! `images/train` holds the root folder's images (`"/"`) or the folder `/train`'s, whichever
//! has more images there; when it holds both, the files of the other kind are listed too
//! (`pictograph_folder_exceptions`, one `["train/x-2.png", "/train"]` per file, the path
//! below `images/`). An import follows these keys; a folder without them (made by another
//! tool) keeps its split folders as dataset folders: `images/train/a.jpg` → `/train/a.jpg`.
//!
//! # Pose
//!
//! A dataset whose classes name joints, `P/j` next to a class `P` (as a COCO keypoint import
//! names them: `person/nose`), is exported as pose: `P` is a pose class whose joints are its
//! `P/j` classes in class order, `kpt_shape` is `[K, 3]` with K the most joints of a pose
//! class, `kpt_names` lists each pose class's joints, and `names` lists the other classes
//! (a joint class that also boxes something is appended). Every line then carries K points
//! (`0 0 0` for a joint not labelled, and for every point of a class without joints);
//! visibility is 2, or 1 for a keypoint marked `occluded`. A joint goes with the object of
//! its keypoints' `instance_id` (matched to the box of its class that holds most of its
//! points), else with the smallest box of its class that holds it and has that joint free;
//! joints no box holds make objects of their own whose box is derived from their points
//! (`pose_box_derived`). A keypoint of no pose class cannot be held. No `flip_idx` is
//! written (which joints mirror each other is not known), so Ultralytics does not flip.
//!
//! Reading, a line of `4 + K × D` values (`kpt_shape: [K, D]`) is a box and its points: the
//! box is an annotation of the class, each labelled point (visibility above 0 with D = 3; not
//! `0 0` with D = 2) a keypoint `class/joint`, named from `kpt_names` or by its index
//! (`person/0`), occluded at visibility 1. Ultralytics needs a `val` entry: without `val`
//! images it points at the training images.

use crate::{
    boxed, kept_boxes, note_common_losses, num, place_image, readable, strip_extension, Body,
    Classes, ExportOptions, Finished, ImageInfo, Names, OutFile, Placement, Shape, Warnings,
    Writer,
};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

/// The split names the layout knows.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The `data.yaml` key naming the dataset folder each split folder holds.
pub const FOLDERS_KEY: &str = "pictograph_folders";
/// The `data.yaml` key listing the files of `images/train` from the other folder.
pub const EXCEPTIONS_KEY: &str = "pictograph_folder_exceptions";

pub struct YoloWriter {
    options: ExportOptions,
    classes: Classes,
    splits: BTreeSet<&'static str>,
    names: Names,
    warnings: Warnings,
    /// Images of the train split from the root (and other non-split folders), and from the
    /// folder `/train`.
    train_from: [u64; 2],
    /// One line per train image: its origin (`R` or `T`) and its path below `images/`.
    origins: BufWriter<File>,
    pose: Option<Pose>,
}

/// The split of an image and its path below the split folder.
pub fn split_of(rel: &str) -> (&'static str, &str) {
    if let Some((first, rest)) = rel.split_once('/') {
        if let Some(split) = SPLITS.iter().find(|s| **s == first) {
            return (split, rest);
        }
    }
    ("train", rel)
}

/// Clips a box to the image; `None` when nothing is left.
fn clip(b: [f64; 4], width: f64, height: f64) -> Option<[f64; 4]> {
    let x0 = b[0].max(0.0);
    let y0 = b[1].max(0.0);
    let x1 = (b[0] + b[2]).min(width);
    let y1 = (b[1] + b[3]).min(height);
    (x1 > x0 && y1 > y0).then_some([x0, y0, x1 - x0, y1 - y0])
}

/// The keypoint layout of a pose export, from the dataset's classes.
#[derive(Debug)]
struct Pose {
    /// Joint class → its pose class and slot.
    joints: HashMap<String, (String, usize)>,
    /// Pose classes in class order, each with its joint names (the part after `P/`).
    parents: Vec<(String, Vec<String>)>,
    /// Points per line.
    k: usize,
}

impl Pose {
    /// The layout the classes declare: a class `P/j` whose prefix `P` is a class too is a
    /// joint of `P` (of the longest such prefix that is no joint itself); `None` without
    /// joints.
    fn from_classes(classes: &[String]) -> Option<Pose> {
        let set: HashSet<&str> = classes.iter().map(String::as_str).collect();
        let prefixes = |c: &'_ str| -> Vec<usize> {
            c.match_indices('/')
                .map(|(i, _)| i)
                .filter(|&i| i > 0 && i + 1 < c.len() && set.contains(&c[..i]))
                .collect()
        };
        let is_joint: HashSet<&str> = classes
            .iter()
            .map(String::as_str)
            .filter(|c| !prefixes(c).is_empty())
            .collect();
        let mut parents: Vec<(String, Vec<String>)> = Vec::new();
        let mut joints = HashMap::new();
        for c in classes {
            let Some(&cut) = prefixes(c)
                .iter()
                .rev()
                .find(|&&i| !is_joint.contains(&c[..i]))
            else {
                continue;
            };
            let parent = &c[..cut];
            let at = match parents.iter().position(|(p, _)| p == parent) {
                Some(at) => at,
                None => {
                    parents.push((parent.to_string(), Vec::new()));
                    parents.len() - 1
                }
            };
            let slots = &mut parents[at].1;
            if joints.contains_key(c) {
                continue;
            }
            joints.insert(c.clone(), (parent.to_string(), slots.len()));
            slots.push(c[cut + 1..].to_string());
        }
        // Pose classes in the order the dataset lists them.
        let order: HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        parents.sort_by_key(|(p, _)| order.get(p.as_str()).copied().unwrap_or(usize::MAX));
        let k = parents.iter().map(|(_, j)| j.len()).max()?;
        Some(Pose { joints, parents, k })
    }

    fn is_parent(&self, name: &str) -> bool {
        self.parents.iter().any(|(p, _)| p == name)
    }
}

/// One line of a pose export: a class, its box (`None`: derived from its points) and its
/// points (each with whether it is occluded).
struct Object {
    class: usize,
    /// The pose class it can take joints of.
    parent: Option<String>,
    bbox: Option<[f64; 4]>,
    points: Vec<Option<([f64; 2], bool)>>,
    /// Taken by a group of keypoints sharing an `instance_id`.
    claimed: bool,
}

/// A joint keypoint waiting for its object.
struct Joint {
    parent: String,
    slot: usize,
    point: [f64; 2],
    occluded: bool,
    instance: Option<i64>,
}

fn inside(b: &[f64; 4], p: [f64; 2]) -> bool {
    p[0] >= b[0] && p[0] <= b[0] + b[2] && p[1] >= b[1] && p[1] <= b[1] + b[3]
}

impl YoloWriter {
    pub fn new(options: ExportOptions) -> io::Result<YoloWriter> {
        let pose = Pose::from_classes(&options.classes);
        let objects: Vec<String> = options
            .classes
            .iter()
            .filter(|c| pose.as_ref().is_none_or(|p| !p.joints.contains_key(*c)))
            .cloned()
            .collect();
        Ok(YoloWriter {
            classes: Classes::new(&objects),
            options,
            splits: BTreeSet::new(),
            names: Names::new(Some("txt")),
            warnings: Warnings::default(),
            train_from: [0, 0],
            origins: BufWriter::new(tempfile::tempfile()?),
            pose,
        })
    }

    /// The label lines of one image in the detection layout.
    fn detection_lines(&mut self, annotations: &[Value], w: f64, h: f64) -> String {
        let mut text = String::new();
        for (ann, b) in kept_boxes(
            &mut self.warnings,
            annotations,
            self.options.polygons_as_boxes,
            ("YOLO detection labels", "YOLO"),
        ) {
            let Some(c) = self.clipped(b, w, h) else {
                continue;
            };
            let class = self.classes.id(&ann.name);
            text.push_str(&format!("{class} {}\n", box_text(c, w, h)));
        }
        text
    }

    /// The box clipped to the image (counted when changed); `None` (counted) when outside.
    fn clipped(&mut self, b: [f64; 4], w: f64, h: f64) -> Option<[f64; 4]> {
        let Some(c) = clip(b, w, h) else {
            self.warnings.add(
                "outside_image_dropped",
                "box(es) dropped: entirely outside their image",
            );
            return None;
        };
        if c != b {
            self.warnings.add(
                "box_clipped",
                "box(es) clipped to their image: YOLO coordinates must lie in 0..1",
            );
        }
        Some(c)
    }

    /// The label lines of one image in the pose layout.
    fn pose_lines(&mut self, annotations: &[Value], w: f64, h: f64) -> String {
        let Some(pose) = self.pose.take() else {
            return String::new();
        };
        let k = pose.k;
        let mut objects: Vec<Object> = Vec::new();
        let mut joints: Vec<Joint> = Vec::new();
        for raw in annotations {
            let Some(ann) = readable(&mut self.warnings, raw) else {
                continue;
            };
            if let Shape::Keypoint(point) = ann.shape {
                let Some((parent, slot)) = pose.joints.get(&ann.name) else {
                    self.warnings.add(
                        "keypoint_dropped",
                        "keypoint annotation(s) dropped: YOLO pose labels hold only the \
                         joints of a pose class (classes `P/joint` beside a class `P`)",
                    );
                    continue;
                };
                note_common_losses(&mut self.warnings, &ann, "YOLO", false);
                joints.push(Joint {
                    parent: parent.clone(),
                    slot: *slot,
                    point,
                    occluded: ann.occluded,
                    instance: raw.get("instance_id").and_then(Value::as_i64),
                });
                continue;
            }
            let Some(b) = boxed(
                &mut self.warnings,
                &ann,
                self.options.polygons_as_boxes,
                ("YOLO pose labels", "YOLO"),
            ) else {
                continue;
            };
            objects.push(Object {
                class: self.classes.id(&ann.name),
                parent: pose.is_parent(&ann.name).then(|| ann.name.clone()),
                bbox: Some(b),
                points: vec![None; k],
                claimed: false,
            });
        }
        let area = |o: &Object| o.bbox.map_or(f64::INFINITY, |b| b[2] * b[3]);
        // Keypoints of one instance go together, to the box of their class holding most.
        let mut groups: Vec<((String, i64), Vec<usize>)> = Vec::new();
        let mut loose: Vec<usize> = Vec::new();
        for (i, j) in joints.iter().enumerate() {
            match j.instance {
                Some(id) => {
                    let key = (j.parent.clone(), id);
                    match groups.iter_mut().find(|(g, _)| *g == key) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((key, vec![i])),
                    }
                }
                None => loose.push(i),
            }
        }
        for ((parent, _), members) in groups {
            let best = objects
                .iter()
                .enumerate()
                .filter(|(_, o)| !o.claimed && o.parent.as_deref() == Some(parent.as_str()))
                .filter_map(|(at, o)| {
                    let b = o.bbox?;
                    let held = members
                        .iter()
                        .filter(|&&m| inside(&b, joints[m].point))
                        .count();
                    (held > 0).then_some((at, held, area(o)))
                })
                .max_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)));
            let at = match best {
                Some((at, ..)) => at,
                None => {
                    objects.push(Object {
                        class: self.classes.id(&parent),
                        parent: Some(parent.clone()),
                        bbox: None,
                        points: vec![None; k],
                        claimed: false,
                    });
                    objects.len() - 1
                }
            };
            objects[at].claimed = true;
            for m in members {
                let j = &joints[m];
                if objects[at].points[j.slot].is_none() {
                    objects[at].points[j.slot] = Some((j.point, j.occluded));
                } else {
                    loose.push(m);
                }
            }
        }
        // Other joints: the smallest box of their class that holds them, with that joint free.
        let mut homeless: Vec<usize> = Vec::new();
        for m in loose {
            let j = &joints[m];
            let best = objects
                .iter()
                .enumerate()
                .filter(|(_, o)| {
                    !o.claimed
                        && o.parent.as_deref() == Some(j.parent.as_str())
                        && o.points[j.slot].is_none()
                        && o.bbox.is_some_and(|b| inside(&b, j.point))
                })
                .min_by(|a, b| area(a.1).total_cmp(&area(b.1)))
                .map(|(at, _)| at);
            match best {
                Some(at) => objects[at].points[j.slot] = Some((j.point, j.occluded)),
                None => homeless.push(m),
            }
        }
        // Joints no box holds: objects of their own, a joint at most once each.
        let first_derived = objects.len();
        for m in homeless {
            let j = &joints[m];
            let free = (first_derived..objects.len()).find(|&at| {
                objects[at].parent.as_deref() == Some(j.parent.as_str())
                    && objects[at].points[j.slot].is_none()
            });
            let at = match free {
                Some(at) => at,
                None => {
                    objects.push(Object {
                        class: self.classes.id(&j.parent),
                        parent: Some(j.parent.clone()),
                        bbox: None,
                        points: vec![None; k],
                        claimed: false,
                    });
                    objects.len() - 1
                }
            };
            objects[at].points[j.slot] = Some((j.point, j.occluded));
        }
        let mut text = String::new();
        for o in objects {
            let b = match o.bbox {
                Some(b) => b,
                None => {
                    self.warnings.add(
                        "pose_box_derived",
                        "pose object(s) written with a box around their keypoints: no box of \
                         their class held them",
                    );
                    let [x, y, bw, bh] =
                        Shape::Polyline(o.points.iter().flatten().map(|(p, _)| *p).collect())
                            .bounds();
                    [x, y, bw.max(1.0), bh.max(1.0)]
                }
            };
            let Some(c) = self.clipped(b, w, h) else {
                let lost = o.points.iter().flatten().count() as u64;
                if lost > 0 {
                    self.warnings.add_n(
                        "keypoint_outside_image_dropped",
                        lost,
                        "keypoint(s) dropped: outside their image",
                    );
                }
                continue;
            };
            text.push_str(&format!("{} {}", o.class, box_text(c, w, h)));
            for point in &o.points {
                match point {
                    Some(([x, y], occluded)) if (0.0..=w).contains(x) && (0.0..=h).contains(y) => {
                        let v = if *occluded { 1 } else { 2 };
                        text.push_str(&format!(" {} {} {v}", num(x / w), num(y / h)));
                    }
                    Some(_) => {
                        self.warnings.add(
                            "keypoint_outside_image_dropped",
                            "keypoint(s) dropped: outside their image",
                        );
                        text.push_str(" 0 0 0");
                    }
                    None => text.push_str(" 0 0 0"),
                }
            }
            text.push('\n');
        }
        self.pose = Some(pose);
        text
    }
}

/// `cx cy w h` of a box in pixels, normalised.
fn box_text(c: [f64; 4], w: f64, h: f64) -> String {
    format!(
        "{} {} {} {}",
        num((c[0] + c[2] / 2.0) / w),
        num((c[1] + c[3] / 2.0) / h),
        num(c[2] / w),
        num(c[3] / h),
    )
}

impl Writer for YoloWriter {
    fn place(&mut self, image: &ImageInfo) -> Placement {
        let (mut folders, filename) = image.levels();
        let split = match folders.first() {
            Some(first) => SPLITS.iter().find(|s| **s == first.as_str()).copied(),
            None => None,
        };
        if split.is_some() {
            folders.remove(0);
        }
        let split = split.unwrap_or("train");
        place_image(
            &mut self.names,
            &mut self.warnings,
            &format!("images/{split}"),
            &format!("{split}/"),
            &folders,
            image,
            &filename,
        )
    }

    fn add(
        &mut self,
        image: &ImageInfo,
        place: &Placement,
        annotations: &[Value],
    ) -> io::Result<Vec<OutFile>> {
        let (split, _) = split_of(&place.rel);
        self.splits.insert(split);
        if split == "train" {
            let from_train = image.levels().0.first().is_some_and(|f| f == "train");
            self.train_from[usize::from(from_train)] += 1;
            let tag = if from_train { "T" } else { "R" };
            writeln!(self.origins, "{tag}{}", serde_json::to_string(&place.rel)?)?;
        }
        let label_path = format!("labels/{}.txt", strip_extension(&place.rel));
        let (w, h) = (image.width as f64, image.height as f64);
        if (w <= 0.0 || h <= 0.0) && !annotations.is_empty() {
            self.warnings.add_n(
                "unknown_size_skipped",
                annotations.len() as u64,
                "annotation(s) skipped: their image's size is unknown, so they cannot be normalised",
            );
            return Ok(vec![OutFile::bytes(label_path, String::new())]);
        }
        let text = if self.pose.is_some() {
            self.pose_lines(annotations, w, h)
        } else {
            self.detection_lines(annotations, w, h)
        };
        Ok(vec![OutFile::bytes(label_path, text)])
    }

    fn finish(self: Box<Self>) -> io::Result<Finished> {
        let val = if self.splits.contains("val") {
            "images/val"
        } else {
            "images/train"
        };
        let mut yaml = String::new();
        let layout = if self.pose.is_some() {
            "pose"
        } else {
            "detection"
        };
        yaml.push_str(&format!(
            "# {} exported by pictograph (Ultralytics YOLO {layout} layout)\n",
            serde_json::to_string(&self.options.dataset)?
        ));
        yaml.push_str(&format!("train: images/train\nval: {val}\n"));
        if self.splits.contains("test") {
            yaml.push_str("test: images/test\n");
        }
        yaml.push_str(&format!("nc: {}\nnames:\n", self.classes.names.len()));
        for (i, name) in self.classes.names.iter().enumerate() {
            // A JSON string is a valid YAML double-quoted scalar.
            yaml.push_str(&format!("  {i}: {}\n", serde_json::to_string(name)?));
        }
        if let Some(pose) = &self.pose {
            yaml.push_str(&format!("kpt_shape: [{}, 3]\nkpt_names:\n", pose.k));
            for (parent, joints) in &pose.parents {
                let Some(i) = self.classes.index.get(parent) else {
                    continue;
                };
                yaml.push_str(&format!("  {i}:\n"));
                for j in joints {
                    yaml.push_str(&format!("    - {}\n", serde_json::to_string(j)?));
                }
            }
        }
        // Which dataset folder each split folder holds (see the module docs).
        let [from_root, from_train] = self.train_from;
        let train_prefix = if from_train > from_root {
            "/train"
        } else {
            "/"
        };
        if !self.splits.is_empty() {
            yaml.push_str(&format!(
                "# The dataset folder each split folder holds, for pictograph imports \
                 (Ultralytics ignores these keys)\n{FOLDERS_KEY}:\n"
            ));
            for split in SPLITS.iter().filter(|s| self.splits.contains(*s)) {
                let prefix = match *split {
                    "train" => train_prefix,
                    "val" => "/val",
                    _ => "/test",
                };
                yaml.push_str(&format!("  {split}: {}\n", serde_json::to_string(prefix)?));
            }
        }
        let mut files = Vec::new();
        if from_root > 0 && from_train > 0 {
            // `images/train` holds both: the files of the other folder are listed.
            let (tag, prefix) = if train_prefix == "/" {
                ("T", "/train")
            } else {
                ("R", "/")
            };
            let mut out = BufWriter::new(tempfile::tempfile()?);
            out.write_all(yaml.as_bytes())?;
            writeln!(out, "{EXCEPTIONS_KEY}:")?;
            let mut origins = self.origins.into_inner().map_err(|e| e.into_error())?;
            origins.seek(SeekFrom::Start(0))?;
            for line in BufReader::new(origins).lines() {
                let line = line?;
                if let Some(rel) = line.strip_prefix(tag) {
                    writeln!(out, "  - [{rel}, {}]", serde_json::to_string(prefix)?)?;
                }
            }
            let mut file = out.into_inner().map_err(|e| e.into_error())?;
            file.flush()?;
            file.seek(SeekFrom::Start(0))?;
            files.push(OutFile {
                path: "data.yaml".into(),
                body: Body::File(file),
            });
        } else {
            files.push(OutFile::bytes("data.yaml", yaml));
        }
        Ok(Finished {
            files,
            warnings: self.warnings.to_vec(),
        })
    }
}

/// Class names from a `data.yaml`: the `names` key as a block mapping (`0: car`), a block
/// list (`- car`), or a flow list (`[car, bus]`) or mapping (`{0: car}`), which may run over
/// several lines. Only what that key needs is parsed.
pub fn parse_names(yaml: &str) -> Result<Vec<String>, String> {
    let yaml = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
    let lines: Vec<&str> = yaml.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_end().starts_with("names:"))
    else {
        return Err("data.yaml has no `names`".into());
    };
    let inline = lines[start]["names:".len()..].trim();
    if inline.starts_with('[') || inline.starts_with('{') {
        let mut text = inline.to_string();
        let mut next = start + 1;
        let items = loop {
            match flow_items(&text)? {
                Some(items) => break items,
                None if next < lines.len() => {
                    text.push('\n');
                    text.push_str(lines[next]);
                    next += 1;
                }
                None => return Err(format!("`names: {inline}` is not closed")),
            }
        };
        if inline.starts_with('[') {
            return Ok(items
                .iter()
                .map(|s| scalar(s))
                .filter(|s| !s.is_empty())
                .collect());
        }
        let mut by_index = Vec::new();
        for item in items {
            let (k, v) =
                split_key(&item).ok_or_else(|| format!("cannot read `{item}` in names"))?;
            let k: usize = k
                .trim()
                .parse()
                .map_err(|_| format!("cannot read class index in `{item}`"))?;
            by_index.push((k, scalar(v)));
        }
        return in_order(by_index);
    }
    if !inline.is_empty() && !inline.starts_with('#') {
        return Err(format!("cannot read `names: {inline}`"));
    }
    let mut by_index: Vec<(usize, String)> = Vec::new();
    for line in &lines[start + 1..] {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('\t') && !line.starts_with('-') {
            break;
        }
        let item = line.trim();
        if let Some(v) = item.strip_prefix('-') {
            by_index.push((by_index.len(), scalar(v)));
        } else if let Some((k, v)) = split_key(item) {
            let k: usize = k
                .trim()
                .parse()
                .map_err(|_| format!("cannot read class index in `{item}`"))?;
            by_index.push((k, scalar(v)));
        }
    }
    in_order(by_index)
}

/// The names of `(index, name)` pairs in index order; the indices must be 0, 1, 2, …
fn in_order(mut by_index: Vec<(usize, String)>) -> Result<Vec<String>, String> {
    by_index.sort_by_key(|(k, _)| *k);
    for (i, (k, _)) in by_index.iter().enumerate() {
        if *k != i {
            return Err(format!("class indices in data.yaml skip {i}"));
        }
    }
    Ok(by_index.into_iter().map(|(_, v)| v).collect())
}

/// `key: value` split at its first `:` (a key is a class index, never quoted).
fn split_key(item: &str) -> Option<(&str, &str)> {
    item.split_once(':')
}

/// The items of a flow collection (`[a, 'b, c']`, `{0: a}`) as raw text, split at the commas
/// outside quotes; `None` while its closing bracket has not come yet. A `#` comment after it
/// (or at the end of a line inside it) is skipped.
fn flow_items(text: &str) -> Result<Option<Vec<String>>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' if depth == 1 => {
                current.push(c);
                // Copies the quoted scalar whole ('' and \" stay inside it).
                loop {
                    let Some(q) = chars.next() else {
                        return Ok(None);
                    };
                    current.push(q);
                    if c == '"' && q == '\\' {
                        if let Some(e) = chars.next() {
                            current.push(e);
                        }
                    } else if q == c {
                        if c == '\'' && chars.peek() == Some(&'\'') {
                            current.push(chars.next().unwrap_or('\''));
                        } else {
                            break;
                        }
                    }
                }
            }
            '#' if prev.is_whitespace() => {
                // A comment: the rest of the line.
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '[' | '{' if depth == 0 => depth = 1,
            '[' | '{' => return Err(format!("cannot read nested lists in `names: {text}`")),
            ']' | '}' if depth == 1 => {
                if !current.trim().is_empty() {
                    items.push(current.trim().to_string());
                }
                return Ok(Some(items));
            }
            ',' if depth == 1 => {
                items.push(current.trim().to_string());
                current.clear();
            }
            c if depth == 1 => current.push(c),
            _ => {}
        }
        prev = c;
    }
    Ok(None)
}

/// A YAML scalar: unquoted, single- or double-quoted (JSON escapes).
fn scalar(raw: &str) -> String {
    let s = raw.trim();
    if s.starts_with('"') {
        if let Ok(v) = serde_json::from_str::<String>(s) {
            return v;
        }
    }
    if let Some(inner) = s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    match s.find(" #") {
        Some(i) => s[..i].trim().to_string(),
        None => s.to_string(),
    }
}

/// The top-level key `key` of a YAML document: the text after `key:` on its line, and the
/// lines of its block below (indented, or list items), blank and comment lines left out.
fn top_level<'a>(yaml: &'a str, key: &str) -> Option<(&'a str, Vec<&'a str>)> {
    let yaml = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines.iter().position(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_end().starts_with(':'))
    })?;
    let inline = lines[start][key.len()..].trim_start()[1..].trim();
    let mut block = Vec::new();
    for line in &lines[start + 1..] {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('\t') && !line.starts_with('-') {
            break;
        }
        block.push(*line);
    }
    Some((inline, block))
}

/// A flow collection that starts on the line of its key (`inline`) and may run over the
/// lines below.
fn flow(key: &str, inline: &str, block: &[&str]) -> Result<Vec<String>, String> {
    let mut text = inline.to_string();
    let mut next = 0;
    loop {
        match flow_items(&text)? {
            Some(items) => return Ok(items),
            None if next < block.len() => {
                text.push('\n');
                text.push_str(block[next]);
                next += 1;
            }
            None => return Err(format!("`{key}: {inline}` in data.yaml is not closed")),
        }
    }
}

/// `kpt_shape: [K, D]` of a pose `data.yaml` (K points per object, D = 2 for `x y` or 3 for
/// `x y visibility`); `None` for a detection one.
pub fn parse_kpt_shape(yaml: &str) -> Result<Option<(usize, usize)>, String> {
    let Some((inline, block)) = top_level(yaml, "kpt_shape") else {
        return Ok(None);
    };
    let items: Vec<String> = if inline.starts_with('[') {
        flow("kpt_shape", inline, &block)?
    } else if inline.is_empty() || inline.starts_with('#') {
        block
            .iter()
            .filter_map(|l| l.trim().strip_prefix('-'))
            .map(str::to_string)
            .collect()
    } else {
        return Err(format!("cannot read `kpt_shape: {inline}` in data.yaml"));
    };
    let numbers: Option<Vec<usize>> = items.iter().map(|i| scalar(i).parse().ok()).collect();
    match numbers.as_deref() {
        Some(&[k, d]) if k >= 1 && (d == 2 || d == 3) => Ok(Some((k, d))),
        _ => Err(format!(
            "kpt_shape in data.yaml must be [K, 2] or [K, 3] with K at least 1, not {items:?}"
        )),
    }
}

/// `kpt_names` of a pose `data.yaml`: each class index's joint names, in point order
/// (`0:` followed by a block list `- nose`, or a flow list `0: [nose, eye]`).
pub fn parse_kpt_names(yaml: &str) -> Result<HashMap<usize, Vec<String>>, String> {
    let mut out: HashMap<usize, Vec<String>> = HashMap::new();
    let Some((inline, block)) = top_level(yaml, "kpt_names") else {
        return Ok(out);
    };
    if !inline.is_empty() && !inline.starts_with('#') {
        return Err(format!("cannot read `kpt_names: {inline}` in data.yaml"));
    }
    let mut current = None;
    let mut i = 0;
    while i < block.len() {
        let item = block[i].trim();
        i += 1;
        if let Some(v) = item.strip_prefix('-') {
            let c = current.ok_or("kpt_names in data.yaml lists a name before its class index")?;
            out.entry(c).or_default().push(scalar(v));
            continue;
        }
        let Some((k, v)) = split_key(item) else {
            continue;
        };
        let c: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("cannot read class index `{k}` in kpt_names of data.yaml"))?;
        current = Some(c);
        let v = v.trim();
        if v.starts_with('[') {
            let items = flow("kpt_names", v, &block[i..])?;
            out.insert(c, items.iter().map(|s| scalar(s)).collect());
        } else if !v.is_empty() && !v.starts_with('#') {
            return Err(format!("cannot read `{item}` in kpt_names of data.yaml"));
        }
    }
    Ok(out)
}

/// How an export of ours maps its split folders back to dataset folders (see the module
/// docs); empty for a folder made by another tool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folders {
    /// Split folder (`train`) → dataset folder (`/` or `/train`).
    pub splits: HashMap<String, String>,
    /// Files below `images/` (`train/x-2.png`) → the dataset folder of their split folder.
    pub exceptions: HashMap<String, String>,
}

impl Folders {
    /// The dataset folder and file name of the image `rel` (its path below `images/`).
    pub fn place(&self, rel: &str) -> (String, String) {
        if let Some((first, rest)) = rel.split_once('/') {
            let prefix = self.exceptions.get(rel).or_else(|| self.splits.get(first));
            if let Some(prefix) = prefix {
                let (dir, name) = match rest.rsplit_once('/') {
                    Some((dir, name)) => (dir, name),
                    None => ("", rest),
                };
                let mut folder = prefix.trim_end_matches('/').to_string();
                if !dir.is_empty() {
                    folder.push('/');
                    folder.push_str(dir);
                }
                if folder.is_empty() {
                    folder.push('/');
                }
                return (folder, name.to_string());
            }
        }
        match rel.rsplit_once('/') {
            Some((dir, name)) => (format!("/{dir}"), name.to_string()),
            None => ("/".to_string(), rel.to_string()),
        }
    }
}

/// The [`FOLDERS_KEY`] and [`EXCEPTIONS_KEY`] of a `data.yaml`.
pub fn parse_folders(yaml: &str) -> Result<Folders, String> {
    let mut out = Folders::default();
    if let Some((_, block)) = top_level(yaml, FOLDERS_KEY) {
        for line in block {
            if let Some((k, v)) = split_key(line.trim()) {
                let folder = scalar(v);
                if !folder.starts_with('/') {
                    return Err(format!(
                        "{FOLDERS_KEY} in data.yaml: {folder:?} is not a folder (`/…`)"
                    ));
                }
                out.splits.insert(k.trim().to_string(), folder);
            }
        }
    }
    if let Some((_, block)) = top_level(yaml, EXCEPTIONS_KEY) {
        for line in block {
            let Some(item) = line.trim().strip_prefix('-') else {
                continue;
            };
            let (file, folder): (String, String) = serde_json::from_str(item.trim())
                .map_err(|e| format!("{EXCEPTIONS_KEY} in data.yaml: `{}`: {e}", item.trim()))?;
            if !folder.starts_with('/') {
                return Err(format!(
                    "{EXCEPTIONS_KEY} in data.yaml: {folder:?} is not a folder (`/…`)"
                ));
            }
            out.exceptions.insert(file, folder);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;
    use crate::{canonical, writer, Body, Format};

    #[test]
    fn labels_are_normalised_and_losses_reported() {
        let mut w = writer(Format::Yolo, ExportOptions::default()).unwrap();
        let img = ImageInfo {
            folder: "/val/cars".into(),
            filename: "a.jpg".into(),
            width: 200,
            height: 100,
            status: "new".into(),
        };
        let place = w.place(&img);
        assert_eq!(place.path, "images/val/cars/a.jpg");
        let anns = vec![
            canonical("1", "car", &Shape::Box([50.0, 25.0, 100.0, 50.0]), 1.0),
            canonical("2", "car", &Shape::Box([150.0, 50.0, 100.0, 100.0]), 1.0),
            canonical(
                "3",
                "lane",
                &Shape::Polyline(vec![[0.0, 0.0], [1.0, 1.0]]),
                1.0,
            ),
            canonical("4", "nose", &Shape::Keypoint([1.0, 1.0]), 1.0),
            canonical("5", "nose", &Shape::Keypoint([2.0, 1.0]), 1.0),
        ];
        let files = w.add(&img, &place, &anns).unwrap();
        assert_eq!(files[0].path, "labels/val/cars/a.txt");
        let Body::Bytes(b) = &files[0].body else {
            panic!()
        };
        assert_eq!(
            String::from_utf8(b.clone()).unwrap(),
            "0 0.5 0.5 0.5 0.5\n0 0.875 0.75 0.25 0.5\n"
        );
        let done = w.finish().unwrap();
        let codes: Vec<(&str, u64)> = done
            .warnings
            .iter()
            .map(|w| (w.code.as_str(), w.count))
            .collect();
        assert_eq!(
            codes,
            [
                ("box_clipped", 1),
                ("keypoint_dropped", 2),
                ("polyline_dropped", 1)
            ]
        );
        let Body::Bytes(yaml) = &done.files[0].body else {
            panic!()
        };
        let yaml = String::from_utf8(yaml.clone()).unwrap();
        assert!(yaml.contains("val: images/val\n"), "{yaml}");
        assert_eq!(parse_names(&yaml).unwrap(), ["car"]);
    }

    #[test]
    fn names_in_every_yaml_shape() {
        assert_eq!(
            parse_names("names: [a, 'b c', \"d\"]\n").unwrap(),
            ["a", "b c", "d"]
        );
        assert_eq!(
            parse_names("path: x\nnames:\n  - a\n  - b # c\nnc: 2\n").unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            parse_names("names:\n  1: b\n  0: \"a\"\ntrain: t\n").unwrap(),
            ["a", "b"]
        );
        assert!(parse_names("names:\n  0: a\n  2: c\n").is_err());
        assert!(parse_names("nc: 1\n").is_err());
    }

    #[test]
    fn splits() {
        assert_eq!(split_of("train/a.jpg"), ("train", "a.jpg"));
        assert_eq!(split_of("cars/a.jpg"), ("train", "cars/a.jpg"));
        assert_eq!(split_of("test/x/a.jpg"), ("test", "x/a.jpg"));
        assert_eq!(split_of("a.jpg"), ("train", "a.jpg"));
    }
}
