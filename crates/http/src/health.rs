//! Health endpoints every service exposes (SPEC §9): `/livez` (process alive), `/readyz`
//! (store reachable, migrations applied), `/healthz` (cached checks; 503 only when the
//! service cannot serve) and `/metrics`. All of them read cached state, so they stay fast
//! under load; a background probe refreshes the store check.

use crate::metrics::{CONTENT_TYPE, Metrics};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mobius_core::time::{now_ms, rfc3339_ms};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    pub checked_at: String,
    /// A failing check with `critical` set means the service cannot serve (→ 503).
    #[serde(skip)]
    pub critical: bool,
}

/// The automation guard (SPEC §9.1): automated operations call `check` first and get
/// 503 `automation_halted` while automation is halted. Implemented by the ops crate; services
/// hold it as `Arc<dyn Guard>` so they need not depend on ops.
pub trait Guard: Send + Sync {
    fn check(&self) -> Result<(), crate::ApiError>;
}

/// GI for `/healthz` and the `/api/integrity-check` body, supplied by the integrity monitor
/// (SPEC §9). Implementations read cached state only.
pub trait IntegritySource: Send + Sync {
    /// Fields merged into `/healthz`: `gi`, `gi_threshold`, `gi_ok`.
    fn healthz_fields(&self) -> serde_json::Map<String, Value>;
    /// The integrity-check body for `service`, and whether GI is at or above the threshold.
    fn integrity_check(&self, service: &str) -> (bool, Value);
}

/// What the request middleware reports for every 401, 403 and 429 response, so the Citizen
/// Shield can keep its security event log for all services.
#[derive(Debug, Clone)]
pub struct SecurityNotice {
    pub service: String,
    pub status: u16,
    pub code: &'static str,
    pub route: String,
    pub method: String,
    pub ip: Option<std::net::IpAddr>,
    pub request_id: String,
}

pub type SecurityHook = Arc<dyn Fn(SecurityNotice) + Send + Sync>;

/// Cached health state of one service.
pub struct Health {
    security_hook: RwLock<Option<SecurityHook>>,
    rate_limit: RwLock<Option<crate::ratelimit::RateLimitLayerState>>,
    integrity: RwLock<Option<Arc<dyn IntegritySource>>>,
    pub service: String,
    pub metrics: Arc<Metrics>,
    started: Instant,
    ready: AtomicBool,
    checks: RwLock<BTreeMap<String, Check>>,
}

impl Health {
    pub fn new(service: &str) -> Arc<Self> {
        Arc::new(Health {
            service: service.to_string(),
            metrics: Metrics::new(service),
            started: Instant::now(),
            ready: AtomicBool::new(false),
            checks: RwLock::default(),
            integrity: RwLock::default(),
            security_hook: RwLock::default(),
            rate_limit: RwLock::default(),
        })
    }

    /// Rate-limits this service's routes (set before building the router).
    pub fn set_rate_limit(&self, state: crate::ratelimit::RateLimitLayerState) {
        *self.rate_limit.write().unwrap_or_else(|p| p.into_inner()) = Some(state);
    }

    /// Receives a notice for every 401, 403 and 429 this service answers.
    pub fn set_security_hook(&self, hook: SecurityHook) {
        *self
            .security_hook
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    pub fn security_hook(&self) -> Option<SecurityHook> {
        self.security_hook
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Attaches the integrity monitor's state: `/healthz` then carries GI and
    /// `/api/integrity-check` answers.
    pub fn set_integrity(&self, source: Arc<dyn IntegritySource>) {
        *self.integrity.write().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    fn integrity(&self) -> Option<Arc<dyn IntegritySource>> {
        self.integrity
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn set_check(&self, name: &str, check: Check) {
        self.checks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), check);
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn snapshot(&self) -> (CheckStatus, bool, BTreeMap<String, Check>) {
        let checks = self
            .checks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut status = CheckStatus::Pass;
        let mut can_serve = true;
        for c in checks.values() {
            match c.status {
                CheckStatus::Fail => {
                    status = CheckStatus::Fail;
                    can_serve &= !c.critical;
                }
                CheckStatus::Warn if status == CheckStatus::Pass => status = CheckStatus::Warn,
                _ => {}
            }
        }
        (status, can_serve, checks)
    }

    /// The `/healthz` body and whether the service can serve.
    pub fn healthz(&self) -> (bool, Value) {
        let (mut status, can_serve, checks) = self.snapshot();
        let gi_fields = self.integrity().map(|i| i.healthz_fields());
        if status == CheckStatus::Pass
            && gi_fields
                .as_ref()
                .is_some_and(|f| f.get("gi_ok") != Some(&Value::Bool(true)))
        {
            status = CheckStatus::Warn;
        }
        let mut body = json!({
            "status": status,
            "service": self.service,
            "version": VERSION,
            "uptime_s": self.started.elapsed().as_secs(),
            "checks": checks,
            "timestamp": rfc3339_ms(now_ms()),
        });
        if let (Some(fields), Some(obj)) = (gi_fields, body.as_object_mut()) {
            obj.extend(fields);
        }
        (can_serve, body)
    }
}

async fn livez() -> Response {
    axum::Json(json!({"status": "pass"})).into_response()
}

async fn readyz(State(h): State<Arc<Health>>) -> Response {
    let (_, can_serve, checks) = h.snapshot();
    let ready = h.ready.load(Ordering::Acquire) && can_serve;
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if ready { "pass" } else { "fail" }, "service": h.service, "checks": checks});
    (code, axum::Json(body)).into_response()
}

async fn healthz(State(h): State<Arc<Health>>) -> Response {
    let (can_serve, body) = h.healthz();
    let code = if can_serve {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn integrity_check(State(h): State<Arc<Health>>) -> Response {
    match h.integrity() {
        Some(source) => {
            let (ok, body) = source.integrity_check(&h.service);
            let code = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, axum::Json(body)).into_response()
        }
        None => {
            crate::ApiError::unavailable("the integrity monitor is not running in this deployment")
                .into_response()
        }
    }
}

async fn metrics(State(h): State<Arc<Health>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], h.metrics.render()).into_response()
}

/// Finishes a service's router: adds the ops endpoints, JSON 404/405 fallbacks, and the
/// request-id / log / metrics middleware.
pub fn service_router(api: Router, health: Arc<Health>) -> Router {
    let ops = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/integrity-check", get(integrity_check))
        .with_state(health.clone());
    let mut router = api
        .merge(ops)
        .fallback(crate::error::not_found_fallback)
        .method_not_allowed_fallback(crate::error::method_not_allowed_fallback);
    // Inside the observing layer, so 429s are counted, logged and reported as security events.
    let rate_limit = health
        .rate_limit
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(rl) = rate_limit {
        router = router.layer(axum::middleware::from_fn_with_state(
            rl,
            crate::ratelimit::rate_limit,
        ));
    }
    router.layer(axum::middleware::from_fn_with_state(
        health,
        crate::observe::observe,
    ))
}

/// Probes the store every `interval` and records the `store` check (critical: a service
/// whose store is unreachable cannot serve).
pub fn spawn_store_probe(health: Arc<Health>, pool: mobius_store::Pool, interval: Duration) {
    tokio::spawn(async move {
        loop {
            let start = Instant::now();
            let p = pool.clone();
            let result = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::task::spawn_blocking(move || p.with(|c| c.ping())),
            )
            .await;
            let latency_ms = Some((start.elapsed().as_secs_f64() * 1e6).round() / 1e3);
            let (status, message) = match result {
                Ok(Ok(Ok(()))) => (CheckStatus::Pass, None),
                Ok(Ok(Err(e))) => (CheckStatus::Fail, Some(format!("store unreachable: {e}"))),
                Ok(Err(e)) => (CheckStatus::Fail, Some(format!("store probe failed: {e}"))),
                Err(_) => (
                    CheckStatus::Fail,
                    Some("store probe timed out after 2 s".to_string()),
                ),
            };
            health.set_check(
                "store",
                Check {
                    status,
                    message,
                    latency_ms,
                    checked_at: rfc3339_ms(now_ms()),
                    critical: true,
                },
            );
            tokio::time::sleep(interval).await;
        }
    });
}
