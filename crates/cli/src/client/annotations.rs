//! `pictograph annotations get|set|delete`: an image's annotation list, in the canonical
//! Pictograph JSON.

use super::{
    count, finish, print_json, print_table, read_stdin, to_json, CliError, CliResult, ClientArgs,
    Ctx,
};
use pictograph::Annotation;
use pictograph::FieldError;
use pictograph_core::annotation::validate_annotations;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Arguments of `pictograph annotations`.
#[derive(clap::Args, Debug)]
pub struct AnnotationsArgs {
    #[command(flatten)]
    conn: ClientArgs,
    #[command(subcommand)]
    cmd: AnnotationsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AnnotationsCommand {
    /// Show an image's annotations (with --json: `{"image_id", "annotations": [...]}`, which
    /// `set` accepts back).
    Get {
        /// Image id.
        #[arg(value_parser = super::parse_id)]
        image_id: String,
    },
    /// Replace an image's annotations with a JSON list (a bare list, or an object with an
    /// `annotations` list) read from a file or standard input. The README's shorthand
    /// (`"bbox": [x, y, w, h]`, `"polygon": [[x, y], ...]`, `"polyline"`, `"keypoint": [x, y]`)
    /// is accepted, and an annotation without an `id` gets a new one.
    Set {
        /// Image id.
        #[arg(value_parser = super::parse_id)]
        image_id: String,
        /// JSON file; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Remove all of an image's annotations.
    Delete {
        /// Image id.
        #[arg(value_parser = super::parse_id)]
        image_id: String,
    },
}

/// Runs `pictograph annotations …`.
pub async fn run(args: AnnotationsArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, annotations(args).await)
}

/// Parses an annotation document (a bare list or `{"annotations": [...]}`) into the list the
/// server will store: the shorthand of the API's README (`"bbox": [x, y, w, h]`,
/// `"polygon": [[x, y], ...]`, ...) becomes the canonical form, an annotation without an `id`
/// gets a new one, and every mistake is reported at once, before anything is sent.
fn parse(text: &str, source: &str) -> CliResult<Vec<Annotation>> {
    let bad = |m: String| CliError::Usage(format!("{source}: {m}"));
    // A file saved with a byte order mark (as Windows editors do) is JSON all the same.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let mut list = match v {
        Value::Array(_) => v,
        Value::Object(mut o) => match o.remove("annotations") {
            Some(l @ Value::Array(_)) => l,
            Some(Value::Null) => Value::Array(Vec::new()),
            _ => {
                return Err(bad(
                    "expected a list of annotations or an object with an \"annotations\" list"
                        .into(),
                ))
            }
        },
        _ => {
            return Err(bad(
                "expected a list of annotations or an object with an \"annotations\" list".into(),
            ))
        }
    };
    for a in list.as_array_mut().into_iter().flatten() {
        if let Some(o) = a.as_object_mut() {
            if o.get("id").is_none_or(Value::is_null) {
                o.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
            }
        }
    }
    let canonical = validate_annotations(&list, None).map_err(|errors| {
        let described: Vec<String> = errors.iter().map(describe).collect();
        CliError::Invalid {
            message: format!("{source}: {}", described.join("; ")),
            field_errors: errors,
        }
    })?;
    canonical
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_value::<Annotation>(a).map_err(|e| bad(format!("annotation {i}: {e}")))
        })
        .collect()
}

/// One validation error, as "annotation N: field.path: message".
fn describe(e: &FieldError) -> String {
    // The location reads `body.annotations.N[.field.path]`.
    let location = e.location();
    let mut parts = location.splitn(4, '.').skip(2);
    match (parts.next(), parts.next()) {
        (Some(i), Some(path)) => format!("annotation {i}: {path}: {}", e.msg),
        (Some(i), None) => format!("annotation {i}: {}", e.msg),
        _ => e.msg.clone(),
    }
}

fn geometry(a: &Annotation) -> String {
    match a {
        Annotation::BBox {
            bounding_box: b, ..
        } => {
            format!("x={} y={} w={} h={}", b.x, b.y, b.w, b.h)
        }
        Annotation::Polygon { polygon, .. } => {
            let points: usize = polygon.paths.iter().map(Vec::len).sum();
            format!("{} ring(s), {points} points", polygon.paths.len())
        }
        Annotation::Polyline { polyline, .. } => format!("{} points", polyline.path.len()),
        Annotation::Keypoint { keypoint: p, .. } => format!("x={} y={}", p.x, p.y),
    }
}

async fn annotations(args: AnnotationsArgs) -> CliResult {
    match args.cmd {
        AnnotationsCommand::Get { image_id } => {
            let ctx = Ctx::connect(&args.conn)?;
            let list = ctx.client.annotations().get(&image_id).await?;
            if ctx.json {
                print_json(&json!({"image_id": image_id, "annotations": to_json(&list)}));
            } else if list.is_empty() {
                println!("Image {image_id} has no annotations");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.id().to_string(),
                            a.kind().to_string(),
                            a.name().to_string(),
                            format!("{:.2}", a.confidence()),
                            geometry(a),
                        ]
                    })
                    .collect();
                print_table(&["ID", "TYPE", "NAME", "CONFIDENCE", "GEOMETRY"], &rows);
            }
        }
        AnnotationsCommand::Set { image_id, file } => {
            // Read and check the input before connecting: a bad file never reaches the server.
            let (text, source) = match file {
                Some(p) if p.as_os_str() != "-" => (
                    std::fs::read_to_string(&p)
                        .map_err(|e| CliError::Usage(format!("reading {}: {e}", p.display())))?,
                    p.display().to_string(),
                ),
                _ => (read_stdin("no annotations")?, "standard input".to_string()),
            };
            let list = parse(&text, &source)?;
            let ctx = Ctx::connect(&args.conn)?;
            let r = ctx.client.annotations().save(&image_id, &list).await?;
            if ctx.json {
                print_json(&json!({ "saved": to_json(&r) }));
            } else {
                println!(
                    "Saved {} on image {} (previously {}); status {}",
                    count(r.new_count as usize, "annotation", "annotations"),
                    r.image_id,
                    r.previous_count,
                    r.status
                );
            }
        }
        AnnotationsCommand::Delete { image_id } => {
            let ctx = Ctx::connect(&args.conn)?;
            let r = ctx.client.annotations().delete(&image_id).await?;
            if ctx.json {
                print_json(&json!({ "deleted": to_json(&r) }));
            } else {
                println!(
                    "Deleted {} from image {}",
                    count(r.deleted_count as usize, "annotation", "annotations"),
                    r.image_id
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_bare_list_or_an_object() {
        let one =
            r#"{"type":"bbox","id":"a","name":"car","bounding_box":{"x":1,"y":2,"w":3,"h":4}}"#;
        assert_eq!(parse(&format!("[{one}]"), "f").unwrap().len(), 1);
        assert_eq!(
            parse(
                &format!(
                    r#"{{"image_id":"x","annotations":[{one},{}]}}"#,
                    one.replace(r#""id":"a""#, r#""id":"b""#)
                ),
                "f"
            )
            .unwrap()
            .len(),
            2
        );
        assert!(parse("[]", "f").unwrap().is_empty());
        assert!(parse("\u{feff}[]\r\n", "f").unwrap().is_empty());
        assert!(matches!(parse("{}", "f"), Err(CliError::Usage(_))));
        assert!(matches!(parse("nope", "f"), Err(CliError::Usage(_))));
        let e = parse(r#"[{"type":"circle","id":"a","name":"x"}]"#, "in.json");
        assert!(
            matches!(e, Err(CliError::Invalid { message: m, .. }) if m.starts_with("in.json: annotation 0"))
        );
    }

    #[test]
    fn the_readme_shorthand_becomes_canonical_and_missing_ids_are_made() {
        let list = parse(
            r#"[{"id":"b","name":"person","type":"bbox","bbox":[100,200,50,80]},
                {"name":"car","type":"polygon","polygon":[[10,20],[30,40],[50,60]]},
                {"id":null,"name":"road","type":"polyline","polyline":[[0,100],[50,100]]},
                {"id":"k","name":"nose","type":"keypoint","keypoint":[150,200]}]"#,
            "f",
        )
        .unwrap();
        let v = to_json(&list);
        assert_eq!(
            v[0]["bounding_box"],
            json!({"x": 100.0, "y": 200.0, "w": 50.0, "h": 80.0})
        );
        assert_eq!(v[0]["id"], "b");
        assert_eq!(v[1]["polygon"]["paths"][0].as_array().unwrap().len(), 3);
        assert_eq!(v[2]["polyline"]["path"][1], json!({"x": 50.0, "y": 100.0}));
        assert_eq!(v[3]["keypoint"], json!({"x": 150.0, "y": 200.0}));
        for made in [&v[1]["id"], &v[2]["id"]] {
            let made = made.as_str().unwrap();
            assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
        }
        assert_ne!(v[1]["id"], v[2]["id"]);
    }

    #[test]
    fn every_mistake_is_reported_with_its_annotation_and_field() {
        let e = parse(
            r#"[{"id":"a","name":"cat","type":"bbox","bbox":[1,2,-10,10]},
                {"id":"","type":"bbox","bounding_box":{"x":0,"y":0,"w":1,"h":1}}]"#,
            "in.json",
        );
        let Err(CliError::Invalid {
            message: m,
            field_errors,
        }) = e
        else {
            panic!("expected an invalid input error, got {e:?}")
        };
        assert!(m.starts_with("in.json: annotation 0: bbox.2: "), "{m}");
        assert!(m.contains("; annotation 1: id: "), "{m}");
        assert!(m.contains("; annotation 1: name: field required"), "{m}");
        let locs: Vec<String> = field_errors.iter().map(FieldError::location).collect();
        assert!(
            locs.iter().any(|l| l == "body.annotations.0.bbox.2"),
            "{locs:?}"
        );
        assert!(
            locs.iter().any(|l| l == "body.annotations.1.name"),
            "{locs:?}"
        );
    }
}
