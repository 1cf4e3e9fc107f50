//! Organisations and API keys.

use super::{get, now, Dialect, FromCells, Store, StoreResult};
use std::sync::LazyLock;

/// An organisation.
#[derive(Debug, Clone)]
pub struct OrgRow {
    /// Id (UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
}

/// An API key as stored: never the key itself, only its hash.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Id (UUID).
    pub id: String,
    /// Owning organisation.
    pub org_id: String,
    /// Organisation name.
    pub org_name: String,
    /// The first characters of the key, for display.
    pub prefix: String,
    /// member, admin or owner.
    pub role: String,
    /// Rate-limit tier.
    pub tier: String,
    /// Creation time.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

impl FromCells for KeyRow {
    fn from_row<R: super::inline::Cells>(r: &R) -> StoreResult<KeyRow> {
        Ok(KeyRow {
            id: get(r, "id")?,
            org_id: get(r, "org_id")?,
            org_name: get(r, "org_name")?,
            prefix: get(r, "prefix")?,
            role: get(r, "role")?,
            tier: get(r, "tier")?,
            created_at: get(r, "created_at")?,
            revoked_at: get(r, "revoked_at")?,
        })
    }
}

const KEY_COLUMNS: &str = "SELECT k.id, k.org_id, o.name AS org_name, k.prefix, k.role, k.tier, \
     k.created_at, k.revoked_at FROM api_keys k JOIN organizations o ON o.id = k.org_id";

impl Store {
    /// The database's clock now, on PostgreSQL; none on SQLite, whose file has no clock of
    /// its own.
    pub async fn database_clock(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        if self.dialect != Dialect::Postgres {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) AS micros",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(chrono::DateTime::from_timestamp_micros(get(
            &row, "micros",
        )?))
    }

    /// The installation-wide setting `name`, set to `fresh` by the first caller (PostgreSQL
    /// only: a SQLite installation keeps such values in its data directory).
    pub async fn shared_setting(&self, name: &str, fresh: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?;
        get(&row, "value")
    }

    /// Finds or creates the organisation called `name`.
    pub async fn ensure_org(&self, name: &str) -> StoreResult<OrgRow> {
        sqlx::query(
            "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(name)
        .bind(now())
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT id, name FROM organizations WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?;
        Ok(OrgRow {
            id: get(&row, "id")?,
            name: get(&row, "name")?,
        })
    }

    /// Stores a new key by its hash.
    pub async fn insert_key(
        &self,
        org_id: &str,
        prefix: &str,
        key_hash: &str,
        role: &str,
        tier: &str,
    ) -> StoreResult<String> {
        insert_key(&self.write, org_id, prefix, key_hash, role, tier).await
    }

    /// Creates organisation `name` and a key of it by its hash, in one transaction, when no
    /// organisation exists yet; answers whether this call created them. Of
    /// processes that try this together on one empty store, exactly one does: the insert
    /// checks for organisations as it writes, and the name's uniqueness turns away a second
    /// insert that checked before the first committed.
    pub async fn create_first_org_key(
        &self,
        name: &str,
        prefix: &str,
        key_hash: &str,
        role: &str,
        tier: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let id = uuid::Uuid::new_v4().to_string();
        let created = sqlx::query(
            "INSERT INTO organizations (id, name, created_at) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM organizations) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&id)
        .bind(name)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !created {
            return Ok(false);
        }
        insert_key(&mut *tx, &id, prefix, key_hash, role, tier).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The live (not revoked) key with this hash.
    pub async fn key_by_hash(&self, key_hash: &str) -> StoreResult<Option<KeyRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("{KEY_COLUMNS} WHERE k.key_hash = $1 AND k.revoked_at IS NULL")
        });
        self.read_through(
            self.read_first(&SQL, &[key_hash]),
            |cache| cache.key(key_hash),
            |cache, ticket, row| cache.keep_key(ticket, key_hash, row),
        )
        .await
    }

    /// All keys, newest first.
    pub async fn list_keys(&self) -> StoreResult<Vec<KeyRow>> {
        let sql = sqlx::AssertSqlSafe(format!("{KEY_COLUMNS} ORDER BY k.created_at DESC"));
        let rows = sqlx::query(sql).fetch_all(&self.read).await?;
        rows.iter().map(KeyRow::from_row).collect()
    }

    /// Revokes the key whose id or display prefix is `id_or_prefix`; true when one was revoked.
    pub async fn revoke_key(&self, id_or_prefix: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 \
             WHERE (id = $1 OR prefix = $1) AND revoked_at IS NULL",
        )
        .bind(id_or_prefix)
        .bind(now())
        .execute(&self.write)
        .await;
        self.forget_cached(super::cache::Part::Keys);
        Ok(done?.rows_affected() > 0)
    }
}

/// Stores a new key by its hash through `db` (a pool or a transaction); answers its id.
async fn insert_key<'e, E>(
    db: E,
    org_id: &str,
    prefix: &str,
    key_hash: &str,
    role: &str,
    tier: &str,
) -> StoreResult<String>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, prefix, key_hash, role, tier, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(prefix)
    .bind(key_hash)
    .bind(role)
    .bind(tier)
    .bind(now())
    .execute(db)
    .await?;
    Ok(id)
}
