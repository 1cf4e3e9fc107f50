//! Replays the stored response when a write arrives again with the same `Idempotency-Key`.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::repeating::Repeating;
use crate::store::{keyed_write, KeyedWrite, StoredResponse};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Largest response body kept for replay: a larger one is recorded as not kept, and a retry
/// of its request is refused (409) rather than run again.
const MAX_STORED: usize = 4 * 1024 * 1024;

/// Middleware: for POST, PUT and PATCH carrying an `Idempotency-Key`, answer a stored response
/// for the same caller, key and request (method, path and body), or run the request and
/// store what it answered.
pub async fn replay(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if !matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        return next.run(req).await;
    }
    let Some(idem) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 255)
    else {
        return next.run(req).await;
    };
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    // The body is already whole in memory (read by `api::bodies`): this takes it back.
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::BadRequest(format!("Reading the request body failed: {e}"))
                .into_response()
        }
    };
    let request_hash = hex::encode(Sha256::digest(&body));
    let req = Request::from_parts(parts, Body::from(body));
    let claim = match claim(&state, &caller.key_id, &idem, &method, &path, &request_hash).await {
        Ok(Claimed::Run(claim)) => claim,
        Ok(Claimed::Answer(resp)) => return resp,
        Err(e) => return e.into_response(),
    };
    // Run to the end on a task of its own: a client that goes away once the write has
    // committed must still find its answer stored when it retries, not the write run twice.
    let run = tokio::spawn(async move {
        let alive = claim.keep_alive();
        let write = KeyedWrite {
            key_id: claim.key_id.clone(),
            idem_key: claim.idem.clone(),
        };
        let resp = keyed_write(write, next.run(req)).await;
        drop(alive);
        keep(claim, &method, path, request_hash, resp).await
    });
    match run.await {
        Ok(resp) => resp,
        Err(e) => {
            ApiError::Internal(anyhow::anyhow!("the request's task failed: {e}")).into_response()
        }
    }
}

/// Stores `resp` as the answer of the claimed key when it is one to replay, else releases
/// the key; answers `resp`.
async fn keep(
    mut claim: Claim,
    method: &Method,
    path: String,
    request_hash: String,
    resp: Response,
) -> Response {
    let status = resp.status();
    let replayable = (status.is_success() || status.is_client_error())
        && !matches!(status.as_u16(), 401 | 408 | 429);
    if !replayable {
        claim.release();
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // The handlers answer JSON made whole in memory: nothing is left to bound here.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            claim.release();
            return ApiError::Internal(anyhow::anyhow!("buffering response: {e}")).into_response();
        }
    };
    let kept = (bytes.len() <= MAX_STORED)
        .then(|| std::str::from_utf8(&bytes).ok())
        .flatten();
    let stored = StoredResponse {
        method: method.as_str().to_string(),
        path,
        status: status.as_u16(),
        body: kept.unwrap_or_default().to_string(),
        body_kept: kept.is_some(),
        request_hash: Some(request_hash),
        created_at: String::new(),
        applied: false,
    };
    let completed = claim
        .state
        .store
        .complete_response(&claim.key_id, &claim.idem, &stored)
        .await;
    match completed {
        Ok(()) => claim.done = true,
        Err(e) => {
            tracing::warn!(error = %e, "could not store idempotent response");
            claim.release();
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// How long a request waits for another one with its key to answer before it is refused.
const WAIT_FOR_FIRST: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a claim recorded as running may go unrenewed before it is taken for abandoned:
/// the server that claimed it stopped before it answered (a crash), and the next request
/// with the key runs. A running request renews its claim four times as often, however long
/// it runs (`Config::claim_stale_secs`).
fn abandoned_after(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(state.config.claim_stale_secs)
}

/// The claims of the requests this server runs, by API key id and `Idempotency-Key`. A
/// retry that reaches the server running its first request waits for that request, however
/// long ago its claim was last renewed: a renewal can be held up behind the very write it
/// keeps alive (SQLite has one writer).
#[derive(Debug, Default)]
pub struct RunningClaims(std::sync::Mutex<HashSet<(String, String)>>);

impl RunningClaims {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn contains(&self, key_id: &str, idem: &str) -> bool {
        self.set().contains(&(key_id.to_string(), idem.to_string()))
    }
}

/// What [`claim`] found.
enum Claimed {
    /// The key is this request's: run it.
    Run(Claim),
    /// The answer to give without running it.
    Answer(Response),
}

/// The key recorded as running for this request, or the answer when it was used before:
/// the stored response, a refusal for a different request, or, while the first request
/// with the key is still running, what it answers once done (waiting up to
/// [`WAIT_FOR_FIRST`]).
async fn claim(
    state: &AppState,
    key_id: &str,
    idem: &str,
    method: &Method,
    path: &str,
    request_hash: &str,
) -> Result<Claimed, ApiError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        match state.store.stored_response(key_id, idem).await? {
            None => {
                if state
                    .store
                    .claim_response(key_id, idem, method.as_str(), path, request_hash)
                    .await?
                {
                    return Ok(Claimed::Run(Claim::new(state, key_id, idem)));
                }
            }
            Some(stored)
                if !stored.pending() || !same_request(&stored, method, path, request_hash) =>
            {
                return Ok(Claimed::Answer(replayed(
                    stored,
                    method,
                    path,
                    request_hash,
                )));
            }
            Some(_) if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::Conflict(
                    "A request with this Idempotency-Key is still running: retry it in a while \
                     to get its answer"
                        .into(),
                ));
            }
            Some(running) => {
                let abandoned = crate::store::fmt_time(
                    chrono::Utc::now()
                        - chrono::Duration::from_std(abandoned_after(state)).unwrap_or_default(),
                );
                if running.created_at < abandoned && !state.running_claims.contains(key_id, idem) {
                    end_unanswered(state, key_id, idem, Some(&abandoned)).await?;
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// A key claimed for a running request; given up (in the background) if the request ends
/// without an answer to keep. The request runs on its own task, so a client that goes away
/// does not end it: its answer is kept for the retry.
struct Claim {
    state: AppState,
    key_id: String,
    idem: String,
    done: bool,
}

impl Claim {
    /// The claim of a request this server runs, listed in [`RunningClaims`] until dropped.
    fn new(state: &AppState, key_id: &str, idem: &str) -> Claim {
        let (key_id, idem) = (key_id.to_string(), idem.to_string());
        state
            .running_claims
            .set()
            .insert((key_id.clone(), idem.clone()));
        Claim {
            state: state.clone(),
            key_id,
            idem,
            done: false,
        }
    }

    /// Renews the claim every quarter of [`abandoned_after`] until the returned guard is
    /// dropped.
    fn keep_alive(&self) -> Repeating {
        let (state, key_id, idem) = (self.state.clone(), self.key_id.clone(), self.idem.clone());
        Repeating::every(abandoned_after(&self.state) / 4, move || {
            let (state, key_id, idem) = (state.clone(), key_id.clone(), idem.clone());
            async move {
                if let Err(e) = state.store.touch_claim(&key_id, &idem).await {
                    tracing::warn!(error = %e, "renewing an idempotency claim failed");
                }
            }
        })
    }

    /// Ends the claim without an answer, in the background ([`end_unanswered`]).
    fn release(&mut self) {
        self.done = true;
        let (state, key_id, idem) = (self.state.clone(), self.key_id.clone(), self.idem.clone());
        tokio::spawn(async move {
            if let Err(e) = end_unanswered(&state, &key_id, &idem, None).await {
                tracing::warn!(error = %e, "could not release an idempotency key");
            }
        });
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.done {
            self.release();
        }
        let running = (
            std::mem::take(&mut self.key_id),
            std::mem::take(&mut self.idem),
        );
        self.state.running_claims.set().remove(&running);
    }
}

/// Ends a claim that has no answer to keep: forgotten when its write was not applied;
/// otherwise a refusal (409) is kept as its answer, since the request's own answer is lost
/// (it failed after its write, or its server stopped).
async fn end_unanswered(
    state: &AppState,
    key_id: &str,
    idem: &str,
    claimed_before: Option<&str>,
) -> Result<(), crate::store::StoreError> {
    let (status, body) = ApiError::Conflict(
        "A request with this Idempotency-Key was applied, but its answer was lost (the server \
         failed or stopped before keeping it), so it is not run again: read the current state \
         to see its outcome"
            .into(),
    )
    .status_and_body();
    let lost = body.to_string();
    state
        .store
        .end_unanswered(key_id, idem, (status.as_u16(), &lost), claimed_before)
        .await
}

/// Whether `stored` was recorded for this same request: method, path and body.
fn same_request(stored: &StoredResponse, method: &Method, path: &str, request_hash: &str) -> bool {
    stored.method == method.as_str()
        && stored.path == path
        && stored
            .request_hash
            .as_deref()
            .is_none_or(|h| h == request_hash)
}

/// The answer to a request whose Idempotency-Key has a stored response: that response, when
/// the request is the same (method, path and body) and the response was kept; otherwise
/// a refusal, and the request does not run again.
fn replayed(stored: StoredResponse, method: &Method, path: &str, request_hash: &str) -> Response {
    if !same_request(&stored, method, path, request_hash) {
        return ApiError::Invalid(
            "Idempotency-Key was already used for a different request".into(),
        )
        .into_response();
    }
    if !stored.body_kept {
        return ApiError::Conflict(format!(
            "A request with this Idempotency-Key already ran and answered HTTP {}; its answer \
             was too large to keep for replay, so it is not run again: read the current state \
             instead",
            stored.status
        ))
        .into_response();
    }
    let mut resp = Response::new(Body::from(stored.body));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_waits_for_a_claim_this_server_runs_however_long_unrenewed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::new(dir.path());
        config.claim_stale_secs = 1;
        let state = crate::open_state(config).await.unwrap();
        let path = "/api/v1/developer/batch/images/move";
        let Claimed::Run(first) = claim(&state, "key", "idem", &Method::POST, path, "hash")
            .await
            .unwrap()
        else {
            panic!("the first request runs");
        };
        // No renewal reaches the record (as when it waits behind the write it keeps alive):
        // the record goes stale while this server still runs the request.
        tokio::time::sleep(Duration::from_millis(2_200)).await;
        let retry = tokio::spawn({
            let state = state.clone();
            async move {
                claim(&state, "key", "idem", &Method::POST, path, "hash")
                    .await
                    .unwrap()
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !retry.is_finished(),
            "the retry waits for the first request"
        );
        let answer = (StatusCode::OK, r#"{"moved":1}"#).into_response();
        keep(first, &Method::POST, path.into(), "hash".into(), answer).await;
        let Claimed::Answer(replay) = retry.await.unwrap() else {
            panic!("the retry ran the request a second time");
        };
        assert_eq!(replay.status(), StatusCode::OK);
        let body = axum::body::to_bytes(replay.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"moved":1}"#);
        assert!(!state.running_claims.contains("key", "idem"));
    }
}
