//! Annotations: canonical round trip, replace semantics, shorthand input, and validation.

mod common;

use common::*;
use serde_json::{json, Value};

/// The canonical list as the 1.6.3 client sends it (protocol §9).
fn canonical() -> Value {
    json!([
        {"id":"a1","name":"car","type":"bbox","bounding_box":{"x":1.0,"y":2.0,"w":3.0,"h":4.0},"confidence":0.9,"attributes":[]},
        {"id":"6e34c2a0-poly","name":"car","type":"polygon","polygon":{"paths":[[{"x":0.0,"y":0.0},{"x":1.0,"y":0.0},{"x":1.0,"y":1.0}]]},"confidence":1.0,"attributes":[]},
        {"id":"cb43e9f1-line","name":"road","type":"polyline","polyline":{"path":[{"x":0.0,"y":0.0},{"x":5.0,"y":5.0}]},"confidence":1.0,"attributes":[]},
        {"id":"cf24aa07-kp","name":"nose","type":"keypoint","keypoint":{"x":3.0,"y":3.0},"confidence":1.0,"attributes":[{"k":"v"}]}
    ])
}

async fn setup(t: &TestServer, body: Value) -> String {
    let ds = t.owner.create_dataset_with(&body).await;
    let img = t.owner.upload_png(&s(&ds, "id"), "/", "a.png", 1).await;
    s(&img, "id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canonical_annotations_round_trip_exactly() {
    let t = TestServer::start().await;
    let id = setup(&t, json!({"name": "ann"})).await;
    let path = format!("annotations/{id}");

    let empty = t.owner.get(&path).await.ok_json(200);
    assert_eq!(empty["image_id"], id.as_str());
    assert_eq!(empty["annotations"], json!([]));

    let saved = t
        .member
        .post(&path, &json!({"image_id": id, "annotations": canonical()}))
        .await
        .ok_json(200);
    assert_eq!(saved["image_id"], id.as_str());
    assert_eq!(saved["previous_count"], 0);
    assert_eq!(saved["new_count"], 4);
    assert_eq!(saved["status"], "new");

    let got = t.owner.get(&path).await;
    let text = String::from_utf8(got.bytes.clone()).unwrap();
    let got = got.ok_json(200);
    assert_eq!(got["annotations"], canonical());
    // Numbers stay floats on the wire.
    assert!(text.contains("\"w\":3.0"), "{text}");
    // Each object has exactly the canonical keys, nothing added.
    for (a, b) in got["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .zip(canonical().as_array().unwrap())
    {
        let mut ka: Vec<&String> = a.as_object().unwrap().keys().collect();
        let mut kb: Vec<&String> = b.as_object().unwrap().keys().collect();
        ka.sort();
        kb.sort();
        assert_eq!(ka, kb);
    }
    let img = t.owner.image(&id).await;
    assert_eq!(img["annotation_count"], 4);
    assert_eq!(img["status"], "new", "saving never changes the status");

    // Optional fields: created_by is kept, a null created_by is dropped, and a polygon's
    // bounding box is kept.
    let extra = json!([
        {"id":"p","name":"car","type":"polygon",
         "polygon":{"paths":[[{"x":0.0,"y":0.0},{"x":4.0,"y":0.0},{"x":4.0,"y":4.0}],[{"x":1.0,"y":1.0},{"x":2.0,"y":1.0},{"x":2.0,"y":2.0}]]},
         "bounding_box":{"x":0.0,"y":0.0,"w":4.0,"h":4.0},"confidence":0.5,"created_by":"alice","attributes":["x", 1]},
        {"id":"q","name":"car","type":"bbox","bounding_box":{"x":-1.0,"y":-2.0,"w":1.0,"h":1.0},"created_by":null}
    ]);
    t.owner
        .post(&path, &json!({"annotations": extra}))
        .await
        .expect(200);
    let got = t.owner.get(&path).await.ok_json(200)["annotations"].clone();
    assert_eq!(got[0], extra[0]);
    assert_eq!(
        got[1],
        json!({"id":"q","name":"car","type":"bbox","bounding_box":{"x":-1.0,"y":-2.0,"w":1.0,"h":1.0},"confidence":1.0,"attributes":[]})
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_replace_and_deletes_clear() {
    let t = TestServer::start().await;
    let id = setup(&t, json!({"name": "ann"})).await;
    let path = format!("annotations/{id}");
    t.owner
        .post(&path, &json!({"annotations": canonical()}))
        .await
        .expect(200);

    let two = json!([canonical()[2].clone(), canonical()[3].clone()]);
    let r = t
        .owner
        .post(&path, &json!({"annotations": two}))
        .await
        .ok_json(200);
    assert_eq!(
        (r["previous_count"].as_i64(), r["new_count"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(t.owner.get(&path).await.ok_json(200)["annotations"], two);
    assert_eq!(t.owner.image(&id).await["annotation_count"], 2);

    let r = t
        .owner
        .post(&path, &json!({"annotations": []}))
        .await
        .ok_json(200);
    assert_eq!(
        (r["previous_count"].as_i64(), r["new_count"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        t.owner.get(&path).await.ok_json(200)["annotations"],
        json!([])
    );
    assert_eq!(t.owner.image(&id).await["annotation_count"], 0);

    t.owner
        .post(&path, &json!({"annotations": canonical()}))
        .await
        .expect(200);
    let d = t.member.delete(&path).await.ok_json(200);
    assert_eq!(d["image_id"], id.as_str());
    assert_eq!(d["deleted_count"], 4);
    assert_eq!(
        t.owner.get(&path).await.ok_json(200)["annotations"],
        json!([])
    );
    assert_eq!(t.owner.image(&id).await["annotation_count"], 0);
    let d = t.owner.delete(&path).await.ok_json(200);
    assert_eq!(d["deleted_count"], 0);

    // The status is left as it is, whatever it was.
    t.owner
        .patch(
            "batch/images/update",
            &json!({"dataset_name": "ann", "image_ids": [id], "updates": {"status": "review"}}),
        )
        .await
        .expect(200);
    let r = t
        .owner
        .post(&path, &json!({"annotations": canonical()}))
        .await
        .ok_json(200);
    assert_eq!(r["status"], "review");
    assert_eq!(t.owner.image(&id).await["status"], "review");
    t.owner
        .post(&path, &json!({"annotations": []}))
        .await
        .expect(200);
    assert_eq!(t.owner.image(&id).await["status"], "review");

    // Unknown images.
    let unknown = format!("annotations/{}", uuid::Uuid::new_v4());
    t.owner.get(&unknown).await.error(404, "not_found");
    t.owner
        .post(&unknown, &json!({"annotations": []}))
        .await
        .error(404, "not_found");
    t.owner.delete(&unknown).await.error(404, "not_found");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shorthand_input_is_stored_canonical() {
    let t = TestServer::start().await;
    let id = setup(&t, json!({"name": "ann"})).await;
    let path = format!("annotations/{id}");
    let shorthand = json!([
        {"id": "ann-1", "name": "person", "type": "bbox", "bbox": [100, 200, 50, 80], "confidence": 1.0},
        {"id": "ann-2", "name": "car", "type": "polygon", "polygon": [[10, 20], [30, 40], [50, 60], [10, 20]]},
        {"id": "ann-3", "name": "road", "type": "polyline", "polyline": [[0, 100], [50, 100], [100, 100]]},
        {"id": "ann-4", "name": "landmark", "type": "keypoint", "keypoint": [150, 200], "metadata": {"by": "me"}}
    ]);
    let r = t
        .owner
        .post(&path, &json!({"annotations": shorthand}))
        .await
        .ok_json(200);
    assert_eq!(r["new_count"], 4);
    let got = t.owner.get(&path).await.ok_json(200)["annotations"].clone();
    assert_eq!(
        got,
        json!([
            {"id":"ann-1","name":"person","type":"bbox","bounding_box":{"x":100.0,"y":200.0,"w":50.0,"h":80.0},"confidence":1.0,"attributes":[]},
            {"id":"ann-2","name":"car","type":"polygon","polygon":{"paths":[[{"x":10.0,"y":20.0},{"x":30.0,"y":40.0},{"x":50.0,"y":60.0}]]},"confidence":1.0,"attributes":[]},
            {"id":"ann-3","name":"road","type":"polyline","polyline":{"path":[{"x":0.0,"y":100.0},{"x":50.0,"y":100.0},{"x":100.0,"y":100.0}]},"confidence":1.0,"attributes":[]},
            {"id":"ann-4","name":"landmark","type":"keypoint","keypoint":{"x":150.0,"y":200.0},"confidence":1.0,"attributes":[]}
        ])
    );
    // A horizontal polyline never gets a zero-height bounding box.
    assert!(got[2].get("bounding_box").is_none());

    // The metadata was kept: withheld from every client by default (neither official
    // client's models accept the key), returned to a caller that asks.
    let newer = [("user-agent", "pictograph-python/1.69.146")];
    let full = t.owner.get_with(&path, &newer).await.ok_json(200);
    assert!(full["annotations"][3].get("metadata").is_none(), "{full}");
    let asked = t
        .owner
        .get(&format!("{path}?include=metadata"))
        .await
        .ok_json(200);
    assert_eq!(asked["annotations"][3]["metadata"], json!({"by": "me"}));
    assert!(asked["annotations"][0].get("metadata").is_none());
    let bad = t.owner.get(&format!("{path}?include=all")).await;
    assert_eq!(bad.status, 422);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_payloads_are_422_with_a_field_list_and_change_nothing() {
    let t = TestServer::start().await;
    let id = setup(&t, json!({"name": "ann"})).await;
    let path = format!("annotations/{id}");
    t.owner
        .post(&path, &json!({"annotations": canonical()}))
        .await
        .expect(200);
    let before = t.owner.image(&id).await;

    let bbox = |b: Value| json!({"id": "b", "name": "car", "type": "bbox", "bounding_box": b});
    let ring = |pts: Value| json!({"id": "p", "name": "car", "type": "polygon", "polygon": {"paths": [pts]}});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "w = 0",
            json!([bbox(json!({"x": 0, "y": 0, "w": 0, "h": 1}))]),
            json!(["body", "annotations", 0, "bounding_box", "w"]),
        ),
        (
            "h < 0",
            json!([bbox(json!({"x": 0, "y": 0, "w": 1, "h": -1}))]),
            json!(["body", "annotations", 0, "bounding_box", "h"]),
        ),
        (
            "missing w",
            json!([bbox(json!({"x": 0, "y": 0, "h": 1}))]),
            json!(["body", "annotations", 0, "bounding_box", "w"]),
        ),
        (
            "extra key in box",
            json!([bbox(json!({"x": 0, "y": 0, "w": 1, "h": 1, "angle": 3}))]),
            json!(["body", "annotations", 0, "bounding_box", "angle"]),
        ),
        (
            "ring of 2",
            json!([ring(json!([{"x": 0, "y": 0}, {"x": 1, "y": 1}]))]),
            json!(["body", "annotations", 0, "polygon", "paths", 0]),
        ),
        (
            "no rings",
            json!([{"id": "p", "name": "car", "type": "polygon", "polygon": {"paths": []}}]),
            json!(["body", "annotations", 0, "polygon", "paths"]),
        ),
        (
            "polyline of 1",
            json!([{"id": "l", "name": "car", "type": "polyline", "polyline": {"path": [{"x": 0, "y": 0}]}}]),
            json!(["body", "annotations", 0, "polyline", "path"]),
        ),
        (
            "point with z",
            json!([{"id": "k", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0, "z": 1}}]),
            json!(["body", "annotations", 0, "keypoint", "z"]),
        ),
        (
            "unknown key",
            json!([{"id": "b", "name": "car", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}, "reviewer": {}}]),
            json!(["body", "annotations", 0, "reviewer"]),
        ),
        (
            "metadata not an object",
            json!([{"id": "b", "name": "car", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}, "metadata": [1]}]),
            json!(["body", "annotations", 0, "metadata"]),
        ),
        (
            "oriented box",
            json!([{"id": "b", "name": "car", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}, "oriented_box": {}}]),
            json!(["body", "annotations", 0, "oriented_box"]),
        ),
        (
            "keypoint with bounding_box",
            json!([{"id": "k", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0},
            "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}}]),
            json!(["body", "annotations", 0, "bounding_box"]),
        ),
        (
            "confidence 1.5",
            json!([{"id": "k", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0}, "confidence": 1.5}]),
            json!(["body", "annotations", 0, "confidence"]),
        ),
        (
            "confidence < 0",
            json!([{"id": "k", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0}, "confidence": -0.1}]),
            json!(["body", "annotations", 0, "confidence"]),
        ),
        (
            "duplicate ids",
            json!([canonical()[0].clone(), canonical()[0].clone()]),
            json!(["body", "annotations", 1, "id"]),
        ),
        (
            "blank id",
            json!([{"id": " ", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0}}]),
            json!(["body", "annotations", 0, "id"]),
        ),
        (
            "missing id",
            json!([{"name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0}}]),
            json!(["body", "annotations", 0, "id"]),
        ),
        (
            "blank name",
            json!([{"id": "k", "name": "", "type": "keypoint", "keypoint": {"x": 0, "y": 0}}]),
            json!(["body", "annotations", 0, "name"]),
        ),
        (
            "box alias is not a type",
            json!([{"id": "b", "name": "car", "type": "box", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}}]),
            json!(["body", "annotations", 0, "type"]),
        ),
        (
            "missing geometry",
            json!([{"id": "b", "name": "car", "type": "bbox"}]),
            json!(["body", "annotations", 0, "bounding_box"]),
        ),
        (
            "attributes object",
            json!([{"id": "k", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0}, "attributes": {"a": 1}}]),
            json!(["body", "annotations", 0, "attributes"]),
        ),
        (
            "shorthand w = 0",
            json!([{"id": "b", "name": "car", "type": "bbox", "bbox": [0, 0, 0, 5]}]),
            json!(["body", "annotations", 0, "bbox", 2]),
        ),
        (
            "not a list",
            json!({"id": "x"}),
            json!(["body", "annotations"]),
        ),
        (
            "not an object",
            json!([3]),
            json!(["body", "annotations", 0]),
        ),
    ];
    for (what, list, loc) in cases {
        let errors = t
            .owner
            .post(&path, &json!({"annotations": list}))
            .await
            .field_errors();
        assert!(
            errors.iter().any(|e| e["loc"] == loc),
            "{what}: expected an error at {loc}, got {errors:?}"
        );
    }
    // Every error is reported, not only the first.
    let two_bad = json!([bbox(json!({"x": 0, "y": 0, "w": 0, "h": 1})),
        {"id": "k", "name": "car", "type": "keypoint", "keypoint": {"x": 0, "y": 0}, "confidence": 2}]);
    assert!(
        t.owner
            .post(&path, &json!({"annotations": two_bad}))
            .await
            .field_errors()
            .len()
            >= 2
    );
    // No annotations key, or another image's id in the body.
    t.owner
        .post(&path, &json!({"image_id": id}))
        .await
        .field_errors();
    t.owner
        .post(
            &path,
            &json!({"image_id": uuid::Uuid::new_v4().to_string(), "annotations": []}),
        )
        .await
        .field_errors();
    let r = t
        .owner
        .request(reqwest::Method::POST, &path)
        .header("Content-Type", "application/json")
        .body("{not json");
    let r = Client::send(r).await;
    assert!(r.status == 400 || r.status == 422, "{}", r.status);

    // Nothing changed.
    assert_eq!(
        t.owner.get(&path).await.ok_json(200)["annotations"],
        canonical()
    );
    let after = t.owner.image(&id).await;
    assert_eq!(after["annotation_count"], before["annotation_count"]);
    assert_eq!(after["status"], before["status"]);
    assert_eq!(after["updated_at"], before["updated_at"]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_names_are_checked_only_when_the_project_has_classes() {
    let t = TestServer::start().await;
    let with = setup(
        &t,
        json!({"name": "classy", "classes": [{"name": "car"}, {"name": "road"}]}),
    )
    .await;
    let kp = |name: &str| json!([{"id": "k", "name": name, "type": "keypoint", "keypoint": {"x": 1, "y": 1}}]);
    let path = format!("annotations/{with}");
    t.owner
        .post(&path, &json!({"annotations": kp("car")}))
        .await
        .expect(200);
    for bad in ["dog", "Car", "car "] {
        let errors = t
            .owner
            .post(&path, &json!({"annotations": kp(bad)}))
            .await
            .field_errors();
        assert_eq!(
            errors[0]["loc"],
            json!(["body", "annotations", 0, "name"]),
            "{bad}"
        );
    }
    assert_eq!(
        t.owner.get(&path).await.ok_json(200)["annotations"][0]["name"],
        "car"
    );

    // A project without classes accepts any label.
    let ds = t.owner.create_dataset("free").await;
    let img = t.owner.upload_png(&s(&ds, "id"), "/", "b.png", 2).await;
    t.owner
        .post(
            &format!("annotations/{}", s(&img, "id")),
            &json!({"annotations": kp("anything at all")}),
        )
        .await
        .expect(200);

    // Classes set later apply to later saves.
    t.owner
        .patch("projects/free", &json!({"classes": [{"name": "only"}]}))
        .await
        .expect(200);
    t.owner
        .post(
            &format!("annotations/{}", s(&img, "id")),
            &json!({"annotations": kp("anything at all")}),
        )
        .await
        .field_errors();
    t.stop().await;
}

/// Many reads at once of labelled and unlabelled images' lists, through the annotations route
/// and through the metadata a newer client reads (its `min_confidence` comes from the list):
/// each gets its own image's list, and a save is seen by the next read. On PostgreSQL reads
/// that arrive together are answered by shared statements, which this checks happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_list_reads_each_get_their_own_images_list() {
    let t = TestServer::start().await;
    let ds = t.owner.create_dataset("many").await;
    let boxed = |n: u8, confidence: f64| {
        json!([{"id": format!("b{n}"), "name": "car", "type": "bbox",
            "bounding_box": {"x": f64::from(n), "y": 1.0, "w": 2.0, "h": 2.0},
            "confidence": confidence, "attributes": []}])
    };
    let mut images = Vec::new();
    for n in 0..10u8 {
        let img = t
            .owner
            .upload_png(&s(&ds, "id"), "/", &format!("{n}.png"), n)
            .await;
        let id = s(&img, "id");
        // Eight labelled, each with a box and a confidence of its own; two unlabelled.
        let (list, confidence) = if n < 8 {
            let confidence = f64::from(n + 1) / 10.0;
            let list = boxed(n, confidence);
            t.owner
                .post(&format!("annotations/{id}"), &json!({"annotations": list}))
                .await
                .expect(200);
            (list, json!(confidence))
        } else {
            (json!([]), Value::Null)
        };
        images.push((id, list, confidence));
    }
    let reads = (0..240).map(|n| {
        let (id, list, confidence) = images[n % images.len()].clone();
        let t = &t;
        async move {
            if n % 2 == 0 {
                let got = t.member.get(&format!("annotations/{id}")).await;
                assert_eq!(got.ok_json(200)["annotations"], list, "image {id}");
            } else {
                let got = Client::send(
                    t.member
                        .request(reqwest::Method::GET, &format!("images/{id}/metadata"))
                        .header("User-Agent", "pictograph-python/1.69.146"),
                )
                .await
                .ok_json(200);
                assert_eq!(got["image"]["min_confidence"], confidence, "image {id}");
            }
        }
    });
    futures::future::join_all(reads).await;

    let (id, ..) = &images[0];
    let changed = boxed(0, 0.05);
    t.member
        .post(
            &format!("annotations/{id}"),
            &json!({"annotations": changed}),
        )
        .await
        .expect(200);
    let got = t.owner.get(&format!("annotations/{id}")).await.ok_json(200);
    assert_eq!(got["annotations"], changed);

    t.assert_gathered(t.app().state.store.annotation_gather_stats());
    t.stop().await;
}
