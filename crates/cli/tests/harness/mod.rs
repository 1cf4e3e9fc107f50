//! A real server started in-process and the `pictograph` binary run against it: what the
//! client-command test files share. Each file uses part of it.
#![allow(dead_code)]

use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A server on 127.0.0.1 with an owner key of organisation `org`.
pub struct Server {
    pub app: App,
    pub url: String,
    pub key: String,
    /// Data directory of the server, and scratch space of the test.
    pub dir: tempfile::TempDir,
}

/// Starts a server on a new data directory, its configuration changed by `tweak`.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut config);
    let app = App::start(config).await.unwrap();
    let key = create_key(&app.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    Server {
        url: format!("http://{}", app.addr),
        app,
        key,
        dir,
    }
}

/// Starts a server with the default configuration.
pub async fn start() -> Server {
    start_with(|_| {}).await
}

/// What one run of the binary did.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts the run succeeded.
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// The `error: …` line of a failed run.
    pub fn error_line(&self) -> &str {
        assert_ne!(self.code, 0, "expected a failure; stdout: {}", self.stdout);
        self.stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line in: {}", self.stderr))
    }
}

/// The binary with no `PICTOGRAPH_*` variable of the caller and an empty config directory.
pub fn bare(config_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pictograph"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PICTOGRAPH_") {
            c.env_remove(k);
        }
    }
    c.env("PICTOGRAPH_CONFIG_DIR", config_dir);
    c
}

/// Runs `c` with `args`, feeding `stdin` (from a thread, so a large input cannot block on a
/// full pipe while the binary writes its output).
pub fn exec(mut c: Command, args: &[&str], stdin: Option<&str>) -> Out {
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run pictograph");
    let input = child.stdin.take().unwrap();
    let feeder = stdin.map(str::to_string).map(|s| {
        std::thread::spawn(move || {
            let mut input = input;
            let _ = input.write_all(s.as_bytes());
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Server {
    /// The binary pointed at this server with `key`.
    pub fn cmd_with(&self, key: &str) -> Command {
        let mut c = bare(&self.dir.path().join("no-config"));
        c.env("PICTOGRAPH_BASE_URL", &self.url)
            .env("PICTOGRAPH_API_KEY", key);
        c
    }

    /// The binary pointed at this server with its owner key.
    pub fn cmd(&self) -> Command {
        self.cmd_with(&self.key)
    }

    /// Runs `args` against this server.
    pub fn run(&self, args: &[&str]) -> Out {
        exec(self.cmd(), args, None)
    }

    /// Runs `args` against this server with `stdin`.
    pub fn run_in(&self, args: &[&str], stdin: &str) -> Out {
        exec(self.cmd(), args, Some(stdin))
    }

    /// Runs `args` against this server with more environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.cmd();
        c.envs(env.iter().copied());
        exec(c, args, None)
    }

    /// A path in the test's scratch space.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// An SDK client of this server with its owner key.
    pub fn client(&self) -> pictograph::Client {
        pictograph::Client::builder(self.key.clone())
            .base_url(self.url.clone())
            .build()
            .unwrap()
    }
}
