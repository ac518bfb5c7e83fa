//! The integrity monitor (SPEC §8, §9.1): every 10 s it measures the GI components that exist
//! in this deployment (L ledger, R reliability; E and S arrive with their services and are
//! left out — the weights renormalise), computes GI, MII (1-hour EWMA) and the 30-day
//! time-weighted average, stores the sample (attesting one every 5 minutes), evaluates the
//! alert rules, notifies webhooks, and acts: `gi_critical` halts automation and opens an
//! incident; `service_down` opens an incident. Health endpoints read the cached snapshot.

use crate::alerts::{
    AlertEngine, AlertState, Observations, ServiceObservation, Severity, Transition,
};
use crate::attest::MONITOR_SOURCE;
use crate::automation::Automation;
use crate::incidents::Incidents;
use crate::ledger_check::{CheckRow, LedgerCheck};
use crate::notify::{Notifier, WebhookConfig};
use crate::reliability::{PROBE_TIMEOUT, ServiceHealth, ServiceProbe, reliability};
use mobius_core::integrity::{Components, GI_THRESHOLD, Weights, band, gi, mii_update};
use mobius_core::note::NoteVerifier;
use mobius_core::time::{now_ms, rfc3339_ms};
use mobius_http::metrics::{Histogram, LATENCY_BUCKETS_S, escape_label, family, single};
use mobius_ledger::Ledger;
use mobius_store::{Conn, Param, Pool, StoreError};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub sample_interval: Duration,
    pub scrub_per_sample: u64,
    pub attest_every_ms: i64,
    /// (service name, base URL) of every service to probe.
    pub services: Vec<(String, String)>,
    pub block_interval_ms: i64,
    pub weights: Weights,
    pub webhooks: Vec<WebhookConfig>,
    pub external_url: String,
    /// The data volume whose usage `disk_usage` watches.
    pub data_dir: PathBuf,
    /// Alert rules (default: SPEC §9.1).
    pub rules: Vec<crate::alerts::RuleConfig>,
}

impl MonitorConfig {
    pub fn new(services: Vec<(String, String)>, data_dir: PathBuf, external_url: String) -> Self {
        MonitorConfig {
            sample_interval: Duration::from_secs(10),
            scrub_per_sample: 10_000,
            attest_every_ms: 5 * 60 * 1000,
            services,
            block_interval_ms: 1000,
            weights: Weights::default(),
            webhooks: Vec::new(),
            external_url,
            data_dir,
            rules: crate::alerts::default_rules(),
        }
    }
}

/// The cached result of the latest sample.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub at_ms: i64,
    pub gi: Option<f64>,
    pub mii: Option<f64>,
    pub twa_30d: Option<f64>,
    pub components: BTreeMap<String, f64>,
    pub checks: Vec<CheckRow>,
    pub recommendations: Vec<String>,
    pub services: Vec<ServiceHealth>,
    pub disk_used_ratio: Option<f64>,
    pub ledger_bad_index: Option<u64>,
    pub sample_ms: f64,
}

pub struct Monitor {
    pub automation: Arc<Automation>,
    pub incidents: Arc<Incidents>,
    alerts: Mutex<AlertEngine>,
    notifier: Notifier,
    snapshot: RwLock<Option<Snapshot>>,
    ledger: Arc<Ledger>,
    pool: Pool,
    config: MonitorConfig,
    check: Arc<Mutex<LedgerCheck>>,
    probes: Arc<Mutex<Vec<ServiceProbe>>>,
    /// (at_ms, gi) for the 30-day time-weighted average (bounded by the window).
    history: Mutex<VecDeque<(i64, f64)>>,
    last_attested_ms: AtomicU64,
    samples_total: AtomicU64,
    sample_seconds: Histogram,
}

/// Data volume usage (0..1) of the filesystem holding `dir`.
pub fn disk_used_ratio(dir: &std::path::Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `st` a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
        return None;
    }
    let total = st.f_blocks as f64;
    let avail = st.f_bavail as f64;
    let free = st.f_bfree as f64;
    // Used share of what non-root users can use, like df(1).
    let used = total - free;
    Some((used / (used + avail)).clamp(0.0, 1.0))
}

const TWA_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;
/// Samples older than this are deleted (the 30-day TWA plus margin).
const SAMPLE_RETENTION_MS: i64 = 35 * 24 * 3600 * 1000;

fn store_sample(c: &mut Conn, s: &Snapshot) -> Result<(), StoreError> {
    let comp = |k: &str| s.components.get(k).copied();
    let detail =
        json!({"checks": s.checks, "services": s.services, "twa_30d": s.twa_30d}).to_string();
    c.execute(
        "INSERT INTO integrity_samples (at_ms, gi, mii, ledger, economy, reliability, sentinels, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (at_ms) DO NOTHING",
        &[
            Param::Int(s.at_ms),
            s.gi.map_or(Param::Null, Param::Float),
            s.mii.map_or(Param::Null, Param::Float),
            comp("ledger").map_or(Param::Null, Param::Float),
            comp("economy").map_or(Param::Null, Param::Float),
            comp("reliability").map_or(Param::Null, Param::Float),
            comp("sentinels").map_or(Param::Null, Param::Float),
            Param::Text(&detail),
        ],
    )?;
    Ok(())
}

fn time_weighted(history: &VecDeque<(i64, f64)>, now_ms: i64, interval_ms: i64) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    let mut iter = history.iter().peekable();
    while let Some(&(at, g)) = iter.next() {
        let next = iter.peek().map_or(now_ms, |(t, _)| *t);
        // A gap (the monitor was down) weighs at most two intervals.
        let dt = ((next - at).max(0)).min(2 * interval_ms) as f64;
        num += g * dt.max(1.0);
        den += dt.max(1.0);
    }
    (den > 0.0).then(|| num / den)
}

impl Monitor {
    /// Builds the monitor (loading the last MII and the 30-day history) and starts sampling.
    pub async fn start(
        ledger: Arc<Ledger>,
        pool: Pool,
        automation: Arc<Automation>,
        incidents: Arc<Incidents>,
        config: MonitorConfig,
    ) -> Result<Arc<Monitor>, StoreError> {
        let verifier = NoteVerifier::parse(&ledger.signer.verifier_key())
            .map_err(|e| StoreError::other(format!("ledger verifier key: {e}")))?;
        let check = LedgerCheck::new(verifier, config.block_interval_ms, config.scrub_per_sample);
        let p = pool.clone();
        let since = now_ms() - TWA_WINDOW_MS;
        let history: VecDeque<(i64, f64)> = tokio::task::spawn_blocking(move || {
            p.with(|c| {
                c.query(
                    "SELECT at_ms, gi FROM integrity_samples WHERE at_ms >= $1 AND gi IS NOT NULL ORDER BY at_ms",
                    &[Param::Int(since)],
                )?
                .iter()
                .map(|r| Ok((r.i64(0)?, r.f64(1)?)))
                .collect::<Result<VecDeque<_>, StoreError>>()
            })
        })
        .await
        .map_err(|e| StoreError::other(e.to_string()))??;
        let p = pool.clone();
        let last_mii = tokio::task::spawn_blocking(move || {
            p.with(|c| {
                c.query_opt("SELECT at_ms, mii FROM integrity_samples WHERE mii IS NOT NULL ORDER BY at_ms DESC LIMIT 1", &[])?
                    .map(|r| Ok::<_, StoreError>((r.i64(0)?, r.f64(1)?)))
                    .transpose()
            })
        })
        .await
        .map_err(|e| StoreError::other(e.to_string()))??;
        let probes = config
            .services
            .iter()
            .map(|(n, u)| ServiceProbe::new(n, u))
            .collect();
        let notifier = Notifier::start(config.webhooks.clone(), config.external_url.clone());
        let m = Arc::new(Monitor {
            automation,
            incidents,
            alerts: Mutex::new(AlertEngine::new(config.rules.clone())),
            notifier,
            snapshot: RwLock::new(last_mii.map(|(at, mii)| Snapshot {
                at_ms: at,
                gi: None,
                mii: Some(mii),
                twa_30d: None,
                components: BTreeMap::new(),
                checks: Vec::new(),
                recommendations: Vec::new(),
                services: Vec::new(),
                disk_used_ratio: None,
                ledger_bad_index: None,
                sample_ms: 0.0,
            })),
            ledger,
            pool,
            check: Arc::new(Mutex::new(check)),
            probes: Arc::new(Mutex::new(probes)),
            history: Mutex::new(history),
            // The first attested sample comes one period after start (not at start-up, so a
            // fresh ledger is not written to by merely starting it).
            last_attested_ms: AtomicU64::new(now_ms().max(0) as u64),
            samples_total: AtomicU64::new(0),
            sample_seconds: Histogram::new(&LATENCY_BUCKETS_S),
            config,
        });
        let weak = Arc::downgrade(&m);
        let interval = m.config.sample_interval;
        tokio::spawn(async move {
            loop {
                let Some(m) = weak.upgrade() else { return };
                if let Err(e) = m.sample_once().await {
                    mobius_http::log::error(
                        "integrity sample failed",
                        &[("error", json!(e.to_string()))],
                    );
                }
                drop(m);
                tokio::time::sleep(interval).await;
            }
        });
        Ok(m)
    }

    pub fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn current_gi(&self) -> Option<f64> {
        self.snapshot().and_then(|s| s.gi)
    }

    pub fn active_alerts(&self) -> Vec<crate::alerts::Alert> {
        self.alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .active()
    }

    pub fn ack_alert(&self, id: &str, by: &str) -> Option<crate::alerts::Alert> {
        let acked = self
            .alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ack(id, by);
        if let Some(a) = &acked {
            let (pool, id, by) = (self.pool.clone(), a.id.clone(), by.to_string());
            tokio::task::spawn_blocking(move || {
                let _ = pool.with(|c| {
                    c.execute(
                        "UPDATE alert_history SET acked_by = $2 WHERE id = (SELECT MAX(id) FROM alert_history WHERE alert_id = $1)",
                        &[Param::Text(&id), Param::Text(&by)],
                    )
                });
            });
        }
        acked
    }

    /// One full sample. Public so tests and `mobius bench` can drive it directly.
    pub async fn sample_once(&self) -> Result<Snapshot, StoreError> {
        let started = Instant::now();
        let now = now_ms();
        // L: incremental ledger verification on a blocking thread.
        let (check, pool) = (self.check.clone(), self.pool.clone());
        let ledger_sample = tokio::task::spawn_blocking(move || {
            let mut check = check.lock().unwrap_or_else(|p| p.into_inner());
            let r = pool.with(|c| check.sample(c));
            (r, check.failure())
        })
        .await
        .map_err(|e| StoreError::other(e.to_string()))?;
        let (ledger_result, ledger_failure) = ledger_sample;
        let ledger_sample = ledger_result?;
        // R: probe every service.
        let probes = self.probes.clone();
        let services: Vec<ServiceHealth> = tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(PROBE_TIMEOUT))
                .http_status_as_error(false)
                .build()
                .into();
            let mut probes = probes.lock().unwrap_or_else(|p| p.into_inner());
            probes
                .iter_mut()
                .map(|p| {
                    p.probe(&agent, now);
                    p.health()
                })
                .collect()
        })
        .await
        .map_err(|e| StoreError::other(e.to_string()))?;
        let components = Components {
            ledger: Some(ledger_sample.score),
            economy: None,
            reliability: reliability(&services),
            sentinels: None,
        };
        let gi_now = gi(&components, &self.config.weights);
        let previous = self.snapshot();
        let mii = gi_now.map(|g| {
            let prev = previous.as_ref().and_then(|p| p.mii.map(|m| (m, p.at_ms)));
            mii_update(prev, g, now)
        });
        let twa = {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(g) = gi_now {
                h.push_back((now, g));
            }
            while h.front().is_some_and(|(t, _)| *t < now - TWA_WINDOW_MS) {
                h.pop_front();
            }
            time_weighted(&h, now, self.config.sample_interval.as_millis() as i64)
        };
        let disk = disk_used_ratio(&self.config.data_dir);
        let mut comp_map = BTreeMap::new();
        for (k, v) in [
            ("ledger", components.ledger),
            ("economy", components.economy),
            ("reliability", components.reliability),
            ("sentinels", components.sentinels),
        ] {
            if let Some(v) = v {
                comp_map.insert(k.to_string(), v);
            }
        }
        let mut checks = ledger_sample.checks.clone();
        for s in &services {
            checks.push(CheckRow {
                name: format!("service.{}.healthz", s.name),
                status: if s.up { "pass" } else { "fail" },
                observed: json!(s.latency_ms),
                threshold: json!("200 within 2 s"),
            });
        }
        if let Some(g) = gi_now {
            checks.push(CheckRow {
                name: "gi".into(),
                status: if g >= GI_THRESHOLD { "pass" } else { "fail" },
                observed: json!(g),
                threshold: json!(GI_THRESHOLD),
            });
        }
        let mut recommendations = Vec::new();
        if let Some(f) = &ledger_failure {
            recommendations.push(format!(
                "Ledger integrity: {f}. Run `mobius ledger verify` and follow docs/operations/runbooks/gi-below-threshold.md."
            ));
        }
        for s in services.iter().filter(|s| !s.up) {
            recommendations.push(format!(
                "{} is not answering /healthz at {}: see docs/operations/runbooks/service-down.md.",
                s.name, s.url
            ));
        }
        if ledger_sample.score == 0.5 {
            recommendations.push("Blocks are not being sealed: check the ledger sequencer (logs: \"refusing to sign\").".into());
        }
        let snap = Snapshot {
            at_ms: now,
            gi: gi_now,
            mii,
            twa_30d: twa,
            components: comp_map,
            checks,
            recommendations,
            services: services.clone(),
            disk_used_ratio: disk,
            ledger_bad_index: ledger_sample.bad_index,
            sample_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());

        // Store the sample; attest one every attest_every_ms.
        let last = self.last_attested_ms.load(Ordering::Acquire) as i64;
        if now - last >= self.config.attest_every_ms {
            let s2 = snap.clone();
            let payload = json!({
                "gi": snap.gi, "mii": snap.mii, "twa_30d": snap.twa_30d, "components": snap.components,
                "at": rfc3339_ms(now), "ledger_verified_size": ledger_sample.verified_size,
            });
            let attested = self
                .ledger
                .attest(
                    "integrity.sample",
                    None,
                    MONITOR_SOURCE,
                    payload,
                    Some(Box::new(move |c: &mut Conn, _: &[_]| {
                        store_sample(c, &s2).map_err(mobius_http::ApiError::from)
                    })),
                )
                .await;
            match attested {
                Ok(_) => self.last_attested_ms.store(now as u64, Ordering::Release),
                Err(e) => mobius_http::log::error(
                    "attesting the integrity sample failed",
                    &[("error", json!(e.to_string()))],
                ),
            }
        } else {
            // Through the sequencer: a separate SQLite writer would queue behind its group
            // commits for seconds on a busy ledger (measured), stalling the sample.
            let s2 = snap.clone();
            let stored = self
                .ledger
                .append_with(
                    Vec::new(),
                    Some(Box::new(move |c: &mut Conn, _: &[_]| {
                        store_sample(c, &s2)?;
                        // Retention: keep 35 days.
                        if s2.at_ms % 3_600_000 < 10_000 {
                            c.execute(
                                "DELETE FROM integrity_samples WHERE at_ms < $1",
                                &[Param::Int(s2.at_ms - SAMPLE_RETENTION_MS)],
                            )?;
                        }
                        Ok(())
                    })),
                )
                .await;
            if let Err(e) = stored {
                // Never skip alert evaluation because a sample could not be stored.
                mobius_http::log::error(
                    "storing the integrity sample failed",
                    &[("error", json!(e.to_string()))],
                );
            }
        }

        // Alerts.
        let obs = Observations {
            now_ms: now,
            gi: gi_now,
            services: services
                .iter()
                .map(|s| ServiceObservation {
                    name: s.name.clone(),
                    healthy: s.up,
                    p95_s: s.p95_s,
                    error_rate: s.error_rate,
                })
                .collect(),
            disk_used_ratio: disk,
            last_full_backup_ms: None,
            backups_enabled: false,
        };
        let transitions = self
            .alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .evaluate(&obs);
        if !transitions.is_empty() {
            self.handle_transitions(&transitions).await;
        }
        self.samples_total.fetch_add(1, Ordering::Relaxed);
        self.sample_seconds.observe(started.elapsed());
        Ok(snap)
    }

    async fn handle_transitions(&self, transitions: &[Transition]) {
        // History goes through the sequencer (no separate writer waiting for SQLite's lock).
        let rows = transitions.to_vec();
        let history = self
            .ledger
            .append_with(
                Vec::new(),
                Some(Box::new(move |c: &mut Conn, _: &[_]| {
                for t in &rows {
                    let a = &t.alert;
                    c.execute(
                        "INSERT INTO alert_history (alert_id, rule, severity, from_state, to_state, at_ms, value, labels, summary, acked_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        &[
                            Param::Text(&a.id),
                            Param::Text(&a.rule),
                            Param::Text(a.severity.as_str()),
                            t.from.map(|s| s.as_str()).into(),
                            Param::Text(t.to.as_str()),
                            Param::Int(a.since_ms),
                            Param::Float(a.value),
                            Param::Text(&json!(a.labels).to_string()),
                            Param::Text(&a.summary),
                            a.acked_by.as_deref().into(),
                        ],
                    )?;
                }
                Ok(())
            })),
            )
            .await;
        if let Err(e) = history {
            mobius_http::log::error(
                "recording alert history failed",
                &[("error", json!(e.to_string()))],
            );
        }
        for t in transitions {
            let level = if t.to == AlertState::Firing {
                mobius_http::log::Level::Warn
            } else {
                mobius_http::log::Level::Info
            };
            mobius_http::log::log(
                level,
                "alert",
                &[
                    ("alert", json!(t.alert.id)),
                    ("state", json!(t.to.as_str())),
                    ("summary", json!(t.alert.summary)),
                ],
            );
        }
        self.notifier.notify(transitions);
        for t in transitions.iter().filter(|t| t.to == AlertState::Firing) {
            let a = &t.alert;
            if a.rule == "gi_critical" {
                let reason = format!("gi_critical: {}", a.summary);
                if let Err(e) = self
                    .automation
                    .halt(&reason, "monitor", MONITOR_SOURCE)
                    .await
                {
                    mobius_http::log::error(
                        "automation halt failed",
                        &[("error", json!(e.to_string()))],
                    );
                }
            }
            if a.severity == Severity::Critical
                && let Err(e) = self.incidents.open_for_alert(a).await
            {
                mobius_http::log::error(
                    "opening an incident failed",
                    &[("error", json!(e.to_string()))],
                );
            }
        }
    }

    /// The integrity metric families (added to every service's /metrics).
    pub fn render_metrics(&self, out: &mut String, svc: &str) {
        let snap = self.snapshot();
        let sep = if svc.is_empty() { "" } else { "," };
        if let Some(s) = &snap {
            if let Some(g) = s.gi {
                single(
                    out,
                    "mobius_gi",
                    "gauge",
                    "Global Integrity score (0..1).",
                    svc,
                    g,
                );
            }
            if let Some(m) = s.mii {
                single(
                    out,
                    "mobius_mii",
                    "gauge",
                    "Mobius Integrity Index: 1-hour EWMA of GI.",
                    svc,
                    m,
                );
            }
            if let Some(t) = s.twa_30d {
                single(
                    out,
                    "mobius_gi_twa_30d",
                    "gauge",
                    "30-day time-weighted average of GI.",
                    svc,
                    t,
                );
            }
            family(
                out,
                "mobius_gi_component",
                "gauge",
                "Measured GI components (0..1); unmeasured ones are absent.",
            );
            for (k, v) in &s.components {
                out.push_str(&format!(
                    "mobius_gi_component{{{svc}{sep}component=\"{k}\"}} {v}\n"
                ));
            }
            family(
                out,
                "mobius_service_up",
                "gauge",
                "The monitor's /healthz probe of each service (1 up, 0 down).",
            );
            for sh in &s.services {
                out.push_str(&format!(
                    "mobius_service_up{{{svc}{sep}target=\"{}\"}} {}\n",
                    escape_label(&sh.name),
                    u8::from(sh.up)
                ));
            }
            if let Some(d) = s.disk_used_ratio {
                single(
                    out,
                    "mobius_disk_used_ratio",
                    "gauge",
                    "Used share of the data volume.",
                    svc,
                    d,
                );
            }
        }
        single(
            out,
            "mobius_gi_threshold",
            "gauge",
            "GI below this halts automation.",
            svc,
            GI_THRESHOLD,
        );
        single(
            out,
            "mobius_automation_halted",
            "gauge",
            "1 while automation is halted.",
            svc,
            f64::from(u8::from(self.automation.is_halted())),
        );
        let active = self.active_alerts();
        family(
            out,
            "mobius_alerts_firing",
            "gauge",
            "Firing alerts by severity.",
        );
        for sev in [Severity::Critical, Severity::Warning] {
            let n = active
                .iter()
                .filter(|a| a.state == AlertState::Firing && a.severity == sev)
                .count();
            out.push_str(&format!(
                "mobius_alerts_firing{{{svc}{sep}severity=\"{}\"}} {n}\n",
                sev.as_str()
            ));
        }
        single(
            out,
            "mobius_integrity_samples_total",
            "counter",
            "Integrity samples taken by this process.",
            svc,
            self.samples_total.load(Ordering::Relaxed) as f64,
        );
        family(
            out,
            "mobius_integrity_sample_duration_seconds",
            "histogram",
            "Time to take one integrity sample.",
        );
        self.sample_seconds
            .render(out, "mobius_integrity_sample_duration_seconds", svc);
        let n = self.notifier.stats();
        single(
            out,
            "mobius_alert_notifications_sent_total",
            "counter",
            "Webhook notifications delivered.",
            svc,
            n.sent as f64,
        );
        single(
            out,
            "mobius_alert_notifications_dropped_total",
            "counter",
            "Webhook notifications dropped (queue full) or given up after retries.",
            svc,
            (n.dropped + n.gave_up) as f64,
        );
    }
}

/// `/healthz` GI fields from a snapshot.
fn gi_fields(snap: Option<&Snapshot>) -> serde_json::Map<String, Value> {
    let g = snap.and_then(|s| s.gi);
    let mut m = serde_json::Map::new();
    m.insert("gi".into(), json!(g));
    m.insert("gi_threshold".into(), json!(GI_THRESHOLD));
    m.insert("gi_ok".into(), json!(g.is_some_and(|g| g >= GI_THRESHOLD)));
    m
}

/// The `/api/integrity-check` body from a snapshot (the same for the in-process monitor and
/// for services that read the monitor's stored samples).
fn check_body(
    service: &str,
    snap: Option<&Snapshot>,
    a: &crate::automation::AutomationState,
    missing: &str,
) -> (bool, Value) {
    let g = snap.and_then(|s| s.gi);
    let status = match g {
        Some(v) if v >= 0.97 => "healthy",
        Some(v) if v >= GI_THRESHOLD => "degraded",
        _ => "critical",
    };
    let comp = |k: &str| snap.and_then(|s| s.components.get(k).copied());
    let body = json!({
        "service": service,
        "gi": g,
        "mii": snap.and_then(|s| s.mii),
        "twa_30d": snap.and_then(|s| s.twa_30d),
        "status": status,
        "band": g.map(|v| format!("{:?}", band(v)).to_lowercase()),
        "components": {"ledger": comp("ledger"), "economy": comp("economy"), "reliability": comp("reliability"), "sentinels": comp("sentinels")},
        "checks": snap.map(|s| json!(s.checks)).unwrap_or(json!([])),
        "recommendations": snap.map(|s| json!(s.recommendations)).unwrap_or(json!([missing])),
        "automation": {"halted": a.halted, "since": rfc3339_ms(a.since_ms), "reason": a.reason},
        "sampled_at": snap.map(|s| rfc3339_ms(s.at_ms)),
        "timestamp": rfc3339_ms(now_ms()),
    });
    (g.is_some_and(|v| v >= GI_THRESHOLD), body)
}

impl mobius_http::health::IntegritySource for Monitor {
    fn healthz_fields(&self) -> serde_json::Map<String, Value> {
        gi_fields(self.snapshot().as_ref())
    }

    fn integrity_check(&self, service: &str) -> (bool, Value) {
        check_body(
            service,
            self.snapshot().as_ref(),
            &self.automation.state(),
            "The first integrity sample has not been taken yet.",
        )
    }
}

/// GI for services that run without the monitor (split deployments: `mobius serve ledger`,
/// `mobius serve shield`): the monitor's latest stored sample, read every 2 s. A sample older
/// than `stale_after` counts as no sample (GI unknown → integrity-check 503), so a dead
/// monitor is visible rather than frozen at its last good score.
pub struct StoredIntegrity {
    latest: RwLock<Option<Snapshot>>,
    automation: Arc<Automation>,
    stale_after_ms: i64,
}

fn load_latest(c: &mut Conn) -> Result<Option<Snapshot>, StoreError> {
    let row = c.query_opt(
        "SELECT at_ms, gi, mii, ledger, economy, reliability, sentinels, detail FROM integrity_samples ORDER BY at_ms DESC LIMIT 1",
        &[],
    )?;
    let Some(r) = row else { return Ok(None) };
    let detail: Value = serde_json::from_str(r.text(7)?).unwrap_or(Value::Null);
    let mut components = BTreeMap::new();
    for (i, k) in [
        (3, "ledger"),
        (4, "economy"),
        (5, "reliability"),
        (6, "sentinels"),
    ] {
        if let Some(v) = r.opt_f64(i)? {
            components.insert(k.to_string(), v);
        }
    }
    Ok(Some(Snapshot {
        at_ms: r.i64(0)?,
        gi: r.opt_f64(1)?,
        mii: r.opt_f64(2)?,
        twa_30d: detail["twa_30d"].as_f64(),
        components,
        checks: detail["checks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| CheckRow {
                        name: c["name"].as_str().unwrap_or("").to_string(),
                        status: match c["status"].as_str() {
                            Some("pass") => "pass",
                            Some("fail") => "fail",
                            _ => "warn",
                        },
                        observed: c["observed"].clone(),
                        threshold: c["threshold"].clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        recommendations: Vec::new(),
        services: Vec::new(),
        disk_used_ratio: None,
        ledger_bad_index: None,
        sample_ms: 0.0,
    }))
}

impl StoredIntegrity {
    pub fn start(
        pool: Pool,
        automation: Arc<Automation>,
        stale_after: Duration,
    ) -> Arc<StoredIntegrity> {
        let s = Arc::new(StoredIntegrity {
            latest: RwLock::new(None),
            automation,
            stale_after_ms: stale_after.as_millis() as i64,
        });
        let weak = Arc::downgrade(&s);
        tokio::spawn(async move {
            loop {
                let Some(s) = weak.upgrade() else { return };
                let p = pool.clone();
                if let Ok(Ok(snap)) = tokio::task::spawn_blocking(move || p.with(load_latest)).await
                {
                    *s.latest.write().unwrap_or_else(|p| p.into_inner()) = snap;
                }
                drop(s);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        s
    }

    fn fresh(&self) -> Option<Snapshot> {
        let snap = self
            .latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        snap.filter(|s| now_ms() - s.at_ms <= self.stale_after_ms)
    }
}

impl mobius_http::health::IntegritySource for StoredIntegrity {
    fn healthz_fields(&self) -> serde_json::Map<String, Value> {
        gi_fields(self.fresh().as_ref())
    }

    fn integrity_check(&self, service: &str) -> (bool, Value) {
        check_body(
            service,
            self.fresh().as_ref(),
            &self.automation.state(),
            "No recent integrity sample in the store: is the portal (integrity monitor) running?",
        )
    }
}

impl mobius_http::health::Guard for Automation {
    fn check(&self) -> Result<(), mobius_http::ApiError> {
        self.guard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twa_weights_by_time_and_caps_gaps() {
        let h: VecDeque<(i64, f64)> = [(0, 1.0), (10_000, 0.0)].into_iter().collect();
        assert!((time_weighted(&h, 20_000, 10_000).unwrap() - 0.5).abs() < 1e-9);
        // A one-hour gap after a bad sample counts as two intervals only.
        let h: VecDeque<(i64, f64)> = [(0, 0.0), (3_600_000, 1.0)].into_iter().collect();
        assert!(
            (time_weighted(&h, 3_610_000, 10_000).unwrap() - (10_000.0 / 30_000.0)).abs() < 1e-9
        );
        assert!(
            disk_used_ratio(std::path::Path::new("/")).is_some_and(|d| (0.0..=1.0).contains(&d))
        );
    }
}
