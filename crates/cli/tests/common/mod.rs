//! Set-up shared by the CLI's test files. Each file uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary with no `PICTOGRAPH_*` settings of the calling environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pictograph"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PICTOGRAPH_") {
            c.env_remove(k);
        }
    }
    c
}

/// Starts `cmd` (a `serve` command), its log written to `stderr`, and returns the child, the
/// `listening on` URL it printed and the lines it printed before that.
pub fn serve_logging_to(cmd: &mut Command, stderr: Stdio) -> (Child, String, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn serve");
    let mut lines = Vec::new();
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    for line in reader.lines() {
        let line = line.expect("read stdout");
        if let Some(url) = line.strip_prefix("listening on ") {
            return (child, url.to_string(), lines);
        }
        lines.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve exited before listening; printed {lines:?}");
}

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
