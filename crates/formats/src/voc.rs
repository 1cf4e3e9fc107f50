//! Pascal VOC: `JPEGImages/<path>`, one `Annotations/<path without extension>.xml` per image
//! and `ImageSets/Main/trainval.txt` listing every image id (its path without extension).
//!
//! Only boxes can be held; polygons become boxes only when asked. `bndbox` follows the VOC
//! devkit's 1-based inclusive pixel indices, as VOC readers expect: a box at `x, y` of size
//! `w × h` (0-based, continuous) is `xmin = x + 1`, `ymin = y + 1`, `xmax = x + w`,
//! `ymax = y + h`, and reading undoes exactly that.

use crate::{
    kept_boxes, num, place_plain, strip_extension, Body, ExportOptions, Finished, ImageInfo, Names,
    OutFile, Placement, Warnings, Writer,
};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// The list of image ids.
pub const IMAGE_SET_PATH: &str = "ImageSets/Main/trainval.txt";

pub struct VocWriter {
    options: ExportOptions,
    ids: BufWriter<File>,
    names: Names,
    warnings: Warnings,
}

impl VocWriter {
    pub fn new(options: ExportOptions) -> io::Result<VocWriter> {
        Ok(VocWriter {
            options,
            ids: BufWriter::new(tempfile::tempfile()?),
            names: Names::new(Some("xml")),
            warnings: Warnings::default(),
        })
    }
}

impl Writer for VocWriter {
    fn place(&mut self, image: &ImageInfo) -> Placement {
        place_plain(&mut self.names, &mut self.warnings, "JPEGImages", image)
    }

    fn add(
        &mut self,
        image: &ImageInfo,
        place: &Placement,
        annotations: &[Value],
    ) -> io::Result<Vec<OutFile>> {
        let id = strip_extension(&place.rel);
        writeln!(self.ids, "{id}")?;
        // The file's own name, numbered or not, so that readers find it in JPEGImages/.
        let filename = place.rel.rsplit('/').next().unwrap_or(&place.rel);
        let folder = image.folder.trim_matches('/');
        let mut xml = String::new();
        xml.push_str("<annotation>\n");
        xml.push_str(&format!(
            "  <folder>{}</folder>\n  <filename>{}</filename>\n",
            escape(folder),
            escape(filename)
        ));
        xml.push_str(&format!(
            "  <source>\n    <database>{}</database>\n  </source>\n",
            escape(self.options.dataset.as_str())
        ));
        xml.push_str(&format!(
            "  <size>\n    <width>{}</width>\n    <height>{}</height>\n    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n",
            image.width, image.height
        ));
        for (ann, b) in kept_boxes(
            &mut self.warnings,
            annotations,
            self.options.polygons_as_boxes,
            ("VOC objects", "VOC"),
        ) {
            xml.push_str(&format!(
                "  <object>\n    <name>{}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n    <difficult>0</difficult>\n    <bndbox>\n      <xmin>{}</xmin>\n      <ymin>{}</ymin>\n      <xmax>{}</xmax>\n      <ymax>{}</ymax>\n    </bndbox>\n  </object>\n",
                escape(ann.name.as_str()),
                num(b[0] + 1.0),
                num(b[1] + 1.0),
                num(b[0] + b[2]),
                num(b[1] + b[3]),
            ));
        }
        xml.push_str("</annotation>\n");
        Ok(vec![OutFile::bytes(format!("Annotations/{id}.xml"), xml)])
    }

    fn finish(self: Box<Self>) -> io::Result<Finished> {
        let mut ids = self.ids.into_inner().map_err(|e| e.into_error())?;
        ids.flush()?;
        ids.seek(SeekFrom::Start(0))?;
        Ok(Finished {
            files: vec![OutFile {
                path: IMAGE_SET_PATH.into(),
                body: Body::File(ids),
            }],
            warnings: self.warnings.to_vec(),
        })
    }
}

/// One VOC annotation file, read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VocDoc {
    /// `<filename>`.
    pub filename: Option<String>,
    /// `<size><width>`, `<height>`.
    pub size: Option<(u32, u32)>,
    /// Objects: class name and box `[x, y, w, h]` in 0-based pixel coordinates.
    pub objects: Vec<(String, [f64; 4])>,
    /// How many objects are marked `difficult`, `truncated` and `occluded` (flags a canonical
    /// annotation has no place for), in that order.
    pub flagged: [u64; 3],
}

/// The object flags [`VocDoc::flagged`] counts.
pub const FLAGS: [&str; 3] = ["difficult", "truncated", "occluded"];

/// Parses a VOC annotation XML document.
pub fn parse(xml: &str) -> Result<VocDoc, String> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut doc = VocDoc::default();
    let (mut width, mut height) = (None, None);
    let mut name: Option<String> = None;
    let mut corners: [Option<f64>; 4] = [None; 4];
    let mut flags = [false; 3];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("XML error at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
                if path.len() == 2 && path[1] == "object" {
                    name = None;
                    corners = [None; 4];
                    flags = [false; 3];
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content().map_err(|e| e.to_string())?),
            Event::CData(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                    text.push(c);
                } else {
                    let entity = r.decode().map_err(|e| e.to_string())?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&entity)
                        .ok_or_else(|| format!("unknown entity &{entity};"))?;
                    text.push_str(resolved);
                }
            }
            Event::End(_) => {
                let value = text.trim().to_string();
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                let number = || {
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| format!("<{}> is not a number: {value:?}", p.join("/")))
                };
                match p.as_slice() {
                    ["annotation", "filename"] => doc.filename = Some(value.clone()),
                    ["annotation", "size", "width"] => width = Some(number()? as u32),
                    ["annotation", "size", "height"] => height = Some(number()? as u32),
                    ["annotation", "object", "name"] => name = Some(value.clone()),
                    ["annotation", "object", flag] if FLAGS.contains(flag) => {
                        let i = FLAGS.iter().position(|f| f == flag).unwrap_or(0);
                        // `1` (or `true`) marks it; `0`, empty and anything else do not.
                        flags[i] = value == "1" || value.eq_ignore_ascii_case("true");
                    }
                    ["annotation", "object", "bndbox", corner] => {
                        let i = ["xmin", "ymin", "xmax", "ymax"]
                            .iter()
                            .position(|c| c == corner);
                        if let Some(i) = i {
                            corners[i] = Some(number()?);
                        }
                    }
                    ["annotation", "object"] => {
                        let n = name
                            .take()
                            .filter(|n| !n.is_empty())
                            .ok_or("an <object> has no <name>")?;
                        let [Some(x0), Some(y0), Some(x1), Some(y1)] = corners else {
                            return Err(format!("object {n:?} has no complete <bndbox>"));
                        };
                        for (count, set) in doc.flagged.iter_mut().zip(flags) {
                            *count += u64::from(set);
                        }
                        // 1-based first pixel, inclusive last pixel.
                        doc.objects
                            .push((n, [x0 - 1.0, y0 - 1.0, x1 - x0 + 1.0, y1 - y0 + 1.0]));
                    }
                    _ => {}
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let (Some(w), Some(h)) = (width, height) {
        doc.size = Some((w, h));
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;
    use crate::{canonical, writer, Format};

    #[test]
    fn writes_and_reads_back() {
        let mut w = writer(
            Format::Voc,
            ExportOptions {
                dataset: "a & b".into(),
                classes: vec![],
                polygons_as_boxes: true,
            },
        )
        .unwrap();
        let img = ImageInfo {
            folder: "/x".into(),
            filename: "a<1>.png".into(),
            width: 64,
            height: 48,
            status: "new".into(),
        };
        let anns = vec![
            canonical("1", "car & co", &Shape::Box([1.5, 2.0, 3.0, 4.0]), 1.0),
            canonical(
                "2",
                "road",
                &Shape::Polygon(vec![vec![[0.0, 0.0], [4.0, 0.0], [4.0, 3.0]]]),
                1.0,
            ),
            canonical("3", "nose", &Shape::Keypoint([1.0, 1.0]), 1.0),
        ];
        let place = w.place(&img);
        assert_eq!(place.path, "JPEGImages/x/a<1>.png");
        let files = w.add(&img, &place, &anns).unwrap();
        assert_eq!(files[0].path, "Annotations/x/a<1>.xml");
        let Body::Bytes(b) = &files[0].body else {
            panic!()
        };
        let doc = parse(std::str::from_utf8(b).unwrap()).unwrap();
        assert_eq!(doc.filename.as_deref(), Some("a<1>.png"));
        let text = std::str::from_utf8(b).unwrap();
        assert!(
            text.contains("<xmin>2.5</xmin>") && text.contains("<xmax>4.5</xmax>"),
            "{text}"
        );
        assert_eq!(doc.size, Some((64, 48)));
        assert_eq!(
            doc.objects,
            [
                ("car & co".to_string(), [1.5, 2.0, 3.0, 4.0]),
                ("road".to_string(), [0.0, 0.0, 4.0, 3.0])
            ]
        );
        let done = w.finish().unwrap();
        let codes: Vec<&str> = done.warnings.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["keypoint_dropped", "polygon_as_box"]);
    }

    #[test]
    fn rejects_broken_documents() {
        assert!(parse("<annotation><object><name>a</name></object></annotation>").is_err());
        assert!(parse("<annotation><size><width>x</width></size></annotation>").is_err());
        assert!(parse("<annotation><filename>a</annotation>").is_err());
    }
}
