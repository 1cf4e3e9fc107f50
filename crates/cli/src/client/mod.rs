//! The client commands: `login`, `upload`, `download`, `export`, `import`, `datasets`,
//! `images`, `annotations` and `batch` talk to a Pictograph server through the Rust SDK.
//!
//! Conventions shared by every command:
//! - the connection comes from `--api-key`/`--base-url`, then `PICTOGRAPH_API_KEY`/
//!   `PICTOGRAPH_BASE_URL`, then the file `pictograph login` wrote, then the default URL;
//! - `--json` prints exactly one JSON document on standard output (also for errors:
//!   `{"error": {...}}`), and everything for humans goes to standard error;
//! - errors are one `error: …` line on standard error; API errors carry the HTTP status and
//!   the server's detail. Exit status 2 for usage errors, 1 for every other failure.

pub mod annotations;
pub mod batch;
pub mod config;
pub mod datasets;
pub mod download;
pub mod export;
pub mod exports;
pub mod images;
pub mod import;
pub mod login;
pub(crate) mod progress;
pub mod upload;

use pictograph::Client;
use serde_json::{json, Value};
use std::io::{IsTerminal, Read};

/// Connection and output flags of every client command (accepted after any sub-command).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClientArgs {
    /// API key; overrides PICTOGRAPH_API_KEY and the key saved by `pictograph login`.
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        help_heading = "Client options"
    )]
    pub api_key: Option<String>,
    /// Server URL; overrides PICTOGRAPH_BASE_URL and `pictograph login` [default:
    /// http://127.0.0.1:8080].
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Client options"
    )]
    pub base_url: Option<String>,
    /// Print one machine-readable JSON document on standard output and nothing else there.
    #[arg(long, global = true, help_heading = "Client options")]
    pub json: bool,
}

/// What a client command fails with.
#[derive(Debug)]
pub enum CliError {
    /// The command line or its input is wrong (exit status 2).
    Usage(String),
    /// The input is wrong field by field (exit status 2), found before sending; `--json`
    /// lists the errors as it lists the server's.
    Invalid {
        /// Every error, in one line.
        message: String,
        /// The errors one by one.
        field_errors: Vec<pictograph::FieldError>,
    },
    /// The SDK or the server refused.
    Api(pictograph::Error),
    /// The SDK or the server refused, and the command can tell what would help.
    Hinted(Box<pictograph::Error>, &'static str),
    /// Some items failed; the report (with the failures) was already printed.
    Failed(String),
    /// The SDK or the server refused after part of the work was done: `done` says what in a
    /// line, and `report` in the keys `--json` prints beside `error`.
    Partial {
        /// The error that stopped the command.
        error: Box<pictograph::Error>,
        /// What was done before it, in one line.
        done: String,
        /// What was done before it, as JSON object keys.
        report: Value,
    },
    /// Anything else.
    Other(anyhow::Error),
}

impl From<pictograph::Error> for CliError {
    fn from(e: pictograph::Error) -> Self {
        CliError::Api(e)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Other(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Other(e.into())
    }
}

/// Result of a client command.
pub type CliResult<T = ()> = Result<T, CliError>;

/// A usage error.
pub fn usage<T>(msg: impl Into<String>) -> CliResult<T> {
    Err(CliError::Usage(msg.into()))
}

/// A connected client and the output settings.
pub struct Ctx {
    /// The SDK client.
    pub client: Client,
    /// `--json` was given.
    pub json: bool,
}

impl Ctx {
    /// Resolves the connection settings and builds the SDK client.
    pub fn connect(args: &ClientArgs) -> CliResult<Ctx> {
        let resolved = config::resolve(args)?;
        let Some(api_key) = resolved.api_key else {
            return usage(
                "no API key: pass --api-key, set PICTOGRAPH_API_KEY, or run `pictograph login`",
            );
        };
        let client = Client::builder(api_key)
            .base_url(resolved.base_url.clone())
            .on_retry(progress::retry_line)
            .build()?;
        let _ = BASE_URL.set(client.base_url().to_string());
        Ok(Ctx {
            client,
            json: args.json,
        })
    }
}

/// The server URL of the command, for errors whose answer was not the API's.
static BASE_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Every cause of `e`, outermost first, joined with `: ` (repeats dropped).
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// Field errors in the JSON of an error: `{"loc": "body.annotations.0.name", "msg": …}`.
fn field_errors_json(errors: &[pictograph::FieldError]) -> Vec<Value> {
    errors
        .iter()
        .map(|f| json!({"loc": f.location(), "msg": f.msg}))
        .collect()
}

/// A one-line description of an SDK error and its JSON form.
pub fn describe_sdk(e: &pictograph::Error) -> (String, Value) {
    describe_sdk_hinted(e, false)
}

/// [`describe_sdk`], leaving out the generic advice on a refused key when the command gives
/// its own hint.
fn describe_sdk_hinted(e: &pictograph::Error, hinted: bool) -> (String, Value) {
    use pictograph::Error;
    if let Some(api) = e.api() {
        let reason = reqwest::StatusCode::from_u16(api.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        // A body that is not JSON: likely another server than the one meant, so name it.
        let from = match BASE_URL.get() {
            Some(url) if api.body.is_string() => format!(" from {url}"),
            _ => String::new(),
        };
        let mut msg = format!("HTTP {} {reason}{from}: {}", api.status, api.message);
        for f in e.field_errors() {
            // A message that already says it (a single field's error) gets only its place.
            if api.message.contains(&f.msg) {
                msg.push_str(&format!(" (at {})", f.location()));
            } else {
                msg.push_str(&format!("; {}: {}", f.location(), f.msg));
            }
        }
        if let Some(d) = e.retry_after() {
            msg.push_str(&format!("; retry after {} s", d.as_secs()));
        }
        if let Some(id) = &api.request_id {
            msg.push_str(&format!(" (request id {id})"));
        }
        if api.status == 401 && !hinted {
            msg.push_str(
                "; check the API key (--api-key, PICTOGRAPH_API_KEY or `pictograph login`)",
            );
        }
        let obj = json!({
            "message": msg,
            "status": api.status,
            "detail": api.message,
            "code": api.code,
            "request_id": api.request_id,
            "field_errors": field_errors_json(e.field_errors()),
        });
        return (msg, obj);
    }
    let msg = match e {
        Error::Transport(t) => format!("cannot reach the server: {}", causes(t)),
        other => causes(other),
    };
    let obj = json!({"message": msg, "status": null});
    (msg, obj)
}

/// Ends a client command: prints the error (as JSON on standard output too with `--json`)
/// and turns it into the process's exit status (2 for usage errors, 1 otherwise, printed by
/// `main` as `error: …`).
pub fn finish(json: bool, result: CliResult) -> anyhow::Result<()> {
    let Err(e) = result else {
        return Ok(());
    };
    let (msg, obj, usage) = match &e {
        CliError::Usage(m) => (m.clone(), json!({"message": m, "status": null}), true),
        CliError::Invalid {
            message,
            field_errors,
        } => (
            message.clone(),
            json!({"message": message, "status": null, "field_errors": field_errors_json(field_errors)}),
            true,
        ),
        CliError::Api(
            err @ (pictograph::Error::Config(_) | pictograph::Error::InvalidArgument(_)),
        ) => {
            let (m, o) = describe_sdk(err);
            (m, o, true)
        }
        CliError::Api(err) => {
            let (m, o) = describe_sdk(err);
            (m, o, false)
        }
        CliError::Hinted(err, hint) => {
            let (m, mut o) = describe_sdk_hinted(err, true);
            o["hint"] = json!(hint);
            (format!("{m}; {hint}"), o, false)
        }
        CliError::Failed(m) => (m.clone(), Value::Null, false),
        CliError::Partial {
            error,
            done,
            report,
        } => {
            let (m, o) = describe_sdk(error);
            if json {
                let mut doc = json!({ "error": o });
                if let (Some(doc), Some(report)) = (doc.as_object_mut(), report.as_object()) {
                    doc.extend(report.clone());
                }
                print_json(&doc);
            }
            (format!("{m}; {done}"), Value::Null, false)
        }
        CliError::Other(err) => {
            let m = format!("{err:#}");
            (m.clone(), json!({"message": m, "status": null}), false)
        }
    };
    if json && !obj.is_null() {
        print_json(&json!({ "error": obj }));
    }
    if usage {
        eprintln!("error: {msg}");
        std::process::exit(2);
    }
    Err(anyhow::anyhow!(msg))
}

/// Prints a JSON document on standard output.
pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}

/// A JSON value of anything serializable.
pub fn to_json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("models serialize")
}

/// A name as one line of output: control characters (a newline in a file name, say) are
/// shown escaped, `\n`, so each listed failure stays on its line.
pub fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().any(char::is_control) {
        name.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        name.into()
    }
}

/// `1 image`, `2 images`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints rows as left-aligned columns under a header (on standard output).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(header, rows));
}

/// The lines [`print_table`] prints. Columns are measured in terminal cells, so names in
/// wide scripts (CJK, emoji) line up as well as ASCII ones.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| console::measure_text_width(s);
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut text = String::new();
        for (i, (cell, w)) in cells.into_iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if i + 1 < n {
                text.push_str(&" ".repeat(w.saturating_sub(width(cell)) + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Reads all of standard input, refusing to wait on a terminal.
pub fn read_stdin(what: &str) -> CliResult<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return usage(format!(
            "{what}: give them as arguments or pipe them on standard input"
        ));
    }
    let mut s = String::new();
    stdin
        .lock()
        .read_to_string(&mut s)
        .map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?;
    // A byte order mark (Windows editors and PowerShell write one) is not part of the text.
    Ok(match s.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => s,
    })
}

/// Image ids from the arguments, or (when there are none, or just `-`) from standard input,
/// one per line; blank lines are skipped and repeats dropped.
pub fn read_ids(args: Vec<String>) -> CliResult<Vec<String>> {
    let raw: Vec<String> = if args.is_empty() || args == ["-"] {
        read_stdin("no image ids")?
            .lines()
            .map(str::to_string)
            .collect()
    } else {
        args
    };
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<String> = raw
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .collect();
    if ids.is_empty() {
        return usage("no image ids given (arguments or one per line on standard input)");
    }
    Ok(ids)
}

/// Parses an image id argument for clap: stray whitespace around it (a CRLF line ending of
/// an id pasted or read with `$(…)`, say) is dropped, as `read_ids` drops it from each line.
pub fn parse_id(s: &str) -> Result<String, String> {
    let id = s.trim();
    if id.is_empty() {
        return Err("an image id must not be blank".into());
    }
    Ok(id.to_string())
}

/// Parses a target folder for clap: a blank one (an unset shell variable, say) is refused
/// rather than taken as the root folder.
pub fn parse_target_folder(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the folder must not be blank: use / for the root folder".into());
    }
    Ok(s.to_string())
}

/// Parses a status name for clap.
pub fn parse_status(s: &str) -> Result<pictograph::Status, String> {
    pictograph::Status::parse(&s.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("'{s}' is not a status: use new, annotate, review or complete"))
}

/// What to do about failed files: a re-run retries those the network or the server failed
/// (`retryable` of them), but not those refused (not valid images, too large, names taken
/// without skipping) or unreadable.
pub(crate) fn failure_hint(retryable: usize, refused: usize, no_skip_existing: bool) -> String {
    let rerun = if no_skip_existing {
        "re-run without --no-skip-existing"
    } else {
        "re-run the same command"
    };
    let names = if no_skip_existing {
        " (without --no-skip-existing, names already taken count as skipped)"
    } else {
        ""
    };
    match (retryable, refused) {
        (_, 0) => format!("{rerun} to retry them (images already uploaded are skipped)"),
        (0, _) => format!(
            "the server refused them or they could not be read: fix or remove them, re-running \
             will not help{names}"
        ),
        (r, p) => format!(
            "{r} may succeed if you {rerun} (images already uploaded are skipped); {p} were \
             refused by the server or could not be read: fix or remove them{names}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn table_columns_line_up_in_terminal_cells() {
        let rows = vec![
            vec!["猫の写真".to_string(), "12".to_string()],
            vec!["cats".to_string(), "3".to_string()],
        ];
        assert_eq!(
            table(&["NAME", "IMAGES"], &rows),
            "NAME      IMAGES\n猫の写真  12\ncats      3\n"
        );
    }

    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(600 * 1024 * 1024), "600.0 MiB");
    }

    fn api(status: u16, message: &str, request_id: Option<&str>) -> pictograph::ApiError {
        pictograph::ApiError {
            status,
            message: message.into(),
            code: None,
            request_id: request_id.map(str::to_string),
            body: Box::new(Value::Null),
        }
    }

    #[test]
    fn api_errors_keep_status_and_detail() {
        let e = pictograph::Error::NotFound(pictograph::NotFoundError(api(
            404,
            "Dataset 'x' not found",
            Some("r1"),
        )));
        let (msg, obj) = describe_sdk(&e);
        assert_eq!(
            msg,
            "HTTP 404 Not Found: Dataset 'x' not found (request id r1)"
        );
        assert_eq!(obj["status"], 404);
        let fields: Vec<pictograph::FieldError> = serde_json::from_value(serde_json::json!(
            [{"loc": ["query", "status"], "msg": "bad", "type": "value_error"}]
        ))
        .unwrap();
        let e = pictograph::Error::Validation(pictograph::ValidationError {
            api: api(422, "HTTP 422", None),
            field_errors: fields,
        });
        assert!(describe_sdk(&e).0.contains("query.status: bad"));
        let e = pictograph::Error::Auth(pictograph::AuthError(api(401, "HTTP 401", None)));
        assert!(describe_sdk(&e).0.contains("HTTP 401"));
    }

    #[test]
    fn the_hint_says_whether_a_rerun_helps() {
        let all_transient = failure_hint(3, 0, false);
        assert!(all_transient.starts_with("re-run the same command to retry them"));
        let all_refused = failure_hint(0, 2, false);
        assert!(all_refused.contains("fix or remove them, re-running will not help"));
        assert!(!all_refused.contains("--no-skip-existing"));
        let mixed = failure_hint(1, 2, false);
        assert!(
            mixed.starts_with("1 may succeed if you re-run the same command")
                && mixed.contains("; 2 were refused by the server or could not be read"),
            "{mixed}"
        );
        let conflicts = failure_hint(0, 4, true);
        assert!(conflicts.contains("names already taken count as skipped"));
    }
}
