//! Upgrading a database made by an earlier version keeps what it holds: here, the annotation
//! lists that lived on the image rows until they moved to a table of their own. Runs on the
//! backend `PICTOGRAPH_TEST_DATABASE` names, like the HTTP suite.

mod common;

use common::{pg, Backend, Database};
use pictograph_server::store::Store;
use serde_json::{json, Value};
use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

/// The last migration before annotation lists left the images table, per backend.
fn before_split(database: Database) -> (sqlx::migrate::Migrator, i64) {
    match database {
        Database::Sqlite => (sqlx::migrate!("./migrations/sqlite"), 7),
        Database::Postgres => (sqlx::migrate!("./migrations/postgres"), 8),
    }
}

#[tokio::test]
async fn annotation_lists_stored_on_image_rows_survive_the_upgrade() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    let url = match backend.database {
        Database::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
        Database::Postgres => pg::fresh_database().await,
    };
    sqlx::any::install_default_drivers();
    let boxes = json!([
        {"id": "1", "name": "car", "type": "bbox",
         "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0}, "confidence": 1.0, "attributes": []},
        {"id": "2", "name": "dog", "type": "bbox",
         "bounding_box": {"x": 5.0, "y": 6.0, "w": 7.0, "h": 8.0}, "confidence": 0.5, "attributes": []}
    ]);
    {
        let old = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let (migrator, version) = before_split(backend.database);
        migrator.run_to(version, &old).await.unwrap();
        let at = "2026-01-01T00:00:00.000000Z";
        old.execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'org', '{at}'); \
             INSERT INTO datasets (id, org_id, name, created_at, updated_at) \
             VALUES ('d1', 'o1', 'old', '{at}', '{at}');"
        )))
        .await
        .unwrap();
        for (id, list, archived) in [
            ("i-labelled", boxes.clone(), 0),
            ("i-empty", json!([]), 0),
            ("i-archived", json!([boxes[1].clone()]), 1),
        ] {
            let count = list.as_array().unwrap().len() as i64;
            sqlx::query(
                "INSERT INTO images (id, dataset_id, folder, filename, is_archived, blob_hash, \
                 file_size, mime_type, annotations, annotation_count, created_at, updated_at) \
                 VALUES ($1, 'd1', '/', $1, $2, 'h', 10, 'image/png', $3, $4, $5, $5)",
            )
            .bind(id)
            .bind(archived)
            .bind(list.to_string())
            .bind(count)
            .bind(at)
            .execute(&old)
            .await
            .unwrap();
        }
        old.close().await;
    }

    let store = Store::connect(&url).await.expect("the upgrade runs");
    assert_eq!(store.annotations("i-labelled").await.unwrap(), boxes);
    assert_eq!(store.annotations("i-empty").await.unwrap(), json!([]));
    assert_eq!(
        store.annotations("i-archived").await.unwrap(),
        json!([boxes[1].clone()])
    );
    let ids: Vec<String> = ["i-labelled", "i-empty", "i-archived"]
        .map(String::from)
        .to_vec();
    let lists = store.annotation_lists(&ids).await.unwrap();
    let mut listed: Vec<&str> = lists.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(listed, ["i-archived", "i-labelled"]);
    // The counters the rows kept are unchanged: two annotations on live images.
    let dataset = store.dataset_by_id("o1", "d1").await.unwrap().unwrap();
    assert_eq!(
        (
            dataset.image_count,
            dataset.archived_images,
            dataset.annotation_count
        ),
        (2, 1, 2)
    );
    // A save replaces the list and an empty one removes it; a deleted image takes its list
    // along.
    store
        .save_annotations("i-labelled", &[boxes[0].clone()], None)
        .await
        .unwrap();
    assert_eq!(
        store.annotations("i-labelled").await.unwrap(),
        json!([boxes[0].clone()])
    );
    store
        .save_annotations("i-archived", &[], None)
        .await
        .unwrap();
    assert_eq!(
        store.annotations("i-archived").await.unwrap(),
        Value::Array(vec![])
    );
    store.delete_image("i-labelled").await.unwrap();
    assert!(store.annotation_lists(&ids).await.unwrap().is_empty());
    // So does a deleted dataset, for all its images.
    store
        .save_annotations("i-empty", &[boxes[1].clone()], None)
        .await
        .unwrap();
    assert_eq!(store.annotation_lists(&ids).await.unwrap().len(), 1);
    store.delete_dataset("o1", "d1").await.unwrap();
    assert!(store.annotation_lists(&ids).await.unwrap().is_empty());
    drop(store);
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}
