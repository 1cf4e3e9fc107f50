//! Images: the listing, uploads (signed URL, PUT, register, one or in bulk), one image's
//! metadata, bytes and delete by id or by dataset and path, and the signed byte routes.

use super::{
    content_range, error_response, idempotency_key, json_body, json_response, offset_unless_after,
    path_param, query_param, range_not_satisfiable, schema, with_key_errors, Op,
};
use crate::api::Access;
use crate::services::uploads::MAX_BULK;
use axum::http::Method;
use pictograph_core::names::{self, Status};
use serde_json::{json, Value};

/// The route that serves every per-image path.
const ANY_IMAGE: &str = "/images/{*image}";

/// The types an image is served as (a HEIC upload is stored as PNG).
const SERVED_TYPES: [&str; 6] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/webp",
];

/// The types an upload may be signed for and PUT as.
const UPLOAD_TYPES: [&str; 7] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/webp",
    "image/heic",
];

/// This area's operations.
pub(super) fn operations() -> Vec<Op> {
    let mut ops = vec![list_images()];
    ops.extend(upload_operations());
    ops.extend(image_operations());
    ops.extend(file_operations());
    ops
}

/// The schemas this area's operations refer to.
pub(super) fn schemas() -> Vec<(String, Value)> {
    let mut all = image_schemas();
    all.extend(upload_schemas());
    all.extend(bulk_schemas());
    all.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn status_values() -> Vec<&'static str> {
    Status::ALL.iter().map(|s| s.as_str()).collect()
}

/// Raw bytes.
fn binary() -> Value {
    json!({"type": "string", "format": "binary"})
}

/// A header parameter of a request.
fn header_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": false,
        "description": description,
        "schema": {"type": "string"},
    })
}

/// A required query parameter.
fn required_query(name: &str, description: &str, schema: Value) -> Value {
    let mut p = query_param(name, description, schema);
    p["required"] = json!(true);
    p
}

/// The `expires` and `sig` of a signed URL.
fn signature_params() -> [Value; 2] {
    [
        required_query(
            "expires",
            "Unix time (seconds) until which the URL is valid, as the server wrote it into \
             the URL.",
            json!({"type": "integer", "format": "int64"}),
        ),
        required_query(
            "sig",
            "The URL's signature (hex HMAC-SHA256 over the action, the id and `expires`), as \
             the server wrote it. A wrong or expired signature answers 403; a missing \
             `expires` or `sig` answers 422.",
            json!({"type": "string"}),
        ),
    ]
}

/// The id path parameter of the per-image routes.
fn image_param() -> Value {
    path_param(
        "image",
        "The image's id (a UUID). Archived images are found too.",
    )
}

/// The dataset and path parameters of the per-image routes by path.
fn dataset_path_params() -> [Value; 2] {
    [
        path_param(
            "dataset",
            "The dataset's name or id, percent-encoded as one segment: a `/` in the name is \
             sent as `%2F`.",
        ),
        path_param(
            "path",
            "The image's folder and file name joined by `/`, without a leading slash: \
             `cars/red/a.jpg`, or `a.jpg` in the root folder. Its `/` separators are sent as \
             they are (not as `%2F`), each segment percent-encoded on its own. The live image \
             at that path is found, or else the most recently created archived one.",
        ),
    ]
}

/// The request headers of a byte download.
fn byte_request_headers() -> [Value; 2] {
    [
        header_param(
            "Range",
            "One byte range, `bytes=start-end`, `bytes=start-` or `bytes=-suffix`; an end past \
             the file is clamped. A list of several ranges is ignored (the whole file is \
             answered); an unsatisfiable range answers 416.",
        ),
        header_param(
            "If-None-Match",
            "ETags (weak comparison, `*` matches any): 304 without a body when one is the \
             image's.",
        ),
    ]
}

/// The headers of an answer carrying an image's bytes.
fn byte_headers(partial: bool) -> Value {
    let mut h = json!({
        "ETag": {
            "description": "The SHA-256 of the bytes, hex, in quotes.",
            "schema": {"type": "string"},
        },
        "Cache-Control": {
            "description": "`private, max-age=2592000, immutable`: the bytes of an image never \
                change.",
            "schema": {"type": "string"},
        },
        "Accept-Ranges": {"schema": {"const": "bytes"}},
        "Content-Disposition": {
            "description": "`inline` with the image's file name.",
            "schema": {"type": "string"},
        },
        "Content-Length": {"schema": {"type": "integer"}},
    });
    if partial {
        h["Content-Range"] = content_range(true);
    }
    h
}

/// The answers of a byte download (200, 206, 304, 416); the errors are added by the caller.
fn byte_responses() -> Value {
    let content: serde_json::Map<String, Value> = SERVED_TYPES
        .iter()
        .map(|t| (t.to_string(), json!({"schema": binary()})))
        .collect();
    json!({
        "200": {
            "description": "The whole file, with the type it is stored as (HEIC uploads are \
                stored as PNG).",
            "headers": byte_headers(false),
            "content": content,
        },
        "206": {
            "description": "The requested byte range.",
            "headers": byte_headers(true),
            "content": content,
        },
        "304": {
            "description": "The image's ETag matched If-None-Match; no body.",
            "headers": {"ETag": {"schema": {"type": "string"}}},
        },
        "416": range_not_satisfiable(),
    })
}

/// A body read as JSON, or as a urlencoded form when its Content-Type says so.
fn json_or_form_body(description: &str, name: &str) -> Value {
    let mut body = json_body(description, schema(name));
    body["content"]["application/x-www-form-urlencoded"] = json!({"schema": schema(name)});
    body
}

fn list_images() -> Op {
    let params = vec![
        query_param(
            "dataset",
            "The dataset's name or id. Required, under this name or as `dataset_id` or \
             `dataset_name` (checked in that order).",
            json!({"type": "string"}),
        ),
        query_param(
            "dataset_id",
            "Another name for `dataset` (a name or an id).",
            json!({"type": "string"}),
        ),
        query_param(
            "dataset_name",
            "Another name for `dataset` (a name or an id).",
            json!({"type": "string"}),
        ),
        query_param(
            "status",
            "Only images with this status.",
            json!({"type": "string", "enum": status_values()}),
        ),
        query_param(
            "folder_path",
            "Only images in this virtual folder (normalised: `cars`, `/cars/` and `/cars` are \
             the same folder; an empty value is the root folder). Without `recursive`, its \
             sub-folders are left out.",
            json!({"type": "string", "maxLength": names::MAX_FOLDER}),
        ),
        query_param(
            "directory_path",
            "Another name for `folder_path`, read when `folder_path` is absent.",
            json!({"type": "string", "maxLength": names::MAX_FOLDER}),
        ),
        query_param(
            "recursive",
            "With a folder, include the images of its sub-folders too.",
            json!({"type": "boolean", "default": false}),
        ),
        query_param(
            "include_archived",
            "Include archived (soft-deleted) images.",
            json!({"type": "boolean", "default": false}),
        ),
        query_param(
            "filename",
            "Only images with exactly this file name (in any folder unless a folder is given).",
            json!({"type": "string"}),
        ),
        query_param(
            "split",
            "Only images of this dataset split. No image of this server is assigned to a \
             split, so any valid value answers an empty page.",
            json!({"type": "string", "enum": ["train", "val", "test"]}),
        ),
        query_param(
            "min_confidence_lt",
            "Only images whose lowest annotation confidence is below this value; images \
             without annotations never match. The whole dataset is read to answer it, so it \
             is slower on large datasets. Cannot be combined with `after`.",
            json!({"type": "number", "minimum": 0, "maximum": 1}),
        ),
        query_param(
            "limit",
            "Images in the page.",
            json!({"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100}),
        ),
        offset_unless_after(),
        query_param(
            "after",
            "Keyset paging: the id of an image of the dataset (archived ones too); the page \
             starts right after it in listing order. Pass the last id of the previous page to \
             walk a large dataset at the same cost per page, unshifted by images added or \
             removed meanwhile. Echoed in `pagination.after`.",
            json!({"type": "string"}),
        ),
    ];
    Op {
        method: Method::GET,
        path: "/images/",
        route: "/images/",
        access: Access::Key,
        operation: json!({
            "operationId": "list_images",
            "tags": ["images"],
            "summary": "List a dataset's images",
            "description": "One page of a dataset's images, oldest first (by creation time, \
                then id), filtered by status, folder, file name, split and lowest annotation \
                confidence. Archived images are left out unless `include_archived` is true. \
                Also served at `/images` without the trailing slash. The page is under both \
                `images` and `data`.",
            "parameters": params,
            "responses": with_key_errors(json!({
                "200": json_response("The page.", schema("ImageList")),
            }), &[400, 404, 422]),
        }),
    }
}

fn upload_operations() -> Vec<Op> {
    vec![
        Op {
            method: Method::POST,
            path: "/images/upload-url",
            route: "/images/upload-url",
            access: Access::Key,
            operation: json!({
                "operationId": "create_upload_url",
                "tags": ["images"],
                "summary": "Get a signed URL to upload one image to",
                "description": "First step of an upload: checks the dataset, the file name, \
                    the folder and the type, and answers a signed URL to PUT the file's bytes \
                    to (no key needed), then register the upload with `POST /images/register`. \
                    The body is JSON, or a urlencoded form when its Content-Type says so. A \
                    name already taken by a live image of that folder answers 409 (an \
                    archived one does not count).",
                "parameters": [idempotency_key()],
                "requestBody": json_or_form_body("The file to upload.", "UploadUrlRequest"),
                "responses": with_key_errors(json!({
                    "200": json_response("The signed URL.", schema("UploadUrl")),
                }), &[400, 404, 409, 413, 415, 422, 507]),
            }),
        },
        Op {
            method: Method::POST,
            path: "/images/register",
            route: "/images/register",
            access: Access::Key,
            operation: json!({
                "operationId": "register_image",
                "tags": ["images"],
                "summary": "Register an uploaded image",
                "description": "Last step of an upload: turns an upload whose bytes were PUT \
                    into an image (status `new`, not archived). The upload is named by \
                    `upload_id` or `gcs_path`, or else found by dataset, folder and file name \
                    (the newest pending upload of that name whose bytes arrived). An upload \
                    registers once; a second register answers 404. The body is JSON, or a \
                    urlencoded form (as the 1.6.3 client sends it). Answers 404 for an \
                    unknown, expired or used upload, 409 when the name was taken meanwhile, \
                    422 when no bytes were received or the dataset is not the upload's.",
                "parameters": [idempotency_key()],
                "requestBody": json_or_form_body("The upload to register.", "RegisterRequest"),
                "responses": with_key_errors(json!({
                    "201": json_response("The image.", schema("RegisteredImage")),
                }), &[400, 404, 409, 413, 415, 422, 507]),
            }),
        },
        Op {
            method: Method::POST,
            path: "/images/bulk-upload-url",
            route: "/images/bulk-upload-url",
            access: Access::Key,
            operation: json!({
                "operationId": "create_upload_urls",
                "tags": ["images"],
                "summary": "Get signed upload URLs for many images",
                "description": format!(
                    "Signed URLs for 1 to {MAX_BULK} files of one dataset, in request order. \
                     A file whose name is taken still gets a URL and is marked `exists` (its \
                     register then fails with `conflict`). One invalid file (name, folder or \
                     type) refuses the whole request. The body must be JSON \
                     (`Content-Type: application/json`). 409 comes only from an \
                     Idempotency-Key replay."
                ),
                "parameters": [idempotency_key()],
                "requestBody": json_body("The dataset and its files.", schema("BulkUploadUrlRequest")),
                "responses": with_key_errors(json!({
                    "200": json_response("One signed URL per file.", schema("BulkUploadUrls")),
                }), &[400, 404, 409, 413, 415, 422, 507]),
            }),
        },
        Op {
            method: Method::POST,
            path: "/images/bulk-register",
            route: "/images/bulk-register",
            access: Access::Key,
            operation: json!({
                "operationId": "register_images",
                "tags": ["images"],
                "summary": "Register many uploaded images",
                "description": format!(
                    "Registers 1 to {MAX_BULK} uploads of one dataset in one transaction. A \
                     file that cannot be registered (its name taken, its upload unknown or \
                     expired, no bytes received, …) is listed in `failed` with the error code a \
                     single register would answer, and the others still are; the same name \
                     twice in one request registers the first. The body must be JSON \
                     (`Content-Type: application/json`). 409 comes only from an \
                     Idempotency-Key replay."
                ),
                "parameters": [idempotency_key()],
                "requestBody": json_body("The dataset and its uploads.", schema("BulkRegisterRequest")),
                "responses": with_key_errors(json!({
                    "200": json_response(
                        "What was registered and what was not.",
                        schema("BulkRegisterResult"),
                    ),
                }), &[400, 404, 409, 413, 422, 507]),
            }),
        },
    ]
}

/// The per-image operations, all served by the `/images/{*image}` routes.
fn image_operations() -> Vec<Op> {
    let [dataset, path] = dataset_path_params();
    let [range, if_none_match] = byte_request_headers();
    let bytes_responses = || with_key_errors(byte_responses(), &[400, 404]);
    let metadata_responses = || {
        with_key_errors(
            json!({"200": json_response("The image.", schema("ImageMetadata"))}),
            &[400, 404],
        )
    };
    let permanent = query_param(
        "permanent",
        "Delete the image for good: its row, its annotations and, unless another image \
         shares them, its bytes. Irreversible. By default the image is archived.",
        json!({"type": "boolean", "default": false}),
    );
    let delete_responses = || {
        with_key_errors(
            json!({"200": json_response("What was done.", schema("ImageDeleted"))}),
            &[400, 404, 422],
        )
    };
    let delete_description = "Archives the image (a soft delete: it leaves listings and \
        counts, its name is free again, and it can be restored with a batch update), or with \
        `permanent=true` deletes it. Archiving an archived image changes nothing.";
    vec![
        Op {
            method: Method::GET,
            path: "/images/{image}",
            route: ANY_IMAGE,
            access: Access::Key,
            operation: json!({
                "operationId": "download_image",
                "tags": ["images"],
                "summary": "Download an image's bytes by id",
                "description": "The image's bytes (the 1.6.3 client's download), with an \
                    ETag, immutable caching, single byte ranges and If-None-Match. The \
                    `image_url` of an image serves the same bytes without a key.",
                "parameters": [image_param(), range.clone(), if_none_match.clone()],
                "responses": bytes_responses(),
            }),
        },
        Op {
            method: Method::GET,
            path: "/images/{image}/metadata",
            route: ANY_IMAGE,
            access: Access::Key,
            operation: json!({
                "operationId": "get_image_metadata",
                "tags": ["images"],
                "summary": "Get an image by id",
                "description": "The image's metadata, under both `image` and `data`. An \
                    image of another organisation answers 404.",
                "parameters": [image_param()],
                "responses": metadata_responses(),
            }),
        },
        Op {
            method: Method::GET,
            path: "/images/{dataset}/{path}",
            route: ANY_IMAGE,
            access: Access::Key,
            operation: json!({
                "operationId": "download_image_by_path",
                "tags": ["images"],
                "summary": "Download an image's bytes by dataset and path",
                "description": "The bytes of the image at a folder and file name of a \
                    dataset (the newer clients' download), answered like the download by id.",
                "parameters": [dataset.clone(), path.clone(), range, if_none_match],
                "responses": bytes_responses(),
            }),
        },
        Op {
            method: Method::GET,
            path: "/images/{dataset}/{path}/metadata",
            route: ANY_IMAGE,
            access: Access::Key,
            operation: json!({
                "operationId": "get_image_metadata_by_path",
                "tags": ["images"],
                "summary": "Get an image by dataset and path",
                "description": "The metadata of the image at a folder and file name of a \
                    dataset, under both `image` and `data`.",
                "parameters": [dataset.clone(), path.clone()],
                "responses": metadata_responses(),
            }),
        },
        Op {
            method: Method::DELETE,
            path: "/images/{image}",
            route: ANY_IMAGE,
            access: Access::Key,
            operation: json!({
                "operationId": "delete_image",
                "tags": ["images"],
                "summary": "Archive or delete an image by id",
                "description": delete_description,
                "parameters": [image_param(), permanent.clone()],
                "responses": delete_responses(),
            }),
        },
        Op {
            method: Method::DELETE,
            path: "/images/{dataset}/{path}",
            route: ANY_IMAGE,
            access: Access::Key,
            operation: json!({
                "operationId": "delete_image_by_path",
                "tags": ["images"],
                "summary": "Archive or delete an image by dataset and path",
                "description": delete_description,
                "parameters": [dataset, path, permanent],
                "responses": delete_responses(),
            }),
        },
    ]
}

/// The signed routes: no key, the URL's signature is the grant.
fn file_operations() -> Vec<Op> {
    let [expires, sig] = signature_params();
    let [range, if_none_match] = byte_request_headers();
    let upload_content: serde_json::Map<String, Value> = UPLOAD_TYPES
        .iter()
        .map(|t| (t.to_string(), json!({"schema": binary()})))
        .collect();
    let mut get_responses = byte_responses();
    for status in [403, 404, 422, 500] {
        get_responses[status.to_string()] = error_response(status);
    }
    vec![
        Op {
            method: Method::PUT,
            path: "/files/uploads/{id}",
            route: "/files/uploads/{id}",
            access: Access::Signed,
            operation: json!({
                "operationId": "put_upload",
                "tags": ["files"],
                "summary": "Upload a file's bytes to a signed URL",
                "description": "Receives the bytes of an upload made by `POST \
                    /images/upload-url` (the `upload_url` it answered, used verbatim). The \
                    body is the raw file, not multipart. Its Content-Type, when sent, must be \
                    the type the URL was signed for (`application/octet-stream` is refused \
                    too); without one the bytes alone are judged. The bytes must be a whole, \
                    decodable image of that type within the server's pixel limit; HEIC is \
                    converted to PNG. A body over the upload limit (`max_size`, 50 MiB by \
                    default) answers 413, before it is read when Content-Length says so. The \
                    body must keep arriving: after a grace period (30 s by default) at 1 KiB/s \
                    on average, or 408. PUT again to replace bytes not yet registered; after \
                    register the URL answers 404.",
                "parameters": [
                    path_param("id", "The upload's id (`upload_id`)."),
                    expires,
                    sig,
                ],
                "requestBody": {
                    "required": true,
                    "description": "The file's bytes.",
                    "content": upload_content,
                },
                "responses": {
                    "200": json_response("The bytes were stored.", schema("UploadReceived")),
                    "400": error_response(400),
                    "403": error_response(403),
                    "404": error_response(404),
                    "408": error_response(408),
                    "413": error_response(413),
                    "415": error_response(415),
                    "422": error_response(422),
                    "500": error_response(500),
                    "507": error_response(507),
                },
            }),
        },
        Op {
            method: Method::GET,
            path: "/files/images/{id}",
            route: "/files/images/{id}",
            access: Access::Signed,
            operation: json!({
                "operationId": "get_image_file",
                "tags": ["files"],
                "summary": "Download an image's bytes by signed URL",
                "description": "The bytes an image's `image_url` points at, answered like \
                    the keyed download (ETag, immutable caching, single byte ranges, \
                    If-None-Match). The URL expires (`expires`); archived images are served \
                    too, a deleted one answers 404.",
                "parameters": [
                    path_param("id", "The image's id."),
                    expires,
                    sig,
                    range,
                    if_none_match,
                ],
                "responses": get_responses,
            }),
        },
    ]
}

fn image_schemas() -> Vec<(&'static str, Value)> {
    let folder = json!({
        "type": "string",
        "description": "The virtual folder: `/` or `/a/b`.",
    });
    vec![
        (
            "Image",
            json!({
                "type": "object",
                "description": "An image. Both client generations' field names are sent \
                    (`mime_type` and `content_type`, `virtual_folder_path` and \
                    `directory_path`). `min_confidence` and `split` are sent only to callers \
                    whose User-Agent is not the official client before 1.69 (or missing).",
                "required": [
                    "annotation_count", "annotation_url", "content_type", "created_at",
                    "dataset_id", "directory_path", "display_name", "file_size", "filename",
                    "height", "id", "image_url", "is_archived", "mime_type", "status", "tags",
                    "thumbnail_url", "updated_at", "version", "virtual_folder_path", "width",
                ],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "dataset_id": {"type": "string", "format": "uuid"},
                    "filename": {"type": "string"},
                    "display_name": {
                        "type": ["string", "null"],
                        "description": "A display name set by a batch update.",
                    },
                    "status": {"type": "string", "enum": status_values()},
                    "annotation_count": {"type": "integer", "minimum": 0},
                    "file_size": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Bytes stored.",
                    },
                    "width": {
                        "type": ["integer", "null"],
                        "description": "Pixels, as displayed (EXIF orientation applied).",
                    },
                    "height": {
                        "type": ["integer", "null"],
                        "description": "Pixels, as displayed (EXIF orientation applied).",
                    },
                    "mime_type": {
                        "type": "string",
                        "description": "The type the bytes are stored and served as: \
                            `image/jpeg`, `image/png`, `image/gif`, `image/bmp`, `image/tiff` \
                            or `image/webp` (a HEIC upload is stored as PNG).",
                    },
                    "content_type": {
                        "type": "string",
                        "description": "The same as `mime_type`.",
                    },
                    "virtual_folder_path": folder,
                    "directory_path": {
                        "type": "string",
                        "description": "The same as `virtual_folder_path`.",
                    },
                    "is_archived": {"type": "boolean"},
                    "image_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "An absolute signed URL of the bytes that needs no \
                            key; it expires (on a whole hour, at least the server's URL \
                            lifetime away).",
                    },
                    "thumbnail_url": {
                        "type": ["string", "null"],
                        "description": "Always null: no thumbnails are made.",
                    },
                    "annotation_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "The absolute URL of the image's annotations (needs \
                            the key).",
                    },
                    "tags": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Always empty.",
                    },
                    "version": {
                        "type": "integer",
                        "description": "Goes up on every change of the image or its \
                            annotations.",
                    },
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "min_confidence": {
                        "type": ["number", "null"],
                        "description": "The lowest confidence among the image's annotations; \
                            null without annotations.",
                    },
                    "split": {
                        "type": "null",
                        "description": "Always null: no image is assigned to a split.",
                    },
                },
            }),
        ),
        (
            "ImageList",
            json!({
                "type": "object",
                "description": "A page of a dataset's images.",
                "required": [
                    "images", "data", "dataset_id", "total", "limit", "offset", "pagination",
                ],
                "properties": {
                    "images": {"type": "array", "items": schema("Image")},
                    "data": {
                        "type": "array",
                        "items": schema("Image"),
                        "description": "The same page as `images`.",
                    },
                    "dataset_id": {"type": "string", "format": "uuid"},
                    "total": {
                        "type": "integer",
                        "description": "Images matching the filters, over all pages.",
                    },
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                    "pagination": schema("ImagePagination"),
                },
            }),
        ),
        (
            "ImagePagination",
            json!({
                "type": "object",
                "required": ["limit", "offset", "total", "has_more"],
                "properties": {
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                    "total": {"type": "integer"},
                    "has_more": {
                        "type": "boolean",
                        "description": "Whether images follow this page.",
                    },
                    "after": {
                        "type": "string",
                        "description": "The `after` of the request, sent only when it had \
                            one.",
                    },
                },
            }),
        ),
        (
            "ImageMetadata",
            json!({
                "type": "object",
                "description": "One image, under the key each client generation reads.",
                "required": ["data", "image"],
                "properties": {
                    "data": schema("Image"),
                    "image": schema("Image"),
                },
            }),
        ),
        (
            "ImageDeleteSummary",
            json!({
                "type": "object",
                "required": ["success", "image_id", "permanent", "operation"],
                "properties": {
                    "success": {"const": true},
                    "image_id": {"type": "string"},
                    "permanent": {"type": "boolean"},
                    "operation": {
                        "type": "string",
                        "enum": ["archived", "deleted"],
                    },
                },
            }),
        ),
        (
            "ImageDeleted",
            json!({
                "type": "object",
                "description": "What a delete did: the summary at the top level and under \
                    `data`.",
                "required": ["success", "image_id", "permanent", "operation", "data"],
                "properties": {
                    "success": {"const": true},
                    "image_id": {"type": "string"},
                    "permanent": {"type": "boolean"},
                    "operation": {
                        "type": "string",
                        "enum": ["archived", "deleted"],
                    },
                    "data": schema("ImageDeleteSummary"),
                },
            }),
        ),
    ]
}

/// The properties of a signed upload URL, without `max_size`.
fn signed_upload_properties() -> Value {
    json!({
        "upload_url": {
            "type": "string",
            "format": "uri",
            "description": "The absolute URL to PUT the file's bytes to, without a key: this \
                server's `/files/uploads/{id}`, or a presigned URL of the bucket when images \
                are stored in S3 or GCS.",
        },
        "upload_id": {
            "type": "string",
            "description": "The upload's id, to name it at register.",
        },
        "gcs_bucket": {"const": "local"},
        "gcs_path": {
            "type": "string",
            "description": "The upload id again (the 1.6.3 client sends it back to register).",
        },
        "gcs_uri": {
            "type": "string",
            "description": "`gs://local/` and the upload id.",
        },
        "content_type": {
            "type": "string",
            "enum": UPLOAD_TYPES,
            "description": "The type the upload is signed for, from the file's extension: the \
                PUT must send it as Content-Type, or none.",
        },
        "expires_in": {
            "type": "integer",
            "description": "Seconds until the URL and the upload expire.",
        },
    })
}

fn upload_schemas() -> Vec<(&'static str, Value)> {
    let extensions = names::SUPPORTED_EXTENSIONS
        .map(|e| format!("`.{e}`"))
        .join(", ");
    let mut with_max = signed_upload_properties();
    with_max["max_size"] = json!({
        "type": "integer",
        "description": "The largest file the PUT accepts, bytes.",
    });
    vec![
        (
            "UploadUrlRequest",
            json!({
                "type": "object",
                "description": "A file to upload. The dataset is named by `dataset_id` (an \
                    id, the 1.6.3 client) or `dataset` (a name or an id); one is required.",
                "required": ["filename"],
                "properties": {
                    "dataset_id": {"type": "string", "description": "The dataset's id."},
                    "dataset": {
                        "type": "string",
                        "description": "The dataset's name or id; read when `dataset_id` is \
                            absent.",
                    },
                    "filename": {
                        "type": "string",
                        "maxLength": names::MAX_FILENAME,
                        "description": format!(
                            "The file name, trimmed: no `/` or `\\`, not `.` or `..`, no \
                             control characters, at most {} bytes. Its extension decides the \
                             type: one of {extensions} (any case).",
                            names::MAX_FILENAME
                        ),
                    },
                    "folder_path": {
                        "type": "string",
                        "default": "/",
                        "description": format!(
                            "The virtual folder, normalised (`cars`, `/cars/` and `/cars` are \
                             the same); no `..`, at most {} bytes.",
                            names::MAX_FOLDER
                        ),
                    },
                    "directory_path": {
                        "type": "string",
                        "description": "Another name for `folder_path`, read when it is \
                            absent.",
                    },
                    "content_type": {
                        "type": "string",
                        "description": "The file's type; when given it must match the \
                            extension (`image/jpeg` for `.jpg`), else 415.",
                    },
                    "mime_type": {
                        "type": "string",
                        "description": "Another name for `content_type`.",
                    },
                },
            }),
        ),
        (
            "UploadUrl",
            json!({
                "type": "object",
                "description": "A signed upload URL: the flat keys the 1.6.3 client reads, and \
                    all of them with `max_size` under `data`.",
                "required": [
                    "upload_url", "upload_id", "gcs_bucket", "gcs_path", "gcs_uri",
                    "content_type", "expires_in", "data",
                ],
                "properties": {
                    "upload_url": {"type": "string", "format": "uri"},
                    "upload_id": {"type": "string"},
                    "gcs_bucket": {"const": "local"},
                    "gcs_path": {"type": "string"},
                    "gcs_uri": {"type": "string"},
                    "content_type": {"type": "string"},
                    "expires_in": {"type": "integer"},
                    "data": schema("UploadUrlData"),
                },
            }),
        ),
        (
            "UploadUrlData",
            json!({
                "type": "object",
                "required": [
                    "upload_url", "upload_id", "gcs_bucket", "gcs_path", "gcs_uri",
                    "content_type", "expires_in", "max_size",
                ],
                "properties": with_max,
            }),
        ),
        (
            "RegisterRequest",
            json!({
                "type": "object",
                "description": "The upload to register: `upload_id` or `gcs_path`, or else \
                    the dataset (`dataset` or `dataset_id`), `filename` and the folder it was \
                    signed for. Values are trimmed, and empty ones count as absent. Other \
                    fields (`gcs_bucket`, `gcs_uri`, `file_size`, `mime_type`, \
                    `content_type`) are accepted and ignored.",
                "properties": {
                    "upload_id": {
                        "type": "string",
                        "description": "The upload's id from the upload URL answer.",
                    },
                    "gcs_path": {
                        "type": "string",
                        "description": "The upload's id, as `gcs_path` (a `gs://local/` \
                            prefix is dropped); read before `upload_id`.",
                    },
                    "dataset_id": {
                        "type": "string",
                        "description": "The dataset; when given it must be the upload's \
                            (by id or name), else 422.",
                    },
                    "dataset": {
                        "type": "string",
                        "description": "The dataset's name or id; read when `dataset_id` is \
                            absent.",
                    },
                    "filename": {
                        "type": "string",
                        "description": "Finds the upload when no upload id is given.",
                    },
                    "directory_path": {
                        "type": "string",
                        "default": "/",
                        "description": "The folder, to find the upload when no upload id is \
                            given.",
                    },
                    "folder_path": {
                        "type": "string",
                        "description": "Another name for `directory_path`, read when it is \
                            absent.",
                    },
                    "image_width": {
                        "type": ["integer", "string", "null"],
                        "description": "A fallback width: the server reads the dimensions \
                            from the bytes. Anything but a positive integer is ignored.",
                    },
                    "width": {
                        "type": ["integer", "string", "null"],
                        "description": "Another name for `image_width`.",
                    },
                    "image_height": {
                        "type": ["integer", "string", "null"],
                        "description": "A fallback height, like `image_width`.",
                    },
                    "height": {
                        "type": ["integer", "string", "null"],
                        "description": "Another name for `image_height`.",
                    },
                },
            }),
        ),
        (
            "RegisteredImage",
            json!({
                "type": "object",
                "description": "The registered image, under `image` and `data`.",
                "required": ["success", "image_id", "image", "data"],
                "properties": {
                    "success": {"const": true},
                    "image_id": {"type": "string", "format": "uuid"},
                    "image": schema("Image"),
                    "data": schema("Image"),
                },
            }),
        ),
        (
            "UploadReceived",
            json!({
                "type": "object",
                "description": "Bytes received for an upload, waiting for register.",
                "required": ["success", "upload_id", "size", "mime_type"],
                "properties": {
                    "success": {"const": true},
                    "upload_id": {"type": "string"},
                    "size": {
                        "type": "integer",
                        "description": "Bytes stored (those of the PNG for a HEIC upload).",
                    },
                    "mime_type": {
                        "type": "string",
                        "enum": SERVED_TYPES,
                        "description": "The type stored (`image/png` for a HEIC upload).",
                    },
                },
            }),
        ),
    ]
}

fn bulk_schemas() -> Vec<(&'static str, Value)> {
    let dataset_props = json!({
        "dataset": {
            "type": "string",
            "description": "The dataset's name or id; one of `dataset` and `dataset_id` is \
                required.",
        },
        "dataset_id": {
            "type": "string",
            "description": "Another name for `dataset` (a name or an id), read when it is \
                absent.",
        },
    });
    let mut upload_request = json!({
        "type": "object",
        "description": "Files to upload to one dataset.",
        "required": ["images"],
        "properties": dataset_props.clone(),
    });
    upload_request["properties"]["images"] = json!({
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_BULK,
        "items": schema("BulkUploadUrlItem"),
    });
    let mut register_request = json!({
        "type": "object",
        "description": "Uploads of one dataset to register.",
        "required": ["images"],
        "properties": dataset_props,
    });
    register_request["properties"]["images"] = json!({
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_BULK,
        "items": schema("BulkRegisterItem"),
    });
    let mut entry = signed_upload_properties();
    entry["max_size"] = json!({
        "type": "integer",
        "description": "The largest file the PUT accepts, bytes.",
    });
    entry["filename"] = json!({"type": "string", "description": "The checked file name."});
    entry["directory_path"] = json!({
        "type": "string",
        "description": "The normalised folder.",
    });
    entry["exists"] = json!({
        "type": "boolean",
        "description": "Whether a live image of the dataset has this name already: its \
            register will fail with `conflict`.",
    });
    vec![
        ("BulkUploadUrlRequest", upload_request),
        (
            "BulkUploadUrlItem",
            json!({
                "type": "object",
                "description": "One file, checked like a single upload URL request.",
                "required": ["filename"],
                "properties": {
                    "filename": {"type": "string", "maxLength": names::MAX_FILENAME},
                    "directory_path": {
                        "type": "string",
                        "default": "/",
                        "description": "The virtual folder.",
                    },
                    "folder_path": {
                        "type": "string",
                        "description": "Another name for `directory_path`, read when it is \
                            absent.",
                    },
                    "content_type": {
                        "type": "string",
                        "description": "When given, must match the extension.",
                    },
                    "mime_type": {
                        "type": "string",
                        "description": "Another name for `content_type`.",
                    },
                },
            }),
        ),
        (
            "BulkUploadUrlEntry",
            json!({
                "type": "object",
                "required": [
                    "upload_url", "upload_id", "gcs_bucket", "gcs_path", "gcs_uri",
                    "content_type", "expires_in", "max_size", "filename", "directory_path",
                    "exists",
                ],
                "properties": entry,
            }),
        ),
        (
            "BulkUploadUrls",
            json!({
                "type": "object",
                "description": "One signed URL per file, in request order, at the top level \
                    and under `data`.",
                "required": ["upload_urls", "data"],
                "properties": {
                    "upload_urls": {"type": "array", "items": schema("BulkUploadUrlEntry")},
                    "data": {
                        "type": "object",
                        "required": ["dataset_id", "upload_urls"],
                        "properties": {
                            "dataset_id": {"type": "string", "format": "uuid"},
                            "upload_urls": {
                                "type": "array",
                                "items": schema("BulkUploadUrlEntry"),
                            },
                        },
                    },
                },
            }),
        ),
        ("BulkRegisterRequest", register_request),
        (
            "BulkRegisterItem",
            json!({
                "type": "object",
                "description": "One upload, named like in a single register: `upload_id` \
                    (or `gcs_path`), or else `filename` and its folder. The dataset is the \
                    request's.",
                "properties": {
                    "upload_id": {"type": "string"},
                    "gcs_path": {"type": "string"},
                    "filename": {"type": "string"},
                    "directory_path": {"type": "string", "default": "/"},
                    "folder_path": {
                        "type": "string",
                        "description": "Another name for `directory_path`.",
                    },
                    "width": {
                        "type": ["integer", "string", "null"],
                        "description": "A fallback width (`image_width` too).",
                    },
                    "height": {
                        "type": ["integer", "string", "null"],
                        "description": "A fallback height (`image_height` too).",
                    },
                },
            }),
        ),
        (
            "BulkRegisterFailure",
            json!({
                "type": "object",
                "description": "An upload that was not registered.",
                "required": ["filename", "directory_path", "error", "code"],
                "properties": {
                    "filename": {
                        "type": ["string", "null"],
                        "description": "The `filename` the request gave, or null.",
                    },
                    "directory_path": {
                        "type": ["string", "null"],
                        "description": "The folder the request gave (`directory_path`, else \
                            `folder_path`), or `/`.",
                    },
                    "upload_id": {
                        "description": "The `upload_id` the request gave, when it gave one: \
                            what tells apart a file named by its upload alone.",
                    },
                    "error": {"type": "string", "description": "Why, in a sentence."},
                    "code": {
                        "type": "string",
                        "description": "The error code a single register would answer, e.g. \
                            `conflict`, `not_found`, `validation_error`.",
                    },
                },
            }),
        ),
        (
            "BulkRegisterResult",
            json!({
                "type": "object",
                "description": "The registered images and the failures, at the top level and \
                    under `data`.",
                "required": ["succeeded", "failed", "data"],
                "properties": {
                    "succeeded": {"type": "array", "items": schema("Image")},
                    "failed": {"type": "array", "items": schema("BulkRegisterFailure")},
                    "data": {
                        "type": "object",
                        "required": ["dataset_id", "processed", "succeeded", "failed"],
                        "properties": {
                            "dataset_id": {"type": "string", "format": "uuid"},
                            "processed": {
                                "type": "integer",
                                "description": "How many were registered.",
                            },
                            "succeeded": {"type": "array", "items": schema("Image")},
                            "failed": {
                                "type": "array",
                                "items": schema("BulkRegisterFailure"),
                            },
                        },
                    },
                },
            }),
        ),
    ]
}
