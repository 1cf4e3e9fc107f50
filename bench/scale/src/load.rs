//! Closed-loop load: a fixed number of connections, each sending its next GET as soon as the
//! previous answer is read, for a fixed time.

use std::time::{Duration, Instant};

/// What one run measured.
pub struct Figures {
    /// Answered requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile latency, ms.
    pub p99: f64,
    /// Requests that failed or were not answered 200.
    pub errors: u64,
}

/// Runs `connections` loops of GET for `duration`, each loop walking `urls` round-robin from
/// its own starting point (one URL: every request asks for the same thing).
pub async fn run(
    urls: &[String],
    key: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Figures> {
    anyhow::ensure!(!urls.is_empty(), "no URL to load");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let urls: std::sync::Arc<[String]> = urls.into();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (http, urls, key) = (http.clone(), urls.clone(), key.to_string());
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut next = c * urls.len() / connections;
            while started.elapsed() < duration {
                let url = &urls[next % urls.len()];
                next += 1;
                let t = Instant::now();
                let ok = match http.get(url).header("X-API-Key", &key).send().await {
                    Ok(r) => r.status().as_u16() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        let (lat, e) = r?;
        all.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * all.len() as f64).ceil() as usize;
        all[rank.clamp(1, all.len()) - 1] as f64 / 1000.0
    };
    Ok(Figures {
        rps: all.len() as f64 / elapsed,
        p50: pct(50.0),
        p99: pct(99.0),
        errors,
    })
}
