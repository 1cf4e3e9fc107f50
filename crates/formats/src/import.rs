//! Reading a folder in one of the formats: the images it holds (with the virtual folder each
//! belongs in) and their annotations.
//!
//! [`ImportReader`] reads a chunk of images at a time, so memory holds one chunk and its
//! annotations, never the whole folder: YOLO, VOC and pictograph folders are walked (and
//! their label files read) as the chunks are asked for; a COCO file, whose annotations are
//! not grouped by image, is first split by image into bucket files on disk, each small
//! enough to read whole. [`import`] reads everything at once, for small folders and tests.

use crate::shape::Shape;
use crate::{canonical, strip_extension, voc, yolo, Format, Warning, Warnings};
use pictograph_core::hashes::{hash_of, HashSet64};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, ReadDir};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// One imported annotation, before it is made canonical.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// Class name.
    pub name: String,
    /// Geometry, in pixels or normalised to 0..1 (see [`Labels`]).
    pub shape: Shape,
    /// 0 to 1.
    pub confidence: f64,
    /// A keypoint labelled but not visible (COCO or YOLO pose visibility 1): saved with the
    /// `occluded` attribute, which the writers turn back into visibility 1.
    pub occluded: bool,
}

impl Label {
    /// A visible label.
    pub fn new(name: impl Into<String>, shape: Shape, confidence: f64) -> Label {
        Label {
            name: name.into(),
            shape,
            confidence,
            occluded: false,
        }
    }

    /// The same label, marked occluded (or not).
    pub fn occluded(mut self, occluded: bool) -> Label {
        self.occluded = occluded;
        self
    }
}

/// The annotations of one imported image.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Canonical annotations, kept as they are (the pictograph format).
    Canonical(Vec<Value>),
    /// Geometry in pixels.
    Absolute(Vec<Label>),
    /// Geometry normalised to 0..1 (YOLO; the image size turns it to pixels).
    Normalized(Vec<Label>),
}

/// One image to import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    /// The local file.
    pub path: PathBuf,
    /// Virtual folder to put it in: `/` or `/a/b`.
    pub folder: String,
    /// File name.
    pub filename: String,
    /// Status to set, when the format records one.
    pub status: Option<String>,
    /// Its annotations.
    pub labels: Labels,
}

impl ImportItem {
    /// The canonical annotations to save for this image, given its size in pixels (only
    /// normalised labels need it). Ids are `ann-1`, `ann-2`, … in file order, so importing the
    /// same folder twice saves the same list.
    pub fn annotations(&self, width: u32, height: u32) -> Vec<Value> {
        let (w, h) = (width as f64, height as f64);
        let scale = |p: &[f64; 2]| [p[0] * w, p[1] * h];
        let made = |i: usize, label: &Label, shape: &Shape| {
            let mut v = canonical(
                &format!("ann-{}", i + 1),
                &label.name,
                shape,
                label.confidence,
            );
            if label.occluded {
                v["attributes"] = crate::shape::occluded_attributes();
            }
            v
        };
        match &self.labels {
            Labels::Canonical(list) => list.clone(),
            Labels::Absolute(list) => list
                .iter()
                .enumerate()
                .map(|(i, label)| made(i, label, &label.shape))
                .collect(),
            Labels::Normalized(list) => list
                .iter()
                .enumerate()
                .map(|(i, label)| {
                    let abs = match &label.shape {
                        Shape::Box([x, y, bw, bh]) => Shape::Box([x * w, y * h, bw * w, bh * h]),
                        Shape::Polygon(rings) => Shape::Polygon(
                            rings
                                .iter()
                                .map(|r| r.iter().map(scale).collect())
                                .collect(),
                        ),
                        Shape::Polyline(p) => Shape::Polyline(p.iter().map(scale).collect()),
                        Shape::Keypoint(p) => Shape::Keypoint(scale(p)),
                    };
                    made(i, label, &abs)
                })
                .collect(),
        }
    }

    /// How many annotations it has.
    pub fn len(&self) -> usize {
        match &self.labels {
            Labels::Canonical(l) => l.len(),
            Labels::Absolute(l) | Labels::Normalized(l) => l.len(),
        }
    }

    /// True without annotations.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class names its annotations use, in order of first use.
    pub fn class_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.labels {
            Labels::Canonical(list) => {
                for a in list {
                    if let Some(name) = a.get("name").and_then(Value::as_str) {
                        add_class(&mut out, name);
                    }
                }
            }
            Labels::Absolute(list) | Labels::Normalized(list) => list
                .iter()
                .for_each(|label| add_class(&mut out, &label.name)),
        }
        out
    }
}

/// What a folder holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPlan {
    /// The format read.
    pub format: Format,
    /// Class names the folder declares (and any more it uses), in order.
    pub classes: Vec<String>,
    /// The images, sorted by folder and name.
    pub items: Vec<ImportItem>,
    /// What could not be read or held.
    pub warnings: Vec<Warning>,
}

const IMAGE_EXTENSIONS: [&str; 10] = [
    "jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif", "heic", "heif",
];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files under a folder, as `/`-separated paths relative to it, in the order the
/// file system lists them. Holds one open directory per level, never a list of files.
struct Walk {
    root: PathBuf,
    stack: Vec<(PathBuf, ReadDir)>,
    keep: fn(&Path) -> bool,
}

impl Walk {
    /// Walks `root`; a folder that does not exist holds nothing (the image folder of an
    /// export of an empty dataset).
    fn new(root: &Path) -> Result<Walk, String> {
        Walk::files(root, is_image)
    }

    /// Walks the files under `root` that `keep` accepts.
    fn files(root: &Path, keep: fn(&Path) -> bool) -> Result<Walk, String> {
        if !root.exists() {
            return Ok(Walk {
                root: root.to_path_buf(),
                stack: Vec::new(),
                keep,
            });
        }
        let dir =
            std::fs::read_dir(root).map_err(|e| format!("reading {}: {e}", root.display()))?;
        Ok(Walk {
            root: root.to_path_buf(),
            stack: vec![(PathBuf::new(), dir)],
            keep,
        })
    }

    fn next(&mut self) -> Result<Option<String>, String> {
        while let Some((rel, dir)) = self.stack.last_mut() {
            let Some(entry) = dir.next() else {
                self.stack.pop();
                continue;
            };
            let shown = self.root.join(&*rel);
            let entry = entry.map_err(|e| format!("reading {}: {e}", shown.display()))?;
            let child = rel.join(entry.file_name());
            let path = entry.path();
            if path.is_dir() {
                let sub = std::fs::read_dir(&path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                self.stack.push((child, sub));
            } else if path.is_file() && (self.keep)(&child) {
                let parts: Vec<String> = child
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                return Ok(Some(parts.join("/")));
            }
        }
        Ok(None)
    }
}

/// How many label files (`extension`) under `folder` belong to no image: the images using
/// `used` of them were found. A label file whose image is missing is reported, not dropped
/// silently.
fn orphans(
    folder: &Path,
    keep: fn(&Path) -> bool,
    used: usize,
    code: &'static str,
    what: &str,
) -> Result<Warnings, String> {
    let mut warnings = Warnings::default();
    let mut files = Walk::files(folder, keep)?;
    let mut n: usize = 0;
    while files.next()?.is_some() {
        n += 1;
    }
    let missing = n.saturating_sub(used);
    if missing > 0 {
        warnings.add_n(
            code,
            missing as u64,
            format!("{what} skipped: no image file of that name"),
        );
    }
    Ok(warnings)
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// True when no image file lies anywhere under `root`: an export of an empty dataset, whose
/// image folder was never made, and not a folder in another layout.
fn holds_no_image(root: &Path) -> Result<bool, String> {
    Ok(Walk::new(root)?.next()?.is_none())
}

/// `a/b/x.jpg` → (`/a/b`, `x.jpg`).
fn split_rel(rel: &str) -> (String, String) {
    match rel.rsplit_once('/') {
        Some((dir, name)) => (format!("/{dir}"), name.to_string()),
        None => ("/".to_string(), rel.to_string()),
    }
}

fn add_class(classes: &mut Vec<String>, name: &str) {
    if !classes.iter().any(|c| c == name) {
        classes.push(name.to_string());
    }
}

/// A folder in one of the formats, read a chunk of images at a time.
///
/// Opening it checks the whole folder (a malformed VOC file or pictograph line, an unreadable
/// COCO file is an error then, before anything is imported) without keeping what it read.
pub struct ImportReader {
    format: Format,
    classes: Vec<String>,
    total: usize,
    warnings: Warnings,
    source: Source,
}

enum Source {
    Yolo {
        root: PathBuf,
        images: PathBuf,
        layout: Box<YoloLayout>,
        walk: Walk,
    },
    Voc {
        root: PathBuf,
        images: PathBuf,
        walk: Walk,
    },
    Coco(Box<CocoBuckets>),
    Native {
        root: PathBuf,
        lines: std::io::Lines<BufReader<File>>,
        line: usize,
    },
}

impl std::fmt::Debug for ImportReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportReader")
            .field("format", &self.format)
            .field("classes", &self.classes)
            .field("total", &self.total)
            .finish()
    }
}

impl ImportReader {
    /// Opens the folder (or, for COCO, also a JSON file) `root` in `format`.
    pub fn open(format: Format, root: &Path) -> Result<ImportReader, String> {
        if !root.exists() {
            return Err(format!("{} does not exist", root.display()));
        }
        // An export of ours that did not finish is not read as if it were complete (for a
        // COCO file, its folder and the one above, `annotations/`'s parent, are checked).
        let mut dirs = vec![root];
        if root.is_file() {
            let parent = root.parent().filter(|p| !p.as_os_str().is_empty());
            dirs.extend(parent);
            dirs.extend(
                parent
                    .and_then(Path::parent)
                    .filter(|p| !p.as_os_str().is_empty()),
            );
        }
        for dir in dirs {
            if let Some(why) = crate::output::unfinished(dir) {
                return Err(why);
            }
        }
        match format {
            Format::Coco => open_coco(root),
            Format::Yolo => open_yolo(root),
            Format::Voc => open_voc(root),
            Format::Pictograph => open_native(root),
        }
    }

    /// The format read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The classes the folder declares (`data.yaml`, COCO categories, VOC object names,
    /// `dataset.json`), in order. Annotations may use more (COCO keypoints, pictograph
    /// annotations): [`ImportItem::class_names`] tells which.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// How many images the folder lists (some may turn out missing and be skipped).
    pub fn total(&self) -> usize {
        self.total
    }

    /// What could not be read or held, in the chunks read so far.
    pub fn warnings(&self) -> Vec<Warning> {
        self.warnings.to_vec()
    }

    /// The next images, at most `max` (at least one); `None` once every image was read.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<ImportItem>>, String> {
        let max = max.max(1);
        let mut out = Vec::new();
        while out.len() < max {
            let item = match &mut self.source {
                Source::Yolo {
                    root,
                    images,
                    layout,
                    walk,
                } => match walk.next()? {
                    Some(rel) => Some(yolo_item(root, images, layout, &rel, &mut self.warnings)),
                    None => None,
                },
                Source::Voc { root, images, walk } => match walk.next()? {
                    Some(rel) => Some(voc_item(root, images, &rel, &mut self.warnings)?),
                    None => None,
                },
                Source::Coco(buckets) => buckets.next(&mut self.warnings)?,
                Source::Native { root, lines, line } => {
                    native_next(root, lines, line, &mut self.warnings)?
                }
            };
            match item {
                Some(item) => out.push(item),
                None => break,
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }
}

/// Reads the folder (or, for COCO, also a JSON file) `root` in `format`, all at once.
pub fn import(format: Format, root: &Path) -> Result<ImportPlan, String> {
    let mut reader = ImportReader::open(format, root)?;
    let mut classes = reader.classes().to_vec();
    let mut items = Vec::new();
    while let Some(chunk) = reader.next_chunk(1000)? {
        for item in &chunk {
            for name in item.class_names() {
                add_class(&mut classes, &name);
            }
        }
        items.extend(chunk);
    }
    items.sort_by(|a, b| (&a.folder, &a.filename).cmp(&(&b.folder, &b.filename)));
    Ok(ImportPlan {
        format,
        classes,
        items,
        warnings: reader.warnings(),
    })
}

fn open_yolo(root: &Path) -> Result<ImportReader, String> {
    let yaml_path = ["data.yaml", "data.yml", "dataset.yaml"]
        .iter()
        .map(|n| root.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no data.yaml in {}", root.display()))?;
    let yaml = std::fs::read_to_string(&yaml_path)
        .map_err(|e| format!("reading {}: {e}", yaml_path.display()))?;
    let layout = YoloLayout {
        classes: yolo::parse_names(&yaml)?,
        folders: yolo::parse_folders(&yaml)?,
        pose: yolo::parse_kpt_shape(&yaml)?,
        kpt_names: yolo::parse_kpt_names(&yaml)?,
    };
    let images = root.join("images");
    if !images.is_dir() && !holds_no_image(root)? {
        return Err(format!("no images/ folder in {}", root.display()));
    }
    let (mut total, mut labelled) = (0, 0);
    let mut count = Walk::new(&images)?;
    while let Some(rel) = count.next()? {
        total += 1;
        labelled += usize::from(yolo_label_path(root, &rel).is_file());
    }
    let warnings = orphans(
        &root.join("labels"),
        |p| has_extension(p, "txt"),
        labelled,
        "label_without_image",
        "label file(s) under labels/",
    )?;
    Ok(ImportReader {
        format: Format::Yolo,
        classes: layout.declared(),
        total,
        warnings,
        source: Source::Yolo {
            root: root.to_path_buf(),
            walk: Walk::new(&images)?,
            images,
            layout: Box::new(layout),
        },
    })
}

/// The label file of the image `rel` (relative to `images/`).
fn yolo_label_path(root: &Path, rel: &str) -> PathBuf {
    root.join("labels")
        .join(format!("{}.txt", strip_extension(rel)))
}

/// What `data.yaml` tells about reading a YOLO folder.
struct YoloLayout {
    classes: Vec<String>,
    folders: yolo::Folders,
    /// `kpt_shape`: points per object and values per point.
    pose: Option<(usize, usize)>,
    /// Joint names by class index.
    kpt_names: HashMap<usize, Vec<String>>,
}

impl YoloLayout {
    /// The keypoint class of point `j` of an object of class `class`: `person/nose`, or
    /// `person/0` without `kpt_names`.
    fn joint(&self, class: usize, j: usize) -> String {
        let parent = &self.classes[class];
        match self.kpt_names.get(&class).and_then(|n| n.get(j)) {
            Some(name) => format!("{parent}/{name}"),
            None => format!("{parent}/{j}"),
        }
    }

    /// The classes the folder declares: `names`, then with `kpt_shape` the joints of the
    /// classes `kpt_names` names them for (of every class without `kpt_names`).
    fn declared(&self) -> Vec<String> {
        let mut out = self.classes.clone();
        if let Some((k, _)) = self.pose {
            for c in 0..self.classes.len() {
                if !self.kpt_names.is_empty() && !self.kpt_names.contains_key(&c) {
                    continue;
                }
                for j in 0..k {
                    add_class(&mut out, &self.joint(c, j));
                }
            }
        }
        out
    }
}

fn yolo_item(
    root: &Path,
    images: &Path,
    layout: &YoloLayout,
    rel: &str,
    warnings: &mut Warnings,
) -> ImportItem {
    let label = yolo_label_path(root, rel);
    let mut labels = Vec::new();
    if let Ok(text) = std::fs::read_to_string(&label) {
        for line in text.lines() {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            if tokens.is_empty() {
                continue;
            }
            let class = tokens[0]
                .parse::<usize>()
                .ok()
                .filter(|i| *i < layout.classes.len());
            let values: Option<Vec<f64>> = tokens[1..]
                .iter()
                .map(|t| t.parse::<f64>().ok().filter(|v| v.is_finite()))
                .collect();
            let (Some(class), Some(values)) = (class, values) else {
                warnings.add(
                    "unreadable_label",
                    "label line(s) skipped: not `class cx cy w h [conf]`, a polygon or a pose \
                     line, with a known class",
                );
                continue;
            };
            let name = &layout.classes[class];
            let box_of = |v: &[f64]| Shape::Box([v[0] - v[2] / 2.0, v[1] - v[3] / 2.0, v[2], v[3]]);
            match (values.len(), layout.pose) {
                (n, Some((k, d))) if n == 4 + k * d => {
                    labels.push(Label::new(name, box_of(&values), 1.0));
                    for (j, p) in values[4..].chunks(d).enumerate() {
                        // Visibility 0 (or, without it, a point at 0 0): not labelled.
                        let visibility = if d == 3 { p[2] } else { 2.0 };
                        if visibility <= 0.0 || (d == 2 && p[0] == 0.0 && p[1] == 0.0) {
                            continue;
                        }
                        let point =
                            Label::new(layout.joint(class, j), Shape::Keypoint([p[0], p[1]]), 1.0);
                        labels.push(point.occluded(visibility == 1.0));
                    }
                }
                (4, _) => labels.push(Label::new(name, box_of(&values), 1.0)),
                // A prediction: the box and its confidence.
                (5, _) if (0.0..=1.0).contains(&values[4]) => {
                    labels.push(Label::new(name, box_of(&values), values[4]))
                }
                (n, _) if n >= 6 && n % 2 == 0 => labels.push(Label::new(
                    name,
                    Shape::Polygon(vec![values.chunks(2).map(|c| [c[0], c[1]]).collect()]),
                    1.0,
                )),
                _ => warnings.add(
                    "unreadable_label",
                    "label line(s) skipped: not `class cx cy w h [conf]`, a polygon or a pose \
                     line, with a known class",
                ),
            }
        }
    }
    let (folder, filename) = layout.folders.place(rel);
    ImportItem {
        path: images.join(rel),
        folder,
        filename,
        status: None,
        labels: Labels::Normalized(labels),
    }
}

fn open_voc(root: &Path) -> Result<ImportReader, String> {
    let images = root.join("JPEGImages");
    if !images.is_dir() && !holds_no_image(root)? {
        return Err(format!("no JPEGImages/ folder in {}", root.display()));
    }
    // Every XML file is parsed once up front, so a malformed one stops the import before
    // anything is uploaded; only the class names are kept.
    let (mut total, mut classes, mut annotated) = (0, Vec::new(), 0);
    let mut check = Walk::new(&images)?;
    let mut ignored = Warnings::default();
    while let Some(rel) = check.next()? {
        total += 1;
        annotated += usize::from(voc_xml_path(root, &rel).is_file());
        for name in voc_item(root, &images, &rel, &mut ignored)?.class_names() {
            add_class(&mut classes, &name);
        }
    }
    let warnings = orphans(
        &root.join("Annotations"),
        |p| has_extension(p, "xml"),
        annotated,
        "annotation_without_image",
        "annotation file(s) under Annotations/",
    )?;
    Ok(ImportReader {
        format: Format::Voc,
        classes,
        total,
        warnings,
        source: Source::Voc {
            root: root.to_path_buf(),
            walk: Walk::new(&images)?,
            images,
        },
    })
}

/// The annotation file of the image `rel` (relative to `JPEGImages/`).
fn voc_xml_path(root: &Path, rel: &str) -> PathBuf {
    root.join("Annotations")
        .join(format!("{}.xml", strip_extension(rel)))
}

fn voc_item(
    root: &Path,
    images: &Path,
    rel: &str,
    warnings: &mut Warnings,
) -> Result<ImportItem, String> {
    let xml_path = voc_xml_path(root, rel);
    let mut labels = Vec::new();
    if xml_path.is_file() {
        let xml = std::fs::read_to_string(&xml_path)
            .map_err(|e| format!("reading {}: {e}", xml_path.display()))?;
        let doc = voc::parse(&xml).map_err(|e| format!("{}: {e}", xml_path.display()))?;
        for ((code, flag), n) in [
            "difficult_flag_dropped",
            "truncated_flag_dropped",
            "occluded_flag_dropped",
        ]
        .into_iter()
        .zip(voc::FLAGS)
        .zip(doc.flagged)
        {
            if n > 0 {
                warnings.add_n(
                    code,
                    n,
                    format!("object(s) marked {flag} imported without that flag: annotations have no place for it"),
                );
            }
        }
        for (name, b) in doc.objects {
            if b[2] <= 0.0 || b[3] <= 0.0 {
                warnings.add(
                    "empty_box_skipped",
                    "object(s) skipped: xmax/ymax before xmin/ymin",
                );
                continue;
            }
            labels.push(Label::new(name, Shape::Box(b), 1.0));
        }
    }
    let (folder, filename) = split_rel(rel);
    Ok(ImportItem {
        path: images.join(rel),
        folder,
        filename,
        status: None,
        labels: Labels::Absolute(labels),
    })
}

#[derive(Deserialize, Serialize)]
struct CocoImage {
    id: Value,
    file_name: String,
}

#[derive(Deserialize, Serialize)]
struct CocoAnnotation {
    image_id: Value,
    category_id: Value,
    #[serde(default)]
    bbox: Option<Vec<f64>>,
    #[serde(default)]
    segmentation: Option<Value>,
    #[serde(default)]
    keypoints: Option<Vec<f64>>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iscrowd: Option<Value>,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: Value,
    name: String,
    #[serde(default)]
    keypoints: Vec<String>,
}

/// The COCO JSON file and the folder its `file_name`s are relative to.
fn coco_paths(root: &Path) -> Result<(PathBuf, PathBuf), String> {
    if root.is_file() {
        let dir = root.parent().unwrap_or(Path::new("."));
        let base = if dir.file_name().is_some_and(|n| n == "annotations") {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        let images = base.join("images");
        return Ok((
            root.to_path_buf(),
            if images.is_dir() {
                images
            } else {
                base.to_path_buf()
            },
        ));
    }
    let preferred = root.join("annotations").join("instances.json");
    let json = if preferred.is_file() {
        preferred
    } else {
        let mut found = Vec::new();
        for dir in [root.join("annotations"), root.to_path_buf()] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.path().extension().is_some_and(|x| x == "json") {
                        found.push(e.path());
                    }
                }
            }
            if !found.is_empty() {
                break;
            }
        }
        match found.len() {
            1 => found.remove(0),
            0 => return Err(format!("no COCO JSON file in {}", root.display())),
            _ => {
                return Err(format!(
                    "several JSON files in {}: pass the one to import",
                    root.display()
                ))
            }
        }
    };
    let images = root.join("images");
    Ok((
        json,
        if images.is_dir() {
            images
        } else {
            root.to_path_buf()
        },
    ))
}

/// Bytes of COCO JSON per bucket: a bucket is read whole when its turn comes.
const COCO_BUCKET_BYTES: u64 = 1 << 20;

/// At most this many bucket files are open while splitting.
const COCO_MAX_BUCKETS: u64 = 512;

/// One line of a bucket file: an image or an annotation of the images of that bucket.
#[derive(Deserialize, Serialize)]
enum CocoRecord {
    #[serde(rename = "i")]
    Image(CocoImage),
    #[serde(rename = "a")]
    Annotation(CocoAnnotation),
}

/// A COCO file split by image into bucket files; the images of one bucket at a time are
/// turned into items.
struct CocoBuckets {
    images_dir: PathBuf,
    categories: HashMap<String, CocoCategory>,
    dir: tempfile::TempDir,
    buckets: usize,
    next_bucket: usize,
    ready: VecDeque<ImportItem>,
    /// Hashes of the `file_name`s that more than one image lists.
    shared: HashSet64,
    /// The images of those names, by name: merged into one item each once every bucket was
    /// read (memory holds only these).
    deferred: BTreeMap<String, Vec<(Value, ImportItem)>>,
}

/// A COCO `file_name` as a path below the images folder: `\` is read as `/` (files written on
/// Windows: `train\\cat.jpg`), `.` and empty segments are dropped and a leading `/` is
/// ignored. A path that climbs out of the folder (`..`) or names a drive (`C:`) is refused.
fn coco_rel(name: &str) -> Result<String, String> {
    let unified = name.replace('\\', "/");
    let mut parts = Vec::new();
    for (i, part) in unified.split('/').enumerate() {
        let drive = i == 0
            && part.len() == 2
            && part.ends_with(':')
            && part.as_bytes()[0].is_ascii_alphabetic();
        match part {
            "" | "." => {}
            ".." => return Err("it climbs out of the images folder (`..`)".into()),
            _ if drive => return Err("it names a drive".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("it names no file".into());
    }
    Ok(parts.join("/"))
}

fn bucket_of(id: &Value, buckets: usize) -> usize {
    (hash_of(&id_key(id)) % buckets as u64) as usize
}

/// Streams the top-level COCO object: images and annotations go to `sink` one at a time,
/// categories are kept, anything else is skipped.
struct CocoStream<'a> {
    sink: &'a mut dyn FnMut(CocoRecord) -> std::io::Result<()>,
    categories: &'a mut Vec<CocoCategory>,
}

impl<'de> DeserializeSeed<'de> for CocoStream<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CocoStream<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a COCO object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "images" => map.next_value_seed(Each {
                    sink: &mut *self.sink,
                    wrap: CocoRecord::Image,
                    _t: std::marker::PhantomData,
                })?,
                "annotations" => map.next_value_seed(Each {
                    sink: &mut *self.sink,
                    wrap: CocoRecord::Annotation,
                    _t: std::marker::PhantomData,
                })?,
                "categories" => *self.categories = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A JSON array whose elements go to a sink one at a time.
struct Each<'a, T, W: Fn(T) -> CocoRecord> {
    sink: &'a mut dyn FnMut(CocoRecord) -> std::io::Result<()>,
    wrap: W,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>, W: Fn(T) -> CocoRecord> DeserializeSeed<'de> for Each<'_, T, W> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, W: Fn(T) -> CocoRecord> Visitor<'de> for Each<'_, T, W> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(x) = seq.next_element::<T>()? {
            (self.sink)((self.wrap)(x)).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

fn open_coco(root: &Path) -> Result<ImportReader, String> {
    open_coco_in(root, COCO_BUCKET_BYTES)
}

fn open_coco_in(root: &Path, bucket_bytes: u64) -> Result<ImportReader, String> {
    let (json_path, images_dir) = coco_paths(root)?;
    let file =
        File::open(&json_path).map_err(|e| format!("reading {}: {e}", json_path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let buckets = (size / bucket_bytes.max(1)).clamp(1, COCO_MAX_BUCKETS) as usize;
    let dir = tempfile::tempdir().map_err(|e| format!("making a temporary folder: {e}"))?;
    let mut outs = (0..buckets)
        .map(|b| File::create(dir.path().join(b.to_string())).map(BufWriter::new))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("writing a temporary file: {e}"))?;
    let mut total = 0;
    let mut categories = Vec::new();
    // One hash per image name, to find names listed twice; the names themselves stay in the
    // bucket files.
    let (mut seen, mut shared, mut merged) = (HashSet64::default(), HashSet64::default(), 0u64);
    let mut refused: Option<String> = None;
    let mut sink = |record: CocoRecord| -> std::io::Result<()> {
        let record = match record {
            CocoRecord::Image(mut i) => {
                i.file_name = coco_rel(&i.file_name).map_err(|why| {
                    let msg = format!(
                        "image {}: file_name {:?} is not a path inside the images folder: {why}",
                        id_key(&i.id),
                        i.file_name
                    );
                    refused = Some(msg.clone());
                    std::io::Error::other(msg)
                })?;
                total += 1;
                let h = hash_of(&i.file_name);
                if !seen.insert(h) {
                    shared.insert(h);
                    merged += 1;
                }
                CocoRecord::Image(i)
            }
            a => a,
        };
        let id = match &record {
            CocoRecord::Image(i) => &i.id,
            CocoRecord::Annotation(a) => &a.image_id,
        };
        let out = &mut outs[bucket_of(id, buckets)];
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")
    };
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(file));
    let parsed = CocoStream {
        sink: &mut sink,
        categories: &mut categories,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Some(msg) = refused {
        return Err(format!("{}: {msg}", json_path.display()));
    }
    parsed.map_err(|e| format!("{}: not a COCO file: {e}", json_path.display()))?;
    drop(seen);
    for out in &mut outs {
        out.flush()
            .map_err(|e| format!("writing a temporary file: {e}"))?;
    }
    drop(outs);
    categories.sort_by(|a, b| cmp_ids(&a.id, &b.id));
    let mut classes = Vec::new();
    for c in &categories {
        add_class(&mut classes, &c.name);
    }
    let categories = categories.into_iter().map(|c| (id_key(&c.id), c)).collect();
    let mut warnings = Warnings::default();
    if merged > 0 {
        warnings.add_n(
            "duplicate_file_name_merged",
            merged,
            "image entr(ies) of the COCO file name a file an earlier entry names too: merged \
             into that one image, their annotations all kept",
        );
    }
    Ok(ImportReader {
        format: Format::Coco,
        classes,
        total: total - merged as usize,
        warnings,
        source: Source::Coco(Box::new(CocoBuckets {
            images_dir,
            categories,
            dir,
            buckets,
            next_bucket: 0,
            ready: VecDeque::new(),
            shared,
            deferred: BTreeMap::new(),
        })),
    })
}

impl CocoBuckets {
    fn next(&mut self, warnings: &mut Warnings) -> Result<Option<ImportItem>, String> {
        while self.ready.is_empty() && self.next_bucket < self.buckets {
            let path = self.dir.path().join(self.next_bucket.to_string());
            self.next_bucket += 1;
            let file = File::open(&path).map_err(|e| format!("reading a temporary file: {e}"))?;
            let (mut images, mut annotations) = (Vec::new(), Vec::new());
            for line in BufReader::new(file).lines() {
                let line = line.map_err(|e| format!("reading a temporary file: {e}"))?;
                match serde_json::from_str(&line).map_err(|e| e.to_string())? {
                    CocoRecord::Image(i) => images.push(i),
                    CocoRecord::Annotation(a) => annotations.push(a),
                }
            }
            let _ = std::fs::remove_file(&path);
            let items = coco_items(
                &self.images_dir,
                &self.categories,
                images,
                &annotations,
                warnings,
            );
            let mut items: Vec<ImportItem> = items
                .into_iter()
                .filter_map(|(id, rel, item)| {
                    if self.shared.contains(hash_of(&rel)) {
                        self.deferred.entry(rel).or_default().push((id, item));
                        None
                    } else {
                        Some(item)
                    }
                })
                .collect();
            items.sort_by(|a, b| (&a.folder, &a.filename).cmp(&(&b.folder, &b.filename)));
            self.ready.extend(items);
            if self.next_bucket == self.buckets {
                // Every entry of a shared name was read: one image each, with the annotations
                // of all its entries in id order.
                for (_, mut entries) in std::mem::take(&mut self.deferred) {
                    entries.sort_by(|a, b| cmp_ids(&a.0, &b.0));
                    let mut entries = entries.into_iter().map(|(_, item)| item);
                    let Some(mut first) = entries.next() else {
                        continue;
                    };
                    for other in entries {
                        if let (Labels::Absolute(all), Labels::Absolute(more)) =
                            (&mut first.labels, other.labels)
                        {
                            all.extend(more);
                        }
                    }
                    self.ready.push_back(first);
                }
            }
        }
        Ok(self.ready.pop_front())
    }
}

/// The items of some of a COCO file's images, given all the annotations of those images.
fn coco_items(
    images_dir: &Path,
    by_id: &HashMap<String, CocoCategory>,
    images: Vec<CocoImage>,
    annotations: &[CocoAnnotation],
    warnings: &mut Warnings,
) -> Vec<(Value, String, ImportItem)> {
    let mut per_image: HashMap<String, Vec<Label>> = HashMap::new();
    for a in annotations {
        let Some(cat) = by_id.get(&id_key(&a.category_id)) else {
            warnings.add(
                "unknown_category",
                "annotation(s) skipped: their category_id is not in categories",
            );
            continue;
        };
        let confidence = a.score.unwrap_or(1.0).clamp(0.0, 1.0);
        let list = per_image.entry(id_key(&a.image_id)).or_default();
        let bbox = a
            .bbox
            .as_ref()
            .filter(|b| b.len() == 4 && b[2] > 0.0 && b[3] > 0.0)
            .map(|b| [b[0], b[1], b[2], b[3]]);
        if a.iscrowd
            .as_ref()
            .is_some_and(|c| c.as_f64() == Some(1.0) || *c == true)
        {
            warnings.add(
                "crowd_flag_dropped",
                "crowd annotation(s) (iscrowd 1) imported as single objects: the flag has no place",
            );
        }
        // Whether the object's outline (a polygon, or a mask's box) is already in the list;
        // keypoints come with it, not instead of it (COCO's person_keypoints files).
        let mut outlined = false;
        match &a.segmentation {
            Some(Value::Array(parts)) if !parts.is_empty() => {
                if parts.len() > 1 {
                    warnings.add(
                        "multipart_polygon_split",
                        "multi-part COCO polygon(s) split into one polygon annotation per part",
                    );
                }
                for part in parts {
                    let flat: Option<Vec<f64>> = part
                        .as_array()
                        .map(|p| p.iter().filter_map(Value::as_f64).collect());
                    match flat {
                        Some(f) if f.len() >= 6 && f.len() % 2 == 0 => {
                            let ring = f.chunks(2).map(|c| [c[0], c[1]]).collect();
                            list.push(Label::new(
                                &cat.name,
                                Shape::Polygon(vec![ring]),
                                confidence,
                            ));
                            outlined = true;
                        }
                        _ => warnings.add(
                            "unreadable_polygon",
                            "polygon part(s) skipped: fewer than 3 points",
                        ),
                    }
                }
            }
            Some(Value::Object(_)) => {
                warnings.add(
                    "rle_as_box",
                    "RLE mask(s) imported as their boxes: masks cannot be held",
                );
            }
            _ => {}
        }
        if !outlined {
            if let Some(b) = bbox {
                list.push(Label::new(&cat.name, Shape::Box(b), confidence));
                outlined = true;
            }
        }
        let mut points = 0;
        for (i, t) in a
            .keypoints
            .as_deref()
            .unwrap_or_default()
            .chunks(3)
            .enumerate()
        {
            // Visibility 0: not labelled (no point); 1: labelled but not visible (kept as
            // occluded); 2: labelled and visible.
            if t.len() == 3 && t[2] > 0.0 {
                let name = match cat.keypoints.get(i) {
                    Some(k) if cat.keypoints.len() > 1 || k != &cat.name => {
                        format!("{}/{k}", cat.name)
                    }
                    _ => cat.name.clone(),
                };
                let point = Label::new(name, Shape::Keypoint([t[0], t[1]]), confidence);
                list.push(point.occluded(t[2] == 1.0));
                points += 1;
            }
        }
        if !outlined && points == 0 {
            warnings.add(
                "empty_annotation_skipped",
                "annotation(s) skipped: no segmentation, keypoints or positive-size bbox",
            );
        }
    }
    let mut items = Vec::new();
    for img in images {
        // Made a plain relative path when the file was split ([`coco_rel`]).
        let rel = img.file_name;
        let path = images_dir.join(&rel);
        let labels = per_image.remove(&id_key(&img.id)).unwrap_or_default();
        if !path.is_file() {
            warnings.add(
                "missing_image_file",
                "image(s) listed in the COCO file skipped: their file is missing",
            );
            continue;
        }
        let (folder, filename) = split_rel(&rel);
        let item = ImportItem {
            path,
            folder,
            filename,
            status: None,
            labels: Labels::Absolute(labels),
        };
        items.push((img.id, rel, item));
    }
    let orphans: usize = per_image.values().map(Vec::len).sum();
    if orphans > 0 {
        warnings.add_n(
            "unknown_image",
            orphans as u64,
            "annotation(s) skipped: their image_id is not in images",
        );
    }
    items
}

/// The key an id is matched by: integers exactly (however large: ids beyond 2^53 must not
/// meet through a rounded `f64`), and `1.0` as `1`.
fn id_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.to_string()
            } else if let Some(i) = n.as_i64() {
                i.to_string()
            } else {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map_or_else(|| n.to_string(), |f| format!("{f:.0}"))
            }
        }
        other => other.to_string(),
    }
}

fn cmp_ids(a: &Value, b: &Value) -> std::cmp::Ordering {
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => id_key(a).cmp(&id_key(b)),
    }
}

fn native_lines(root: &Path) -> Result<std::io::Lines<BufReader<File>>, String> {
    let file = File::open(root.join(crate::native::LINES_PATH))
        .map_err(|e| format!("reading annotations.jsonl: {e}"))?;
    Ok(BufReader::new(file).lines())
}

fn open_native(root: &Path) -> Result<ImportReader, String> {
    let dataset: Value = std::fs::read(root.join(crate::native::DATASET_PATH))
        .map_err(|e| format!("reading dataset.json: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("dataset.json: {e}")))?;
    let classes: Vec<String> = dataset
        .get("classes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // Every line is checked once up front, so a malformed one stops the import before
    // anything is uploaded.
    let (mut lines, mut line, mut total) = (native_lines(root)?, 0, 0);
    let mut ignored = Warnings::default();
    while native_next(root, &mut lines, &mut line, &mut ignored)?.is_some() {
        total += 1;
    }
    Ok(ImportReader {
        format: Format::Pictograph,
        classes,
        total,
        warnings: Warnings::default(),
        source: Source::Native {
            root: root.to_path_buf(),
            lines: native_lines(root)?,
            line: 0,
        },
    })
}

/// The next image of `annotations.jsonl` whose file is there.
fn native_next(
    root: &Path,
    lines: &mut std::io::Lines<BufReader<File>>,
    n: &mut usize,
    warnings: &mut Warnings,
) -> Result<Option<ImportItem>, String> {
    for line in lines.by_ref() {
        *n += 1;
        let line = line.map_err(|e| format!("reading annotations.jsonl: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("annotations.jsonl line {n}: {e}"))?;
        let (Some(file), Some(folder), Some(filename)) = (
            v.get("file").and_then(Value::as_str),
            v.get("folder").and_then(Value::as_str),
            v.get("filename").and_then(Value::as_str),
        ) else {
            return Err(format!(
                "annotations.jsonl line {n}: needs file, folder and filename"
            ));
        };
        // Only a path inside `images/`: a manifest never reaches files elsewhere.
        let inside = !file.is_empty()
            && Path::new(file)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err(format!(
                "annotations.jsonl line {n}: file {file:?} is not a path inside images/ \
                 (no `..`, not absolute)"
            ));
        }
        let path = root.join("images").join(file);
        if !path.is_file() {
            warnings.add(
                "missing_image_file",
                "image(s) listed in annotations.jsonl skipped: their file is missing",
            );
            continue;
        }
        let list: Vec<Value> = v
            .get("annotations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        return Ok(Some(ImportItem {
            path,
            folder: folder.to_string(),
            filename: filename.to_string(),
            status: v.get("status").and_then(Value::as_str).map(String::from),
            labels: Labels::Canonical(list),
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_labels_scale_to_pixels() {
        let item = ImportItem {
            path: PathBuf::from("a.jpg"),
            folder: "/".into(),
            filename: "a.jpg".into(),
            status: None,
            labels: Labels::Normalized(vec![Label::new(
                "car",
                Shape::Box([0.25, 0.25, 0.5, 0.5]),
                1.0,
            )]),
        };
        let anns = item.annotations(200, 100);
        assert_eq!(anns[0]["id"], "ann-1");
        assert_eq!(
            anns[0]["bounding_box"],
            serde_json::json!({"x": 50.0, "y": 25.0, "w": 100.0, "h": 50.0})
        );
    }

    #[test]
    fn coco_import_reports_what_it_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images/sub")).unwrap();
        std::fs::write(dir.path().join("images/sub/a.png"), b"not read here").unwrap();
        let doc = serde_json::json!({
            "images": [
                {"id": 7, "file_name": "sub/a.png", "width": 10, "height": 10},
                {"id": 8, "file_name": "gone.png", "width": 10, "height": 10},
            ],
            "annotations": [
                {"image_id": 7, "category_id": 1, "segmentation": [[0, 0, 4, 0, 4, 4], [5, 5, 9, 5, 9, 9]]},
                {"image_id": 7, "category_id": 2, "segmentation": {"size": [10, 10], "counts": "x"}, "bbox": [1, 1, 2, 2]},
                {"image_id": 7, "category_id": 3, "bbox": [1, 1, 2, 2]},
                {"image_id": 7, "category_id": 2, "keypoints": [1, 2, 2, 0, 0, 0, 3, 4, 1], "bbox": [0, 0, 5, 5]},
                {"image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]},
            ],
            "categories": [
                {"id": 2, "name": "person", "keypoints": ["nose", "eye", "ear"]},
                {"id": 1, "name": "blob"},
            ],
        });
        std::fs::write(dir.path().join("coco.json"), doc.to_string()).unwrap();
        let plan = import(Format::Coco, dir.path()).unwrap();
        assert_eq!(
            plan.classes,
            ["blob", "person", "person/nose", "person/ear"]
        );
        assert_eq!(plan.items.len(), 1);
        let item = &plan.items[0];
        assert_eq!(
            (item.folder.as_str(), item.filename.as_str()),
            ("/sub", "a.png")
        );
        let kinds: Vec<(String, String)> = item
            .annotations(10, 10)
            .iter()
            .map(|a| {
                (
                    a["type"].as_str().unwrap().into(),
                    a["name"].as_str().unwrap().into(),
                )
            })
            .collect();
        let kinds: Vec<(&str, &str)> = kinds
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("polygon", "blob"),
                ("polygon", "blob"),
                ("bbox", "person"),
                ("bbox", "person"),
                ("keypoint", "person/nose"),
                ("keypoint", "person/ear"),
            ]
        );
        let codes: Vec<(&str, u64)> = plan
            .warnings
            .iter()
            .map(|w| (w.code.as_str(), w.count))
            .collect();
        assert_eq!(
            codes,
            [
                ("missing_image_file", 1),
                ("multipart_polygon_split", 1),
                ("rle_as_box", 1),
                ("unknown_category", 1),
                ("unknown_image", 1),
            ]
        );
    }

    /// A COCO file of `n` images (every third one's file missing), annotations first.
    fn big_coco(dir: &Path, n: usize) -> Value {
        std::fs::create_dir_all(dir.join("images/deep")).unwrap();
        let mut images = Vec::new();
        let mut annotations = Vec::new();
        for i in 0..n {
            let rel = format!("deep/{i:03}.png");
            if i % 3 != 0 {
                std::fs::write(dir.join("images").join(&rel), b"x").unwrap();
            }
            images.push(serde_json::json!({"id": i, "file_name": rel}));
            for k in 0..(i % 4) {
                annotations.push(serde_json::json!({
                    "image_id": i, "category_id": 1 + k % 2, "bbox": [k, i, 2, 3]}));
            }
        }
        annotations
            .push(serde_json::json!({"image_id": 9999, "category_id": 1, "bbox": [0, 0, 1, 1]}));
        // Annotations before images and categories last: key order is not to be relied on.
        let doc = serde_json::json!({
            "info": {"year": 2026},
            "annotations": annotations,
            "images": images,
            "categories": [{"id": 2, "name": "b"}, {"id": 1, "name": "a"}],
        });
        std::fs::write(dir.join("coco.json"), doc.to_string()).unwrap();
        doc
    }

    #[test]
    fn coco_split_into_buckets_reads_as_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        big_coco(dir.path(), 60);
        let whole = import(Format::Coco, dir.path()).unwrap();
        assert_eq!(whole.items.len(), 40);
        let mut reader = open_coco_in(dir.path(), 300).unwrap();
        let buckets = match &reader.source {
            Source::Coco(b) => b.buckets,
            _ => unreachable!(),
        };
        assert!(buckets > 5, "{buckets} buckets");
        assert_eq!(reader.total(), 60);
        assert_eq!(reader.classes(), ["a", "b"]);
        let mut items = Vec::new();
        while let Some(chunk) = reader.next_chunk(7).unwrap() {
            assert!(chunk.len() <= 7);
            items.extend(chunk);
        }
        items.sort_by(|a, b| a.filename.cmp(&b.filename));
        assert_eq!(items, whole.items);
        assert_eq!(reader.warnings(), whole.warnings);
        let codes: Vec<(&str, u64)> = whole
            .warnings
            .iter()
            .map(|w| (w.code.as_str(), w.count))
            .collect();
        assert_eq!(codes, [("missing_image_file", 20), ("unknown_image", 1)]);
        let nine = items.iter().find(|i| i.filename == "011.png").unwrap();
        assert_eq!(nine.len(), 3);
        assert_eq!(nine.folder, "/deep");
    }

    #[test]
    fn a_malformed_coco_file_is_refused_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("coco.json"), r#"{"images": [{"id": 1}]}"#).unwrap();
        let err = ImportReader::open(Format::Coco, dir.path()).unwrap_err();
        assert!(err.contains("not a COCO file"), "{err}");
        std::fs::write(dir.path().join("coco.json"), r#"{"images": []} trailing"#).unwrap();
        assert!(ImportReader::open(Format::Coco, dir.path()).is_err());
    }

    #[test]
    fn yolo_and_voc_folders_are_read_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("data.yaml"), "names:\n  0: cat\n").unwrap();
        for i in 0..25 {
            let sub = if i % 2 == 0 { "train" } else { "val/deep" };
            std::fs::create_dir_all(root.join("images").join(sub)).unwrap();
            std::fs::create_dir_all(root.join("labels").join(sub)).unwrap();
            std::fs::write(root.join(format!("images/{sub}/{i}.png")), b"x").unwrap();
            std::fs::write(
                root.join(format!("labels/{sub}/{i}.txt")),
                "0 0.5 0.5 0.2 0.2\n",
            )
            .unwrap();
        }
        std::fs::write(root.join("images/notes.txt"), b"not an image").unwrap();
        let mut reader = ImportReader::open(Format::Yolo, root).unwrap();
        assert_eq!(reader.total(), 25);
        let mut seen = std::collections::BTreeSet::new();
        let mut chunks = 0;
        while let Some(chunk) = reader.next_chunk(10).unwrap() {
            chunks += 1;
            for item in chunk {
                assert_eq!(item.len(), 1);
                assert!(seen.insert((item.folder, item.filename)));
            }
        }
        assert_eq!((chunks, seen.len()), (3, 25));
        assert!(seen.contains(&("/val/deep".to_string(), "1.png".to_string())));

        // A malformed VOC file stops the import when the folder is opened.
        std::fs::create_dir_all(root.join("JPEGImages")).unwrap();
        std::fs::create_dir_all(root.join("Annotations")).unwrap();
        std::fs::write(root.join("JPEGImages/a.png"), b"x").unwrap();
        std::fs::write(
            root.join("Annotations/a.xml"),
            "<annotation><object><name>x</name></object></annotation>",
        )
        .unwrap();
        assert!(ImportReader::open(Format::Voc, root).is_err());
    }

    #[test]
    fn relative_paths_split() {
        assert_eq!(split_rel("a/b/x.jpg"), ("/a/b".into(), "x.jpg".into()));
        assert_eq!(split_rel("x.jpg"), ("/".into(), "x.jpg".into()));
    }
}
