//! Rate limiting per token and per client IP (SPEC §7): GCRA per `(subject, route class)`,
//! bounded memory, `429 rate_limited` with `Retry-After`, counted in metrics, and a hook so the
//! service can write a security event.
//!
//! # Algorithm
//!
//! The Generic Cell Rate Algorithm keeps one instant per key, the *theoretical arrival time*
//! (TAT). With emission interval `T = 1 / per_second` and tolerance `τ = (burst − 1) · T`, a
//! request at `now` conforms when `max(TAT, now) − now ≤ τ`; it then moves the TAT to
//! `max(TAT, now) + T`. A fresh key therefore admits `burst` requests at once and then exactly
//! one every `T`; a refused request is told to retry after `max(TAT, now) − now − τ`, the exact
//! moment it would conform. A key whose TAT is in the past is *at rest*: it carries no state, so
//! forgetting it is equivalent to keeping it.
//!
//! # Which limit applies
//!
//! | class   | `Subject::Token`          | `Subject::Ip` (anonymous)    |
//! |---------|---------------------------|------------------------------|
//! | `Read`  | `read`                    | `per_ip_anonymous`           |
//! | `Write` | `write`                   | `per_ip_anonymous`           |
//! | `Auth`  | `auth`                    | `auth`                       |
//! | `Ops`   | never limited, never tracked                             |
//!
//! Each class has its own bucket: a client exhausting its write budget can still read.
//! IPv6 clients are keyed by their /64 prefix (one host usually owns a whole /64 and could
//! otherwise mint keys by rotating addresses); IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`,
//! as seen on dual-stack sockets) are keyed as the IPv4 address they carry.
//!
//! # Bounded memory, and what happens when it is full
//!
//! Keys live in [`SHARDS`] mutex-protected maps whose capacities sum to exactly `max_keys`. A
//! shard that is full first evicts every key at rest (skipped cheaply while the shard's
//! earliest TAT is still in the future, so a flood of live keys costs O(1) per request, not a
//! scan). Filling the table at all is hard: a key stays live only for about `burst / per_second`
//! seconds after its last request (2 s with the defaults), so keeping 100 000 keys live takes
//! tens of thousands of requests per second sustained from distinct subjects.
//!
//! If a shard is still full, the new key is not tracked and the request is decided by class:
//!
//! * `Auth` fails **closed** (429, retry when the shard's earliest key comes to rest). These
//!   routes guard credentials; failing open would let an attacker switch off brute-force
//!   protection simply by flooding the table first.
//! * `Read` and `Write` fail **open**. Refusing would let the same flood deny service to every
//!   new legitimate client; letting them through costs little because writes still need a
//!   valid token (which can only be obtained through the fail-closed `Auth` routes) and keys
//!   already tracked keep being limited.
//!
//! Either way the event is counted in `mobius_rate_limit_untracked_total`.
//!
//! # Wiring
//!
//! ```ignore
//! let limiter = RateLimiter::new(RateLimitConfig::default());
//! let svc = health.metrics.service_label();
//! let l = limiter.clone();
//! health.metrics.add_collector(Box::new(move |out| l.render_metrics(out, &svc)));
//! let state = RateLimitLayerState {
//!     limiter,
//!     auth_paths: Arc::new(vec!["POST /v1/citizens", "/v1/auth/challenge", "/v1/auth/token"]),
//!     on_limited: Some(Arc::new(|subject, class, path| { /* write a security event */ })),
//! };
//! // Inside `observe`, so a 429 gets a request id, a log line and request metrics.
//! let app = service_router(api.layer(from_fn_with_state(state, rate_limit)), health);
//! ```
//!
//! `Router::layer` runs after routing, so only the routes of `api` are limited; unknown paths
//! get the (cheap) JSON 404 unlimited.
//!
//! The token key is derived from whatever bearer token is presented, before authentication.
//! A holder of a real token is limited per token; a client that rotates made-up tokens gets a
//! new bucket each time but is refused with 401 by any endpoint that authenticates. Services
//! should therefore charge failed authentications to the peer under
//! `check(&Subject::Ip(peer), RouteClass::Auth)` so guessing is limited per IP.

use crate::error::ApiError;
use crate::metrics::{escape_label, family, single};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Number of independently locked maps the keys are spread over.
pub const SHARDS: usize = 16;

pub const RATE_LIMITED_TOTAL: &str = "mobius_rate_limited_total";
pub const RATE_LIMIT_KEYS: &str = "mobius_rate_limit_keys";
pub const RATE_LIMIT_UNTRACKED_TOTAL: &str = "mobius_rate_limit_untracked_total";

/// Route classes with their own limits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RouteClass {
    /// Everything that is neither a write, an auth route nor an ops route.
    Read,
    /// POST, PUT, PATCH and DELETE.
    Write,
    /// Challenge, token and enrolment routes: brute-force sensitive.
    Auth,
    /// Health and metrics: never limited.
    Ops,
}

impl RouteClass {
    /// The classes that are limited, in metric order.
    pub const LIMITED: [RouteClass; 3] = [RouteClass::Read, RouteClass::Write, RouteClass::Auth];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Read => "read",
            RouteClass::Write => "write",
            RouteClass::Auth => "auth",
            RouteClass::Ops => "ops",
        }
    }

    fn counter_index(self) -> Option<usize> {
        match self {
            RouteClass::Read => Some(0),
            RouteClass::Write => Some(1),
            RouteClass::Auth => Some(2),
            RouteClass::Ops => None,
        }
    }
}

impl std::fmt::Display for RouteClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sustained rate and the number of requests admitted at once from rest.
///
/// `per_second` is clamped to `[0.001, 1e9]` (a non-finite or non-positive value becomes
/// 0.001: the burst, then one request per 1000 s) and `burst` to at least 1, so a bad
/// configuration can never disable limiting or panic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: u32,
}

impl Limit {
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Limit { per_second, burst }
    }

    /// The GCRA parameters: emission interval `T` and tolerance `τ = (burst − 1) · T`.
    fn gcra(self) -> Gcra {
        let rate = if self.per_second.is_finite() && self.per_second > 0.0 {
            self.per_second.clamp(0.001, 1e9)
        } else {
            0.001
        };
        let interval = Duration::from_nanos((1e9 / rate).round() as u64);
        let tolerance = interval * self.burst.max(1).saturating_sub(1);
        Gcra {
            interval,
            tolerance,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval: Duration,
    tolerance: Duration,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Authenticated reads, per token.
    pub read: Limit,
    /// Authenticated writes, per token.
    pub write: Limit,
    /// Auth routes, per token or per client IP.
    pub auth: Limit,
    /// Anonymous reads and writes, keyed by client IP (IPv6 by /64).
    pub per_ip_anonymous: Limit,
    /// Upper bound on tracked keys (bounded memory).
    pub max_keys: usize,
    /// `false` admits everything and tracks nothing.
    pub enabled: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            read: Limit::new(200.0, 400),
            write: Limit::new(100.0, 200),
            auth: Limit::new(5.0, 10),
            per_ip_anonymous: Limit::new(50.0, 100),
            max_keys: 100_000,
            enabled: true,
        }
    }
}

/// Identifies who is limited: a token id (authenticated) or a client IP (anonymous).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Hex of the first 16 bytes of SHA-256 of the bearer token (never the token itself).
    Token(String),
    /// The connection's peer address.
    Ip(IpAddr),
}

impl Subject {
    /// The form used as the limiter's key: IPv6 reduced to its /64, IPv4-mapped IPv6 to IPv4.
    pub fn normalized(&self) -> Subject {
        match self {
            Subject::Ip(ip) => Subject::Ip(ip_key(*ip)),
            Subject::Token(t) => Subject::Token(t.clone()),
        }
    }
}

impl std::fmt::Display for Subject {
    /// `token:<hex>` or `ip:<address>`, for logs and security events.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Token(t) => write!(f, "token:{t}"),
            Subject::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

/// The address a client IP is limited under.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

type Key = (Subject, RouteClass);

struct Shard {
    /// Key → theoretical arrival time.
    tats: HashMap<Key, Instant>,
    /// Capacity of this shard; the capacities of all shards sum to `max_keys`.
    cap: usize,
    /// A lower bound on every TAT in `tats` (`None` when empty). While it is in the future
    /// no key is at rest and a sweep would find nothing, so it is skipped.
    earliest: Option<Instant>,
}

impl Shard {
    /// Drops every key at rest at `now`; recomputes `earliest` exactly.
    fn sweep(&mut self, now: Instant) {
        if self.earliest.is_some_and(|e| e > now) {
            return;
        }
        let mut earliest: Option<Instant> = None;
        self.tats.retain(|_, tat| {
            let keep = *tat > now;
            if keep {
                earliest = Some(earliest.map_or(*tat, |e| e.min(*tat)));
            }
            keep
        });
        self.earliest = earliest;
    }
}

/// A sharded GCRA limiter. `Send + Sync`; share it via the `Arc` that [`RateLimiter::new`]
/// returns.
pub struct RateLimiter {
    config: RateLimitConfig,
    read: Gcra,
    write: Gcra,
    auth: Gcra,
    anonymous: Gcra,
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    /// Refusals per limited class (read, write, auth).
    limited: [AtomicU64; 3],
    /// New keys that could not be tracked because their shard was full, per limited class.
    untracked: [AtomicU64; 3],
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Arc<Self> {
        let base = config.max_keys / SHARDS;
        let extra = config.max_keys % SHARDS;
        let shards = (0..SHARDS)
            .map(|i| {
                Mutex::new(Shard {
                    tats: HashMap::new(),
                    cap: base + usize::from(i < extra),
                    earliest: None,
                })
            })
            .collect();
        Arc::new(RateLimiter {
            read: config.read.gcra(),
            write: config.write.gcra(),
            auth: config.auth.gcra(),
            anonymous: config.per_ip_anonymous.gcra(),
            config,
            shards,
            hasher: RandomState::new(),
            limited: Default::default(),
            untracked: Default::default(),
        })
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    fn gcra_for(&self, subject: &Subject, class: RouteClass) -> Gcra {
        match (class, subject) {
            (RouteClass::Auth, _) => self.auth,
            (_, Subject::Ip(_)) => self.anonymous,
            (RouteClass::Write, Subject::Token(_)) => self.write,
            _ => self.read,
        }
    }

    /// GCRA check: `Ok(())` to proceed, `Err(retry_after)` when over the limit (the time until
    /// the request would conform). `now` is passed in (monotonic) so tests are deterministic;
    /// callers must not move it backwards for a key by more than they are willing to forgive.
    pub fn check_at(
        &self,
        subject: &Subject,
        class: RouteClass,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(ci) = class.counter_index() else {
            return Ok(());
        };
        if !self.config.enabled {
            return Ok(());
        }
        let gcra = self.gcra_for(subject, class);
        let key: Key = (subject.normalized(), class);
        let shard = &self.shards[(self.hasher.hash_one(&key) as usize) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());

        if let Some(tat) = shard.tats.get_mut(&key) {
            let start = (*tat).max(now);
            let ahead = start - now;
            if ahead > gcra.tolerance {
                drop(shard);
                self.limited[ci].fetch_add(1, Ordering::Relaxed);
                return Err(ahead - gcra.tolerance);
            }
            *tat = start.checked_add(gcra.interval).unwrap_or(start);
            return Ok(());
        }

        // A fresh key always conforms (burst ≥ 1); it only needs room.
        if shard.tats.len() >= shard.cap {
            shard.sweep(now);
        }
        if shard.tats.len() < shard.cap {
            let tat = now.checked_add(gcra.interval).unwrap_or(now);
            shard.tats.insert(key, tat);
            shard.earliest = Some(shard.earliest.map_or(tat, |e| e.min(tat)));
            return Ok(());
        }
        // Full of live keys: see the module documentation for why Auth fails closed.
        let free_in = shard
            .earliest
            .map_or(Duration::from_secs(1), |e| e.saturating_duration_since(now))
            .max(Duration::from_millis(1));
        drop(shard);
        self.untracked[ci].fetch_add(1, Ordering::Relaxed);
        if class == RouteClass::Auth {
            self.limited[ci].fetch_add(1, Ordering::Relaxed);
            Err(free_in)
        } else {
            Ok(())
        }
    }

    /// Whether `subject` is over its `class` limit now, without using any budget.
    pub fn peek_at(
        &self,
        subject: &Subject,
        class: RouteClass,
        now: Instant,
    ) -> Result<(), Duration> {
        if class.counter_index().is_none() || !self.config.enabled {
            return Ok(());
        }
        let gcra = self.gcra_for(subject, class);
        let key: Key = (subject.normalized(), class);
        let shard = &self.shards[(self.hasher.hash_one(&key) as usize) % SHARDS];
        let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        match shard.tats.get(&key) {
            Some(tat) => {
                let ahead = (*tat).max(now) - now;
                if ahead > gcra.tolerance {
                    Err(ahead - gcra.tolerance)
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// [`RateLimiter::check_at`] at the current instant.
    pub fn check(&self, subject: &Subject, class: RouteClass) -> Result<(), Duration> {
        self.check_at(subject, class, Instant::now())
    }

    /// Tracked keys, including keys at rest not yet evicted (never more than `max_keys`).
    pub fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).tats.len())
            .sum()
    }

    /// Requests refused, over all classes.
    pub fn limited_total(&self) -> u64 {
        self.limited.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Requests refused in one class (always 0 for `Ops`).
    pub fn limited_in(&self, class: RouteClass) -> u64 {
        class
            .counter_index()
            .map_or(0, |i| self.limited[i].load(Ordering::Relaxed))
    }

    /// Requests whose key could not be tracked because the table was full, over all classes.
    pub fn untracked_total(&self) -> u64 {
        self.untracked
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Appends `mobius_rate_limited_total{service,class}`,
    /// `mobius_rate_limit_untracked_total{service,class}` and `mobius_rate_limit_keys{service}`
    /// with HELP/TYPE. `svc_label` is the `service="..."` label (`Metrics::service_label`).
    pub fn render_metrics(&self, out: &mut String, svc_label: &str) {
        let sep = if svc_label.is_empty() { "" } else { "," };
        family(
            out,
            RATE_LIMITED_TOTAL,
            "counter",
            "Requests refused with 429 by the rate limiter, by route class.",
        );
        for class in RouteClass::LIMITED {
            let _ = writeln!(
                out,
                "{RATE_LIMITED_TOTAL}{{{svc_label}{sep}class=\"{}\"}} {}",
                escape_label(class.as_str()),
                self.limited_in(class)
            );
        }
        family(
            out,
            RATE_LIMIT_UNTRACKED_TOTAL,
            "counter",
            "Requests from a new subject while the rate limiter's table was full (auth refused, read/write admitted).",
        );
        for class in RouteClass::LIMITED {
            let n = class
                .counter_index()
                .map_or(0, |i| self.untracked[i].load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "{RATE_LIMIT_UNTRACKED_TOTAL}{{{svc_label}{sep}class=\"{}\"}} {n}",
                escape_label(class.as_str()),
            );
        }
        single(
            out,
            RATE_LIMIT_KEYS,
            "gauge",
            "Keys tracked by the rate limiter (bounded by max_keys).",
            svc_label,
            self.keys() as f64,
        );
    }
}

/// Classifies a request: `Ops` for `/livez`, `/readyz`, `/healthz`, `/metrics` and
/// `/api/integrity-check`; `Auth` for paths in `auth_paths`; `Write` for POST, PUT, PATCH and
/// DELETE; `Read` otherwise.
///
/// An `auth_paths` entry is an exact path (`/v1/auth/token`), optionally preceded by a method
/// (`POST /v1/citizens`: only that method is `Auth`, so reads of the same path stay `Read`),
/// and may end in `*` to match a prefix (`/v1/auth/*`).
pub fn classify(method: &Method, path: &str, auth_paths: &[&str]) -> RouteClass {
    if crate::observe::is_ops_route(path) {
        return RouteClass::Ops;
    }
    let is_auth = auth_paths.iter().any(|entry| {
        let (m, pattern) = match entry.split_once(' ') {
            Some((m, p)) => (Some(m), p.trim()),
            None => (None, entry.trim()),
        };
        if m.is_some_and(|m| !m.eq_ignore_ascii_case(method.as_str())) {
            return false;
        }
        match pattern.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == pattern,
        }
    });
    if is_auth {
        RouteClass::Auth
    } else if matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        RouteClass::Write
    } else {
        RouteClass::Read
    }
}

/// The bearer token of a request, accepted exactly as [`crate::auth`] accepts it.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
}

/// The subject of a token: hex of the first 16 bytes of its SHA-256.
pub fn token_subject(token: &str) -> Subject {
    let digest = Sha256::digest(token.as_bytes());
    Subject::Token(hex::encode(&digest[..16]))
}

/// The key for a request: with an `Authorization: Bearer <t>` header (in the form
/// [`crate::auth`] accepts), `Subject::Token` of the token's hash — never the token itself;
/// otherwise `Subject::Ip` of the connection's peer, as installed by [`crate::serve`]
/// (`ConnectInfo<SocketAddr>`). Without connect info (in-process tests) every request shares
/// the key `0.0.0.0`.
///
/// `X-Forwarded-For` and `Forwarded` are deliberately ignored: any client can set them, so
/// trusting them would let a client choose its own bucket. Behind a reverse proxy, a future
/// `trusted_proxies: Vec<IpNet>` setting could take the right-most address not in that list,
/// and only when the peer itself is a trusted proxy.
pub fn subject_for(parts: &Parts) -> Subject {
    if let Some(token) = bearer_token(parts) {
        return token_subject(token);
    }
    peer_subject(parts)
}

/// The connection's client IP as a subject, whatever the request carries.
pub fn peer_subject(parts: &Parts) -> Subject {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    Subject::Ip(ip)
}

/// Called with the subject, class and request path of every refused request.
pub type OnLimited = Arc<dyn Fn(&Subject, RouteClass, &str) + Send + Sync>;

/// State of the [`rate_limit`] middleware.
#[derive(Clone)]
pub struct RateLimitLayerState {
    pub limiter: Arc<RateLimiter>,
    /// Entries as accepted by [`classify`].
    pub auth_paths: Arc<Vec<&'static str>>,
    /// Lets the service write a security event; runs on the request task, so keep it quick.
    pub on_limited: Option<OnLimited>,
}

/// Whole seconds for `Retry-After`: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// Middleware: `axum::middleware::from_fn_with_state(state, rate_limit)`. A refused request
/// gets 429 `rate_limited` with `Retry-After` (seconds, rounded up, at least 1) and the hook
/// is called; the handler does not run.
pub async fn rate_limit(
    State(s): State<RateLimitLayerState>,
    req: Request,
    next: Next,
) -> Response {
    let class = classify(req.method(), req.uri().path(), &s.auth_paths);
    if class == RouteClass::Ops || !s.limiter.enabled() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let subject = subject_for(&parts);
    // A client presenting made-up tokens gets a fresh token bucket each time; its failed
    // authentications are charged to its IP under the `Auth` limit instead, and once that is
    // exhausted every request from that IP carrying a token is refused until it recovers.
    let peer = peer_subject(&parts);
    let checked = match subject {
        Subject::Token(_) => s
            .limiter
            .peek_at(&peer, RouteClass::Auth, Instant::now())
            .and_then(|()| s.limiter.check(&subject, class)),
        Subject::Ip(_) => s.limiter.check(&subject, class),
    };
    match checked {
        Ok(()) => {
            let resp = next.run(Request::from_parts(parts, body)).await;
            if resp.status() == axum::http::StatusCode::UNAUTHORIZED {
                let _ = s.limiter.check(&peer, RouteClass::Auth);
            }
            resp
        }
        Err(retry_after) => {
            if let Some(hook) = &s.on_limited {
                hook(&subject, class, parts.uri.path());
            }
            let secs = retry_after_secs(retry_after);
            ApiError::rate_limited(secs)
                .with_details(json!({ "class": class, "retry_after_s": secs }))
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_keys() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        assert_eq!(ip_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let m: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(m), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(v4), v4);
    }

    #[test]
    fn bad_limits_are_clamped() {
        let g = Limit::new(f64::NAN, 0).gcra();
        assert_eq!(g.interval, Duration::from_secs(1000));
        assert_eq!(g.tolerance, Duration::ZERO);
        let g = Limit::new(-5.0, 3).gcra();
        assert_eq!(g.interval, Duration::from_secs(1000));
        let g = Limit::new(f64::INFINITY, 3).gcra();
        assert_eq!(g.interval, Duration::from_secs(1000));
        let g = Limit::new(4.0, 3).gcra();
        assert_eq!(g.interval, Duration::from_millis(250));
        assert_eq!(g.tolerance, Duration::from_millis(500));
    }

    #[test]
    fn shard_capacities_sum_to_max_keys() {
        for max in [0, 1, 15, 16, 17, 100_000] {
            let l = RateLimiter::new(RateLimitConfig {
                max_keys: max,
                ..Default::default()
            });
            let total: usize = l.shards.iter().map(|s| s.lock().unwrap().cap).sum();
            assert_eq!(total, max);
        }
    }

    #[test]
    fn failed_auth_budget_is_peeked_not_spent() {
        let l = RateLimiter::new(RateLimitConfig {
            auth: Limit::new(1.0, 2),
            ..Default::default()
        });
        let ip = Subject::Ip("192.0.2.9".parse().unwrap());
        let t0 = Instant::now();
        assert!(
            l.peek_at(&ip, RouteClass::Auth, t0).is_ok(),
            "an unknown key is not limited"
        );
        // Two failed authentications use the burst; peeking never spends budget.
        assert!(l.check_at(&ip, RouteClass::Auth, t0).is_ok());
        assert!(l.peek_at(&ip, RouteClass::Auth, t0).is_ok());
        assert!(
            l.peek_at(&ip, RouteClass::Auth, t0).is_ok(),
            "peeking twice spends nothing"
        );
        assert!(l.check_at(&ip, RouteClass::Auth, t0).is_ok());
        // The burst is used up: the IP is refused until one interval passes.
        assert_eq!(
            l.peek_at(&ip, RouteClass::Auth, t0),
            Err(Duration::from_secs(1))
        );
        assert!(
            l.peek_at(&ip, RouteClass::Auth, t0 + Duration::from_secs(1))
                .is_ok(),
            "recovers"
        );
        assert!(
            l.check_at(&ip, RouteClass::Auth, t0 + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn retry_after_rounding() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(5)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
