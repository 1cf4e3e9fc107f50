//! The configuration-file layer: a TOML file whose settings sit between the built-in defaults
//! and the `PICTOGRAPH_*` environment and flags.

use crate::backup::BackupArgs;
use crate::gc::GcArgs;
use crate::{DataArgs, ServeArgs};
use anyhow::Context;
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings a file may hold; the names are the flags' names with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    blobs_url: Option<String>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    signing_secret: Option<String>,
    rate_limit_free: Option<u32>,
    rate_limit_core: Option<u32>,
    rate_limit_pro: Option<u32>,
    rate_limit_enterprise: Option<u32>,
    max_upload_bytes: Option<u64>,
    upload_memory_bytes: Option<u64>,
    decode_memory_bytes: Option<u64>,
    json_memory_bytes: Option<u64>,
    upload_stall_secs: Option<u64>,
    max_image_pixels: Option<u64>,
    blob_grace_secs: Option<u64>,
    url_ttl_secs: Option<u64>,
    read_cache_ttl_ms: Option<u64>,
    metrics_listen: Option<SocketAddr>,
}

fn load(path: &std::path::Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// Whether neither a flag nor the environment gave the argument `id`.
fn unset(matches: &ArgMatches, id: &str) -> bool {
    !matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Sets each listed argument from the file's setting of the same name, unless a flag or the
/// environment gave it.
macro_rules! layer {
    ($file:ident, $matches:ident; $($field:ident => $target:expr),* $(,)?) => {
        $(if let Some(v) = $file.$field.take() {
            if unset($matches, stringify!($field)) {
                $target = v.into();
            }
        })*
    };
}

/// Loads the file at `path` and fills the store settings (`data_dir`, `database_url`,
/// `blobs_url`) that neither a flag nor the environment gave; returns the rest of the file.
fn stores(path: &Path, data: &mut DataArgs, matches: &ArgMatches) -> anyhow::Result<FileConfig> {
    let mut file = load(path)?;
    layer! { file, matches;
        data_dir => data.data_dir,
        database_url => data.database_url,
        blobs_url => data.blobs_url,
    }
    Ok(file)
}

/// Fills every setting that neither a flag nor the environment gave from the file named by
/// `--config`, if any.
pub fn apply(args: &mut ServeArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let Some(path) = args.config.clone() else {
        return Ok(());
    };
    let mut file = stores(&path, &mut args.data, matches)?;
    layer! { file, matches;
        listen => args.listen,
        public_url => args.public_url,
        signing_secret => args.signing_secret,
        rate_limit_free => args.rate_limit_free,
        rate_limit_core => args.rate_limit_core,
        rate_limit_pro => args.rate_limit_pro,
        rate_limit_enterprise => args.rate_limit_enterprise,
        max_upload_bytes => args.max_upload_bytes,
        upload_memory_bytes => args.upload_memory_bytes,
        decode_memory_bytes => args.decode_memory_bytes,
        json_memory_bytes => args.json_memory_bytes,
        upload_stall_secs => args.upload_stall_secs,
        max_image_pixels => args.max_image_pixels,
        blob_grace_secs => args.blob_grace_secs,
        url_ttl_secs => args.url_ttl_secs,
        read_cache_ttl_ms => args.read_cache_ttl_ms,
        metrics_listen => args.metrics_listen,
    }
    Ok(())
}

/// [`apply`] for `backup`: the stores, from the servers' file.
pub fn apply_backup(args: &mut BackupArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    if let Some(path) = args.config.clone() {
        stores(&path, &mut args.data, matches)?;
    }
    Ok(())
}

/// [`apply`] for `gc`: the stores and the sweep's settings, from the servers' file.
pub fn apply_gc(args: &mut GcArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let Some(path) = args.config.clone() else {
        return Ok(());
    };
    let mut file = stores(&path, &mut args.data, matches)?;
    layer! { file, matches;
        blob_grace_secs => args.blob_grace_secs,
        url_ttl_secs => args.url_ttl_secs,
    }
    Ok(())
}
