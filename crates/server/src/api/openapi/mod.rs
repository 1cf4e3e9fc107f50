//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json` without a key, so
//! that code generators and agents can learn every route, parameter, body and answer.
//!
//! Each area's module lists its operations (`Op`) under the paths clients call, each
//! naming the route of the table in `api::table` that serves it; a test checks that every
//! route is described and that every description is served.

mod annotations;
mod datasets;
mod images;

use super::{Access, PREFIX};
use axum::http::Method;
use pictograph_core::error::ErrorCode;
use serde_json::{json, Map, Value};

/// One operation: a method on a path as clients call it.
pub(super) struct Op {
    /// HTTP method.
    pub method: Method,
    /// The path as clients call it, with `{param}` for each parameter; relative to
    /// [`PREFIX`] for [`Access::Key`] operations.
    pub path: &'static str,
    /// The route template of the table that serves it (one route may serve several paths,
    /// e.g. `/images/{*image}`); read by the test that holds the operations to the table.
    #[cfg_attr(not(test), allow(dead_code))]
    pub route: &'static str,
    /// How callers authenticate.
    pub access: Access,
    /// The OpenAPI Operation object: `summary`, `description`, `tags`, `operationId`,
    /// `parameters`, `requestBody`, `responses` (security is added from `access`).
    pub operation: Value,
}

/// Every operation of the API.
pub(super) fn operations() -> Vec<Op> {
    let mut ops = vec![Op {
        method: Method::GET,
        path: "/healthz",
        route: "/healthz",
        access: Access::Public,
        operation: json!({
            "operationId": "health",
            "tags": ["service"],
            "summary": "Health check",
            "description": "Answers 200 when the server can reach its database.",
            "responses": {
                "200": json_response("The server is up.", json!({
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                })),
                "503": error_response(503),
            },
        }),
    }];
    ops.push(Op {
        method: Method::GET,
        path: "/openapi.json",
        route: "/openapi.json",
        access: Access::Public,
        operation: json!({
            "operationId": "openapi",
            "tags": ["service"],
            "summary": "This document",
            "description": "The OpenAPI 3.1 description of every route the server answers.",
            "responses": {
                "200": json_response("The document.", json!({"type": "object"})),
            },
        }),
    });
    ops.extend(datasets::operations());
    ops.extend(images::operations());
    ops.extend(annotations::operations());
    ops
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let full = match op.access {
            Access::Key => format!("{PREFIX}{}", op.path),
            Access::Signed | Access::Public => op.path.to_string(),
        };
        let mut operation = op.operation;
        if op.access != Access::Key {
            operation["security"] = json!([]);
        }
        let item = paths.entry(full).or_insert_with(|| json!({}));
        item[op.method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut schemas = Map::new();
    schemas.extend(common_schemas());
    schemas.extend(datasets::schemas());
    schemas.extend(images::schemas());
    schemas.extend(annotations::schemas());
    let responses: Map<String, Value> = ErrorCode::ALL
        .iter()
        .map(|c| (response_name(c.status()), error_response_body(*c)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Pictograph developer API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Datasets of images in virtual folders, their annotations (boxes, \
                polygons, polylines, keypoints), uploads through signed URLs, batch changes of \
                up to 100,000 images a request, dataset downloads and server-side exports. \
                Every error answers the JSON `Error` shape with a stable `error.code`. Writes \
                (POST, PUT, PATCH) may carry an `Idempotency-Key` header: the same write sent \
                again with it answers the first response instead of running twice.",
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}],
        "tags": [
            {"name": "datasets", "description": "Datasets (the official client's projects) and their downloads."},
            {"name": "projects", "description": "The same datasets under the official client's write paths."},
            {"name": "exports", "description": "Server-side export jobs (COCO, YOLO, VOC, pictograph)."},
            {"name": "images", "description": "Images: listing, metadata, bytes, uploads."},
            {"name": "annotations", "description": "An image's annotation list."},
            {"name": "batch", "description": "Changes to many images in one request."},
            {"name": "files", "description": "Signed URLs: no key, the signature is the grant."},
            {"name": "service", "description": "Health and this document."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "An organisation's API key (`pictograph keys create`).",
                },
            },
            "schemas": schemas,
            "responses": responses,
        },
    })
}

/// The schemas every area refers to: the error shape.
fn common_schemas() -> Vec<(String, Value)> {
    vec![
        (
            "Error".into(),
            json!({
                "type": "object",
                "description": "Every error's body. `detail` is a sentence, or for field \
                    validation failures the list of fields (as FastAPI answers); `error.code` \
                    is stable for programs to branch on.",
                "required": ["detail", "error"],
                "properties": {
                    "detail": {
                        "oneOf": [
                            {"type": "string"},
                            {"type": "array", "items": schema("FieldError")},
                        ],
                    },
                    "error": {
                        "type": "object",
                        "required": ["code", "message", "details"],
                        "properties": {
                            "code": {
                                "type": "string",
                                "enum": ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                            },
                            "message": {"type": "string"},
                            "details": {"type": "object"},
                        },
                    },
                },
            }),
        ),
        (
            "FieldError".into(),
            json!({
                "type": "object",
                "description": "One field that failed validation.",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            }),
        ),
    ]
}

/// The name under `components/responses` of the error answered with `status`.
fn response_name(status: u16) -> String {
    format!("E{status}")
}

fn error_response_body(code: ErrorCode) -> Value {
    let mut resp = json!({
        "description": format!("Error `{}`.", code.as_str()),
        "content": {"application/json": {"schema": schema("Error")}},
    });
    if code == ErrorCode::RateLimited {
        resp["headers"] = json!({
            "Retry-After": {
                "description": "Seconds to wait before the next request.",
                "schema": {"type": "integer"},
            },
        });
    }
    resp
}

/// `{"$ref": …}` to the schema `name` under `components/schemas`.
pub(super) fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The error response answered with `status` (a reference to `components/responses`).
pub(super) fn error_response(status: u16) -> Value {
    assert!(
        ErrorCode::ALL.iter().any(|c| c.status() == status),
        "no error code answers {status}"
    );
    json!({"$ref": format!("#/components/responses/{}", response_name(status))})
}

/// A JSON response with a description and a schema.
pub(super) fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema}},
    })
}

/// A required JSON request body.
pub(super) fn json_body(description: &str, schema: Value) -> Value {
    json!({
        "required": true,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    })
}

/// A required path parameter (a string).
pub(super) fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string"},
    })
}

/// An optional query parameter.
pub(super) fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": description,
        "schema": schema,
    })
}

/// The `offset` of a listing that also pages by key (`after`).
pub(super) fn offset_unless_after() -> Value {
    query_param(
        "offset",
        "Images of the listing to skip. Must be 0 when `after` is given.",
        json!({"type": "integer", "minimum": 0, "default": 0}),
    )
}

/// The `Idempotency-Key` header parameter of a write.
pub(super) fn idempotency_key() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Up to 255 characters. The same write sent again with the same key \
            (by the same API key, within a day) answers the first response and does not run \
            again; the same key with another body is refused (422).",
        "schema": {"type": "string", "maxLength": 255},
    })
}

/// The `Content-Range` header of a ranged byte answer: `bytes start-end/size` on a 206, or
/// `bytes */size` on a 416.
pub(super) fn content_range(satisfied: bool) -> Value {
    let form = if satisfied {
        "`bytes start-end/size`."
    } else {
        "`bytes */size`."
    };
    json!({"description": form, "schema": {"type": "string"}})
}

/// The 416 answer of a byte download.
pub(super) fn range_not_satisfiable() -> Value {
    json!({
        "description": "The range is not satisfiable; no body.",
        "headers": {"Content-Range": content_range(false)},
    })
}

/// The responses `own` with the error responses of `statuses` added.
pub(super) fn with_errors(own: Value, statuses: &[u16]) -> Value {
    let mut all = own;
    for &status in statuses {
        all[status.to_string()] = error_response(status);
    }
    all
}

/// The responses `own` with the error responses of `statuses` and of those every key route
/// may answer (401, 429, 500) added.
pub(super) fn with_key_errors(own: Value, statuses: &[u16]) -> Value {
    with_errors(with_errors(own, statuses), &[401, 429, 500])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `path` is one the route template `route` matches: `{x}` takes one segment,
    /// `{*x}` the rest (at least one segment).
    fn served_by(path: &str, route: &str) -> bool {
        let (mut p, mut r) = (path.split('/'), route.split('/'));
        loop {
            match (p.next(), r.next()) {
                (None, None) => return true,
                (Some(seg), Some(t)) if t.starts_with("{*") => return !seg.is_empty(),
                (Some(seg), Some(t)) if t.starts_with('{') => {
                    if seg.is_empty() {
                        return false;
                    }
                }
                (Some(seg), Some(t)) if seg == t => {}
                _ => return false,
            }
        }
    }

    #[test]
    fn every_route_is_described_and_every_description_is_served() {
        let ops = operations();
        let routes = super::super::routes();
        let trimmed = |s: &str| s.trim_end_matches('/').to_string();
        for route in &routes {
            assert!(
                ops.iter().any(|op| op.method == route.method
                    && trimmed(op.route) == trimmed(route.path)
                    && op.access == route.access),
                "{} {} is not described",
                route.method,
                route.path
            );
        }
        for op in &ops {
            assert!(
                routes
                    .iter()
                    .any(|r| r.method == op.method && r.path == op.route && r.access == op.access),
                "{} {} names no route of the table ({})",
                op.method,
                op.path,
                op.route
            );
            assert!(
                served_by(op.path, op.route),
                "{} is not served by {}",
                op.path,
                op.route
            );
        }
    }

    #[test]
    fn operations_are_complete_and_unique() {
        let mut ids = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for op in operations() {
            let o = &op.operation;
            let id = o["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(
                keys.insert((op.method.clone(), op.path)),
                "{} {} twice",
                op.method,
                op.path
            );
            for field in ["summary", "description"] {
                assert!(
                    o[field].as_str().is_some_and(|s| !s.is_empty()),
                    "{id} has no {field}"
                );
            }
            assert!(
                o["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{id}: tags"
            );
            let responses = o["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{id} has no success response"
            );
            // Every parameter in the path is declared, and nothing else is declared as one.
            let declared: Vec<&str> = o["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let in_path: Vec<&str> = op
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(declared, in_path, "{id}: path parameters");
        }
    }

    /// Every `$ref` in the document points at something it defines.
    #[test]
    fn every_reference_resolves() {
        let doc = document();
        fn walk(v: &Value, doc: &Value, at: &str) {
            match v {
                Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                        let pointer = r.strip_prefix('#').expect("a local reference");
                        assert!(doc.pointer(pointer).is_some(), "{at}: {r} is not defined");
                    }
                    for (k, v) in m {
                        walk(v, doc, &format!("{at}/{k}"));
                    }
                }
                Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(v, doc, &format!("{at}/{i}"));
                    }
                }
                _ => {}
            }
        }
        walk(&doc, &doc, "");
    }

    #[test]
    fn templates_match_the_paths_they_serve() {
        assert!(served_by("/images/{image}/metadata", "/images/{*image}"));
        assert!(served_by("/datasets/{dataset}", "/datasets/{dataset}"));
        assert!(!served_by("/datasets/{dataset}/x", "/datasets/{dataset}"));
        assert!(!served_by("/images", "/images/{*image}"));
    }
}
