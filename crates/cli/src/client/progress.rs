//! Transfer progress on standard error: an indicatif bar (files, bytes, rate, ETA) on a
//! terminal, a plain line every 10 % (or 5 s) otherwise, nothing with `--json` off a terminal.

use super::human_bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Sink {
    Bar(ProgressBar),
    Lines,
    Off,
}

struct State {
    files: u64,
    total_files: u64,
    bytes: u64,
    total_bytes: Option<u64>,
    skipped: u64,
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
        self.advance(bytes, 0, false);
    }

    /// One more file done whose `size` bytes were not sent: `skipped` when it was already
    /// there, else it failed. Its bytes leave the total, so the byte rate and the amount count
    /// only what is moved.
    pub fn file_not_sent(&self, size: u64, skipped: bool) {
        self.advance(0, size, skipped);
    }

    fn advance(&self, sent: u64, unsent: u64, skipped: bool) {
        let mut s = self.state.lock().expect("progress lock");
        s.files += 1;
        s.bytes += sent;
        s.skipped += u64::from(skipped);
        if let Some(t) = &mut s.total_bytes {
            *t = t.saturating_sub(unsent);
        }
        let elapsed = self.start.elapsed();
        let amount = match s.total_bytes {
            _ if !self.shows_bytes => String::new(),
            Some(t) => format!("{}/{}", human_bytes(s.bytes), human_bytes(t)),
            None => human_bytes(s.bytes),
        };
        let moved = if self.shows_bytes {
            format!(", {amount}, {}", rate(s.bytes, elapsed))
        } else {
            String::new()
        };
        let skipped = match s.skipped {
            0 => String::new(),
            n => format!(", {n} skipped"),
        };
        match &self.sink {
            Sink::Bar(b) => {
                let message = if self.shows_bytes {
                    format!("{amount}  {}{skipped}", rate(s.bytes, elapsed))
                } else {
                    skipped.trim_start_matches(", ").to_string()
                };
                b.set_message(message);
                b.set_position(s.files);
            }
            Sink::Lines => {
                let total = s.total_files.max(1);
                let step_reached = s.files * 10 >= s.next_step * total;
                let done = s.files >= s.total_files;
                if (step_reached || s.last_line.elapsed() >= Duration::from_secs(5)) && !done {
                    while s.files * 10 >= s.next_step * total {
                        s.next_step += 1;
                    }
                    s.last_line = Instant::now();
                    let left = s.total_files.saturating_sub(s.files) as f64;
                    let eta = elapsed.as_secs_f64() / s.files as f64 * left;
                    eprintln!(
                        "{}: {}/{} files{skipped}{moved}, ETA {eta:.0} s",
                        self.verb, s.files, s.total_files
                    );
                }
            }
            Sink::Off => {}
        }
    }

    /// Removes the bar (the caller prints the summary).
    pub fn finish(&self) {
        if let Sink::Bar(b) = &self.sink {
            b.finish_and_clear();
        }
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
