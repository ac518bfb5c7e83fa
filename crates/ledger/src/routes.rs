//! HTTP endpoints of ledger-api (SPEC §3.3).

use crate::db::{self, EntryFilter};
use crate::entry::{self, BatchRequest, MAX_BATCH_ENTRIES, NewEntryRequest};
use crate::writer::Appended;
use crate::{Ledger, SERVICE};
use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use mobius_core::merkle::{self, Hash};
use mobius_core::time::{now_ms, rfc3339_ms};
use mobius_http::auth::{Auth, Authenticator, Principal, Role};
use mobius_http::health::Health;
use mobius_http::{ApiError, JsonBody, QueryParams};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Body limit of the batch endpoint: 1000 entries of about 16 KiB each.
pub const BATCH_BODY_LIMIT_BYTES: usize = 16 << 20;
/// Default and maximum page sizes (SPEC §2).
pub const PAGE_DEFAULT: usize = 50;
pub const PAGE_MAX: usize = 1000;

#[derive(Clone)]
pub struct LedgerApi {
    pub ledger: Arc<Ledger>,
    pub auth: Arc<Authenticator>,
    /// The automation guard; the scripted-seal endpoint is the ledger's guarded operation.
    pub automation: Option<Arc<dyn mobius_http::health::Guard>>,
}

impl FromRef<LedgerApi> for Arc<Authenticator> {
    fn from_ref(s: &LedgerApi) -> Self {
        s.auth.clone()
    }
}

/// The complete ledger-api router, ops endpoints included.
pub fn router(api: LedgerApi, health: Arc<Health>) -> Router {
    let ledger = api.ledger.clone();
    health.metrics.add_collector(Box::new(move |out| {
        ledger.render_metrics(out, &format!("service=\"{SERVICE}\""));
    }));
    let routes = Router::new()
        .route("/v1/attestations", post(append_one).get(list))
        .route("/v1/attestations/batch", post(append_batch))
        .route("/v1/attestations/by-id/{id}", get(by_id))
        .route("/v1/attestations/{index}", get(by_index))
        .route("/v1/blocks", get(blocks))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/proofs/inclusion", get(inclusion))
        .route("/v1/proofs/consistency", get(consistency))
        .route("/v1/ledger/stats", get(stats))
        .route("/v1/ledger/key", get(key))
        .route("/v1/ledger/seal", post(seal))
        .with_state(api);
    mobius_http::health::service_router(routes, health)
}

/// A citizen may only write entries about itself (SPEC §3.3).
fn authorise_subject(
    p: &Principal,
    subject: Option<&str>,
    position: Option<usize>,
) -> Result<(), ApiError> {
    if p.role == Role::Citizen && subject != Some(p.subject.as_str()) {
        let mut e = ApiError::forbidden("a citizen may only write entries whose subject is itself");
        e.details = json!({"field": "subject"});
        if let Some(p) = position {
            e.details["position"] = json!(p);
        }
        return Err(e);
    }
    Ok(())
}

fn appended_json(a: &Appended) -> Value {
    let mut v = json!({"id": hex::encode(a.id), "index": a.index, "timestamp_ms": a.timestamp_ms, "tree_size": a.tree_size});
    if a.duplicate {
        v["duplicate"] = json!(true);
    }
    v
}

async fn append_one(
    State(api): State<LedgerApi>,
    Auth(principal): Auth,
    JsonBody(req): JsonBody<NewEntryRequest>,
) -> Result<Response, ApiError> {
    authorise_subject(&principal, req.subject.as_deref(), None)?;
    entry::check_public_type(&req.entry_type, None)?;
    let prepared = entry::prepare(req, &principal.source(), now_ms(), None)?;
    let out = api.ledger.append(vec![prepared]).await?;
    let a = out
        .first()
        .ok_or_else(|| ApiError::internal("sequencer returned no result"))?;
    let status = if a.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(appended_json(a))).into_response())
}

async fn append_batch(
    State(api): State<LedgerApi>,
    Auth(principal): Auth,
    JsonBody(req): JsonBody<BatchRequest, BATCH_BODY_LIMIT_BYTES>,
) -> Result<Response, ApiError> {
    let n = req.entries.len();
    if n == 0 || n > MAX_BATCH_ENTRIES {
        return Err(ApiError::invalid_field(
            "entries",
            format!("a batch holds 1 to {MAX_BATCH_ENTRIES} entries; this one has {n}"),
        ));
    }
    let source = principal.source();
    let now = now_ms();
    let mut prepared = Vec::with_capacity(n);
    for (i, e) in req.entries.into_iter().enumerate() {
        authorise_subject(&principal, e.subject.as_deref(), Some(i))?;
        entry::check_public_type(&e.entry_type, Some(i))?;
        prepared.push(entry::prepare(e, &source, now, Some(i))?);
    }
    let out = api.ledger.append(prepared).await?;
    let status = if out.iter().all(|a| a.duplicate) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let results: Vec<Value> = out.iter().map(appended_json).collect();
    Ok((status, axum::Json(json!({ "results": results }))).into_response())
}

fn parse_u64(name: &str, v: &str) -> Result<u64, ApiError> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field(
            name,
            format!("{name} must be a non-negative integer"),
        ));
    }
    v.parse::<i64>()
        .map(|n| n as u64) // the store holds signed 64-bit integers
        .map_err(|_| ApiError::invalid_field(name, format!("{name} is out of range")))
}

fn parse_hash(name: &str, v: &str) -> Result<Hash, ApiError> {
    let err =
        || ApiError::invalid_field(name, format!("{name} must be 64 lowercase hex characters"));
    if v.len() != 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(err());
    }
    hex::decode(v)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(err)
}

/// Entry JSON with its block height (null until sealed).
fn entry_response(c: &mut mobius_store::Conn, row: db::EntryRow) -> Result<Value, ApiError> {
    let mut v = row.to_json()?;
    v["block_height"] = json!(db::block_height_of(c, row.index)?);
    Ok(v)
}

async fn by_index(
    State(api): State<LedgerApi>,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let index = parse_u64("index", &index)?;
    let v = api
        .ledger
        .read(move |c| match db::entry_by_index(c, index)? {
            Some(row) => entry_response(c, row),
            None => Err(ApiError::not_found(format!("no entry at index {index}"))),
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

async fn by_id(State(api): State<LedgerApi>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_hash("id", &id)?;
    let v = api
        .ledger
        .read(move |c| match db::entry_by_id(c, &id)? {
            Some(row) => entry_response(c, row),
            None => Err(ApiError::not_found("no entry with this id")),
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    subject: Option<String>,
    #[serde(rename = "type")]
    entry_type: Option<String>,
    source: Option<String>,
    from_index: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn page_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(l) => {
            let n = parse_u64("limit", l)?;
            if n == 0 || n > PAGE_MAX as u64 {
                return Err(ApiError::invalid_field(
                    "limit",
                    format!("limit must be 1 to {PAGE_MAX}"),
                ));
            }
            Ok(n as usize)
        }
    }
}

/// Cursors are opaque to clients: base64url of `"<kind>:<next position>"`.
fn encode_cursor(kind: &str, next: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{next}"))
}

fn decode_cursor(kind: &str, cursor: &str) -> Result<u64, ApiError> {
    let err = || {
        ApiError::invalid_field(
            "cursor",
            "invalid cursor: pass back the next_cursor of a previous page",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| err())?;
    let s = String::from_utf8(raw).map_err(|_| err())?;
    let n = s
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(err)?;
    n.parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(err)
}

async fn list(
    State(api): State<LedgerApi>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit.as_deref())?;
    let from = match (&q.cursor, &q.from_index) {
        (Some(c), _) => decode_cursor("i", c)?,
        (None, Some(f)) => parse_u64("from_index", f)?,
        (None, None) => 0,
    };
    if let Some(t) = &q.entry_type
        && !entry::valid_entry_type(t)
    {
        return Err(ApiError::invalid_field(
            "type",
            "type must be a dotted lowercase entry type",
        ));
    }
    if let Some(s) = &q.subject
        && !entry::valid_civic_id(s)
    {
        return Err(ApiError::invalid_field(
            "subject",
            "subject must be a civic id",
        ));
    }
    let filter = EntryFilter {
        subject: q.subject,
        entry_type: q.entry_type,
        source: q.source,
    };
    let v = api
        .ledger
        .read(move |c| {
            let mut rows = db::list_entries(c, &filter, from, limit + 1)?;
            let next = (rows.len() > limit).then(|| {
                rows.truncate(limit);
                rows.last().map(|r| encode_cursor("i", r.index + 1))
            });
            let sealed = db::head(c)?.sealed_size;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                let sealed_row = row.index < sealed;
                let index = row.index;
                let mut v = row.to_json()?;
                v["block_height"] = if sealed_row {
                    json!(db::block_height_of(c, index)?)
                } else {
                    Value::Null
                };
                items.push(v);
            }
            Ok(json!({"items": items, "next_cursor": next.flatten()}))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

#[derive(Debug, Deserialize)]
struct BlocksQuery {
    from_height: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn blocks(
    State(api): State<LedgerApi>,
    QueryParams(q): QueryParams<BlocksQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit.as_deref())?;
    let from = match (&q.cursor, &q.from_height) {
        (Some(c), _) => decode_cursor("b", c)?,
        (None, Some(f)) => parse_u64("from_height", f)?,
        (None, None) => 0,
    };
    let v = api
        .ledger
        .read(move |c| {
            let mut rows = db::blocks_from(c, from, limit + 1)?;
            let next = if rows.len() > limit {
                rows.truncate(limit);
                rows.last().map(|b| encode_cursor("b", b.height + 1))
            } else {
                None
            };
            let items: Vec<Value> = rows.iter().map(db::Block::to_json).collect();
            Ok(json!({"items": items, "next_cursor": next}))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

async fn latest_block(State(api): State<LedgerApi>) -> Result<Response, ApiError> {
    let b = api.ledger.read(|c| Ok(db::latest_block(c)?)).await?;
    match b {
        Some(b) => Ok(axum::Json(b.to_json()).into_response()),
        None => Err(ApiError::not_found("no block has been sealed yet")),
    }
}

async fn block(
    State(api): State<LedgerApi>,
    Path(height): Path<String>,
) -> Result<Response, ApiError> {
    let height = parse_u64("height", &height)?;
    let b = api
        .ledger
        .read(move |c| Ok(db::block_by_height(c, height)?))
        .await?;
    match b {
        Some(b) => Ok(axum::Json(b.to_json()).into_response()),
        None => Err(ApiError::not_found(format!("no block at height {height}"))),
    }
}

async fn checkpoint(State(api): State<LedgerApi>) -> Result<Response, ApiError> {
    let b = api.ledger.read(|c| Ok(db::latest_block(c)?)).await?;
    match b {
        Some(b) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            b.checkpoint,
        )
            .into_response()),
        None => Err(ApiError::not_found(
            "no checkpoint has been signed yet; the first block seals within a second of the first append",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct InclusionQuery {
    index: Option<String>,
    tree_size: Option<String>,
}

async fn inclusion(
    State(api): State<LedgerApi>,
    QueryParams(q): QueryParams<InclusionQuery>,
) -> Result<Response, ApiError> {
    let index = parse_u64(
        "index",
        q.index
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("index", "index is required"))?,
    )?;
    let tree_size = q
        .tree_size
        .as_deref()
        .map(|t| parse_u64("tree_size", t))
        .transpose()?;
    let v = api
        .ledger
        .read(move |c| {
            let head = db::head(c)?;
            let size = match tree_size {
                Some(s) => s,
                None => db::latest_block(c)?.map(|b| b.tree_size).ok_or_else(|| {
                    ApiError::not_found("no checkpoint has been signed yet; pass tree_size")
                })?,
            };
            if size > head.tree_size {
                return Err(ApiError::invalid_field(
                    "tree_size",
                    format!(
                        "tree_size {size} exceeds the current tree size {}",
                        head.tree_size
                    ),
                ));
            }
            if index >= size {
                return Err(ApiError::invalid_field(
                    "index",
                    format!("index {index} is not below tree_size {size}"),
                ));
            }
            let mut r = db::DbHashes(c);
            let proof =
                merkle::inclusion_proof(index, size, &mut r).map_err(crate::writer::tree_err)?;
            let root = merkle::tree_hash(size, &mut r).map_err(crate::writer::tree_err)?;
            let leaf =
                merkle::HashReader::read_hashes(&mut r, &[merkle::stored_hash_index(0, index)])?;
            Ok(json!({
                "index": index,
                "tree_size": size,
                "leaf_hash": hex::encode(leaf[0]),
                "root_hash": hex::encode(root),
                "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            }))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    first: Option<String>,
    second: Option<String>,
}

async fn consistency(
    State(api): State<LedgerApi>,
    QueryParams(q): QueryParams<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    let first = parse_u64(
        "first",
        q.first
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("first", "first is required"))?,
    )?;
    let second = q
        .second
        .as_deref()
        .map(|t| parse_u64("second", t))
        .transpose()?;
    let v = api
        .ledger
        .read(move |c| {
            let head = db::head(c)?;
            let second = match second {
                Some(s) => s,
                None => db::latest_block(c)?
                    .map(|b| b.tree_size)
                    .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet; pass second"))?,
            };
            if first == 0 {
                return Err(ApiError::invalid_field("first", "first must be at least 1: a consistency proof from the empty tree is meaningless"));
            }
            if first > second {
                return Err(ApiError::invalid_field("first", format!("first ({first}) must not exceed second ({second})")));
            }
            if second > head.tree_size {
                return Err(ApiError::invalid_field("second", format!("second {second} exceeds the current tree size {}", head.tree_size)));
            }
            let mut r = db::DbHashes(c);
            let proof = merkle::consistency_proof(first, second, &mut r).map_err(crate::writer::tree_err)?;
            let first_root = merkle::tree_hash(first, &mut r).map_err(crate::writer::tree_err)?;
            let second_root = merkle::tree_hash(second, &mut r).map_err(crate::writer::tree_err)?;
            Ok(json!({
                "first": first,
                "second": second,
                "first_root": hex::encode(first_root),
                "second_root": hex::encode(second_root),
                "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            }))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

async fn stats(State(api): State<LedgerApi>) -> Result<Response, ApiError> {
    let v = api
        .ledger
        .read(|c| {
            let head = db::head(c)?;
            let latest = db::latest_block(c)?;
            let by_type: serde_json::Map<String, Value> = db::type_counts(c)?
                .into_iter()
                .map(|(t, n)| (t, json!(n)))
                .collect();
            let last_entry_at = match head.tree_size {
                0 => None,
                n => db::timestamp_of(c, n - 1)?.map(rfc3339_ms),
            };
            let lag = if head.tree_size > head.sealed_size {
                db::timestamp_of(c, head.sealed_size)?.map_or(0, |t| (now_ms() - t).max(0))
            } else {
                0
            };
            Ok(json!({
                "tree_size": head.tree_size,
                "block_height": latest.map(|b| b.height),
                "entries_by_type": by_type,
                "subjects": db::subject_count(c)?,
                "last_entry_at": last_entry_at,
                "sequencer_lag_ms": lag,
            }))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

async fn key(State(api): State<LedgerApi>) -> Response {
    axum::Json(json!({"origin": api.ledger.signer.name(), "verifier_key": api.ledger.signer.verifier_key()})).into_response()
}

/// Operator: seal a block now instead of waiting for the timer. This is the hook scripts and
/// jobs use, so it is guarded: 503 `automation_halted` while automation is halted (the timer
/// keeps sealing — a halted system still publishes signed checkpoints).
async fn seal(State(api): State<LedgerApi>, auth: Auth) -> Result<Response, ApiError> {
    auth.require_operator()?;
    if let Some(g) = &api.automation {
        g.check()?;
    }
    let b = api.ledger.seal().await?;
    Ok(axum::Json(json!({"sealed": b.as_ref().map(db::Block::to_json)})).into_response())
}
