//! Operations and schemas of an image's annotation list (`/annotations/{*image}`, which
//! names the image by id or by dataset and path) and of the batch changes under
//! `/batch/images/…`.

use super::{
    idempotency_key, json_body, json_response, path_param, query_param, schema, with_key_errors, Op,
};
use crate::api::Access;
use crate::services::batch::MAX_IDS;
use axum::http::Method;
use pictograph_core::annotation::MAX_NAME_CHARS;
use pictograph_core::names::{Status, MAX_FILENAME, MAX_FOLDER};
use serde_json::{json, Value};

/// The route template that serves every annotation path.
const ANNOTATIONS_ROUTE: &str = "/annotations/{*image}";

/// Most annotations one image may carry (checked by the save).
const MAX_ANNOTATIONS: usize = 10_000;

/// Most points one annotation may carry, all rings or the whole path together.
const MAX_POINTS: usize = 10_000;

/// This area's operations.
pub(super) fn operations() -> Vec<Op> {
    let mut ops = Vec::new();
    for at in addressings() {
        ops.push(get_annotations(&at));
        ops.push(save_annotations(&at));
        ops.push(delete_annotations(&at));
    }
    ops.extend(batch_operations());
    ops
}

/// The schemas this area's operations refer to.
pub(super) fn schemas() -> Vec<(String, Value)> {
    let mut all = annotation_schemas();
    all.extend(batch_schemas());
    all
}

// --- annotations: addressing --------------------------------------------------------------

/// One way of naming the image in an annotation path.
struct Addressing {
    /// The path clients call.
    path: &'static str,
    /// Appended to each operationId (`get_annotations{suffix}`).
    suffix: &'static str,
    /// Appended to each summary.
    summary: &'static str,
    /// A sentence on which image the path names.
    names: String,
    /// The path parameters, in path order.
    params: Vec<Value>,
    /// Whether a body `image_id` is checked against the image (the id path only).
    checks_body_id: bool,
}

fn addressings() -> Vec<Addressing> {
    let dataset = || {
        path_param(
            "dataset",
            "The dataset's name or id (a UUID is tried as an id first). A `/` in a name is \
             sent percent-encoded as `%2F`.",
        )
    };
    let filename = || {
        path_param(
            "filename",
            "The image's file name (percent-encoded; it holds no `/`).",
        )
    };
    let by_path = "When several images of the dataset have that path, the live one is meant, \
        else the most recently archived one.";
    vec![
        Addressing {
            path: "/annotations/{image_id}",
            suffix: "",
            summary: "",
            names: "The image is named by its id (archived images included).".into(),
            params: vec![path_param("image_id", "The image's id.")],
            checks_body_id: true,
        },
        Addressing {
            path: "/annotations/{dataset}/{filename}",
            suffix: "_by_filename",
            summary: ", by dataset and file name",
            names: format!(
                "The image is named by its dataset and its file name in the root folder `/` \
                 (the newer clients' form). {by_path}"
            ),
            params: vec![dataset(), filename()],
            checks_body_id: false,
        },
        Addressing {
            path: "/annotations/{dataset}/{folder}/{filename}",
            suffix: "_by_path",
            summary: ", by dataset and path",
            names: format!(
                "The image is named by its dataset, virtual folder and file name (the newer \
                 clients' form), e.g. `/annotations/road-signs/cars/red/a.jpg`. {by_path}"
            ),
            params: vec![
                dataset(),
                path_param(
                    "folder",
                    "The image's virtual folder without its leading `/`, e.g. `cars/red`. It \
                     may span several segments: its `/`s may be sent as they are or \
                     percent-encoded as `%2F`.",
                ),
                filename(),
            ],
            checks_body_id: false,
        },
    ]
}

/// The User-Agent rule, shared by the reads and the writes.
const SHAPE_RULE: &str = "The User-Agent decides the annotation shape: `pictograph-python/` \
    older than 1.69, an unreadable version of it, or no User-Agent at all reads the 1.6.3 \
    shape (`oriented_box` and `instance_id` left out, an object `attributes` answered as a \
    one-element list) and may not write those extensions; any other caller reads the \
    annotations exactly as stored and may write them.";

fn get_annotations(at: &Addressing) -> Op {
    let mut params = at.params.clone();
    params.push(query_param(
        "include",
        "`metadata` adds each annotation's `metadata` object, which is otherwise withheld \
         (the official clients' models refuse the key). Comma-separated and repeatable; any \
         other value is refused with 422.",
        json!({"type": "string", "enum": ["metadata"]}),
    ));
    Op {
        method: Method::GET,
        path: at.path,
        route: ANNOTATIONS_ROUTE,
        access: Access::Key,
        operation: json!({
            "operationId": format!("get_annotations{}", at.suffix),
            "tags": ["annotations"],
            "summary": format!("An image's annotations{}", at.summary),
            "description": format!(
                "The image's whole annotation list in canonical form (`[]` when it has none), \
                 with the image's `version` for a conditional save. {} {SHAPE_RULE} 404 when \
                 the image or dataset is not in the key's organisation; 422 for an unknown \
                 `include`; 400 when a path segment is not UTF-8 once decoded.",
                at.names
            ),
            "parameters": params,
            "responses": with_key_errors(json!({
                "200": with_etag(json_response("The annotation list.", schema("AnnotationList"))),
            }), &[400, 404, 422]),
        }),
    }
}

/// `resp` with the `ETag` header every annotation answer carries.
fn with_etag(mut resp: Value) -> Value {
    resp["headers"] = json!({
        "ETag": {
            "description": "The image's version after this request, quoted (`\"3\"`): send it \
                back as `If-Match` to save only over this version.",
            "schema": {"type": "string"},
        },
    });
    resp
}

fn save_annotations(at: &Addressing) -> Op {
    let mut params = at.params.clone();
    params.push(json!({
        "name": "If-Match",
        "in": "header",
        "required": false,
        "description": "The image version the new list is based on, e.g. `\"3\"` (quotes and \
            a `W/` prefix are accepted): the save is refused with 409 when the image's version \
            is another. A value that is not a version is refused with 400. Sent with a body \
            `expected_version`, both must name the same version (422 otherwise).",
        "schema": {"type": "string"},
    }));
    params.push(idempotency_key());
    let body_id = if at.checks_body_id {
        "A body `image_id` other than the path's is refused with 422."
    } else {
        "A body `image_id` is ignored on this path."
    };
    Op {
        method: Method::POST,
        path: at.path,
        route: ANNOTATIONS_ROUTE,
        access: Access::Key,
        operation: json!({
            "operationId": format!("save_annotations{}", at.suffix),
            "tags": ["annotations"],
            "summary": format!("Replace an image's annotations{}", at.summary),
            "description": format!(
                "Replaces the image's whole annotation list (`[]` clears it) and answers the \
                 counts before and after. Each annotation is validated and stored canonical: \
                 the README shorthand (`\"bbox\": [x, y, w, h]`, `[x, y]` point lists for \
                 polygons and polylines, `\"keypoint\": [x, y]`) is converted, defaults are \
                 filled in and coordinates become floats. Class names must be among the \
                 dataset's classes when it defines any. With `expected_version` or `If-Match` \
                 the save is refused (409) when the image's version has changed since; \
                 without either it always overwrites. The image's status never changes. {} \
                 {body_id} {SHAPE_RULE} Errors: 400 unreadable JSON or `If-Match`; 404 \
                 unknown image or dataset; 409 stale version (or an Idempotency-Key whose \
                 first answer cannot be replayed); 413 body over 64 MiB; 422 \
                 invalid annotations, listed one per field in `detail` (loc `body`, \
                 `annotations`, index, key…), nothing being saved; 507 storage full.",
                at.names
            ),
            "parameters": params,
            "requestBody": json_body(
                "The new list, canonical or shorthand.",
                schema("AnnotationsSave"),
            ),
            "responses": with_key_errors(json!({
                "200": with_etag(json_response("Saved.", schema("AnnotationsSaved"))),
            }), &[400, 404, 409, 413, 422, 507]),
        }),
    }
}

fn delete_annotations(at: &Addressing) -> Op {
    Op {
        method: Method::DELETE,
        path: at.path,
        route: ANNOTATIONS_ROUTE,
        access: Access::Key,
        operation: json!({
            "operationId": format!("delete_annotations{}", at.suffix),
            "tags": ["annotations"],
            "summary": format!("Clear an image's annotations{}", at.summary),
            "description": format!(
                "Removes every annotation of the image, without a version check, and answers \
                 how many there were. The image's version goes up even when the list was \
                 already empty; its status does not change. {} 404 when the image or dataset \
                 is not in the key's organisation; 400 when a path segment is not UTF-8 once \
                 decoded; 507 storage full.",
                at.names
            ),
            "parameters": at.params,
            "responses": with_key_errors(json!({
                "200": with_etag(json_response("Cleared.", schema("AnnotationsDeleted"))),
            }), &[400, 404, 507]),
        }),
    }
}

// --- annotations: schemas -----------------------------------------------------------------

/// The four annotation types: the `type` value and the stem of their schemas' names.
const KINDS: [(&str, &str); 4] = [
    ("bbox", "Bbox"),
    ("polygon", "Polygon"),
    ("polyline", "Polyline"),
    ("keypoint", "Keypoint"),
];

/// A shorthand `[x, y]` pair.
fn pair() -> Value {
    json!({
        "type": "array",
        "description": "A point as `[x, y]`.",
        "prefixItems": [{"type": "number"}, {"type": "number"}],
        "minItems": 2,
        "maxItems": 2,
    })
}

/// A rotated box; `angle` is optional when sent and always answered.
fn oriented_box(input: bool) -> Value {
    let required: &[&str] = if input {
        &["cx", "cy", "w", "h"]
    } else {
        &["cx", "cy", "w", "h", "angle"]
    };
    json!({
        "type": "object",
        "description": "A rotated box (newer clients' extension, bbox only): centre `cx`, \
            `cy`, size `w`, `h` (both greater than 0) and `angle` in degrees, at least 0 and \
            less than 360 (0 when not sent).",
        "required": required,
        "properties": {
            "cx": {"type": "number"},
            "cy": {"type": "number"},
            "w": {"type": "number", "exclusiveMinimum": 0},
            "h": {"type": "number", "exclusiveMinimum": 0},
            "angle": {"type": "number", "minimum": 0, "exclusiveMaximum": 360, "default": 0},
        },
    })
}

/// The properties every annotation has, as answered (`input` false) or as accepted.
fn common_properties(kind: &str, input: bool) -> serde_json::Map<String, Value> {
    let nullable = |t: &str| {
        if input {
            json!([t, "null"])
        } else {
            json!(t)
        }
    };
    let classes = format!(
        "The class label: not blank, at most {MAX_NAME_CHARS} characters, and one of the \
         dataset's class names (case-sensitive) when the dataset defines classes."
    );
    let props = json!({
        "id": {
            "type": "string",
            "minLength": 1,
            "description": "The annotation's id, any non-blank string, unique within the \
                image's list.",
        },
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME_CHARS,
            "description": classes,
        },
        "type": {"const": kind, "description": "The annotation type."},
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 1.0,
            "description": "Between 0 and 1 inclusive; 1.0 when not sent.",
        },
        "created_by": {
            "type": nullable("string"),
            "description": "Who made the annotation; left out of answers when not sent or \
                null.",
        },
        "attributes": {
            "type": ["array", "object"],
            "default": [],
            "description": "Free-form attributes, `[]` when not sent: a list of any values, \
                or an object (newer clients' extension, refused from 1.6.3-shape callers). \
                1.6.3-shape readers get an object as a one-element list holding it (`[]` for \
                an empty object).",
        },
        "metadata": {
            "type": nullable("object"),
            "description": "Free-form data kept with the annotation, answered only with \
                `include=metadata`. An empty object or null is not stored.",
        },
    });
    match props {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// The optional axis-aligned box a polygon or polyline may carry.
fn extra_bounding_box(input: bool) -> Value {
    let description = "An optional box around the shape: kept as sent, never computed by the \
        server.";
    if input {
        json!({
            "oneOf": [schema("BoundingBox"), {"type": "null"}],
            "description": format!("{description} Null is the same as leaving it out."),
        })
    } else {
        json!({"allOf": [schema("BoundingBox")], "description": description})
    }
}

/// One annotation type as answered (`input` false) or as a save accepts it.
fn annotation_variant(kind: &str, input: bool) -> Value {
    let mut props = common_properties(kind, input);
    let mut required = vec!["id", "name", "type"];
    let mut any_geometry = None;
    let description;
    match kind {
        "bbox" => {
            props.insert(
                "bounding_box".into(),
                json!({"allOf": [schema("BoundingBox")], "description": "The box."}),
            );
            props.insert("oriented_box".into(), oriented_box(input));
            if input {
                props.insert(
                    "bbox".into(),
                    json!({
                        "type": "array",
                        "description": "Shorthand for `bounding_box`: `[x, y, w, h]`, w and \
                            h greater than 0. Not together with `bounding_box`.",
                        "prefixItems": [
                            {"type": "number"},
                            {"type": "number"},
                            {"type": "number", "exclusiveMinimum": 0},
                            {"type": "number", "exclusiveMinimum": 0},
                        ],
                        "minItems": 4,
                        "maxItems": 4,
                    }),
                );
                any_geometry = Some(json!([
                    {"required": ["bounding_box"]},
                    {"required": ["bbox"]},
                ]));
                description = "A bounding box: `bounding_box`, or the shorthand `bbox`.";
            } else {
                required.push("bounding_box");
                description = "A bounding box. `oriented_box` only reaches full-shape readers.";
            }
        }
        "polygon" => {
            let shorthand = json!({
                "type": "array",
                "description": "Shorthand: one ring (no holes) as `[x, y]` pairs. A last \
                    point equal to the first is dropped; at least 3 points must remain.",
                "items": pair(),
                "minItems": 3,
            });
            let geometry = if input {
                json!({"oneOf": [schema("PolygonGeometry"), shorthand]})
            } else {
                schema("PolygonGeometry")
            };
            props.insert("polygon".into(), geometry);
            props.insert("bounding_box".into(), extra_bounding_box(input));
            required.push("polygon");
            description = "A polygon: an outer ring and optional holes.";
        }
        "polyline" => {
            let shorthand = json!({
                "type": "array",
                "description": "Shorthand: the path as `[x, y]` pairs, at least 2.",
                "items": pair(),
                "minItems": 2,
            });
            let geometry = if input {
                json!({"oneOf": [schema("PolylineGeometry"), shorthand]})
            } else {
                schema("PolylineGeometry")
            };
            props.insert("polyline".into(), geometry);
            props.insert("bounding_box".into(), extra_bounding_box(input));
            required.push("polyline");
            description = "An open line.";
        }
        _ => {
            let geometry = if input {
                json!({"oneOf": [schema("Point"), pair()]})
            } else {
                schema("Point")
            };
            props.insert("keypoint".into(), geometry);
            props.insert(
                "instance_id".into(),
                json!({
                    "type": if input { json!(["integer", "null"]) } else { json!("integer") },
                    "minimum": 1,
                    "description": "Which object instance the point belongs to (newer \
                        clients' extension; an integral float is accepted). Answered to \
                        full-shape readers only.",
                }),
            );
            required.push("keypoint");
            description = "A single point. It never has a `bounding_box`.";
        }
    }
    if !input {
        required.extend(["confidence", "attributes"]);
    }
    let mut v = json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": props,
    });
    if let Some(one_of) = any_geometry {
        v["oneOf"] = one_of;
    }
    v
}

/// `oneOf` the four types, told apart by `type`.
fn union(suffix: &str, description: &str) -> Value {
    let refs: Vec<Value> = KINDS
        .iter()
        .map(|(_, stem)| schema(&format!("{stem}Annotation{suffix}")))
        .collect();
    let mapping: serde_json::Map<String, Value> = KINDS
        .iter()
        .map(|(kind, stem)| {
            (
                kind.to_string(),
                json!(format!("#/components/schemas/{stem}Annotation{suffix}")),
            )
        })
        .collect();
    json!({
        "description": description,
        "oneOf": refs,
        "discriminator": {"propertyName": "type", "mapping": mapping},
    })
}

fn annotation_schemas() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = vec![
        (
            "Point".into(),
            json!({
                "type": "object",
                "description": "A point in absolute pixels (never normalised): any finite \
                    numbers, negative ones included, not checked against the image's size. \
                    Answers always write floats (`3.0`).",
                "required": ["x", "y"],
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            }),
        ),
        (
            "BoundingBox".into(),
            json!({
                "type": "object",
                "description": "An axis-aligned box in pixels: top-left corner `x`, `y` \
                    (negative allowed) and size `w`, `h`, both greater than 0.",
                "required": ["x", "y", "w", "h"],
                "properties": {
                    "x": {"type": "number"},
                    "y": {"type": "number"},
                    "w": {"type": "number", "exclusiveMinimum": 0},
                    "h": {"type": "number", "exclusiveMinimum": 0},
                },
            }),
        ),
        (
            "PolygonGeometry".into(),
            json!({
                "type": "object",
                "description": "Rings of points: the first is the outer boundary, later ones \
                    are holes (even-odd). Rings are closed implicitly, so the first point need \
                    not be repeated at the end. The server does not check that rings are \
                    simple or that holes lie inside.",
                "required": ["paths"],
                "properties": {
                    "paths": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "array",
                            "description": "A ring of at least 3 points.",
                            "minItems": 3,
                            "items": schema("Point"),
                        },
                    },
                },
            }),
        ),
        (
            "PolylineGeometry".into(),
            json!({
                "type": "object",
                "description": "An open line through its points, in order.",
                "required": ["path"],
                "properties": {
                    "path": {"type": "array", "minItems": 2, "items": schema("Point")},
                },
            }),
        ),
        (
            "Annotation".into(),
            union(
                "",
                "One annotation in canonical form, as stored and answered: `id`, `name`, \
                 `type`, the type's geometry, `confidence` and `attributes` always; \
                 `created_by` when known; the extensions only for full-shape readers; \
                 `metadata` only when asked for.",
            ),
        ),
        (
            "AnnotationInput".into(),
            union(
                "Input",
                &format!(
                    "One annotation as a save accepts it: canonical, or with the README \
                     shorthand geometry; the two forms may be mixed in one list. Unknown keys \
                     are refused. At most {MAX_POINTS} points per annotation, all rings \
                     together."
                ),
            ),
        ),
        (
            "AnnotationList".into(),
            json!({
                "type": "object",
                "description": "An image's annotations.",
                "required": ["image_id", "annotations", "version"],
                "properties": {
                    "image_id": {"type": "string"},
                    "annotations": {"type": "array", "items": schema("Annotation")},
                    "version": {
                        "type": "integer",
                        "description": "The image's version, for `expected_version` or \
                            `If-Match`. Any change to the image (a save, a move, an update) \
                            raises it.",
                    },
                },
            }),
        ),
        (
            "AnnotationsSave".into(),
            json!({
                "type": "object",
                "description": "A save: the new list replaces the old one whole.",
                "required": ["annotations"],
                "properties": {
                    "image_id": {
                        "type": "string",
                        "description": "The image's id, as the 1.6.3 client sends it. On the \
                            id path it must be the path's; on the other paths it is ignored.",
                    },
                    "annotations": {
                        "type": "array",
                        "maxItems": MAX_ANNOTATIONS,
                        "items": schema("AnnotationInput"),
                    },
                    "expected_version": {
                        "type": ["integer", "null"],
                        "description": "The image version the list is based on (from a \
                            read): the save is refused with 409 when the image has changed \
                            since. Sent with `If-Match`, both must name the same version (422 \
                            otherwise); null or absent saves unconditionally (unless \
                            `If-Match` is sent).",
                    },
                },
            }),
        ),
        (
            "AnnotationsSaved".into(),
            json!({
                "type": "object",
                "description": "The outcome of a save.",
                "required": [
                    "success", "image_id", "previous_count", "new_count", "status", "version",
                ],
                "properties": {
                    "success": {"type": "boolean", "const": true},
                    "image_id": {"type": "string"},
                    "previous_count": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Annotations before the save.",
                    },
                    "new_count": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Annotations now.",
                    },
                    "status": {
                        "type": "string",
                        "enum": statuses(),
                        "description": "The image's status, which a save leaves as it is.",
                    },
                    "version": {
                        "type": "integer",
                        "description": "The image's version after the save.",
                    },
                },
            }),
        ),
        (
            "AnnotationsDeleted".into(),
            json!({
                "type": "object",
                "description": "The outcome of clearing an image's annotations.",
                "required": ["success", "image_id", "deleted_count", "version"],
                "properties": {
                    "success": {"type": "boolean", "const": true},
                    "image_id": {"type": "string"},
                    "deleted_count": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Annotations removed.",
                    },
                    "version": {
                        "type": "integer",
                        "description": "The image's version afterwards.",
                    },
                },
            }),
        ),
    ];
    for (kind, stem) in KINDS {
        out.push((format!("{stem}Annotation"), annotation_variant(kind, false)));
        out.push((
            format!("{stem}AnnotationInput"),
            annotation_variant(kind, true),
        ));
    }
    out
}

fn statuses() -> Vec<&'static str> {
    Status::ALL.iter().map(|s| s.as_str()).collect()
}

/// `n` with its thousands grouped: `100,000`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// --- batch --------------------------------------------------------------------------------

/// What every batch operation shares, for its description.
const BATCH_RULES: &str = "Ids that are not images of the dataset (or fail the operation's \
    own rule) are answered in `failed` and `failures` with a reason while the others go \
    through: a partial failure is a 200, never an error status. A repeated id counts once.";

fn batch_op(
    method: Method,
    path: &'static str,
    id: &str,
    summary: &str,
    description: &str,
    body: &str,
    forbidden: bool,
) -> Op {
    let ok = json!({
        "200": json_response(
            "What was done, and what failed image by image.",
            schema("BatchResult"),
        ),
    });
    let errors: &[u16] = if forbidden {
        &[400, 403, 404, 409, 413, 422, 507]
    } else {
        &[400, 404, 409, 413, 422, 507]
    };
    Op {
        method,
        path,
        route: path,
        access: Access::Key,
        operation: json!({
            "operationId": id,
            "tags": ["batch"],
            "summary": summary,
            "description": format!(
                "{description} {BATCH_RULES} Errors: 404 when the dataset is not in the key's \
                 organisation or none of the ids is an image of it; 422 for no ids, more than \
                 {}, or an invalid field; 400 unreadable JSON; 409 only for an \
                 Idempotency-Key whose first answer cannot be replayed; 413 body \
                 over 64 MiB; 507 storage full.",
                grouped(MAX_IDS)
            ),
            "parameters": [idempotency_key()],
            "requestBody": json_body("The dataset, the ids and the operation's options.", schema(body)),
            "responses": with_key_errors(ok, errors),
        }),
    }
}

fn batch_operations() -> Vec<Op> {
    vec![
        batch_op(
            Method::POST,
            "/batch/images/move",
            "batch_move_images",
            "Move images to a folder",
            "Moves images of one dataset to a virtual folder; only the database changes, the \
             bytes stay where they are. A live image fails when a live image of the target \
             folder already has its file name (of two moved images with one name, the first \
             wins); archived images move without that check. Images already in the folder \
             count as moved.",
            "BatchMove",
            false,
        ),
        batch_op(
            Method::POST,
            "/batch/images/copy",
            "batch_copy_images",
            "Copy images into a folder",
            "Copies images of one dataset into a virtual folder: each copy is a new live image, \
             with a new id and no display name, sharing the source's bytes. \
             `duplicate_handling` decides what happens when the folder already has the name; \
             `overwrite` deletes the images it replaces for good (their annotations too, and \
             their bytes once no image uses them), so it needs an admin or owner key (403 \
             otherwise). `succeeded` lists the source ids; the copies' ids are not answered.",
            "BatchCopy",
            true,
        ),
        batch_op(
            Method::POST,
            "/batch/images/delete",
            "batch_delete_images",
            "Archive or delete images",
            "Archives images of one dataset (recoverable: a batch update with `is_archived` \
             false restores them); images already archived count as archived. With \
             `permanent`, deletes them with their annotations instead, and frees their bytes \
             once no image uses them: this needs an admin or owner key (403 otherwise). \
             `operation` answers `archived` or `deleted`.",
            "BatchDelete",
            true,
        ),
        batch_op(
            Method::PATCH,
            "/batch/images/update",
            "batch_update_images",
            "Update images",
            "Sets the status, display name or archived flag of images of one dataset. \
             Restoring (`is_archived` false) fails, for that image only, when a live image \
             has taken its folder and file name meanwhile.",
            "BatchUpdate",
            false,
        ),
    ]
}

/// A batch body: `dataset_name` and `image_ids`, which every one has, and `extra`.
fn batch_body(description: &str, extra: Value, required_extra: &[&'static str]) -> Value {
    let mut props = json!({
        "dataset_name": {
            "type": "string",
            "description": "The dataset's name (not its id).",
        },
        "image_ids": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_IDS,
            "items": {"type": "string"},
            "description": "The images' ids; a repeated id counts once.",
        },
    });
    if let (Some(props), Value::Object(extra)) = (props.as_object_mut(), extra) {
        props.extend(extra);
    }
    let mut required = vec!["dataset_name", "image_ids"];
    required.extend(required_extra);
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": props,
    })
}

/// The target folder, under both its names.
fn target_folder() -> Value {
    json!({
        "target_folder_path": {
            "type": ["string", "null"],
            "default": "/",
            "maxLength": MAX_FOLDER,
            "description": format!(
                "The target virtual folder, `/` when not sent. It is normalised (`cars`, \
                 `/cars/` and `//cars` are one folder); `..`, control characters and more \
                 than {MAX_FOLDER} bytes are refused."
            ),
        },
        "target_directory_path": {
            "type": ["string", "null"],
            "description": "The same under the newer clients' name; it wins when both are sent.",
        },
    })
}

fn batch_schemas() -> Vec<(String, Value)> {
    let mut copy = target_folder();
    copy["duplicate_handling"] = json!({
        "type": ["string", "null"],
        "enum": ["rename", "skip", "overwrite", null],
        "default": "rename",
        "description": "When the target folder already has the file name: `rename` names the \
            copy `a-2.jpg`, `a-3.jpg`, … (counted in `renamed`); `skip` fails that source; \
            `overwrite` permanently deletes the live image that has the name (annotations \
            included) and puts the copy in its place, unless that image is one of the \
            sources, in which case the copy is renamed.",
    });
    copy["copy_annotations"] = json!({
        "type": "boolean",
        "default": false,
        "description": "Also copy the annotations and the status; otherwise the copies start \
            without annotations and with status `new`.",
    });
    vec![
        (
            "BatchMove".into(),
            batch_body("Images to move.", target_folder(), &[]),
        ),
        ("BatchCopy".into(), batch_body("Images to copy.", copy, &[])),
        (
            "BatchDelete".into(),
            batch_body(
                "Images to archive or delete.",
                json!({
                    "permanent": {
                        "type": "boolean",
                        "default": false,
                        "description": "Delete for good (admin or owner only) instead of \
                            archiving.",
                    },
                }),
                &[],
            ),
        ),
        (
            "BatchUpdate".into(),
            batch_body(
                "Images to update.",
                json!({
                    "updates": {
                        "type": "object",
                        "description": "The fields to set: at least one not null. A null \
                            field is left as it is; any other key is refused.",
                        "minProperties": 1,
                        "properties": {
                            "status": {
                                "type": ["string", "null"],
                                "enum": statuses().into_iter().map(Value::from)
                                    .chain([Value::Null]).collect::<Vec<_>>(),
                                "description": "The images' workflow status.",
                            },
                            "display_name": {
                                "type": ["string", "null"],
                                "description": format!(
                                    "A display name, at most {MAX_FILENAME} bytes; the file \
                                     name does not change."
                                ),
                            },
                            "is_archived": {
                                "type": ["boolean", "null"],
                                "description": "True archives, false restores.",
                            },
                        },
                    },
                }),
                &["updates"],
            ),
        ),
        (
            "BatchResult".into(),
            json!({
                "type": "object",
                "description": "The outcome of a batch operation, with both the 1.6.3 \
                    client's names (`processed`, `failed`, `affected_folders`) and the \
                    documented ones (`succeeded`, `failures`, `failed_count`).",
                "required": [
                    "affected_directories", "affected_folders", "failed", "failed_count",
                    "failures", "operation", "processed", "renamed", "succeeded", "success",
                ],
                "properties": {
                    "affected_directories": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "The same as `affected_folders`.",
                    },
                    "affected_folders": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "The folders the operation changed, sources and \
                            target, sorted.",
                    },
                    "failed": {
                        "type": "array",
                        "items": schema("BatchFailure"),
                        "description": "The ids not done, each with `id` and `image_id`.",
                    },
                    "failed_count": {"type": "integer", "minimum": 0},
                    "failures": {
                        "type": "array",
                        "items": schema("BatchFailure"),
                        "description": "The same failures, without `id`.",
                    },
                    "operation": {
                        "type": "string",
                        "enum": ["moved", "copied", "archived", "deleted", "updated"],
                    },
                    "processed": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "How many ids were done (distinct ids).",
                    },
                    "renamed": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Copies given a numbered name; 0 for the other \
                            operations.",
                    },
                    "succeeded": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "The ids done (for a copy, the sources' ids).",
                    },
                    "success": {
                        "type": "boolean",
                        "description": "True when no id failed.",
                    },
                },
            }),
        ),
        (
            "BatchFailure".into(),
            json!({
                "type": "object",
                "description": "One id a batch did not do, and why: e.g. `Image not found in \
                    dataset`, `'a.jpg' already exists in folder '/x'`, `skipped: …`, \
                    `cannot restore: …`.",
                "required": ["image_id", "reason"],
                "properties": {
                    "id": {
                        "type": "string",
                        "description": "The image id again (only in `failed`).",
                    },
                    "image_id": {"type": "string"},
                    "reason": {"type": "string"},
                },
            }),
        ),
    ]
}
