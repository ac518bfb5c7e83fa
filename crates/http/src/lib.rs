//! Shared HTTP scaffolding used by every Mobius service.
//!
//! One place for each concern: errors map to the SPEC §2 JSON format in [`error`]; request
//! bodies are parsed strictly by [`json::JsonBody`]; [`observe`] gives every request an id, a
//! JSON log line and per-route metrics; [`health`] serves `/livez`, `/readyz`, `/healthz` and
//! `/metrics`; [`auth`] turns a bearer token into a [`auth::Principal`].

pub mod auth;
pub mod error;
pub mod health;
pub mod json;
pub mod log;
pub mod metrics;
pub mod observe;
pub mod ratelimit;

pub use error::ApiError;
pub use json::{JsonBody, QueryParams};

use std::future::Future;

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS RNG failing is unrecoverable for a security-sensitive service.
    getrandom::fill(&mut b).expect("operating system random number generator failed");
    b
}

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
