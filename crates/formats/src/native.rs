//! The "pictograph" format: `dataset.json` (name, classes), `annotations.jsonl` (one line
//! per image: `file` under `images/`, folder, filename, size, status and the canonical
//! annotations exactly as stored) and the images under `images/`. Nothing is lost: an image
//! whose `file` had to be numbered (a file and a folder of one name) keeps its folder and
//! filename.

use crate::{
    place_plain, Body, Classes, ExportOptions, Finished, ImageInfo, Names, OutFile, Placement,
    Warnings, Writer,
};
use serde_json::{json, Value};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// The per-image file.
pub const LINES_PATH: &str = "annotations.jsonl";
/// The dataset file.
pub const DATASET_PATH: &str = "dataset.json";

pub struct NativeWriter {
    options: ExportOptions,
    classes: Classes,
    lines: BufWriter<File>,
    names: Names,
    warnings: Warnings,
}

impl NativeWriter {
    pub fn new(options: ExportOptions) -> io::Result<NativeWriter> {
        Ok(NativeWriter {
            classes: Classes::new(&options.classes),
            options,
            lines: BufWriter::new(tempfile::tempfile()?),
            names: Names::new(None),
            warnings: Warnings::default(),
        })
    }
}

impl Writer for NativeWriter {
    fn place(&mut self, image: &ImageInfo) -> Placement {
        place_plain(&mut self.names, &mut self.warnings, "images", image)
    }

    fn add(
        &mut self,
        image: &ImageInfo,
        place: &Placement,
        annotations: &[Value],
    ) -> io::Result<Vec<OutFile>> {
        for a in annotations {
            if let Some(name) = a.get("name").and_then(Value::as_str) {
                self.classes.id(name);
            }
        }
        serde_json::to_writer(
            &mut self.lines,
            &json!({
                "file": place.rel,
                "folder": image.folder,
                "filename": image.filename,
                "width": image.width,
                "height": image.height,
                "status": image.status,
                "annotations": annotations,
            }),
        )?;
        self.lines.write_all(b"\n")?;
        Ok(Vec::new())
    }

    fn finish(self: Box<Self>) -> io::Result<Finished> {
        let mut lines = self.lines.into_inner().map_err(|e| e.into_error())?;
        lines.flush()?;
        lines.seek(SeekFrom::Start(0))?;
        let dataset = json!({
            "format": "pictograph",
            "version": 1,
            "name": self.options.dataset,
            "classes": self.classes.names,
        });
        Ok(Finished {
            files: vec![
                OutFile::bytes(DATASET_PATH, serde_json::to_vec_pretty(&dataset)?),
                OutFile {
                    path: LINES_PATH.into(),
                    body: Body::File(lines),
                },
            ],
            warnings: self.warnings.to_vec(),
        })
    }
}
