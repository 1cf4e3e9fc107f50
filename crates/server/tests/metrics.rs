//! Prometheus metrics on their own listener: every request counted once under its route
//! template, method and status, latency histograms that add up, requests no route matched
//! counted apart, nothing served on the API's own port, and nothing kept when no metrics
//! listener is configured.

use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use serde_json::json;
use std::collections::HashMap;

/// Samples of one scrape: the series (name and labels, as written) to their value.
async fn scrape(http: &reqwest::Client, app: &App) -> HashMap<String, f64> {
    let addr = app.metrics_addr.expect("a metrics listener");
    let resp = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = resp.text().await.unwrap();
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "twice: {series}"
        );
    }
    samples
}

fn requests(method: &str, route: &str, status: u16) -> String {
    format!(
        "pictograph_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_route_method_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = App::start(config).await.unwrap();
    let key = create_key(&app.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let api = |p: &str| format!("http://{}/api/v1/developer{p}", app.addr);
    let before = scrape(&http, &app).await;
    assert!(!before
        .keys()
        .any(|k| k.starts_with("pictograph_http_requests_total")));
    assert_eq!(before["pictograph_http_requests_in_flight"], 0.0);
    assert!(before["process_resident_memory_bytes"] > 1e6);
    assert_eq!(before["pictograph_build_info{version=\"0.1.0\"}"], 1.0);
    for budget in ["received", "decoded"] {
        let series = |name: &str| before[&format!("{name}{{budget=\"{budget}\"}}")];
        assert_eq!(series("pictograph_upload_memory_limit_bytes"), 268435456.0);
        assert_eq!(series("pictograph_upload_memory_in_use_bytes"), 0.0);
        assert_eq!(series("pictograph_upload_memory_waits_total"), 0.0);
    }
    assert!(
        !before
            .keys()
            .any(|k| k.starts_with("pictograph_db_gathered")),
        "SQLite gathers no reads"
    );
    assert_eq!(
        before["pictograph_db_connections{pool=\"write\",state=\"idle\"}"]
            + before["pictograph_db_connections{pool=\"write\",state=\"busy\"}"],
        1.0
    );

    let created = http
        .post(api("/projects/"))
        .header("x-api-key", &key)
        .json(&json!({"name": "counted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for _ in 0..3 {
        let got = http
            .get(api("/projects/counted"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
    }
    let missing = http
        .get(api("/projects/nope"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let refused = http
        .get(api("/projects/counted"))
        .header("x-api-key", "pk_live_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let nowhere = http.get(api("/no/such/route")).send().await.unwrap();
    assert_eq!(nowhere.status(), 404);
    let health = http
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let not_here = http
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(not_here.status(), 404, "metrics are not on the API's port");

    let after = scrape(&http, &app).await;
    let syncs = "pictograph_db_log_syncs_total";
    assert!(
        after[syncs] > before[syncs],
        "the created project's answer waited for a sync of the log"
    );
    let named = "/api/v1/developer/projects/{name}";
    let expected = [
        (requests("POST", "/api/v1/developer/projects/", 201), 1.0),
        (requests("GET", named, 200), 3.0),
        (requests("GET", named, 404), 1.0),
        (requests("GET", named, 401), 1.0),
        (requests("GET", "/healthz", 200), 1.0),
        (requests("GET", "unmatched", 404), 2.0),
    ];
    for (series, n) in &expected {
        assert_eq!(after.get(series), Some(n), "{series}");
    }
    let total: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("pictograph_http_requests_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 9.0, "every request once, the scrapes not at all");

    // The histogram of GET /projects/{name} holds its five requests, in buckets that only
    // grow, with a sum of times that is positive and below five times the largest bound.
    let labels = format!("method=\"GET\",route=\"{named}\"");
    let count = after[&format!("pictograph_http_request_duration_seconds_count{{{labels}}}")];
    assert_eq!(count, 5.0);
    let bounds = [
        "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
        "2.5", "5", "10", "+Inf",
    ];
    let mut last = 0.0;
    for le in bounds {
        let n = after
            [&format!("pictograph_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}")];
        assert!(n >= last, "bucket {le} shrank");
        last = n;
    }
    assert_eq!(last, 5.0);
    let sum = after[&format!("pictograph_http_request_duration_seconds_sum{{{labels}}}")];
    assert!(sum > 0.0 && sum < 50.0, "{sum}");
    assert_eq!(after["pictograph_http_requests_in_flight"], 0.0);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_metrics_listener_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = App::start(config).await.unwrap();
    assert!(app.metrics_addr.is_none());
    assert!(app.state.metrics.is_none());
    let resp = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    app.stop().await.unwrap();
}
