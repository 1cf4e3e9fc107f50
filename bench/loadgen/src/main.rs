//! Open-loop load generator: sends GET requests at a fixed rate whatever the server's pace,
//! and reports the answers by status with the latencies of each status apart, so that the
//! latency of allowed requests is not mixed with that of quick refusals.
//!
//! Latency runs from the moment a request was due, not from when it was sent, so a client
//! falling behind shows as latency instead of hiding it. A request that cannot start
//! because `--max-in-flight` requests are pending is counted as skipped.

use anyhow::{bail, Context};
use clap::Parser;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Parser)]
struct Args {
    /// Absolute URL to GET.
    #[arg(long)]
    url: String,
    /// Sent as `X-API-Key`.
    #[arg(long)]
    key: String,
    /// Requests per second to send.
    #[arg(long)]
    rate: f64,
    /// Seconds to send for.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Before the run, send requests as fast as `--drain-concurrency` allows until one is
    /// answered 429, to spend the key's stored budget.
    #[arg(long)]
    drain: bool,
    /// Concurrent requests while draining.
    #[arg(long, default_value_t = 32)]
    drain_concurrency: usize,
    /// Most requests pending at once.
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
}

/// Latencies in microseconds by status (0: no answer).
type Results = Arc<Mutex<BTreeMap<u16, Vec<u64>>>>;

async fn get(client: &reqwest::Client, args: &Args) -> u16 {
    match client
        .get(&args.url)
        .header("X-API-Key", &args.key)
        .send()
        .await
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    }
}

/// Spends the stored budget; returns how many requests were allowed.
async fn drain(client: &reqwest::Client, args: &Arc<Args>) -> anyhow::Result<u64> {
    let started = Instant::now();
    let allowed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..args.drain_concurrency {
        let (client, args) = (client.clone(), args.clone());
        let (allowed, refused) = (allowed.clone(), refused.clone());
        workers.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            while !refused.load(Ordering::Relaxed) {
                match get(&client, &args).await {
                    200 => {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    429 => refused.store(true, Ordering::Relaxed),
                    other => return Err(anyhow::anyhow!("draining: status {other}")),
                }
            }
            Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let n = allowed.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "drained: {n} requests allowed in {:.1} s before the first 429",
        started.elapsed().as_secs_f64()
    );
    Ok(n)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if !(args.rate.is_finite()
        && args.rate > 0.0
        && args.duration.is_finite()
        && args.duration > 0.0)
    {
        bail!("--rate and --duration must be positive");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.max_in_flight)
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    if args.drain {
        drain(&client, &args).await?;
    }

    let results: Results = Arc::new(Mutex::new(BTreeMap::new()));
    let slots = Arc::new(Semaphore::new(args.max_in_flight));
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let total = (args.rate * args.duration).round() as u64;
    let started = tokio::time::Instant::now();
    let mut skipped = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + period.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let (client, args, results) = (client.clone(), args.clone(), results.clone());
        tasks.spawn(async move {
            let status = get(&client, &args).await;
            let micros = due.elapsed().as_micros() as u64;
            drop(permit);
            results
                .lock()
                .expect("results")
                .entry(status)
                .or_default()
                .push(micros);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();

    let mut results = results.lock().expect("results").clone();
    let answered: usize = results.values().map(Vec::len).sum();
    println!(
        "offered {:.0} req/s for {:.0} s: {answered} answered in {elapsed:.1} s = {:.0} req/s, {skipped} skipped (too many in flight)",
        args.rate,
        args.duration,
        answered as f64 / elapsed
    );
    for (status, lat) in results.iter_mut() {
        lat.sort_unstable();
        let name = if *status == 0 {
            "no answer".to_string()
        } else {
            status.to_string()
        };
        println!(
            "status {name}: {} ({:.1}/s)  latency ms p50 {:.2}  p99 {:.2}  max {:.2}",
            lat.len(),
            lat.len() as f64 / elapsed,
            percentile(lat, 50.0),
            percentile(lat, 99.0),
            percentile(lat, 100.0),
        );
    }
    let other: usize = results
        .iter()
        .filter(|(s, _)| !matches!(**s, 200 | 429))
        .map(|(_, l)| l.len())
        .sum();
    println!(
        "other statuses (neither 200 nor 429): {}",
        other + skipped as usize
    );
    Ok(())
}
