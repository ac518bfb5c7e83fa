//! The ops API under `/api/ops/` on the portal port (SPEC §9.1, §9.2): alerts and their
//! history and acknowledgement, automation halt and resume, incidents, and the public status
//! page data. Writes need an operator token; the status page and incidents are public
//! (incidents are documented transparently).

use crate::incidents::{NewIncident, ResolveBody, TextBody};
use crate::monitor::Monitor;
use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use mobius_core::time::rfc3339_ms;
use mobius_http::auth::{Auth, Authenticator};
use mobius_http::health::Health;
use mobius_http::{ApiError, JsonBody, QueryParams};
use mobius_store::{Param, Pool};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub const SERVICE: &str = "portal";

#[derive(Clone)]
pub struct PortalApi {
    pub monitor: Arc<Monitor>,
    pub auth: Arc<Authenticator>,
    pub pool: Pool,
}

impl FromRef<PortalApi> for Arc<Authenticator> {
    fn from_ref(s: &PortalApi) -> Self {
        s.auth.clone()
    }
}

pub fn router(api: PortalApi, health: Arc<Health>) -> Router {
    let routes = Router::new()
        .route("/api/ops/status", get(status))
        .route("/api/ops/alerts", get(alerts))
        .route("/api/ops/alerts/history", get(history))
        .route("/api/ops/alerts/{id}/ack", post(ack))
        .route("/api/ops/automation", get(automation))
        .route("/api/ops/automation/halt", post(halt))
        .route("/api/ops/automation/resume", post(resume))
        .route(
            "/api/ops/incidents",
            post(open_incident).get(list_incidents),
        )
        .route("/api/ops/incidents/{id}", get(get_incident))
        .route("/api/ops/incidents/{id}/updates", post(update_incident))
        .route("/api/ops/incidents/{id}/resolve", post(resolve_incident))
        .route("/api/ops/incidents/{id}/postmortem", put(postmortem))
        .with_state(api);
    mobius_http::health::service_router(routes, health)
}

async fn status(State(api): State<PortalApi>) -> Result<Response, ApiError> {
    let snap = api.monitor.snapshot();
    let services: Vec<Value> = snap
        .as_ref()
        .map(|s| {
            s.services
                .iter()
                .map(|h| {
                    json!({"name": h.name, "status": if h.up { "up" } else { "down" }, "latency_ms": h.latency_ms,
                           "checked_at": rfc3339_ms(h.checked_at_ms), "availability_5m": h.availability})
                })
                .collect()
        })
        .unwrap_or_default();
    let open = api.monitor.incidents.list(Some("open")).await?;
    Ok(axum::Json(json!({
        "services": services,
        "gi": snap.as_ref().and_then(|s| s.gi),
        "mii": snap.as_ref().and_then(|s| s.mii),
        "automation": api.monitor.automation.state().to_json(),
        "open_incidents": open,
        "sampled_at": snap.as_ref().map(|s| rfc3339_ms(s.at_ms)),
    }))
    .into_response())
}

async fn alerts(State(api): State<PortalApi>, auth: Auth) -> Result<Response, ApiError> {
    auth.require_operator()?;
    let items: Vec<Value> = api.monitor.active_alerts().iter().map(alert_json).collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

fn alert_json(a: &crate::alerts::Alert) -> Value {
    json!({"id": a.id, "rule": a.rule, "severity": a.severity, "state": a.state, "since": rfc3339_ms(a.since_ms),
           "value": a.value, "labels": a.labels, "acked_by": a.acked_by, "summary": a.summary})
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<String>,
    before_id: Option<String>,
}

async fn history(
    State(api): State<PortalApi>,
    auth: Auth,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Result<Response, ApiError> {
    auth.require_operator()?;
    let (limit, before) =
        mobius_http::json::page_before(q.limit.as_deref(), q.before_id.as_deref())?;
    let pool = api.pool.clone();
    let rows = tokio::task::spawn_blocking(move || {
        pool.with(|c| {
            c.query(
                "SELECT id, alert_id, rule, severity, from_state, to_state, at_ms, value, labels, summary, acked_by \
                 FROM alert_history WHERE id < $1 ORDER BY id DESC LIMIT $2",
                &[Param::Int(before), Param::Int(limit + 1)],
            )
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let mut items = Vec::new();
    for r in rows.iter().take(limit as usize) {
        items.push(json!({
            "seq": r.i64(0)?, "id": r.text(1)?, "rule": r.text(2)?, "severity": r.text(3)?, "from": r.opt_text(4)?,
            "state": r.text(5)?, "at": rfc3339_ms(r.i64(6)?), "value": r.f64(7)?,
            "labels": serde_json::from_str::<Value>(r.text(8)?).unwrap_or(json!({})), "summary": r.text(9)?,
            "acked_by": r.opt_text(10)?,
        }));
    }
    let next = (rows.len() as i64 > limit)
        .then(|| items.last().map(|i| i["seq"].to_string()))
        .flatten();
    Ok(axum::Json(json!({"items": items, "next_cursor": next})).into_response())
}

async fn ack(
    State(api): State<PortalApi>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = auth.require_operator()?;
    match api.monitor.ack_alert(&id, &p.source()) {
        Some(a) => Ok(axum::Json(alert_json(&a)).into_response()),
        None => Err(ApiError::not_found("no active alert with this id")),
    }
}

async fn automation(State(api): State<PortalApi>) -> Response {
    axum::Json(api.monitor.automation.state().to_json()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HaltBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    reason: String,
    #[serde(default)]
    force: bool,
}

async fn halt(
    State(api): State<PortalApi>,
    auth: Auth,
    JsonBody(b): JsonBody<HaltBody>,
) -> Result<Response, ApiError> {
    let p = auth.require_operator()?;
    let s = api
        .monitor
        .automation
        .halt(&b.reason, &p.source(), &p.source())
        .await?;
    Ok(axum::Json(s.to_json()).into_response())
}

async fn resume(
    State(api): State<PortalApi>,
    auth: Auth,
    JsonBody(b): JsonBody<ResumeBody>,
) -> Result<Response, ApiError> {
    let p = auth.require_operator()?;
    let gi = api.monitor.current_gi();
    let s = api
        .monitor
        .automation
        .resume(&b.reason, &p.source(), &p.source(), b.force, gi)
        .await?;
    Ok(axum::Json(s.to_json()).into_response())
}

async fn open_incident(
    State(api): State<PortalApi>,
    auth: Auth,
    JsonBody(b): JsonBody<NewIncident>,
) -> Result<Response, ApiError> {
    let p = auth.require_operator()?;
    let v = api
        .monitor
        .incidents
        .open(b, &p.source(), &p.source(), None)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn list_incidents(
    State(api): State<PortalApi>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Response, ApiError> {
    let items = api.monitor.incidents.list(q.status.as_deref()).await?;
    Ok(axum::Json(json!({"items": items, "next_cursor": null})).into_response())
}

async fn get_incident(
    State(api): State<PortalApi>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(api.monitor.incidents.get(&id).await?).into_response())
}

async fn update_incident(
    State(api): State<PortalApi>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TextBody>,
) -> Result<Response, ApiError> {
    let p = auth.require_operator()?;
    Ok(axum::Json(
        api.monitor
            .incidents
            .update(&id, b.text, &p.source(), &p.source())
            .await?,
    )
    .into_response())
}

async fn resolve_incident(
    State(api): State<PortalApi>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ResolveBody>,
) -> Result<Response, ApiError> {
    let p = auth.require_operator()?;
    Ok(axum::Json(
        api.monitor
            .incidents
            .resolve(&id, b.summary, &p.source(), &p.source())
            .await?,
    )
    .into_response())
}

async fn postmortem(
    State(api): State<PortalApi>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TextBody>,
) -> Result<Response, ApiError> {
    let p = auth.require_operator()?;
    Ok(axum::Json(
        api.monitor
            .incidents
            .postmortem(&id, b.text, &p.source(), &p.source())
            .await?,
    )
    .into_response())
}
