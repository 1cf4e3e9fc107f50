//! Uploading many files in batches: one `bulk-upload-url` request signs a batch, each file is
//! PUT to its URL, and one `bulk-register` request turns the batch into images. Three
//! requests per file become one PUT per file plus two per batch.

use crate::client::Client;
use crate::error::Error;
use crate::http::{Req, ReqBody};
use futures::StreamExt;
use pictograph_core::error::ErrorCode;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Files per batch: small enough that progress moves steadily, large enough that the two
/// batch requests cost little per file.
pub(crate) const BATCH: usize = 32;

/// One file to upload.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Local file.
    pub path: PathBuf,
    /// Target virtual folder (normalised).
    pub folder: String,
    /// Target file name.
    pub filename: String,
    /// Its size.
    pub size: u64,
    /// Its MIME type.
    pub content_type: String,
}

/// What became of one file.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Registered now.
    Uploaded,
    /// Its name is taken in its folder; nothing was sent.
    Exists(String),
    /// Anything else, with the reason, and whether trying again may succeed (the network or
    /// the server failed) rather than the file being refused.
    Failed { reason: String, retryable: bool },
}

impl Outcome {
    /// A failure caused by `e`.
    pub(crate) fn failed(e: &Error) -> Outcome {
        Outcome::Failed {
            reason: e.to_string(),
            retryable: e.is_transient(),
        }
    }

    /// A failure that trying again will not change.
    pub(crate) fn refused(reason: String) -> Outcome {
        Outcome::Failed {
            reason,
            retryable: false,
        }
    }

    /// No outcome was recorded for a file (a bug): trying again may do better.
    pub(crate) fn missing() -> Outcome {
        Outcome::Failed {
            reason: "no outcome".into(),
            retryable: true,
        }
    }
}

/// Whether the server has said its storage is full (507 `insufficient_storage`), shared by
/// every batch of one folder upload: from then on the files not yet sent fail at once,
/// instead of each being sent and retried only to meet the same answer.
#[derive(Debug, Default, Clone)]
pub(crate) struct Halt(Arc<OnceLock<String>>);

impl Halt {
    /// Takes note of `e` when it is the server's "storage full".
    fn note(&self, e: &Error) {
        if e.status() == Some(ErrorCode::InsufficientStorage.status()) {
            self.full(e.to_string());
        }
    }

    /// Records that the server's storage is full, for `reason`.
    fn full(&self, reason: String) {
        let _ = self.0.set(reason);
    }

    /// The outcome of a file not sent because the server's storage is full, once it is.
    fn outcome(&self) -> Option<Outcome> {
        self.0.get().map(|reason| Outcome::Failed {
            reason: format!("not sent, the server's storage being full: {reason}"),
            retryable: true,
        })
    }
}

/// Uploads one batch into dataset `dataset_id`, PUTting up to `workers` files at once. Answers
/// one outcome per file, in order. When the batch cannot be signed as a whole (a request
/// error that is not the server's or the network's fault, e.g. a name it refuses), each file
/// is sent on its own so that one bad file does not fail the others.
pub(crate) async fn upload_batch(
    client: &Client,
    dataset_id: &str,
    files: &[Planned],
    skip_existing: bool,
    workers: usize,
    halt: &Halt,
) -> Vec<Outcome> {
    if let Some(outcome) = halt.outcome() {
        return vec![outcome; files.len()];
    }
    let items: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({"filename": f.filename, "directory_path": f.folder,
                   "content_type": f.content_type})
        })
        .collect();
    let req = Req::api(Method::POST, "/images/bulk-upload-url")
        .json(&json!({"dataset": dataset_id, "images": items}));
    let grants = match client.transport.json(req).await {
        Ok(v) => v
            .get("upload_urls")
            .or_else(|| v.pointer("/data/upload_urls"))
            .and_then(Value::as_array)
            .cloned()
            .filter(|g| g.len() == files.len()),
        Err(Error::Validation(_) | Error::Api(_) | Error::NotFound(_)) => None,
        Err(e) => {
            halt.note(&e);
            return files.iter().map(|_| Outcome::failed(&e)).collect();
        }
    };
    let Some(grants) = grants else {
        return one_by_one(client, dataset_id, files, workers, halt).await;
    };

    // PUT every file that is not already there.
    let mut outcomes: Vec<Option<Outcome>> = files.iter().map(|_| None).collect();
    let mut to_put = Vec::new();
    for (i, (file, grant)) in files.iter().zip(&grants).enumerate() {
        let exists = grant.get("exists").and_then(Value::as_bool) == Some(true);
        let max = grant.get("max_size").and_then(Value::as_u64);
        let url = grant.get("upload_url").and_then(Value::as_str);
        let id = grant
            .get("upload_id")
            .or_else(|| grant.get("gcs_path"))
            .and_then(Value::as_str);
        if exists {
            outcomes[i] = Some(Outcome::Exists(format!(
                "an image named '{}' already exists in '{}'",
                file.filename, file.folder
            )));
        } else if let Some(max) = max.filter(|m| file.size > *m) {
            outcomes[i] = Some(Outcome::refused(format!(
                "File is {} bytes; the server accepts at most {max}",
                file.size
            )));
        } else if let (Some(url), Some(id)) = (url, id) {
            let put_type = grant
                .get("content_type")
                .and_then(Value::as_str)
                .unwrap_or(&file.content_type)
                .to_string();
            to_put.push((i, url.to_string(), id.to_string(), put_type));
        } else {
            outcomes[i] = Some(Outcome::refused(
                "the server answered no upload URL for this file".into(),
            ));
        }
    }
    if !skip_existing {
        // Without skipping, a taken name is a failure like any other.
        for o in outcomes.iter_mut() {
            if let Some(Outcome::Exists(reason)) = o {
                *o = Some(Outcome::refused(format!("conflict: {reason}")));
            }
        }
    }
    let mut puts = futures::stream::iter(to_put)
        .map(|(i, url, id, put_type)| {
            let file = &files[i];
            async move {
                let req = Req {
                    method: Method::PUT,
                    url,
                    query: Vec::new(),
                    body: ReqBody::File {
                        path: file.path.clone(),
                        len: file.size,
                        content_type: put_type.clone(),
                    },
                    auth: false,
                    idempotency_key: None,
                    timeout: Some(client.transport.timeout.max(Duration::from_secs(300))),
                    range_from: None,
                };
                let sent = match halt.outcome() {
                    Some(_) => None,
                    None => Some(client.transport.send(&req).await.map(|_| ())),
                };
                (i, id, put_type, sent)
            }
        })
        .buffer_unordered(workers.max(1));
    let mut register = Vec::new();
    while let Some((i, id, put_type, sent)) = puts.next().await {
        match sent {
            Some(Ok(())) => register.push((i, id, put_type)),
            Some(Err(e)) => {
                halt.note(&e);
                outcomes[i] = Some(Outcome::failed(&e));
            }
            None => outcomes[i] = halt.outcome(),
        }
    }
    drop(puts);

    if !register.is_empty() {
        register.sort_by_key(|(i, ..)| *i);
        let items: Vec<Value> = register
            .iter()
            .map(|(i, id, put_type)| {
                let f = &files[*i];
                json!({"upload_id": id, "gcs_path": id, "filename": f.filename,
                       "directory_path": f.folder, "file_size": f.size, "mime_type": put_type})
            })
            .collect();
        let req = Req::api(Method::POST, "/images/bulk-register")
            .json(&json!({"dataset": dataset_id, "images": items}));
        match client.transport.json(req).await {
            Ok(v) => {
                let failed = v
                    .get("failed")
                    .or_else(|| v.pointer("/data/failed"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut by_name: HashMap<(String, String), (String, String)> = HashMap::new();
                for f in failed {
                    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    by_name.insert(
                        (s("directory_path"), s("filename")),
                        (s("code"), s("error")),
                    );
                }
                for (i, ..) in &register {
                    let f = &files[*i];
                    outcomes[*i] = Some(
                        match by_name.remove(&(f.folder.clone(), f.filename.clone())) {
                            None => Outcome::Uploaded,
                            Some((code, msg)) if code == "conflict" && skip_existing => {
                                Outcome::Exists(msg)
                            }
                            Some((code, msg)) => {
                                let wire = ErrorCode::from_wire(&code);
                                if wire == Some(ErrorCode::InsufficientStorage) {
                                    halt.full(msg.clone());
                                }
                                Outcome::Failed {
                                    retryable: wire
                                        .is_some_and(|c| crate::http::retryable(c.status())),
                                    reason: format!("{code}: {msg}"),
                                }
                            }
                        },
                    );
                }
            }
            Err(e) => {
                halt.note(&e);
                for (i, ..) in &register {
                    outcomes[*i] = Some(Outcome::failed(&e));
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(Outcome::missing))
        .collect()
}

/// The batch's files uploaded one request chain each.
async fn one_by_one(
    client: &Client,
    dataset_id: &str,
    files: &[Planned],
    workers: usize,
    halt: &Halt,
) -> Vec<Outcome> {
    let mut out: Vec<(usize, Outcome)> = futures::stream::iter(files.iter().enumerate())
        .map(|(i, f)| async move {
            if let Some(outcome) = halt.outcome() {
                return (i, outcome);
            }
            let options = crate::images::UploadOptions::default()
                .folder_path(f.folder.clone())
                .filename(f.filename.clone())
                .content_type(f.content_type.clone());
            let outcome = match client.images().upload(dataset_id, &f.path, options).await {
                Ok(_) => Outcome::Uploaded,
                Err(Error::Conflict(e)) => Outcome::Exists(e.to_string()),
                Err(e) => {
                    halt.note(&e);
                    Outcome::failed(&e)
                }
            };
            (i, outcome)
        })
        .buffer_unordered(workers.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}
