//! Bulk operations on many images of one dataset in one request: `client.batch()`.
//!
//! Partial success does not fail the call: the [`BatchResult`] lists what succeeded and why
//! each other id failed. The call fails with [`crate::Error::NotFound`] when the dataset is
//! missing or every id is unknown.

use crate::client::Client;
use crate::error::Result;
use crate::http::Req;
use crate::models::Status;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One id the operation did not apply to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchFailure {
    /// The image id.
    pub image_id: String,
    /// Why.
    pub reason: String,
}

/// The outcome of a batch operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// Ids the operation completed for.
    pub succeeded: Vec<String>,
    /// Ids it did not, with reasons.
    pub failures: Vec<BatchFailure>,
    /// Count that landed (as the server reports it).
    pub processed: u64,
    /// Virtual folders touched (sources and target).
    pub affected_folders: Vec<String>,
}

impl BatchResult {
    /// `failures.len()`.
    pub fn failed_count(&self) -> usize {
        self.failures.len()
    }

    /// No id failed.
    pub fn success(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    succeeded: Option<Vec<String>>,
    #[serde(default)]
    failures: Option<Vec<BatchFailure>>,
    #[serde(default)]
    failed: Vec<RawFailed>,
    #[serde(default)]
    processed: u64,
    #[serde(default)]
    affected_folders: Vec<String>,
}

#[derive(Deserialize)]
struct RawFailed {
    id: String,
    #[serde(default)]
    reason: String,
}

impl From<Raw> for BatchResult {
    fn from(r: Raw) -> BatchResult {
        let failures = r.failures.unwrap_or_else(|| {
            r.failed
                .into_iter()
                .map(|f| BatchFailure {
                    image_id: f.id,
                    reason: f.reason,
                })
                .collect()
        });
        BatchResult {
            succeeded: r.succeeded.unwrap_or_default(),
            processed: r.processed,
            affected_folders: r.affected_folders,
            failures,
        }
    }
}

/// What to do when a copy's name is taken in the target folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateHandling {
    /// Append `-2`, `-3`, ... to the copy's name.
    #[default]
    Rename,
    /// Leave the existing image; the source is reported as failed.
    Skip,
    /// Replace the existing image, deleting it for good (needs an admin or owner key).
    Overwrite,
}

impl DuplicateHandling {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateHandling::Rename => "rename",
            DuplicateHandling::Skip => "skip",
            DuplicateHandling::Overwrite => "overwrite",
        }
    }
}

/// Options of [`Batch::copy`].
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Destination folder. Default `/`.
    pub target_folder_path: String,
    /// Name collision policy. Default rename.
    pub duplicate_handling: DuplicateHandling,
    /// Copy annotations and status too. Default false.
    pub copy_annotations: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            target_folder_path: "/".into(),
            duplicate_handling: DuplicateHandling::Rename,
            copy_annotations: false,
        }
    }
}

impl CopyOptions {
    /// Copies into `folder`.
    pub fn to(folder: impl Into<String>) -> Self {
        CopyOptions {
            target_folder_path: folder.into(),
            ..CopyOptions::default()
        }
    }

    /// Sets the collision policy.
    pub fn duplicate_handling(mut self, d: DuplicateHandling) -> Self {
        self.duplicate_handling = d;
        self
    }

    /// Copies annotations and status too.
    pub fn copy_annotations(mut self, yes: bool) -> Self {
        self.copy_annotations = yes;
        self
    }
}

/// Fields [`Batch::update`] sets; unset fields are not sent. At least one must be set, or
/// the server answers [`crate::Error::Validation`].
#[derive(Debug, Clone, Default)]
pub struct ImageUpdate {
    /// New lifecycle status.
    pub status: Option<Status>,
    /// Display override.
    pub display_name: Option<String>,
    /// `true` archives, `false` restores.
    pub is_archived: Option<bool>,
}

impl ImageUpdate {
    /// Sets the status.
    pub fn status(mut self, s: Status) -> Self {
        self.status = Some(s);
        self
    }

    /// Sets the display name.
    pub fn display_name(mut self, n: impl Into<String>) -> Self {
        self.display_name = Some(n.into());
        self
    }

    /// Archives or restores.
    pub fn is_archived(mut self, a: bool) -> Self {
        self.is_archived = Some(a);
        self
    }
}

/// The batch resource.
#[derive(Debug, Clone)]
pub struct Batch {
    client: Client,
}

impl Batch {
    pub(crate) fn new(client: Client) -> Batch {
        Batch { client }
    }

    async fn run(&self, method: Method, op: &str, body: Value) -> Result<BatchResult> {
        let req = Req::api(method, &format!("/batch/images/{op}")).json(&body);
        let raw: Raw = self.client.transport.parse(req).await?;
        Ok(raw.into())
    }

    /// Moves images to another virtual folder of the same dataset (bytes do not move).
    pub async fn move_images<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        target_folder_path: &str,
    ) -> Result<BatchResult> {
        let body = json!({
            "dataset_name": dataset_name,
            "image_ids": ids(image_ids),
            "target_folder_path": target_folder_path,
        });
        self.run(Method::POST, "move", body).await
    }

    /// Copies images into a folder (server-side, no bytes transferred).
    pub async fn copy<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        options: CopyOptions,
    ) -> Result<BatchResult> {
        let body = json!({
            "dataset_name": dataset_name,
            "image_ids": ids(image_ids),
            "target_folder_path": options.target_folder_path,
            "duplicate_handling": options.duplicate_handling.as_str(),
            "copy_annotations": options.copy_annotations,
        });
        self.run(Method::POST, "copy", body).await
    }

    /// Archives images, or with `permanent` removes them and their bytes (admin role or higher).
    pub async fn delete<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        permanent: bool,
    ) -> Result<BatchResult> {
        let body = json!({
            "dataset_name": dataset_name,
            "image_ids": ids(image_ids),
            "permanent": permanent,
        });
        self.run(Method::POST, "delete", body).await
    }

    /// Sets fields on images.
    pub async fn update<S: AsRef<str>>(
        &self,
        dataset_name: &str,
        image_ids: &[S],
        update: ImageUpdate,
    ) -> Result<BatchResult> {
        let mut updates = Map::new();
        if let Some(s) = update.status {
            updates.insert("status".into(), s.as_str().into());
        }
        if let Some(n) = update.display_name {
            updates.insert("display_name".into(), n.into());
        }
        if let Some(a) = update.is_archived {
            updates.insert("is_archived".into(), a.into());
        }
        let body = json!({
            "dataset_name": dataset_name,
            "image_ids": ids(image_ids),
            "updates": updates,
        });
        self.run(Method::PATCH, "update", body).await
    }
}

fn ids<S: AsRef<str>>(ids: &[S]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_result_shapes() {
        let new: Raw = serde_json::from_value(json!({
            "success": false, "processed": 1, "succeeded": ["a"],
            "failed": [{"id": "b", "reason": "x"}], "failures": [{"image_id": "b", "reason": "x"}],
            "failed_count": 1, "affected_folders": ["/"]
        }))
        .unwrap();
        let old: Raw = serde_json::from_value(json!({
            "success": false, "processed": 1, "failed": [{"id": "b", "reason": "x"}]
        }))
        .unwrap();
        let (new, old) = (BatchResult::from(new), BatchResult::from(old));
        assert_eq!(new.failures, old.failures);
        assert_eq!(new.failed_count(), 1);
        assert!(!new.success());
        assert_eq!(new.succeeded, vec!["a"]);
    }
}
