//! `pictograph annotations get|set|delete`: an image's annotation list, in the canonical
//! Pictograph JSON.

use super::{
    finish, print_json, print_table, read_stdin, to_json, CliError, CliResult, ClientArgs, Ctx,
};
use pictograph::Annotation;
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
        image_id: String,
    },
    /// Replace an image's annotations with a JSON list (a bare list, or an object with an
    /// `annotations` list) read from a file or standard input.
    Set {
        /// Image id.
        image_id: String,
        /// JSON file; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Remove all of an image's annotations.
    Delete {
        /// Image id.
        image_id: String,
    },
}

/// Runs `pictograph annotations …`.
pub async fn run(args: AnnotationsArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, annotations(args).await)
}

/// Parses an annotation document: a bare list or `{"annotations": [...]}`.
fn parse(text: &str, source: &str) -> CliResult<Vec<Annotation>> {
    let bad = |m: String| CliError::Usage(format!("{source}: {m}"));
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let list = match v {
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
    let items = list.as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_value::<Annotation>(a).map_err(|e| bad(format!("annotation {i}: {e}")))
        })
        .collect()
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
                    "Saved {} annotations on image {} (previously {}); status {}",
                    r.new_count, r.image_id, r.previous_count, r.status
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
                    "Deleted {} annotations from image {}",
                    r.deleted_count, r.image_id
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
                &format!(r#"{{"image_id":"x","annotations":[{one},{one}]}}"#),
                "f"
            )
            .unwrap()
            .len(),
            2
        );
        assert!(parse("[]", "f").unwrap().is_empty());
        assert!(matches!(parse("{}", "f"), Err(CliError::Usage(_))));
        assert!(matches!(parse("nope", "f"), Err(CliError::Usage(_))));
        let e = parse(r#"[{"type":"circle","id":"a","name":"x"}]"#, "in.json");
        assert!(matches!(e, Err(CliError::Usage(m)) if m.starts_with("in.json: annotation 0")));
    }
}
