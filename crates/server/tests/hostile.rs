//! Hostile input: every case gets a clear 4xx with a JSON `detail` and changes nothing stored.
//! One table row per case, so adding a case is one line.

mod common;

use common::{s, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

/// A request body: JSON, or raw text with a content type.
enum B {
    None,
    J(Value),
    Raw(&'static str, String),
}

fn points(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"x": i as f64, "y": (i % 7) as f64}))
            .collect(),
    )
}

/// Everything a client can observe of the organisation's data.
async fn snapshot(t: &TestServer) -> Value {
    let list = t.owner.get("datasets/?limit=1000").await.ok_json(200);
    let mut out = Vec::new();
    for d in list["datasets"].as_array().unwrap() {
        let name = s(d, "name");
        let images = t
            .owner
            .get(&format!(
                "images/?dataset={}&include_archived=true",
                common::enc(&name)
            ))
            .await
            .ok_json(200);
        let mut imgs = Vec::new();
        for i in images["images"].as_array().unwrap() {
            let id = s(i, "id");
            let ann = t.owner.get(&format!("annotations/{id}")).await.ok_json(200);
            imgs.push(json!([
                i["filename"],
                i["virtual_folder_path"],
                i["status"],
                i["is_archived"],
                i["file_size"],
                ann["annotations"]
            ]));
        }
        out.push(json!([
            d["name"],
            d["description"],
            d["classes"],
            d["image_count"],
            d["archived_images"],
            d["total_size"],
            imgs
        ]));
    }
    Value::Array(out)
}

#[tokio::test]
async fn hostile_requests_are_refused_and_change_nothing() {
    let t = TestServer::start().await;
    let d = t
        .owner
        .create_dataset_with(&json!({"name": "victim", "classes": [{"name": "car"}]}))
        .await;
    let ds = s(&d, "id");
    let img = t.owner.upload_png(&ds, "/cars", "a.png", 1).await;
    let id = s(&img, "id");
    t.owner.post(&format!("annotations/{id}"), &json!({"annotations": [{"id": "1", "name": "car", "type": "bbox", "bounding_box": {"x": 1.0, "y": 1.0, "w": 2.0, "h": 2.0}, "confidence": 1.0, "attributes": []}]})).await.expect(200);
    let ann = format!("annotations/{id}");
    let bbox = |extra: Value| {
        let mut a = json!({"id": "2", "name": "car", "type": "bbox", "bounding_box": {"x": 1.0, "y": 1.0, "w": 2.0, "h": 2.0}, "confidence": 1.0, "attributes": []});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        json!({"annotations": [a]})
    };
    let up = |filename: &str, folder: &str| json!({"dataset_id": ds, "filename": filename, "folder_path": folder, "content_type": "image/png"});
    let many_ids: Vec<String> = (0..100_001).map(|i| format!("id-{i}")).collect();
    // 18 MB of small numbers: many times that in memory once parsed.
    let zeros = format!("{{\"annotations\":[{}0]}}", "0,".repeat(9_000_000));

    let cases: Vec<(&str, Method, String, B, u16)> = vec![
        ("traversal in filename", Method::POST, "images/upload-url".into(), B::J(up("../../etc/passwd.png", "/")), 422),
        ("separator in filename", Method::POST, "images/upload-url".into(), B::J(up("a/b.png", "/")), 422),
        ("backslash in filename", Method::POST, "images/upload-url".into(), B::J(up("..\\x.png", "/")), 422),
        ("NUL in filename", Method::POST, "images/upload-url".into(), B::J(up("a\u{0}.png", "/")), 422),
        ("newline in filename", Method::POST, "images/upload-url".into(), B::J(up("a\n.png", "/")), 422),
        ("traversal in folder", Method::POST, "images/upload-url".into(), B::J(up("a.png", "/cars/../../x")), 422),
        ("control char in folder", Method::POST, "images/upload-url".into(), B::J(up("a.png", "/ca\u{7}rs")), 422),
        ("unsupported extension", Method::POST, "images/upload-url".into(), B::J(up("a.exe", "/")), 415),
        ("declared type mismatch", Method::POST, "images/upload-url".into(), B::J(json!({"dataset_id": ds, "filename": "a.png", "content_type": "text/html"})), 415),
        ("existing name", Method::POST, "images/upload-url".into(), B::J(up("a.png", "cars/")), 409),
        ("control char in dataset name", Method::POST, "projects/".into(), B::J(json!({"name": "bad\u{1}name"})), 422),
        ("blank dataset name", Method::POST, "projects/".into(), B::J(json!({"name": "   "})), 422),
        ("overlong dataset name", Method::POST, "projects/".into(), B::J(json!({"name": "n".repeat(201)})), 422),
        ("overlong class name", Method::PATCH, "projects/victim".into(), B::J(json!({"classes": [{"name": "c".repeat(121)}]})), 422),
        ("classes of the wrong type", Method::PATCH, "projects/victim".into(), B::J(json!({"classes": "car"})), 422),
        ("name of the wrong type", Method::POST, "projects/".into(), B::J(json!({"name": 5})), 422),
        ("malformed JSON", Method::POST, "projects/".into(), B::Raw("application/json", "{\"name\": ".into()), 400),
        ("JSON array body", Method::POST, "projects/".into(), B::Raw("application/json", "[1,2]".into()), 422),
        ("number out of range", Method::POST, ann.clone(), B::Raw("application/json", r#"{"annotations":[{"id":"2","name":"car","type":"keypoint","keypoint":{"x":1e999,"y":1}}]}"#.into()), 400),
        ("10,001-point polygon", Method::POST, ann.clone(), B::J(json!({"annotations": [{"id": "p", "name": "car", "type": "polygon", "polygon": {"paths": [points(10_001)]}, "confidence": 1.0, "attributes": []}]})), 422),
        ("string coordinate", Method::POST, ann.clone(), B::J(bbox(json!({"bounding_box": {"x": "1", "y": 1.0, "w": 2.0, "h": 2.0}}))), 422),
        ("unknown class", Method::POST, ann.clone(), B::J(bbox(json!({"name": "dog"}))), 422),
        ("unknown key", Method::POST, ann.clone(), B::J(bbox(json!({"reviewer": {"a": 1}}))), 422),
        ("a body of too many JSON values", Method::POST, ann.clone(), B::Raw("application/json", zeros), 413),
        ("annotations not a list", Method::POST, ann.clone(), B::J(json!({"annotations": {"id": "x"}})), 422),
        ("image id mismatch", Method::POST, ann.clone(), B::J(json!({"image_id": "someone-else", "annotations": []})), 422),
        ("ids of the wrong type", Method::POST, "batch/images/move".into(), B::J(json!({"dataset_name": "victim", "image_ids": "abc"})), 422),
        ("too many ids", Method::POST, "batch/images/delete".into(), B::J(json!({"dataset_name": "victim", "image_ids": many_ids, "permanent": false})), 422),
        ("traversal as batch target", Method::POST, "batch/images/move".into(), B::J(json!({"dataset_name": "victim", "image_ids": [id], "target_folder_path": "/../up"})), 422),
        ("empty update", Method::PATCH, "batch/images/update".into(), B::J(json!({"dataset_name": "victim", "image_ids": [id], "updates": {}})), 422),
        ("bad status", Method::PATCH, "batch/images/update".into(), B::J(json!({"dataset_name": "victim", "image_ids": [id], "updates": {"status": "done'; --"}})), 422),
        ("huge limit", Method::GET, "datasets/?limit=100000000".into(), B::None, 422),
        ("negative offset", Method::GET, "datasets/?limit=10&offset=-1".into(), B::None, 422),
        ("limit not a number", Method::GET, "datasets/?limit=ten".into(), B::None, 422),
        ("huge images_limit", Method::GET, "datasets/by-name/victim?include_images=true&images_limit=99999999".into(), B::None, 422),
        ("SQL in a name lookup", Method::GET, "datasets/by-name/victim'%20OR%20'1'%3D'1".into(), B::None, 404),
        ("SQL in an id", Method::GET, "images/x'%20OR%201%3D1%20--/metadata".into(), B::None, 404),
        ("forged upload signature", Method::PUT, "/files/uploads/abc?expires=9999999999&sig=00".into(), B::Raw("image/png", "x".into()), 403),
        ("expired upload signature", Method::PUT, "/files/uploads/abc?expires=1&sig=00".into(), B::Raw("image/png", "x".into()), 403),
        ("forged download signature", Method::GET, format!("/files/images/{id}?expires=9999999999&sig=abcd"), B::None, 403),
        ("register without an upload", Method::POST, "images/register".into(), B::J(json!({"dataset_id": ds, "filename": "z.png", "gcs_path": "nope"})), 404),
    ];

    let before = snapshot(&t).await;
    for (name, method, path, body, want) in cases {
        let rb = t.owner.request(method, &path);
        let rb = match body {
            B::None => rb,
            B::J(v) => rb.json(&v),
            B::Raw(ct, text) => rb.header("content-type", ct).body(text),
        };
        let r = common::Client::send(rb).await;
        assert_eq!(
            r.status.as_u16(),
            want,
            "{name}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        let body: Value =
            serde_json::from_slice(&r.bytes).unwrap_or_else(|_| panic!("{name}: body is not JSON"));
        let detail = &body["detail"];
        assert!(
            detail.as_str().is_some_and(|d| !d.is_empty())
                || detail.as_array().is_some_and(|l| !l.is_empty()),
            "{name}: a detail message: {body}"
        );
        let text = body.to_string().to_lowercase();
        assert!(
            !text.contains("sqlite")
                && !text.contains("syntax error")
                && !text.contains("panicked"),
            "{name}: internals leaked: {body}"
        );
    }
    assert_eq!(
        snapshot(&t).await,
        before,
        "no refused request changed anything"
    );

    // SQL metacharacters in a legitimate name are just characters.
    let odd = "x'; DROP TABLE images; --";
    t.owner.create_dataset(odd).await;
    let got = t
        .owner
        .get(&format!("datasets/by-name/{}", common::enc(odd)))
        .await
        .ok_json(200);
    assert_eq!(got["dataset"]["name"], odd);
    assert_eq!(
        t.owner
            .get(&format!("images/{id}/metadata"))
            .await
            .ok_json(200)["image"]["filename"],
        "a.png"
    );

    // A signed upload URL is single-use: after register it no longer takes bytes.
    let signed = t
        .owner
        .upload_url(&ds, "/", "once.png", "image/png")
        .await
        .ok_json(200);
    let url = s(&signed, "upload_url");
    let first = t
        .owner
        .put_bytes(&url, &common::png(4, 4), "image/png")
        .await;
    assert!(first.status.is_success());
    let reg = t.owner.post("images/register", &json!({"dataset_id": ds, "filename": "once.png", "gcs_path": signed["gcs_path"], "folder_path": "/"})).await;
    assert!(reg.status.is_success());
    let again = t
        .owner
        .put_bytes(&url, &common::png(5, 5), "image/png")
        .await;
    if url.starts_with(&t.base) {
        assert_eq!(again.status.as_u16(), 404, "our upload URL is single-use");
    }
    // Whatever a bucket accepts after register, the upload cannot be registered again.
    let twice = t.owner.post("images/register", &json!({"dataset_id": ds, "filename": "once.png", "gcs_path": signed["gcs_path"], "folder_path": "/"})).await;
    assert_eq!(twice.status.as_u16(), 404);
    t.stop().await;
}
