//! HTTP endpoints of shield-api (SPEC §7): enrolment, manifests, key rotation, challenge /
//! response login, operator-minted tokens, introspection, revocation, screening, the
//! security event log and the open-enrolment switch.

use crate::citizens::{self, parse_public_key, parse_signature, rotation_message};
use crate::events::SecurityLog;
use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use mobius_core::time::{now_ms, rfc3339_ms};
use mobius_http::auth::{self, Auth, Authenticator, Role};
use mobius_http::health::Health;
use mobius_http::{ApiError, JsonBody, QueryParams};
use mobius_ledger::Ledger;
use mobius_ledger::entry::valid_civic_id;
use mobius_store::{Conn, Param, Pool};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub const SERVICE: &str = "shield-api";
/// The ledger source of entries shield-api writes.
pub const SOURCE: &str = "service:shield-api";
/// Citizen tokens live one hour (SPEC §7); challenges five minutes.
pub const CITIZEN_TOKEN_TTL_S: i64 = 3600;
pub const NONCE_TTL_MS: i64 = 5 * 60 * 1000;
/// Operator-minted tokens: at most one year.
pub const MAX_TOKEN_TTL_S: i64 = 365 * 24 * 3600;
/// Routes that are brute-force sensitive (the rate limiter's `Auth` class).
pub const AUTH_PATHS: &[&str] = &["/v1/citizens", "/v1/auth/challenge", "/v1/auth/token"];
const OPEN_ENROLMENT_SETTING: &str = "shield.open_enrolment";

#[derive(Clone)]
pub struct ShieldApi {
    pub ledger: Arc<Ledger>,
    pub auth: Arc<Authenticator>,
    pub pool: Pool,
    pub events: Arc<SecurityLog>,
}

impl FromRef<ShieldApi> for Arc<Authenticator> {
    fn from_ref(s: &ShieldApi) -> Self {
        s.auth.clone()
    }
}

impl ShieldApi {
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(ApiError::internal)?
    }
}

pub fn router(api: ShieldApi, health: Arc<Health>) -> Router {
    let routes = Router::new()
        .route("/v1/citizens", post(enrol))
        .route("/v1/citizens/{id}", get(citizen))
        .route("/v1/citizens/{id}/manifests", get(manifest_history))
        .route("/v1/citizens/{id}/keys", post(rotate_key))
        .route("/v1/auth/challenge", post(challenge))
        .route("/v1/auth/token", post(login))
        .route("/v1/tokens", post(mint))
        .route("/v1/tokens/introspect", post(introspect))
        .route("/v1/tokens/{id}", delete(revoke))
        .route("/v1/screen", post(screen))
        .route("/v1/shield/events", get(events))
        .route("/v1/shield/settings", get(settings).put(put_settings))
        .with_state(api);
    mobius_http::health::service_router(routes, health)
}

fn check_civic_id(field: &str, id: &str) -> Result<(), ApiError> {
    if !valid_civic_id(id) {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{field} must be a civic id: 3-64 characters of [a-z0-9_.-] starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

fn open_enrolment(c: &mut Conn) -> Result<bool, ApiError> {
    Ok(mobius_ledger::db::setting(c, OPEN_ENROLMENT_SETTING)?.is_none_or(|v| v == "true"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolBody {
    civic_id: String,
    public_key: String,
    #[serde(default)]
    display_name: Option<String>,
}

async fn enrol(
    State(api): State<ShieldApi>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<EnrolBody>,
) -> Result<Response, ApiError> {
    check_civic_id("civic_id", &b.civic_id)?;
    let key = parse_public_key(&b.public_key)?;
    if let Some(d) = &b.display_name {
        if d.trim().is_empty()
            || d.chars().count() > citizens::MAX_DISPLAY_NAME_CHARS
            || d.chars().any(char::is_control)
        {
            return Err(ApiError::invalid_field(
                "display_name",
                format!(
                    "display_name must be 1-{} printable characters",
                    citizens::MAX_DISPLAY_NAME_CHARS
                ),
            ));
        }
        if crate::screen::screen(d).verdict != crate::screen::Verdict::Allow {
            return Err(ApiError::invalid_field(
                "display_name",
                "display_name was refused by content screening",
            ));
        }
    }
    if !api.read(open_enrolment).await? {
        let p = api.auth.authenticate_headers(&headers).await?;
        if p.role != Role::Operator {
            return Err(ApiError::forbidden(
                "open enrolment is switched off: an operator must enrol citizens",
            ));
        }
    }
    let now = now_ms();
    let (manifest, hash) =
        citizens::manifest(&b.civic_id, &key, b.display_name.as_deref(), 1, now, None);
    let (id, m2, name, key_bytes) = (
        b.civic_id.clone(),
        manifest.clone(),
        b.display_name.clone(),
        *key.as_bytes(),
    );
    api.ledger
        .attest(
            "shield.citizen_enrolled",
            Some(&b.civic_id),
            SOURCE,
            json!({"civic_id": b.civic_id, "version": 1, "manifest_hash": hex::encode(hash), "public_key": manifest["public_key"]}),
            Some(Box::new(move |c: &mut Conn, _: &[_]| {
                let inserted = c.execute(
                    "INSERT INTO citizens (civic_id, public_key, display_name, roles, created_at_ms, version, manifest_hash) \
                     VALUES ($1, $2, $3, '[\"citizen\"]', $4, 1, $5) ON CONFLICT (civic_id) DO NOTHING",
                    &[Param::Text(&id), Param::Bytes(&key_bytes), name.as_deref().into(), Param::Int(now), Param::Bytes(&hash)],
                )?;
                if inserted == 0 {
                    return Err(ApiError::conflict(format!("the civic id {id} is already enrolled")).with_details(json!({"field": "civic_id"})));
                }
                citizens::insert_manifest(c, &id, 1, &m2, &hash, now)?;
                Ok(())
            })),
        )
        .await?;
    let mut body = manifest;
    body["manifest_hash"] = json!(hex::encode(hash));
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn citizen(
    State(api): State<ShieldApi>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_civic_id("id", &id)?;
    let c = api.read(move |c| Ok(citizens::load(c, &id)?)).await?;
    c.map(|c| axum::Json(c.public_json()).into_response())
        .ok_or_else(|| ApiError::not_found("no such citizen"))
}

async fn manifest_history(
    State(api): State<ShieldApi>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_civic_id("id", &id)?;
    let items = api.read(move |c| Ok(citizens::manifests(c, &id)?)).await?;
    if items.is_empty() {
        return Err(ApiError::not_found("no such citizen"));
    }
    Ok(axum::Json(json!({"items": items, "next_cursor": null})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    public_key: String,
    signature: String,
}

/// Key rotation: authenticated by a signature of the *current* key over
/// [`rotation_message`]. Appends a manifest version and revokes the citizen's tokens.
async fn rotate_key(
    State(api): State<ShieldApi>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<RotateBody>,
) -> Result<Response, ApiError> {
    check_civic_id("id", &id)?;
    let new_key = parse_public_key(&b.public_key)?;
    let sig = parse_signature(&b.signature)?;
    let id2 = id.clone();
    let current = api
        .read(move |c| Ok(citizens::load(c, &id2)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such citizen"))?;
    let version = current.version + 1;
    let new_b64 = base64::engine::general_purpose::STANDARD.encode(new_key.as_bytes());
    let old_key =
        ed25519_dalek::VerifyingKey::from_bytes(&current.public_key).map_err(ApiError::internal)?;
    if old_key
        .verify_strict(rotation_message(&id, version, &new_b64).as_bytes(), &sig)
        .is_err()
    {
        return Err(ApiError::unauthenticated(
            "the rotation must be signed by the citizen's current key",
        ));
    }
    let now = now_ms();
    let (manifest, hash) = citizens::manifest(
        &id,
        &new_key,
        current.display_name.as_deref(),
        version,
        now,
        Some(&current.manifest_hash),
    );
    let (id3, m2, key_bytes, expected) = (
        id.clone(),
        manifest.clone(),
        *new_key.as_bytes(),
        current.version,
    );
    api.ledger
        .attest(
            "shield.key_rotated",
            Some(&id),
            SOURCE,
            json!({"civic_id": id, "version": version, "manifest_hash": hex::encode(hash), "public_key": new_b64}),
            Some(Box::new(move |c: &mut Conn, _: &[_]| {
                // Optimistic check: a concurrent rotation wins once.
                let n = c.execute(
                    "UPDATE citizens SET public_key = $2, version = $3, manifest_hash = $4 WHERE civic_id = $1 AND version = $5",
                    &[Param::Text(&id3), Param::Bytes(&key_bytes), Param::Int(version), Param::Bytes(&hash), Param::Int(expected)],
                )?;
                if n == 0 {
                    return Err(ApiError::conflict("the key was rotated concurrently; fetch the citizen and retry"));
                }
                citizens::insert_manifest(c, &id3, version, &m2, &hash, now)?;
                c.execute(
                    "UPDATE auth_tokens SET revoked_at_ms = $2 WHERE subject = $1 AND role = 'citizen' AND revoked_at_ms IS NULL",
                    &[Param::Text(&id3), Param::Int(now)],
                )?;
                Ok(())
            })),
        )
        .await?;
    api.auth.clear_cache();
    let mut body = manifest;
    body["manifest_hash"] = json!(hex::encode(hash));
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeBody {
    civic_id: String,
}

async fn challenge(
    State(api): State<ShieldApi>,
    JsonBody(b): JsonBody<ChallengeBody>,
) -> Result<Response, ApiError> {
    check_civic_id("civic_id", &b.civic_id)?;
    let nonce =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mobius_http::random_bytes::<32>());
    let now = now_ms();
    let expires = now + NONCE_TTL_MS;
    let (id, n) = (b.civic_id.clone(), nonce.clone());
    api.read(move |c| {
        if citizens::load(c, &id)?.is_none() {
            return Err(ApiError::not_found(
                "no such citizen: enrol first (POST /v1/citizens)",
            ));
        }
        c.transaction(|c| {
            c.execute(
                "DELETE FROM auth_nonces WHERE expires_at_ms < $1",
                &[Param::Int(now)],
            )?;
            c.execute(
                "INSERT INTO auth_nonces (nonce, civic_id, expires_at_ms) VALUES ($1, $2, $3)",
                &[Param::Text(&n), Param::Text(&id), Param::Int(expires)],
            )?;
            Ok::<_, ApiError>(())
        })
    })
    .await?;
    Ok(axum::Json(json!({"civic_id": b.civic_id, "nonce": nonce, "expires_at": rfc3339_ms(expires), "sign": "the nonce's UTF-8 bytes with the citizen's Ed25519 key"})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    civic_id: String,
    nonce: String,
    signature: String,
}

async fn login(
    State(api): State<ShieldApi>,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    check_civic_id("civic_id", &b.civic_id)?;
    if b.nonce.is_empty() || b.nonce.len() > 128 {
        return Err(ApiError::invalid_field(
            "nonce",
            "nonce must be the value POST /v1/auth/challenge returned",
        ));
    }
    let sig = parse_signature(&b.signature)?;
    let now = now_ms();
    let (id, nonce) = (b.civic_id.clone(), b.nonce.clone());
    let token = api
        .read(move |c| {
            c.transaction(|c| {
                let fail = |why: &str| {
                    ApiError::unauthenticated(format!(
                        "login refused: {why}; request a new challenge"
                    ))
                };
                // Single use: the first redemption marks the nonce, whatever the outcome.
                let row = c.query_opt(
                    "SELECT civic_id, expires_at_ms, used_at_ms FROM auth_nonces WHERE nonce = $1",
                    &[Param::Text(&nonce)],
                )?;
                let Some(row) = row else {
                    return Err(fail("unknown nonce"));
                };
                if row.opt_i64(2)?.is_some() {
                    return Err(fail("this nonce was already used"));
                }
                c.execute(
                    "UPDATE auth_nonces SET used_at_ms = $2 WHERE nonce = $1",
                    &[Param::Text(&nonce), Param::Int(now)],
                )?;
                if row.text(0)? != id {
                    return Err(fail("the nonce was issued for another citizen"));
                }
                if row.i64(1)? < now {
                    return Err(fail("the nonce expired"));
                }
                let citizen = citizens::load(c, &id)?.ok_or_else(|| fail("no such citizen"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&citizen.public_key)
                    .map_err(ApiError::internal)?;
                if key.verify_strict(nonce.as_bytes(), &sig).is_err() {
                    return Err(fail("the signature does not verify with the citizen's key"));
                }
                Ok(auth::create_token(
                    c,
                    Role::Citizen,
                    &id,
                    Some(CITIZEN_TOKEN_TTL_S),
                    now,
                )?)
            })
        })
        .await;
    match token {
        Ok(t) => Ok((StatusCode::CREATED, axum::Json(token_json(&t))).into_response()),
        Err(e) => {
            // The nonce marking must persist even though the login failed: do it again
            // outside the rolled-back transaction.
            let (pool, n) = (api.pool.clone(), b.nonce.clone());
            let _ = tokio::task::spawn_blocking(move || {
                pool.with(|c| c.execute("UPDATE auth_nonces SET used_at_ms = $2 WHERE nonce = $1 AND used_at_ms IS NULL", &[Param::Text(&n), Param::Int(now)]))
            })
            .await;
            api.events.record(
                "login_failed",
                Some(&b.civic_id),
                None,
                Some("/v1/auth/token"),
                json!({"reason": e.message}),
            );
            Err(e)
        }
    }
}

fn token_json(t: &auth::NewToken) -> Value {
    json!({"token": t.token, "id": t.id, "role": t.role, "subject": t.subject, "expires_at": t.expires_at_ms.map(rfc3339_ms)})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintBody {
    subject: String,
    role: String,
    #[serde(default)]
    ttl_s: Option<i64>,
}

async fn mint(
    State(api): State<ShieldApi>,
    a: Auth,
    JsonBody(b): JsonBody<MintBody>,
) -> Result<Response, ApiError> {
    let op = a.require_operator()?.clone();
    let role = match b.role.as_str() {
        "service" => Role::Service,
        "sentinel" => Role::Sentinel,
        "operator" => Role::Operator,
        _ => {
            return Err(ApiError::invalid_field(
                "role",
                "operators mint service, sentinel or operator tokens (citizens log in with their key)",
            ));
        }
    };
    if b.subject.is_empty()
        || b.subject.len() > 64
        || !b
            .subject
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.-".contains(&c))
    {
        return Err(ApiError::invalid_field(
            "subject",
            "subject must be 1-64 characters of [a-z0-9_.-]",
        ));
    }
    let ttl = b.ttl_s.unwrap_or(24 * 3600);
    if !(1..=MAX_TOKEN_TTL_S).contains(&ttl) {
        return Err(ApiError::invalid_field(
            "ttl_s",
            format!("ttl_s must be 1 to {MAX_TOKEN_TTL_S}"),
        ));
    }
    let subject = b.subject.clone();
    let t = api
        .read(move |c| Ok(auth::create_token(c, role, &subject, Some(ttl), now_ms())?))
        .await?;
    api.events.record(
        "token_minted",
        Some(&op.source()),
        None,
        Some("/v1/tokens"),
        json!({"token_id": t.id, "role": role.as_str(), "subject": t.subject}),
    );
    Ok((StatusCode::CREATED, axum::Json(token_json(&t))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectBody {
    token: String,
}

async fn introspect(
    State(api): State<ShieldApi>,
    a: Auth,
    JsonBody(b): JsonBody<IntrospectBody>,
) -> Result<Response, ApiError> {
    a.require_role(&[Role::Operator, Role::Service])?;
    if b.token.len() > 256 {
        return Ok(axum::Json(json!({"active": false})).into_response());
    }
    let found = api
        .read(move |c| Ok(auth::lookup_token(c, &b.token, now_ms())?))
        .await?;
    Ok(axum::Json(match found {
        Some((p, expires)) => json!({"active": true, "id": p.token_id, "subject": p.subject, "role": p.role, "expires_at": expires.map(rfc3339_ms)}),
        None => json!({"active": false}),
    })
    .into_response())
}

async fn revoke(
    State(api): State<ShieldApi>,
    a: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::invalid_field("id", "not a token id"));
    }
    let p = a.0.clone();
    let id2 = id.clone();
    let info = api
        .read(move |c| Ok(auth::token_info(c, &id2)?))
        .await?
        .ok_or_else(|| ApiError::not_found("no such token"))?;
    let owner = info.role == p.role.as_str() && info.subject == p.subject;
    if !owner && p.role != Role::Operator {
        return Err(ApiError::forbidden(
            "only the token's owner or an operator may revoke it",
        ));
    }
    let id3 = id.clone();
    let revoked = api
        .read(move |c| Ok(auth::revoke_token(c, &id3, now_ms())?))
        .await?;
    api.auth.clear_cache();
    api.events.record(
        "token_revoked",
        Some(&p.source()),
        None,
        Some("/v1/tokens/{id}"),
        json!({"token_id": id, "already_revoked": !revoked}),
    );
    Ok(axum::Json(json!({"id": id, "revoked": true})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenBody {
    content: String,
    #[serde(default)]
    #[allow(dead_code)]
    context: Option<String>,
}

async fn screen(
    State(api): State<ShieldApi>,
    a: Auth,
    JsonBody(b): JsonBody<ScreenBody>,
) -> Result<Response, ApiError> {
    if b.content.len() > crate::screen::MAX_CONTENT_BYTES {
        return Err(ApiError::payload_too_large(
            crate::screen::MAX_CONTENT_BYTES,
        ));
    }
    let result = crate::screen::screen(&b.content);
    if result.verdict == crate::screen::Verdict::Block {
        api.events.record(
            "screen_block",
            Some(&a.0.source()),
            None,
            Some("/v1/screen"),
            json!({"reasons": result.reasons}),
        );
    }
    Ok(axum::Json(result).into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    limit: Option<String>,
    before_id: Option<String>,
    kind: Option<String>,
}

async fn events(
    State(api): State<ShieldApi>,
    a: Auth,
    QueryParams(q): QueryParams<EventsQuery>,
) -> Result<Response, ApiError> {
    a.require_operator()?;
    let (limit, before) =
        mobius_http::json::page_before(q.limit.as_deref(), q.before_id.as_deref())?;
    let items = api.events.list(limit, before, q.kind).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i["id"].to_string()))
        .flatten();
    Ok(axum::Json(json!({"items": items, "next_cursor": next})).into_response())
}

async fn settings(State(api): State<ShieldApi>) -> Result<Response, ApiError> {
    let open = api.read(open_enrolment).await?;
    Ok(axum::Json(json!({"open_enrolment": open})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    open_enrolment: bool,
}

async fn put_settings(
    State(api): State<ShieldApi>,
    a: Auth,
    JsonBody(b): JsonBody<SettingsBody>,
) -> Result<Response, ApiError> {
    let op = a.require_operator()?.clone();
    let value = b.open_enrolment.to_string();
    api.ledger
        .attest(
            "shield.settings_changed",
            None,
            &op.source(),
            json!({"open_enrolment": b.open_enrolment}),
            Some(Box::new(move |c: &mut Conn, _: &[_]| {
                mobius_ledger::db::set_setting(c, OPEN_ENROLMENT_SETTING, &value)?;
                Ok(())
            })),
        )
        .await?;
    Ok(axum::Json(json!({"open_enrolment": b.open_enrolment})).into_response())
}

/// `mobius_active_citizens`: enrolled citizens with a live token (the shield's measure of
/// activity), refreshed on scrape from the store.
pub fn active_citizens(c: &mut Conn, now: i64) -> Result<i64, mobius_store::StoreError> {
    Ok(c
        .query_opt(
            "SELECT CAST(COUNT(DISTINCT subject) AS BIGINT) FROM auth_tokens WHERE role = 'citizen' AND revoked_at_ms IS NULL AND (expires_at_ms IS NULL OR expires_at_ms > $1)",
            &[Param::Int(now)],
        )?
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}
