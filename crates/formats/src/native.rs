//! The "pictograph" format: `dataset.json` (name, classes), `annotations.jsonl` (one line
//! per image: `file` under `images/`, folder, filename, size, status and the canonical
//! annotations exactly as stored) and the images under `images/`. Nothing is lost.

use crate::{Body, Classes, ExportOptions, Finished, ImageInfo, OutFile, Writer};
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
}

impl NativeWriter {
    pub fn new(options: ExportOptions) -> io::Result<NativeWriter> {
        Ok(NativeWriter {
            classes: Classes::new(&options.classes),
            options,
            lines: BufWriter::new(tempfile::tempfile()?),
        })
    }
}

impl Writer for NativeWriter {
    fn image_path(&self, image: &ImageInfo) -> String {
        format!("images/{}", image.rel_path())
    }

    fn add(&mut self, image: &ImageInfo, annotations: &[Value]) -> io::Result<Vec<OutFile>> {
        for a in annotations {
            if let Some(name) = a.get("name").and_then(Value::as_str) {
                self.classes.id(name);
            }
        }
        serde_json::to_writer(
            &mut self.lines,
            &json!({
                "file": image.rel_path(),
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
            warnings: Vec::new(),
        })
    }
}
