//! YOLO detection in the Ultralytics layout: `data.yaml` (splits and class names),
//! `images/<split>/…` and `labels/<split>/….txt`, one `class cx cy w h` line per box with
//! coordinates normalised to 0..1.
//!
//! The split is the image's first folder when it is `train`, `val` or `test` (`/val/cars/a.jpg`
//! → `images/val/cars/a.jpg`); every other image goes to `train`. Ultralytics needs a `val`
//! entry: without `val` images it points at the training images.

use crate::shape::read_annotation;
use crate::{
    box_or_drop, note_common_losses, num, place_image, strip_extension, Classes, ExportOptions,
    Finished, ImageInfo, Names, OutFile, Placement, Warnings, Writer,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io;

/// The split names the layout knows.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

pub struct YoloWriter {
    options: ExportOptions,
    classes: Classes,
    splits: BTreeSet<&'static str>,
    names: Names,
    warnings: Warnings,
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

impl YoloWriter {
    pub fn new(options: ExportOptions) -> YoloWriter {
        YoloWriter {
            classes: Classes::new(&options.classes),
            options,
            splits: BTreeSet::new(),
            names: Names::new(Some("txt")),
            warnings: Warnings::default(),
        }
    }
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
        let label_path = format!("labels/{}.txt", strip_extension(&place.rel));
        let (w, h) = (image.width as f64, image.height as f64);
        let mut text = String::new();
        if (w <= 0.0 || h <= 0.0) && !annotations.is_empty() {
            self.warnings.add_n(
                "unknown_size_skipped",
                annotations.len() as u64,
                "annotation(s) skipped: their image's size is unknown, so they cannot be normalised",
            );
            return Ok(vec![OutFile::bytes(label_path, text)]);
        }
        for raw in annotations {
            let Some(ann) = read_annotation(raw) else {
                self.warnings.add(
                    "unreadable_annotation",
                    "annotation(s) not in the canonical format skipped",
                );
                continue;
            };
            let Some(b) = box_or_drop(
                &mut self.warnings,
                &ann,
                self.options.polygons_as_boxes,
                "YOLO detection labels",
            ) else {
                continue;
            };
            note_common_losses(&mut self.warnings, &ann, "YOLO", false);
            let Some(c) = clip(b, w, h) else {
                self.warnings.add(
                    "outside_image_dropped",
                    "box(es) dropped: entirely outside their image",
                );
                continue;
            };
            if c != b {
                self.warnings.add(
                    "box_clipped",
                    "box(es) clipped to their image: YOLO coordinates must lie in 0..1",
                );
            }
            let class = self.classes.id(&ann.name);
            text.push_str(&format!(
                "{class} {} {} {} {}\n",
                num((c[0] + c[2] / 2.0) / w),
                num((c[1] + c[3] / 2.0) / h),
                num(c[2] / w),
                num(c[3] / h),
            ));
        }
        Ok(vec![OutFile::bytes(label_path, text)])
    }

    fn finish(self: Box<Self>) -> io::Result<Finished> {
        let val = if self.splits.contains("val") {
            "images/val"
        } else {
            "images/train"
        };
        let mut yaml = String::new();
        yaml.push_str(&format!(
            "# {} exported by pictograph (Ultralytics YOLO detection layout)\n",
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
        Ok(Finished {
            files: vec![OutFile::bytes("data.yaml", yaml)],
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
