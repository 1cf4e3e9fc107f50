//! The OpenAPI document served at `/openapi.json` against the running server: every
//! operation it describes is called, and every answer (successes and a sample of errors)
//! is checked against what the document says of that operation and status: the schema of
//! a JSON body, or the content type of bytes. At the end every operation must have been
//! seen answering one of its documented successes.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The document, and the operations seen answering a documented success.
struct Spec {
    doc: Value,
    seen: Mutex<BTreeSet<(String, String)>>,
}

impl Spec {
    async fn fetch(t: &TestServer) -> Spec {
        let doc = t.anon.get("/openapi.json").await.ok_json(200);
        let spec = Spec {
            doc,
            seen: Mutex::default(),
        };
        spec.check("GET", "/openapi.json", &t.anon.get("/openapi.json").await);
        spec
    }

    /// Checks `resp` against the documented answer of `method template` with its status;
    /// returns its JSON body (null for bytes).
    #[track_caller]
    fn check(&self, method: &str, template: &str, resp: &Resp) -> Value {
        let text = || {
            String::from_utf8_lossy(&resp.bytes)
                .chars()
                .take(600)
                .collect::<String>()
        };
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let status = resp.status.as_u16().to_string();
        let documented = op["responses"].get(&status).unwrap_or_else(|| {
            panic!(
                "{method} {template} answered {status}, which is not documented: {}",
                text()
            )
        });
        let v = Validator { doc: &self.doc };
        let documented = v.resolve(documented);
        let kind = resp.header("content-type").unwrap_or_default();
        let body = match documented.get("content").and_then(Value::as_object) {
            None => {
                assert!(
                    resp.bytes.is_empty(),
                    "{method} {template} {status}: documented without a body, got {}",
                    text()
                );
                Value::Null
            }
            Some(content) if kind.starts_with("application/json") => {
                let media = content.get("application/json").unwrap_or_else(|| {
                    panic!("{method} {template} {status}: JSON is not documented ({content:?})")
                });
                let body = resp.json();
                let errors = v.errors(&media["schema"], &body, "$");
                assert!(
                    errors.is_empty(),
                    "{method} {template} {status} does not match its schema: {errors:#?}\n{}",
                    text()
                );
                body
            }
            Some(content) => {
                let essence = kind.split(';').next().unwrap_or("").trim().to_string();
                let listed = content.keys().any(|k| {
                    *k == essence
                        || k == "*/*"
                        || k.strip_suffix("/*")
                            .is_some_and(|top| essence.starts_with(&format!("{top}/")))
                });
                assert!(
                    listed,
                    "{method} {template} {status}: content type {kind:?} is not one of {:?}",
                    content.keys().collect::<Vec<_>>()
                );
                Value::Null
            }
        };
        if resp.status.is_success() || resp.status.as_u16() == 304 {
            self.seen
                .lock()
                .unwrap()
                .insert((method.to_string(), template.to_string()));
        }
        body
    }

    /// Every documented operation that was never seen answering a success.
    fn unseen(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let m = method.to_ascii_uppercase();
                if !seen.contains(&(m.clone(), path.clone())) {
                    out.push(format!("{m} {path}"));
                }
            }
        }
        out
    }
}

/// A developer API path template.
fn key(t: &str) -> String {
    format!("/api/v1/developer{t}")
}

/// The newest annotation shape (what current clients and tools get).
const MODERN: &str = "openapi-check/1.0";
/// The shape the official 1.6.3 client gets.
const LEGACY: &str = "pictograph-python/1.6.3";

async fn send(c: &Client, method: Method, path: &str, ua: &str, body: Option<&Value>) -> Resp {
    let mut rb = c.request(method, path).header("User-Agent", ua);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    Client::send(rb).await
}

impl Spec {
    /// Checks a JSON request body against the documented one of `method template`.
    #[track_caller]
    fn request(&self, method: &str, template: &str, body: &Value) {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {template}: no JSON body documented"
        );
        let errors = Validator { doc: &self.doc }.errors(schema, body, "$");
        assert!(
            errors.is_empty(),
            "{method} {template}: the body sent does not match the documented one: {errors:#?}"
        );
    }

    /// PUTs bytes to an upload URL: the server's own upload route is checked against the
    /// document; a bucket's presigned URL (bytes stored in S3) only has to take them.
    async fn upload(&self, t: &TestServer, url: &str, bytes: &[u8]) {
        let put = t.owner.put_bytes(url, bytes, "image/png").await;
        if url.starts_with(&t.base) {
            self.check("PUT", "/files/uploads/{id}", &put);
        } else {
            assert!(t.backend().is_s3(), "an upload URL elsewhere: {url}");
            put.expect(200);
        }
    }

    /// Sends a JSON write after checking its body against the document, then checks the
    /// answer.
    async fn write(
        &self,
        c: &Client,
        method: Method,
        template: &str,
        path: &str,
        body: &Value,
    ) -> Value {
        self.request(method.as_str(), template, body);
        let resp = send(c, method.clone(), path, MODERN, Some(body)).await;
        self.check(method.as_str(), template, &resp)
    }

    /// Sends a GET or DELETE (with `ua`) and checks the answer.
    async fn call(
        &self,
        c: &Client,
        method: Method,
        template: &str,
        path: &str,
        ua: &str,
    ) -> Value {
        let resp = send(c, method.clone(), path, ua, None).await;
        self.check(method.as_str(), template, &resp)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_the_document_says() {
    let t = TestServer::start().await;
    let spec = Spec::fetch(&t).await;
    let (o, get, post, patch, delete) = (
        &t.owner,
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
    );

    spec.check("GET", "/healthz", &t.anon.get("/healthz").await);

    // Datasets.
    let created = spec
        .write(
            o,
            post.clone(),
            &key("/datasets/"),
            "datasets/",
            &json!({
                "name": "oa", "description": "checked against the document",
                "classes": [{"name": "car"}, {"name": "sign"}],
            }),
        )
        .await;
    let ds = created["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            created["data"]["id"]
                .as_str()
                .expect("the dataset's id")
                .to_string()
        });
    spec.call(o, get.clone(), &key("/datasets/"), "datasets/", MODERN)
        .await;
    spec.call(
        o,
        get.clone(),
        &key("/datasets/by-name/{name}"),
        "datasets/by-name/oa",
        MODERN,
    )
    .await;
    spec.call(
        o,
        get.clone(),
        &key("/datasets/{dataset}"),
        &format!("datasets/{ds}"),
        MODERN,
    )
    .await;
    spec.write(
        o,
        patch.clone(),
        &key("/datasets/{dataset}"),
        &format!("datasets/{ds}"),
        &json!({"description": "patched"}),
    )
    .await;

    // Uploads: one at a time (JSON body, signed PUT, form register) and in bulk.
    let signed_body = json!({"dataset_id": ds, "filename": "a.png", "folder_path": "/", "content_type": "image/png"});
    let signed = spec
        .write(
            o,
            post.clone(),
            &key("/images/upload-url"),
            "images/upload-url",
            &signed_body,
        )
        .await;
    let bytes = png_seeded(8, 6, 1);
    spec.upload(&t, signed["upload_url"].as_str().unwrap(), &bytes)
        .await;
    let reg = Register {
        dataset_id: &ds,
        folder: "/",
        filename: "a.png",
        file_size: bytes.len(),
        mime_type: "image/png",
        width: Some(8),
        height: Some(6),
        idempotency_key: None,
    };
    let registered = spec.check(
        "POST",
        &key("/images/register"),
        &o.register(&signed, &reg).await,
    );
    let a = registered["image_id"]
        .as_str()
        .expect("image_id")
        .to_string();

    let bulk = json!({"dataset": "oa", "images": [
        {"filename": "b.png", "directory_path": "/cars", "content_type": "image/png"},
        {"filename": "c.png", "directory_path": "/cars/red", "content_type": "image/png"},
    ]});
    let urls = spec
        .write(
            o,
            post.clone(),
            &key("/images/bulk-upload-url"),
            "images/bulk-upload-url",
            &bulk,
        )
        .await;
    let entries = urls["upload_urls"]
        .as_array()
        .or_else(|| urls["data"]["upload_urls"].as_array())
        .expect("upload_urls")
        .clone();
    for (i, entry) in entries.iter().enumerate() {
        let bytes = png_seeded(8, 6, 2 + i as u8);
        spec.upload(&t, entry["upload_url"].as_str().unwrap(), &bytes)
            .await;
    }
    let register_all = json!({"dataset": "oa", "images": [
        {"filename": "b.png", "directory_path": "/cars"},
        {"filename": "c.png", "directory_path": "/cars/red"},
    ]});
    spec.write(
        o,
        post.clone(),
        &key("/images/bulk-register"),
        "images/bulk-register",
        &register_all,
    )
    .await;

    // Images: listing, bytes and metadata by id and by path, the signed link.
    let list = spec
        .call(
            o,
            get.clone(),
            &key("/images/"),
            "images/?dataset=oa&limit=10",
            MODERN,
        )
        .await;
    let images = list["images"]
        .as_array()
        .or_else(|| list["data"].as_array())
        .expect("the listing's images")
        .clone();
    assert_eq!(images.len(), 3, "{list}");
    let id_of = |name: &str| {
        images
            .iter()
            .find(|i| i["filename"] == name)
            .and_then(|i| i["id"].as_str())
            .unwrap_or_else(|| panic!("{name} listed"))
            .to_string()
    };
    let (b, c) = (id_of("b.png"), id_of("c.png"));
    spec.call(
        o,
        get.clone(),
        &key("/images/{image}"),
        &format!("images/{a}"),
        MODERN,
    )
    .await;
    let ranged = Client::send(
        o.request(get.clone(), &format!("images/{a}"))
            .header("Range", "bytes=0-9"),
    )
    .await;
    spec.check("GET", &key("/images/{image}"), &ranged);
    let meta = spec
        .call(
            o,
            get.clone(),
            &key("/images/{image}/metadata"),
            &format!("images/{a}/metadata"),
            MODERN,
        )
        .await;
    spec.call(
        o,
        get.clone(),
        &key("/images/{dataset}/{path}"),
        "images/oa/cars/b.png",
        MODERN,
    )
    .await;
    spec.call(
        o,
        get.clone(),
        &key("/images/{dataset}/{path}/metadata"),
        "images/oa/cars/red/c.png/metadata",
        MODERN,
    )
    .await;
    let link = meta["image"]["image_url"]
        .as_str()
        .or_else(|| meta["image_url"].as_str())
        .expect("a signed link")
        .to_string();
    spec.check(
        "GET",
        "/files/images/{id}",
        &Client::send(reqwest::Client::new().get(&link)).await,
    );

    // Annotations by id, by file name in the root folder, and by folder and file name; in
    // the newest shape and in the 1.6.3 client's.
    let boxes = json!({"annotations": [
        {"id": "b1", "name": "car", "type": "bbox", "bbox": [1, 1, 3, 2]},
        {"id": "p1", "name": "sign", "type": "polygon", "polygon": [[0, 0], [4, 0], [4, 4]]},
        {"id": "l1", "name": "sign", "type": "polyline", "polyline": [[0, 0], [2, 3]]},
        {"id": "k1", "name": "car", "type": "keypoint", "keypoint": [2, 2], "metadata": {"by": "check"}},
    ]});
    for (template, path) in [
        ("/annotations/{image_id}", format!("annotations/{a}")),
        (
            "/annotations/{dataset}/{filename}",
            "annotations/oa/a.png".to_string(),
        ),
        (
            "/annotations/{dataset}/{folder}/{filename}",
            "annotations/oa/cars/b.png".to_string(),
        ),
    ] {
        spec.write(o, post.clone(), &key(template), &path, &boxes)
            .await;
        for ua in [MODERN, LEGACY] {
            spec.call(o, get.clone(), &key(template), &path, ua).await;
        }
        spec.call(
            o,
            get.clone(),
            &key(template),
            &format!("{path}?include=metadata"),
            MODERN,
        )
        .await;
        spec.call(o, delete.clone(), &key(template), &path, MODERN)
            .await;
    }
    spec.write(
        o,
        post.clone(),
        &key("/annotations/{image_id}"),
        &format!("annotations/{c}"),
        &boxes,
    )
    .await;

    // The download listing, by id and by name, with annotations embedded.
    spec.call(
        o,
        get.clone(),
        &key("/datasets/{dataset}/download"),
        &format!("datasets/{ds}/download?include_annotations=true"),
        MODERN,
    )
    .await;
    spec.call(
        o,
        get.clone(),
        &key("/datasets/by-name/{name}/download"),
        "datasets/by-name/oa/download?include_annotations=true",
        LEGACY,
    )
    .await;

    // Batches.
    spec.write(o, post.clone(), &key("/batch/images/move"), "batch/images/move",
        &json!({"dataset_name": "oa", "image_ids": [b, "no-such-image"], "target_folder_path": "/moved"})).await;
    spec.write(o, post.clone(), &key("/batch/images/copy"), "batch/images/copy",
        &json!({"dataset_name": "oa", "image_ids": [c], "target_folder_path": "/copies", "duplicate_handling": "rename", "copy_annotations": true})).await;
    spec.write(
        o,
        patch.clone(),
        &key("/batch/images/update"),
        "batch/images/update",
        &json!({"dataset_name": "oa", "image_ids": [a, b], "updates": {"status": "complete"}}),
    )
    .await;
    spec.write(
        o,
        post.clone(),
        &key("/batch/images/delete"),
        "batch/images/delete",
        &json!({"dataset_name": "oa", "image_ids": [c], "permanent": false}),
    )
    .await;

    // A server-side export, its signed archive, and its deletion.
    let job = spec
        .write(
            o,
            post.clone(),
            &key("/datasets/{dataset}/exports"),
            &format!("datasets/{ds}/exports"),
            &json!({"format": "coco", "status": "complete"}),
        )
        .await;
    let job_id = job["id"].as_str().expect("the job's id").to_string();
    spec.call(
        o,
        get.clone(),
        &key("/datasets/{dataset}/exports"),
        &format!("datasets/{ds}/exports"),
        MODERN,
    )
    .await;
    let mut done = Value::Null;
    for _ in 0..300 {
        done = spec
            .call(
                o,
                get.clone(),
                &key("/datasets/{dataset}/exports/{id}"),
                &format!("datasets/{ds}/exports/{job_id}"),
                MODERN,
            )
            .await;
        if done["state"] != "queued" && done["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(done["state"], "complete", "{done}");
    let archive =
        Client::send(reqwest::Client::new().get(done["download_url"].as_str().unwrap())).await;
    spec.check("GET", "/files/exports/{id}", &archive);
    let resumed = Client::send(
        reqwest::Client::new()
            .get(done["download_url"].as_str().unwrap())
            .header("Range", "bytes=100-"),
    )
    .await;
    assert_eq!(resumed.status, 206);
    spec.check("GET", "/files/exports/{id}", &resumed);
    spec.call(
        o,
        delete.clone(),
        &key("/datasets/{dataset}/exports/{id}"),
        &format!("datasets/{ds}/exports/{job_id}"),
        MODERN,
    )
    .await;

    // Projects: the same datasets under the official client's write paths.
    spec.write(
        o,
        post.clone(),
        &key("/projects/"),
        "projects/",
        &json!({"name": "proj", "description": "p"}),
    )
    .await;
    spec.call(o, get.clone(), &key("/projects/"), "projects/", MODERN)
        .await;
    spec.call(
        o,
        get.clone(),
        &key("/projects/{name}"),
        "projects/proj",
        MODERN,
    )
    .await;
    spec.write(
        o,
        patch.clone(),
        &key("/projects/{name}"),
        "projects/proj",
        &json!({"description": "q"}),
    )
    .await;
    spec.call(
        o,
        delete.clone(),
        &key("/projects/{name}"),
        "projects/proj",
        MODERN,
    )
    .await;

    // Deletions: an image by path and by id, then the dataset.
    spec.call(
        o,
        delete.clone(),
        &key("/images/{dataset}/{path}"),
        "images/oa/moved/b.png",
        MODERN,
    )
    .await;
    spec.call(
        o,
        delete.clone(),
        &key("/images/{image}"),
        &format!("images/{a}?permanent=true"),
        MODERN,
    )
    .await;

    // A sample of errors, each in the shape the document gives it.
    spec.call(
        o,
        get.clone(),
        &key("/datasets/by-name/{name}"),
        "datasets/by-name/nothing",
        MODERN,
    )
    .await;
    spec.call(
        &t.anon,
        get.clone(),
        &key("/datasets/"),
        "datasets/",
        MODERN,
    )
    .await;
    let refused = send(
        o,
        post.clone(),
        "datasets/",
        MODERN,
        Some(&json!({"name": 7})),
    )
    .await;
    assert_eq!(refused.status, 422);
    spec.check("POST", &key("/datasets/"), &refused);
    let bad_box =
        json!({"annotations": [{"id": "x", "name": "car", "type": "bbox", "bbox": [0, 0, -1, 2]}]});
    let refused = send(
        o,
        post.clone(),
        &format!("annotations/{c}"),
        MODERN,
        Some(&bad_box),
    )
    .await;
    assert_eq!(refused.status, 422);
    spec.check("POST", &key("/annotations/{image_id}"), &refused);
    assert!(
        !Validator { doc: &spec.doc }
            .errors(
                &spec.doc["components"]["schemas"]["AnnotationsSave"],
                &bad_box,
                "$"
            )
            .is_empty(),
        "the document accepts a box the server refuses"
    );
    spec.call(
        o,
        delete.clone(),
        &key("/datasets/{dataset}"),
        &format!("datasets/{ds}"),
        MODERN,
    )
    .await;

    let mut unseen = spec.unseen();
    if t.backend().is_s3() {
        // Upload URLs lead to the bucket itself: the server's own upload route is not used.
        unseen.retain(|op| op != "PUT /files/uploads/{id}");
    }
    assert!(
        unseen.is_empty(),
        "never seen answering a success: {unseen:#?}"
    );
    assert!(
        unseen.is_empty(),
        "never seen answering a success: {unseen:#?}"
    );
    t.stop().await;
}

/// The whole document, kept as a snapshot: any change to the API's description shows up in
/// review as a change to this file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_changes_only_on_purpose() {
    let t = TestServer::start().await;
    let doc = t.anon.get("/openapi.json").await.ok_json(200);
    insta::assert_json_snapshot!("openapi", doc, {".info.version" => "[version]"});
    t.stop().await;
}

/// The checker itself refuses what it should: a test that passes everything proves nothing.
#[test]
fn the_checker_refuses_values_its_schemas_exclude() {
    let doc = json!({"components": {"schemas": {
        "Box": {"type": "object", "required": ["x"], "properties": {
            "x": {"type": "integer", "minimum": 0},
            "kind": {"enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0}]},
        }},
        "Either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    }}});
    let v = Validator { doc: &doc };
    let r#box = json!({"$ref": "#/components/schemas/Box"});
    let either = json!({"$ref": "#/components/schemas/Either"});
    assert!(v
        .errors(
            &r#box,
            &json!({"x": 1, "kind": "a", "tags": ["t"], "pair": ["p", 1]}),
            "$"
        )
        .is_empty());
    for bad in [
        json!({}),
        json!({"x": "1"}),
        json!({"x": -1}),
        json!({"x": 1.5}),
        json!({"x": 1, "kind": "c"}),
        json!({"x": 1, "tags": ["a", "b", "c"]}),
        json!({"x": 1, "tags": [1]}),
        json!({"x": 1, "pair": ["p", 0]}),
        json!([1]),
    ] {
        assert!(!v.errors(&r#box, &bad, "$").is_empty(), "{bad} passed");
    }
    assert!(v.errors(&either, &json!("s"), "$").is_empty());
    assert!(!v.errors(&either, &json!(true), "$").is_empty());
}
/// Checks JSON values against the schemas of the OpenAPI document, for the subset of JSON
/// Schema the document uses: `$ref`, `type` (one or a list), `const`, `enum`, `properties`,
/// `required`, `minProperties`, `items`, `prefixItems`, `oneOf`, `anyOf`, `allOf`, the
/// (exclusive) minimums and maximums, `minItems`, `maxItems`, `minLength` and `maxLength`.
struct Validator<'a> {
    doc: &'a Value,
}

impl Validator<'_> {
    fn resolve<'b>(&'b self, schema: &'b Value) -> &'b Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = self
                    .doc
                    .pointer(r.strip_prefix('#').expect("local reference"))
                    .unwrap_or_else(|| panic!("{r} is not defined"));
                self.resolve(target)
            }
            None => schema,
        }
    }

    /// The mistakes of `v` against `schema`, each with where it is (empty: valid).
    fn errors(&self, schema: &Value, v: &Value, at: &str) -> Vec<String> {
        let schema = self.resolve(schema);
        let mut out = Vec::new();
        let Some(s) = schema.as_object() else {
            return out;
        };
        if let Some(c) = s.get("const") {
            if c != v {
                out.push(format!("{at}: {v} is not {c}"));
            }
        }
        if let Some(options) = s.get("enum").and_then(Value::as_array) {
            if !options.contains(v) {
                out.push(format!("{at}: {v} is not one of {options:?}"));
            }
        }
        if let Some(types) = s.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| type_matches(t, v)) {
                out.push(format!("{at}: {v} is not of type {types:?}"));
                return out;
            }
        }
        for all in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(self.errors(all, v, at));
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            if !any.iter().any(|o| self.errors(o, v, at).is_empty()) {
                out.push(format!("{at}: {v} matches none of anyOf"));
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            let fits: Vec<Vec<String>> = one.iter().map(|o| self.errors(o, v, at)).collect();
            let n = fits.iter().filter(|e| e.is_empty()).count();
            if n != 1 {
                out.push(format!(
                    "{at}: {v} matches {n} of oneOf ({:?})",
                    fits.iter().flatten().take(6).collect::<Vec<_>>()
                ));
            }
        }
        if let Some(obj) = v.as_object() {
            let n = obj.len() as u64;
            if s.get("minProperties")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                out.push(format!("{at}: {n} fields, fewer than minProperties"));
            }
            for req in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = req.as_str().unwrap();
                if !obj.contains_key(name) {
                    out.push(format!("{at}: required `{name}` is missing"));
                }
            }
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if let Some(x) = obj.get(k) {
                        out.extend(self.errors(sub, x, &format!("{at}.{k}")));
                    }
                }
            }
        }
        if let Some(items) = v.as_array() {
            let prefix = s.get("prefixItems").and_then(Value::as_array);
            for (i, x) in items.iter().enumerate() {
                let item = match prefix.and_then(|p| p.get(i)) {
                    Some(first) => Some(first),
                    None => s.get("items"),
                };
                if let Some(item) = item {
                    out.extend(self.errors(item, x, &format!("{at}[{i}]")));
                }
            }
            let n = items.len() as u64;
            if s.get("minItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                out.push(format!("{at}: {n} items, fewer than minItems"));
            }
            if s.get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
            {
                out.push(format!("{at}: {n} items, more than maxItems"));
            }
        }
        if let Some(x) = v.as_f64() {
            if s.get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x < m)
            {
                out.push(format!("{at}: {x} is under the minimum"));
            }
            if s.get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x > m)
            {
                out.push(format!("{at}: {x} is over the maximum"));
            }
            if s.get("exclusiveMinimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x <= m)
            {
                out.push(format!("{at}: {x} is not over the exclusive minimum"));
            }
            if s.get("exclusiveMaximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x >= m)
            {
                out.push(format!("{at}: {x} is not under the exclusive maximum"));
            }
        }
        if let Some(text) = v.as_str() {
            let n = text.chars().count() as u64;
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| n < m)
            {
                out.push(format!("{at}: shorter than minLength"));
            }
            if s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
            {
                out.push(format!("{at}: longer than maxLength"));
            }
        }
        out
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}
