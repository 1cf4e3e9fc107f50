//! Snapshots of the JSON shapes clients parse, with ids, times and URLs redacted.

mod common;

use common::*;
use insta::assert_json_snapshot;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_shapes() {
    let t = TestServer::start().await;

    let created = t
        .owner
        .post(
            "projects/",
            &json!({"name": "shapes", "description": "snapshot", "annotation_types": ["bbox", "polygon"],
                    "classes": [{"name": "car", "type": "bbox"}, {"name": "sign", "color": "#123456"}]}),
        )
        .await
        .ok_json(201);
    assert_json_snapshot!("project", created["project"], {
        ".id" => "[id]",
        ".organization_id" => "[org]",
        ".created_at" => "[time]",
        ".updated_at" => "[time]",
    });
    let id = s(&created["project"], "id");

    let signed = t
        .owner
        .upload_url(&id, "/cars", "car.png", "image/png")
        .await
        .ok_json(200);
    assert_json_snapshot!("upload_url", signed, {
        ".upload_url" => "[url]",
        ".upload_id" => "[upload]",
        ".gcs_path" => "[upload]",
        ".gcs_uri" => "[uri]",
        ".data.upload_url" => "[url]",
        ".data.upload_id" => "[upload]",
        ".data.gcs_path" => "[upload]",
        ".data.gcs_uri" => "[uri]",
    });

    let bytes = png(32, 24);
    t.anon
        .put_bytes(&s(&signed, "upload_url"), &bytes, "image/png")
        .await
        .expect(200);
    let reg = Register {
        dataset_id: &id,
        folder: "/cars",
        filename: "car.png",
        file_size: bytes.len(),
        mime_type: "image/png",
        width: None,
        height: None,
        idempotency_key: None,
    };
    let registered = t.owner.register(&signed, &reg).await.ok_json(201);
    let image_id = s(&registered, "image_id");
    let image = t.owner.image(&image_id).await;
    assert_eq!(image["file_size"], bytes.len());
    assert_json_snapshot!("image", image, {
        ".id" => "[id]",
        ".dataset_id" => "[dataset]",
        ".image_url" => "[url]",
        ".annotation_url" => "[url]",
        ".file_size" => "[size]",
        ".created_at" => "[time]",
        ".updated_at" => "[time]",
    });

    let dataset = t.owner.dataset("shapes").await;
    assert_eq!(dataset["total_size"], bytes.len());
    assert_json_snapshot!("dataset", dataset, {
        ".id" => "[id]",
        ".total_size" => "[size]",
        ".organization_id" => "[org]",
        ".created_at" => "[time]",
        ".updated_at" => "[time]",
    });

    let saved = t
        .owner
        .post(
            &format!("annotations/{image_id}"),
            &json!({"image_id": image_id, "annotations": [
                {"id": "a1", "name": "car", "type": "bbox", "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0},
                 "confidence": 0.9, "attributes": []}]}),
        )
        .await
        .ok_json(200);
    assert_json_snapshot!("annotation_save", saved, { ".image_id" => "[id]" });

    let unknown = "00000000-0000-4000-8000-000000000000";
    let batch = t
        .owner
        .batch(
            "move",
            &json!({"dataset_name": "shapes", "image_ids": [image_id, unknown], "target_folder_path": "/sorted"}),
        )
        .await
        .ok_json(200);
    assert_json_snapshot!("batch_result", batch, { ".succeeded[]" => "[id]" });

    let not_found = t
        .owner
        .get("datasets/by-name/road-signs")
        .await
        .error(404, "not_found");
    assert_json_snapshot!("error_not_found", not_found);
    let invalid = t
        .owner
        .post(
            &format!("annotations/{image_id}"),
            &json!({"annotations": [{"id": "b", "name": "car", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 0, "h": 1}}]}),
        )
        .await
        .error(422, "validation_error");
    assert_json_snapshot!("error_validation", invalid);
    t.stop().await;
}
