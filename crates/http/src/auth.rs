//! Bearer-token authentication. Tokens are 256-bit random secrets shown once; the store keeps
//! only their SHA-256. A short-lived in-process cache keeps the hot path off the store.
//! (Role-based authorisation for citizens and services arrives with the Citizen Shield.)

use crate::error::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::{header, request::Parts};
use mobius_store::{Conn, Param, Pool, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Citizen,
    Sentinel,
    Service,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Sentinel => "sentinel",
            Role::Service => "service",
            Role::Operator => "operator",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "citizen" => Role::Citizen,
            "sentinel" => Role::Sentinel,
            "service" => Role::Service,
            "operator" => Role::Operator,
            _ => return None,
        })
    }
}

/// Who is acting: the authenticated token's role and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    pub subject: String,
    pub token_id: String,
}

impl Principal {
    /// The ledger `source` of entries this principal writes, e.g. `operator:ops`.
    pub fn source(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.subject)
    }
}

/// Prefix that makes Mobius tokens recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "mob_";
/// How long a validated token is trusted without re-reading the store.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
const CACHE_MAX_ENTRIES: usize = 10_000;

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// A newly created token: the secret is returned exactly once and never stored.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub role: Role,
    pub subject: String,
    pub expires_at_ms: Option<i64>,
}

/// Creates a token in the store.
pub fn create_token(
    conn: &mut Conn,
    role: Role,
    subject: &str,
    ttl_s: Option<i64>,
    now_ms: i64,
) -> Result<NewToken, StoreError> {
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(crate::random_bytes::<32>()));
    let id = format!("tok_{}", hex::encode(crate::random_bytes::<8>()));
    let expires_at_ms = ttl_s.map(|t| now_ms.saturating_add(t.saturating_mul(1000)));
    conn.execute(
        "INSERT INTO auth_tokens (id, token_hash, role, subject, created_at_ms, expires_at_ms, revoked_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        &[
            Param::Text(&id),
            Param::Bytes(&hash_token(&token)),
            Param::Text(role.as_str()),
            Param::Text(subject),
            Param::Int(now_ms),
            expires_at_ms.into(),
        ],
    )?;
    Ok(NewToken {
        id,
        token,
        role,
        subject: subject.to_string(),
        expires_at_ms,
    })
}

/// Looks a presented token up in the store. `Ok(None)` when unknown, expired or revoked.
pub fn lookup_token(
    conn: &mut Conn,
    token: &str,
    now_ms: i64,
) -> Result<Option<(Principal, Option<i64>)>, StoreError> {
    let hash = hash_token(token);
    let row = conn.query_opt(
        "SELECT id, token_hash, role, subject, expires_at_ms, revoked_at_ms FROM auth_tokens WHERE token_hash = $1",
        &[Param::Bytes(&hash)],
    )?;
    let Some(row) = row else { return Ok(None) };
    if !ct_eq(row.bytes(1)?, &hash) || row.opt_i64(5)?.is_some() {
        return Ok(None);
    }
    let expires = row.opt_i64(4)?;
    if expires.is_some_and(|e| e <= now_ms) {
        return Ok(None);
    }
    let Some(role) = Role::parse(row.text(2)?) else {
        return Ok(None);
    };
    Ok(Some((
        Principal {
            role,
            subject: row.text(3)?.to_string(),
            token_id: row.text(0)?.to_string(),
        },
        expires,
    )))
}

/// Revokes a token by id. Returns false when there is no such live token.
pub fn revoke_token(conn: &mut Conn, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE auth_tokens SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
        &[Param::Text(id), Param::Int(now_ms)],
    )?;
    Ok(n == 1)
}

/// A token's public facts (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub role: String,
    pub subject: String,
    pub expires_at_ms: Option<i64>,
    pub revoked: bool,
}

/// Looks a token up by id.
pub fn token_info(conn: &mut Conn, id: &str) -> Result<Option<TokenInfo>, StoreError> {
    conn.query_opt(
        "SELECT role, subject, expires_at_ms, revoked_at_ms FROM auth_tokens WHERE id = $1",
        &[Param::Text(id)],
    )?
    .map(|r| {
        Ok(TokenInfo {
            role: r.text(0)?.to_string(),
            subject: r.text(1)?.to_string(),
            expires_at_ms: r.opt_i64(2)?,
            revoked: r.opt_i64(3)?.is_some(),
        })
    })
    .transpose()
}

pub struct Authenticator {
    pool: Pool,
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl Authenticator {
    pub fn new(pool: Pool) -> Arc<Self> {
        Arc::new(Authenticator {
            pool,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Forgets every cached token (after a revocation in this process).
    pub fn clear_cache(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Authenticates the `Authorization: Bearer` header.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Principal, ApiError> {
        self.authenticate_headers(&parts.headers).await
    }

    /// Authenticates the `Authorization: Bearer` header of `headers`.
    pub async fn authenticate_headers(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Principal, ApiError> {
        let header = headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthenticated(
                "this endpoint needs a token: send Authorization: Bearer <token>",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| {
                ApiError::unauthenticated(
                    "malformed Authorization header: expected 'Bearer <token>'",
                )
            })?
            .to_string();
        let hash = hash_token(&token);
        if let Some((p, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(p.clone());
        }
        let pool = self.pool.clone();
        let now = mobius_core::time::now_ms();
        let found =
            tokio::task::spawn_blocking(move || pool.with(|c| lookup_token(c, &token, now)))
                .await
                .map_err(ApiError::internal)??;
        let Some((principal, expires)) = found else {
            return Err(ApiError::unauthenticated(
                "invalid, expired or revoked token",
            ));
        };
        // Never cache past expiry.
        if expires.is_none_or(|e| e - now > CACHE_TTL.as_millis() as i64) {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }
}

/// Extractor: the authenticated principal of a request (401 without a valid token).
pub struct Auth(pub Principal);

impl<S> FromRequestParts<S> for Auth
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Arc::<Authenticator>::from_ref(state);
        auth.authenticate(parts).await.map(Auth)
    }
}

impl Auth {
    /// Requires one of `roles` (403 otherwise).
    pub fn require_role(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "this operation needs one of the roles: {}",
                names.join(", ")
            )))
        }
    }

    /// Requires the operator role (403 otherwise).
    pub fn require_operator(&self) -> Result<&Principal, ApiError> {
        if self.0.role == Role::Operator {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(
                "this operation needs an operator token",
            ))
        }
    }
}
