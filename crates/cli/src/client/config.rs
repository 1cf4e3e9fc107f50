//! Where the client commands find their server and key, and the file `pictograph login`
//! writes.
//!
//! Precedence, per setting: the `--api-key`/`--base-url` flags, then `PICTOGRAPH_API_KEY`/
//! `PICTOGRAPH_BASE_URL`, then the login file, then (base URL only) the default.

use super::{usage, CliResult, ClientArgs};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Name of the login file inside the configuration directory.
const FILE_NAME: &str = "credentials.toml";

/// What `pictograph login` saves.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// The API key.
    pub api_key: Option<String>,
    /// The server.
    pub base_url: Option<String>,
}

/// The settings in effect.
#[derive(Debug)]
pub struct Resolved {
    /// Key, when any layer gave one.
    pub api_key: Option<String>,
    /// Base URL (the default when no layer gave one).
    pub base_url: String,
}

/// The configuration directory: `PICTOGRAPH_CONFIG_DIR`, else `pictograph` in the user's
/// configuration directory (`$XDG_CONFIG_HOME` or `~/.config` on Linux).
pub fn dir() -> CliResult<PathBuf> {
    if let Some(d) = env("PICTOGRAPH_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    match dirs::config_dir() {
        Some(d) => Ok(d.join("pictograph")),
        None => usage("cannot tell the user's configuration directory: set PICTOGRAPH_CONFIG_DIR"),
    }
}

/// The login file's path.
pub fn file() -> CliResult<PathBuf> {
    Ok(dir()?.join(FILE_NAME))
}

fn env(k: &str) -> Option<String> {
    std::env::var(k)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn non_blank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Reads the login file; a missing file is empty credentials.
pub fn load(path: &Path) -> CliResult<Credentials> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(toml::from_str(&text).with_context(|| {
            format!(
                "reading {} (delete it or run `pictograph login`)",
                path.display()
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("reading {}", path.display()))
            .into()),
    }
}

/// Writes the login file readable by its owner only (mode 0600), replacing it atomically.
pub fn save(path: &Path, creds: &Credentials) -> CliResult<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let text = format!(
        "# Written by `pictograph login`; holds a secret, keep it private.\n{}",
        toml::to_string(creds).context("encoding the credentials")?
    );
    let tmp = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = options.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Resolves the key and base URL for `args`.
pub fn resolve(args: &ClientArgs) -> CliResult<Resolved> {
    for (flag, value) in [("--api-key", &args.api_key), ("--base-url", &args.base_url)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return usage(format!(
                "{flag} is empty: give a value, or leave the flag out to use the environment \
                 or what `pictograph login` saved"
            ));
        }
    }
    let mut api_key = non_blank(&args.api_key).or_else(|| env("PICTOGRAPH_API_KEY"));
    let mut base_url = non_blank(&args.base_url).or_else(|| env("PICTOGRAPH_BASE_URL"));
    if api_key.is_none() || base_url.is_none() {
        let saved = load(&file()?)?;
        api_key = api_key.or_else(|| non_blank(&saved.api_key));
        base_url = base_url.or_else(|| non_blank(&saved.base_url));
    }
    Ok(Resolved {
        api_key,
        base_url: base_url.unwrap_or_else(|| pictograph::DEFAULT_BASE_URL.to_string()),
    })
}
