//! Throwaway PostgreSQL databases for the tests, on the cluster named by
//! `PICTOGRAPH_TEST_POSTGRES` (an admin URL such as `postgres://postgres@127.0.0.1:5433`;
//! `scripts/test-postgres` starts a cluster and prints one).
#![allow(dead_code)]

use sqlx::Connection;

/// The variable naming the admin URL of the test cluster.
pub const ADMIN_URL_VAR: &str = "PICTOGRAPH_TEST_POSTGRES";

/// The admin URL of the test cluster; panics when it is not set.
pub fn admin_url() -> String {
    match std::env::var(ADMIN_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
        _ => panic!(
            "{ADMIN_URL_VAR} must name a PostgreSQL admin URL such as \
             postgres://postgres@127.0.0.1:5433 (scripts/test-postgres starts a cluster and \
             prints one)"
        ),
    }
}

async fn admin_connection() -> sqlx::PgConnection {
    let admin = admin_url();
    sqlx::PgConnection::connect(&format!("{admin}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("connecting to the test cluster at {admin}: {e}"))
}

/// Creates a fresh, empty database on the test cluster and returns its URL.
pub async fn fresh_database() -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin_connection().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    format!("{}/{name}", admin_url())
}

/// Drops a database [`fresh_database`] made, closing whatever still uses it.
pub async fn drop_database(url: &str) {
    let name = url.rsplit('/').next().expect("database name");
    assert!(
        name.starts_with("t_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "not a test database: {url}"
    );
    let mut conn = admin_connection().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("DROP DATABASE {name}: {e}"));
}
