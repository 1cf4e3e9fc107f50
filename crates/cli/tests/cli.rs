//! The `pictograph` binary: key administration and the configuration layers of `serve`.

mod common;

use common::{bin, serve_logging_to};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).output().expect("run pictograph");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `serve` and returns the child and the `listening on` URL it printed.
fn serve(cmd: &mut Command) -> (Child, String, Vec<String>) {
    serve_logging_to(cmd, Stdio::null())
}

#[test]
fn keys_are_created_listed_and_revoked_without_storing_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, key, _) = run(&[
        "keys",
        "create",
        "--data-dir",
        d,
        "--org",
        "acme",
        "--role",
        "admin",
        "--tier",
        "pro",
    ]);
    assert!(ok);
    let key = key.trim();
    assert!(key.starts_with("pk_live_") && key.len() == 48, "{key}");
    let (ok, other, _) = run(&["keys", "create", "--data-dir", d, "--org", "acme"]);
    assert!(ok);
    assert_ne!(other.trim(), key);

    let (ok, list, _) = run(&["keys", "list", "--data-dir", d]);
    assert!(ok);
    assert!(!list.contains(key), "the secret is never listed");
    assert!(list.contains(&key[..14]), "the prefix is");
    assert!(list.contains("admin") && list.contains("pro") && list.contains("acme"));

    let db = std::fs::read(dir.path().join("pictograph.db")).unwrap();
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "the secret is not in the database"
    );

    let (ok, _, _) = run(&["keys", "revoke", "--data-dir", d, &key[..14]]);
    assert!(ok);
    let (_, list, _) = run(&["keys", "list", "--data-dir", d]);
    assert!(list.contains("revoked"));
    let (ok, _, err) = run(&["keys", "revoke", "--data-dir", d, "pk_live_nope"]);
    assert!(!ok);
    assert!(err.starts_with("error: no active key"), "{err}");
}

#[test]
fn bad_role_or_tier_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, _, err) = run(&["keys", "create", "--data-dir", d, "--role", "king"]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "error: unknown role 'king': use member, admin or owner"
    );
    let (ok, _, err) = run(&["keys", "create", "--data-dir", d, "--tier", "gold"]);
    assert!(!ok);
    assert!(err.contains("unknown tier 'gold'"), "{err}");
}

/// The server's log, sent to a file (or a pipe, or a journal), is plain text without the
/// colour codes a terminal would get.
#[test]
fn the_server_log_in_a_file_is_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let data = dir.path().join("data");
    let (mut child, _, _) = serve_logging_to(
        bin()
            .args(["serve", "--data-dir", data.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .env("PICTOGRAPH_LOG", "debug"),
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("DEBUG"),
        "the log holds the start's events: {text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn first_start_prints_an_owner_key_once_and_config_layers_apply() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("pictograph.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://files.example:1\"\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();

    let (mut child, url, printed) =
        serve(bin().args(["serve", "--config", file.to_str().unwrap()]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    assert!(
        printed.iter().any(|l| l.trim().starts_with("pk_live_")),
        "{printed:?}"
    );
    assert!(
        data.join("pictograph.db").exists(),
        "data_dir came from the file"
    );

    // Second start on the same data: no new key.
    let (mut child, _, printed) = serve(bin().args(["serve", "--config", file.to_str().unwrap()]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !printed.iter().any(|l| l.contains("pk_live_")),
        "{printed:?}"
    );

    // The environment beats the file.
    let env_data = dir.path().join("env-data");
    let (mut child, _, printed) = serve(
        bin()
            .args(["serve", "--config", file.to_str().unwrap()])
            .env("PICTOGRAPH_DATA_DIR", env_data.to_str().unwrap()),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(env_data.join("pictograph.db").exists());
    assert!(
        printed.iter().any(|l| l.contains("pk_live_")),
        "a new, empty store"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen_port = 3\n").unwrap();
    let (ok, _, err) = run(&["serve", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("parsing config file"), "{err}");
}

#[test]
fn a_pixel_limit_out_of_range_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    let (ok, _, err) = run(&["serve", "--data-dir", d, "--max-image-pixels", "0"]);
    assert!(!ok);
    assert!(err.contains("--max-image-pixels"), "{err}");
    let too_many = (pictograph_server::MAX_IMAGE_PIXELS + 1).to_string();
    let (ok, _, err) = run(&["serve", "--data-dir", d, "--max-image-pixels", &too_many]);
    assert!(!ok);
    assert!(err.contains("--max-image-pixels"), "{err}");
    // A file's value is checked as the flag's is.
    let file = dir.path().join("pictograph.toml");
    std::fs::write(&file, format!("data_dir = {d:?}\nmax_image_pixels = 0\n")).unwrap();
    let (ok, _, err) = run(&["serve", "--config", file.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        format!(
            "error: max_image_pixels must be between 1 and {}",
            pictograph_server::MAX_IMAGE_PIXELS
        )
    );
    assert!(
        !dir.path().join("data").join("pictograph.db").exists(),
        "nothing was created"
    );
}

#[test]
fn a_short_signing_secret_stops_the_start_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    for secret in ["", "0123456789abcdef"] {
        let (ok, _, err) = run(&["serve", "--data-dir", d, "--signing-secret", secret]);
        assert!(!ok);
        assert!(
            err.trim().starts_with(&format!(
                "error: the signing secret has {} bytes, fewer than the 32",
                secret.len()
            )),
            "{err}"
        );
    }
    let file = dir.path().join("pictograph.toml");
    std::fs::write(
        &file,
        format!("data_dir = {d:?}\nsigning_secret = \"short\"\n"),
    )
    .unwrap();
    let (ok, _, err) = run(&["serve", "--config", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("the signing secret has 5 bytes"), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

/// Servers started at the same moment on one new data directory: each runs the migrations in
/// turn and starts, exactly one of them creates the owner key, and all sign URLs with the same
/// key, so a download URL one of them hands out works on every other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_started_together_on_a_new_data_directory_agree() {
    let dir = tempfile::tempdir().unwrap();
    servers_started_together_agree(dir.path(), &[]).await;
}

/// The same on a new PostgreSQL database; and a database that turns the server away is named
/// with the reason at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; scripts/test runs it"]
async fn servers_started_together_on_a_new_postgres_database_agree() {
    let url = common::new_postgres_database("s").await;
    let dir = tempfile::tempdir().unwrap();
    servers_started_together_agree(dir.path(), &["--database-url", &url]).await;

    let missing = format!("{url}_missing");
    let (ok, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("other").to_str().unwrap(),
        "--database-url",
        &missing,
    ]);
    assert!(!ok);
    assert!(
        err.contains("cannot connect to the database") && err.contains("does not exist"),
        "{err}"
    );
}

/// Server processes, killed when dropped (also when a check fails).
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts three servers at once on a new store under `dir` (`args` add to each `serve`) and
/// checks that they all listen, one owner key was made, and they share one signing key.
async fn servers_started_together_agree(dir: &std::path::Path, args: &[&str]) {
    const SERVERS: usize = 3;
    let data = dir.join("data");
    let spawn = || {
        bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve")
    };
    let mut children = Servers((0..SERVERS).map(|_| spawn()).collect());
    let (mut urls, mut keys) = (Vec::new(), Vec::new());
    for i in 0..SERVERS {
        let mut listening = None;
        for line in BufReader::new(children.0[i].stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            match line.strip_prefix("listening on ") {
                Some(url) => {
                    listening = Some(url.to_string());
                    break;
                }
                None if line.trim().starts_with("pk_live_") => keys.push(line.trim().to_string()),
                None => {}
            }
        }
        let Some(url) = listening else {
            let mut err = String::new();
            let _ =
                std::io::Read::read_to_string(&mut children.0[i].stderr.take().unwrap(), &mut err);
            drop(children);
            panic!("server {i} of {SERVERS} exited instead of listening: {err}");
        };
        urls.push(url);
    }
    assert_eq!(keys.len(), 1, "one owner key, printed once: {keys:?}");
    let key = &keys[0];

    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 7]))
        .save(tree.join("a.png"))
        .unwrap();
    let client = |url: &str, args: &[&str]| {
        let out = bin()
            .args(args)
            .args(["--base-url", url])
            .env("PICTOGRAPH_API_KEY", key)
            .env("PICTOGRAPH_CONFIG_DIR", dir.join("cfg"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        out.stdout
    };
    client(
        &urls[0],
        &["upload", tree.to_str().unwrap(), "--dataset", "shared"],
    );
    let bytes = std::fs::read(tree.join("a.png")).unwrap();

    let http = reqwest::Client::new();
    let api = |url: &str, path: &str| format!("{url}/api/v1/developer/{path}");
    let listed = client(
        &urls[1],
        &["images", "list", "--dataset", "shared", "--json"],
    );
    let list: serde_json::Value = serde_json::from_slice(&listed).unwrap();
    let id = list["images"][0]["id"]
        .as_str()
        .expect("the image is listed");
    for signer in &urls {
        let meta: serde_json::Value = http
            .get(api(signer, &format!("images/{id}/metadata")))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let signed = meta["image"]["image_url"].as_str().expect("a download URL");
        let path = &signed[signed.find("/files/").expect("a signed file URL")..];
        for server in &urls {
            let got = http.get(format!("{server}{path}")).send().await.unwrap();
            assert_eq!(
                got.status(),
                200,
                "signed by {signer}, fetched from {server}"
            );
            assert_eq!(got.bytes().await.unwrap(), bytes);
        }
    }
    drop(children);

    let mut list = vec!["keys", "list", "--data-dir", data.to_str().unwrap()];
    list.extend(args.iter().copied());
    let (ok, listed, _) = run(&list);
    assert!(ok);
    assert_eq!(listed.lines().count(), 2, "a header and one key: {listed}");
}

/// What bash's completion offers for the words typed so far (the last one being completed),
/// with the script `pictograph completions bash` printed loaded as a user would load it.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pictograph.bash");
    let out = bin().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&script, &out.stdout).unwrap();
    let driver = r#"
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
        _pictograph pictograph "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = Command::new("bash")
        .args(["-c", driver, "bash", script.to_str().unwrap()])
        .args(words)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_offer_commands_flags_and_values() {
    assert_eq!(bash_completes(&["pictograph", "up"]), ["upload"]);
    let batch = bash_completes(&["pictograph", "batch", ""]);
    for op in ["move", "copy", "delete", "update"] {
        assert!(batch.iter().any(|w| w == op), "{op} missing from {batch:?}");
    }
    assert_eq!(
        bash_completes(&["pictograph", "download", "--mo"]),
        ["--mode"]
    );
    assert_eq!(
        bash_completes(&["pictograph", "download", "--mode", ""]),
        ["full", "images-only", "annotations-only"]
    );
    assert_eq!(
        bash_completes(&["pictograph", "images", "list", "--stat"]),
        ["--status"]
    );

    for (shell, marker, flag) in [
        ("zsh", "#compdef pictograph", "--dataset"),
        ("fish", "complete -c pictograph", "-l dataset"),
        (
            "elvish",
            "edit:completion:arg-completer[pictograph]",
            "--dataset",
        ),
        ("powershell", "Register-ArgumentCompleter", "--dataset"),
    ] {
        let (ok, script, _) = run(&["completions", shell]);
        assert!(ok, "{shell}");
        assert!(script.contains(marker), "{shell} script lacks {marker:?}");
        assert!(
            script.contains("upload") && script.contains(flag),
            "{shell} script lacks the upload command's flags"
        );
    }

    let (ok, out, err) = run(&["completions", "tcsh"]);
    assert!(!ok && out.is_empty());
    assert!(
        err.contains("possible values: bash, elvish, fish, powershell, zsh"),
        "{err}"
    );
}

#[test]
fn a_metrics_listener_from_the_config_file_serves_prometheus_text() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pictograph.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n",
            dir.path().join("data").to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = bin()
        .args(["serve", "--config", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = Vec::new();
    let mut addr = None;
    for line in out.lines() {
        let line = line.expect("read stdout");
        addr = line
            .strip_prefix("metrics on http://")
            .and_then(|l| l.strip_suffix("/metrics"))
            .map(str::to_string);
        if addr.is_some() {
            break;
        }
        printed.push(line);
    }
    let addr = addr.unwrap_or_else(|| panic!("no metrics line in {printed:?}"));
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("# TYPE pictograph_http_requests_total counter")
            && answer.contains("pictograph_build_info{version="),
        "{answer}"
    );
}
