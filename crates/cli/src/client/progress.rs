//! Transfer progress on standard error: an indicatif bar (files, bytes, rate, ETA) on a
//! terminal, a plain line every 10 % (or 5 s) otherwise and a last one once every file is
//! done, nothing with `--json` off a terminal. Failed and skipped files are counted in both.
//! Retries are said on standard error too ([`retry_line`]), above the bar when one is drawn.

use super::human_bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bar on screen, if any: lines said meanwhile are printed above it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The last retry line said, and when: the same cause is said at most once a few seconds.
static LAST_RETRY: Mutex<Option<(Instant, Option<u16>)>> = Mutex::new(None);

/// Says on standard error why a request is about to be retried, and after how long:
/// without it a rate-limited command would sit silent for up to two minutes. Many
/// transfers hit by the same cause at once say it once.
pub fn retry_line(n: &pictograph::RetryNotice) {
    {
        let mut last = LAST_RETRY.lock().expect("retry lock");
        if matches!(*last, Some((at, status)) if status == n.status && at.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        *last = Some((Instant::now(), n.status));
    }
    let line = retry_text(n);
    match SHOWN.lock().expect("bar lock").as_ref() {
        Some(bar) => bar.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// The line [`retry_line`] says.
fn retry_text(n: &pictograph::RetryNotice) -> String {
    let secs = n.delay.as_secs_f64();
    let wait = if secs < 10.0 {
        format!("{secs:.1} s")
    } else {
        format!("{secs:.0} s")
    };
    let which = format!("retry {} of {}", n.retry, n.max_retries);
    match n.status {
        Some(429) if n.server_asked => {
            format!("rate limited by the server (HTTP 429): waiting {wait} as it asks ({which})")
        }
        Some(status) => {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            format!("the server answered HTTP {status}{reason}: retrying in {wait} ({which})")
        }
        None => format!("the connection failed or broke off: retrying in {wait} ({which})"),
    }
}

enum Sink {
    Bar(ProgressBar),
    Lines,
    Off,
}

/// How one file ended.
#[derive(Clone, Copy)]
enum Ended {
    Moved,
    Skipped,
    Failed,
}

struct State {
    files: u64,
    total_files: u64,
    /// Bytes moved.
    bytes: u64,
    /// Bytes to move: those of every file, less those of the files skipped.
    total_bytes: Option<u64>,
    skipped: u64,
    skipped_bytes: u64,
    failed: u64,
    /// Bytes of the files that failed: they stay in the total, which the bytes moved then
    /// never reach, and are said beside the failure count.
    failed_bytes: u64,
    last_line: Instant,
    next_step: u64,
}

/// One transfer's progress reporter; shared by the SDK's callbacks.
pub struct Progress {
    verb: &'static str,
    /// Whether bytes are counted and shown (not for work counted in files only).
    shows_bytes: bool,
    sink: Sink,
    start: Instant,
    state: Mutex<State>,
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    format!("{}/s", human_bytes((bytes as f64 / secs) as u64))
}

impl Progress {
    /// A reporter for `verb` ("upload", "download"); totals may be set later.
    pub fn new(verb: &'static str, total_files: u64, total_bytes: Option<u64>, json: bool) -> Self {
        let sink = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(total_files),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30.cyan/blue}] {pos}/{len} files  {msg}  ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(verb);
            *SHOWN.lock().expect("bar lock") = Some(bar.clone());
            Sink::Bar(bar)
        } else if json {
            Sink::Off
        } else {
            Sink::Lines
        };
        Progress {
            verb,
            shows_bytes: true,
            sink,
            start: Instant::now(),
            state: Mutex::new(State {
                files: 0,
                total_files,
                bytes: 0,
                total_bytes,
                skipped: 0,
                skipped_bytes: 0,
                failed: 0,
                failed_bytes: 0,
                last_line: Instant::now(),
                next_step: 1,
            }),
        }
    }

    /// The same reporter for work counted in files only: no bytes or byte rate are shown.
    pub fn files_only(mut self) -> Self {
        self.shows_bytes = false;
        self
    }

    /// Sets the number of files once it is known.
    pub fn set_total_files(&self, n: u64) {
        let mut s = self.state.lock().expect("progress lock");
        if s.total_files != n {
            s.total_files = n;
            if let Sink::Bar(b) = &self.sink {
                b.set_length(n);
            }
        }
    }

    /// One more file done, of `bytes` bytes.
    pub fn file_done(&self, bytes: u64) {
        self.advance(bytes, Ended::Moved);
    }

    /// One more file done whose `size` bytes were not sent: `skipped` when it was already
    /// there, else it failed. A skipped file's bytes leave the total (there was nothing to
    /// move); a failed file's stay in it, counted apart as failed, so that the bytes moved and
    /// those of the failed files add up to the total when all files are done.
    pub fn file_not_sent(&self, size: u64, skipped: bool) {
        let ended = if skipped {
            Ended::Skipped
        } else {
            Ended::Failed
        };
        self.advance(size, ended);
    }

    fn advance(&self, size: u64, ended: Ended) {
        let mut s = self.state.lock().expect("progress lock");
        s.files += 1;
        match ended {
            Ended::Moved => s.bytes += size,
            Ended::Skipped => {
                s.skipped += 1;
                s.skipped_bytes += size;
                if let Some(t) = &mut s.total_bytes {
                    *t = t.saturating_sub(size);
                }
            }
            Ended::Failed => {
                s.failed += 1;
                s.failed_bytes += size;
            }
        }
        let elapsed = self.start.elapsed();
        match &self.sink {
            Sink::Bar(b) => {
                let counts = self.counts(&s);
                let message = if self.shows_bytes {
                    format!("{}  {}{counts}", self.amount(&s), rate(s.bytes, elapsed))
                } else {
                    counts.trim_start_matches(", ").to_string()
                };
                b.set_message(message);
                b.set_position(s.files);
            }
            Sink::Lines => {
                let total = s.total_files.max(1);
                let step_reached = s.files * 10 >= s.next_step * total;
                // The last file's line is said by `finish`, once the total is sure to be
                // final (a download learns its total a page at a time).
                let done = s.files >= s.total_files;
                if (step_reached || s.last_line.elapsed() >= Duration::from_secs(5)) && !done {
                    while s.files * 10 >= s.next_step * total {
                        s.next_step += 1;
                    }
                    s.last_line = Instant::now();
                    let left = s.total_files.saturating_sub(s.files) as f64;
                    let eta = elapsed.as_secs_f64() / s.files as f64 * left;
                    eprintln!("{}, ETA {eta:.0} s", self.line(&s, elapsed));
                }
            }
            Sink::Off => {}
        }
    }

    /// `1 failed (652 B), 2 skipped`, each part only when it counts something, and led by
    /// `, `; the bytes of the failed files only when bytes are shown and known.
    fn counts(&self, s: &State) -> String {
        let mut out = String::new();
        if s.failed > 0 {
            out.push_str(&format!(", {} failed", s.failed));
            if self.shows_bytes && s.failed_bytes > 0 {
                out.push_str(&format!(" ({})", human_bytes(s.failed_bytes)));
            }
        }
        if s.skipped > 0 {
            out.push_str(&format!(", {} skipped", s.skipped));
        }
        out
    }

    /// Bytes moved, of the total when it is known: `1.2 MiB/5.0 MiB`.
    fn amount(&self, s: &State) -> String {
        match s.total_bytes {
            Some(t) => format!("{}/{}", human_bytes(s.bytes), human_bytes(t)),
            None => human_bytes(s.bytes),
        }
    }

    /// A plain progress line without its ending: `upload: 7/10 files, 1 failed (652 B),
    /// 1 skipped, 1.2 MiB/5.0 MiB, 300 KiB/s`.
    fn line(&self, s: &State, elapsed: Duration) -> String {
        let moved = if self.shows_bytes {
            format!(", {}, {}", self.amount(s), rate(s.bytes, elapsed))
        } else {
            String::new()
        };
        format!(
            "{}: {}/{} files{}{moved}",
            self.verb,
            s.files,
            s.total_files,
            self.counts(s)
        )
    }

    /// Removes the bar (the caller prints the summary). Plain lines end with one for the last
    /// file, when every file was done: the count at its total, with the failures.
    pub fn finish(&self) {
        match &self.sink {
            Sink::Bar(b) => {
                b.finish_and_clear();
                SHOWN.lock().expect("bar lock").take();
            }
            Sink::Lines => {
                let s = self.state.lock().expect("progress lock");
                if s.total_files > 0 && s.files >= s.total_files {
                    eprintln!("{}, done", self.line(&s, self.start.elapsed()));
                }
            }
            Sink::Off => {}
        }
    }

    /// Bytes of the files that failed.
    pub fn failed_bytes(&self) -> u64 {
        self.state.lock().expect("progress lock").failed_bytes
    }

    /// Bytes of the files skipped.
    pub fn skipped_bytes(&self) -> u64 {
        self.state.lock().expect("progress lock").skipped_bytes
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.state.lock().expect("progress lock").bytes
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether plain progress lines are printed.
    pub fn lines(&self) -> bool {
        matches!(self.sink, Sink::Lines)
    }
}

/// `3.20 s (625 files/s, 187.5 MiB/s)`; the byte rate only when `bytes` were all moved.
pub fn timing(files: usize, bytes: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let per_sec = files as f64 / secs;
    match bytes {
        Some(b) => format!("{secs:.2} s ({per_sec:.0} files/s, {})", rate(b, elapsed)),
        None => format!("{secs:.2} s ({per_sec:.0} files/s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(status: Option<u16>, server_asked: bool, secs: f64) -> pictograph::RetryNotice {
        pictograph::RetryNotice {
            retry: 1,
            max_retries: 3,
            delay: Duration::from_secs_f64(secs),
            status,
            server_asked,
            request: "GET /api/v1/developer/datasets/".into(),
        }
    }

    #[test]
    fn retry_lines_say_the_cause_and_the_wait() {
        assert_eq!(
            retry_text(&notice(Some(429), true, 30.0)),
            "rate limited by the server (HTTP 429): waiting 30 s as it asks (retry 1 of 3)"
        );
        assert_eq!(
            retry_text(&notice(Some(503), false, 1.04)),
            "the server answered HTTP 503 Service Unavailable: retrying in 1.0 s (retry 1 of 3)"
        );
        assert_eq!(
            retry_text(&notice(None, false, 2.5)),
            "the connection failed or broke off: retrying in 2.5 s (retry 1 of 3)"
        );
    }
}
