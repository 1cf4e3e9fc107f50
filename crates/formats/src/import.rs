//! Reading a folder in one of the formats: the images it holds (with the virtual folder each
//! belongs in) and their annotations.

use crate::shape::Shape;
use crate::{canonical, strip_extension, voc, yolo, Format, Warning, Warnings};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The annotations of one imported image.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Canonical annotations, kept as they are (the pictograph format).
    Canonical(Vec<Value>),
    /// Class, geometry in pixels, confidence.
    Absolute(Vec<(String, Shape, f64)>),
    /// Class and geometry normalised to 0..1 (YOLO); the image size turns them to pixels.
    Normalized(Vec<(String, Shape)>),
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
        match &self.labels {
            Labels::Canonical(list) => list.clone(),
            Labels::Absolute(list) => list
                .iter()
                .enumerate()
                .map(|(i, (name, shape, c))| canonical(&format!("ann-{}", i + 1), name, shape, *c))
                .collect(),
            Labels::Normalized(list) => list
                .iter()
                .enumerate()
                .map(|(i, (name, shape))| {
                    let abs = match shape {
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
                    canonical(&format!("ann-{}", i + 1), name, &abs, 1.0)
                })
                .collect(),
        }
    }

    /// How many annotations it has.
    pub fn len(&self) -> usize {
        match &self.labels {
            Labels::Canonical(l) => l.len(),
            Labels::Absolute(l) => l.len(),
            Labels::Normalized(l) => l.len(),
        }
    }

    /// True without annotations.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// Image files under `root`, as sorted `/`-separated paths relative to it.
fn walk_images(root: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
            let child = rel.join(entry.file_name());
            let path = entry.path();
            if path.is_dir() {
                stack.push(child);
            } else if path.is_file() && is_image(&child) {
                let parts: Vec<String> = child
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `a/b/x.jpg` → (`/a/b`, `x.jpg`).
fn split_rel(rel: &str) -> (String, String) {
    match rel.rsplit_once('/') {
        Some((dir, name)) => (format!("/{dir}"), name.to_string()),
        None => ("/".to_string(), rel.to_string()),
    }
}

/// Reads the folder (or, for COCO, also a JSON file) `root` in `format`.
pub fn import(format: Format, root: &Path) -> Result<ImportPlan, String> {
    if !root.exists() {
        return Err(format!("{} does not exist", root.display()));
    }
    match format {
        Format::Coco => import_coco(root),
        Format::Yolo => import_yolo(root),
        Format::Voc => import_voc(root),
        Format::Pictograph => import_native(root),
    }
}

fn add_class(classes: &mut Vec<String>, name: &str) {
    if !classes.iter().any(|c| c == name) {
        classes.push(name.to_string());
    }
}

fn import_yolo(root: &Path) -> Result<ImportPlan, String> {
    let yaml_path = ["data.yaml", "data.yml", "dataset.yaml"]
        .iter()
        .map(|n| root.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no data.yaml in {}", root.display()))?;
    let yaml = std::fs::read_to_string(&yaml_path)
        .map_err(|e| format!("reading {}: {e}", yaml_path.display()))?;
    let classes = yolo::parse_names(&yaml)?;
    let images = root.join("images");
    if !images.is_dir() {
        return Err(format!("no images/ folder in {}", root.display()));
    }
    let mut warnings = Warnings::default();
    let mut items = Vec::new();
    for rel in walk_images(&images)? {
        let label = root
            .join("labels")
            .join(format!("{}.txt", strip_extension(&rel)));
        let mut labels = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&label) {
            for line in text.lines() {
                let tokens: Vec<&str> = line.split_whitespace().collect();
                if tokens.is_empty() {
                    continue;
                }
                let class = tokens[0].parse::<usize>().ok().and_then(|i| classes.get(i));
                let values: Option<Vec<f64>> = tokens[1..].iter().map(|t| t.parse().ok()).collect();
                let (Some(class), Some(values)) = (class, values) else {
                    warnings.add(
                        "unreadable_label",
                        "label line(s) skipped: not `class cx cy w h` with a known class",
                    );
                    continue;
                };
                let shape = match values.len() {
                    4 => Shape::Box([
                        values[0] - values[2] / 2.0,
                        values[1] - values[3] / 2.0,
                        values[2],
                        values[3],
                    ]),
                    n if n >= 6 && n % 2 == 0 => {
                        Shape::Polygon(vec![values.chunks(2).map(|c| [c[0], c[1]]).collect()])
                    }
                    _ => {
                        warnings.add(
                            "unreadable_label",
                            "label line(s) skipped: not `class cx cy w h` with a known class",
                        );
                        continue;
                    }
                };
                labels.push((class.clone(), shape));
            }
        }
        let (folder, filename) = split_rel(&rel);
        items.push(ImportItem {
            path: images.join(&rel),
            folder,
            filename,
            status: None,
            labels: Labels::Normalized(labels),
        });
    }
    Ok(ImportPlan {
        format: Format::Yolo,
        classes,
        items,
        warnings: warnings.to_vec(),
    })
}

fn import_voc(root: &Path) -> Result<ImportPlan, String> {
    let images = root.join("JPEGImages");
    if !images.is_dir() {
        return Err(format!("no JPEGImages/ folder in {}", root.display()));
    }
    let mut warnings = Warnings::default();
    let mut classes = Vec::new();
    let mut items = Vec::new();
    for rel in walk_images(&images)? {
        let xml_path = root
            .join("Annotations")
            .join(format!("{}.xml", strip_extension(&rel)));
        let mut labels = Vec::new();
        if xml_path.is_file() {
            let xml = std::fs::read_to_string(&xml_path)
                .map_err(|e| format!("reading {}: {e}", xml_path.display()))?;
            let doc = voc::parse(&xml).map_err(|e| format!("{}: {e}", xml_path.display()))?;
            for (name, b) in doc.objects {
                if b[2] <= 0.0 || b[3] <= 0.0 {
                    warnings.add(
                        "empty_box_skipped",
                        "object(s) skipped: xmax/ymax before xmin/ymin",
                    );
                    continue;
                }
                add_class(&mut classes, &name);
                labels.push((name, Shape::Box(b), 1.0));
            }
        }
        let (folder, filename) = split_rel(&rel);
        items.push(ImportItem {
            path: images.join(&rel),
            folder,
            filename,
            status: None,
            labels: Labels::Absolute(labels),
        });
    }
    Ok(ImportPlan {
        format: Format::Voc,
        classes,
        items,
        warnings: warnings.to_vec(),
    })
}

#[derive(Deserialize)]
struct CocoFile {
    #[serde(default)]
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    #[serde(default)]
    categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: Value,
    file_name: String,
}

#[derive(Deserialize)]
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

fn import_coco(root: &Path) -> Result<ImportPlan, String> {
    let (json_path, images_dir) = coco_paths(root)?;
    let file = std::fs::File::open(&json_path)
        .map_err(|e| format!("reading {}: {e}", json_path.display()))?;
    let coco: CocoFile = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("{}: not a COCO file: {e}", json_path.display()))?;
    let mut warnings = Warnings::default();
    let mut categories = coco.categories;
    categories.sort_by(|a, b| cmp_ids(&a.id, &b.id));
    let mut classes = Vec::new();
    let mut by_id: HashMap<String, &CocoCategory> = HashMap::new();
    for c in &categories {
        add_class(&mut classes, &c.name);
        by_id.insert(id_key(&c.id), c);
    }
    let mut per_image: HashMap<String, Vec<(String, Shape, f64)>> = HashMap::new();
    for a in &coco.annotations {
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
                            list.push((cat.name.clone(), Shape::Polygon(vec![ring]), confidence));
                        }
                        _ => warnings.add(
                            "unreadable_polygon",
                            "polygon part(s) skipped: fewer than 3 points",
                        ),
                    }
                }
                continue;
            }
            Some(Value::Object(_)) => {
                warnings.add(
                    "rle_as_box",
                    "RLE mask(s) imported as their boxes: masks cannot be held",
                );
                if let Some(b) = bbox {
                    list.push((cat.name.clone(), Shape::Box(b), confidence));
                }
                continue;
            }
            _ => {}
        }
        if let Some(kp) = a.keypoints.as_ref().filter(|k| !k.is_empty()) {
            if let Some(b) = bbox {
                list.push((cat.name.clone(), Shape::Box(b), confidence));
            }
            for (i, t) in kp.chunks(3).enumerate() {
                if t.len() == 3 && t[2] > 0.0 {
                    let name = match cat.keypoints.get(i) {
                        Some(k) if cat.keypoints.len() > 1 || k != &cat.name => {
                            format!("{}/{k}", cat.name)
                        }
                        _ => cat.name.clone(),
                    };
                    list.push((name, Shape::Keypoint([t[0], t[1]]), confidence));
                }
            }
            continue;
        }
        match bbox {
            Some(b) => list.push((cat.name.clone(), Shape::Box(b), confidence)),
            None => warnings.add(
                "empty_annotation_skipped",
                "annotation(s) skipped: no segmentation, keypoints or positive-size bbox",
            ),
        }
    }
    let mut items = Vec::new();
    for img in coco.images {
        let rel = img.file_name.trim_start_matches('/').to_string();
        let path = images_dir.join(&rel);
        let labels = per_image.remove(&id_key(&img.id)).unwrap_or_default();
        if !path.is_file() {
            warnings.add(
                "missing_image_file",
                "image(s) listed in the COCO file skipped: their file is missing",
            );
            continue;
        }
        for (name, _, _) in &labels {
            add_class(&mut classes, name);
        }
        let (folder, filename) = split_rel(&rel);
        items.push(ImportItem {
            path,
            folder,
            filename,
            status: None,
            labels: Labels::Absolute(labels),
        });
    }
    let orphans: usize = per_image.values().map(Vec::len).sum();
    if orphans > 0 {
        warnings.add_n(
            "unknown_image",
            orphans as u64,
            "annotation(s) skipped: their image_id is not in images",
        );
    }
    items.sort_by(|a, b| (&a.folder, &a.filename).cmp(&(&b.folder, &b.filename)));
    Ok(ImportPlan {
        format: Format::Coco,
        classes,
        items,
        warnings: warnings.to_vec(),
    })
}

fn id_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0)
            .map_or_else(|| n.to_string(), |f| format!("{}", f as i64)),
        other => other.to_string(),
    }
}

fn cmp_ids(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => id_key(a).cmp(&id_key(b)),
    }
}

fn import_native(root: &Path) -> Result<ImportPlan, String> {
    let dataset: Value = std::fs::read(root.join(crate::native::DATASET_PATH))
        .map_err(|e| format!("reading dataset.json: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("dataset.json: {e}")))?;
    let mut classes: Vec<String> = dataset
        .get("classes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let text = std::fs::read_to_string(root.join(crate::native::LINES_PATH))
        .map_err(|e| format!("reading annotations.jsonl: {e}"))?;
    let mut warnings = Warnings::default();
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("annotations.jsonl line {}: {e}", n + 1))?;
        let (Some(file), Some(folder), Some(filename)) = (
            v.get("file").and_then(Value::as_str),
            v.get("folder").and_then(Value::as_str),
            v.get("filename").and_then(Value::as_str),
        ) else {
            return Err(format!(
                "annotations.jsonl line {}: needs file, folder and filename",
                n + 1
            ));
        };
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
        for a in &list {
            if let Some(name) = a.get("name").and_then(Value::as_str) {
                add_class(&mut classes, name);
            }
        }
        items.push(ImportItem {
            path,
            folder: folder.to_string(),
            filename: filename.to_string(),
            status: v.get("status").and_then(Value::as_str).map(String::from),
            labels: Labels::Canonical(list),
        });
    }
    Ok(ImportPlan {
        format: Format::Pictograph,
        classes,
        items,
        warnings: warnings.to_vec(),
    })
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
            labels: Labels::Normalized(vec![("car".into(), Shape::Box([0.25, 0.25, 0.5, 0.5]))]),
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

    #[test]
    fn relative_paths_split() {
        assert_eq!(split_rel("a/b/x.jpg"), ("/a/b".into(), "x.jpg".into()));
        assert_eq!(split_rel("x.jpg"), ("/".into(), "x.jpg".into()));
    }
}
