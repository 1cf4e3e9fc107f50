//! Images, their annotations, and the set-based batch operations over them.

use super::{
    blob_hash, dataset_seq, get, json_list, micros_of, now_micros, time_of, Col, Dialect,
    FromCells, Store, StoreError, StoreResult, LIVE_NAME_KEY,
};
use futures::TryStreamExt;
use pictograph_core::names::Status;
use sqlx::AssertSqlSafe;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

/// An image row (annotations are loaded separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// Id (UUID).
    pub id: String,
    /// Owning dataset.
    pub dataset_id: String,
    /// Virtual folder, `/` or `/a/b`.
    pub folder: String,
    /// File name within the folder.
    pub filename: String,
    /// Display override.
    pub display_name: Option<String>,
    /// new, annotate, review or complete.
    pub status: String,
    /// Soft-deleted.
    pub is_archived: bool,
    /// SHA-256 of the stored bytes.
    pub blob_hash: String,
    /// Size of the stored bytes.
    pub file_size: i64,
    /// MIME type of the stored bytes.
    pub mime_type: String,
    /// Pixel width.
    pub width: Option<i64>,
    /// Pixel height.
    pub height: Option<i64>,
    /// Number of annotations.
    pub annotation_count: i64,
    /// Goes up on every change.
    pub version: i64,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// What serving an image's bytes needs of it: where they are and how to present them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// SHA-256 of the stored bytes.
    pub blob_hash: String,
    /// MIME type of the stored bytes.
    pub mime_type: String,
    /// File name within its folder.
    pub filename: String,
}

impl ImageFile {
    /// The file of `row`.
    pub fn of(row: &ImageRow) -> ImageFile {
        ImageFile {
            blob_hash: row.blob_hash.clone(),
            mime_type: row.mime_type.clone(),
            filename: row.filename.clone(),
        }
    }
}

impl FromCells for ImageRow {
    fn from_row<R: super::inline::Cells>(r: &R) -> StoreResult<ImageRow> {
        Ok(ImageRow {
            id: get(r, "id")?,
            dataset_id: get(r, "dataset_id")?,
            folder: get(r, "folder")?,
            filename: get(r, "filename")?,
            display_name: get(r, "display_name")?,
            status: get(r, "status")?,
            is_archived: get::<i64>(r, "is_archived")? != 0,
            blob_hash: blob_hash(r)?,
            file_size: get(r, "file_size")?,
            mime_type: get(r, "mime_type")?,
            width: get(r, "width")?,
            height: get(r, "height")?,
            annotation_count: get(r, "annotation_count")?,
            version: get(r, "version")?,
            created_at: time_of(get(r, "created_at")?),
            updated_at: time_of(get(r, "updated_at")?),
        })
    }
}

/// A new image to insert.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Owning dataset.
    pub dataset_id: String,
    /// Normalised folder.
    pub folder: String,
    /// Checked file name.
    pub filename: String,
    /// Stored bytes.
    pub blob_hash: String,
    /// Size of the bytes.
    pub file_size: i64,
    /// MIME type of the bytes.
    pub mime_type: String,
    /// Pixel width.
    pub width: Option<i64>,
    /// Pixel height.
    pub height: Option<i64>,
}

/// The outcome of replacing an image's annotations.
#[derive(Debug, Clone)]
pub struct SavedAnnotations {
    /// Annotations before.
    pub previous_count: i64,
    /// Annotations now.
    pub new_count: i64,
    /// The image's status (unchanged by a save).
    pub status: String,
    /// The image's version after the save.
    pub version: i64,
}

/// Filters of an image listing.
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this folder (exactly, or with its sub-folders when `recursive`).
    pub folder: Option<String>,
    /// Include sub-folders of `folder`.
    pub recursive: bool,
    /// Include archived images.
    pub include_archived: bool,
    /// Only this exact file name (in any folder unless `folder` is set).
    pub filename: Option<String>,
}

/// How a listing writes the columns an index may answer for: the folder column and the clause
/// that keeps live images only ([`ImageFilter::condition`]), and the listing order's columns.
#[derive(Debug, Clone)]
pub(super) struct Spelling {
    /// The folder column (see [`Dialect::unindexed`]).
    pub folder: String,
    /// The condition that an image is live (see [`Dialect::live_by_name`]).
    pub live: &'static str,
    /// `created_at` and `id`, as the listing's ORDER BY names them.
    pub order: [String; 2],
    /// Every folder of the dataset (a JSON array), for a listing by file name in any folder:
    /// named in the condition, they let the name index answer it a folder at a time, where
    /// the file name alone, second in that index, cannot (see [`Store::name_folders`]).
    pub folders: Option<NameFolders>,
}

/// Every folder of a dataset as a JSON array, in the dialect of the statement it is bound to
/// ([`Spelling::folders`]).
pub(super) type NameFolders = (Dialect, String);

impl Default for Spelling {
    fn default() -> Self {
        Spelling {
            folder: "folder".into(),
            live: "is_archived = 0",
            order: ["created_at".into(), "id".into()],
            folders: None,
        }
    }
}

impl Spelling {
    /// The listing order, or its reverse.
    pub(super) fn order_by(&self, descending: bool) -> String {
        let [at, id] = &self.order;
        let dir = if descending { " DESC" } else { "" };
        format!("{at}{dir}, {id}{dir}")
    }
}

impl ImageFilter {
    /// The folder the filter narrows a listing to: none when it spans the whole dataset (no
    /// folder, or the root with its sub-folders).
    pub fn narrowing_folder(&self) -> Option<&str> {
        match self.folder.as_deref() {
            Some("/") if self.recursive => None,
            other => other,
        }
    }

    /// The SQL condition selecting the filter's images of a dataset, and with `after` (a
    /// `(created_at, id)` of an [`ImageRow`]) only those after it in listing order, and its
    /// parameters (`$1` is the dataset's id). `spelling` says how it writes the clauses an
    /// index may answer.
    pub(super) fn condition<'a>(
        &'a self,
        dataset_id: &'a str,
        after: Option<(&'a str, &'a str)>,
        spelling: &'a Spelling,
    ) -> (String, Vec<Cow<'a, str>>) {
        let mut clauses = vec![format!("dataset_seq = {}", dataset_seq(1))];
        let mut binds: Vec<Cow<'a, str>> = vec![dataset_id.into()];
        if !self.include_archived {
            clauses.push(spelling.live.into());
        }
        if let Some(status) = self.status.as_deref() {
            binds.push(status.into());
            clauses.push(format!("status = ${}", binds.len()));
        }
        if let Some(folder) = self.narrowing_folder() {
            binds.push(folder.into());
            let n = binds.len();
            let f = &spelling.folder;
            clauses.push(if self.recursive {
                // The folder and its sub-folders are the names from `{folder}` up to
                // `{folder}0` ('0' is the byte after '/') but for those between the folder and
                // `{folder}/` (`{folder}-x`, `{folder}.x`): one range of the name index, since
                // text compares by bytes on both backends. Not written with OR, which SQLite
                // answers as two lookups that read every row they find.
                format!(
                    "{f} >= ${n} AND {f} < (${n} || '0') \
                     AND NOT ({f} > ${n} AND {f} < (${n} || '/'))"
                )
            } else {
                format!("{f} = ${n}")
            });
        }
        if let Some(filename) = self.filename.as_deref() {
            if let (None, Some((dialect, folders))) = (self.narrowing_folder(), &spelling.folders) {
                binds.push(folders.as_str().into());
                clauses.push(dialect.id_in("folder", binds.len() as u32));
            }
            binds.push(filename.into());
            clauses.push(format!("filename = ${}", binds.len()));
        }
        if let Some((created_at, id)) = after {
            // Times are kept as microseconds; the anchor's is the text of an image read before.
            binds.push(micros_of(created_at).unwrap_or_default().to_string().into());
            binds.push(id.into());
            let (a, b) = (binds.len() - 1, binds.len());
            // A row comparison, not `created_at > $a OR (created_at = $a AND id > $b)`: with
            // the OR, PostgreSQL starts at the dataset's first entry of the index and filters
            // its way to the anchor, so a page a million images in took 600 ms instead of 5.
            // Written with the order's columns: where the listing index is to be out of reach,
            // the range must not lead SQLite to it either (a page by key of a folder of a
            // thousandth of a million images read 350 ms of the listing index instead of its
            // 1,000 names, 2 ms).
            let [at, key] = &spelling.order;
            clauses.push(format!("({at}, {key}) > (CAST(${a} AS BIGINT), ${b})"));
        }
        (clauses.join(" AND "), binds)
    }
}

/// What to do when a copy's name is taken in the target folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// Append -2, -3, … to the stem.
    Rename,
    /// Leave the existing image; report the source as failed.
    Skip,
    /// Delete the existing image first.
    Overwrite,
}

/// Fields a batch update sets; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ImageUpdate {
    /// New status.
    pub status: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
    /// Archive (true) or restore (false).
    pub is_archived: Option<bool>,
}

/// The result of one batch operation.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Ids the operation completed for.
    pub succeeded: Vec<String>,
    /// (id, reason) for every id it did not.
    pub failed: Vec<(String, String)>,
    /// Folders touched, source and target.
    pub affected_folders: BTreeSet<String>,
    /// Copies that were renamed.
    pub renamed: i64,
    /// Blob hashes no longer referenced by the rows this operation deleted.
    pub released_blobs: Vec<String>,
}

impl BatchOutcome {
    /// Records an id the dataset has no image for.
    fn not_found(&mut self, id: &str) {
        self.failed.push((id.to_string(), NOT_FOUND_REASON.into()));
    }

    /// Records a folder the operation touched (allocating only for a new one: a batch
    /// touches the same few folders for thousands of ids).
    fn touched(&mut self, folder: &str) {
        if !self.affected_folders.contains(folder) {
            self.affected_folders.insert(folder.to_string());
        }
    }

    /// Records an id the operation completed for, whose image is in `folder`.
    fn succeeded_in(&mut self, id: &str, folder: &str) {
        self.touched(folder);
        self.succeeded.push(id.to_string());
    }
}

/// What a batch reads of each image it was given.
#[derive(Debug)]
struct Found {
    id: String,
    folder: String,
    filename: String,
    is_archived: bool,
}

/// An image a batch deleted.
#[derive(Debug)]
struct Deleted {
    id: String,
    folder: String,
    /// The content hash (hex) of its bytes.
    hash: String,
}

/// The failure reason for an id that is not an image of the dataset.
pub const NOT_FOUND_REASON: &str = "Image not found in dataset";

/// The columns of an image an [`ImageRow`] reads besides its id and its dataset's id.
const STORED_COLUMNS: [&str; 14] = [
    "folder",
    "filename",
    "display_name",
    "status",
    "is_archived",
    "blob_hash",
    "file_size",
    "mime_type",
    "width",
    "height",
    "annotation_count",
    "version",
    "created_at",
    "updated_at",
];

/// The columns an [`ImageRow`] is read from, each of the image's own prefixed with `alias`
/// when one is given, its dataset's id being the expression `dataset_id`.
fn image_columns(alias: Option<&str>, dataset_id: &str) -> String {
    let own = |c: &str| match alias {
        Some(a) => format!("{a}.{c}"),
        None => c.to_string(),
    };
    std::iter::once(own("id"))
        .chain(std::iter::once(format!("{dataset_id} AS dataset_id")))
        .chain(STORED_COLUMNS.iter().map(|c| own(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns an [`ImageRow`] is read from, unqualified: the dataset's id is looked up by the
/// `seq` the image keeps.
static COLUMNS: LazyLock<String> = LazyLock::new(|| {
    image_columns(
        None,
        "(SELECT d.id FROM datasets d WHERE d.seq = dataset_seq)",
    )
});

/// [`COLUMNS`] for a listing, whose `$1` is the dataset's id ([`ImageFilter::condition`]):
/// the id is the parameter's instead of a lookup for each row.
static LISTED_COLUMNS: LazyLock<String> = LazyLock::new(|| image_columns(None, "CAST($1 AS TEXT)"));

/// [`COLUMNS`] of images `alias` joined with their dataset as `dataset`, each prefixed with its
/// table's alias: the dataset's id comes from the join.
pub(super) fn columns_of(alias: &str, dataset: &str) -> String {
    image_columns(Some(alias), &format!("{dataset}.id"))
}

/// A new image id: a UUIDv7, which starts with the time it was made and rises within this
/// process. New rows then go to the end of the id index: a random id lands on a random page
/// of it, and a batch of 100,000 copies rewrote nearly the whole index (on PostgreSQL, a full
/// image of each such page goes to the log after a checkpoint). Copies made together also
/// list in the order they were asked for.
fn new_image_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Ids, or rows of a plan, that one statement of a batch reads. SQLite parses a statement's
/// JSON list and builds a temporary index of it: 100,000 ids in one statement cost it about
/// 40 MB, ten statements of 10,000 (in the same transaction) about 4 MB, in the same time.
const PER_STATEMENT: usize = 10_000;

/// The dataset column that counts the live images with `status`.
fn status_counter(status: &str) -> Option<&'static str> {
    Some(match Status::parse(status)? {
        Status::New => "new_image_count",
        Status::Annotate => "annotate_image_count",
        Status::Review => "review_image_count",
        Status::Complete => "completed_image_count",
    })
}

/// How many times as many rows as it reads a page must skip to be read ids first (where
/// [`Dialect::pages_by_ids`] says so). Looking the page's rows up a second time costs about
/// what sixteen skipped table reads do: the last 1,000 of a million images, skipping 1,000,
/// took PostgreSQL 8 ms read directly and 12 ms ids first; half-way, 204 and 93 ms.
const IDS_FIRST_SKIP: i64 = 16;

/// Datasets of fewer images are read whole for a listing by file name: a few milliseconds.
const NAME_LOOKUP_IMAGES: i64 = 10_000;

/// Most folders a listing by file name in a dataset of `images` images looks up one at a time
/// ([`Store::name_folders`]): one per 500 images, and no more than 1,000. Finding a folder and
/// looking the name up in it cost about what reading 70 images in listing order does (SQLite,
/// a million images in 1,000 folders: 15 ms, read whole 210 ms), and a dataset found to be in
/// more folders is read whole after the search, so the search stays under a tenth of that
/// (1,005 folders: 212 ms, 208 before there was a search).
fn name_lookup_folders(images: i64) -> i64 {
    (images / 500).min(1_000)
}

/// Each id of a batch once, in the order given. A batch runs chunk by chunk over its ids,
/// so an id repeated in two chunks would otherwise be changed twice.
fn distinct_ids(ids: &[String]) -> Vec<&str> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect()
}

impl Store {
    /// The image with this id, if its dataset belongs to the organisation.
    pub async fn image_by_id(&self, org_id: &str, id: &str) -> StoreResult<Option<ImageRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM images i JOIN datasets d ON d.seq = i.dataset_seq \
                 WHERE i.id = $1 AND d.org_id = $2",
                columns_of("i", "d")
            )
        });
        // On PostgreSQL the read shares a statement with the reads around it; should that
        // statement fail, it is read alone.
        let read = async {
            if let Some(gather) = &self.gather {
                if let Some(found) = gather.image(org_id, id).await {
                    return Ok(found);
                }
            }
            self.read_first(&SQL, &[id, org_id]).await
        };
        self.read_through(
            read,
            |cache| cache.image(org_id, id),
            |cache, ticket, row| cache.keep_image(ticket, org_id, row),
        )
        .await
    }

    /// Live images of a dataset, oldest first, optionally with one status only.
    pub async fn list_images(
        &self,
        dataset_id: &str,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<ImageRow>> {
        let filter = ImageFilter {
            status: status.map(str::to_string),
            ..ImageFilter::default()
        };
        self.images_page(dataset_id, &filter, limit, offset).await
    }

    /// One page of a dataset's images matching `filter`, oldest first, and how many match.
    ///
    /// The total comes from the dataset's kept counters when the filter is one they answer
    /// (everything, live only, or complete only), so it costs nothing whatever the size; a
    /// page past the middle of such a listing is read backwards from the end, so the last
    /// page is as quick as the first.
    pub async fn find_images(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ImageRow>, i64)> {
        let folders = self.name_folders(dataset_id, filter).await?;
        let total = self.count_in(dataset_id, filter, folders.clone()).await?;
        let page = self
            .page_of(dataset_id, filter, limit, offset, Some(total), folders)
            .await?;
        Ok((page, total))
    }

    /// The page [`Store::find_images`] reads, for a caller that needs no total: the images
    /// are counted only when the dataset's counters say how many match (to read a page past
    /// the middle from the end), never by reading them all.
    pub async fn images_page(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<ImageRow>> {
        let total = self
            .kept_count(dataset_id, filter, filter.narrowing_folder())
            .await?;
        let folders = self.name_folders(dataset_id, filter).await?;
        self.page_of(dataset_id, filter, limit, offset, total, folders)
            .await
    }

    /// Up to `limit` images matching `filter` from position `offset`; with the `total` that
    /// match, a page past the middle is read backwards from the end. `folders`: see
    /// [`Spelling::folders`].
    async fn page_of(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        limit: i64,
        offset: i64,
        total: Option<i64>,
        folders: Option<NameFolders>,
    ) -> StoreResult<Vec<ImageRow>> {
        let offset = offset.max(0);
        let limit = match total {
            Some(total) => limit.clamp(0, (total - offset).max(0)),
            None => limit.max(0),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Past the middle, skip fewer index entries by reading from the end.
        let from_end = total.filter(|&total| offset > total / 2);
        let skip = match from_end {
            Some(total) => total - offset - limit,
            None => offset,
        };
        let spelling = self
            .spelling(dataset_id, filter, total, skip + limit, folders)
            .await?;
        let (condition, binds) = filter.condition(dataset_id, None, &spelling);
        let order = spelling.order_by(from_end.is_some());
        let listed = self.listed(filter, &condition, &order, skip + limit);
        let columns = LISTED_COLUMNS.as_str();
        let sql = if skip < IDS_FIRST_SKIP * limit || !self.dialect.pages_by_ids() {
            format!("SELECT {columns} FROM {listed} ORDER BY {order} LIMIT {limit} OFFSET {skip}")
        } else {
            format!(
                "SELECT {columns} FROM images WHERE id IN (SELECT id FROM {listed} \
                 ORDER BY {order} LIMIT {limit} OFFSET {skip}) ORDER BY {order}"
            )
        };
        let mut list = self
            .images_of(sql, &binds, limit, filter.narrowing_folder())
            .await?;
        if from_end.is_some() {
            list.reverse();
        }
        Ok(list)
    }

    /// Up to `limit` images matching `filter` that come after `after` (a `(created_at, id)`
    /// of an earlier page) in listing order: a walk over a whole dataset that costs the same
    /// per page wherever it is, and that rows added or removed meanwhile cannot shift.
    /// `matching`, how many images `filter` selects, lets a folder's images be read the
    /// cheaper way: by the name index, or in listing order when the folder holds most of the
    /// dataset.
    pub async fn scan_images(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        after: Option<(&str, &str)>,
        limit: i64,
        matching: Option<i64>,
    ) -> StoreResult<Vec<ImageRow>> {
        let folders = self.name_folders(dataset_id, filter).await?;
        self.scan_in(dataset_id, filter, after, limit, matching, folders)
            .await
    }

    /// [`Store::scan_images`] with how many images match, read with the page: the dataset's
    /// folders, for a listing by file name, are found once for both.
    pub async fn scan_images_counted(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        after: (&str, &str),
        limit: i64,
    ) -> StoreResult<(Vec<ImageRow>, i64)> {
        let folders = self.name_folders(dataset_id, filter).await?;
        let total = self.count_in(dataset_id, filter, folders.clone()).await?;
        let rows = self
            .scan_in(dataset_id, filter, Some(after), limit, Some(total), folders)
            .await?;
        Ok((rows, total))
    }

    /// [`Store::scan_images`], given the dataset's [`Spelling::folders`].
    async fn scan_in(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        after: Option<(&str, &str)>,
        limit: i64,
        matching: Option<i64>,
        folders: Option<NameFolders>,
    ) -> StoreResult<Vec<ImageRow>> {
        let limit = limit.max(0);
        let spelling = self
            .spelling(dataset_id, filter, matching, limit, folders)
            .await?;
        let (condition, binds) = filter.condition(dataset_id, after, &spelling);
        let order = spelling.order_by(false);
        let listed = self.listed(filter, &condition, &order, limit);
        let columns = LISTED_COLUMNS.as_str();
        let sql = format!("SELECT {columns} FROM {listed} ORDER BY {order} LIMIT {limit}");
        self.images_of(sql, &binds, limit, filter.narrowing_folder())
            .await
    }

    /// The images a listing of `filter` reads, `condition` (from [`ImageFilter::condition`])
    /// holding, as the FROM clause of a statement that sorts them by `order` and reads `reach`
    /// of them at most: the table, or, for a listing that includes archived images where they
    /// are indexed apart from live ones ([`Dialect::splits_archived`]), the first `reach` live
    /// and the first `reach` archived ones, which the planner merges from two reads of their
    /// indexes in order. Without the limits, it would rather read and sort the whole dataset
    /// (a first page of a million images: 520 ms instead of 0.6).
    fn listed(&self, filter: &ImageFilter, condition: &str, order: &str, reach: i64) -> String {
        if filter.include_archived && self.dialect.splits_archived() {
            let part = |live: &str| {
                format!(
                    "(SELECT * FROM images WHERE {condition} AND {live} \
                     ORDER BY {order} LIMIT {reach})"
                )
            };
            format!(
                "({} UNION ALL {}) images",
                part("is_archived = 0"),
                part("is_archived <> 0")
            )
        } else {
            format!("images WHERE {condition}")
        }
    }

    /// How a listing of `filter` that reaches `reach` images into the `matching` ones is
    /// written, where a folder narrows it. Read by the name index, it reads every matching
    /// image and sorts them; read in listing order, it visits about `reach × dataset ÷
    /// matching` images before it has its page. Where the planner cannot weigh the two
    /// ([`Dialect::unindexed`]), the cheaper one is chosen here and the other index taken
    /// out of its reach; without `matching`, the planner chooses. With `folders`, a listing
    /// by file name reads each folder's entries of that name instead.
    async fn spelling(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        matching: Option<i64>,
        reach: i64,
        folders: Option<NameFolders>,
    ) -> StoreResult<Spelling> {
        let plain = || Ok(Spelling::default());
        let (Some(unindexed), Some(matching), Some(_)) = (
            self.dialect.unindexed("folder"),
            matching,
            filter.narrowing_folder(),
        ) else {
            // Read a folder at a time by name, the few images found are sorted: SQLite would
            // otherwise rather walk the whole dataset in listing order.
            return Ok(match folders {
                Some(folders) => Spelling {
                    order: self.unindexed_order(),
                    folders: Some(folders),
                    ..Spelling::default()
                },
                None => Spelling::default(),
            });
        };
        let everything = ImageFilter {
            include_archived: filter.include_archived,
            ..ImageFilter::default()
        };
        let Some(dataset) = self.kept_count(dataset_id, &everything, None).await? else {
            return plain();
        };
        let in_order = i128::from(reach) * i128::from(dataset) < i128::from(matching).pow(2);
        Ok(if in_order {
            Spelling {
                folder: unindexed,
                ..Spelling::default()
            }
        } else {
            Spelling {
                order: self.unindexed_order(),
                ..Spelling::default()
            }
        })
    }

    /// The listing order's columns written so that the listing index cannot answer the
    /// order, where the planner cannot weigh it ([`Dialect::unindexed`]).
    fn unindexed_order(&self) -> [String; 2] {
        ["created_at", "id"].map(|c| self.dialect.unindexed(c).unwrap_or(c.into()))
    }

    /// The images `sql` (built from [`ImageFilter::condition`], with its `binds`, narrowed to
    /// `folder`) selects, up to `limit`: read row by row, so a 10,000-image page never holds
    /// its raw rows and its images at once.
    async fn images_of(
        &self,
        sql: String,
        binds: &[Cow<'_, str>],
        limit: i64,
        folder: Option<&str>,
    ) -> StoreResult<Vec<ImageRow>> {
        let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(self.prepared(folder));
        for b in binds {
            q = q.bind(b.as_ref());
        }
        let mut list = Vec::with_capacity(limit.max(0) as usize);
        let mut rows = q.fetch(&self.read);
        while let Some(row) = rows.try_next().await? {
            list.push(ImageRow::from_row(&row)?);
        }
        Ok(list)
    }

    /// Whether a listing narrowed to `folder` keeps its prepared statement
    /// ([`Dialect::plans_each_folder`]).
    fn prepared(&self, folder: Option<&str>) -> bool {
        folder.is_none() || !self.dialect.plans_each_folder()
    }

    /// How many images of the dataset match `filter`: from the dataset's kept counters when
    /// they say it (everything, live only, or live with one status), else counted.
    pub async fn count_images(&self, dataset_id: &str, filter: &ImageFilter) -> StoreResult<i64> {
        let folders = self.name_folders(dataset_id, filter).await?;
        self.count_in(dataset_id, filter, folders).await
    }

    /// [`Store::count_images`], given the dataset's [`Spelling::folders`].
    async fn count_in(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        folders: Option<NameFolders>,
    ) -> StoreResult<i64> {
        let plain = Spelling::default();
        let folder = filter.narrowing_folder();
        if let Some(n) = self.kept_count(dataset_id, filter, folder).await? {
            return Ok(n);
        }
        // Where a folder narrows the count, or a file name in each folder, it may read the
        // name index alone.
        let spelling = if folder.is_some() || folders.is_some() {
            Spelling {
                live: self.dialect.live_by_name(),
                folders,
                ..plain
            }
        } else {
            plain
        };
        let (condition, binds) = filter.condition(dataset_id, None, &spelling);
        let sql = AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM images WHERE {condition}"
        ));
        let mut q = sqlx::query(sql).persistent(self.prepared(folder));
        for b in &binds {
            q = q.bind(b.as_ref());
        }
        get(&q.fetch_one(&self.read).await?, "n")
    }

    /// Every folder of the dataset, for a listing by file name in any folder
    /// ([`Spelling::folders`]): found a folder at a time in the name index, each the first
    /// entry past the one before, so a dataset in few folders costs a few lookups whatever
    /// its size. `None` (the dataset is read whole) when the filter names no file or names a
    /// folder, when the dataset is small enough to read at once ([`NAME_LOOKUP_IMAGES`]), or
    /// when it is in more folders than [`name_lookup_folders`] allows.
    async fn name_folders(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
    ) -> StoreResult<Option<NameFolders>> {
        if filter.filename.is_none() || filter.narrowing_folder().is_some() {
            return Ok(None);
        }
        let everything = ImageFilter {
            include_archived: filter.include_archived,
            ..ImageFilter::default()
        };
        let most = match self.kept_count(dataset_id, &everything, None).await? {
            Some(images) if images >= NAME_LOOKUP_IMAGES => name_lookup_folders(images),
            _ => return Ok(None),
        };
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let next = |after: &str| {
                format!(
                    "(SELECT i.folder FROM images i WHERE i.dataset_seq = {}{after} \
                     ORDER BY i.folder LIMIT 1)",
                    dataset_seq(1)
                )
            };
            format!(
                "WITH RECURSIVE f(folder, n) AS (SELECT {}, 1 UNION ALL \
                 SELECT {}, f.n + 1 FROM f WHERE f.folder IS NOT NULL AND f.n <= $2) \
                 SELECT folder FROM f WHERE folder IS NOT NULL",
                next(""),
                next(" AND i.folder > f.folder"),
            )
        });
        let rows = sqlx::query(AssertSqlSafe(SQL.as_str()))
            .bind(dataset_id)
            .bind(most)
            .fetch_all(&self.read)
            .await?;
        if rows.len() as i64 > most {
            return Ok(None);
        }
        let folders = rows
            .iter()
            .map(|r| get::<String>(r, "folder"))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some((self.dialect, json_list(&folders))))
    }

    /// How many images match `filter`, when the dataset's counters say it.
    async fn kept_count(
        &self,
        dataset_id: &str,
        filter: &ImageFilter,
        folder: Option<&str>,
    ) -> StoreResult<Option<i64>> {
        if folder.is_some() || filter.filename.is_some() {
            return Ok(None);
        }
        let column = match (filter.status.as_deref(), filter.include_archived) {
            (None, false) => "image_count",
            (None, true) => "image_count + archived_images",
            (Some(status), false) => match status_counter(status) {
                Some(column) => column,
                None => return Ok(None),
            },
            (Some(_), true) => return Ok(None),
        };
        let sql = AssertSqlSafe(format!(
            "SELECT {column} AS n FROM counted_datasets WHERE id = $1"
        ));
        let row = sqlx::query(sql)
            .bind(dataset_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| get(&r, "n")).transpose()
    }

    /// The image at `folder`/`filename` of a dataset: the live one, or else the most recently
    /// created archived one of that name.
    pub async fn image_by_path(
        &self,
        dataset_id: &str,
        folder: &str,
        filename: &str,
    ) -> StoreResult<Option<ImageRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {columns} FROM images \
                 WHERE dataset_seq = {} AND folder = $2 AND filename = $3 \
                 ORDER BY is_archived, created_at DESC, id LIMIT 1",
                dataset_seq(1),
                columns = COLUMNS.as_str()
            )
        });
        self.read_first(&SQL, &[dataset_id, folder, filename]).await
    }

    /// Which of the `(folder, file name)` pairs a live image of the dataset has already.
    pub async fn names_taken(
        &self,
        dataset_id: &str,
        names: &[(&str, &str)],
    ) -> StoreResult<HashSet<(String, String)>> {
        // EXISTS keeps the planner on the list, one index lookup per name, whatever the
        // dataset's size.
        let sql = AssertSqlSafe(format!(
            "SELECT j.folder, j.filename FROM ({}) j WHERE EXISTS (SELECT 1 FROM images i \
             WHERE i.dataset_seq = {} AND i.folder = j.folder AND i.filename = j.filename \
             AND i.is_archived = 0)",
            self.dialect
                .json_rows(2, &[Col::Text("folder"), Col::Text("filename")]),
            dataset_seq(1),
        ));
        let rows = sqlx::query(sql)
            .bind(dataset_id)
            .bind(json_list(names))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((get(r, "folder")?, get(r, "filename")?)))
            .collect()
    }

    /// Serialises the writers of one dataset's images that give images a live name (uploads,
    /// moves, copies, restores) or delete the dataset: on PostgreSQL, takes the dataset row's
    /// lock before anything is read (SQLite runs one write transaction at a time already), so
    /// that the checks made inside one (free names, found rows) still hold at its commit.
    /// Writes that only change images in place or take them away (annotation saves, archiving
    /// or deleting one image) lock just the rows they change: no name becomes taken by them,
    /// and the counters' triggers only insert rows (`dataset_counter_changes`), so they
    /// leave the dataset's row alone.
    pub(super) async fn lock_dataset(
        &self,
        conn: &mut sqlx::AnyConnection,
        dataset_id: &str,
    ) -> StoreResult<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT id FROM datasets WHERE id = $1 FOR UPDATE")
                .bind(dataset_id)
                .fetch_optional(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Inserts an image and consumes the pending upload it came from, in one transaction.
    /// `Conflict` when a live image has the name already, `NotFound` when the pending upload
    /// is gone.
    pub async fn register_image(&self, upload_id: &str, new: &NewImage) -> StoreResult<ImageRow> {
        let mut rows = self
            .register_images(&[(upload_id.to_string(), new.clone())])
            .await?;
        rows.pop().unwrap_or(Err(StoreError::NotFound))
    }

    /// Inserts several images, each consuming its pending upload, in one transaction. One
    /// answer per input, in order: `Conflict` when a live image had the name already,
    /// `NotFound` when the pending upload is gone (expired and swept, with its bytes perhaps,
    /// since the caller read it). Either way nothing is inserted for that input.
    pub async fn register_images(
        &self,
        list: &[(String, NewImage)],
    ) -> StoreResult<Vec<StoreResult<ImageRow>>> {
        let mut tx = self.tx().await?;
        let mut datasets: Vec<&str> = Vec::new();
        for (_, new) in list {
            if !datasets.contains(&new.dataset_id.as_str()) {
                datasets.push(&new.dataset_id);
            }
        }
        for dataset_id in datasets {
            self.lock_dataset(&mut tx, dataset_id).await?;
        }
        let uploads: Vec<&str> = list.iter().map(|(u, _)| u.as_str()).collect();
        // The bytes are those the upload holds now, as it is consumed: a repeated PUT may
        // have replaced the ones the caller read (whose bytes the sweep may then free).
        let sql = AssertSqlSafe(format!(
            "DELETE FROM pending_uploads WHERE {} \
             RETURNING id, blob_hash, size, mime, width, height",
            self.dialect.id_in("id", 1)
        ));
        let mut consumed = HashMap::new();
        for r in sqlx::query(sql)
            .bind(json_list(&uploads))
            .fetch_all(&mut *tx)
            .await?
        {
            let held = match (
                get::<Option<String>>(&r, "blob_hash")?,
                get::<Option<i64>>(&r, "size")?,
                get::<Option<String>>(&r, "mime")?,
            ) {
                (Some(hash), Some(size), Some(mime)) => Some((
                    hash,
                    size,
                    mime,
                    get::<Option<i64>>(&r, "width")?,
                    get::<Option<i64>>(&r, "height")?,
                )),
                _ => None,
            };
            consumed.insert(get::<String>(&r, "id")?, held);
        }
        // Each consumed upload gets a new image id; an upload named twice is consumed once.
        let mut planned = Vec::with_capacity(list.len());
        let mut rows = Vec::new();
        for (upload_id, new) in list {
            let Some(held) = consumed.remove(upload_id) else {
                planned.push(None);
                continue;
            };
            let (hash, size, mime, width, height) = match held {
                Some((hash, size, mime, w, h)) => {
                    (hash, size, mime, w.or(new.width), h.or(new.height))
                }
                None => (
                    new.blob_hash.clone(),
                    new.file_size,
                    new.mime_type.clone(),
                    new.width,
                    new.height,
                ),
            };
            let id = new_image_id();
            rows.push((
                id.clone(),
                &new.dataset_id,
                &new.folder,
                &new.filename,
                hash,
                size,
                mime,
                width,
                height,
            ));
            planned.push(Some(id));
        }
        let mut inserted = HashMap::new();
        if !rows.is_empty() {
            // In the request's order, so of two equal names the first one is inserted; a
            // taken name inserts nothing (its upload is spent, its bytes left to the sweep).
            let sql = AssertSqlSafe(format!(
                "INSERT INTO images (id, dataset_seq, folder, filename, blob_hash, file_size, \
                 mime_type, width, height, created_at, updated_at) \
                 SELECT j.id, (SELECT d.seq FROM datasets d WHERE d.id = j.dataset_id), \
                 j.folder, j.filename, {}, j.file_size, j.mime_type, j.width, j.height, $2, $2 \
                 FROM ({}) j WHERE true ORDER BY j.ord \
                 ON CONFLICT DO NOTHING RETURNING {columns}",
                self.dialect.unhex("j.blob_hash"),
                self.dialect.json_rows(
                    1,
                    &[
                        Col::Text("id"),
                        Col::Text("dataset_id"),
                        Col::Text("folder"),
                        Col::Text("filename"),
                        Col::Text("blob_hash"),
                        Col::Int("file_size"),
                        Col::Text("mime_type"),
                        Col::Int("width"),
                        Col::Int("height"),
                    ],
                ),
                columns = COLUMNS.as_str()
            ));
            for r in sqlx::query(sql)
                .bind(json_list(&rows))
                .bind(now_micros())
                .fetch_all(&mut *tx)
                .await?
            {
                let row = ImageRow::from_row(&r)?;
                inserted.insert(row.id.clone(), row);
            }
        }
        self.commit(tx).await?;
        Ok(planned
            .into_iter()
            .map(|id| match id {
                None => Err(StoreError::NotFound),
                Some(id) => inserted.remove(&id).ok_or(StoreError::Conflict),
            })
            .collect())
    }

    /// Archives one image (a no-op on an archived one).
    pub async fn archive_image(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "UPDATE images SET is_archived = 1, version = version + 1, updated_at = $2 \
             WHERE id = $1 AND is_archived = 0",
        )
        .bind(id)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        self.commit_changes(tx).await?;
        Ok(())
    }

    /// Deletes one image row; its bytes are left for the sweep.
    pub async fn delete_image(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM images WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit_changes(tx).await?;
        Ok(())
    }

    /// The image's annotation list as stored.
    pub async fn annotations(&self, id: &str) -> StoreResult<serde_json::Value> {
        match self.annotation_text(id).await? {
            Some(text) => Ok(serde_json::from_str(&text)?),
            None => Ok(serde_json::Value::Array(vec![])),
        }
    }

    /// The image's annotation list as the JSON text stored, if it has one. On PostgreSQL the
    /// read shares a statement with the reads around it; should that statement fail, it is
    /// read alone.
    async fn annotation_text(&self, id: &str) -> StoreResult<Option<String>> {
        if let Some(gather) = &self.gather_annotations {
            if let Some(found) = gather.annotation_text(id).await {
                return Ok(found);
            }
        }
        let row = sqlx::query("SELECT annotations FROM image_annotations WHERE image_id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| get::<String>(&r, "annotations")).transpose()
    }

    /// The annotation lists of several images (those with at least one annotation), by id.
    pub async fn annotation_lists(
        &self,
        ids: &[String],
    ) -> StoreResult<HashMap<String, serde_json::Value>> {
        let mut out = HashMap::new();
        for (id, text) in self.annotation_texts(ids).await? {
            out.insert(id, serde_json::from_str(&text)?);
        }
        Ok(out)
    }

    /// The annotation lists of several images (those with at least one annotation), by id,
    /// as the JSON text stored: a caller that writes them out one at a time never holds all
    /// of them parsed (a parsed list takes several times the memory of its text).
    pub async fn annotation_texts(&self, ids: &[String]) -> StoreResult<HashMap<String, String>> {
        let mut out = HashMap::new();
        if let [id] = ids {
            if let Some(text) = self.annotation_text(id).await? {
                out.insert(id.clone(), text);
            }
            return Ok(out);
        }
        for chunk in ids.chunks(5_000) {
            let sql = AssertSqlSafe(format!(
                "SELECT image_id, annotations FROM image_annotations WHERE {}",
                self.dialect.id_in("image_id", 1)
            ));
            let rows = sqlx::query(sql)
                .bind(json_list(chunk))
                .fetch_all(&self.read)
                .await?;
            for r in &rows {
                out.insert(get(r, "image_id")?, get(r, "annotations")?);
            }
        }
        Ok(out)
    }

    /// Replaces the image's annotations; returns (previous count, new count, status).
    /// With `expected_version`, the save happens only if the image is still at that version;
    /// otherwise it fails with `Conflict`. Without one it always applies (last writer wins).
    /// An image deleted meanwhile is `NotFound`.
    pub async fn save_annotations(
        &self,
        id: &str,
        list: &[serde_json::Value],
        expected_version: Option<i64>,
    ) -> StoreResult<SavedAnnotations> {
        let mut tx = self.tx().await?;
        // Locked until the commit, so that the version checked is the one replaced.
        let sql = format!(
            "SELECT annotation_count, status, version FROM images WHERE id = $1{}",
            self.dialect.for_update()
        );
        let before = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let version: i64 = get(&before, "version")?;
        if expected_version.is_some_and(|v| v != version) {
            return Err(StoreError::Conflict);
        }
        let new_count = list.len() as i64;
        sqlx::query(
            "UPDATE images SET annotation_count = $2, version = version + 1, updated_at = $3 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(new_count)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        // An image without annotations has no row here.
        let keep = if list.is_empty() {
            sqlx::query("DELETE FROM image_annotations WHERE image_id = $1").bind(id)
        } else {
            sqlx::query(
                "INSERT INTO image_annotations (image_id, annotations) VALUES ($1, $2) \
                 ON CONFLICT (image_id) DO UPDATE SET annotations = excluded.annotations",
            )
            .bind(id)
            .bind(serde_json::Value::from(list.to_vec()).to_string())
        };
        keep.execute(&mut *tx).await?;
        self.commit_changes(tx).await?;
        Ok(SavedAnnotations {
            previous_count: get(&before, "annotation_count")?,
            new_count,
            status: get(&before, "status")?,
            version: version + 1,
        })
    }

    /// The rows among `ids` that belong to the dataset: only what the batch rules read.
    async fn rows_in_dataset(
        &self,
        conn: &mut sqlx::AnyConnection,
        dataset_id: &str,
        ids: &[&str],
    ) -> StoreResult<Vec<Found>> {
        let sql = format!(
            "SELECT {} AS found FROM images WHERE dataset_seq + 0 = {} AND {}",
            self.dialect.json_agg("id, folder, filename, is_archived"),
            dataset_seq(1),
            self.dialect.id_in("id", 2)
        );
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PER_STATEMENT) {
            let row = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(dataset_id)
                .bind(json_list(chunk))
                .fetch_one(&mut *conn)
                .await?;
            let rows: Vec<(String, String, String, i64)> =
                serde_json::from_str(&get::<String>(&row, "found")?)?;
            found.extend(
                rows.into_iter()
                    .map(|(id, folder, filename, archived)| Found {
                        id,
                        folder,
                        filename,
                        is_archived: archived != 0,
                    }),
            );
        }
        Ok(found)
    }

    /// Runs `sql`, an UPDATE of images picked by a list of ids (bound last, after what
    /// `binds` binds) that ends in `RETURNING id, folder`, on each chunk of `ids` (distinct),
    /// and adds the chunk's outcome to `out` before the next one: the changed rows
    /// succeeded; of the others, those in the dataset (left as they were, e.g. archived
    /// already) succeeded too, the rest were not found. The statements find and change the
    /// rows: no separate read of them first.
    async fn update_each_chunk<'q>(
        &self,
        conn: &mut sqlx::AnyConnection,
        dataset_id: &str,
        sql: &str,
        binds: impl Fn(AnyQuery<'q>) -> AnyQuery<'q>,
        ids: &[&str],
        out: &mut BatchOutcome,
    ) -> StoreResult<()> {
        for chunk in ids.chunks(PER_STATEMENT) {
            let mut changed = HashMap::with_capacity(chunk.len());
            {
                let q = binds(sqlx::query(AssertSqlSafe(sql))).bind(json_list(chunk));
                let mut rows = q.fetch(&mut *conn);
                while let Some(r) = rows.try_next().await? {
                    changed.insert(get::<String>(&r, "id")?, get::<String>(&r, "folder")?);
                }
            }
            let rest: Vec<&str> = chunk
                .iter()
                .copied()
                .filter(|id| !changed.contains_key(*id))
                .collect();
            let unchanged = if rest.is_empty() {
                Vec::new()
            } else {
                self.rows_in_dataset(conn, dataset_id, &rest).await?
            };
            let unchanged: HashMap<&str, &str> = unchanged
                .iter()
                .map(|r| (r.id.as_str(), r.folder.as_str()))
                .collect();
            split_found(
                chunk,
                |id| {
                    changed
                        .get(id)
                        .map(String::as_str)
                        .or_else(|| unchanged.get(id).copied())
                },
                out,
            );
        }
        Ok(())
    }

    async fn live_names_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        dataset_id: &str,
        folder: &str,
    ) -> StoreResult<HashMap<String, String>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT id, filename FROM images \
                 WHERE dataset_seq = {} AND folder = $2 AND is_archived = 0",
                dataset_seq(1)
            )
        });
        let rows = sqlx::query(AssertSqlSafe(SQL.as_str()))
            .bind(dataset_id)
            .bind(folder)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|r| Ok((get(r, "filename")?, get(r, "id")?)))
            .collect()
    }

    /// Moves images to `folder`: per chunk of ids, one lookup, the name checks, one update.
    pub async fn batch_move(
        &self,
        dataset_id: &str,
        ids: &[String],
        folder: &str,
    ) -> StoreResult<BatchOutcome> {
        let mut tx = self.tx().await?;
        self.lock_dataset(&mut tx, dataset_id).await?;
        let mut taken = self.live_names_in(&mut tx, dataset_id, folder).await?;
        let sql = format!(
            "{} images SET folder = $1, version = version + 1, updated_at = $2 \
             WHERE dataset_seq + 0 = {} AND {}",
            self.dialect.update_many(),
            dataset_seq(3),
            self.dialect.id_in("id", 4)
        );
        let at = now_micros();
        let mut out = BatchOutcome::default();
        for chunk in distinct_ids(ids).chunks(PER_STATEMENT) {
            let found = self.rows_in_dataset(&mut tx, dataset_id, chunk).await?;
            let moving = plan_moves(chunk, &found, &mut taken, folder, &mut out);
            drop(found);
            if moving.is_empty() {
                continue;
            }
            out.touched(folder);
            sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(folder)
                .bind(at)
                .bind(dataset_id)
                .bind(json_list(&moving))
                .execute(&mut *tx)
                .await?;
        }
        self.commit_changes(tx).await?;
        Ok(out)
    }

    /// Copies images into `folder`: new rows pointing at the same bytes. Per chunk of ids,
    /// one lookup, the name checks, then one INSERT … SELECT driven by the list of copies
    /// (CROSS JOIN keeps SQLite from scanning the dataset for each of them).
    pub async fn batch_copy(
        &self,
        dataset_id: &str,
        ids: &[String],
        folder: &str,
        mode: CopyMode,
        copy_annotations: bool,
    ) -> StoreResult<BatchOutcome> {
        let mut tx = self.tx().await?;
        self.lock_dataset(&mut tx, dataset_id).await?;
        let ids = distinct_ids(ids);
        // Names in the folder: the id of the live image that has it, or none for a copy this
        // batch makes (which an overwrite never replaces).
        let mut taken: HashMap<String, Option<String>> = self
            .live_names_in(&mut tx, dataset_id, folder)
            .await?
            .into_iter()
            .map(|(name, id)| (name, Some(id)))
            .collect();
        let sources: HashSet<&str> = ids.iter().copied().collect();
        let (count, status) = if copy_annotations {
            ("i.annotation_count", "i.status")
        } else {
            ("0", "'new'")
        };
        let copies = self.dialect.json_rows(
            3,
            &[Col::Text("src"), Col::Text("new_id"), Col::Text("filename")],
        );
        let sql = format!(
            "{} images (id, dataset_seq, folder, filename, display_name, status, \
             is_archived, blob_hash, file_size, mime_type, width, height, \
             annotation_count, version, created_at, updated_at) \
             SELECT m.new_id, i.dataset_seq, $1, m.filename, NULL, {status}, 0, i.blob_hash, \
             i.file_size, i.mime_type, i.width, i.height, {count}, 1, $2, $2 \
             FROM ({copies}) m CROSS JOIN images i WHERE i.id = m.src AND i.dataset_seq + 0 = {}",
            self.dialect.insert_many(),
            dataset_seq(4),
        );
        // The copies' lists, for the sources that have one (after the rows they belong to).
        let lists = format!(
            "{} image_annotations (image_id, annotations) SELECT m.new_id, a.annotations \
             FROM ({}) m CROSS JOIN image_annotations a WHERE a.image_id = m.src",
            self.dialect.insert_many(),
            self.dialect
                .json_rows(1, &[Col::Text("src"), Col::Text("new_id")]),
        );
        let at = now_micros();
        let mut out = BatchOutcome::default();
        for chunk in ids.chunks(PER_STATEMENT) {
            let found = self.rows_in_dataset(&mut tx, dataset_id, chunk).await?;
            let (plan, replaced) = plan_copies(
                chunk,
                &found,
                &mut taken,
                &sources,
                (folder, mode),
                &mut out,
            );
            // What planning read is dropped before the statements run.
            drop(found);
            if !replaced.is_empty() {
                let replaced: Vec<&str> = replaced.iter().map(String::as_str).collect();
                let released = self.delete_rows(&mut tx, dataset_id, &replaced).await?;
                out.released_blobs
                    .extend(released.into_iter().map(|d| d.hash));
            }
            if plan.is_empty() {
                continue;
            }
            out.touched(folder);
            let plan = json_list(&plan);
            sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(folder)
                .bind(at)
                .bind(&plan)
                .bind(dataset_id)
                .execute(&mut *tx)
                .await?;
            if copy_annotations {
                sqlx::query(AssertSqlSafe(lists.as_str()))
                    .bind(&plan)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        self.commit_changes(tx).await?;
        Ok(out)
    }

    /// Deletes the images `ids` of the dataset; answers the id, folder and content hash of
    /// each one that was there, as one JSON value per chunk: PostgreSQL's DELETE returns it;
    /// on SQLite the rows are read so before a DELETE that returns nothing (rows handed back
    /// one at a time cost more than the statement's own work on each).
    async fn delete_rows(
        &self,
        conn: &mut sqlx::AnyConnection,
        dataset_id: &str,
        ids: &[&str],
    ) -> StoreResult<Vec<Deleted>> {
        let hash = self.dialect.hex("blob_hash");
        let picked = format!(
            "dataset_seq + 0 = {} AND {}",
            dataset_seq(1),
            self.dialect.id_in("id", 2)
        );
        let delete = format!("DELETE FROM images WHERE {picked}");
        let (read, then_delete) = match self.dialect.returned_as_json(
            &format!("{delete} RETURNING id, folder, {hash} AS hash"),
            "id, folder, hash",
        ) {
            Some(deleting) => (deleting, None),
            None => (
                format!(
                    "SELECT {} AS found FROM images WHERE {picked}",
                    self.dialect.json_agg(&format!("id, folder, {hash}"))
                ),
                Some(delete),
            ),
        };
        let mut deleted = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PER_STATEMENT) {
            let list = json_list(chunk);
            let row = sqlx::query(AssertSqlSafe(read.as_str()))
                .bind(dataset_id)
                .bind(&list)
                .fetch_one(&mut *conn)
                .await?;
            let rows: Vec<(String, String, String)> =
                serde_json::from_str(&get::<String>(&row, "found")?)?;
            if rows.is_empty() {
                continue;
            }
            if let Some(delete) = &then_delete {
                sqlx::query(AssertSqlSafe(delete.as_str()))
                    .bind(dataset_id)
                    .bind(&list)
                    .execute(&mut *conn)
                    .await?;
            }
            deleted.extend(
                rows.into_iter()
                    .map(|(id, folder, hash)| Deleted { id, folder, hash }),
            );
        }
        Ok(deleted)
    }

    /// Archives, or permanently deletes, images.
    pub async fn batch_delete(
        &self,
        dataset_id: &str,
        ids: &[String],
        permanent: bool,
    ) -> StoreResult<BatchOutcome> {
        let mut tx = self.tx().await?;
        self.lock_dataset(&mut tx, dataset_id).await?;
        let mut out = BatchOutcome::default();
        let ids = distinct_ids(ids);
        if permanent {
            for chunk in ids.chunks(PER_STATEMENT) {
                let deleted = self.delete_rows(&mut tx, dataset_id, chunk).await?;
                let folders: HashMap<&str, &str> = deleted
                    .iter()
                    .map(|d| (d.id.as_str(), d.folder.as_str()))
                    .collect();
                split_found(chunk, |id| folders.get(id).copied(), &mut out);
                drop(folders);
                out.released_blobs
                    .extend(deleted.into_iter().map(|d| d.hash));
            }
        } else {
            let sql = format!(
                "{} images SET is_archived = 1, version = version + 1, updated_at = $1 \
                 WHERE dataset_seq + 0 = {} AND is_archived = 0 AND {} \
                 RETURNING id, folder",
                self.dialect.update_many(),
                dataset_seq(2),
                self.dialect.id_in("id", 3)
            );
            let at = now_micros();
            let binds = |q: AnyQuery<'static>| q.bind(at).bind(dataset_id.to_string());
            self.update_each_chunk(&mut tx, dataset_id, &sql, binds, &ids, &mut out)
                .await?;
        }
        self.commit_changes(tx).await?;
        Ok(out)
    }

    /// Sets status, display name and archived flag on images. Restoring an image whose name
    /// a live image has taken meanwhile fails for that image only.
    pub async fn batch_update(
        &self,
        dataset_id: &str,
        ids: &[String],
        update: &ImageUpdate,
    ) -> StoreResult<BatchOutcome> {
        let mut tx = self.tx().await?;
        self.lock_dataset(&mut tx, dataset_id).await?;
        let ids = distinct_ids(ids);
        let mut out = BatchOutcome::default();
        if update.is_archived != Some(false) {
            // Nothing to check row by row: the update itself finds the rows.
            let sql = format!("{} RETURNING id, folder", self.update_sql(update));
            let at = now_micros();
            let binds = |q: AnyQuery<'static>| update_binds(q, dataset_id, update, at);
            self.update_each_chunk(&mut tx, dataset_id, &sql, binds, &ids, &mut out)
                .await?;
            self.commit_changes(tx).await?;
            return Ok(out);
        }
        // Restoring: per chunk, one read finds the rows and, for archived ones, whether a
        // live image has their name now (restores of earlier chunks included). The check is
        // written as the name index's key (its marker is empty for a live image only), so
        // SQLite answers it from the index without reading the rows it finds there.
        let read = format!(
            "SELECT {} AS found FROM images i WHERE i.dataset_seq + 0 = {} AND {}",
            self.dialect.json_agg(&format!(
                "i.id, i.folder, i.filename, i.is_archived, \
                 CASE WHEN i.is_archived <> 0 AND EXISTS (SELECT 1 FROM images l \
                 WHERE l.dataset_seq = i.dataset_seq AND l.folder = i.folder \
                 AND l.filename = i.filename AND {LIVE_NAME_KEY}) \
                 THEN 1 ELSE 0 END"
            )),
            dataset_seq(1),
            self.dialect.id_in("i.id", 2)
        );
        let (write, at) = (self.update_sql(update), now_micros());
        // Names this batch restores: two archived images of one name restore only once.
        let mut restored = HashSet::new();
        for chunk in ids.chunks(PER_STATEMENT) {
            let row = sqlx::query(AssertSqlSafe(read.as_str()))
                .bind(dataset_id)
                .bind(json_list(chunk))
                .fetch_one(&mut *tx)
                .await?;
            let rows: Vec<(String, String, String, i64, i64)> =
                serde_json::from_str(&get::<String>(&row, "found")?)?;
            let mut found = Vec::with_capacity(rows.len());
            let mut clash = HashSet::new();
            for (id, folder, filename, archived, taken) in rows {
                if taken != 0 {
                    clash.insert(id.clone());
                }
                found.push(Found {
                    id,
                    folder,
                    filename,
                    is_archived: archived != 0,
                });
            }
            let by_id = rows_by_id(&found);
            let mut keep = Vec::with_capacity(found.len());
            for &id in chunk {
                let Some(row) = by_id.get(id) else {
                    out.not_found(id);
                    continue;
                };
                let free = !clash.contains(id)
                    && (!row.is_archived
                        || restored.insert((row.folder.clone(), row.filename.clone())));
                if free {
                    out.succeeded_in(id, &row.folder);
                    keep.push(id);
                } else {
                    out.failed.push((
                        id.to_string(),
                        format!(
                            "cannot restore: '{}' already exists in folder '{}'",
                            row.filename, row.folder
                        ),
                    ));
                }
            }
            if keep.is_empty() {
                continue;
            }
            update_binds(
                sqlx::query(AssertSqlSafe(write.as_str())),
                dataset_id,
                update,
                at,
            )
            .bind(json_list(&keep))
            .execute(&mut *tx)
            .await?;
        }
        self.commit_changes(tx).await?;
        Ok(out)
    }

    /// The UPDATE of [`Store::batch_update`]: it sets only the fields `update` has, bound by
    /// [`update_binds`], then the ids. A column it names is changed for SQLite even when the
    /// value stays the same: naming `is_archived` made SQLite rewrite every row's entries in
    /// the two indexes limited to live images, which doubled a status update's time and log.
    fn update_sql(&self, update: &ImageUpdate) -> String {
        let mut sets = Vec::new();
        for (column, set) in [
            ("status", update.status.is_some()),
            ("display_name", update.display_name.is_some()),
            ("is_archived", update.is_archived.is_some()),
            ("updated_at", true),
        ] {
            if set {
                sets.push(format!("{column} = ${}", sets.len() + 1));
            }
        }
        let dataset = sets.len() + 1;
        format!(
            "{} images SET {}, version = version + 1 WHERE dataset_seq + 0 = {} AND {}",
            self.dialect.update_many(),
            sets.join(", "),
            dataset_seq(dataset as u32),
            self.dialect.id_in("id", dataset as u32 + 1)
        )
    }
}

/// A query of the `Any` driver.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds what [`Store::update_sql`] reads before the ids: the fields `update` sets, then
/// `at` (the time of the change) and the dataset.
fn update_binds<'q>(
    mut q: AnyQuery<'q>,
    dataset_id: &str,
    update: &ImageUpdate,
    at: i64,
) -> AnyQuery<'q> {
    if let Some(status) = &update.status {
        q = q.bind(status.clone());
    }
    if let Some(name) = &update.display_name {
        q = q.bind(name.clone());
    }
    if let Some(archived) = update.is_archived {
        q = q.bind(i64::from(archived));
    }
    q.bind(at).bind(dataset_id.to_string())
}

/// The rows a batch read, by id.
fn rows_by_id(found: &[Found]) -> HashMap<&str, &Found> {
    found.iter().map(|r| (r.id.as_str(), r)).collect()
}

/// Adds to `out` the outcome of `chunk` (distinct ids): those `folder_of` finds in the
/// dataset succeeded in that folder, the others were not found.
fn split_found<'a>(
    chunk: &[&str],
    folder_of: impl Fn(&str) -> Option<&'a str>,
    out: &mut BatchOutcome,
) {
    for &id in chunk {
        match folder_of(id) {
            Some(folder) => out.succeeded_in(id, folder),
            None => out.not_found(id),
        }
    }
}

/// Decides each move of `chunk` (distinct ids, of which `found` are in the dataset) into
/// `folder`, whose live names are `taken` (by name to id; the moves decided are added to
/// it). Adds each id's outcome to `out` and answers the ids whose rows change.
fn plan_moves<'i>(
    chunk: &[&'i str],
    found: &[Found],
    taken: &mut HashMap<String, String>,
    folder: &str,
    out: &mut BatchOutcome,
) -> Vec<&'i str> {
    let by_id = rows_by_id(found);
    let mut moving: Vec<&str> = Vec::new();
    for &id in chunk {
        let Some(row) = by_id.get(id) else {
            out.not_found(id);
            continue;
        };
        if row.folder == folder {
            out.succeeded.push(id.to_string());
            continue;
        }
        if !row.is_archived {
            if let Some(other) = taken.get(&row.filename) {
                if other != id {
                    out.failed.push((
                        id.to_string(),
                        format!("'{}' already exists in folder '{folder}'", row.filename),
                    ));
                    continue;
                }
            }
            taken.insert(row.filename.clone(), id.to_string());
        }
        moving.push(id);
        out.succeeded_in(id, &row.folder);
    }
    moving
}

/// One copy a batch makes: source id, new id, name. A tuple serialises as a JSON array, so
/// a chunk of a plan is written straight into the text the INSERT reads.
type PlannedCopy<'i> = (&'i str, String, String);

/// Decides each copy of `chunk` (distinct ids, of which `found` are in the dataset) into
/// `folder`, whose names are `taken` (by name to the id of the live image that has it, or
/// none for a copy this batch makes; the copies decided are added). `sources` are all the
/// batch's ids: an overwrite never replaces one of them. Adds each id's outcome to `out`;
/// answers the copies as `(source, new id, name)` and the live images an overwrite replaces.
fn plan_copies<'i>(
    chunk: &[&'i str],
    found: &[Found],
    taken: &mut HashMap<String, Option<String>>,
    sources: &HashSet<&str>,
    (folder, mode): (&str, CopyMode),
    out: &mut BatchOutcome,
) -> (Vec<PlannedCopy<'i>>, Vec<String>) {
    let by_id = rows_by_id(found);
    let mut plan: Vec<PlannedCopy<'i>> = Vec::new();
    let mut replaced = Vec::new();
    for &id in chunk {
        let Some(row) = by_id.get(id) else {
            out.not_found(id);
            continue;
        };
        let mut name = row.filename.clone();
        if let Some(existing) = taken.get(&name).cloned() {
            match mode {
                CopyMode::Skip => {
                    out.failed.push((
                        id.to_string(),
                        format!("skipped: '{name}' already exists in folder '{folder}'"),
                    ));
                    continue;
                }
                CopyMode::Overwrite
                    if existing.as_deref().is_some_and(|e| !sources.contains(e)) =>
                {
                    replaced.extend(existing);
                    taken.remove(&name);
                }
                _ => {
                    let mut n = 2;
                    while taken.contains_key(&pictograph_core::names::numbered(&name, n)) {
                        n += 1;
                    }
                    name = pictograph_core::names::numbered(&name, n);
                    out.renamed += 1;
                }
            }
        }
        taken.insert(name.clone(), None);
        plan.push((id, new_image_id(), name));
        out.succeeded_in(id, &row.folder);
    }
    (plan, replaced)
}

impl Store {
    /// The image with this id, whatever its organisation (for signed URLs only), unless its
    /// dataset is being deleted.
    pub async fn image_row(&self, id: &str) -> StoreResult<Option<ImageRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {columns} FROM images WHERE id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM datasets d WHERE d.seq = images.dataset_seq AND d.org_id = $2)",
                columns = COLUMNS.as_str()
            )
        });
        self.read_first(&SQL, &[id, super::datasets::DELETING_ORG])
            .await
    }

    /// The file of the image with this id, as [`Store::image_row`] finds the image: through
    /// the read cache, which the download listing fills for the images fetched next.
    pub async fn image_file(&self, id: &str) -> StoreResult<Option<ImageFile>> {
        self.read_through(
            async { Ok(self.image_row(id).await?.as_ref().map(ImageFile::of)) },
            |cache| cache.file(id),
            |cache, ticket, file| cache.keep_file(ticket, id, file.clone()),
        )
        .await
    }

    /// The images `read` answers, their files kept in the read cache when there is one
    /// (unless anything changed images meanwhile), so that the fetches of their bytes by
    /// signed URL which follow need no database read each.
    pub async fn keeping_files<E>(
        &self,
        read: impl std::future::Future<Output = Result<Vec<ImageRow>, E>>,
    ) -> Result<Vec<ImageRow>, E> {
        self.read_keeping(read, |cache, ticket, rows| {
            for row in rows {
                cache.keep_file(ticket, &row.id, ImageFile::of(row));
            }
        })
        .await
    }
}
