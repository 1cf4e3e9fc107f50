//! Organisation isolation over the whole route table: a key of organisation A gets 404 for
//! every id and name of organisation B on every endpoint, and B's data is unchanged after.
//!
//! The endpoints come from `pictograph_server::api::routes()`, the table the router is built
//! from: a route without a probe here fails the test, so a new endpoint cannot skip it.

mod common;

use common::*;
use pictograph_server::api::{self, Access, RouteSpec};
use pictograph_server::auth::{self, Role};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Org B's dataset name: a space and a slash, so path segments must be encoded.
const B_NAME: &str = "b secret/set";
const B_FOLDER: &str = "/cars/red";

/// What org B owns, by every name and id a request can carry.
struct OrgB {
    dataset_id: String,
    image_ids: [String; 2],
    image_paths: [String; 2],
    upload_id: String,
    upload_url: String,
    upload_bytes: Vec<u8>,
    /// Two finished export jobs.
    export_ids: [String; 2],
}

/// A request body.
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

/// One request a probe sends.
#[derive(Clone)]
struct Call {
    method: Method,
    /// Relative to the developer prefix for key routes, absolute (`/…`) otherwise.
    path: String,
    body: Body,
}

impl Call {
    fn new(method: &Method, path: String, body: Body) -> Call {
        Call {
            method: method.clone(),
            path,
            body,
        }
    }

    async fn send(&self, client: &Client) -> Resp {
        let rb = client.request(self.method.clone(), &self.path);
        let rb = match &self.body {
            Body::None => rb,
            Body::Json(v) => rb.json(v),
            Body::Form(f) => rb.form(f),
        };
        Client::send(rb).await
    }

    fn show(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Org B's data, set up through its own key: a dataset with an annotation class, two images
/// in a folder (one annotated), and an upload whose bytes arrived but which is not
/// registered yet.
async fn seed_org_b(t: &TestServer) -> OrgB {
    let b = &t.other;
    let ds = b
        .create_dataset_with(&json!({"name": B_NAME, "classes": [{"name": "car"}]}))
        .await;
    let dataset_id = s(&ds, "id");
    let one = b.upload_png(&dataset_id, B_FOLDER, "one.png", 1).await;
    let two = b.upload_png(&dataset_id, B_FOLDER, "two.png", 2).await;
    let image_ids = [s(&one, "id"), s(&two, "id")];
    b.post(
        &format!("annotations/{}", image_ids[0]),
        &json!({"annotations": [{"id": "b1", "name": "car", "type": "bbox",
            "bounding_box": {"x": 1.0, "y": 1.0, "w": 2.0, "h": 2.0}}]}),
    )
    .await
    .expect(200);
    let image_paths = ["one.png", "two.png"].map(|f| format!("{}{B_FOLDER}/{f}", enc(B_NAME)));

    let signed = b
        .upload_url(&dataset_id, B_FOLDER, "pending.png", "image/png")
        .await
        .ok_json(200);
    let upload_bytes = png_seeded(5, 4, 3);
    let upload_url = s(&signed, "upload_url");
    b.put_bytes(&upload_url, &upload_bytes, "image/png")
        .await
        .expect(200);
    let mut export_ids = Vec::new();
    for format in ["coco", "yolo"] {
        let job = b
            .post(
                &format!("datasets/{dataset_id}/exports"),
                &json!({"format": format}),
            )
            .await
            .ok_json(202);
        let id = s(&job, "id");
        let mut state = String::new();
        for _ in 0..200 {
            let now = b
                .get(&format!("datasets/{dataset_id}/exports/{id}"))
                .await
                .ok_json(200);
            state = s(&now, "state");
            if state != "queued" && state != "running" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(state, "complete", "org B's {format} export did not finish");
        export_ids.push(id);
    }
    OrgB {
        dataset_id,
        image_ids,
        image_paths,
        upload_id: s(&signed, "upload_id"),
        upload_url,
        upload_bytes,
        export_ids: [export_ids[0].clone(), export_ids[1].clone()],
    }
}

/// Replaces signed links (whose expiry moves with the clock) so snapshots compare.
fn without_signatures(v: &mut Value) {
    match v {
        Value::String(s) if s.contains("sig=") || s.contains("X-Amz-Signature") => {
            *s = "<signed>".into()
        }
        Value::Array(items) => items.iter_mut().for_each(without_signatures),
        Value::Object(map) => map.values_mut().for_each(without_signatures),
        _ => {}
    }
}

/// Everything org B can see of its data, read with its own key.
async fn snapshot(t: &TestServer, b: &OrgB) -> Value {
    let c = &t.other;
    let mut images = Vec::new();
    for id in &b.image_ids {
        let bytes = c.get(&format!("images/{id}")).await.expect(200).bytes;
        images.push(json!({
            "metadata": c.get(&format!("images/{id}/metadata")).await.ok_json(200),
            "annotations": c.get(&format!("annotations/{id}")).await.ok_json(200),
            "sha256": sha256_hex(&bytes),
        }));
    }
    let mut v = json!({
        "datasets": c.get("datasets/").await.ok_json(200),
        "dataset": c
            .get(&format!("datasets/{}?include_images=true", b.dataset_id))
            .await
            .ok_json(200),
        "project": c.get(&format!("projects/{}", enc(B_NAME))).await.ok_json(200),
        "images": images,
        "exports": c
            .get(&format!("datasets/{}/exports", b.dataset_id))
            .await
            .ok_json(200),
    });
    without_signatures(&mut v);
    v
}

/// The values each path parameter takes: every name and id of org B that fits it.
fn fill(spec: &RouteSpec, b: &OrgB) -> Vec<String> {
    let mut paths = vec![spec.path.to_string()];
    for (param, values) in [
        ("{name}", vec![enc(B_NAME)]),
        ("{dataset}", vec![b.dataset_id.clone(), enc(B_NAME)]),
        ("{id}", b.export_ids.to_vec()),
        (
            "{*image}",
            b.image_ids
                .iter()
                .chain(&b.image_paths)
                .flat_map(|i| {
                    // Only image reads have a `/metadata` form.
                    let metadata = spec.path.starts_with("/images/");
                    [Some(i.clone()), metadata.then(|| format!("{i}/metadata"))]
                })
                .flatten()
                .collect(),
        ),
    ] {
        if paths[0].contains(param) {
            paths = paths
                .iter()
                .flat_map(|p| values.iter().map(move |v| p.replace(param, v)))
                .collect();
        }
    }
    for p in &paths {
        assert!(
            !p.contains('{'),
            "no org B value for a parameter of {} {}: add one to `fill`",
            spec.method,
            spec.path
        );
    }
    paths
        .into_iter()
        .map(|p| p.trim_start_matches('/').to_string())
        .collect()
}

/// A plausible body for a route whose parameters name org B's objects.
fn body_for(spec: &RouteSpec) -> Body {
    match (spec.method.as_str(), spec.path) {
        ("PATCH", "/datasets/{dataset}") => {
            Body::Json(json!({"description": "taken over", "new_name": "renamed by a"}))
        }
        ("PATCH", "/projects/{name}") => {
            Body::Json(json!({"description": "taken over", "classes": [{"name": "truck"}]}))
        }
        ("POST", "/datasets/{dataset}/exports") => Body::Json(json!({"format": "coco"})),
        ("POST", "/annotations/{*image}") => Body::Json(json!({"annotations": [
            {"id": "a1", "name": "car", "type": "bbox",
             "bounding_box": {"x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0}}]})),
        _ => Body::None,
    }
}

/// The requests that carry org B's names and ids to a route without path parameters, in
/// its query or body. `own` is a dataset name of org A's, for requests that mix A's dataset
/// with B's images or uploads.
fn calls_without_params(spec: &RouteSpec, b: &OrgB, own: &str) -> Vec<Call> {
    let m = &spec.method;
    let path = spec.path.trim_start_matches('/');
    let refs = [b.dataset_id.clone(), B_NAME.to_string()];
    let json = |v: Value| Call::new(m, path.to_string(), Body::Json(v));
    match (m.as_str(), spec.path) {
        ("GET", "/images" | "/images/") => ["dataset", "dataset_id", "dataset_name"]
            .iter()
            .flat_map(|k| {
                refs.iter()
                    .map(move |r| Call::new(m, format!("{path}?{k}={}", enc(r)), Body::None))
            })
            .collect(),
        ("POST", "/images/upload-url") => {
            let mut calls: Vec<Call> = refs
                .iter()
                .map(|r| {
                    json(json!({"dataset": r, "filename": "x.png", "content_type": "image/png"}))
                })
                .collect();
            calls.push(json(
                json!({"dataset_id": b.dataset_id, "filename": "x.png",
                "folder_path": B_FOLDER, "content_type": "image/png"}),
            ));
            calls.push(Call::new(
                m,
                path.to_string(),
                Body::Form(vec![
                    ("dataset_id", b.dataset_id.clone()),
                    ("filename", "x.png".into()),
                    ("content_type", "image/png".into()),
                ]),
            ));
            calls
        }
        ("POST", "/images/register") => vec![
            Call::new(
                m,
                path.to_string(),
                Body::Form(vec![
                    ("dataset_id", b.dataset_id.clone()),
                    ("filename", "pending.png".into()),
                    ("gcs_bucket", "local".into()),
                    ("gcs_path", b.upload_id.clone()),
                    ("folder_path", B_FOLDER.into()),
                    ("image_width", String::new()),
                ]),
            ),
            json(json!({"upload_id": b.upload_id})),
            json(json!({"gcs_path": format!("gs://local/{}", b.upload_id)})),
            json(json!({"gcs_path": b.upload_id, "dataset": own})),
            json(json!({"dataset": B_NAME, "directory_path": B_FOLDER, "filename": "pending.png"})),
            json(
                json!({"dataset_id": b.dataset_id, "directory_path": B_FOLDER,
                "filename": "pending.png"}),
            ),
        ],
        ("POST", "/images/bulk-upload-url") => refs
            .iter()
            .map(|r| json(json!({"dataset": r, "images": [{"filename": "x.png"}]})))
            .collect(),
        ("POST", "/images/bulk-register") => refs
            .iter()
            .map(|r| {
                json(json!({"dataset": r, "images": [{"upload_id": b.upload_id,
                    "filename": "pending.png", "directory_path": B_FOLDER}]}))
            })
            .collect(),
        (
            "POST" | "PATCH",
            "/batch/images/move"
            | "/batch/images/copy"
            | "/batch/images/delete"
            | "/batch/images/update",
        ) => [B_NAME, b.dataset_id.as_str(), own]
            .iter()
            .map(|ds| {
                json(json!({
                    "dataset_name": ds,
                    "image_ids": b.image_ids,
                    "target_folder_path": "/stolen",
                    "copy_annotations": true,
                    "permanent": true,
                    "updates": {"status": "review"},
                }))
            })
            .collect(),
        _ => panic!(
            "no isolation probe for {} {}: add one to `calls_without_params`",
            spec.method, spec.path
        ),
    }
}

/// Collection routes (list and create) name nothing of another organisation: a listing
/// must not show org B's objects, a create makes an object of org A's own.
fn is_collection(spec: &RouteSpec) -> bool {
    matches!(
        spec.path,
        "/datasets" | "/datasets/" | "/projects" | "/projects/"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_a_gets_404_for_everything_of_org_b_on_every_route() {
    let t = TestServer::start().await;
    let b = seed_org_b(&t).await;
    let own = t.owner.create_dataset("a own").await;
    t.owner.upload_png(&s(&own, "id"), "/", "mine.png", 9).await;
    let before = snapshot(&t, &b).await;
    let secrets: Vec<String> = [b.dataset_id.clone(), B_NAME.into(), b.upload_id.clone()]
        .into_iter()
        .chain(b.image_ids.iter().cloned())
        .collect();

    let routes = api::routes();
    let mut probed = 0;
    let mut created = 0;
    for spec in routes.iter().filter(|r| r.access == Access::Key) {
        if is_collection(spec) {
            let path = spec.path.trim_start_matches('/');
            let resp = if spec.method == Method::GET {
                t.owner.get(path).await.expect(200)
            } else {
                created += 1;
                let body = json!({"name": format!("made by a {created}")});
                t.owner.post(path, &body).await.expect(201)
            };
            let text = String::from_utf8_lossy(&resp.bytes).into_owned();
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{} {} shows org B's {secret}: {text}",
                    spec.method,
                    spec.path
                );
            }
            probed += 1;
            continue;
        }
        let calls: Vec<Call> = if spec.path.contains('{') {
            fill(spec, &b)
                .into_iter()
                .flat_map(|p| {
                    let mut v = vec![Call::new(&spec.method, p.clone(), body_for(spec))];
                    if spec.method == Method::DELETE {
                        v.push(Call::new(
                            &spec.method,
                            format!("{p}?permanent=true"),
                            Body::None,
                        ));
                    }
                    v
                })
                .collect()
        } else {
            calls_without_params(spec, &b, "a own")
        };
        assert!(!calls.is_empty(), "no calls for {}", spec.path);
        for call in calls {
            for (who, client) in [("owner", &t.owner), ("member", &t.member)] {
                let resp = call.send(client).await;
                let status = resp.status.as_u16();
                // A member may be refused for its role before the lookup, which tells it
                // nothing about org B; the owner has every right and must get 404.
                if who == "member" && status == 403 {
                    resp.error(403, "forbidden");
                    continue;
                }
                assert_eq!(
                    status,
                    404,
                    "{who} of org A: {} answered {status}: {}",
                    call.show(),
                    String::from_utf8_lossy(&resp.bytes)
                );
                let detail = resp.error_detail(404, "not_found");
                assert_ne!(
                    detail,
                    "No such endpoint",
                    "{} did not reach its route",
                    call.show()
                );
            }
            // The probe names objects that exist: org B reads them with its own key.
            if call.method == Method::GET {
                let own = call.send(&t.other).await;
                assert!(
                    own.status.is_success(),
                    "org B's own {} answered {}",
                    call.show(),
                    own.status
                );
            }
            probed += 1;
        }
    }
    assert!(probed > 60, "only {probed} probes");

    // A's own dataset with B's upload in a bulk register: reported failed as not found.
    let r = t
        .owner
        .post(
            "images/bulk-register",
            &json!({"dataset": "a own", "images": [{"upload_id": b.upload_id,
                "filename": "pending.png", "directory_path": B_FOLDER}]}),
        )
        .await
        .ok_json(200);
    assert_eq!(r["succeeded"], json!([]), "{r}");
    assert_eq!(r["failed"][0]["code"], "not_found", "{r}");

    // A's own dataset with B's export ids: not found, and B's jobs stand (the snapshot).
    for id in &b.export_ids {
        for call in [Method::GET, Method::DELETE] {
            let path = format!("datasets/{}/exports/{id}", enc("a own"));
            Client::send(t.owner.request(call, &path))
                .await
                .error(404, "not_found");
        }
    }

    // An idempotency key org B used replays nothing of B's for org A.
    let made_by_b = t
        .other
        .post_idem("projects/", &json!({"name": "idem b"}), "shared-idem")
        .await
        .ok_json(201);
    let made_by_a = t
        .owner
        .post_idem("projects/", &json!({"name": "idem a"}), "shared-idem")
        .await
        .ok_json(201);
    assert_eq!(made_by_a["project"]["name"], "idem a", "{made_by_a}");
    assert_ne!(made_by_a["project"]["id"], made_by_b["project"]["id"]);
    t.other
        .delete(&format!("projects/{}", enc("idem b")))
        .await
        .expect(200);

    // Nothing of org B changed, and its pending upload still registers.
    assert_eq!(snapshot(&t, &b).await, before);
    let reg = Register {
        dataset_id: &b.dataset_id,
        folder: B_FOLDER,
        filename: "pending.png",
        file_size: b.upload_bytes.len(),
        mime_type: "image/png",
        width: None,
        height: None,
        idempotency_key: None,
    };
    let signed = json!({"gcs_bucket": "local", "gcs_path": b.upload_id,
        "gcs_uri": format!("gs://local/{}", b.upload_id)});
    t.other.register(&signed, &reg).await.expect(201);
    assert!(!b.upload_url.is_empty());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_answers_nothing_beyond_the_route_table() {
    let t = TestServer::start().await;
    let routes = api::routes();
    let paths: BTreeSet<String> = routes.iter().map(RouteSpec::full_path).collect();
    assert_eq!(
        routes.len(),
        routes
            .iter()
            .map(|r| (r.method.clone(), r.full_path()))
            .collect::<BTreeSet<_>>()
            .len(),
        "a route is listed twice"
    );
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut checked = 0;
    for template in &paths {
        let concrete = template
            .replace("{*image}", "x/y")
            .replace("{name}", "x")
            .replace("{dataset}", "x")
            .replace("{id}", "x");
        assert!(!concrete.contains('{'), "unfilled parameter in {template}");
        for method in &methods {
            if routes
                .iter()
                .any(|r| r.method == *method && r.full_path() == *template)
            {
                continue;
            }
            let resp = Client::send(t.owner.request(method.clone(), &concrete)).await;
            assert_eq!(
                resp.status.as_u16(),
                405,
                "{method} {concrete} is answered although the table does not list it: {}",
                String::from_utf8_lossy(&resp.bytes)
            );
            assert!(resp.json()["detail"].is_string());
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
    // A path outside the table is the JSON 404 of the fallback.
    t.owner
        .get("no-such-resource")
        .await
        .error(404, "not_found");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_opens_only_its_own_object() {
    let t = TestServer::start().await;
    let b = seed_org_b(&t).await;
    let second = t
        .other
        .upload_url(&b.dataset_id, "/", "second.png", "image/png")
        .await
        .ok_json(200);
    let second_id = s(&second, "upload_id");
    let signer = &t.app().state.signer;
    let exp = chrono::Utc::now().timestamp() + 600;
    let signed_routes: Vec<RouteSpec> = api::routes()
        .into_iter()
        .filter(|r| r.access == Access::Signed)
        .collect();
    assert!(!signed_routes.is_empty());
    for spec in &signed_routes {
        let (action, mine, other) = match (spec.method.as_str(), spec.path) {
            ("GET", "/files/images/{id}") => ("GET", &b.image_ids[0], &b.image_ids[1]),
            ("GET", "/files/exports/{id}") => ("EXPORT", &b.export_ids[0], &b.export_ids[1]),
            ("PUT", "/files/uploads/{id}") => ("PUT", &b.upload_id, &second_id),
            _ => panic!(
                "no signature probe for {} {}: add one",
                spec.method, spec.path
            ),
        };
        let url = |id: &str, sig: &str| {
            format!("{}?expires={exp}&sig={sig}", spec.path.replace("{id}", id))
        };
        let sig = signer.sign(action, mine, exp);
        let send = |path: String| {
            let rb = t.anon.request(spec.method.clone(), &path);
            let rb = if spec.method == Method::PUT {
                rb.header("Content-Type", "image/png").body(png(3, 3))
            } else {
                rb
            };
            Client::send(rb)
        };
        // Another object, another action, a changed expiry: all refused.
        send(url(other, &sig)).await.error(403, "forbidden");
        let wrong_action = signer.sign(if action == "PUT" { "GET" } else { "PUT" }, mine, exp);
        send(url(mine, &wrong_action)).await.error(403, "forbidden");
        send(format!(
            "{}?expires={}&sig={sig}",
            spec.path.replace("{id}", mine),
            exp + 1
        ))
        .await
        .error(403, "forbidden");
        // The signature does open its own object (the refusals above are not a broken route).
        if action == "EXPORT" {
            let ok = send(url(mine, &sig)).await.expect(200);
            let job = t
                .other
                .get(&format!("datasets/{}/exports/{mine}", b.dataset_id))
                .await
                .ok_json(200);
            assert_eq!(
                ok.bytes.len() as u64,
                job["archive"]["size"].as_u64().unwrap()
            );
        }
        if action == "GET" {
            let ok = send(url(mine, &sig)).await.expect(200);
            let want = t
                .other
                .get(&format!("images/{mine}"))
                .await
                .expect(200)
                .bytes;
            assert_eq!(ok.bytes, want);
        }
    }
    // The second upload received nothing: registering it finds no bytes.
    let reg = Register {
        dataset_id: &b.dataset_id,
        folder: "/",
        filename: "second.png",
        file_size: 0,
        mime_type: "image/png",
        width: None,
        height: None,
        idempotency_key: None,
    };
    t.other
        .register(&second, &reg)
        .await
        .error(422, "validation_error");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_on_its_very_next_request() {
    let t = TestServer::start().await;
    let key = auth::create_key(&t.app().state.store, "org-a", Role::Owner, "unlimited")
        .await
        .unwrap();
    let client = t.anon.with_key(&key);
    client.create_dataset("kept").await;
    client.get("datasets/").await.expect(200);
    assert!(t
        .app()
        .state
        .store
        .revoke_key(&auth::key_prefix(&key))
        .await
        .unwrap());
    client.get("datasets/").await.error(401, "unauthorized");
    client
        .post("projects/", &json!({"name": "after revoke"}))
        .await
        .error(401, "unauthorized");
    client
        .delete("projects/kept")
        .await
        .error(401, "unauthorized");
    // Nothing was done with it; the organisation's other keys still work.
    t.owner.get("projects/kept").await.expect(200);
    t.owner
        .get(&format!("projects/{}", enc("after revoke")))
        .await
        .error(404, "not_found");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_key_is_refused_admin_operations() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("guarded").await;
    let ds_id = s(&ds, "id");
    let img = t.owner.upload_png(&ds_id, "/", "a.png", 1).await;
    let img_id = s(&img, "id");
    let admin_only = [
        Call::new(&Method::DELETE, format!("datasets/{ds_id}"), Body::None),
        Call::new(&Method::DELETE, "datasets/guarded".into(), Body::None),
        Call::new(&Method::DELETE, "projects/guarded".into(), Body::None),
        Call::new(
            &Method::POST,
            "batch/images/delete".into(),
            Body::Json(
                json!({"dataset_name": "guarded", "image_ids": [img_id], "permanent": true}),
            ),
        ),
    ];
    for call in &admin_only {
        let detail = call.send(&t.member).await.error_detail(403, "forbidden");
        assert!(detail.contains("admin"), "{}: {detail}", call.show());
    }
    // Nothing was removed; an admin may do the same.
    assert_eq!(t.owner.image(&img_id).await["is_archived"], false);
    assert_eq!(t.owner.counts("guarded").await.images, 1);
    admin_only[3].send(&t.admin).await.expect(200);
    admin_only[0].send(&t.admin).await.expect(200);
    t.owner
        .get("projects/guarded")
        .await
        .error(404, "not_found");
    t.stop().await;
}
