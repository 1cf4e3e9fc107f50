//! The write paths of datasets: `client.projects()`.

use crate::client::Client;
use crate::error::Result;
use crate::http::{field, segment, Req};
use crate::models::{DatasetClass, DeleteSummary, Project};
use crate::pager::Pager;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

/// Optional fields of a new project.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateProject {
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Annotation types: `bbox`, `polygon`, `polyline`, `keypoint` (server default `["bbox"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_types: Option<Vec<String>>,
    /// The class set; when non-empty, annotations must use these names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<DatasetClass>>,
}

impl CreateProject {
    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Sets the annotation types.
    pub fn annotation_types<S: Into<String>>(mut self, t: impl IntoIterator<Item = S>) -> Self {
        self.annotation_types = Some(t.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the classes.
    pub fn classes(mut self, c: Vec<DatasetClass>) -> Self {
        self.classes = Some(c);
        self
    }
}

/// Fields to change on a project; unset fields are left alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateProject {
    /// Renames the project.
    #[serde(rename = "name", skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New annotation types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_types: Option<Vec<String>>,
    /// Replaces the whole class set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<DatasetClass>>,
}

impl UpdateProject {
    /// Renames.
    pub fn new_name(mut self, n: impl Into<String>) -> Self {
        self.new_name = Some(n.into());
        self
    }

    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Sets the annotation types.
    pub fn annotation_types<S: Into<String>>(mut self, t: impl IntoIterator<Item = S>) -> Self {
        self.annotation_types = Some(t.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the classes.
    pub fn classes(mut self, c: Vec<DatasetClass>) -> Self {
        self.classes = Some(c);
        self
    }
}

/// The projects resource.
#[derive(Debug, Clone)]
pub struct Projects {
    client: Client,
}

impl Projects {
    pub(crate) fn new(client: Client) -> Projects {
        Projects { client }
    }

    fn path(name: &str) -> String {
        format!("/projects/{}", segment(name))
    }

    /// Creates a project. [`crate::Error::Conflict`] when the name is taken.
    pub async fn create(&self, name: &str, options: CreateProject) -> Result<Project> {
        let mut body = serde_json::to_value(&options).unwrap_or_default();
        body["name"] = Value::from(name);
        let v = self
            .client
            .transport
            .json(Req::api(Method::POST, "/projects/").json(&body))
            .await?;
        field(v, &["project", "data", "dataset"])
    }

    /// Changes a project; an update that changes nothing is refused locally.
    pub async fn update(&self, name: &str, changes: UpdateProject) -> Result<Project> {
        let body = serde_json::to_value(&changes).unwrap_or_default();
        if body.as_object().is_none_or(|o| o.is_empty()) {
            return Err(crate::Error::InvalidArgument(
                "update has no field to change".into(),
            ));
        }
        let v = self
            .client
            .transport
            .json(Req::api(Method::PATCH, &Self::path(name)).json(&body))
            .await?;
        field(v, &["project", "data", "dataset"])
    }

    /// Deletes a project with all its images (admin role or higher).
    pub async fn delete(&self, name: &str) -> Result<DeleteSummary> {
        let v = self
            .client
            .transport
            .json(Req::api(Method::DELETE, &Self::path(name)))
            .await?;
        field(v, &["deleted", "data"])
    }

    /// A project by name. [`crate::Error::NotFound`] when missing.
    pub async fn get(&self, name: &str) -> Result<Project> {
        let v = self
            .client
            .transport
            .json(Req::api(Method::GET, &Self::path(name)))
            .await?;
        field(v, &["project", "data", "dataset"])
    }

    /// One page of projects: up to `limit` (server cap 1000; 0 answers an empty list
    /// without a request) starting at `offset`, oldest first.
    pub async fn list(&self, limit: usize, offset: usize) -> Result<Vec<Project>> {
        list_page(&self.client, "/projects/", "projects", limit, offset).await
    }

    /// Every project, oldest first, a page of `page_size` (default 50, at most 1000) at a
    /// time.
    pub fn iter(&self) -> Pager<Project> {
        let client = self.client.clone();
        Pager::new(50, LIST_CAP, move |offset, limit| {
            let client = client.clone();
            Box::pin(
                async move { list_page(&client, "/projects/", "projects", limit, offset).await },
            )
        })
    }
}

/// Largest page the server serves of datasets and projects.
pub(crate) const LIST_CAP: usize = 1000;

/// One page of a list endpoint, read from `key` (or `data`). A `limit` of 0 answers an
/// empty page without asking the server (which serves 1 to [`LIST_CAP`] per page).
pub(crate) async fn list_page<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    key: &str,
    limit: usize,
    offset: usize,
) -> Result<Vec<T>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut req = Req::api(Method::GET, path).query("limit", limit);
    if offset > 0 {
        req = req.query("offset", offset);
    }
    let v = client.transport.json(req).await?;
    match v.get(key).or_else(|| v.get("data")) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => field(v, &[key, "data"]),
    }
}
