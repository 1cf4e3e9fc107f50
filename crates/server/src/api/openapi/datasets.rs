//! Datasets, their projects alias, download listings and export jobs, with the signed
//! download of an export's archive.

use super::{
    content_range, error_response, idempotency_key, json_body, json_response, offset_unless_after,
    path_param, query_param, range_not_satisfiable, schema, with_key_errors, Op,
};
use crate::api::Access;
use axum::http::Method;
use serde_json::{json, Map, Value};

/// How the caller's `User-Agent` changes dataset and annotation JSON, for descriptions.
const SHAPE_NOTE: &str = "Callers whose User-Agent is pictograph-python older than 1.69, \
    or who send no User-Agent, get the 1.6 shape; every other caller gets the newer fields too.";

/// The `{dataset}` path parameter: an id or a name.
fn dataset_ref() -> Value {
    path_param(
        "dataset",
        "The dataset's id (UUID) or name. A UUID is looked up as an id first, then as a name. \
         Percent-encode a name as one path segment (`/` as `%2F`).",
    )
}

/// The `{name}` path parameter: a dataset's exact name.
fn dataset_name(what: &str) -> Value {
    path_param(
        "name",
        &format!(
            "The {what}'s exact name (case-sensitive), percent-encoded as one path segment \
             (`/` as `%2F`)."
        ),
    )
}

/// The `limit` query parameter of a page.
fn limit(default: i64, max: i64, what: &str) -> Value {
    query_param(
        "limit",
        &format!(
            "How many {what} to answer: 1 to {max}, {default} by default. A value outside \
             that range is refused (422), not capped."
        ),
        json!({"type": "integer", "minimum": 1, "maximum": max, "default": default}),
    )
}

/// The `offset` query parameter of a page.
fn offset(what: &str) -> Value {
    query_param(
        "offset",
        &format!("How many {what} to skip: 0 or more, 0 by default."),
        json!({"type": "integer", "minimum": 0, "default": 0}),
    )
}

/// A required query parameter.
fn required_query(name: &str, description: &str, schema: Value) -> Value {
    let mut p = query_param(name, description, schema);
    p["required"] = json!(true);
    p
}

/// The query parameters of a single-dataset read.
fn get_options() -> Vec<Value> {
    vec![
        query_param(
            "include_images",
            "Embed a page of the dataset's images (not archived, oldest first) as `images`. \
             False by default.",
            json!({"type": "boolean", "default": false}),
        ),
        query_param(
            "images_limit",
            "With `include_images`: how many images to embed, 1 to 10000, 1000 by default. \
             Ignored without `include_images`.",
            json!({"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}),
        ),
        query_param(
            "images_offset",
            "With `include_images`: how many images to skip first, 0 or more, 0 by default.",
            json!({"type": "integer", "minimum": 0, "default": 0}),
        ),
    ]
}

/// The query parameters of a download listing.
fn download_options() -> Vec<Value> {
    vec![
        query_param(
            "mode",
            "`full` (the default) gives each item both links; `images_only` leaves \
             `annotation_url` null and never embeds annotations; `annotations_only` leaves \
             `image_url` null. Any other value is refused (422).",
            json!({
                "type": "string",
                "enum": ["full", "images_only", "annotations_only"],
                "default": "full",
            }),
        ),
        query_param(
            "status_filter",
            "Only images with this status. Empty or absent: every status.",
            json!({"type": "string", "enum": ["new", "annotate", "review", "complete", ""]}),
        ),
        limit(10_000, 10_000, "images"),
        offset_unless_after(),
        query_param(
            "after",
            "Keyset paging: the id of an image of the dataset; the page starts right after it \
             in listing order. Pass the last id of the previous page to walk a large dataset \
             at the same cost per page, unshifted by images added or removed meanwhile. \
             Echoed as `after`.",
            json!({"type": "string"}),
        ),
        query_param(
            "include_annotations",
            "Embed each image's annotation list as `annotations` (and its annotation \
             `version`), saving one request per image. Ignored in `images_only` mode. False \
             by default.",
            json!({"type": "boolean", "default": false}),
        ),
        query_param(
            "include",
            "Comma-separated extras; the only one is `metadata`, which keeps each embedded \
             annotation's `metadata` object (left out by default). Anything else is refused \
             (422).",
            json!({"type": "string", "enum": ["metadata"]}),
        ),
    ]
}

/// `first` followed by `rest`.
fn with_params(first: Value, rest: Vec<Value>) -> Vec<Value> {
    std::iter::once(first).chain(rest).collect()
}

/// An operation's JSON answer of one dataset under `data`, `dataset` and `project`.
fn one_dataset(description: &str) -> Value {
    json_response(description, schema("DatasetEnvelope"))
}

/// An operation's JSON answer of one project under `data`, `dataset` and `project`.
fn one_project(description: &str) -> Value {
    json_response(description, schema("ProjectEnvelope"))
}

/// This area's operations.
pub(super) fn operations() -> Vec<Op> {
    let mut ops = dataset_operations();
    ops.extend(listing_operations());
    ops.extend(export_operations());
    ops.extend(project_operations());
    ops
}

fn dataset_operations() -> Vec<Op> {
    vec![
        Op {
            method: Method::GET,
            path: "/datasets/",
            route: "/datasets/",
            access: Access::Key,
            operation: json!({
                "operationId": "list_datasets",
                "tags": ["datasets"],
                "summary": "List datasets",
                "description": format!(
                    "One page of the organisation's datasets, oldest first. Also served at \
                     `/datasets` without the trailing slash. The page is answered under both \
                     `datasets` and `data`. {SHAPE_NOTE}"
                ),
                "parameters": [
                    limit(100, 1000, "datasets"),
                    offset("datasets"),
                    query_param(
                        "archived",
                        "List archived datasets instead. This server archives no dataset, \
                         so `true` answers an empty page. False by default.",
                        json!({"type": "boolean", "default": false}),
                    ),
                ],
                "responses": with_key_errors(json!({
                    "200": json_response("A page of datasets.", schema("DatasetList")),
                }), &[422]),
            }),
        },
        Op {
            method: Method::POST,
            path: "/datasets/",
            route: "/datasets/",
            access: Access::Key,
            operation: json!({
                "operationId": "create_dataset",
                "tags": ["datasets"],
                "summary": "Create a dataset",
                "description": format!(
                    "Creates an empty dataset. Also served at `/datasets` without the trailing \
                     slash, and as `POST /projects/`. {SHAPE_NOTE}"
                ),
                "parameters": [idempotency_key()],
                "requestBody": json_body("The new dataset.", schema("DatasetCreate")),
                "responses": with_key_errors(json!({
                    "201": one_dataset("The created dataset."),
                }), &[400, 409, 413, 422, 507]),
            }),
        },
        Op {
            method: Method::GET,
            path: "/datasets/by-name/{name}",
            route: "/datasets/by-name/{name}",
            access: Access::Key,
            operation: json!({
                "operationId": "get_dataset_by_name",
                "tags": ["datasets"],
                "summary": "Get a dataset by name",
                "description": format!(
                    "The dataset of this exact name, optionally with a page of its images. \
                     The 1.6 client's path; `GET /datasets/{{dataset}}` takes a name too. \
                     {SHAPE_NOTE}"
                ),
                "parameters": with_params(dataset_name("dataset"), get_options()),
                "responses": with_key_errors(json!({
                    "200": one_dataset("The dataset."),
                }), &[400, 404, 422]),
            }),
        },
        Op {
            method: Method::GET,
            path: "/datasets/{dataset}",
            route: "/datasets/{dataset}",
            access: Access::Key,
            operation: json!({
                "operationId": "get_dataset",
                "tags": ["datasets"],
                "summary": "Get a dataset by id or name",
                "description": format!(
                    "The dataset, optionally with a page of its images. {SHAPE_NOTE}"
                ),
                "parameters": with_params(dataset_ref(), get_options()),
                "responses": with_key_errors(json!({
                    "200": one_dataset("The dataset."),
                }), &[400, 404, 422]),
            }),
        },
        Op {
            method: Method::PATCH,
            path: "/datasets/{dataset}",
            route: "/datasets/{dataset}",
            access: Access::Key,
            operation: json!({
                "operationId": "update_dataset",
                "tags": ["datasets"],
                "summary": "Update or rename a dataset",
                "description": format!(
                    "Changes only the fields the body holds; `new_name` (or `name`) renames. \
                     An empty body changes nothing and answers the dataset. {SHAPE_NOTE}"
                ),
                "parameters": [dataset_ref(), idempotency_key()],
                "requestBody": json_body("The fields to change.", schema("DatasetPatch")),
                "responses": with_key_errors(json!({
                    "200": one_dataset("The dataset after the change."),
                }), &[400, 404, 409, 413, 422, 507]),
            }),
        },
        Op {
            method: Method::DELETE,
            path: "/datasets/{dataset}",
            route: "/datasets/{dataset}",
            access: Access::Key,
            operation: json!({
                "operationId": "delete_dataset",
                "tags": ["datasets"],
                "summary": "Delete a dataset",
                "description": "Deletes the dataset with its images, annotations and bytes, \
                    for good; its name is free again at once. Needs an admin or owner key. \
                    The answer comes once the images are deleted.",
                "parameters": [dataset_ref()],
                "responses": with_key_errors(json!({
                    "200": json_response("What was deleted.", schema("DatasetDeleted")),
                }), &[400, 403, 404]),
            }),
        },
    ]
}

fn listing_operations() -> Vec<Op> {
    let description = "A page of the dataset's images (not archived, oldest first) with \
        absolute links to fetch them: a signed `image_url` that needs no key and expires, and \
        an `annotation_url` that needs the key. File names are made unique within the page by \
        folding the folder into repeated ones. The page is answered twice: at the top level \
        (the 1.6 client) and under `data` (newer clients). `total` counts the items of this \
        page, not of the dataset; there is no `pagination` block, so page with `offset` until \
        a page is shorter than `limit`.";
    vec![
        Op {
            method: Method::GET,
            path: "/datasets/by-name/{name}/download",
            route: "/datasets/by-name/{name}/download",
            access: Access::Key,
            operation: json!({
                "operationId": "download_dataset_listing_by_name",
                "tags": ["datasets"],
                "summary": "Download listing of a dataset, by name",
                "description": format!("{description} The 1.6 client's path."),
                "parameters": with_params(dataset_name("dataset"), download_options()),
                "responses": with_key_errors(json!({
                    "200": json_response("The listing.", schema("DownloadListing")),
                }), &[400, 404, 422]),
            }),
        },
        Op {
            method: Method::GET,
            path: "/datasets/{dataset}/download",
            route: "/datasets/{dataset}/download",
            access: Access::Key,
            operation: json!({
                "operationId": "download_dataset_listing",
                "tags": ["datasets"],
                "summary": "Download listing of a dataset",
                "description": description,
                "parameters": with_params(dataset_ref(), download_options()),
                "responses": with_key_errors(json!({
                    "200": json_response("The listing.", schema("DownloadListing")),
                }), &[400, 404, 422]),
            }),
        },
    ]
}

fn export_operations() -> Vec<Op> {
    let tar = json!({
        "application/x-tar": {
            "schema": {"type": "string", "format": "binary", "contentMediaType": "application/x-tar"},
        },
    });
    let job_id = || path_param("id", "The export job's id.");
    vec![
        Op {
            method: Method::POST,
            path: "/datasets/{dataset}/exports",
            route: "/datasets/{dataset}/exports",
            access: Access::Key,
            operation: json!({
                "operationId": "create_export_job",
                "tags": ["exports"],
                "summary": "Start an export",
                "description": "Queues a job that writes the dataset's images (not archived) and \
                    annotations into one tar archive in the given format; follow it with `GET \
                    /datasets/{dataset}/exports/{id}` until `state` is `complete`, then fetch \
                    its `download_url`. The same request while an equal job (same format, \
                    status and `polygons_as_boxes`) is queued or running answers that job \
                    instead of starting another. An organisation may have at most 4 jobs \
                    queued or running at once; a fifth is refused (409). Finished jobs and \
                    their archives are kept for a day.",
                "parameters": [dataset_ref(), idempotency_key()],
                "requestBody": json_body("What to export.", schema("ExportCreate")),
                "responses": with_key_errors(json!({
                    "202": json_response("The queued job (or the equal one already queued or \
                        running).", schema("ExportJob")),
                }), &[400, 404, 409, 413, 422, 507]),
            }),
        },
        Op {
            method: Method::GET,
            path: "/datasets/{dataset}/exports",
            route: "/datasets/{dataset}/exports",
            access: Access::Key,
            operation: json!({
                "operationId": "list_export_jobs",
                "tags": ["exports"],
                "summary": "List a dataset's exports",
                "description": "One page of the dataset's export jobs, newest first, under both \
                    `exports` and `data`. Query parameters other than `limit` and `offset` are \
                    refused (422).",
                "parameters": [dataset_ref(), limit(50, 200, "jobs"), offset("jobs")],
                "responses": with_key_errors(json!({
                    "200": json_response("A page of jobs.", schema("ExportJobList")),
                }), &[400, 404, 422]),
            }),
        },
        Op {
            method: Method::GET,
            path: "/datasets/{dataset}/exports/{id}",
            route: "/datasets/{dataset}/exports/{id}",
            access: Access::Key,
            operation: json!({
                "operationId": "get_export_job",
                "tags": ["exports"],
                "summary": "Get an export",
                "description": "The job's state and progress, and once it is complete its \
                    archive and a signed `download_url`, freshly signed on every read.",
                "parameters": [dataset_ref(), job_id()],
                "responses": with_key_errors(json!({
                    "200": json_response("The job.", schema("ExportJob")),
                }), &[400, 404]),
            }),
        },
        Op {
            method: Method::DELETE,
            path: "/datasets/{dataset}/exports/{id}",
            route: "/datasets/{dataset}/exports/{id}",
            access: Access::Key,
            operation: json!({
                "operationId": "delete_export_job",
                "tags": ["exports"],
                "summary": "Cancel or delete an export",
                "description": "A queued or running job is cancelled: the answer is the job, \
                    now `cancelled`, and its task stops within a page of images. A job that \
                    has ended (complete, failed or cancelled) is deleted with its archive: the \
                    answer holds it under `deleted` and `data`, without a `download_url`.",
                "parameters": [dataset_ref(), job_id()],
                "responses": with_key_errors(json!({
                    "200": json_response("The cancelled job, or the deleted one.", json!({
                        "oneOf": [schema("ExportJob"), schema("ExportJobDeleted")],
                    })),
                }), &[400, 404]),
            }),
        },
        Op {
            method: Method::GET,
            path: "/files/exports/{id}",
            route: "/files/exports/{id}",
            access: Access::Signed,
            operation: json!({
                "operationId": "download_export_archive",
                "tags": ["files", "exports"],
                "summary": "Download an export's archive",
                "description": "The tar archive of a complete export job, by the signed \
                    `download_url` of the job; no API key. A download resumes with a single \
                    `Range` (206, or 416 when unsatisfiable); the ETag is the archive's \
                    SHA-256 (the job's `archive.sha256`), and `If-None-Match` with it answers \
                    304.",
                "parameters": [
                    path_param("id", "The export job's id."),
                    required_query(
                        "expires",
                        "When the link stops working, in Unix seconds; part of the signature.",
                        json!({"type": "integer"}),
                    ),
                    required_query(
                        "sig",
                        "The link's signature (hex). An invalid signature or a past \
                         `expires` is refused (403).",
                        json!({"type": "string"}),
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "The archive's bytes.",
                        "headers": archive_headers(false),
                        "content": tar.clone(),
                    },
                    "206": {
                        "description": "The requested byte range of the archive.",
                        "headers": archive_headers(true),
                        "content": tar,
                    },
                    "304": {
                        "description": "The archive's ETag matched `If-None-Match`; no body.",
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                    },
                    "416": range_not_satisfiable(),
                    "403": error_response(403),
                    "404": error_response(404),
                    "422": error_response(422),
                    "500": error_response(500),
                },
            }),
        },
    ]
}

/// The headers of an archive download: whole, or (`partial`) one range of it.
fn archive_headers(partial: bool) -> Value {
    let mut headers = json!({
        "Content-Length": {
            "description": "The bytes sent: the archive's size (the job's `archive.size`), or \
                the range's.",
            "schema": {"type": "integer"},
        },
        "Content-Disposition": {
            "description": "`attachment; filename=\"<dataset>-<format>.tar\"`, with every \
                character of the dataset name other than ASCII letters, digits, `-` and `_` \
                replaced by `_`.",
            "schema": {"type": "string"},
        },
        "ETag": {
            "description": "The archive's SHA-256, quoted.",
            "schema": {"type": "string"},
        },
        "Accept-Ranges": {"schema": {"const": "bytes"}},
    });
    if partial {
        headers["Content-Range"] = content_range(true);
    }
    headers
}

fn project_operations() -> Vec<Op> {
    let note = "Projects are the datasets under the 1.6 client's write paths; they answer the \
        1.6 shape whatever the User-Agent.";
    vec![
        Op {
            method: Method::GET,
            path: "/projects/",
            route: "/projects/",
            access: Access::Key,
            operation: json!({
                "operationId": "list_projects",
                "tags": ["projects"],
                "summary": "List projects",
                "description": format!(
                    "One page of the organisation's datasets, oldest first, under both \
                     `projects` and `data`. Also served at `/projects` without the trailing \
                     slash. {note}"
                ),
                "parameters": [limit(50, 1000, "projects"), offset("projects")],
                "responses": with_key_errors(json!({
                    "200": json_response("A page of projects.", schema("ProjectList")),
                }), &[422]),
            }),
        },
        Op {
            method: Method::POST,
            path: "/projects/",
            route: "/projects/",
            access: Access::Key,
            operation: json!({
                "operationId": "create_project",
                "tags": ["projects"],
                "summary": "Create a project",
                "description": format!(
                    "Creates an empty dataset, as `POST /datasets/` does. Also served at \
                     `/projects` without the trailing slash. {note}"
                ),
                "parameters": [idempotency_key()],
                "requestBody": json_body("The new project.", schema("DatasetCreate")),
                "responses": with_key_errors(json!({
                    "201": one_project("The created project."),
                }), &[400, 409, 413, 422, 507]),
            }),
        },
        Op {
            method: Method::GET,
            path: "/projects/{name}",
            route: "/projects/{name}",
            access: Access::Key,
            operation: json!({
                "operationId": "get_project",
                "tags": ["projects"],
                "summary": "Get a project by name",
                "description": format!("The dataset of this exact name. {note}"),
                "parameters": [dataset_name("project")],
                "responses": with_key_errors(json!({
                    "200": one_project("The project."),
                }), &[400, 404]),
            }),
        },
        Op {
            method: Method::PATCH,
            path: "/projects/{name}",
            route: "/projects/{name}",
            access: Access::Key,
            operation: json!({
                "operationId": "update_project",
                "tags": ["projects"],
                "summary": "Update or rename a project",
                "description": format!(
                    "Changes only the fields the body holds; the body's `name` (or \
                     `new_name`) renames, as the 1.6 client sends it. {note}"
                ),
                "parameters": [dataset_name("project"), idempotency_key()],
                "requestBody": json_body("The fields to change.", schema("DatasetPatch")),
                "responses": with_key_errors(json!({
                    "200": one_project("The project after the change."),
                }), &[400, 404, 409, 413, 422, 507]),
            }),
        },
        Op {
            method: Method::DELETE,
            path: "/projects/{name}",
            route: "/projects/{name}",
            access: Access::Key,
            operation: json!({
                "operationId": "delete_project",
                "tags": ["projects"],
                "summary": "Delete a project",
                "description": "Deletes the dataset with its images, annotations and bytes, \
                    for good, as `DELETE /datasets/{dataset}` does. Needs an admin or owner \
                    key.",
                "parameters": [dataset_name("project")],
                "responses": with_key_errors(json!({
                    "200": json_response("What was deleted.", schema("DatasetDeleted")),
                }), &[400, 403, 404]),
            }),
        },
    ]
}

/// The fields every dataset and project carries.
fn dataset_fields() -> Map<String, Value> {
    let count =
        |description: &str| json!({"type": "integer", "minimum": 0, "description": description});
    let fields = json!({
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string", "description": "Unique within the organisation."},
        "description": {"type": ["string", "null"]},
        "organization_id": {"type": "string"},
        "image_count": count("Images not archived."),
        "completed_image_count": count("Images not archived whose status is `complete`."),
        "status_counts": {
            "type": "object",
            "description": "Images not archived, by status (kept counts, like the others).",
            "properties": {
                "new": count("Status `new`."),
                "annotate": count("Status `annotate`."),
                "review": count("Status `review`."),
                "complete": count("Status `complete`."),
            },
            "required": ["new", "annotate", "review", "complete"],
        },
        "total_size": count("Bytes of the images not archived."),
        "archived_images": count("Archived images."),
        "archived_image_count": count("The same as `archived_images` (newer clients' name)."),
        "annotation_count": count("Annotations on images not archived."),
        "classes": {"type": "array", "items": schema("DatasetClass")},
        "annotation_types": {
            "type": "array",
            "items": {"type": "string", "enum": ["bbox", "box", "polygon", "polyline", "keypoint"]},
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {
            "type": "string",
            "format": "date-time",
            "description": "The last change to the dataset itself (not to its images).",
        },
    });
    object(fields)
}

/// The members of a JSON object (none for any other value).
fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const DATASET_REQUIRED: [&str; 15] = [
    "id",
    "name",
    "description",
    "organization_id",
    "image_count",
    "completed_image_count",
    "status_counts",
    "total_size",
    "archived_images",
    "archived_image_count",
    "annotation_count",
    "classes",
    "annotation_types",
    "created_at",
    "updated_at",
];

/// The list envelope's `pagination` block.
fn pagination() -> Value {
    json!({
        "type": "object",
        "required": ["limit", "offset", "total", "has_more"],
        "properties": {
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "total": {"type": "integer", "description": "Items in all pages."},
            "has_more": {"type": "boolean", "description": "Whether a later page holds more."},
        },
    })
}

/// A page of `item` under `key` and again under `data`, with its total (`what` in all
/// pages), limit and offset, and (`paged`) the `pagination` block.
fn page_of(description: &str, key: &str, item: &str, what: &str, paged: bool) -> Value {
    let mut fields = json!({
        "data": {"type": "array", "items": schema(item), "description": "The same page."},
        "total": {"type": "integer", "description": format!("{what} in all pages.")},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
    });
    fields[key] = json!({"type": "array", "items": schema(item)});
    if paged {
        fields["pagination"] = pagination();
    }
    all_required(description, fields)
}

/// `{"type": "object", …}` with the given fields, each of them required.
fn all_required(description: &str, properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
    })
}

/// A download listing's answer: every key always there but `after`, there when the request
/// had one.
fn download_listing() -> Value {
    let mut listing = all_required(
        "A download listing: the page under `items` and again under `data.items`.",
        json!({
            "data": all_required("The dataset and the page.", json!({
                "id": {"type": "string"},
                "name": {"type": "string"},
                "items": {"type": "array", "items": schema("DownloadImage")},
            })),
            "dataset_id": {"type": "string"},
            "dataset_name": {"type": "string"},
            "items": {"type": "array", "items": schema("DownloadImage")},
            "mode": {"type": "string", "enum": ["full", "images_only", "annotations_only"]},
            "total": {"type": "integer", "description": "Items in this page."},
        }),
    );
    listing["properties"]["after"] = json!({
        "type": "string",
        "description": "The `after` of the request, sent only when it had one.",
    });
    listing
}

/// The schemas this area's operations refer to.
pub(super) fn schemas() -> Vec<(String, Value)> {
    let mut dataset = dataset_fields();
    dataset.extend(object(json!({
            "images": {
                "type": "array",
                "items": schema("DatasetImage"),
                "description": "Only with `include_images=true`: the requested page of images.",
            },
            "readme": {
                "type": ["string", "null"],
                "description": "Newer clients only: the description again.",
            },
            "is_public": {"type": "boolean", "description": "Newer clients only: always false."},
            "is_archived": {"type": "boolean", "description": "Newer clients only: always false."},
            "archived_at": {"type": ["string", "null"], "description": "Newer clients only: always null."},
            "storage_class": {
                "type": "string",
                "enum": ["standard"],
                "description": "Newer clients only: always `standard`.",
            },
        })));
    let one_under_three = |description: &str, item: &str| {
        all_required(
            description,
            json!({"data": schema(item), "dataset": schema(item), "project": schema(item)}),
        )
    };
    let class_input = json!({
        "oneOf": [
            {"type": "string", "description": "A class name alone."},
            {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 120,
                        "description": "Unique in the list; trimmed.",
                    },
                    "type": {"type": ["string", "null"]},
                    "color": {
                        "type": ["string", "null"],
                        "description": "Absent or null: a colour from a fixed palette.",
                    },
                },
            },
        ],
    });
    let types_input = json!({
        "type": ["array", "null"],
        "items": {"type": "string", "enum": ["bbox", "box", "polygon", "polyline", "keypoint"]},
        "description": "The annotation types the dataset uses (`box` is an alias of `bbox`); \
            repeats are dropped.",
    });
    vec![
        (
            "Dataset".into(),
            json!({
                "type": "object",
                "description": format!(
                    "A dataset (the same entity as a project). {SHAPE_NOTE} The newer fields \
                     are `readme`, `is_public`, `is_archived`, `archived_at` and \
                     `storage_class`."
                ),
                "required": DATASET_REQUIRED,
                "properties": dataset,
            }),
        ),
        (
            "Project".into(),
            json!({
                "type": "object",
                "description": "A dataset as the projects paths answer it: the 1.6 shape.",
                "required": DATASET_REQUIRED,
                "properties": dataset_fields(),
            }),
        ),
        (
            "DatasetClass".into(),
            json!({
                "type": "object",
                "description": "One class of a dataset.",
                "required": ["name", "type", "color"],
                "properties": {
                    "name": {"type": "string", "maxLength": 120},
                    "type": {"type": ["string", "null"]},
                    "color": {"type": "string", "description": "Like `#e6194b`."},
                },
            }),
        ),
        (
            "DatasetImage".into(),
            json!({
                "type": "object",
                "description": format!(
                    "An image embedded in a dataset. {SHAPE_NOTE} The newer fields are \
                     `min_confidence` and `split`."
                ),
                "required": [
                    "annotation_count", "annotation_url", "content_type", "created_at",
                    "dataset_id", "directory_path", "display_name", "file_size", "filename",
                    "height", "id", "image_url", "is_archived", "mime_type", "status", "tags",
                    "thumbnail_url", "updated_at", "version", "virtual_folder_path", "width",
                ],
                "properties": {
                    "annotation_count": {"type": "integer", "minimum": 0},
                    "annotation_url": {
                        "type": "string",
                        "description": "Absolute URL of the image's annotations (needs the key).",
                    },
                    "content_type": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "dataset_id": {"type": "string"},
                    "directory_path": {"type": "string", "description": "Its folder, like `/a/b`."},
                    "display_name": {"type": ["string", "null"]},
                    "file_size": {"type": "integer", "minimum": 0},
                    "filename": {"type": "string"},
                    "height": {"type": ["integer", "null"]},
                    "id": {"type": "string"},
                    "image_url": {
                        "type": "string",
                        "description": "Absolute signed URL of the bytes: no key, expires.",
                    },
                    "is_archived": {"type": "boolean"},
                    "mime_type": {"type": "string"},
                    "min_confidence": {
                        "type": ["number", "null"],
                        "description": "Newer clients only: the lowest confidence of its \
                            annotations, null without any.",
                    },
                    "split": {"type": "null", "description": "Newer clients only: always null."},
                    "status": {"type": "string", "enum": ["new", "annotate", "review", "complete"]},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
                    "thumbnail_url": {"type": "null"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "version": {"type": "integer", "description": "Its annotation list's version."},
                    "virtual_folder_path": {"type": "string", "description": "The same as `directory_path`."},
                    "width": {"type": ["integer", "null"]},
                },
            }),
        ),
        (
            "DatasetList".into(),
            page_of(
                "A page of datasets.",
                "datasets",
                "Dataset",
                "Datasets",
                true,
            ),
        ),
        (
            "ProjectList".into(),
            page_of(
                "A page of projects.",
                "projects",
                "Project",
                "Projects",
                false,
            ),
        ),
        (
            "DatasetEnvelope".into(),
            one_under_three(
                "One dataset, the same under each key (each client generation reads another).",
                "Dataset",
            ),
        ),
        (
            "ProjectEnvelope".into(),
            one_under_three(
                "One project, the same under each key (each client generation reads another).",
                "Project",
            ),
        ),
        (
            "DatasetCreate".into(),
            json!({
                "type": "object",
                "description": "A new dataset. Unknown fields are ignored.",
                "required": ["name"],
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "Trimmed; 1 to 200 characters, no control characters; \
                            unique within the organisation (409 otherwise).",
                    },
                    "description": {"type": ["string", "null"]},
                    "readme": {
                        "type": ["string", "null"],
                        "description": "Kept as the description when none is given.",
                    },
                    "annotation_types": {
                        "type": ["array", "null"],
                        "items": types_input["items"].clone(),
                        "description": format!(
                            "{} Absent or null: `[\"bbox\"]`.",
                            types_input["description"].as_str().unwrap_or_default()
                        ),
                    },
                    "classes": {
                        "type": ["array", "null"],
                        "items": class_input.clone(),
                        "description": "The dataset's classes. Absent or null: none.",
                    },
                },
            }),
        ),
        (
            "DatasetPatch".into(),
            json!({
                "type": "object",
                "description": "The fields to change; absent fields (and null ones, but for \
                    `description`) stay as they are. Unknown fields are ignored.",
                "properties": {
                    "new_name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "Renames (newer clients); wins over `name`. Trimmed, 1 to \
                            200 characters, no control characters; a name taken by another \
                            dataset is refused (409).",
                    },
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "Renames (the 1.6 client's key).",
                    },
                    "description": {"type": ["string", "null"], "description": "Null clears it."},
                    "readme": {
                        "type": ["string", "null"],
                        "description": "Sets the description when `description` is absent.",
                    },
                    "annotation_types": types_input,
                    "classes": {
                        "type": ["array", "null"],
                        "items": class_input.clone(),
                        "description": "Replaces the class list; with `classes_base`, edits it \
                            instead.",
                    },
                    "classes_base": {
                        "type": ["array", "null"],
                        "items": class_input,
                        "description": "The class list `classes` was edited from. The edit \
                            (classes removed, added or changed between the two) is applied to \
                            the list stored now, so classes another writer added meanwhile \
                            stay. Needs `classes` (422 otherwise).",
                    },
                },
            }),
        ),
        (
            "DatasetDeletion".into(),
            all_required(
                "What a deletion removed.",
                json!({
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "deleted": {"type": "boolean", "const": true},
                    "images_deleted": {"type": "integer", "description": "Images, archived ones included."},
                    "folders_deleted": {"type": "integer"},
                    "directories_deleted": {"type": "integer", "description": "The same as `folders_deleted`."},
                    "blobs_deleted": {"type": "integer", "description": "Stored files freed now."},
                    "blobs_freed_after_grace": {"type": "integer", "description": "Stored files nothing uses any more but uploaded within the grace period (`blob_grace_secs`): the upkeep sweep frees them once it has passed."},
                    "gcs_blobs_deleted": {"type": "integer", "description": "The same as `blobs_deleted`."},
                    "gcs_blobs_retained_for_forks": {"type": "integer", "description": "Always 0."},
                }),
            ),
        ),
        (
            "DatasetDeleted".into(),
            all_required(
                "A deletion's summary, the same under both keys.",
                json!({"deleted": schema("DatasetDeletion"), "data": schema("DatasetDeletion")}),
            ),
        ),
        ("DownloadListing".into(), download_listing()),
        (
            "DownloadImage".into(),
            json!({
                "type": "object",
                "description": "One image of a download listing.",
                "required": [
                    "annotation_count", "annotation_url", "file_size", "filename", "id",
                    "image_url", "mime_type", "original_filename", "status",
                    "virtual_folder_path",
                ],
                "properties": {
                    "annotation_count": {"type": "integer", "minimum": 0},
                    "annotation_url": {
                        "type": ["string", "null"],
                        "description": "Absolute URL of the image's annotations (needs the \
                            key); null in `images_only` mode.",
                    },
                    "annotations": {
                        "type": "array",
                        "items": schema("DownloadAnnotation"),
                        "description": "Only with `include_annotations=true` (not in \
                            `images_only` mode): the image's annotation list, empty without \
                            any.",
                    },
                    "file_size": {"type": "integer", "minimum": 0},
                    "filename": {
                        "type": "string",
                        "description": "A file name no other item of this page has: a repeated \
                            name gets its folder folded in front (`/a/b` + `x.jpg` → \
                            `a_b_x.jpg`), then a number.",
                    },
                    "id": {"type": "string"},
                    "image_url": {
                        "type": ["string", "null"],
                        "description": "Absolute signed URL of the bytes: no key, expires; null \
                            in `annotations_only` mode.",
                    },
                    "mime_type": {"type": "string"},
                    "original_filename": {"type": "string", "description": "The image's own file name."},
                    "status": {"type": "string", "enum": ["new", "annotate", "review", "complete"]},
                    "version": {
                        "type": "integer",
                        "description": "Only with `annotations`: the list's version.",
                    },
                    "virtual_folder_path": {"type": "string", "description": "Its folder, like `/a/b`."},
                },
            }),
        ),
        (
            "DownloadAnnotation".into(),
            json!({
                "type": "object",
                "description": format!(
                    "One annotation as stored, embedded in a download listing. {SHAPE_NOTE} \
                     The 1.6 shape has no `oriented_box` or `instance_id` and always a list of \
                     `attributes`."
                ),
                "required": ["id", "name", "type", "confidence", "attributes"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string", "description": "Its class."},
                    "type": {"type": "string", "enum": ["bbox", "polygon", "polyline", "keypoint"]},
                    "bounding_box": {
                        "type": "object",
                        "description": "`{x, y, w, h}` in pixels: a bbox's geometry, optional \
                            on other types.",
                    },
                    "polygon": {"type": "object", "description": "`{paths: [[{x, y}, …], …]}`."},
                    "polyline": {"type": "object", "description": "`{path: [{x, y}, …]}`."},
                    "keypoint": {"type": "object", "description": "`{x, y}`."},
                    "confidence": {"type": "number"},
                    "created_by": {"type": "string"},
                    "attributes": {"type": ["array", "object"]},
                    "oriented_box": {"type": "object", "description": "Newer clients only."},
                    "instance_id": {"type": "integer", "description": "Newer clients only."},
                    "metadata": {"type": "object", "description": "Only with `include=metadata`."},
                },
            }),
        ),
        (
            "ExportCreate".into(),
            json!({
                "type": "object",
                "description": "What to export. Unknown fields are refused (422).",
                "required": ["format"],
                "additionalProperties": false,
                "properties": {
                    "format": {
                        "type": "string",
                        "description": "`coco`, `yolo`, `voc` or `pictograph` (lossless JSON \
                            Lines), in any case.",
                        "examples": ["coco", "yolo", "voc", "pictograph"],
                    },
                    "status": {
                        "type": ["string", "null"],
                        "description": "Only images with this status: `new`, `annotate`, \
                            `review` or `complete`. Absent, null or empty: every status.",
                    },
                    "polygons_as_boxes": {
                        "type": "boolean",
                        "default": false,
                        "description": "YOLO and VOC: write polygons as their boxes instead of \
                            dropping them.",
                    },
                },
            }),
        ),
        (
            "ExportJob".into(),
            all_required(
                "An export job.",
                json!({
                    "id": {"type": "string"},
                    "dataset_id": {"type": "string"},
                    "dataset": {"type": "string", "description": "The dataset's name."},
                    "format": {"type": "string", "enum": ["coco", "yolo", "voc", "pictograph"]},
                    "status_filter": {"type": ["string", "null"], "description": "The status exported, or null for all."},
                    "polygons_as_boxes": {"type": "boolean"},
                    "state": {
                        "type": "string",
                        "enum": ["queued", "running", "complete", "failed", "cancelled"],
                    },
                    "images_total": {"type": "integer", "description": "Images to export, known once running."},
                    "images_done": {"type": "integer", "description": "Images written so far."},
                    "annotations": {"type": "integer", "description": "Annotations read so far."},
                    "warnings": {"type": "array", "items": schema("ExportWarning")},
                    "error": {
                        "type": ["string", "null"],
                        "description": "Why it failed, or `cancelled on request`.",
                    },
                    "archive": {
                        "anyOf": [schema("ExportArchive"), {"type": "null"}],
                        "description": "The archive, once complete.",
                    },
                    "download_url": {
                        "type": ["string", "null"],
                        "description": "Once complete: an absolute signed URL of the archive \
                            (`GET /files/exports/{id}`), no key needed, expiring.",
                    },
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                }),
            ),
        ),
        (
            "ExportArchive".into(),
            all_required(
                "A complete export's archive.",
                json!({
                    "format": {"type": "string", "const": "tar"},
                    "size": {"type": "integer", "description": "Bytes."},
                    "sha256": {"type": "string", "description": "Hex SHA-256 of the archive."},
                }),
            ),
        ),
        (
            "ExportWarning".into(),
            all_required(
                "Something the format could not hold (or changed), with how often.",
                json!({
                    "code": {"type": "string", "description": "Stable kind, like `polyline_dropped`."},
                    "count": {"type": "integer"},
                    "message": {"type": "string"},
                }),
            ),
        ),
        (
            "ExportJobList".into(),
            page_of(
                "A page of export jobs, newest first.",
                "exports",
                "ExportJob",
                "Jobs",
                true,
            ),
        ),
        (
            "ExportJobDeleted".into(),
            all_required(
                "A deleted job (its `download_url` null), the same under both keys.",
                json!({"deleted": schema("ExportJob"), "data": schema("ExportJob")}),
            ),
        ),
    ]
}
