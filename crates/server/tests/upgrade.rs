//! Upgrading a database made by an earlier version keeps what it holds and the rules it
//! enforced: the annotation lists that lived on the image rows until they moved to a table of
//! their own, the names of images once two indexes over them became one, the order of text
//! and the counts of images by status. Runs on the backend `PICTOGRAPH_TEST_DATABASE` names,
//! like the HTTP suite.

mod common;

use common::{pg, Backend, Database};
use pictograph_server::store::{ImageFilter, Store};
use serde_json::{json, Value};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;

/// An empty database of the running backend (a SQLite file in `dir`): its URL and a pool of
/// one connection on it.
async fn empty_database(backend: &Backend, dir: &tempfile::TempDir) -> (String, AnyPool) {
    let url = match backend.database {
        Database::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
        Database::Postgres => pg::fresh_database().await,
    };
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    (url, pool)
}

/// A database of the running backend at an earlier schema: migrations up to `sqlite` or
/// `postgres` (the last one before the change under test), holding organisation `o1` and its
/// dataset `d1`. Answers its URL and a pool on it; the directory holds a SQLite file.
async fn old_database(
    backend: &Backend,
    dir: &tempfile::TempDir,
    sqlite: i64,
    postgres: i64,
) -> (String, AnyPool) {
    let (url, old) = empty_database(backend, dir).await;
    let (migrator, version) = match backend.database {
        Database::Sqlite => (sqlx::migrate!("./migrations/sqlite"), sqlite),
        Database::Postgres => (sqlx::migrate!("./migrations/postgres"), postgres),
    };
    migrator.run_to(version, &old).await.unwrap();
    old.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'org', '{AT}'); \
         INSERT INTO datasets (id, org_id, name, created_at, updated_at) \
         VALUES ('d1', 'o1', 'old', '{AT}', '{AT}');"
    )))
    .await
    .unwrap();
    (url, old)
}

/// The time every row of the old databases was written.
const AT: &str = "2026-01-01T00:00:00.000000Z";

/// [`AT`] in microseconds since 1970, as images keep their times now.
const AT_MICROS: i64 = 1_767_225_600_000_000;

#[tokio::test]
async fn annotation_lists_stored_on_image_rows_survive_the_upgrade() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    let boxes = json!([
        {"id": "1", "name": "car", "type": "bbox",
         "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0}, "confidence": 1.0, "attributes": []},
        {"id": "2", "name": "dog", "type": "bbox",
         "bounding_box": {"x": 5.0, "y": 6.0, "w": 7.0, "h": 8.0}, "confidence": 0.5, "attributes": []}
    ]);
    // The last migration before annotation lists left the images table.
    let (url, old) = old_database(&backend, &dir, 7, 8).await;
    for (id, list, archived) in [
        ("i-labelled", boxes.clone(), 0),
        ("i-empty", json!([]), 0),
        ("i-archived", json!([boxes[1].clone()]), 1),
    ] {
        let count = list.as_array().unwrap().len() as i64;
        sqlx::query(
            "INSERT INTO images (id, dataset_id, folder, filename, is_archived, blob_hash, \
             file_size, mime_type, annotations, annotation_count, created_at, updated_at) \
             VALUES ($1, 'd1', '/', $1, $2, $6, 10, 'image/png', $3, $4, $5, $5)",
        )
        .bind(id)
        .bind(archived)
        .bind(list.to_string())
        .bind(count)
        .bind(AT)
        .bind(HASH)
        .execute(&old)
        .await
        .unwrap();
    }
    old.close().await;

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
    let counts = store.dataset_counts("d1").await.unwrap().unwrap();
    assert_eq!(
        (
            counts.image_count,
            counts.archived_images,
            counts.annotation_count
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
    assert!(store.hide_dataset("o1", "d1").await.unwrap().is_some());
    while !store.reap_images("d1", 2).await.unwrap().is_empty() {}
    store.drop_hidden_dataset("d1").await.unwrap();
    assert!(store.annotation_lists(&ids).await.unwrap().is_empty());
    drop(store);
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}

/// The SHA-256 (hex) of the images the old databases hold.
const HASH: &str = "abababababababababababababababababababababababababababababababab";

/// Puts an image named `a.jpg` into `folder` of dataset `d1`, at any schema since the
/// annotation lists left the images table until images kept narrower columns.
async fn insert_image(
    pool: &AnyPool,
    id: &str,
    folder: &str,
    archived: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO images (id, dataset_id, folder, filename, is_archived, blob_hash, \
         file_size, mime_type, created_at, updated_at) \
         VALUES ($1, 'd1', $2, 'a.jpg', $3, $5, 10, 'image/jpeg', $4, $4)",
    )
    .bind(id)
    .bind(folder)
    .bind(i64::from(archived))
    .bind(AT)
    .bind(HASH)
    .execute(pool)
    .await
    .map(drop)
}

/// [`insert_image`] at the current schema: the dataset by its number, the hash as bytes and
/// the time in microseconds.
async fn insert_current_image(
    pool: &AnyPool,
    id: &str,
    folder: &str,
    archived: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO images (id, dataset_seq, folder, filename, is_archived, blob_hash, \
         file_size, mime_type, created_at, updated_at) \
         VALUES ($1, (SELECT seq FROM datasets WHERE id = 'd1'), $2, 'a.jpg', $3, $5, 10, \
         'image/jpeg', $4, $4)",
    )
    .bind(id)
    .bind(folder)
    .bind(i64::from(archived))
    .bind(AT_MICROS)
    .bind(hex::decode(HASH).unwrap())
    .execute(pool)
    .await
    .map(drop)
}

#[tokio::test]
async fn image_names_keep_their_rules_when_two_name_indexes_become_one() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    // The last migration with separate live-name and path indexes.
    let (url, old) = old_database(&backend, &dir, 8, 9).await;
    for (id, folder, archived) in [
        ("i-live", "/cats", false),
        ("i-gone-1", "/cats", true),
        ("i-gone-2", "/cats", true),
        ("i-dog", "/dogs", false),
    ] {
        insert_image(&old, id, folder, archived).await.unwrap();
    }
    old.close().await;

    let store = Store::connect(&url)
        .await
        .expect("the upgrade runs over archived images sharing a name");
    let by_path = |folder: &'static str| {
        let store = &store;
        async move {
            let row = store.image_by_path("d1", folder, "a.jpg").await.unwrap();
            row.map(|r| r.id)
        }
    };
    assert_eq!(by_path("/cats").await.as_deref(), Some("i-live"));
    assert_eq!(by_path("/dogs").await.as_deref(), Some("i-dog"));
    assert_eq!(by_path("/birds").await, None);
    let taken = store
        .names_taken(
            "d1",
            &[("/cats", "a.jpg"), ("/dogs", "a.jpg"), ("/dogs", "b.jpg")],
        )
        .await
        .unwrap();
    let mut taken: Vec<(String, String)> = taken.into_iter().collect();
    taken.sort_unstable();
    assert_eq!(
        taken,
        [("/cats", "a.jpg"), ("/dogs", "a.jpg")].map(|(f, n)| (f.to_string(), n.to_string()))
    );

    // A live name is still unique; archived images may still repeat it.
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let second = insert_current_image(&pool, "i-live-2", "/cats", false).await;
    assert!(
        second.is_err_and(|e| e
            .as_database_error()
            .is_some_and(|d| d.is_unique_violation())),
        "a second live /cats/a.jpg was accepted"
    );
    insert_current_image(&pool, "i-gone-3", "/cats", true)
        .await
        .unwrap();
    // A move into a folder whose live image has the name fails and changes nothing.
    let moved = store
        .batch_move("d1", &["i-dog".to_string()], "/cats")
        .await
        .unwrap();
    assert!(moved.succeeded.is_empty());
    assert_eq!(by_path("/dogs").await.as_deref(), Some("i-dog"));
    // Once the live image is archived, the name is free again.
    store.archive_image("i-live").await.unwrap();
    insert_current_image(&pool, "i-live-2", "/cats", false)
        .await
        .unwrap();
    assert_eq!(by_path("/cats").await.as_deref(), Some("i-live-2"));
    pool.close().await;
    drop(store);
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}

#[tokio::test]
async fn text_compares_by_bytes_after_the_upgrade() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    // On PostgreSQL, the last migration before text columns took the byte order; SQLite
    // always compared text by bytes, so its database is at the current schema.
    let (url, old) = old_database(&backend, &dir, 12, 15).await;
    for (id, folder) in [
        ("i-cars", "/cars"),
        ("i-red", "/cars/red"),
        ("i-dash", "/cars-old"),
        ("i-zero", "/cars0"),
        ("i-upper", "/Cars"),
    ] {
        insert_image(&old, id, folder, false).await.unwrap();
    }
    old.close().await;

    let store = Store::connect(&url).await.expect("the upgrade runs");
    if backend.database == Database::Postgres {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let other: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type = 'text' \
             AND table_name NOT LIKE '\\_sqlx%' AND collation_name IS DISTINCT FROM 'C'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(other, [], "text columns not in byte order");
        // The trigger the upgrade set aside while it changed the columns is back.
        let (triggers,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_trigger WHERE tgname = 'datasets_changes' \
             AND tgrelid = 'datasets'::regclass",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(triggers, 1);
        let (sorted,): (String,) = sqlx::query_as(
            "SELECT string_agg(folder, ' ' ORDER BY folder) FROM images \
             WHERE dataset_seq = (SELECT seq FROM datasets WHERE id = 'd1')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(sorted, "/Cars /cars /cars-old /cars/red /cars0");
        pool.close().await;
    }
    let filter = ImageFilter {
        folder: Some("/cars".into()),
        recursive: true,
        ..ImageFilter::default()
    };
    let (rows, total) = store.find_images("d1", &filter, 10, 0).await.unwrap();
    let mut ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
    ids.sort_unstable();
    assert_eq!((ids, total), (vec!["i-cars".into(), "i-red".into()], 2));
    drop(store);
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}

#[tokio::test]
async fn images_by_status_are_counted_after_the_upgrade() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    // The last migrations before the datasets kept a count of each status.
    let (url, old) = old_database(&backend, &dir, 12, 16).await;
    for (id, status, archived) in [
        ("i-new", "new", false),
        ("i-annotate", "annotate", false),
        ("i-review-1", "review", false),
        ("i-review-2", "review", false),
        ("i-complete", "complete", false),
        ("i-gone", "review", true),
    ] {
        insert_image(&old, id, &format!("/{id}"), archived)
            .await
            .unwrap();
        sqlx::query("UPDATE images SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(&old)
            .await
            .unwrap();
    }
    old.close().await;

    let store = Store::connect(&url).await.expect("the upgrade runs");
    let counts = || async {
        let mut counts = Vec::new();
        for status in ["new", "annotate", "review", "complete"] {
            let filter = ImageFilter {
                status: Some(status.into()),
                ..ImageFilter::default()
            };
            counts.push(store.count_images("d1", &filter).await.unwrap());
        }
        counts
    };
    assert_eq!(counts().await, [1, 1, 2, 1]);
    // And they follow the changes made after it.
    let update = pictograph_server::store::ImageUpdate {
        status: Some("new".into()),
        ..Default::default()
    };
    let ids = ["i-review-1", "i-gone", "i-new"].map(String::from);
    let changed = store.batch_update("d1", &ids, &update).await.unwrap();
    assert_eq!(changed.succeeded.len(), 3);
    assert_eq!(counts().await, [2, 1, 1, 1]);
    drop(store);
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}

/// A table and a view of someone else's in the database (another application sharing the
/// schema, or an extension such as pg_stat_statements, whose view lives in `public`) neither
/// stop the migrations nor are changed by them: text columns keep their collation, the rows
/// and the view stay. The release of the PostgreSQL migration that put text in byte order
/// changed every text column of the schema and failed on such a view.
#[tokio::test]
async fn the_migrations_leave_other_tables_and_views_in_the_schema_alone() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    let (url, pool) = empty_database(&backend, &dir).await;
    pool.execute(
        "CREATE TABLE their_notes (note TEXT NOT NULL); \
         INSERT INTO their_notes (note) VALUES ('Zebra'), ('apple'); \
         CREATE VIEW their_view AS SELECT note, upper(note) AS loud FROM their_notes",
    )
    .await
    .unwrap();
    let definition = "SELECT sql FROM sqlite_master WHERE name = 'their_notes'";
    let before: Option<(String,)> = match backend.database {
        Database::Sqlite => Some(sqlx::query_as(definition).fetch_one(&pool).await.unwrap()),
        Database::Postgres => None,
    };

    let store = Store::connect(&url)
        .await
        .expect("the migrations run beside another table and view");
    drop(store);

    let (notes,): (String,) =
        sqlx::query_as("SELECT string_agg(loud, ' ' ORDER BY loud) FROM their_view")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(notes, "APPLE ZEBRA");
    match backend.database {
        Database::Sqlite => {
            let after: (String,) = sqlx::query_as(definition).fetch_one(&pool).await.unwrap();
            assert_eq!(Some(after), before);
        }
        Database::Postgres => {
            let collations: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT table_name::text, collation_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name LIKE 'their\\_%' \
                 ORDER BY table_name, column_name",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let default = [
                ("their_notes".to_string(), None),
                ("their_view".to_string(), None),
                ("their_view".to_string(), None),
            ];
            assert_eq!(collations, default, "another table's collation changed");
        }
    }
    pool.close().await;
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}

#[tokio::test]
async fn images_keep_their_dataset_hash_times_and_lists_when_their_columns_narrow() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    // The last migrations with text dataset ids, hashes and times on images.
    let (url, old) = old_database(&backend, &dir, 14, 20).await;
    old.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO datasets (id, org_id, name, created_at, updated_at) \
         VALUES ('d2', 'o1', 'other', '{AT}', '{AT}');"
    )))
    .await
    .unwrap();
    let later = "2026-03-04T05:06:07.123456Z";
    for (id, dataset, archived, at) in [
        ("i-one", "d1", false, AT),
        ("i-two", "d1", false, later),
        ("i-gone", "d1", true, later),
        ("i-other", "d2", false, AT),
    ] {
        sqlx::query(
            "INSERT INTO images (id, dataset_id, folder, filename, is_archived, blob_hash, \
             file_size, mime_type, annotation_count, created_at, updated_at) \
             VALUES ($1, $2, '/', $1, $3, $4, 10, 'image/png', 1, $5, $5)",
        )
        .bind(id)
        .bind(dataset)
        .bind(i64::from(archived))
        .bind(HASH)
        .bind(at)
        .execute(&old)
        .await
        .unwrap();
        sqlx::query("INSERT INTO image_annotations (image_id, annotations) VALUES ($1, $2)")
            .bind(id)
            .bind(format!(r#"[{{"id":"{id}"}}]"#))
            .execute(&old)
            .await
            .unwrap();
    }
    old.close().await;

    let store = Store::connect(&url).await.expect("the upgrade runs");
    let rows = store.list_images("d1", None, 10, 0).await.unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                r.dataset_id.as_str(),
                r.blob_hash.as_str(),
                r.created_at.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("i-one", "d1", HASH, AT), ("i-two", "d1", HASH, later)],
        "live images of d1 in order, with their dataset, hash and time as before"
    );
    assert_eq!(rows[1].updated_at, later);
    let other = store.image_by_id("o1", "i-other").await.unwrap().unwrap();
    assert_eq!((other.dataset_id.as_str(), other.file_size), ("d2", 10));
    // Rebuilding the table took no annotation list with it.
    for id in ["i-one", "i-two", "i-gone", "i-other"] {
        assert_eq!(
            store.annotations(id).await.unwrap(),
            json!([{ "id": id }]),
            "{id}"
        );
    }
    let counts = store.dataset_counts("d1").await.unwrap().unwrap();
    assert_eq!(
        (
            counts.image_count,
            counts.archived_images,
            counts.annotation_count
        ),
        (2, 1, 2)
    );
    // A dataset made after the upgrade gets a number of its own: its images are its own, and
    // the counters follow them.
    let new = store
        .create_dataset("o1", "new", None, &json!([]), &json!(["bbox"]))
        .await
        .unwrap();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO images (id, dataset_seq, folder, filename, blob_hash, file_size, \
         mime_type, created_at, updated_at) \
         VALUES ('i-new', (SELECT seq FROM datasets WHERE id = $1), '/', 'n.png', $2, 7, \
         'image/png', $3, $3)",
    )
    .bind(&new.id)
    .bind(hex::decode(HASH).unwrap())
    .bind(AT_MICROS)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let listed = store.list_images(&new.id, None, 10, 0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].dataset_id.as_str()),
        ("i-new", new.id.as_str())
    );
    assert_eq!(listed[0].created_at, AT);
    let counts = store.dataset_counts(&new.id).await.unwrap().unwrap();
    assert_eq!((counts.image_count, counts.total_size), (1, 7));
    assert_eq!(store.list_images("d2", None, 10, 0).await.unwrap().len(), 1);
    drop(store);
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}

#[tokio::test]
async fn bytes_images_used_before_the_upgrade_stay_in_use_until_their_last_image_goes() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    // On PostgreSQL, the last migration before the references left the images' index for a
    // table of their own; SQLite keeps its index, so its database is at the current schema.
    let (url, old) = old_database(&backend, &dir, 15, 21).await;
    let other = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
    for (id, folder, hash) in [
        ("i-a", "/a", HASH),
        ("i-b", "/b", HASH),
        ("i-c", "/c", other),
    ] {
        sqlx::query(
            "INSERT INTO images (id, dataset_seq, folder, filename, blob_hash, file_size, \
             mime_type, created_at, updated_at) \
             VALUES ($1, (SELECT seq FROM datasets WHERE id = 'd1'), $2, 'a.jpg', $3, 10, \
             'image/jpeg', $4, $4)",
        )
        .bind(id)
        .bind(folder)
        .bind(hex::decode(hash).unwrap())
        .bind(AT_MICROS)
        .execute(&old)
        .await
        .unwrap();
    }
    old.close().await;

    let store = Store::connect(&url).await.expect("the upgrade runs");
    let unused = "efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef";
    let in_use = |hash: &'static str| {
        let store = store.clone();
        async move { store.blob_referenced(hash).await.unwrap() }
    };
    assert!(in_use(HASH).await && in_use(other).await && !in_use(unused).await);
    let delete = |id: &str| {
        let (store, ids) = (store.clone(), vec![id.to_string()]);
        async move {
            let out = store.batch_delete("d1", &ids, true).await.unwrap();
            assert_eq!(out.succeeded, ids);
        }
    };
    delete("i-c").await;
    assert!(!in_use(other).await && in_use(HASH).await);
    // Bytes two images share stay in use until the second goes.
    delete("i-a").await;
    assert!(in_use(HASH).await);
    delete("i-b").await;
    assert!(!in_use(HASH).await);
    drop(store);
    if backend.database == Database::Postgres {
        pg::drop_database(&url).await;
    }
}
