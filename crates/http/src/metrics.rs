//! Prometheus text exposition (format 0.0.4) without a metrics framework: per-route request
//! counters and latency histograms, process metrics, and service-specific collectors.
//! Metric names live here as constants so every service uses the same ones.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// The exact content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub const HTTP_REQUESTS_TOTAL: &str = "mobius_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "mobius_http_request_duration_seconds";

/// Latency bucket bounds in seconds (fine at the low end: most requests take < 10 ms).
pub const LATENCY_BUCKETS_S: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A fixed-bucket histogram updated with relaxed atomics (no lock on the hot path).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        self.observe_value(d.as_secs_f64());
        self.sum_ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Observes a plain value (batch sizes and the like); sum is kept in the same unit.
    pub fn observe_count(&self, v: u64) {
        self.observe_value(v as f64);
        // Stored as "nanos" so rendering divides by 1e9; scale up to keep one code path.
        self.sum_ns
            .fetch_add(v.saturating_mul(1_000_000_000), Ordering::Relaxed);
    }

    fn observe_value(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Writes `_bucket`, `_sum` and `_count` samples with the given label set (`a="b",...`).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

#[derive(Default)]
struct RouteStats {
    by_status: Mutex<BTreeMap<u16, u64>>,
    latency: OnceLock<Histogram>,
}

/// A service-specific collector appends whole metric families (with HELP/TYPE) to the output.
pub type Collector = Box<dyn Fn(&mut String) + Send + Sync>;

/// The metrics of one service.
pub struct Metrics {
    service: String,
    routes: RwLock<HashMap<(String, String), Arc<RouteStats>>>,
    refusals: Mutex<BTreeMap<(String, String, u16), u64>>,
    collectors: RwLock<Vec<Collector>>,
}

/// Escapes a label value per the text format.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `# HELP` and `# TYPE` lines.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes a single-sample gauge or counter family.
pub fn single(out: &mut String, name: &str, kind: &str, help: &str, labels: &str, value: f64) {
    family(out, name, kind, help);
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

impl Metrics {
    pub fn new(service: &str) -> Arc<Self> {
        Arc::new(Metrics {
            service: service.to_string(),
            routes: RwLock::default(),
            refusals: Mutex::default(),
            collectors: RwLock::default(),
        })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The `service="..."` label every sample of this service carries.
    pub fn service_label(&self) -> String {
        format!("service=\"{}\"", escape_label(&self.service))
    }

    pub fn add_collector(&self, c: Collector) {
        self.collectors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    /// Records one finished request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let key = (route.to_string(), method.to_string());
        let stats = {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            routes.get(&key).cloned()
        };
        let stats = match stats {
            Some(s) => s,
            None => {
                let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
                routes.entry(key).or_default().clone()
            }
        };
        *stats
            .by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_insert(0) += 1;
        stats
            .latency
            .get_or_init(|| Histogram::new(&LATENCY_BUCKETS_S))
            .observe(elapsed);
    }

    /// Records a deliberate refusal (see `error::PolicyRefusal`).
    pub fn observe_policy_refusal(&self, route: &str, method: &str, status: u16) {
        *self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_string(), method.to_string(), status))
            .or_insert(0) += 1;
    }

    /// Totals over all routes: (requests, 5xx responses).
    pub fn request_totals(&self) -> (u64, u64) {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let mut total = 0;
        let mut errors = 0;
        for s in routes.values() {
            for (status, n) in s.by_status.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                total += n;
                if *status >= 500 {
                    errors += n;
                }
            }
        }
        (total, errors)
    }

    /// The whole exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let svc = self.service_label();
        let routes: Vec<((String, String), Arc<RouteStats>)> = {
            let r = self.routes.read().unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<_> = r.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        family(
            &mut out,
            HTTP_REQUESTS_TOTAL,
            "counter",
            "HTTP requests by route, method and status code.",
        );
        for ((route, method), s) in &routes {
            for (status, n) in s.by_status.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(
                    out,
                    "{HTTP_REQUESTS_TOTAL}{{{svc},route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape_label(route),
                    escape_label(method)
                );
            }
        }
        family(
            &mut out,
            HTTP_REQUEST_DURATION,
            "histogram",
            "HTTP request latency by route and method.",
        );
        for ((route, method), s) in &routes {
            if let Some(h) = s.latency.get() {
                let labels = format!(
                    "{svc},route=\"{}\",method=\"{}\"",
                    escape_label(route),
                    escape_label(method)
                );
                h.render(&mut out, HTTP_REQUEST_DURATION, &labels);
            }
        }
        family(
            &mut out,
            "mobius_http_policy_refusals_total",
            "counter",
            "Responses refused by policy (automation halted); included in mobius_http_requests_total, not failures.",
        );
        for ((route, method, status), n) in self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "mobius_http_policy_refusals_total{{{svc},route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape_label(route),
                escape_label(method)
            );
        }
        render_process(&mut out);
        for c in self
            .collectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            c(&mut out);
        }
        out
    }
}

static START_TIME_S: OnceLock<f64> = OnceLock::new();

/// Records the process start time; call early in main.
pub fn mark_process_start() {
    let _ = START_TIME_S.get_or_init(|| mobius_core::time::now_ms() as f64 / 1000.0);
}

/// Standard `process_*` metrics read from /proc (Linux); absent elsewhere.
fn render_process(out: &mut String) {
    // /proc/self/stat fields 14 and 15 are utime and stime in clock ticks (USER_HZ = 100 on Linux).
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..])
    {
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // After the ")" the first field is the state (field 3), so utime (14) is index 11.
        let cpu = (ticks(11) + ticks(12)) / 100.0;
        single(
            out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            "",
            cpu,
        );
    }
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let pages: Vec<f64> = statm
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if pages.len() >= 2 {
            single(
                out,
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                "",
                pages[0] * 4096.0,
            );
            single(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                "",
                pages[1] * 4096.0,
            );
        }
    }
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        single(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            "",
            rd.count() as f64,
        );
    }
    if let Some(start) = START_TIME_S.get() {
        single(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            "",
            *start,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new("ledger-api");
        m.observe_request("/v1/attestations", "POST", 201, Duration::from_micros(300));
        m.observe_request("/v1/attestations", "POST", 201, Duration::from_millis(30));
        m.observe_request("/v1/attestations", "POST", 500, Duration::from_millis(2));
        let text = m.render();
        assert!(text.contains(
            "mobius_http_requests_total{service=\"ledger-api\",route=\"/v1/attestations\",method=\"POST\",status=\"201\"} 2"
        ), "{text}");
        assert!(text.contains(
            "mobius_http_request_duration_seconds_bucket{service=\"ledger-api\",route=\"/v1/attestations\",method=\"POST\",le=\"0.0005\"} 1"
        ), "{text}");
        assert!(text.contains(
            "mobius_http_request_duration_seconds_count{service=\"ledger-api\",route=\"/v1/attestations\",method=\"POST\"} 3"
        ), "{text}");
        assert_eq!(m.request_totals(), (3, 1));
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
