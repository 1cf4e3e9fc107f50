//! API keys: generation, hashing, roles, and the middleware that authenticates and rate-limits.

use crate::error::ApiError;
use crate::ratelimit::Verdict;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Roles, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads and writes data.
    Member,
    /// Also deletes datasets and purges bytes in bulk.
    Admin,
    /// Everything.
    Owner,
}

impl Role {
    /// Parses `member`, `admin` or `owner`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// Tiers a key can have.
pub const TIERS: [&str; 5] = ["free", "core", "pro", "enterprise", "unlimited"];

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Key id.
    pub key_id: String,
    /// The key's organisation.
    pub org_id: String,
    /// The key's role.
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role, what: &str) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{what} requires the {} role or higher",
                role.as_str()
            )))
        }
    }
}

/// A fresh secret key: `pk_live_` and 40 hex characters.
pub fn generate_key() -> String {
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    format!("pk_live_{}", hex::encode(raw))
}

/// The SHA-256 of a key, hex; the only form in which keys are stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates a key in organisation `org` (created when missing) and returns the secret, which
/// is not stored anywhere: only its hash is.
pub async fn create_key(
    store: &crate::store::Store,
    org: &str,
    role: Role,
    tier: &str,
) -> Result<String, crate::store::StoreError> {
    let org = store.ensure_org(org.trim()).await?;
    let key = generate_key();
    store
        .insert_key(
            &org.id,
            &key_prefix(&key),
            &hash_key(&key),
            role.as_str(),
            tier,
        )
        .await?;
    Ok(key)
}

/// On a store without any organisation, creates organisation `org` with a key of `role` and
/// `tier` and answers the key; answers `None` once any organisation exists. Of servers that
/// start together on one empty store, exactly one creates them.
pub async fn create_first_key(
    store: &crate::store::Store,
    org: &str,
    role: Role,
    tier: &str,
) -> Result<Option<String>, crate::store::StoreError> {
    let key = generate_key();
    let created = store
        .create_first_org_key(
            org.trim(),
            &key_prefix(&key),
            &hash_key(&key),
            role.as_str(),
            tier,
        )
        .await?;
    Ok(created.then_some(key))
}

/// The part of a key shown in listings.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(14).collect()
}

/// Authenticates `X-API-Key`, applies the key's rate limit, and records the caller.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return ApiError::Unauthorized("Missing API key: send it in the X-API-Key header".into())
            .into_response();
    }
    let row = match state.store.key_by_hash(&hash_key(key)).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return ApiError::Unauthorized("Invalid or revoked API key".into()).into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(role) = Role::parse(&row.role) else {
        return ApiError::Unauthorized("Invalid or revoked API key".into()).into_response();
    };
    // One budget for each organisation and tier: an organisation's keys of one tier share
    // it, so more keys do not make more requests.
    let limit = state.config.rate_limits.for_tier(&row.tier);
    let bucket = format!("{}/{}", row.org_id, row.tier);
    let verdict = match limit {
        Some(l) => match state.limiter.check(&state.store, &bucket, l).await {
            Ok(v) => Some((l, v)),
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    if let Some((l, Verdict::Refused { retry_after })) = verdict {
        let mut resp = ApiError::RateLimited { retry_after }.into_response();
        set_limit_headers(&mut resp, l, 0, retry_after);
        return resp;
    }
    req.extensions_mut().insert(Caller {
        key_id: row.id,
        org_id: row.org_id,
        role,
    });
    let mut resp = next.run(req).await;
    if let Some((l, Verdict::Allowed { remaining, reset })) = verdict {
        set_limit_headers(&mut resp, l, remaining, reset);
    }
    resp
}

fn set_limit_headers(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", limit as u64),
        ("x-ratelimit-remaining", remaining as u64),
        ("x-ratelimit-reset", reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, v);
        }
    }
}
