//! The per-request middleware: request id (`x-request-id`, accepted from the client when it
//! is sane, generated otherwise), one JSON log line, and per-route metrics. Health and
//! metrics routes are left out of the request metrics (SPEC §9) and logged only on failure.

use crate::health::Health;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The id of the current request, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Routes that are probed constantly and so stay out of request metrics and access logs.
pub fn is_ops_route(route: &str) -> bool {
    matches!(
        route,
        "/livez" | "/readyz" | "/healthz" | "/metrics" | "/api/integrity-check"
    )
}

fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| u32::from_le_bytes(crate::random_bytes::<4>()));
    format!(
        "{prefix:08x}{:016x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn acceptable_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    .then(|| s.to_string())
}

pub async fn observe(State(health): State<Arc<Health>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(acceptable_request_id)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());

    let mut resp = next.run(req).await;

    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    let route = route.unwrap_or_else(|| "unmatched".to_string());
    if matches!(status, 401 | 403 | 429)
        && let Some(hook) = health.security_hook()
    {
        {
            let code = resp
                .extensions()
                .get::<crate::error::ErrorCode>()
                .map_or("", |c| c.0);
            hook(crate::health::SecurityNotice {
                service: health.service.clone(),
                status,
                code,
                route: route.clone(),
                method: method.clone(),
                ip: peer,
                request_id: request_id.clone(),
            });
        }
    }
    let ops = is_ops_route(&route);
    if !ops {
        health
            .metrics
            .observe_request(&route, &method, status, elapsed);
        if resp
            .extensions()
            .get::<crate::error::PolicyRefusal>()
            .is_some()
        {
            health
                .metrics
                .observe_policy_refusal(&route, &method, status);
        }
    }
    if !ops || status >= 400 {
        let level = if status >= 500 {
            crate::log::Level::Error
        } else {
            crate::log::Level::Info
        };
        crate::log::log(
            level,
            "request",
            &[
                ("service", json!(health.service)),
                ("route", json!(route)),
                ("method", json!(method)),
                ("status", json!(status)),
                (
                    "duration_ms",
                    json!((elapsed.as_secs_f64() * 1e6).round() / 1e3),
                ),
                ("request_id", json!(request_id)),
            ],
        );
    }
    resp
}
