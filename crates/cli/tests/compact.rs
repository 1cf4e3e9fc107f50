//! `pictograph compact` on the data directory of a server: refused while the server runs,
//! then a rewrite the restarted server serves the same data from.

mod common;

use common::{bin, serve_logging_to};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};

/// `pictograph compact [args]`: (success, stdout, stderr).
fn compact(args: &[&str]) -> (bool, String, String) {
    let out = bin()
        .arg("compact")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pictograph compact");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pictograph serve` on `data`: the process and its URL.
fn serve(data: &str) -> (Child, String) {
    let mut cmd = bin();
    cmd.args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0"]);
    let (child, url, _) = serve_logging_to(&mut cmd, Stdio::null());
    (child, url)
}

/// Stops the server as a service manager does (SIGTERM), and waits for it to exit.
fn stop(mut child: Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
}

async fn call(method: reqwest::Method, url: &str, key: &str, path: &str) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method.clone(), format!("{url}/api/v1/developer/{path}"))
        .header("X-API-Key", key);
    if method == reqwest::Method::POST {
        r = r.json(&json!({"name": "kept", "classes": ["car"]}));
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn compact_waits_for_the_server_to_stop_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let key = bin()
        .args(["keys", "create", "--data-dir", d, "--role", "owner"])
        .output()
        .unwrap();
    let key = String::from_utf8(key.stdout).unwrap().trim().to_string();
    let (server, url) = serve(d);
    let (status, body) = call(reqwest::Method::POST, &url, &key, "projects/").await;
    assert_eq!(status, 201, "{body}");

    let (ok, stdout, stderr) = compact(&["--data-dir", d]);
    assert!(!ok, "compacted under a running server: {stdout}");
    assert!(
        stderr.starts_with("error: the database is in use: stop the servers"),
        "{stderr}"
    );
    let (status, _) = call(reqwest::Method::GET, &url, &key, "datasets/by-name/kept").await;
    assert_eq!(status, 200, "the server works on after the refusal");
    stop(server);

    let (ok, stdout, stderr) = compact(&["--data-dir", d, "--json"]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["page_size"], 8192, "{report}");
    assert_eq!(report["page_size_before"], 8192, "{report}");
    assert!(report["bytes_after"].as_u64().unwrap() > 0, "{report}");
    let (ok, stdout, _) = compact(&["--data-dir", d]);
    assert!(ok && stdout.starts_with("Compacted "), "{stdout}");

    let (server, url) = serve(d);
    let (status, body) = call(reqwest::Method::GET, &url, &key, "datasets/by-name/kept").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dataset"]["classes"][0]["name"], "car", "{body}");
    stop(server);
}

#[test]
fn compact_names_what_it_cannot_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, _, stderr) = compact(&["--data-dir", d]);
    assert!(!ok);
    assert!(stderr.contains("no server data in"), "{stderr}");
    let (ok, _, stderr) = compact(&["--database-url", "postgres://db.invalid/pictograph"]);
    assert!(!ok);
    assert!(stderr.contains("VACUUM FULL images"), "{stderr}");
}
