//! Set-up shared by the CLI's test files.

/// A new, empty database in the PostgreSQL test cluster (`PICTOGRAPH_TEST_POSTGRES`), named
/// `prefix` and a random suffix; answers its URL.
pub async fn new_postgres_database(prefix: &str) -> String {
    use sqlx::Connection;
    let admin = std::env::var("PICTOGRAPH_TEST_POSTGRES")
        .expect("PICTOGRAPH_TEST_POSTGRES names the test cluster");
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&format!("{admin}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{admin}/{name}")
}
