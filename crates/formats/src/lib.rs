//! Conversions between canonical Pictograph annotations and the formats training code reads:
//! COCO (`instances` JSON), YOLO (Ultralytics detection layout), Pascal VOC (one XML file per
//! image) and our own "pictograph" JSON Lines.
//!
//! Writers stream: they take one image (its place in the dataset, its size and its canonical
//! annotations) at a time and hand back the small files that belong to it; whatever must be
//! written after the last image (COCO's single JSON file, `data.yaml`, ...) is spooled to
//! temporary files, so memory stays flat whatever the dataset size. The caller puts the image
//! bytes at the path [`Writer::place`] gave it.
//!
//! No two images share an output file: an image whose file or label file an earlier image
//! (in the export's order) already has, or whose path a folder already takes (or the
//! reverse), is numbered as `pictograph download` numbers names (`a-2.png`, `a-3.png`, …; a
//! folder as `b-2.png/`), and reported once with its count. Only real meetings count: a
//! folder `a.jpg/` beside an image `a.png` (whose label file is `a.txt`) keeps its name.
//! Memory holds 64-bit hashes (one per folder, one or two per image), never the paths.
//!
//! [`output::OutputDir`] writes an export into a local folder: a re-export into the same
//! folder leaves exactly the current dataset there, and a crash midway leaves a folder that
//! says so (the importers refuse it) instead of one that looks complete.
//!
//! Parsers read a folder in one of the formats back into images and canonical annotations:
//! [`ImportReader`] a chunk of images at a time (memory holds one chunk, whatever the folder's
//! size), [`import`] all at once.
//!
//! What a format cannot hold is never dropped silently: every writer and parser reports it
//! as [`Warning`]s, one per kind with its count.
//!
//! | format | holds | cannot hold |
//! | --- | --- | --- |
//! | COCO | boxes, polygons (outer ring as `segmentation`), keypoints (one-point COCO keypoints, visibility 1 for `occluded` ones), confidence (`score`) | polylines, polygon holes, attributes, metadata |
//! | YOLO | boxes (normalised, clipped to the image); polygons as their boxes only when asked; keypoints as pose lines when the classes name joints (`person/nose`), with visibility | polylines, other keypoints, polygons (unless as boxes), confidence, attributes, metadata |
//! | VOC | boxes; polygons as their boxes only when asked | polylines, keypoints, polygons (unless as boxes), confidence, attributes, metadata |
//! | pictograph | everything (canonical JSON as stored) | nothing |

#![deny(missing_docs)]

mod coco;
mod import;
mod native;
pub mod output;
mod shape;
mod voc;
mod yolo;

use pictograph_core::hashes::{hash_of, HashSet64};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;

pub use import::{import, ImportItem, ImportPlan, ImportReader, Label, Labels};
pub use shape::{canonical, read_annotation, Ann, Shape};

/// An export or import format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// COCO object detection JSON (`annotations/instances.json` + `images/`).
    Coco,
    /// Ultralytics YOLO detection or pose (`data.yaml`, `images/<split>/`, `labels/<split>/`).
    Yolo,
    /// Pascal VOC (`Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/trainval.txt`).
    Voc,
    /// Pictograph canonical JSON Lines (`annotations.jsonl`, `dataset.json`, `images/`).
    Pictograph,
}

impl Format {
    /// Every format, in documentation order.
    pub const ALL: [Format; 4] = [Format::Coco, Format::Yolo, Format::Voc, Format::Pictograph];

    /// The format's name as used on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Coco => "coco",
            Format::Yolo => "yolo",
            Format::Voc => "voc",
            Format::Pictograph => "pictograph",
        }
    }

    /// Parses a name (case-insensitive); `None` for an unknown one.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One image as an export sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// Virtual folder: `/` or `/a/b`.
    pub folder: String,
    /// File name within the folder.
    pub filename: String,
    /// Width in pixels (0 when unknown).
    pub width: u32,
    /// Height in pixels (0 when unknown).
    pub height: u32,
    /// Lifecycle status (`new`, `annotate`, `review`, `complete`).
    pub status: String,
}

impl ImageInfo {
    /// The image's path relative to the dataset root: `a/b/x.jpg` (no leading `/`). A folder
    /// level longer than file systems allow (255 bytes) is shortened, as
    /// [`shorten`](pictograph_core::names::shorten) does.
    pub fn rel_path(&self) -> String {
        let (mut path, name) = self.levels();
        path.push(name);
        path.join("/")
    }

    /// The folder levels and the file name of [`ImageInfo::rel_path`].
    fn levels(&self) -> (Vec<String>, String) {
        let folders = self
            .folder
            .split('/')
            .filter(|s| !s.is_empty())
            .map(fit)
            .collect();
        (folders, fit(&self.filename))
    }

    /// The image's place in the dataset as users see it: `/a/b/x.jpg`.
    fn shown(&self) -> String {
        format!("{}/{}", self.folder.trim_end_matches('/'), self.filename)
    }
}

/// A path level cut to what file systems allow (255 bytes).
fn fit(part: &str) -> String {
    pictograph_core::names::shorten(part, 255)
}

/// Where [`Writer::place`] put an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Where the image's bytes go, relative to the export root (`/`-separated), e.g.
    /// `images/train/a-2.png`.
    pub path: String,
    /// The same path below the format's image folder (`train/a-2.png`): what label files
    /// and manifests are named after.
    pub rel: String,
}

/// Settings of an export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The dataset's name (written where a format has a place for it).
    pub dataset: String,
    /// The dataset's classes, in order: they get the first category ids / class indices;
    /// names met in annotations but not in this list are appended in order of appearance.
    pub classes: Vec<String>,
    /// YOLO and VOC: write polygons as their bounding boxes instead of dropping them.
    pub polygons_as_boxes: bool,
}

/// The contents of an output file.
#[derive(Debug)]
pub enum Body {
    /// Small contents, in memory.
    Bytes(Vec<u8>),
    /// Large contents spooled to an (unlinked) temporary file, positioned at its start.
    File(File),
}

impl Body {
    /// The length in bytes.
    pub fn len(&self) -> io::Result<u64> {
        match self {
            Body::Bytes(b) => Ok(b.len() as u64),
            Body::File(f) => Ok(f.metadata()?.len()),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// A file of an export: its path relative to the export root (`/`-separated) and contents.
#[derive(Debug)]
pub struct OutFile {
    /// Relative path, e.g. `labels/train/a.txt`.
    pub path: String,
    /// Contents.
    pub body: Body,
}

impl OutFile {
    fn bytes(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> OutFile {
        OutFile {
            path: path.into(),
            body: Body::Bytes(bytes.into()),
        }
    }
}

/// Something a format could not hold (or a change it had to make), with how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable machine-readable kind, e.g. `polyline_dropped`.
    pub code: String,
    /// How many annotations (or images) it concerns.
    pub count: u64,
    /// One readable sentence, starting with the count.
    pub message: String,
}

/// Warnings collected while converting, one entry per kind.
#[derive(Debug, Default, Clone)]
pub struct Warnings(BTreeMap<&'static str, (u64, String)>);

impl Warnings {
    /// Counts one occurrence of `code`; `what` completes the sentence after the count.
    pub fn add(&mut self, code: &'static str, what: impl Into<String>) {
        self.add_n(code, 1, what);
    }

    /// Counts `n` occurrences of `code`.
    pub fn add_n(&mut self, code: &'static str, n: u64, what: impl Into<String>) {
        let entry = self.0.entry(code).or_insert_with(|| (0, what.into()));
        entry.0 += n;
    }

    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The warnings, sorted by code.
    pub fn to_vec(&self) -> Vec<Warning> {
        self.0
            .iter()
            .map(|(code, (count, what))| Warning {
                code: code.to_string(),
                count: *count,
                message: format!("{count} {what}"),
            })
            .collect()
    }
}

/// The end of an export: the files written after the last image, and the warnings.
#[derive(Debug)]
pub struct Finished {
    /// Files to add to the export.
    pub files: Vec<OutFile>,
    /// What the format could not hold.
    pub warnings: Vec<Warning>,
}

/// A streaming export writer: call [`Writer::place`] once per image, in the export's order,
/// then [`Writer::add`] with that placement (the placements of a page may all come first),
/// then [`Writer::finish`].
pub trait Writer: Send {
    /// Gives the next image its path in the export: the path of its name and folder, unless
    /// an earlier image or folder already took that path or the image's label file; then the
    /// name (or the folder) is numbered (`a-2.png`), the same way on every run of the same
    /// images in the same order.
    fn place(&mut self, image: &ImageInfo) -> Placement;

    /// Converts one image's canonical annotations (`place` is what [`Writer::place`] gave
    /// it); answers the files that belong to it (label files), possibly none.
    fn add(
        &mut self,
        image: &ImageInfo,
        place: &Placement,
        annotations: &[Value],
    ) -> io::Result<Vec<OutFile>>;

    /// The files written after the last image, and the warnings.
    fn finish(self: Box<Self>) -> io::Result<Finished>;
}

/// A writer of `format`.
pub fn writer(format: Format, options: ExportOptions) -> io::Result<Box<dyn Writer>> {
    Ok(match format {
        Format::Coco => Box::new(coco::CocoWriter::new(options)?),
        Format::Yolo => Box::new(yolo::YoloWriter::new(options)?),
        Format::Voc => Box::new(voc::VocWriter::new(options)?),
        Format::Pictograph => Box::new(native::NativeWriter::new(options)?),
    })
}

/// Class names in id order: the dataset's first, then new ones as met.
#[derive(Debug, Default)]
struct Classes {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Classes {
    fn new(initial: &[String]) -> Classes {
        let mut c = Classes::default();
        for n in initial {
            c.id(n);
        }
        c
    }

    /// The 0-based index of `name`, added when new.
    fn id(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// The names an export gave out so far, so that no two images share a file (their image
/// file or label file) and no file takes a folder's path, or the reverse. Holds 64-bit
/// hashes, never a path: one per folder, and one per image of a format without label files
/// (the hash of its path). For a format with label files (`label`, the extension that
/// replaces the image's), two per image: the hash of its path without its extension (what
/// its two files share with another image's) and the hash of its whole path (what a folder
/// of that name would meet).
///
/// Every check is exact: a name is numbered only when one of its files, or its folder, would
/// take the path of a file or folder given out before.
#[derive(Debug, Default)]
struct Names {
    label: Option<&'static str>,
    hashes: HashSet64,
}

/// What a hash in [`Names`] stands for.
#[derive(Clone, Copy, Hash)]
enum Kind {
    /// A folder.
    Folder,
    /// An image: its path, or with label files its path without the extension.
    Image,
    /// With label files: an image without an extension, by its path.
    Bare,
    /// With label files: an image's file, by its whole path (extension included).
    File,
}

impl Names {
    /// The names of a format whose images have label files named like them with `label` as
    /// their extension; `None` for images alone.
    fn new(label: Option<&'static str>) -> Names {
        Names {
            label,
            hashes: HashSet64::default(),
        }
    }

    fn key(kind: Kind, path: &str) -> u64 {
        hash_of(&(kind, path))
    }

    fn has(&self, kind: Kind, path: &str) -> bool {
        self.hashes.contains(Names::key(kind, path))
    }

    /// Whether an earlier image has a file (image or label file) at the path `dir` + `level`.
    fn file_at(&self, dir: &str, level: &str) -> bool {
        let Some(label) = self.label else {
            return self.has(Kind::Image, &format!("{dir}{level}"));
        };
        let stem = strip_extension(level);
        let path = format!("{dir}{stem}");
        if stem.len() == level.len() {
            // `d`: the file of an image named `d`.
            self.has(Kind::Bare, &path)
        } else if &level[stem.len() + 1..] == label {
            // `d.txt`: the label file of any image named `d` or `d.<any extension>`.
            self.has(Kind::Image, &path) || self.has(Kind::Bare, &path)
        } else {
            // `d.jpg`, `v1.2`: only an image of exactly that name (`d.png` has the files
            // `d.png` and `d.txt`, neither of which is `d.jpg`).
            self.has(Kind::File, &format!("{dir}{level}"))
        }
    }

    /// Whether the image `name` in `dir` would share a file with an earlier image or take a
    /// folder's path.
    fn taken(&self, dir: &str, name: &str) -> bool {
        let Some(label) = self.label else {
            let path = format!("{dir}{name}");
            return self.has(Kind::Image, &path) || self.has(Kind::Folder, &path);
        };
        let stem = format!("{dir}{}", strip_extension(name));
        self.has(Kind::Image, &stem)
            || self.has(Kind::Bare, &stem)
            || self.has(Kind::Folder, &format!("{dir}{name}"))
            || self.has(Kind::Folder, &format!("{stem}.{label}"))
    }

    fn claim(&mut self, dir: &str, name: &str) {
        let path = format!("{dir}{name}");
        if self.label.is_none() {
            self.hashes.insert(Names::key(Kind::Image, &path));
            return;
        }
        let stem = strip_extension(name);
        let kind = if stem.len() == name.len() {
            Kind::Bare
        } else {
            Kind::Image
        };
        self.hashes
            .insert(Names::key(kind, &format!("{dir}{stem}")));
        self.hashes.insert(Names::key(Kind::File, &path));
    }

    /// Places an image named `name` in the folder `folders` (levels already [`fit`]) below
    /// `root`: answers its path below `root`, numbered where needed, and whether it was. A
    /// folder level whose path an earlier image's file has is numbered (once for all its
    /// images: a folder never becomes a file, so the same level is found each time); so is
    /// a name whose files an earlier image or a folder has.
    fn place(&mut self, root: &str, folders: &[String], name: &str) -> (String, bool) {
        let mut dir = format!("{root}/");
        let mut renamed = false;
        for level in folders {
            let mut n = 1;
            let mut candidate = level.clone();
            while self.file_at(&dir, &candidate) {
                n += 1;
                candidate = fit(&pictograph_core::names::numbered(level, n));
            }
            renamed |= n > 1;
            dir.push_str(&candidate);
            self.hashes.insert(Names::key(Kind::Folder, &dir));
            dir.push('/');
        }
        let mut n = 1;
        let mut candidate = name.to_string();
        while self.taken(&dir, &candidate) {
            n += 1;
            candidate = fit(&pictograph_core::names::numbered(name, n));
        }
        self.claim(&dir, &candidate);
        dir.push_str(&candidate);
        (dir[root.len() + 1..].to_string(), renamed || n > 1)
    }
}

/// Places `image` with `names` below the image folder `root` (its label files go below a
/// folder beside it, in the same layout): its path below the format's image folder is
/// `prefix` (a split folder, or empty; ending in `/`) and the place `names` gives it. A
/// numbered image is counted in `warnings`.
fn place_image(
    names: &mut Names,
    warnings: &mut Warnings,
    root: &str,
    prefix: &str,
    folders: &[String],
    image: &ImageInfo,
    filename: &str,
) -> Placement {
    let (local, renamed) = names.place(root, folders, filename);
    let path = format!("{root}/{local}");
    if renamed {
        warnings.add(
            "renamed_to_avoid_collision",
            format!(
                "image(s) exported under a numbered name, as an earlier image already had \
                 their file or label file (the same name but the extension, or the same path \
                 inside and outside a split folder) or a file and a folder had one name: \
                 e.g. {} as {path}",
                image.shown()
            ),
        );
    }
    Placement {
        path,
        rel: format!("{prefix}{local}"),
    }
}

/// Places `image` at its own path below the image folder `root`, with no split folder: what
/// the COCO, VOC and pictograph writers do (YOLO puts a split folder first).
fn place_plain(
    names: &mut Names,
    warnings: &mut Warnings,
    root: &str,
    image: &ImageInfo,
) -> Placement {
    let (folders, filename) = image.levels();
    place_image(names, warnings, root, "", &folders, image, &filename)
}

/// `path` without its extension (the part after the last `.` of the last segment).
fn strip_extension(path: &str) -> &str {
    let seg_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[seg_start..].rfind('.') {
        Some(dot) if dot > 0 => &path[..seg_start + dot],
        _ => path,
    }
}

/// A number as short text: integers without a fraction, others in the shortest form that
/// reads back to the same `f64`.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// One stored annotation read for a writer; an unreadable one is counted in the warnings and
/// answers `None`.
fn readable(warnings: &mut Warnings, raw: &serde_json::Value) -> Option<Ann> {
    let ann = read_annotation(raw);
    if ann.is_none() {
        warnings.add(
            "unreadable_annotation",
            "annotation(s) not in the canonical format skipped",
        );
    }
    ann
}

/// What a boxes-only writer keeps of an image's annotations: each readable one that has a
/// box in `format`, with that box; what is skipped or lost is counted as [`readable`] and
/// [`boxed`] count it.
fn kept_boxes(
    warnings: &mut Warnings,
    annotations: &[serde_json::Value],
    polygons_as_boxes: bool,
    labels: (&str, &str),
) -> Vec<(Ann, [f64; 4])> {
    annotations
        .iter()
        .filter_map(|raw| {
            let ann = readable(warnings, raw)?;
            let b = boxed(warnings, &ann, polygons_as_boxes, labels)?;
            Some((ann, b))
        })
        .collect()
}

/// [`box_or_drop`] for the writer of `format`, which also counts what else of a kept
/// annotation that format loses (see [`note_common_losses`]; no format that holds boxes only
/// keeps confidence).
fn boxed(
    warnings: &mut Warnings,
    ann: &Ann,
    polygons_as_boxes: bool,
    (holder, format): (&str, &str),
) -> Option<[f64; 4]> {
    let b = box_or_drop(warnings, ann, polygons_as_boxes, holder)?;
    note_common_losses(warnings, ann, format, false);
    Some(b)
}

/// The box a boxes-only format (`holder`: what holds the boxes, e.g. "VOC objects") writes for
/// an annotation: its own box, or a polygon's bounds with `polygons_as_boxes`; anything else
/// is counted as dropped and answers `None`.
fn box_or_drop(
    warnings: &mut Warnings,
    ann: &Ann,
    polygons_as_boxes: bool,
    holder: &str,
) -> Option<[f64; 4]> {
    match &ann.shape {
        Shape::Box(b) => Some(*b),
        Shape::Polygon(_) if polygons_as_boxes => {
            warnings.add(
                "polygon_as_box",
                "polygon(s) written as their bounding boxes (as asked)",
            );
            Some(ann.shape.bounds())
        }
        Shape::Polygon(_) => {
            warnings.add(
                "polygon_dropped",
                format!(
                    "polygon annotation(s) dropped: {holder} hold boxes only \
                     (ask for polygons as boxes to keep their boxes)"
                ),
            );
            None
        }
        Shape::Polyline(_) => {
            warnings.add(
                "polyline_dropped",
                format!("polyline annotation(s) dropped: {holder} hold boxes only"),
            );
            None
        }
        Shape::Keypoint(_) => {
            warnings.add(
                "keypoint_dropped",
                format!("keypoint annotation(s) dropped: {holder} hold boxes only"),
            );
            None
        }
    }
}

/// Counts what every non-native format loses from an annotation: attributes and metadata
/// always, confidence unless the format keeps it.
fn note_common_losses(warnings: &mut Warnings, ann: &Ann, format: &str, keeps_confidence: bool) {
    if ann.has_attributes {
        warnings.add(
            "attributes_dropped",
            format!("annotation(s) lost their attributes: {format} has no place for them"),
        );
    }
    if ann.has_metadata {
        warnings.add(
            "metadata_dropped",
            format!("annotation(s) lost their metadata: {format} has no place for it"),
        );
    }
    if !keeps_confidence && ann.confidence < 1.0 {
        warnings.add(
            "confidence_dropped",
            format!("annotation(s) lost a confidence below 1: {format} labels have no score"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_fit_file_systems() {
        let image = |folder: &str, filename: &str| ImageInfo {
            folder: folder.into(),
            filename: filename.into(),
            width: 1,
            height: 1,
            status: "new".into(),
        };
        assert_eq!(image("/", "x.jpg").rel_path(), "x.jpg");
        assert_eq!(image("/a/b", "x.jpg").rel_path(), "a/b/x.jpg");
        let long = "d".repeat(300);
        let name = format!("{}.png", "n".repeat(251));
        let rel = image(&format!("/a/{long}"), &name).rel_path();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 3, "{rel}");
        assert_eq!((parts[0], parts[2]), ("a", name.as_str()), "255 bytes fit");
        assert!(
            parts[1].len() <= 255 && parts[1].starts_with("ddd"),
            "{rel}"
        );
    }

    #[test]
    fn names_hold_a_hash_per_image_and_numbered_names_fit() {
        let mut names = Names::new(Some("txt"));
        for i in 0..1000 {
            let placed = names.place("images/train", &["f".into()], &format!("{i}.png"));
            assert_eq!(placed, (format!("f/{i}.png"), false));
        }
        // Two per image (its path without and with its extension), one for the folder.
        assert_eq!(names.hashes.len(), 2 * 1000 + 1);
        // A name at the file systems' limit stays within it when numbered.
        let long = fit(&format!("{}.png", "n".repeat(300)));
        let first = names.place("images/train", &[], &long);
        let (second, renamed) = names.place("images/train", &[], &long);
        assert_eq!(first, (long.clone(), false));
        assert!(renamed && second != long && second.len() <= 255, "{second}");
        assert!(second.ends_with(".png"), "{second}");
        // A folder is numbered only when it meets a file: not for an image of its name but
        // for the extension (`v1.png` and `v1.txt` leave `v1.2/` and `v1.jpg/` free).
        let mut names = Names::new(Some("txt"));
        let mut place = |folders: &[&str], name: &str| {
            let folders: Vec<String> = folders.iter().map(|f| f.to_string()).collect();
            names.place("JPEGImages", &folders, name).0
        };
        assert_eq!(place(&[], "v1.png"), "v1.png");
        assert_eq!(place(&["v1"], "a.png"), "v1/a.png");
        assert_eq!(place(&["v1.2"], "a.png"), "v1.2/a.png");
        assert_eq!(place(&["v1.jpg"], "a.png"), "v1.jpg/a.png");
        assert_eq!(place(&["v1.txt"], "a.png"), "v1-2.txt/a.png");
        assert_eq!(place(&["v1.png"], "a.png"), "v1-2.png/a.png");
        assert_eq!(place(&["w.txt"], "a.png"), "w.txt/a.png");
        assert_eq!(place(&[], "w.png"), "w-2.png");
        // An image named exactly like the folder (extension and all) still meets it.
        assert_eq!(place(&[], "x.2"), "x.2");
        assert_eq!(place(&["x.2"], "a.png"), "x-2.2/a.png");
        // Without label files, only the whole name counts.
        let mut names = Names::new(None);
        assert_eq!(names.place("images", &[], "a.png").0, "a.png");
        assert_eq!(names.place("images", &["a".into()], "b.png").0, "a/b.png");
        assert_eq!(
            names.place("images", &["a.jpg".into()], "b.png").0,
            "a.jpg/b.png"
        );
        assert_eq!(
            names.place("images", &["a.png".into()], "b.png").0,
            "a-2.png/b.png"
        );
    }

    /// COCO, VOC and pictograph place an image the same way, through one helper.
    #[test]
    fn plain_writers_share_one_placement() {
        let img = ImageInfo {
            folder: "/a".into(),
            filename: "x.png".into(),
            width: 1,
            height: 1,
            status: "new".into(),
        };
        for (format, root, label) in [
            (Format::Coco, "images", None),
            (Format::Pictograph, "images", None),
            (Format::Voc, "JPEGImages", Some("xml")),
        ] {
            let mut w = writer(format, ExportOptions::default()).unwrap();
            let mut names = Names::new(label);
            let mut warnings = Warnings::default();
            for _ in 0..2 {
                assert_eq!(
                    w.place(&img),
                    place_plain(&mut names, &mut warnings, root, &img),
                    "{format}"
                );
            }
        }
    }

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse(" COCO "), Some(Format::Coco));
        assert_eq!(Format::parse("tfrecord"), None);
    }

    #[test]
    fn extension_stripping() {
        assert_eq!(strip_extension("a/b/c.jpg"), "a/b/c");
        assert_eq!(strip_extension("a.b/c"), "a.b/c");
        assert_eq!(strip_extension("x.tar.png"), "x.tar");
        assert_eq!(strip_extension(".hidden"), ".hidden");
    }

    #[test]
    fn numbers_are_short_and_exact() {
        assert_eq!(num(10.0), "10");
        assert_eq!(num(-3.0), "-3");
        assert_eq!(num(0.1), "0.1");
        assert_eq!(num(1.0 / 3.0).parse::<f64>().unwrap(), 1.0 / 3.0);
    }

    #[test]
    fn warnings_count_per_kind() {
        let mut w = Warnings::default();
        w.add("polyline_dropped", "polyline(s) dropped");
        w.add("polyline_dropped", "polyline(s) dropped");
        w.add_n("keypoint_dropped", 3, "keypoint(s) dropped");
        let v = w.to_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].code, "keypoint_dropped");
        assert_eq!(v[0].message, "3 keypoint(s) dropped");
        assert_eq!(v[1].count, 2);
    }
}
