//! Copying a whole installation's metadata from one store to another (SQLite to PostgreSQL, or
//! back), resumably: rows are copied in key order with `ON CONFLICT DO NOTHING`, so a re-run
//! skips what an interrupted run already copied. Dataset counters are rebuilt by the target's
//! own triggers as images arrive, then compared with the source's.

use super::datasets::COUNTERS;
use super::{get, DatasetCounts, FromCells, Store, StoreResult};
use sqlx::any::AnyRow;
use sqlx::AssertSqlSafe;

/// How a column is read and written.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Bytes,
}

use Kind::{Bytes, Int, Text};

/// A table that is copied: name, key column, columns.
struct Table {
    name: &'static str,
    key: &'static str,
    columns: &'static [(&'static str, Kind)],
}

/// Tables in dependency order. Pending uploads, stored idempotent responses and rate buckets
/// are short-lived and not copied. Export jobs are (their archives' bytes are copied with the
/// images' by `pictograph migrate`); a job still running in the source is failed by the
/// target's sweep, as its task does not move with it.
const TABLES: &[Table] = &[
    Table {
        name: "organizations",
        key: "id",
        columns: &[("id", Text), ("name", Text), ("created_at", Text)],
    },
    Table {
        name: "api_keys",
        key: "id",
        columns: &[
            ("id", Text),
            ("org_id", Text),
            ("prefix", Text),
            ("key_hash", Text),
            ("role", Text),
            ("tier", Text),
            ("created_at", Text),
            ("revoked_at", Text),
        ],
    },
    Table {
        name: "datasets",
        key: "id",
        columns: &[
            ("id", Text),
            ("org_id", Text),
            ("name", Text),
            ("description", Text),
            ("classes", Text),
            ("annotation_types", Text),
            ("created_at", Text),
            ("updated_at", Text),
            ("seq", Int),
        ],
    },
    Table {
        name: "blobs",
        key: "hash",
        columns: &[
            ("hash", Text),
            ("size", Int),
            ("mime", Text),
            ("width", Int),
            ("height", Int),
            ("touched_at", Text),
        ],
    },
    Table {
        name: "images",
        key: "id",
        columns: &[
            ("id", Text),
            ("dataset_seq", Int),
            ("folder", Text),
            ("filename", Text),
            ("display_name", Text),
            ("status", Text),
            ("is_archived", Int),
            ("blob_hash", Bytes),
            ("file_size", Int),
            ("mime_type", Text),
            ("width", Int),
            ("height", Int),
            ("annotation_count", Int),
            ("version", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    },
    Table {
        name: "image_annotations",
        key: "image_id",
        columns: &[("image_id", Text), ("annotations", Text)],
    },
    Table {
        name: "export_jobs",
        key: "id",
        columns: &[
            ("id", Text),
            ("org_id", Text),
            ("dataset_id", Text),
            ("format", Text),
            ("status_filter", Text),
            ("polygons_as_boxes", Int),
            ("state", Text),
            ("images_total", Int),
            ("images_done", Int),
            ("annotations", Int),
            ("warnings", Text),
            ("error", Text),
            ("archive_hash", Text),
            ("archive_size", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
    },
];

/// Rows copied per transaction.
const PAGE: i64 = 1000;

/// What a copy did for one table.
#[derive(Debug, Clone)]
pub struct TableReport {
    /// Table name.
    pub table: &'static str,
    /// Rows in the source.
    pub source_rows: i64,
    /// Rows inserted by this run (the rest were there already).
    pub inserted: u64,
    /// Rows in the target afterwards.
    pub target_rows: i64,
}

enum Val {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Option<Vec<u8>>),
}

fn read(row: &AnyRow, columns: &[(&str, Kind)]) -> StoreResult<Vec<Val>> {
    columns
        .iter()
        .map(|(c, k)| {
            Ok(match k {
                Text => Val::Text(get(row, c)?),
                Int => Val::Int(get(row, c)?),
                Bytes => Val::Bytes(get(row, c)?),
            })
        })
        .collect()
}

impl Store {
    async fn count(&self, table: &str) -> StoreResult<i64> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&self.read)
            .await?;
        get(&row, "n")
    }

    /// Copies every durable row of `self` into `target`; `progress` hears each page.
    pub async fn copy_into(
        &self,
        target: &Store,
        mut progress: impl FnMut(&str, u64),
    ) -> StoreResult<Vec<TableReport>> {
        let mut reports = Vec::new();
        for t in TABLES {
            let cols: Vec<&str> = t.columns.iter().map(|c| c.0).collect();
            let select = format!(
                "SELECT {} FROM {} WHERE {} > $1 ORDER BY {} LIMIT $2",
                cols.join(", "),
                t.name,
                t.key,
                t.key
            );
            let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
            let insert = format!(
                "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                t.name,
                cols.join(", "),
                placeholders.join(", ")
            );
            let mut after = String::new();
            let mut inserted = 0u64;
            loop {
                let rows = sqlx::query(AssertSqlSafe(select.clone()))
                    .bind(&after)
                    .bind(PAGE)
                    .fetch_all(&self.read)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = get(last, t.key)?;
                let mut tx = target.tx().await?;
                for row in &rows {
                    let mut q = sqlx::query(AssertSqlSafe(insert.clone()));
                    for v in read(row, t.columns)? {
                        q = match v {
                            Val::Text(s) => q.bind(s),
                            Val::Int(i) => q.bind(i),
                            Val::Bytes(b) => q.bind(b),
                        };
                    }
                    inserted += q.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                progress(t.name, rows.len() as u64);
            }
            reports.push(TableReport {
                table: t.name,
                source_rows: self.count(t.name).await?,
                inserted,
                target_rows: target.count(t.name).await?,
            });
        }
        // Datasets came with their numbers: PostgreSQL's sequence must give the next one
        // after them (SQLite's trigger numbers a new dataset after the highest already).
        if target.dialect == super::Dialect::Postgres {
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('datasets', 'seq'), \
                 COALESCE((SELECT MAX(seq) FROM datasets), 0) + 1, false)",
            )
            .execute(&target.write)
            .await?;
        }
        Ok(reports)
    }

    /// Every dataset's counters, by id, for comparing two stores.
    pub async fn dataset_counters(&self) -> StoreResult<Vec<(String, DatasetCounts)>> {
        let sql = format!(
            "SELECT id, {} FROM counted_datasets ORDER BY id",
            COUNTERS.join(", ")
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((get(r, "id")?, DatasetCounts::from_row(r)?)))
            .collect()
    }

    /// Hashes of every blob the store knows, in order.
    pub async fn blob_hashes(&self, after: &str, limit: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT hash FROM blobs WHERE hash > $1 ORDER BY hash LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| get(r, "hash")).collect()
    }
}
