//! Resident memory of a process, sampled from `/proc` every 50 ms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// (VmRSS, VmHWM) of a process in MB.
pub fn now(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Samples a process's RSS in the background; [`Sampler::take`] answers the largest value
/// since the previous take.
pub struct Sampler {
    pid: u32,
    max_kb: Arc<AtomicU64>,
}

/// The largest RSS seen over a phase.
pub struct Peak(u64);

impl Peak {
    /// In MB.
    pub fn max_mb(&self) -> f64 {
        self.0 as f64 / 1024.0
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

impl Sampler {
    /// Starts sampling `pid` until it exits.
    pub fn start(pid: u32) -> Sampler {
        let max_kb = Arc::new(AtomicU64::new(0));
        let m = max_kb.clone();
        std::thread::spawn(move || {
            while let Some(kb) = rss_kb(pid) {
                m.fetch_max(kb, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler { pid, max_kb }
    }

    /// The largest RSS since the previous call, the RSS at this moment included (a phase
    /// shorter than the sampling period would otherwise have no sample at all).
    pub fn take(&self) -> Peak {
        if let Some(kb) = rss_kb(self.pid) {
            self.max_kb.fetch_max(kb, Ordering::Relaxed);
        }
        Peak(self.max_kb.swap(0, Ordering::Relaxed))
    }
}
