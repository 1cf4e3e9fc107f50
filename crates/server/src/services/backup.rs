//! Backups of an embedded installation: its SQLite database, the image bytes it refers to and
//! its URL-signing key, copied while servers run into a directory that is itself a data
//! directory (`pictograph serve --data-dir BACKUP` starts from it).
//!
//! The database copy is taken first, in one read transaction, and the bytes it refers to are
//! copied after it, each checked against its SHA-256; bytes are never modified, so what the
//! copy refers to is what gets copied. The copy replaces the directory's database only once
//! every byte it needs is there, so an interrupted run leaves the previous backup whole.
//! Re-running into the same directory copies only the bytes it lacks and then removes the
//! ones the new copy no longer refers to.

use crate::blobs::{sync_dir, write_synced, BlobError, Blobs};
use crate::config::Config;
use crate::repeating::Repeating;
use crate::store::snapshot::{sqlite_path, BlobHold, HeldBytes, Snapshot, HOLD_FOR};
use anyhow::{bail, Context};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The file that marks a directory as a backup, and describes the last run into it.
pub const MANIFEST: &str = "backup.json";
/// The database's name in a data directory.
const DATABASE: &str = "pictograph.db";
/// The new database copy while its bytes are being copied.
const PARTIAL: &str = "pictograph.db.partial";
/// The generated URL-signing key's name in a data directory.
const SIGNING_KEY: &str = "signing.key";
/// Hashes handed from the database copy to the byte copiers at a time.
const PAGE: usize = 1000;
/// Files that may fail to copy before a run gives up (a wrong source fails them all).
const MAX_FAILURES: u64 = 100;

/// How a backup runs.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Also re-hash the bytes the directory already held (and replace any that differ), and
    /// check the database copy's structure.
    pub verify: bool,
    /// Bytes copied at once.
    pub workers: usize,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            verify: false,
            workers: 8,
        }
    }
}

/// What a backup did.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupReport {
    /// The backup directory.
    pub target: String,
    /// When the database copy was taken (RFC 3339).
    pub taken_at: String,
    /// Organisations in the copy.
    pub organizations: u64,
    /// Datasets in the copy.
    pub datasets: u64,
    /// Images in the copy, archived ones included.
    pub images: u64,
    /// Distinct stored files the copy refers to.
    pub blobs: u64,
    /// Bytes copied by this run.
    pub copied: u64,
    /// The size of those.
    pub copied_bytes: u64,
    /// Bytes the directory already held.
    pub present: u64,
    /// Bytes the directory held with the wrong size or content, copied again.
    pub repaired: u64,
    /// Bytes of signed uploads nobody registered that the source no longer has (nothing
    /// needs them).
    pub unavailable: u64,
    /// Bytes of earlier backups that the new copy no longer refers to, removed.
    pub pruned: u64,
    /// Whether the generated URL-signing key was copied (a key set by flag or environment
    /// lives outside the data directory).
    pub signing_key: bool,
    /// Whether held bytes were re-hashed and the database copy checked.
    pub verified: bool,
    /// Wall-clock time of the run.
    pub seconds: f64,
}

/// What the directory's manifest holds.
#[derive(Serialize, Deserialize)]
struct Manifest {
    /// Always "pictograph-backup".
    kind: String,
    /// Whether the last run finished (while one runs, the database is the previous run's).
    complete: bool,
    /// The last finished run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    report: Option<BackupReport>,
}

const KIND: &str = "pictograph-backup";

/// One step of a backup, for progress reports.
#[derive(Debug, Clone, Copy)]
pub enum BackupEvent {
    /// The database copy is taken and refers to about this many stored files.
    Planned {
        /// Distinct stored files.
        blobs: u64,
    },
    /// Bytes were copied.
    Copied {
        /// Their size.
        bytes: u64,
    },
    /// Bytes were there already (or are not needed and gone from the source).
    Kept,
}

/// How one hash was dealt with; copies carry their size.
enum Kept {
    Copied(u64),
    Present,
    Repaired(u64),
    Unavailable,
}

/// Backs up the installation `config` describes into `out`, reporting steps to `progress`.
/// `out` must be new, empty, or a directory an earlier backup wrote.
pub async fn backup(
    config: &Config,
    out: &Path,
    options: &BackupOptions,
    progress: &(dyn Fn(BackupEvent) + Sync),
) -> anyhow::Result<BackupReport> {
    let start = Instant::now();
    let url = config.database_url();
    let Some(database) = sqlite_path(&url) else {
        bail!(
            "backup copies the embedded SQLite database, and this installation's is not one: \
             back up PostgreSQL with pg_dump and the object store with its own versioning or \
             replication"
        );
    };
    if !database.is_file() {
        bail!(
            "no server data in {}: pass the --data-dir (or --database-url) the server uses",
            config.data_dir.display()
        );
    }
    let out = claim_target(config, &database, out)?;
    let from = Blobs::open(&config.data_dir, config.blobs_url.as_deref())
        .await
        .context("opening the source's image bytes")?;
    let to = Blobs::open(&out, None)
        .await
        .context("opening the backup's image bytes")?;
    // Copies an interrupted run left half-written (nothing else writes into a backup).
    to.clear_stale_temp(std::time::Duration::ZERO)
        .await
        .context("clearing an interrupted run's staged files")?;

    // Held before the copy is taken, until every byte it refers to is copied: a purge on a
    // running server meanwhile must not free bytes the copy still needs.
    let _hold = Holding::take(&database).await?;
    let partial = out.join(PARTIAL);
    let taken_at = crate::store::now();
    let (source, dest) = (database.clone(), partial.clone());
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::take(&source, &dest))
        .await?
        .with_context(|| format!("copying the database {}", database.display()))?;
    let (snapshot, counts) = tokio::task::spawn_blocking(move || {
        let counts = snapshot.counts();
        (snapshot, counts)
    })
    .await?;
    let counts = counts.context("reading the database copy")?;
    progress(BackupEvent::Planned {
        blobs: counts.blobs,
    });
    let mut report = BackupReport {
        target: out.display().to_string(),
        taken_at,
        organizations: counts.organizations,
        datasets: counts.datasets,
        images: counts.images,
        verified: options.verify,
        ..BackupReport::default()
    };

    // The copy's hashes come a page at a time from a blocking thread; the bytes are copied
    // here, several at once.
    let (pages, mut incoming) = tokio::sync::mpsc::channel::<Vec<HeldBytes>>(2);
    let walker = tokio::task::spawn_blocking(move || {
        let walked = snapshot.each_held(PAGE, |page| pages.blocking_send(page).is_ok());
        (snapshot, walked)
    });
    let (mut failed, mut first_failure) = (0u64, None);
    while let Some(page) = incoming.recv().await {
        let mut results = futures::stream::iter(page)
            .map(|held| {
                let (from, to) = (&from, &to);
                async move {
                    let kept = keep(from, to, &held, options.verify).await;
                    (held, kept)
                }
            })
            .buffer_unordered(options.workers.max(1));
        while let Some((held, kept)) = results.next().await {
            report.blobs += 1;
            match kept {
                Ok(Kept::Copied(bytes)) => {
                    report.copied += 1;
                    report.copied_bytes += bytes;
                    progress(BackupEvent::Copied { bytes });
                }
                Ok(Kept::Repaired(bytes)) => {
                    report.repaired += 1;
                    report.copied_bytes += bytes;
                    progress(BackupEvent::Copied { bytes });
                }
                Ok(Kept::Present) => {
                    report.present += 1;
                    progress(BackupEvent::Kept);
                }
                Ok(Kept::Unavailable) => {
                    report.unavailable += 1;
                    progress(BackupEvent::Kept);
                }
                Err(e) => {
                    failed += 1;
                    first_failure.get_or_insert_with(|| format!("{}: {e}", held.hash));
                }
            }
        }
        if failed >= MAX_FAILURES {
            break;
        }
    }
    drop(incoming);
    let (mut snapshot, walked) = walker.await?;
    walked.context("reading the database copy")?;
    if let Some(first) = first_failure {
        drop(snapshot);
        let _ = std::fs::remove_file(&partial);
        let of = if failed >= MAX_FAILURES {
            format!("the first {} tried", report.blobs)
        } else {
            report.blobs.to_string()
        };
        bail!(
            "{failed} of {of} stored files could not be copied, so the backup was not \
             replaced (first: {first}); the directory still holds the previous backup, if any"
        );
    }

    if options.verify {
        let (back, checked) = tokio::task::spawn_blocking(move || {
            let checked = snapshot.check();
            (snapshot, checked)
        })
        .await?;
        if let Some(problem) = checked.context("checking the database copy")? {
            drop(back);
            let _ = std::fs::remove_file(&partial);
            bail!("the database copy failed its structure check: {problem}");
        }
        snapshot = back;
    }

    report.signing_key = copy_signing_key(&config.data_dir, &out)?;
    std::fs::rename(&partial, out.join(DATABASE)).context("putting the database copy in place")?;
    sync_dir(&out)?;
    let pruned = tokio::task::spawn_blocking({
        let blobs = out.join("blobs");
        move || prune(&snapshot, &blobs)
    })
    .await?;
    report.pruned = pruned.context("removing bytes the backup no longer refers to")?;
    report.seconds = start.elapsed().as_secs_f64();
    write_manifest(
        &out,
        &Manifest {
            kind: KIND.into(),
            complete: true,
            report: Some(report.clone()),
        },
    )?;
    Ok(report)
}

/// A [`BlobHold`] on the source database, renewed in the background while it lives.
struct Holding {
    hold: std::sync::Arc<std::sync::Mutex<BlobHold>>,
    _renewer: Repeating,
}

impl Holding {
    async fn take(database: &Path) -> anyhow::Result<Holding> {
        let db = database.to_path_buf();
        let hold = tokio::task::spawn_blocking(move || BlobHold::take(&db))
            .await?
            .with_context(|| format!("holding the stored bytes in {}", database.display()))?;
        let hold = std::sync::Arc::new(std::sync::Mutex::new(hold));
        let held = hold.clone();
        let renewer = Repeating::every(HOLD_FOR / 5, move || {
            let hold = held.clone();
            async move {
                let renewed = tokio::task::spawn_blocking(move || match hold.lock() {
                    Ok(mut h) => h.renew(),
                    Err(_) => Ok(()),
                })
                .await;
                if let Ok(Err(e)) = renewed {
                    tracing::warn!(error = %e, "renewing the backup's hold on stored bytes failed");
                }
            }
        });
        Ok(Holding {
            hold,
            _renewer: renewer,
        })
    }
}

impl Drop for Holding {
    /// Ends the hold (a renewal after it does nothing); renewing stops as the guard drops.
    fn drop(&mut self) {
        if let Ok(mut hold) = self.hold.lock() {
            hold.release();
        }
    }
}

/// Makes `out` the backup directory: created when missing, refused when it is (or holds, or
/// lies inside) the installation's own data, when it holds anything but an earlier backup,
/// or when a server seems to have the backup's database open. Returns its canonical path,
/// marked as a backup.
fn claim_target(config: &Config, database: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let target = resolve(out).with_context(|| format!("resolving {}", out.display()))?;
    let mut own = vec![config.data_dir.clone()];
    own.extend(database.parent().map(Path::to_path_buf));
    if let Some(dir) = config
        .blobs_url
        .as_deref()
        .and_then(|u| u.strip_prefix("file://"))
    {
        own.push(PathBuf::from(dir));
    }
    for dir in own.iter().filter_map(|d| d.canonicalize().ok()) {
        if target.starts_with(&dir) || dir.starts_with(&target) {
            bail!(
                "{} overlaps the installation's own data in {}: back up into a directory \
                 outside it",
                target.display(),
                dir.display()
            );
        }
    }
    crate::create_private_dir(&target).with_context(|| format!("creating {}", out.display()))?;
    let manifest = target.join(MANIFEST);
    let previous = match std::fs::read(&manifest) {
        Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) if m.kind == KIND => m.report,
            _ => bail!(
                "{} is not a backup's manifest: choose a new or empty directory",
                manifest.display()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::read_dir(&target)?.next().is_some() {
                bail!(
                    "{} is not empty and holds no earlier backup ({MANIFEST}): choose a new or \
                     empty directory",
                    target.display()
                );
            }
            None
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", manifest.display())),
    };
    for busy in ["pictograph.db-wal", "pictograph.db-shm"] {
        if target.join(busy).exists() {
            bail!(
                "{} holds {busy}: a server seems to have this backup open (stop it, or copy \
                 the backup elsewhere before serving from it)",
                target.display()
            );
        }
    }
    write_manifest(
        &target,
        &Manifest {
            kind: KIND.into(),
            complete: false,
            report: previous,
        },
    )?;
    Ok(target)
}

/// `path` made absolute with its symbolic links resolved, whether or not it exists yet: the
/// deepest part that exists is resolved and the rest appended.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(real) => return Ok(rest.into_iter().rev().fold(real, |p, c| p.join(c))),
            Err(e) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = parent;
                }
                _ => return Err(e),
            },
        }
    }
}

/// Makes sure `to` holds the bytes of `held`, copying them from `from` when missing or, when
/// the ones there are damaged, again. Bytes there are checked by size against a local
/// source's (a stat of each), or with `verify` by their SHA-256.
async fn keep(from: &Blobs, to: &Blobs, held: &HeldBytes, verify: bool) -> Result<Kept, BlobError> {
    let hash = held.hash.as_str();
    let mut repaired = false;
    if to.exists(hash).await {
        let sound = if verify {
            hash_of(to, hash).await? == hash
        } else if from.is_remote() || !from.exists(hash).await {
            true
        } else {
            to.len(hash).await? == from.len(hash).await?
        };
        if sound {
            return Ok(Kept::Present);
        }
        to.delete(hash).await?;
        repaired = true;
    }
    if !held.needed && !from.exists(hash).await {
        return Ok(Kept::Unavailable);
    }
    to.copy_from(from, hash).await?;
    let size = to.len(hash).await?;
    Ok(if repaired {
        Kept::Repaired(size)
    } else {
        Kept::Copied(size)
    })
}

/// SHA-256 of the bytes `blobs` holds under `hash`, lowercase hex.
async fn hash_of(blobs: &Blobs, hash: &str) -> Result<String, BlobError> {
    let mut stream = blobs.stream(hash, None).await?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Copies the generated URL-signing key, if the data directory has one, durably and readable
/// by its owner only. Returns whether there was one.
fn copy_signing_key(data_dir: &Path, out: &Path) -> anyhow::Result<bool> {
    let key = match std::fs::read(data_dir.join(SIGNING_KEY)) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).context("reading the URL-signing key"),
    };
    write_durably(out, SIGNING_KEY, &key, 0o600).context("copying the URL-signing key")?;
    Ok(true)
}

/// Removes the files under `blobs` that hold bytes `snapshot` does not refer to. Returns
/// how many went.
fn prune(snapshot: &Snapshot, blobs: &Path) -> anyhow::Result<u64> {
    let mut pruned = 0;
    let mut dirs = vec![blobs.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let mut removed_here = false;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            let Some(hash) = name.to_str() else { continue };
            if pictograph_core::names::is_blob_hash(hash) && !snapshot.holds(hash)? {
                std::fs::remove_file(entry.path())?;
                pruned += 1;
                removed_here = true;
            }
        }
        if removed_here {
            sync_dir(&dir)?;
        }
    }
    Ok(pruned)
}

/// Writes the manifest durably.
fn write_manifest(out: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(manifest)?;
    bytes.push(b'\n');
    write_durably(out, MANIFEST, &bytes, 0o644)
        .with_context(|| format!("writing {}", out.join(MANIFEST).display()))
}

/// Writes `bytes` as `dir/name` with permissions `mode`: a temporary file, synced, renamed
/// over any old one, and the directory synced.
fn write_durably(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    write_synced(&tmp, bytes, mode)?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}
