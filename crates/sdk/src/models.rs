//! Response models. Unknown keys are ignored and missing optional keys take their defaults,
//! so newer servers that add fields keep working.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use pictograph_core::names::Status;

/// A class of a dataset's class set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetClass {
    /// Class label (what annotations' `name` must match).
    pub name: String,
    /// Annotation type the class is meant for (`bbox`, `polygon`, ...), if set.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Display colour, e.g. `#e6194b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl DatasetClass {
    /// A class with just a name.
    pub fn new(name: impl Into<String>) -> DatasetClass {
        DatasetClass {
            name: name.into(),
            kind: None,
            color: None,
        }
    }
}

/// A dataset (the read-side name) or project (the write-side name): the same entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// UUID.
    pub id: String,
    /// Name, unique within the organisation (case-sensitive).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Owning organisation.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Non-archived images.
    #[serde(default)]
    pub image_count: u64,
    /// Images whose status is `complete`.
    #[serde(default)]
    pub completed_image_count: u64,
    /// Non-archived images by status (absent from servers that do not keep these counts).
    #[serde(default)]
    pub status_counts: Option<StatusCounts>,
    /// Bytes of the non-archived images.
    #[serde(default)]
    pub total_size: u64,
    /// Archived (soft-deleted) images.
    #[serde(default)]
    pub archived_images: u64,
    /// The class set.
    #[serde(default)]
    pub classes: Vec<DatasetClass>,
    /// Annotation types the project declares.
    #[serde(default)]
    pub annotation_types: Vec<String>,
    /// The embedded page of images, only when asked for with `include_images`.
    #[serde(default)]
    pub images: Option<Vec<Image>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// How many non-archived images of a dataset have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Status `new`.
    pub new: u64,
    /// Status `annotate`.
    pub annotate: u64,
    /// Status `review`.
    pub review: u64,
    /// Status `complete`.
    pub complete: u64,
}

/// The write-side name of a [`Dataset`].
pub type Project = Dataset;

/// An image's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// UUID.
    pub id: String,
    /// File name within its folder.
    pub filename: String,
    /// The dataset it belongs to.
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// Display override, if set.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Lifecycle status: `new`, `annotate`, `review` or `complete` (see [`Image::status_enum`]).
    #[serde(default = "default_status")]
    pub status: String,
    /// Number of annotations.
    #[serde(default)]
    pub annotation_count: u64,
    /// Size of the stored bytes.
    #[serde(default)]
    pub file_size: u64,
    /// Width in pixels, when known.
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in pixels, when known.
    #[serde(default)]
    pub height: Option<u32>,
    /// MIME type of the stored bytes.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Virtual folder, `/` or `/a/b`.
    #[serde(default)]
    pub virtual_folder_path: Option<String>,
    /// Archived (soft-deleted).
    #[serde(default)]
    pub is_archived: bool,
    /// Signed URL of the bytes (no API key needed while it is valid).
    #[serde(default)]
    pub image_url: Option<String>,
    /// Thumbnail URL, if any.
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    /// URL of the annotations (needs the API key).
    #[serde(default)]
    pub annotation_url: Option<String>,
    /// Upload time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

fn default_status() -> String {
    "new".into()
}

impl Image {
    /// The status, if it is one of the four known values.
    pub fn status_enum(&self) -> Option<Status> {
        Status::parse(&self.status)
    }

    /// The virtual folder (`/` when the server did not say).
    pub fn folder(&self) -> &str {
        self.virtual_folder_path.as_deref().unwrap_or("/")
    }
}

/// What deleting a project removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteSummary {
    /// The project's id.
    #[serde(default)]
    pub id: String,
    /// The project's name.
    #[serde(default)]
    pub name: String,
    /// Images removed.
    #[serde(default)]
    pub images_deleted: u64,
    /// Virtual folders removed.
    #[serde(default)]
    pub folders_deleted: u64,
    /// Stored files freed (the hosted service's name for `blobs_deleted`).
    #[serde(default)]
    pub gcs_blobs_deleted: u64,
    /// Stored files freed now.
    #[serde(default)]
    pub blobs_deleted: u64,
    /// Stored files nothing uses any more but uploaded within the server's grace period: its
    /// upkeep sweep frees them once that has passed.
    #[serde(default)]
    pub blobs_freed_after_grace: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tolerates_extra_and_missing_keys() {
        let img: Image = serde_json::from_value(serde_json::json!({
            "id": "i", "filename": "a.jpg", "created_at": "2026-01-02T03:04:05.000001Z",
            "tags": [], "content_type": "image/png", "width": 4, "status": "review"
        }))
        .unwrap();
        assert_eq!(img.status_enum(), Some(Status::Review));
        assert_eq!(img.width, Some(4));
        assert_eq!(img.folder(), "/");
        assert_eq!(img.annotation_count, 0);
    }
}
