//! Rate limiter: GCRA arithmetic with injected time, key independence, bounded memory, IPv6
//! aggregation, and the axum middleware over a real socket.

use axum::Router;
use axum::http::{Method, Request, header};
use axum::routing::{get, post};
use mobius_http::health::{Health, service_router};
use mobius_http::ratelimit::{
    Limit, RateLimitConfig, RateLimitLayerState, RateLimiter, RouteClass, Subject, classify,
    subject_for, token_subject,
};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ip(s: &str) -> Subject {
    Subject::Ip(s.parse().unwrap())
}

fn tok(s: &str) -> Subject {
    Subject::Token(s.to_string())
}

fn config(limit: Limit) -> RateLimitConfig {
    RateLimitConfig {
        read: limit,
        write: limit,
        auth: limit,
        per_ip_anonymous: limit,
        max_keys: 1000,
        enabled: true,
    }
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn defaults() {
    let c = RateLimitConfig::default();
    assert_eq!(c.read, Limit::new(200.0, 400));
    assert_eq!(c.write, Limit::new(100.0, 200));
    assert_eq!(c.auth, Limit::new(5.0, 10));
    assert_eq!(c.per_ip_anonymous, Limit::new(50.0, 100));
    assert_eq!(c.max_keys, 100_000);
    assert!(c.enabled);
}

#[test]
fn gcra_burst_then_steady_rate_exactly() {
    // 10/s: T = 100 ms; burst 5: τ = 400 ms.
    let l = RateLimiter::new(config(Limit::new(10.0, 5)));
    let s = tok("a");
    let t0 = Instant::now();
    for i in 0..5 {
        assert_eq!(l.check_at(&s, RouteClass::Read, t0), Ok(()), "request {i}");
    }
    assert_eq!(l.check_at(&s, RouteClass::Read, t0), Err(100 * MS));
    // Refusals do not consume budget: asking again changes nothing.
    assert_eq!(l.check_at(&s, RouteClass::Read, t0 + 30 * MS), Err(70 * MS));
    // Just before 1/rate: still refused, by exactly the remaining nanosecond.
    assert_eq!(
        l.check_at(
            &s,
            RouteClass::Read,
            t0 + 100 * MS - Duration::from_nanos(1)
        ),
        Err(Duration::from_nanos(1))
    );
    // Exactly at 1/rate: one more, then refused again for a full interval.
    assert_eq!(l.check_at(&s, RouteClass::Read, t0 + 100 * MS), Ok(()));
    assert_eq!(
        l.check_at(&s, RouteClass::Read, t0 + 100 * MS),
        Err(100 * MS)
    );
    // Steady state: one request every T conforms indefinitely.
    for k in 2..50u32 {
        let now = t0 + k * 100 * MS;
        assert_eq!(l.check_at(&s, RouteClass::Read, now), Ok(()), "tick {k}");
        assert_eq!(
            l.check_at(&s, RouteClass::Read, now),
            Err(100 * MS),
            "tick {k}"
        );
    }
    assert_eq!(l.limited_total(), 52);
    assert_eq!(l.limited_in(RouteClass::Read), 52);
    assert_eq!(l.limited_in(RouteClass::Write), 0);
}

#[test]
fn recovery_after_waiting() {
    let l = RateLimiter::new(config(Limit::new(10.0, 5)));
    let s = ip("192.0.2.1");
    let t0 = Instant::now();
    for _ in 0..5 {
        l.check_at(&s, RouteClass::Write, t0).unwrap();
    }
    assert!(l.check_at(&s, RouteClass::Write, t0).is_err());
    // After burst × T the key is at rest again: a full burst is available.
    let later = t0 + 500 * MS;
    for i in 0..5 {
        assert_eq!(l.check_at(&s, RouteClass::Write, later), Ok(()), "{i}");
    }
    assert_eq!(l.check_at(&s, RouteClass::Write, later), Err(100 * MS));
    // Half-way: half the burst.
    let half = later + 250 * MS;
    assert_eq!(l.check_at(&s, RouteClass::Write, half), Ok(()));
    assert_eq!(l.check_at(&s, RouteClass::Write, half), Ok(()));
    assert_eq!(l.check_at(&s, RouteClass::Write, half), Err(50 * MS));
}

#[test]
fn independent_keys_and_classes_and_limits_by_class() {
    let c = RateLimitConfig {
        read: Limit::new(1.0, 3),
        write: Limit::new(1.0, 2),
        auth: Limit::new(1.0, 1),
        per_ip_anonymous: Limit::new(1.0, 4),
        max_keys: 1000,
        enabled: true,
    };
    let l = RateLimiter::new(c);
    let t = Instant::now();
    let admitted = |s: &Subject, class| {
        let mut n = 0;
        while l.check_at(s, class, t).is_ok() {
            n += 1;
            assert!(n < 100);
        }
        n
    };
    let a = tok("a");
    let b = tok("b");
    let x = ip("198.51.100.7");
    assert_eq!(admitted(&a, RouteClass::Read), 3);
    assert_eq!(
        admitted(&a, RouteClass::Write),
        2,
        "write has its own bucket"
    );
    assert_eq!(admitted(&a, RouteClass::Auth), 1, "auth has its own bucket");
    assert_eq!(
        admitted(&b, RouteClass::Read),
        3,
        "another token is independent"
    );
    // Anonymous reads and writes use the per-IP limit, auth uses the auth limit.
    assert_eq!(admitted(&x, RouteClass::Read), 4);
    assert_eq!(admitted(&x, RouteClass::Write), 4);
    assert_eq!(admitted(&x, RouteClass::Auth), 1);
    // A token whose text looks like an IP is not that IP.
    assert_eq!(admitted(&tok("198.51.100.7"), RouteClass::Read), 3);
    assert_eq!(admitted(&ip("198.51.100.8"), RouteClass::Read), 4);
    assert_eq!(l.limited_in(RouteClass::Read), 5);
    assert_eq!(l.limited_in(RouteClass::Write), 2);
    assert_eq!(l.limited_in(RouteClass::Auth), 2);
    assert_eq!(l.limited_total(), 9);
}

#[test]
fn ops_never_limited_and_disabled_admits_everything() {
    let l = RateLimiter::new(config(Limit::new(1.0, 1)));
    let s = ip("192.0.2.1");
    let t = Instant::now();
    for _ in 0..10_000 {
        assert_eq!(l.check_at(&s, RouteClass::Ops, t), Ok(()));
    }
    assert_eq!(l.keys(), 0, "ops requests are not tracked");
    assert_eq!(l.limited_total(), 0);

    let off = RateLimiter::new(RateLimitConfig {
        enabled: false,
        ..config(Limit::new(1.0, 1))
    });
    for class in RouteClass::LIMITED {
        for _ in 0..100 {
            assert_eq!(off.check_at(&s, class, t), Ok(()));
        }
    }
    assert_eq!(off.keys(), 0);
    assert_eq!(off.limited_total(), 0);
}

#[test]
fn ipv6_is_limited_per_64() {
    let l = RateLimiter::new(config(Limit::new(1.0, 3)));
    let t = Instant::now();
    // Three different addresses in one /64 share one bucket.
    for a in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
    ] {
        assert_eq!(l.check_at(&ip(a), RouteClass::Read, t), Ok(()), "{a}");
    }
    assert_eq!(
        l.check_at(&ip("2001:db8:1:2:1234::9"), RouteClass::Read, t),
        Err(Duration::from_secs(1))
    );
    // The neighbouring /64 is someone else.
    assert_eq!(
        l.check_at(&ip("2001:db8:1:3::1"), RouteClass::Read, t),
        Ok(())
    );
    assert_eq!(l.keys(), 2);
    // IPv4-mapped addresses (dual-stack sockets) are their IPv4 address, not one shared /64.
    for _ in 0..3 {
        l.check_at(&ip("::ffff:192.0.2.1"), RouteClass::Read, t)
            .unwrap();
    }
    assert!(l.check_at(&ip("192.0.2.1"), RouteClass::Read, t).is_err());
    assert_eq!(
        l.check_at(&ip("::ffff:192.0.2.2"), RouteClass::Read, t),
        Ok(())
    );
    // IPv4 addresses are not aggregated.
    assert_eq!(l.check_at(&ip("192.0.2.3"), RouteClass::Read, t), Ok(()));
}

#[test]
fn bounded_memory_under_a_million_distinct_keys() {
    let c = RateLimitConfig::default();
    let max = c.max_keys;
    let l = RateLimiter::new(c);
    let t0 = Instant::now();
    let started = Instant::now();
    let mut untracked_auth_refused = 0;
    for i in 0..1_000_000u32 {
        let s = Subject::Ip(IpAddr::V4(Ipv4Addr::from(i)));
        // Every key is live (same instant), so nothing can be evicted: once full, reads are
        // admitted untracked (fail open).
        assert_eq!(l.check_at(&s, RouteClass::Read, t0), Ok(()));
        if i % 10 == 0 && l.check_at(&s, RouteClass::Auth, t0).is_err() {
            untracked_auth_refused += 1;
        }
    }
    assert!(l.keys() <= max, "{} keys", l.keys());
    assert!(l.keys() >= max * 9 / 10, "the table was used: {}", l.keys());
    // Auth fails closed once the table is full; each refusal is counted.
    assert!(untracked_auth_refused > 50_000, "{untracked_auth_refused}");
    assert_eq!(l.limited_in(RouteClass::Auth), untracked_auth_refused);
    assert_eq!(l.limited_in(RouteClass::Read), 0);
    assert!(l.untracked_total() > 800_000);
    // A fail-closed refusal says when a slot frees: when the earliest key comes to rest.
    let fresh = Subject::Ip(IpAddr::V4(Ipv4Addr::from(2_000_000u32)));
    let mut refused = None;
    for k in 0..100_000u32 {
        let s = Subject::Ip(IpAddr::V4(Ipv4Addr::from(3_000_000 + k)));
        if let Err(d) = l.check_at(&s, RouteClass::Auth, t0) {
            refused = Some(d);
            break;
        }
    }
    let d = refused.expect("auth refused while full");
    assert!(
        d > Duration::ZERO && d <= Duration::from_millis(200),
        "{d:?}"
    );

    // Once the keys are at rest they are evicted and new keys are tracked (and limited) again.
    let later = t0 + Duration::from_secs(5);
    for i in 0..10 {
        assert_eq!(l.check_at(&fresh, RouteClass::Auth, later), Ok(()), "{i}");
    }
    assert_eq!(
        l.check_at(&fresh, RouteClass::Auth, later),
        Err(Duration::from_millis(200)),
        "a fresh key is tracked and limited after eviction"
    );
    for i in 0..1_000_000u32 {
        let s = Subject::Token(format!("k{i}"));
        let _ = l.check_at(&s, RouteClass::Write, later + Duration::from_secs(5));
    }
    assert!(l.keys() <= max);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

#[test]
fn tiny_tables_stay_bounded() {
    for max in [0, 1, 3, 17] {
        let l = RateLimiter::new(RateLimitConfig {
            max_keys: max,
            ..config(Limit::new(1.0, 1))
        });
        let t = Instant::now();
        for i in 0..1000u32 {
            let s = Subject::Ip(IpAddr::V4(Ipv4Addr::from(i)));
            let _ = l.check_at(&s, RouteClass::Read, t + i * MS);
            let _ = l.check_at(&s, RouteClass::Auth, t + i * MS);
            assert!(l.keys() <= max);
        }
    }
}

#[test]
fn concurrent_use_is_consistent() {
    // 4 threads share one token's burst: exactly `burst` requests are admitted in total.
    let l = RateLimiter::new(config(Limit::new(0.001, 1000)));
    let t = Instant::now();
    let admitted: usize = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                sc.spawn(move || {
                    (0..1000)
                        .filter(|_| l.check_at(&tok("shared"), RouteClass::Read, t).is_ok())
                        .count()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 1000);
    assert_eq!(l.limited_total(), 3000);
}

#[test]
fn metrics_rendering() {
    let l = RateLimiter::new(config(Limit::new(1.0, 1)));
    let t = Instant::now();
    let s = tok("a");
    l.check_at(&s, RouteClass::Auth, t).unwrap();
    assert!(l.check_at(&s, RouteClass::Auth, t).is_err());
    assert!(l.check_at(&s, RouteClass::Auth, t).is_err());
    l.check_at(&s, RouteClass::Read, t).unwrap();
    let mut out = String::new();
    l.render_metrics(&mut out, "service=\"shield-api\"");
    for line in [
        "# HELP mobius_rate_limited_total ",
        "# TYPE mobius_rate_limited_total counter",
        "mobius_rate_limited_total{service=\"shield-api\",class=\"read\"} 0",
        "mobius_rate_limited_total{service=\"shield-api\",class=\"write\"} 0",
        "mobius_rate_limited_total{service=\"shield-api\",class=\"auth\"} 2",
        "# TYPE mobius_rate_limit_untracked_total counter",
        "mobius_rate_limit_untracked_total{service=\"shield-api\",class=\"auth\"} 0",
        "# TYPE mobius_rate_limit_keys gauge",
        "mobius_rate_limit_keys{service=\"shield-api\"} 2",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert!(!out.contains("class=\"ops\""));
}

#[test]
fn classification() {
    let auth = [
        "/v1/auth/challenge",
        "/v1/auth/token",
        "POST /v1/citizens",
        "/v1/enrol/*",
    ];
    let c = |m: Method, p: &str| classify(&m, p, &auth);
    for p in [
        "/livez",
        "/readyz",
        "/healthz",
        "/metrics",
        "/api/integrity-check",
    ] {
        assert_eq!(c(Method::GET, p), RouteClass::Ops, "{p}");
        assert_eq!(c(Method::POST, p), RouteClass::Ops, "{p}");
    }
    assert_eq!(c(Method::POST, "/v1/auth/token"), RouteClass::Auth);
    assert_eq!(c(Method::GET, "/v1/auth/challenge"), RouteClass::Auth);
    assert_eq!(c(Method::POST, "/v1/citizens"), RouteClass::Auth);
    assert_eq!(
        c(Method::GET, "/v1/citizens"),
        RouteClass::Read,
        "method-qualified"
    );
    assert_eq!(c(Method::POST, "/v1/enrol/x/y"), RouteClass::Auth, "prefix");
    assert_eq!(
        c(Method::POST, "/v1/auth/token/x"),
        RouteClass::Write,
        "exact"
    );
    for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        assert_eq!(c(m, "/v1/things"), RouteClass::Write);
    }
    for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
        assert_eq!(c(m, "/v1/things"), RouteClass::Read);
    }
    assert_eq!(
        classify(&Method::POST, "/v1/auth/token", &[]),
        RouteClass::Write
    );
    assert_eq!(
        serde_json::to_value(RouteClass::Auth).unwrap(),
        serde_json::json!("auth")
    );
}

fn parts(headers: &[(&str, &str)], peer: Option<SocketAddr>) -> axum::http::request::Parts {
    let mut b = Request::builder().uri("/v1/things");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if let Some(p) = peer {
        b = b.extension(axum::extract::ConnectInfo(p));
    }
    b.body(()).unwrap().into_parts().0
}

#[test]
fn subjects() {
    let peer: SocketAddr = "203.0.113.9:5555".parse().unwrap();
    let token = "mob_0123456789abcdef";
    let expected = hex::encode(&Sha256::digest(token.as_bytes())[..16]);
    let s = subject_for(&parts(
        &[("authorization", &format!("Bearer {token}"))],
        Some(peer),
    ));
    assert_eq!(s, Subject::Token(expected.clone()));
    assert_eq!(s, token_subject(token));
    let Subject::Token(h) = &s else {
        unreachable!()
    };
    assert_eq!(h.len(), 32);
    assert!(!h.contains(token) && !s.to_string().contains(token));
    // Lower-case scheme, as the authenticator accepts it.
    assert_eq!(
        subject_for(&parts(
            &[("authorization", &format!("bearer {token}"))],
            Some(peer)
        )),
        Subject::Token(expected)
    );
    // No token, or one the authenticator would reject: the peer address.
    let peer_ip = Subject::Ip(peer.ip());
    assert_eq!(subject_for(&parts(&[], Some(peer))), peer_ip);
    assert_eq!(
        subject_for(&parts(
            &[("authorization", "Basic dXNlcjpwdw==")],
            Some(peer)
        )),
        peer_ip
    );
    assert_eq!(
        subject_for(&parts(&[("authorization", "Bearer ")], Some(peer))),
        peer_ip
    );
    // X-Forwarded-For and Forwarded are not trusted.
    assert_eq!(
        subject_for(&parts(
            &[
                ("x-forwarded-for", "192.0.2.44"),
                ("forwarded", "for=192.0.2.45")
            ],
            Some(peer)
        )),
        peer_ip
    );
    // Without connect info, everything shares one key.
    assert_eq!(
        subject_for(&parts(&[], None)),
        Subject::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    );
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

#[tokio::test]
async fn http_429_with_retry_after_and_hook() {
    let limiter = RateLimiter::new(RateLimitConfig {
        read: Limit::new(100.0, 100),
        write: Limit::new(100.0, 100),
        auth: Limit::new(0.5, 1),
        // Two anonymous requests, then one every 2 s.
        per_ip_anonymous: Limit::new(0.5, 2),
        max_keys: 1000,
        enabled: true,
    });
    let events: Arc<Mutex<Vec<(Subject, RouteClass, String)>>> = Arc::default();
    let ev = events.clone();
    let state = RateLimitLayerState {
        limiter: limiter.clone(),
        auth_paths: Arc::new(vec!["/v1/auth/token"]),
        on_limited: Some(Arc::new(move |s: &Subject, c: RouteClass, p: &str| {
            ev.lock().unwrap().push((s.clone(), c, p.to_string()));
        })),
    };
    let health = Health::new("test-api");
    let svc = health.metrics.service_label();
    let l = limiter.clone();
    health
        .metrics
        .add_collector(Box::new(move |out| l.render_metrics(out, &svc)));
    let api = Router::new()
        .route("/v1/things", get(|| async { "ok" }))
        .route("/v1/auth/token", post(|| async { "token" }))
        .layer(axum::middleware::from_fn_with_state(
            state,
            mobius_http::ratelimit::rate_limit,
        ));
    let app = service_router(api, health.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mobius_http::serve(listener, app, async {
        let _ = stop_rx.await;
    }));

    // Anonymous: two admitted, the third refused.
    assert_eq!(send(addr, "GET", "/v1/things", None).await.status, 200);
    assert_eq!(send(addr, "GET", "/v1/things", None).await.status, 200);
    let r = send(addr, "GET", "/v1/things?x=1", None).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    let body = r.json();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["details"]["class"], "read");
    assert_eq!(body["error"]["details"]["retry_after_s"], 2);
    assert!(r.header("x-request-id").is_some(), "inside observe");

    // The hook saw the peer address, class and path (no query string).
    {
        let ev = events.lock().unwrap();
        assert_eq!(
            *ev,
            vec![(
                Subject::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                RouteClass::Read,
                "/v1/things".to_string()
            )]
        );
    }

    // Ops routes are never limited.
    for p in ["/livez", "/metrics", "/livez"] {
        assert_eq!(send(addr, "GET", p, None).await.status, 200, "{p}");
    }
    // A token has its own bucket, independent of the exhausted IP.
    for _ in 0..3 {
        assert_eq!(
            send(addr, "GET", "/v1/things", Some("mob_t1")).await.status,
            200
        );
    }
    // Auth class: one, then refused with the auth limit's retry.
    assert_eq!(send(addr, "POST", "/v1/auth/token", None).await.status, 200);
    let r = send(addr, "POST", "/v1/auth/token", None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.json()["error"]["details"]["class"], "auth");
    assert_eq!(events.lock().unwrap().len(), 2);
    assert_eq!(events.lock().unwrap()[1].1, RouteClass::Auth);

    // Counted in the service's /metrics.
    let m = send(addr, "GET", "/metrics", None).await;
    assert_eq!(m.status, 200);
    for line in [
        "mobius_rate_limited_total{service=\"test-api\",class=\"read\"} 1",
        "mobius_rate_limited_total{service=\"test-api\",class=\"auth\"} 1",
        "mobius_rate_limit_keys{service=\"test-api\"} 3",
        "mobius_http_requests_total{service=\"test-api\",route=\"/v1/things\",method=\"GET\",status=\"429\"} 1",
    ] {
        assert!(m.body.contains(line), "missing {line:?} in\n{}", m.body);
    }
    assert_eq!(limiter.limited_total(), 2);

    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn middleware_in_process_and_disabled() {
    use tower::ServiceExt;
    let mk = |enabled| {
        let limiter = RateLimiter::new(RateLimitConfig {
            enabled,
            ..config(Limit::new(0.001, 1))
        });
        let state = RateLimitLayerState {
            limiter,
            auth_paths: Arc::new(vec![]),
            on_limited: None,
        };
        Router::new()
            .route("/v1/things", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                state,
                mobius_http::ratelimit::rate_limit,
            ))
    };
    let req = || {
        Request::builder()
            .uri("/v1/things")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let app = mk(true);
    assert_eq!(app.clone().oneshot(req()).await.unwrap().status(), 200);
    let r = app.clone().oneshot(req()).await.unwrap();
    assert_eq!(r.status(), 429);
    // 1000 s interval, burst 1: retry after the full interval.
    assert_eq!(r.headers()[header::RETRY_AFTER], "1000");
    let app = mk(false);
    for _ in 0..5 {
        assert_eq!(app.clone().oneshot(req()).await.unwrap().status(), 200);
    }
}
