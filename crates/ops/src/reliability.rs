//! The reliability component R of GI (SPEC §8): for every service, probe `/healthz` over HTTP
//! and scrape `/metrics`; over a 5-minute window compute availability (share of successful
//! probes), the 5xx rate and the p95 latency (from the request-duration histogram deltas).
//! R = mean over services of availability × (1 − min(1, 5xx rate / 5%)) × latency factor.

use mobius_core::integrity::service_reliability;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The window availability, error rate and latency are computed over.
pub const WINDOW_MS: i64 = 5 * 60 * 1000;
/// A probe slower than this counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Samples kept per service (5 minutes at one per 10 s, plus slack; bounded).
const MAX_POINTS: usize = 64;

/// Cumulative request counters scraped from one service's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub requests: f64,
    pub errors_5xx: f64,
    /// Cumulative histogram: upper bound (seconds) → count, summed over routes.
    pub buckets: BTreeMap<u64, f64>,
}

/// Parses the parts of our own exposition format the monitor needs.
pub fn parse_metrics(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if let Some(labels) = name_labels.strip_prefix("mobius_http_requests_total{") {
            s.requests += value;
            if label(labels, "status").is_some_and(|st| st.starts_with('5')) {
                s.errors_5xx += value;
            }
        } else if let Some(labels) = name_labels.strip_prefix("mobius_http_policy_refusals_total{")
        {
            // Deliberate refusals (automation halted) are not failures.
            if label(labels, "status").is_some_and(|st| st.starts_with('5')) {
                s.errors_5xx -= value;
            }
        } else if let Some(labels) =
            name_labels.strip_prefix("mobius_http_request_duration_seconds_bucket{")
            && let Some(le) = label(labels, "le")
        {
            let key = if le == "+Inf" {
                u64::MAX
            } else {
                match le.parse::<f64>() {
                    Ok(v) => (v * 1e6).round() as u64,
                    Err(_) => continue,
                }
            };
            *s.buckets.entry(key).or_insert(0.0) += value;
        }
    }
    s
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    rest.find('"').map(|end| &rest[..end])
}

/// p95 (seconds) from the difference of two cumulative histograms; None without requests.
pub fn p95_between(old: &Scrape, new: &Scrape) -> Option<f64> {
    let delta: Vec<(u64, f64)> = new
        .buckets
        .iter()
        .map(|(le, n)| {
            (
                *le,
                (n - old.buckets.get(le).copied().unwrap_or(0.0)).max(0.0),
            )
        })
        .collect();
    let total = delta
        .iter()
        .find(|(le, _)| *le == u64::MAX)
        .map(|(_, n)| *n)?;
    if total <= 0.0 {
        return None;
    }
    let target = 0.95 * total;
    let mut prev_le: f64 = 0.0;
    let mut prev_n: f64 = 0.0;
    for (le, n) in delta {
        let le_s = if le == u64::MAX {
            f64::INFINITY
        } else {
            le as f64 / 1e6
        };
        if n >= target {
            if !le_s.is_finite() {
                return Some(prev_le.max(10.0)); // beyond the last bound
            }
            // Linear interpolation inside the bucket, as Prometheus' histogram_quantile.
            let frac = if n > prev_n {
                (target - prev_n) / (n - prev_n)
            } else {
                1.0
            };
            return Some(prev_le + (le_s - prev_le) * frac);
        }
        prev_le = le_s;
        prev_n = n;
    }
    None
}

#[derive(Debug, Clone)]
struct Point {
    at_ms: i64,
    up: bool,
    scrape: Option<Scrape>,
}

/// What one service looks like over the window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceHealth {
    pub name: String,
    pub url: String,
    pub up: bool,
    pub latency_ms: Option<f64>,
    pub checked_at_ms: i64,
    pub availability: f64,
    pub error_rate: Option<f64>,
    pub p95_s: Option<f64>,
    pub reliability: f64,
}

pub struct ServiceProbe {
    pub name: String,
    pub url: String,
    points: VecDeque<Point>,
    last_latency_ms: Option<f64>,
}

impl ServiceProbe {
    pub fn new(name: &str, url: &str) -> Self {
        ServiceProbe {
            name: name.into(),
            url: url.trim_end_matches('/').into(),
            points: VecDeque::new(),
            last_latency_ms: None,
        }
    }

    /// Probes `/healthz` and scrapes `/metrics` (blocking; call from a blocking thread).
    pub fn probe(&mut self, agent: &ureq::Agent, now_ms: i64) {
        let start = std::time::Instant::now();
        let up = matches!(agent.get(&format!("{}/healthz", self.url)).call(), Ok(r) if r.status().is_success());
        self.last_latency_ms = Some((start.elapsed().as_secs_f64() * 1e6).round() / 1e3);
        let scrape = if up {
            agent
                .get(&format!("{}/metrics", self.url))
                .call()
                .ok()
                .and_then(|mut r| {
                    r.body_mut()
                        .with_config()
                        .limit(8 << 20)
                        .read_to_string()
                        .ok()
                })
                .map(|t| parse_metrics(&t))
        } else {
            None
        };
        self.record(now_ms, up, scrape);
    }

    /// Records one observation (also used by tests).
    pub fn record(&mut self, now_ms: i64, up: bool, scrape: Option<Scrape>) {
        self.points.push_back(Point {
            at_ms: now_ms,
            up,
            scrape,
        });
        while self.points.len() > MAX_POINTS
            || self
                .points
                .front()
                .is_some_and(|p| p.at_ms < now_ms - WINDOW_MS)
        {
            self.points.pop_front();
        }
    }

    pub fn health(&self) -> ServiceHealth {
        let n = self.points.len().max(1) as f64;
        let availability = self.points.iter().filter(|p| p.up).count() as f64 / n;
        let scrapes: Vec<&Point> = self.points.iter().filter(|p| p.scrape.is_some()).collect();
        let (error_rate, p95_s) = match (scrapes.first(), scrapes.last()) {
            (Some(a), Some(b)) if scrapes.len() >= 2 => {
                let (a, b) = (
                    a.scrape.as_ref().expect("filtered"),
                    b.scrape.as_ref().expect("filtered"),
                );
                let requests = b.requests - a.requests;
                let errors = b.errors_5xx - a.errors_5xx;
                let rate = (requests > 0.0).then(|| (errors / requests).clamp(0.0, 1.0));
                (rate, p95_between(a, b))
            }
            _ => (None, None),
        };
        let last = self.points.back();
        ServiceHealth {
            name: self.name.clone(),
            url: self.url.clone(),
            up: last.is_some_and(|p| p.up),
            latency_ms: self.last_latency_ms,
            checked_at_ms: last.map_or(0, |p| p.at_ms),
            availability,
            error_rate,
            p95_s,
            reliability: service_reliability(
                availability,
                error_rate.unwrap_or(0.0),
                p95_s.unwrap_or(0.0),
            ),
        }
    }
}

/// R over all services (None when there are none).
pub fn reliability(services: &[ServiceHealth]) -> Option<f64> {
    (!services.is_empty())
        .then(|| services.iter().map(|s| s.reliability).sum::<f64>() / services.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP mobius_http_requests_total x\n\
mobius_http_requests_total{service=\"ledger-api\",route=\"/v1/a\",method=\"POST\",status=\"201\"} 90\n\
mobius_http_requests_total{service=\"ledger-api\",route=\"/v1/a\",method=\"POST\",status=\"503\"} 10\n\
mobius_http_request_duration_seconds_bucket{service=\"ledger-api\",route=\"/v1/a\",method=\"POST\",le=\"0.1\"} 50\n\
mobius_http_request_duration_seconds_bucket{service=\"ledger-api\",route=\"/v1/a\",method=\"POST\",le=\"1\"} 90\n\
mobius_http_request_duration_seconds_bucket{service=\"ledger-api\",route=\"/v1/a\",method=\"POST\",le=\"5\"} 100\n\
mobius_http_request_duration_seconds_bucket{service=\"ledger-api\",route=\"/v1/a\",method=\"POST\",le=\"+Inf\"} 100\n";

    #[test]
    fn parses_and_computes_rates() {
        let s = parse_metrics(TEXT);
        assert_eq!((s.requests, s.errors_5xx), (100.0, 10.0));
        let p95 = p95_between(&Scrape::default(), &s).unwrap();
        // 95th of 100 lies halfway through the (1, 5] bucket.
        assert!((p95 - 3.0).abs() < 1e-9, "{p95}");
        let mut probe = ServiceProbe::new("ledger-api", "http://x");
        probe.record(0, true, Some(Scrape::default()));
        probe.record(10_000, true, Some(s));
        let h = probe.health();
        assert_eq!(h.availability, 1.0);
        assert!((h.error_rate.unwrap() - 0.1).abs() < 1e-12);
        // 10% errors ≥ 5% → the error factor is 0.
        assert_eq!(h.reliability, 0.0);
    }

    #[test]
    fn availability_and_window() {
        let mut probe = ServiceProbe::new("a", "http://x");
        probe.record(0, true, None);
        probe.record(10_000, false, None);
        assert_eq!(probe.health().availability, 0.5);
        assert!(!probe.health().up);
        // Old points leave the window.
        probe.record(WINDOW_MS + 20_000, true, None);
        assert_eq!(probe.health().availability, 1.0);
        // Idle and healthy: R = 1.
        assert_eq!(reliability(&[probe.health()]), Some(1.0));
        assert_eq!(reliability(&[]), None);
    }
}
