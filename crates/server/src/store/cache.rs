//! Recently read keys and images, kept in memory by servers on PostgreSQL.
//!
//! Nearly every request looks up its caller's key by hash and many look up one image by id;
//! on PostgreSQL each lookup is a round trip and a backend's work. This cache answers repeats
//! of those two lookups from memory, and fetches of image bytes by signed URL (which need
//! only where the bytes are and how to present them, [`ImageFile`]), and stays coherent
//! across every server on the database:
//!
//! * Triggers (migrations `postgres/0007` and `0011`) send a notice on [`CHANNEL`] whenever a
//!   statement updates or deletes images or moves a dataset out of its organisation
//!   (`images`), or updates or deletes keys or organisations (`keys`). A task of each
//!   server listens and drops the whole affected part of its cache. Inserts send nothing:
//!   a lookup that found nothing is never kept.
//! * Each server also drops a part after each of its own writes to it, before the write
//!   returns ([`ReadCache::forget`]), so a caller reads its own writes through the same
//!   server without waiting for the notice.
//! * A value read before a drop can never be kept after it: every drop moves a floor up a
//!   shared clock, and a value read at a tick below its part's floor is refused
//!   ([`Ticket`]).
//! * While the listening connection is down the cache neither answers nor keeps anything,
//!   and it starts empty again once the connection is back.
//! * Every value also expires after a time to live, a bound on staleness should a connection
//!   die without the server noticing.
//!
//! Memory is bounded: each part holds a fixed number of entries in shards, and a full shard
//! drops an arbitrary entry to make room.

use super::{ImageFile, ImageRow, KeyRow};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The channel the change triggers notify.
pub const CHANNEL: &str = "pictograph_changes";

/// Images kept at most (about 500 bytes each, packed, with the map's overhead).
const IMAGES: usize = 40_000;
/// Image files kept at most (two pages of the download listing; about 250 bytes each).
const FILES: usize = 20_000;
/// Keys kept at most.
const KEYS: usize = 4_096;
const SHARDS: usize = 16;
/// Wait between attempts to connect the listener.
const RECONNECT: Duration = Duration::from_secs(1);

/// The part of the cache a notice names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Images by id, and their files.
    Images,
    /// Keys by hash (with their organisation).
    Keys,
}

impl Part {
    fn parse(payload: &str) -> Option<Part> {
        match payload {
            "images" => Some(Part::Images),
            "keys" => Some(Part::Keys),
            _ => None,
        }
    }
}

/// The clock reading taken before a database read; the value read may be kept only while
/// nothing was dropped since.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

/// The in-memory cache of one server process.
#[derive(Debug)]
pub struct ReadCache {
    ttl: Duration,
    clock: AtomicU64,
    live: AtomicBool,
    images: Shards<PackedImage>,
    files: Shards<ImageFile>,
    keys: Shards<KeyRow>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ReadCache {
    /// A cache whose values live at most `ttl`, answering nothing until [`ReadCache::listen`]
    /// has connected (or [`ReadCache::set_live`] says so).
    pub fn new(ttl: Duration) -> ReadCache {
        ReadCache {
            ttl,
            clock: AtomicU64::new(1),
            live: AtomicBool::new(false),
            images: Shards::new(IMAGES),
            files: Shards::new(FILES),
            keys: Shards::new(KEYS),
            listener: Mutex::new(None),
        }
    }

    /// Starts the task that listens for change notices on the database at `url`; it stops
    /// when the cache is dropped.
    pub fn listen(self: &Arc<Self>, url: &str) {
        let task = tokio::spawn(listen(Arc::downgrade(self), url.to_string()));
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Whether the cache may answer and keep values (its change notices are arriving).
    pub fn set_live(&self, live: bool) {
        self.live.store(live, SeqCst);
        self.forget_all();
    }

    /// A ticket for a database read about to start, or `None` when nothing may be kept.
    pub fn ticket(&self) -> Option<Ticket> {
        self.live
            .load(SeqCst)
            .then(|| Ticket(self.clock.load(SeqCst)))
    }

    /// Drops every value of `part`, including those of reads still under way.
    pub fn forget(&self, part: Part) {
        let tick = self.clock.fetch_add(1, SeqCst) + 1;
        match part {
            Part::Images => {
                self.images.drop_before(tick);
                self.files.drop_before(tick);
            }
            Part::Keys => self.keys.drop_before(tick),
        }
    }

    /// Drops everything.
    pub fn forget_all(&self) {
        self.forget(Part::Images);
        self.forget(Part::Keys);
    }

    /// The image `id` when it is kept and belongs to `org_id`.
    pub fn image(&self, org_id: &str, id: &str) -> Option<ImageRow> {
        self.answer_with(&self.images, id, |packed| {
            (packed.text(Text::Org) == org_id).then(|| packed.unpack())
        })
        .flatten()
    }

    /// The file of the image `id`, when it is kept.
    pub fn file(&self, id: &str) -> Option<ImageFile> {
        self.answer(&self.files, id)
    }

    /// Keeps the file of the image `id`, read under `ticket`.
    pub fn keep_file(&self, ticket: Ticket, id: &str, file: ImageFile) {
        self.files.put(ticket, id, file, self.ttl);
    }

    /// Keeps an image of `org_id` read under `ticket`.
    pub fn keep_image(&self, ticket: Ticket, org_id: &str, row: &ImageRow) {
        if let Some(packed) = PackedImage::pack(org_id, row) {
            self.images.put(ticket, &row.id, packed, self.ttl);
        }
    }

    /// The key whose hash is `key_hash`, when it is kept.
    pub fn key(&self, key_hash: &str) -> Option<KeyRow> {
        self.answer(&self.keys, key_hash)
    }

    /// The value `part` keeps for `key`, while the cache may answer.
    fn answer<V: Clone>(&self, part: &Shards<V>, key: &str) -> Option<V> {
        self.answer_with(part, key, V::clone)
    }

    /// What `f` makes of the value `part` keeps for `key`, while the cache may answer.
    fn answer_with<V: Clone, R>(
        &self,
        part: &Shards<V>,
        key: &str,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R> {
        if !self.live.load(SeqCst) {
            return None;
        }
        part.get_with(key, f)
    }

    /// Keeps a key read under `ticket`.
    pub fn keep_key(&self, ticket: Ticket, key_hash: &str, row: &KeyRow) {
        self.keys.put(ticket, key_hash, row.clone(), self.ttl);
    }
}

impl Drop for ReadCache {
    fn drop(&mut self) {
        if let Some(task) = self.listener.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

/// Listens for change notices for as long as `cache` lives, reconnecting when the connection
/// is lost; the cache is live only while connected.
async fn listen(cache: Weak<ReadCache>, url: String) {
    use sqlx::postgres::PgListener;
    loop {
        let connected = async {
            let mut listener = PgListener::connect(&url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "read cache: cannot listen for changes; retrying");
                tokio::time::sleep(RECONNECT).await;
                continue;
            }
        };
        match cache.upgrade() {
            Some(c) => c.set_live(true),
            None => return,
        }
        loop {
            let notice = listener.try_recv().await;
            let Some(c) = cache.upgrade() else { return };
            match notice {
                Ok(Some(n)) => match Part::parse(n.payload()) {
                    Some(part) => c.forget(part),
                    None => c.forget_all(),
                },
                Ok(None) | Err(_) => {
                    c.set_live(false);
                    tracing::warn!("read cache: lost the change notices; reconnecting");
                    break;
                }
            }
        }
    }
}

/// One part of the cache: a map split into shards, each under its own lock.
#[derive(Debug)]
struct Shards<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    per_shard: usize,
}

#[derive(Debug)]
struct Shard<V> {
    /// Values read at a tick below this are refused.
    floor: u64,
    map: HashMap<String, Entry<V>>,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires: Instant,
}

impl<V: Clone> Shards<V> {
    fn new(capacity: usize) -> Shards<V> {
        Shards {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        floor: 0,
                        map: HashMap::new(),
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard<V>> {
        use std::hash::{BuildHasher, RandomState};
        static HASHER: std::sync::LazyLock<RandomState> =
            std::sync::LazyLock::new(RandomState::new);
        let i = HASHER.hash_one(key) as usize % self.shards.len();
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `f` makes of the value kept for `key`, if one is.
    fn get_with<R>(&self, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let mut shard = self.shard(key);
        match shard.map.get(key) {
            Some(e) if e.expires > Instant::now() => Some(f(&e.value)),
            Some(_) => {
                shard.map.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, ticket: Ticket, key: &str, value: V, ttl: Duration) {
        let mut shard = self.shard(key);
        if ticket.0 < shard.floor {
            return;
        }
        if shard.map.len() >= self.per_shard && !shard.map.contains_key(key) {
            if let Some(victim) = shard.map.keys().next().cloned() {
                shard.map.remove(&victim);
            }
        }
        let expires = Instant::now() + ttl;
        shard.map.insert(key.to_string(), Entry { value, expires });
    }

    /// Empties every shard and refuses values read before `tick`.
    fn drop_before(&self, tick: u64) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.floor = shard.floor.max(tick);
            shard.map.clear();
        }
    }
}

/// The text fields of a packed image, in the order they are kept.
#[derive(Debug, Clone, Copy)]
enum Text {
    Org,
    Id,
    Dataset,
    Folder,
    Filename,
    DisplayName,
    Status,
    BlobHash,
    MimeType,
    CreatedAt,
    UpdatedAt,
}

const TEXTS: usize = Text::UpdatedAt as usize + 1;

/// An image row with its organisation in one allocation: the text fields end to end, where
/// each ends, and the numbers. Unpacked on every answer, it takes about half the memory of
/// the row's dozen strings.
#[derive(Debug, Clone)]
struct PackedImage {
    text: Box<str>,
    ends: [u16; TEXTS],
    file_size: i64,
    annotation_count: i64,
    version: i64,
    width: Option<i64>,
    height: Option<i64>,
    has_display_name: bool,
    is_archived: bool,
}

impl PackedImage {
    /// `row` of `org_id` packed; `None` when its text is too long to pack (it is then not kept).
    fn pack(org_id: &str, row: &ImageRow) -> Option<PackedImage> {
        let texts: [&str; TEXTS] = [
            org_id,
            &row.id,
            &row.dataset_id,
            &row.folder,
            &row.filename,
            row.display_name.as_deref().unwrap_or(""),
            &row.status,
            &row.blob_hash,
            &row.mime_type,
            &row.created_at,
            &row.updated_at,
        ];
        let mut text = String::with_capacity(texts.iter().map(|t| t.len()).sum());
        let mut ends = [0u16; TEXTS];
        for (end, t) in ends.iter_mut().zip(texts) {
            text.push_str(t);
            *end = u16::try_from(text.len()).ok()?;
        }
        Some(PackedImage {
            text: text.into_boxed_str(),
            ends,
            file_size: row.file_size,
            annotation_count: row.annotation_count,
            version: row.version,
            width: row.width,
            height: row.height,
            has_display_name: row.display_name.is_some(),
            is_archived: row.is_archived,
        })
    }

    fn text(&self, which: Text) -> &str {
        let i = which as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[usize::from(start)..usize::from(self.ends[i])]
    }

    /// The row as it was packed.
    fn unpack(&self) -> ImageRow {
        let owned = |which| self.text(which).to_string();
        ImageRow {
            id: owned(Text::Id),
            dataset_id: owned(Text::Dataset),
            folder: owned(Text::Folder),
            filename: owned(Text::Filename),
            display_name: self.has_display_name.then(|| owned(Text::DisplayName)),
            status: owned(Text::Status),
            is_archived: self.is_archived,
            blob_hash: owned(Text::BlobHash),
            file_size: self.file_size,
            mime_type: owned(Text::MimeType),
            width: self.width,
            height: self.height,
            annotation_count: self.annotation_count,
            version: self.version,
            created_at: owned(Text::CreatedAt),
            updated_at: owned(Text::UpdatedAt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> KeyRow {
        KeyRow {
            id: id.into(),
            org_id: "org".into(),
            org_name: "org".into(),
            prefix: "pk_".into(),
            role: "owner".into(),
            tier: "free".into(),
            created_at: String::new(),
            revoked_at: None,
        }
    }

    fn live(ttl: Duration) -> ReadCache {
        let cache = ReadCache::new(ttl);
        cache.set_live(true);
        cache
    }

    #[test]
    fn a_value_read_before_a_drop_is_never_kept() {
        let cache = live(Duration::from_secs(60));
        let before = cache.ticket().unwrap();
        cache.forget(Part::Keys);
        cache.keep_key(before, "h", &key("a"));
        assert!(
            cache.key("h").is_none(),
            "read before the drop, kept after it"
        );

        let after = cache.ticket().unwrap();
        cache.keep_key(after, "h", &key("a"));
        assert_eq!(cache.key("h").map(|k| k.id), Some("a".into()));

        // A drop of the other part leaves keys alone; a drop of keys empties them.
        cache.forget(Part::Images);
        assert!(cache.key("h").is_some());
        cache.forget(Part::Keys);
        assert!(cache.key("h").is_none());
    }

    #[test]
    fn nothing_is_answered_or_kept_while_notices_are_not_arriving() {
        let cache = live(Duration::from_secs(60));
        let t = cache.ticket().unwrap();
        cache.keep_key(t, "h", &key("a"));
        cache.set_live(false);
        assert!(cache.ticket().is_none());
        assert!(cache.key("h").is_none());
        // Back live, it starts empty: the notices missed meanwhile may have named anything.
        cache.set_live(true);
        assert!(cache.key("h").is_none());
    }

    fn image(id: &str, display_name: Option<&str>) -> ImageRow {
        ImageRow {
            id: id.into(),
            dataset_id: "d".into(),
            folder: "/a/b".into(),
            filename: "cat.jpg".into(),
            display_name: display_name.map(str::to_string),
            status: "review".into(),
            is_archived: true,
            blob_hash: "ab".repeat(32),
            file_size: 1234,
            mime_type: "image/jpeg".into(),
            width: Some(640),
            height: None,
            annotation_count: 3,
            version: 7,
            created_at: "2026-01-02T03:04:05.123456Z".into(),
            updated_at: "2026-01-02T03:04:06.123456Z".into(),
        }
    }

    #[test]
    fn an_image_is_answered_as_kept_and_only_to_its_organisation() {
        let cache = live(Duration::from_secs(60));
        let t = cache.ticket().unwrap();
        for (id, name) in [("a", None), ("b", Some("")), ("c", Some("Cat ü"))] {
            let row = image(id, name);
            cache.keep_image(t, "org-1", &row);
            assert_eq!(cache.image("org-1", id), Some(row));
            assert_eq!(
                cache.image("org-2", id),
                None,
                "another organisation's image"
            );
        }
        // A row whose text cannot be packed is not kept (and nothing else is disturbed).
        let mut long = image("d", None);
        long.filename = "x".repeat(70_000);
        cache.keep_image(t, "org-1", &long);
        assert_eq!(cache.image("org-1", "d"), None);
        assert_eq!(cache.image("org-1", "a"), Some(image("a", None)));
    }

    #[test]
    fn values_expire_and_memory_is_bounded() {
        let cache = live(Duration::from_millis(30));
        let t = cache.ticket().unwrap();
        cache.keep_key(t, "h", &key("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.key("h").is_none(), "expired value answered");

        let cache = live(Duration::from_secs(60));
        let t = cache.ticket().unwrap();
        for i in 0..KEYS * 3 {
            cache.keep_key(t, &format!("h{i}"), &key("a"));
        }
        let kept: usize = cache
            .keys
            .shards
            .iter()
            .map(|s| s.lock().unwrap().map.len())
            .sum();
        assert!(kept <= KEYS.div_ceil(SHARDS) * SHARDS, "{kept} keys kept");
        assert!(cache.key(&format!("h{}", KEYS * 3 - 1)).is_some());
    }
}
