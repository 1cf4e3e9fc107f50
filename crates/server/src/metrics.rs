//! Prometheus metrics, served as text on a listener of their own (`--metrics-listen`):
//! requests by route template, method and status, their latency, requests in flight, the
//! database pools, and the process's memory.
//!
//! Every route of [`crate::api::routes`] has its counters made when the server starts, so
//! counting a request takes no lock: a lookup in a map that never changes and a few atomic
//! additions. Requests no route matched count under the route `unmatched`.

use crate::memory::MemoryBudget;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Statuses counted without a lock; any other is counted in [`Series::rare`].
const STATUSES: [u16; 20] = [
    200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 409, 412, 413, 415, 416, 422, 429, 500,
    503,
];

/// Methods that get counters of their own; others count as `OTHER`.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// One (route, method) pair's counters.
#[derive(Default)]
struct Series {
    statuses: [AtomicU64; STATUSES.len()],
    rare: Mutex<BTreeMap<u16, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    micros: AtomicU64,
}

impl Series {
    fn record(&self, status: u16, seconds: f64) {
        match STATUSES.iter().position(|s| *s == status) {
            Some(i) => {
                self.statuses[i].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                *self
                    .rare
                    .lock()
                    .expect("metrics lock")
                    .entry(status)
                    .or_default() += 1
            }
        }
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The server's metrics.
pub struct Metrics {
    /// Series by route template, then by method (`METHODS` order, then `OTHER`).
    routes: HashMap<String, Vec<Series>>,
    /// Route templates in the order they are written out.
    order: Vec<String>,
    in_flight: AtomicI64,
    started: f64,
}

impl Metrics {
    /// Counters for every route of the server, and for unmatched requests.
    pub fn new() -> Metrics {
        let mut order: Vec<String> = crate::api::routes().iter().map(|r| r.full_path()).collect();
        order.push(UNMATCHED.to_string());
        order.sort();
        order.dedup();
        let routes = order
            .iter()
            .map(|r| {
                let series = (0..=METHODS.len()).map(|_| Series::default()).collect();
                (r.clone(), series)
            })
            .collect();
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Metrics {
            routes,
            order,
            in_flight: AtomicI64::new(0),
            started,
        }
    }

    fn series(&self, route: Option<&str>, method: &Method) -> &Series {
        let by_method = route
            .and_then(|r| self.routes.get(r))
            .unwrap_or_else(|| &self.routes[UNMATCHED]);
        let i = METHODS
            .iter()
            .position(|m| m == method)
            .unwrap_or(METHODS.len());
        &by_method[i]
    }

    /// The Prometheus text exposition of every metric, with the pools' and the process's
    /// state read now.
    pub fn render(&self, state: &AppState) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let method_name = |i: usize| METHODS.get(i).map_or("OTHER", |m| m.as_str());
        describe(
            &mut out,
            "pictograph_http_requests_total",
            "counter",
            "Requests answered, by route template, method and status.",
        );
        for route in &self.order {
            for (i, s) in self.routes[route].iter().enumerate() {
                let mut counts: Vec<(u16, u64)> = STATUSES
                    .iter()
                    .zip(&s.statuses)
                    .map(|(code, n)| (*code, n.load(Ordering::Relaxed)))
                    .collect();
                counts.extend(
                    s.rare
                        .lock()
                        .expect("metrics lock")
                        .iter()
                        .map(|(c, n)| (*c, *n)),
                );
                counts.sort_unstable();
                for (code, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
                    let _ = writeln!(
                        out,
                        "pictograph_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{code}\"}} {n}",
                        method_name(i),
                        escape(route)
                    );
                }
            }
        }
        describe(
            &mut out,
            "pictograph_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer's head, by route template and method.",
        );
        for route in &self.order {
            for (i, s) in self.routes[route].iter().enumerate() {
                let count = s.count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let labels = format!("method=\"{}\",route=\"{}\"", method_name(i), escape(route));
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(&s.buckets) {
                    cumulative += n.load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "pictograph_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                    );
                }
                let seconds = s.micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "pictograph_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}\n\
                     pictograph_http_request_duration_seconds_sum{{{labels}}} {seconds}\n\
                     pictograph_http_request_duration_seconds_count{{{labels}}} {count}"
                );
            }
        }
        describe(
            &mut out,
            "pictograph_http_requests_in_flight",
            "gauge",
            "Requests being answered now.",
        );
        let _ = writeln!(
            out,
            "pictograph_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        describe(
            &mut out,
            "pictograph_db_connections",
            "gauge",
            "Open database connections, by pool and state.",
        );
        for pool in state.store.pool_stats() {
            let _ = writeln!(
                out,
                "pictograph_db_connections{{pool=\"{}\",state=\"idle\"}} {}\n\
                 pictograph_db_connections{{pool=\"{}\",state=\"busy\"}} {}",
                pool.name,
                pool.idle,
                pool.name,
                pool.open.saturating_sub(pool.idle)
            );
        }
        if let Some(syncs) = state.store.log_syncs() {
            describe(
                &mut out,
                "pictograph_db_log_syncs_total",
                "counter",
                "Syncs of the write-ahead log (on PostgreSQL, flushes) that answers to writes waited for, each shared by the commits made while the one before ran.",
            );
            let _ = writeln!(out, "pictograph_db_log_syncs_total {syncs}");
        }
        if let Some(folded) = state.store.folded_counter_changes() {
            describe(
                &mut out,
                "pictograph_db_counter_changes_folded_total",
                "counter",
                "Dataset counter changes (one per statement that changed a dataset's counted images) this server folded into the datasets' rows (PostgreSQL only).",
            );
            let _ = writeln!(out, "pictograph_db_counter_changes_folded_total {folded}");
        }
        if let (Some(images), Some(uploads), Some(annotations)) = (
            state.store.gather_stats(),
            state.store.pending_gather_stats(),
            state.store.annotation_gather_stats(),
        ) {
            for (name, help, n) in [
                (
                    "pictograph_db_gathered_reads_total",
                    "Image lookups answered by statements shared with other lookups (PostgreSQL only).",
                    images.reads,
                ),
                (
                    "pictograph_db_gathered_statements_total",
                    "Statements that answered the gathered image lookups (PostgreSQL only).",
                    images.statements,
                ),
                (
                    "pictograph_db_gathered_upload_reads_total",
                    "Upload PUTs' lookups of their pending upload answered by shared statements (PostgreSQL only).",
                    uploads.reads,
                ),
                (
                    "pictograph_db_gathered_upload_statements_total",
                    "Statements that answered the gathered pending-upload lookups (PostgreSQL only).",
                    uploads.statements,
                ),
                (
                    "pictograph_db_gathered_annotation_reads_total",
                    "Lookups of one image's annotation list answered by shared statements (PostgreSQL only).",
                    annotations.reads,
                ),
                (
                    "pictograph_db_gathered_annotation_statements_total",
                    "Statements that answered the gathered annotation-list lookups (PostgreSQL only).",
                    annotations.statements,
                ),
            ] {
                describe(&mut out, name, "counter", help);
                let _ = writeln!(out, "{name} {n}");
            }
        }
        let budgets = [
            ("received", &state.upload_memory),
            ("decoded", &state.decode_memory),
        ];
        let series: [(&str, &str, &str, BudgetReading); 3] = [
            (
                "pictograph_upload_memory_in_use_bytes",
                "gauge",
                "Memory reserved now by uploads being checked: received bytes, and pixels decoded to check them.",
                MemoryBudget::in_use,
            ),
            (
                "pictograph_upload_memory_limit_bytes",
                "gauge",
                "The upload memory budgets (0: no limit).",
                MemoryBudget::limit,
            ),
            (
                "pictograph_upload_memory_waits_total",
                "counter",
                "Uploads that waited for memory under a budget.",
                MemoryBudget::waits,
            ),
        ];
        for (name, kind, help, read) in series {
            describe(&mut out, name, kind, help);
            for (budget, memory) in budgets {
                let _ = writeln!(out, "{name}{{budget=\"{budget}\"}} {}", read(memory));
            }
        }
        if let Some(skew) = state.clock_skew.get() {
            describe(
                &mut out,
                "pictograph_clock_skew_seconds",
                "gauge",
                "This server's clock minus the database's, as last measured (PostgreSQL only).",
            );
            let _ = writeln!(out, "pictograph_clock_skew_seconds {skew}");
        }
        if let Some(rss) = resident_bytes() {
            describe(
                &mut out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        describe(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
        );
        let _ = writeln!(out, "process_start_time_seconds {}", self.started);
        describe(
            &mut out,
            "pictograph_build_info",
            "gauge",
            "The server's version, as a label; always 1.",
        );
        let _ = writeln!(
            out,
            "pictograph_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// How a metric reads an upload memory budget.
type BudgetReading = fn(&MemoryBudget) -> u64;

fn describe(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The resident set size of this process, from `/proc` (Linux only).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb: u64 = kb.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kb * 1024)
}

/// The route template a request matched, handed from [`tag_route`] to [`count`] on the
/// response.
#[derive(Clone)]
struct RouteTag(MatchedPath);

/// Inner layer (on every route): records which route template answered.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(RouteTag(m));
    }
    resp
}

/// Outer layer: counts every request and times it until its answer's head is ready.
pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(metrics) = state.metrics.as_deref() else {
        return next.run(req).await;
    };
    let method = req.method().clone();
    let start = Instant::now();
    metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let route = resp.extensions().get::<RouteTag>().map(|t| t.0.as_str());
    metrics
        .series(route, &method)
        .record(resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics` on the metrics listener.
pub async fn scrape(State(state): State<AppState>) -> Response {
    match state.metrics.as_deref() {
        Some(m) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            m.render(&state),
        )
            .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
