//! Webhook notifications (SPEC §9.1): alert transitions are posted as Alertmanager-compatible
//! JSON (webhook payload version 4) to every configured webhook.
//!
//! [`Notifier::notify`] never blocks and never fails: it builds the payloads and offers them to
//! one bounded queue per webhook ([`QUEUE_CAPACITY`]); when a queue is full the notification
//! is dropped and counted. One delivery task per webhook drains its queue in order; each HTTP
//! call runs on the blocking pool (ureq is blocking) with a global timeout, and failures are
//! retried with capped exponential backoff and jitter, up to `max_attempts`, then given up and
//! counted. A slow or dead receiver only ever delays its own queue.
//!
//! Only `firing` and `resolved` transitions are sent (`pending` is internal). One
//! `notify()` call sends one payload per rule (Alertmanager's `group_by: [alertname]`).

use crate::alerts::{AlertState, Transition};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Notifications queued per webhook before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 1024;
/// Most alerts in one payload; the rest are counted in `truncatedAlerts`.
pub const MAX_ALERTS_PER_PAYLOAD: usize = 1000;
/// The `receiver` name in payloads.
pub const RECEIVER: &str = "mobius";
/// Alertmanager's "zero time" `endsAt` for alerts still firing.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// Bounds on configured delivery parameters (a config typo must not stall a queue for days).
const MAX_ATTEMPTS_LIMIT: u32 = 100;
const MAX_BACKOFF_LIMIT_MS: u64 = 3_600_000;
const MAX_TIMEOUT_LIMIT_MS: u64 = 300_000;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `http://host:port/path?query` (plain HTTP only in this build). May carry a token in
    /// its query string: it is never logged.
    pub url: String,
    /// Attempts per notification, including the first (default 6; at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry (default 500 ms); doubles per retry.
    pub initial_backoff_ms: u64,
    /// Cap on the delay between attempts (default 30 s).
    pub max_backoff_ms: u64,
    /// Timeout of one whole HTTP attempt (default 5 s).
    pub timeout_ms: u64,
}

impl WebhookConfig {
    /// A webhook with the default delivery parameters.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            max_attempts: 6,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            timeout_ms: 5_000,
        }
    }
}

/// Delivery counters since start, summed over all webhooks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotifyStats {
    /// Notifications delivered (2xx).
    pub sent: u64,
    /// Attempts that failed (connection error, timeout, non-2xx).
    pub failed_attempts: u64,
    /// Notifications dropped because a queue was full (or the notifier has no runtime).
    pub dropped: u64,
    /// Notifications abandoned after `max_attempts` failed attempts.
    pub gave_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed_attempts: AtomicU64,
    dropped: AtomicU64,
    gave_up: AtomicU64,
}

impl Counters {
    fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

struct Inner {
    queues: Vec<mpsc::Sender<Arc<[u8]>>>,
    /// Webhooks configured but not started (no runtime): their notifications count as dropped.
    unstarted: u64,
    counters: Arc<Counters>,
    external_url: String,
}

/// Cheap to clone: all clones share the queues and counters.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("webhooks", &self.inner.queues.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Notifier {
    /// Starts one delivery task per webhook on the current tokio runtime, each with a
    /// bounded queue of [`QUEUE_CAPACITY`] notifications. Called outside a runtime it logs a
    /// warning and every notification is dropped (and counted) instead of panicking.
    pub fn start(webhooks: Vec<WebhookConfig>, external_url: String) -> Notifier {
        let counters = Arc::new(Counters::default());
        let mut queues = Vec::new();
        let mut unstarted = 0;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                for config in webhooks {
                    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                    let target = redact_url(&config.url);
                    if !config.url.starts_with("http://") {
                        mobius_http::log::warn(
                            "webhook url is not plain http://; deliveries will fail (this build has no TLS)",
                            &[("webhook", Value::String(target.clone()))],
                        );
                    }
                    handle.spawn(deliver_loop(config, target, rx, counters.clone()));
                    queues.push(tx);
                }
            }
            Err(_) => {
                unstarted = u64::try_from(webhooks.len()).unwrap_or(u64::MAX);
                if !webhooks.is_empty() {
                    mobius_http::log::warn(
                        "notifier started outside a tokio runtime; webhook notifications are disabled",
                        &[],
                    );
                }
            }
        }
        Notifier {
            inner: Arc::new(Inner {
                queues,
                unstarted,
                counters,
                external_url,
            }),
        }
    }

    /// Queues the `firing` and `resolved` transitions (one payload per rule) for every webhook
    /// without waiting. When a queue is full the notification is dropped and counted.
    pub fn notify(&self, transitions: &[Transition]) {
        let mut by_rule: BTreeMap<&str, Vec<Transition>> = BTreeMap::new();
        for t in transitions.iter().filter(|t| is_sent(t)) {
            by_rule
                .entry(t.alert.rule.as_str())
                .or_default()
                .push(t.clone());
        }
        for group in by_rule.values() {
            if self.inner.unstarted > 0 {
                let c = &self.inner.counters.dropped;
                c.fetch_add(self.inner.unstarted, Ordering::Relaxed);
            }
            if self.inner.queues.is_empty() {
                continue;
            }
            let payload = alertmanager_payload(group, &self.inner.external_url);
            let body: Arc<[u8]> = match serde_json::to_vec(&payload) {
                Ok(b) => b.into(),
                Err(_) => {
                    Counters::inc(&self.inner.counters.dropped);
                    continue;
                }
            };
            for q in &self.inner.queues {
                if q.try_send(body.clone()).is_err() {
                    Counters::inc(&self.inner.counters.dropped);
                }
            }
        }
    }

    /// Delivery counters, for metrics.
    pub fn stats(&self) -> NotifyStats {
        let c = &self.inner.counters;
        NotifyStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            gave_up: c.gave_up.load(Ordering::Relaxed),
        }
    }
}

fn is_sent(t: &Transition) -> bool {
    matches!(t.to, AlertState::Firing | AlertState::Resolved)
}

/// The Alertmanager webhook payload (version "4") for `transitions` as one group. Pending
/// transitions are left out. `groupLabels` is `{alertname}` when every alert comes from one
/// rule, else empty; `commonLabels`/`commonAnnotations` are the pairs shared by every alert.
/// Per alert: `startsAt` is when the condition first held (the same for the firing and the
/// resolved notification of one episode), `endsAt` is the resolution time or the zero time
/// while firing, `fingerprint` is 16 hex digits of SHA-256 of the alert id.
pub fn alertmanager_payload(transitions: &[Transition], external_url: &str) -> Value {
    let sent: Vec<&Transition> = transitions.iter().filter(|t| is_sent(t)).collect();
    let truncated = sent.len().saturating_sub(MAX_ALERTS_PER_PAYLOAD);
    let generator_url = format!("{}/api/ops/alerts", external_url.trim_end_matches('/'));

    let mut alerts = Vec::with_capacity(sent.len().min(MAX_ALERTS_PER_PAYLOAD));
    let mut common_labels: Option<Map<String, Value>> = None;
    let mut common_annotations: Option<Map<String, Value>> = None;
    for t in sent.iter().take(MAX_ALERTS_PER_PAYLOAD) {
        let a = &t.alert;
        let mut labels = Map::new();
        for (k, v) in &a.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
        labels.insert("alertname".into(), Value::String(a.rule.clone()));
        labels.insert(
            "severity".into(),
            Value::String(a.severity.as_str().to_string()),
        );
        let mut annotations = Map::new();
        annotations.insert("summary".into(), Value::String(a.summary.clone()));
        annotations.insert("value".into(), Value::String(format_value(a.value)));
        let firing = t.to == AlertState::Firing;
        let ends_at = if firing {
            ZERO_TIME.to_string()
        } else {
            mobius_core::time::rfc3339_ms(a.since_ms)
        };
        intersect(&mut common_labels, &labels);
        intersect(&mut common_annotations, &annotations);
        alerts.push(json!({
            "status": if firing { "firing" } else { "resolved" },
            "labels": labels,
            "annotations": annotations,
            "startsAt": mobius_core::time::rfc3339_ms(a.active_since_ms),
            "endsAt": ends_at,
            "generatorURL": generator_url,
            "fingerprint": fingerprint(&a.id),
        }));
    }

    let any_firing = sent.iter().any(|t| t.to == AlertState::Firing);
    let mut group_labels = Map::new();
    let single_rule = sent
        .first()
        .filter(|first| sent.iter().all(|t| t.alert.rule == first.alert.rule));
    if let Some(first) = single_rule {
        group_labels.insert("alertname".into(), Value::String(first.alert.rule.clone()));
    }
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": truncated,
        "status": if any_firing { "firing" } else { "resolved" },
        "receiver": RECEIVER,
        "groupLabels": group_labels,
        "commonLabels": common_labels.unwrap_or_default(),
        "commonAnnotations": common_annotations.unwrap_or_default(),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

/// Keeps in `common` only the pairs also in `next` (the first call takes all of `next`).
fn intersect(common: &mut Option<Map<String, Value>>, next: &Map<String, Value>) {
    match common {
        None => *common = Some(next.clone()),
        Some(c) => c.retain(|k, v| next.get(k) == Some(v)),
    }
}

fn format_value(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_string()
    }
}

/// 16 hex digits identifying an alert instance (stable across episodes, like Alertmanager's).
fn fingerprint(id: &str) -> String {
    let h = mobius_core::merkle::sha256(id.as_bytes());
    hex::encode(&h[..8])
}

/// `scheme://host:port` of a URL, with any userinfo, path, query and fragment removed: the
/// only part of a webhook URL that may be logged.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<invalid url>".to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if host_port.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+')
    {
        return "<invalid url>".to_string();
    }
    let scheme = scheme.to_ascii_lowercase();
    // A port is present when the text after the last ':' is digits and not inside an IPv6 [..].
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        format!("{scheme}://{host_port}")
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{scheme}://{host_port}:{port}")
    }
}

/// The delay before retry number `retry` (1-based): initial × 2^(retry−1), capped at `max`,
/// minus up to 10% jitter so that many notifiers do not retry in lockstep.
fn backoff_ms(config: &WebhookConfig, retry: u32) -> u64 {
    let max = config.max_backoff_ms.min(MAX_BACKOFF_LIMIT_MS);
    let exp = retry.saturating_sub(1).min(63);
    let base = config
        .initial_backoff_ms
        .saturating_mul(1u64 << exp)
        .min(max);
    let jitter_range = base / 10;
    if jitter_range == 0 {
        return base;
    }
    base - random_u64() % (jitter_range + 1)
}

/// A random number from std's per-instance SipHash keys (no RNG crate needed for jitter).
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(mobius_core::time::now_ms().unsigned_abs());
    h.finish()
}

/// The outcome of one attempt: Ok on 2xx, else a loggable reason (never the URL).
fn post_once(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(), String> {
    match agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(format!("http status {status}"))
            }
        }
        Err(e) => Err(describe_error(&e)),
    }
}

/// A short description of a ureq error that cannot contain the URL or its query string.
fn describe_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timeout".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Io(io) => format!("io error: {}", io.kind()),
        ureq::Error::StatusCode(s) => format!("http status {s}"),
        ureq::Error::BadUri(_) => "invalid url".into(),
        _ => "request failed".into(),
    }
}

async fn deliver_loop(
    config: WebhookConfig,
    target: String,
    mut rx: mpsc::Receiver<Arc<[u8]>>,
    counters: Arc<Counters>,
) {
    let timeout_ms = config.timeout_ms.clamp(1, MAX_TIMEOUT_LIMIT_MS);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(timeout_ms)))
        .http_status_as_error(false)
        // A webhook answers itself; a redirect is a misconfiguration, reported as non-2xx.
        .max_redirects(0)
        .build()
        .into();
    let max_attempts = config.max_attempts.clamp(1, MAX_ATTEMPTS_LIMIT);
    while let Some(body) = rx.recv().await {
        for attempt in 1..=max_attempts {
            let (agent2, url, body2) = (agent.clone(), config.url.clone(), body.clone());
            let result = tokio::task::spawn_blocking(move || post_once(&agent2, &url, &body2))
                .await
                .unwrap_or_else(|_| Err("delivery task failed".into()));
            match result {
                Ok(()) => {
                    Counters::inc(&counters.sent);
                    break;
                }
                Err(reason) => {
                    Counters::inc(&counters.failed_attempts);
                    let gave_up = attempt == max_attempts;
                    mobius_http::log::warn(
                        if gave_up {
                            "webhook delivery failed; giving up"
                        } else {
                            "webhook delivery failed; will retry"
                        },
                        &[
                            ("webhook", Value::String(target.clone())),
                            ("attempt", json!(attempt)),
                            ("max_attempts", json!(max_attempts)),
                            ("error", Value::String(reason)),
                        ],
                    );
                    if gave_up {
                        Counters::inc(&counters.gave_up);
                    } else {
                        tokio::time::sleep(Duration::from_millis(backoff_ms(&config, attempt)))
                            .await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Alert, Severity};
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const T_MS: i64 = 1_800_000_000_000;

    fn transition(
        rule: &str,
        service: Option<&str>,
        from: Option<AlertState>,
        to: AlertState,
    ) -> Transition {
        let mut labels = BTreeMap::new();
        if let Some(s) = service {
            labels.insert("service".to_string(), s.to_string());
        }
        let id = match service {
            Some(s) => format!("{rule}:service={s}"),
            None => rule.to_string(),
        };
        Transition {
            alert: Alert {
                id,
                rule: rule.to_string(),
                severity: Severity::Critical,
                state: to,
                since_ms: T_MS + 300_000,
                active_since_ms: T_MS,
                value: 300.0,
                labels,
                acked_by: None,
                summary: "service ledger-api has failed its health check for 300 s".into(),
            },
            from,
            to,
        }
    }

    fn firing(service: &str) -> Transition {
        transition(
            "service_down",
            Some(service),
            Some(AlertState::Pending),
            AlertState::Firing,
        )
    }

    fn fast(url: String) -> WebhookConfig {
        WebhookConfig {
            url,
            max_attempts: 3,
            initial_backoff_ms: 10,
            max_backoff_ms: 40,
            timeout_ms: 2_000,
        }
    }

    #[test]
    fn payload_shape() {
        let ts = vec![
            firing("ledger-api"),
            transition(
                "service_down",
                Some("indexer-api"),
                Some(AlertState::Firing),
                AlertState::Resolved,
            ),
            transition("service_down", Some("x"), None, AlertState::Pending),
        ];
        let p = alertmanager_payload(&ts, "http://127.0.0.1:3002/");
        let keys: Vec<&str> = p
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = vec![
            "version",
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        ];
        want.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, want);
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["receiver"], RECEIVER);
        assert_eq!(p["truncatedAlerts"], 0);
        assert_eq!(p["externalURL"], "http://127.0.0.1:3002/");
        assert_eq!(p["groupLabels"], json!({"alertname": "service_down"}));
        assert_eq!(p["groupKey"], r#"{}:{alertname="service_down"}"#);
        assert_eq!(
            p["commonLabels"],
            json!({"alertname": "service_down", "severity": "critical"})
        );
        let alerts = p["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), 2, "pending is left out");
        let a = &alerts[0];
        let mut akeys: Vec<&str> = a
            .as_object()
            .expect("alert")
            .keys()
            .map(String::as_str)
            .collect();
        akeys.sort_unstable();
        assert_eq!(
            akeys,
            vec![
                "annotations",
                "endsAt",
                "fingerprint",
                "generatorURL",
                "labels",
                "startsAt",
                "status"
            ]
        );
        assert_eq!(a["status"], "firing");
        assert_eq!(
            a["labels"],
            json!({"alertname": "service_down", "severity": "critical", "service": "ledger-api"})
        );
        assert_eq!(a["annotations"]["value"], "300");
        assert!(
            a["annotations"]["summary"]
                .as_str()
                .is_some_and(|s| s.contains("300 s"))
        );
        assert_eq!(a["startsAt"], "2027-01-15T08:00:00.000Z");
        assert_eq!(a["endsAt"], ZERO_TIME);
        assert_eq!(a["generatorURL"], "http://127.0.0.1:3002/api/ops/alerts");
        let fp = a["fingerprint"].as_str().expect("fingerprint");
        assert_eq!(fp.len(), 16);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(fp, alerts[1]["fingerprint"].as_str().expect("fingerprint"));
        let r = &alerts[1];
        assert_eq!(r["status"], "resolved");
        assert_eq!(r["endsAt"], "2027-01-15T08:05:00.000Z");
        assert_eq!(r["startsAt"], a["startsAt"]);

        // Only resolved alerts: status resolved. Mixed rules: no group labels.
        let ts = vec![
            transition(
                "gi_critical",
                None,
                Some(AlertState::Firing),
                AlertState::Resolved,
            ),
            transition(
                "disk_usage",
                None,
                Some(AlertState::Firing),
                AlertState::Resolved,
            ),
        ];
        let p = alertmanager_payload(&ts, "http://x:1");
        assert_eq!(p["status"], "resolved");
        assert_eq!(p["groupLabels"], json!({}));
        assert_eq!(p["groupKey"], "{}:{}");
        assert_eq!(p["commonLabels"], json!({"severity": "critical"}));
    }

    #[test]
    fn redacts_urls_to_scheme_host_port() {
        assert_eq!(
            redact_url("http://hooks.example:8080/x?token=s3cret"),
            "http://hooks.example:8080"
        );
        assert_eq!(
            redact_url("https://user:pw@hooks.example/a#b"),
            "https://hooks.example:443"
        );
        assert_eq!(redact_url("http://[::1]/x"), "http://[::1]:80");
        assert_eq!(redact_url("http://[::1]:9/x"), "http://[::1]:9");
        assert_eq!(redact_url("hooks.example?token=x"), "<invalid url>");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_cap() {
        let c = WebhookConfig::new("http://x");
        for _ in 0..100 {
            let d1 = backoff_ms(&c, 1);
            assert!((450..=500).contains(&d1), "{d1}");
            let d2 = backoff_ms(&c, 2);
            assert!((900..=1000).contains(&d2), "{d2}");
            let d10 = backoff_ms(&c, 10);
            assert!((27_000..=30_000).contains(&d10), "{d10}");
            assert!(backoff_ms(&c, u32::MAX) <= 30_000);
        }
    }

    /// A minimal HTTP/1.1 receiver: answers each request with the next status of `script`
    /// (the last one repeated), or never answers when the status is 0. Records the requests.
    struct Receiver {
        url: String,
        requests: Arc<Mutex<Vec<(String, String)>>>,
    }

    impl Receiver {
        async fn start(script: Vec<u16>) -> Receiver {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let requests = Arc::new(Mutex::new(Vec::new()));
            let recorded = requests.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        return;
                    };
                    let status = script.get(n).or(script.last()).copied().unwrap_or(200);
                    n += 1;
                    let recorded = recorded.clone();
                    tokio::spawn(serve_one(sock, status, recorded));
                }
            });
            Receiver {
                url: format!("http://{addr}/hook?token=secret"),
                requests,
            }
        }

        fn requests(&self) -> Vec<(String, String)> {
            self.requests.lock().expect("lock").clone()
        }

        async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let r = self.requests();
                if r.len() >= n || Instant::now() > deadline {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Reads one request (head + Content-Length body), records (head, body), answers `status`.
    async fn serve_one(
        mut sock: TcpStream,
        status: u16,
        recorded: Arc<Mutex<Vec<(String, String)>>>,
    ) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        recorded.lock().expect("lock").push((head, body));
        if status == 0 {
            // Hang: hold the connection open without answering.
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = sock.write_all(resp.as_bytes()).await;
        let _ = sock.shutdown().await;
    }

    async fn wait_stats(n: &Notifier, done: impl Fn(&NotifyStats) -> bool) -> NotifyStats {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = n.stats();
            if done(&s) || Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn delivers_a_firing_notification() {
        let rx = Receiver::start(vec![200]).await;
        let n = Notifier::start(vec![fast(rx.url.clone())], "http://127.0.0.1:3002".into());
        // Pending transitions are not sent.
        n.notify(&[transition("gi_warning", None, None, AlertState::Pending)]);
        n.notify(&[firing("ledger-api")]);
        let reqs = rx.wait_for(1).await;
        assert_eq!(reqs.len(), 1);
        let (head, body) = &reqs[0];
        assert!(
            head.starts_with("POST /hook?token=secret HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json\r\n"),
            "{head}"
        );
        let v: Value = serde_json::from_str(body).expect("json body");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["alerts"][0]["labels"]["service"], "ledger-api");
        let s = wait_stats(&n, |s| s.sent == 1).await;
        assert_eq!(
            s,
            NotifyStats {
                sent: 1,
                ..Default::default()
            }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(rx.requests().len(), 1);
    }

    #[tokio::test]
    async fn retries_until_success() {
        let rx = Receiver::start(vec![500, 500, 200]).await;
        let mut config = fast(rx.url.clone());
        config.max_attempts = 6;
        let n = Notifier::start(vec![config], "http://127.0.0.1:3002".into());
        n.notify(&[firing("ledger-api")]);
        let s = wait_stats(&n, |s| s.sent == 1).await;
        assert_eq!(
            s,
            NotifyStats {
                sent: 1,
                failed_attempts: 2,
                dropped: 0,
                gave_up: 0
            }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reqs = rx.requests();
        assert_eq!(reqs.len(), 3, "exactly 3 attempts");
        assert!(
            reqs.iter().all(|(_, b)| b == &reqs[0].1),
            "same body on every attempt"
        );
    }

    #[tokio::test]
    async fn gives_up_on_a_dead_port() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let config = WebhookConfig {
            max_attempts: 4,
            ..fast(format!("http://127.0.0.1:{port}/hook"))
        };
        let n = Notifier::start(vec![config], "http://127.0.0.1:3002".into());
        let started = Instant::now();
        n.notify(&[firing("ledger-api")]);
        let s = wait_stats(&n, |s| s.gave_up == 1).await;
        assert_eq!(
            s,
            NotifyStats {
                sent: 0,
                failed_attempts: 4,
                dropped: 0,
                gave_up: 1
            }
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_hanging_receiver_delays_neither_notify_nor_other_webhooks() {
        let hang = Receiver::start(vec![0]).await;
        let ok = Receiver::start(vec![200]).await;
        let hang_config = WebhookConfig {
            max_attempts: 1,
            timeout_ms: 1_000,
            ..fast(hang.url.clone())
        };
        let n = Notifier::start(
            vec![hang_config, fast(ok.url.clone())],
            "http://127.0.0.1:3002".into(),
        );
        let started = Instant::now();
        n.notify(&[firing("a")]);
        n.notify(&[firing("b")]);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "notify() must not wait"
        );
        let reqs = ok.wait_for(2).await;
        assert_eq!(reqs.len(), 2);
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "the other webhook is not held up"
        );
        assert_eq!(hang.wait_for(1).await.len(), 1);
        // The hanging one times out, then the next one is tried (and hangs too).
        let s = wait_stats(&n, |s| s.gave_up == 2).await;
        assert_eq!(s.sent, 2);
        assert_eq!(s.gave_up, 2);
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let hang = Receiver::start(vec![0]).await;
        let config = WebhookConfig {
            max_attempts: 1,
            timeout_ms: 1_000,
            ..fast(hang.url.clone())
        };
        let n = Notifier::start(vec![config], "http://127.0.0.1:3002".into());
        let started = Instant::now();
        for _ in 0..QUEUE_CAPACITY + 10 {
            n.notify(&[firing("ledger-api")]);
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        let dropped = n.stats().dropped;
        // The delivery task may already have taken the first one off the queue.
        assert!((9..=10).contains(&dropped), "{dropped}");
    }

    #[test]
    fn outside_a_runtime_notifications_are_dropped_not_panicking() {
        let n = Notifier::start(
            vec![WebhookConfig::new("http://127.0.0.1:9/x")],
            "http://x".into(),
        );
        n.notify(&[firing("ledger-api")]);
        assert_eq!(n.stats().dropped, 1);
        let none = Notifier::start(vec![], "http://x".into());
        none.notify(&[firing("ledger-api")]);
        assert_eq!(none.stats(), NotifyStats::default());
    }
}
