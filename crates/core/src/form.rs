//! Upload requests as clients send them: a urlencoded form (1.6.3) or a JSON object (newer
//! clients), read into text fields, then into the fields an upload-URL or register request
//! uses. Names and folders are checked later, by [`crate::names`].

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// A request's fields as text.
pub type Fields = HashMap<String, String>;

/// Why a body could not be read into fields; the message is meant for the API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A urlencoded body that is not UTF-8.
    FormNotUtf8,
    /// A urlencoded body whose percent-escapes decode to invalid UTF-8.
    EscapeNotUtf8,
    /// A body that is not JSON.
    InvalidJson(String),
    /// JSON that is not an object.
    NotAnObject,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::FormNotUtf8 => f.write_str("Form body is not UTF-8"),
            FormError::EscapeNotUtf8 => f.write_str("Form body is not valid UTF-8"),
            FormError::InvalidJson(e) => write!(f, "Invalid JSON body: {e}"),
            FormError::NotAnObject => f.write_str("Request body must be a JSON object"),
        }
    }
}

impl std::error::Error for FormError {}

/// The fields of a body: a form when `content_type` says
/// `application/x-www-form-urlencoded` (any case), else a JSON object.
pub fn fields(content_type: &str, body: &[u8]) -> Result<Fields, FormError> {
    if content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return urlencoded(body);
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| FormError::InvalidJson(e.to_string()))?;
    let obj = v.as_object().ok_or(FormError::NotAnObject)?;
    Ok(text_fields(obj))
}

/// The fields of a JSON object as text: strings as they are, null as empty, anything else
/// as its JSON text.
pub fn text_fields(obj: &Map<String, Value>) -> Fields {
    obj.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// The pairs of a urlencoded form (`+` is a space; the last of repeated keys wins).
pub fn urlencoded(body: &[u8]) -> Result<Fields, FormError> {
    let text = std::str::from_utf8(body).map_err(|_| FormError::FormNotUtf8)?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Result<String, FormError> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| FormError::EscapeNotUtf8)
}

/// The first of `names` present with a non-empty value.
fn first(f: &Fields, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| f.get(*n).filter(|v| !v.is_empty()))
        .cloned()
}

/// What an upload-URL request (or one file of a bulk one) asks for. Empty values count as
/// absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFields {
    /// `dataset_id` (1.6.3).
    pub dataset_id: Option<String>,
    /// `dataset`, a name or an id (newer clients).
    pub dataset: Option<String>,
    /// `filename`; required, so `None` is the caller's error to report.
    pub filename: Option<String>,
    /// The virtual folder.
    pub folder: Option<String>,
    /// `content_type`, or else `mime_type`.
    pub content_type: Option<String>,
}

impl UploadFields {
    /// A single upload-URL request: the folder from `folder_path`, else `directory_path`.
    pub fn single(f: &Fields) -> UploadFields {
        UploadFields {
            dataset_id: first(f, &["dataset_id"]),
            dataset: first(f, &["dataset"]),
            filename: first(f, &["filename"]),
            folder: first(f, &["folder_path", "directory_path"]),
            content_type: first(f, &["content_type", "mime_type"]),
        }
    }

    /// One file of a bulk request: the dataset is the request's, the folder is
    /// `directory_path`, else `folder_path`.
    pub fn bulk_item(f: &Fields) -> UploadFields {
        UploadFields {
            dataset_id: None,
            dataset: None,
            filename: first(f, &["filename"]),
            folder: first(f, &["directory_path", "folder_path"]),
            content_type: first(f, &["content_type", "mime_type"]),
        }
    }
}

/// The storage path prefix the 1.6.3 client echoes back in `gcs_path`.
pub const GCS_PREFIX: &str = "gs://local/";

/// What a register request names. Values are trimmed; empty ones count as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterFields {
    /// The upload, from `gcs_path` or `upload_id`, without the `gs://local/` prefix.
    pub upload_id: Option<String>,
    /// `dataset_id`.
    pub dataset_id: Option<String>,
    /// `dataset`, a name or an id.
    pub dataset: Option<String>,
    /// `filename` (finds the upload when no upload id is given).
    pub filename: Option<String>,
    /// `directory_path`, else `folder_path`.
    pub folder: Option<String>,
    /// `image_width`, else `width`, when a positive integer.
    pub width: Option<i64>,
    /// `image_height`, else `height`, when a positive integer.
    pub height: Option<i64>,
}

impl RegisterFields {
    /// Reads a register request's fields.
    pub fn parse(f: &Fields) -> RegisterFields {
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| f.get(*n).map(|v| v.trim()).filter(|v| !v.is_empty()))
                .map(str::to_string)
        };
        let dim = |names: &[&str]| {
            field(names)
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v > 0)
        };
        RegisterFields {
            upload_id: field(&["gcs_path", "upload_id"])
                .map(|p| p.trim_start_matches(GCS_PREFIX).to_string()),
            dataset_id: field(&["dataset_id"]),
            dataset: field(&["dataset"]),
            filename: field(&["filename"]),
            folder: field(&["directory_path", "folder_path"]),
            width: dim(&["image_width", "width"]),
            height: dim(&["image_height", "height"]),
        }
    }

    /// The dataset the request names, `dataset_id` first.
    pub fn dataset_ref(&self) -> Option<&str> {
        self.dataset_id.as_deref().or(self.dataset.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_and_json_read_alike() {
        let form = fields(
            "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            b"filename=a+b%2F.jpg&image_width=&folder_path=%2Fcars&flag",
        )
        .unwrap();
        assert_eq!(form["filename"], "a b/.jpg");
        assert_eq!(form["image_width"], "");
        assert_eq!(form["flag"], "");
        let json = fields(
            "application/json",
            br#"{"filename": "a.jpg", "image_width": 4, "folder_path": null}"#,
        )
        .unwrap();
        assert_eq!(json["image_width"], "4");
        assert_eq!(json["folder_path"], "");
        assert_eq!(
            fields("application/json", b"[1]"),
            Err(FormError::NotAnObject)
        );
        assert!(matches!(fields("", b"{"), Err(FormError::InvalidJson(_))));
        assert_eq!(
            fields("application/x-www-form-urlencoded", b"a=%FF"),
            Err(FormError::EscapeNotUtf8)
        );
        assert_eq!(
            fields("application/x-www-form-urlencoded", b"a=\xff"),
            Err(FormError::FormNotUtf8)
        );
    }

    #[test]
    fn upload_and_register_fields() {
        let f = text_fields(
            json!({"filename": "a.png", "folder_path": "", "directory_path": "/d",
                "mime_type": "image/png", "dataset": "ds"})
            .as_object()
            .unwrap(),
        );
        let u = UploadFields::single(&f);
        assert_eq!(u.folder.as_deref(), Some("/d"));
        assert_eq!(u.content_type.as_deref(), Some("image/png"));
        assert_eq!(u.dataset.as_deref(), Some("ds"));
        assert_eq!(UploadFields::bulk_item(&f).dataset, None);

        let f = text_fields(
            json!({"gcs_path": " gs://local/abc ", "dataset": "ds", "image_width": "0",
                "width": "7", "image_height": " 5 "})
            .as_object()
            .unwrap(),
        );
        let r = RegisterFields::parse(&f);
        assert_eq!(r.upload_id.as_deref(), Some("abc"));
        assert_eq!(r.dataset_ref(), Some("ds"));
        assert_eq!(r.width, None, "a zero width is unknown");
        assert_eq!(r.height, Some(5));
    }
}
