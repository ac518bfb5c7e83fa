//! The alert rule engine (SPEC §9.1): pure and deterministic. The integrity monitor measures
//! the system every 10 s, hands the measurements to [`AlertEngine::evaluate`] together with the
//! time, and gets back the state transitions that evaluation caused. No I/O, no clock reads.
//!
//! # Lifecycle
//!
//! An alert *instance* is one rule applied to one subject: the whole system for the GI, disk
//! and backup rules, one service for the per-service rules (label `service=NAME`). Its id is
//! stable: the rule name plus its sorted labels (`service_down:service=ledger-api`, `gi_critical`).
//!
//! - The first evaluation at which the rule's condition holds creates the instance as
//!   `pending` (reported as a transition from `None`).
//! - It becomes `firing` at the first evaluation at which the condition holds, it has been
//!   active for at least `for_ms`, and at least `for_samples` evaluations with the condition
//!   holding have been counted (rules use one or the other; `for_ms = 0, for_samples = 1` fires
//!   at once, reported as a single transition from `None` straight to `firing`).
//! - It ends when the measurement crosses back past the threshold by the rule's hysteresis
//!   margin ([`GI_RESOLVE_MARGIN`], [`LATENCY_RESOLVE_FACTOR`], [`ERROR_RATE_RESOLVE_FACTOR`],
//!   [`DISK_RESOLVE_MARGIN`]). A firing instance is then reported as `firing → resolved`; a
//!   pending instance that never fired is **dropped silently** (no transition): nothing was
//!   notified for it, so a "resolved" would only be noise for receivers and history.
//! - In the hysteresis band (no longer beyond the threshold, not yet past the clear margin) an
//!   instance keeps its state: it neither resolves nor counts a sample, and it never moves to
//!   `firing` on a band sample. This is what stops a value oscillating around a threshold from
//!   flapping: the instance stays active for the whole episode.
//! - A missing measurement (`None`, or a non-finite number) neither starts nor ends an
//!   instance, and does not count as a sample. Exception: when a service disappears from the
//!   observations altogether, every per-service instance for it ends (it is no longer
//!   monitored, so nothing would ever end them otherwise).
//!
//! Resolved instances are not kept: history is the caller's job (it gets every transition).
//! Memory is bounded: at most [`MAX_ACTIVE_ALERTS`] active instances; a new instance beyond
//! that is refused and counted in [`AlertEngine::dropped_instances`].
//!
//! # Rules
//!
//! A rule's behaviour is chosen by its name: `gi_critical`, `gi_warning` (and any other name
//! starting with `gi_`, e.g. a `gi_safe_stop` at 0.90: "GI below `threshold`"),
//! `service_down`, `slow_responses`, `error_rate`, `disk_usage`, `backup_stale`. Rules with
//! other names, disabled rules and later duplicates of a name are never evaluated.
//! Threshold units: GI and ratios are in 0..1, `slow_responses` in seconds of p95 latency,
//! `backup_stale` in seconds of backup age; `service_down` has no threshold.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// GI alerts resolve only once GI ≥ threshold + this margin.
pub const GI_RESOLVE_MARGIN: f64 = 0.005;
/// Latency alerts resolve only once p95 ≤ threshold × this factor.
pub const LATENCY_RESOLVE_FACTOR: f64 = 0.9;
/// Error-rate alerts resolve only once the 5xx share ≤ threshold × this factor.
pub const ERROR_RATE_RESOLVE_FACTOR: f64 = 0.8;
/// Disk alerts resolve only once usage ≤ threshold − this margin.
pub const DISK_RESOLVE_MARGIN: f64 = 0.02;
/// Most active (pending + firing) alert instances kept at once.
pub const MAX_ACTIVE_ALERTS: usize = 1000;
/// Longest `acked_by` kept (characters); longer names are truncated.
pub const MAX_ACKED_BY_CHARS: usize = 128;
/// Default `backup_stale` threshold: 26 h (a daily full backup plus two hours of slack).
pub const BACKUP_STALE_DEFAULT_S: f64 = 26.0 * 3600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Sort key: critical first.
    fn rank(self) -> u8 {
        match self {
            Severity::Critical => 0,
            Severity::Warning => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// What the integrity monitor measured at one evaluation (every 10 s).
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub now_ms: i64,
    /// None: not measurable yet.
    pub gi: Option<f64>,
    pub services: Vec<ServiceObservation>,
    /// Data volume usage, 0..1.
    pub disk_used_ratio: Option<f64>,
    /// None: never (or backups not configured: see `backups_enabled`).
    pub last_full_backup_ms: Option<i64>,
    pub backups_enabled: bool,
}

#[derive(Debug, Clone)]
pub struct ServiceObservation {
    pub name: String,
    /// Whether its `/healthz` answered successfully.
    pub healthy: bool,
    pub p95_s: Option<f64>,
    /// 5xx share of requests over the last 5 min, None if no requests.
    pub error_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleConfig {
    pub name: String,
    pub severity: Severity,
    pub for_ms: i64,
    pub for_samples: u32,
    pub threshold: f64,
    pub enabled: bool,
}

/// The SPEC §9.1 rule table.
pub fn default_rules() -> Vec<RuleConfig> {
    let rule = |name: &str, severity, for_ms, for_samples, threshold| RuleConfig {
        name: name.to_string(),
        severity,
        for_ms,
        for_samples,
        threshold,
        enabled: true,
    };
    const FIVE_MIN_MS: i64 = 5 * 60_000;
    vec![
        rule(
            "gi_critical",
            Severity::Critical,
            0,
            2,
            mobius_core::integrity::GI_THRESHOLD,
        ),
        rule("gi_warning", Severity::Warning, 60_000, 1, 0.97),
        rule("service_down", Severity::Critical, FIVE_MIN_MS, 1, 0.0),
        rule("slow_responses", Severity::Warning, FIVE_MIN_MS, 1, 1.0),
        rule("error_rate", Severity::Warning, FIVE_MIN_MS, 1, 0.01),
        rule("disk_usage", Severity::Warning, FIVE_MIN_MS, 1, 0.80),
        rule(
            "backup_stale",
            Severity::Warning,
            0,
            1,
            BACKUP_STALE_DEFAULT_S,
        ),
    ]
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Stable: rule + sorted labels, e.g. `service_down:service=ledger-api`.
    pub id: String,
    pub rule: String,
    pub severity: Severity,
    pub state: AlertState,
    /// When it entered the current state.
    pub since_ms: i64,
    /// When the condition first held (start of this episode).
    pub active_since_ms: i64,
    /// The latest measurement (GI, ratio, p95 seconds, seconds down, backup age in seconds).
    pub value: f64,
    pub labels: BTreeMap<String, String>,
    pub acked_by: Option<String>,
    /// Human sentence with the value and threshold.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub alert: Alert,
    /// None: a new instance.
    pub from: Option<AlertState>,
    pub to: AlertState,
}

/// What a rule does, chosen by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GiBelow,
    ServiceDown,
    SlowResponses,
    ErrorRate,
    DiskUsage,
    BackupStale,
}

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        match name {
            "service_down" => Some(Kind::ServiceDown),
            "slow_responses" => Some(Kind::SlowResponses),
            "error_rate" => Some(Kind::ErrorRate),
            "disk_usage" => Some(Kind::DiskUsage),
            "backup_stale" => Some(Kind::BackupStale),
            n if n.starts_with("gi_") => Some(Kind::GiBelow),
            _ => None,
        }
    }

    fn per_service(self) -> bool {
        matches!(
            self,
            Kind::ServiceDown | Kind::SlowResponses | Kind::ErrorRate
        )
    }
}

/// One measurement of one rule for one subject.
#[derive(Debug, Clone)]
enum Reading {
    /// The condition holds.
    Breach { value: f64, summary: String },
    /// Not beyond the threshold, not yet past the clear margin: keep state.
    Band { value: f64 },
    /// Past the clear margin (or the condition cannot hold): the instance ends.
    Clear { value: f64, summary: String },
    /// Not measured: keep state.
    Missing,
}

/// A finite measurement, or None.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

fn ms_to_s(ms: i64) -> f64 {
    // Precision loss above 2^53 ms (~285,000 years) is irrelevant here.
    ms as f64 / 1000.0
}

#[derive(Debug, Clone)]
struct Instance {
    alert: Alert,
    /// Evaluations with the condition holding in this episode.
    breach_samples: u32,
}

pub struct AlertEngine {
    rules: Vec<RuleConfig>,
    /// Per rule: its kind when it is evaluated (known name, enabled, first of its name).
    kinds: Vec<Option<Kind>>,
    instances: BTreeMap<String, Instance>,
    /// Time of the first evaluation: the grace start for `backup_stale` when no backup exists.
    first_eval_ms: Option<i64>,
    dropped_instances: u64,
}

impl AlertEngine {
    pub fn new(rules: Vec<RuleConfig>) -> Self {
        let mut seen = BTreeSet::new();
        let kinds = rules
            .iter()
            .map(|r| {
                let first = seen.insert(r.name.clone());
                Kind::from_name(&r.name).filter(|_| r.enabled && first)
            })
            .collect();
        AlertEngine {
            rules,
            kinds,
            instances: BTreeMap::new(),
            first_eval_ms: None,
            dropped_instances: 0,
        }
    }

    pub fn rules(&self) -> &[RuleConfig] {
        &self.rules
    }

    /// How many times a new instance was refused because [`MAX_ACTIVE_ALERTS`] were active
    /// (counted once per refused instance per evaluation).
    pub fn dropped_instances(&self) -> u64 {
        self.dropped_instances
    }

    /// Pending and firing alerts, critical first, then by id.
    pub fn active(&self) -> Vec<Alert> {
        let mut out: Vec<Alert> = self.instances.values().map(|i| i.alert.clone()).collect();
        out.sort_by(|a, b| (a.severity.rank(), &a.id).cmp(&(b.severity.rank(), &b.id)));
        out
    }

    /// Acknowledges a pending or firing alert: records who (the latest ack wins, truncated to
    /// [`MAX_ACKED_BY_CHARS`]). The ack lasts until the alert resolves; a later episode of the
    /// same id starts unacknowledged. None when no such alert is active.
    pub fn ack(&mut self, id: &str, by: &str) -> Option<Alert> {
        let inst = self.instances.get_mut(id)?;
        inst.alert.acked_by = Some(by.chars().take(MAX_ACKED_BY_CHARS).collect());
        Some(inst.alert.clone())
    }

    /// Evaluates every rule against `obs`; returns the transitions this evaluation caused, in
    /// rule order, then subject order (services sorted by name). See the module docs.
    pub fn evaluate(&mut self, obs: &Observations) -> Vec<Transition> {
        let now_ms = obs.now_ms;
        let first_eval_ms = *self.first_eval_ms.get_or_insert(now_ms);
        // First observation of each name wins if a service is listed twice.
        let mut services: BTreeMap<&str, &ServiceObservation> = BTreeMap::new();
        for s in &obs.services {
            services.entry(s.name.as_str()).or_insert(s);
        }
        let mut out = Vec::new();
        for idx in 0..self.rules.len() {
            let Some(kind) = self.kinds[idx] else {
                continue;
            };
            let rule = self.rules[idx].clone();
            if kind.per_service() {
                for (name, svc) in &services {
                    let labels = BTreeMap::from([("service".to_string(), (*name).to_string())]);
                    let reading = self.service_reading(kind, &rule, svc, now_ms, &labels);
                    self.apply(&rule, labels, reading, now_ms, &mut out);
                }
                // Services that disappeared: their instances end.
                let gone: Vec<String> = self
                    .instances
                    .values()
                    .filter(|i| i.alert.rule == rule.name)
                    .filter(|i| {
                        i.alert
                            .labels
                            .get("service")
                            .is_none_or(|s| !services.contains_key(s.as_str()))
                    })
                    .map(|i| i.alert.id.clone())
                    .collect();
                for id in gone {
                    if let Some(inst) = self.instances.get(&id) {
                        let labels = inst.alert.labels.clone();
                        let service = labels.get("service").cloned().unwrap_or_default();
                        let reading = Reading::Clear {
                            value: inst.alert.value,
                            summary: format!("service {service} is no longer observed"),
                        };
                        self.apply(&rule, labels, reading, now_ms, &mut out);
                    }
                }
            } else {
                let reading = global_reading(kind, &rule, obs, first_eval_ms);
                self.apply(&rule, BTreeMap::new(), reading, now_ms, &mut out);
            }
        }
        out
    }

    fn service_reading(
        &self,
        kind: Kind,
        rule: &RuleConfig,
        svc: &ServiceObservation,
        now_ms: i64,
        labels: &BTreeMap<String, String>,
    ) -> Reading {
        let name = &svc.name;
        let thr = rule.threshold;
        match kind {
            Kind::ServiceDown => {
                if svc.healthy {
                    Reading::Clear {
                        value: 0.0,
                        summary: format!("service {name} passes its health check again"),
                    }
                } else {
                    let since_ms = self
                        .instances
                        .get(&alert_id(&rule.name, labels))
                        .map_or(now_ms, |i| i.alert.active_since_ms);
                    let down_s = ms_to_s(now_ms.saturating_sub(since_ms).max(0));
                    Reading::Breach {
                        value: down_s,
                        summary: format!(
                            "service {name} has failed its health check for {down_s:.0} s"
                        ),
                    }
                }
            }
            Kind::SlowResponses => match finite(svc.p95_s) {
                None => Reading::Missing,
                Some(v) if v > thr => Reading::Breach {
                    value: v,
                    summary: format!("service {name} p95 latency {v:.3} s is above {thr:.3} s"),
                },
                Some(v) if v <= thr * LATENCY_RESOLVE_FACTOR => Reading::Clear {
                    value: v,
                    summary: format!(
                        "service {name} p95 latency {v:.3} s is back at or below {:.3} s",
                        thr * LATENCY_RESOLVE_FACTOR
                    ),
                },
                Some(v) => Reading::Band { value: v },
            },
            Kind::ErrorRate => match finite(svc.error_rate) {
                None => Reading::Missing,
                Some(v) if v > thr => Reading::Breach {
                    value: v,
                    summary: format!(
                        "service {name} 5xx rate {:.2}% is above {:.2}%",
                        v * 100.0,
                        thr * 100.0
                    ),
                },
                Some(v) if v <= thr * ERROR_RATE_RESOLVE_FACTOR => Reading::Clear {
                    value: v,
                    summary: format!(
                        "service {name} 5xx rate {:.2}% is back at or below {:.2}%",
                        v * 100.0,
                        thr * ERROR_RATE_RESOLVE_FACTOR * 100.0
                    ),
                },
                Some(v) => Reading::Band { value: v },
            },
            Kind::GiBelow | Kind::DiskUsage | Kind::BackupStale => Reading::Missing,
        }
    }

    /// Applies one reading to the instance (rule, labels), pushing any transition.
    fn apply(
        &mut self,
        rule: &RuleConfig,
        labels: BTreeMap<String, String>,
        reading: Reading,
        now_ms: i64,
        out: &mut Vec<Transition>,
    ) {
        let id = alert_id(&rule.name, &labels);
        if let Some(inst) = self.instances.get_mut(&id) {
            match reading {
                Reading::Missing => {}
                Reading::Band { value } => inst.alert.value = value,
                Reading::Breach { value, summary } => {
                    inst.alert.value = value;
                    inst.alert.summary = summary;
                    inst.breach_samples = inst.breach_samples.saturating_add(1);
                    if inst.alert.state == AlertState::Pending
                        && ready(
                            rule,
                            inst.alert.active_since_ms,
                            inst.breach_samples,
                            now_ms,
                        )
                    {
                        inst.alert.state = AlertState::Firing;
                        inst.alert.since_ms = now_ms;
                        out.push(Transition {
                            alert: inst.alert.clone(),
                            from: Some(AlertState::Pending),
                            to: AlertState::Firing,
                        });
                    }
                }
                Reading::Clear { value, summary } => {
                    let Some(mut inst) = self.instances.remove(&id) else {
                        return;
                    };
                    if inst.alert.state == AlertState::Firing {
                        inst.alert.state = AlertState::Resolved;
                        inst.alert.since_ms = now_ms;
                        inst.alert.value = value;
                        inst.alert.summary = summary;
                        out.push(Transition {
                            alert: inst.alert,
                            from: Some(AlertState::Firing),
                            to: AlertState::Resolved,
                        });
                    }
                }
            }
            return;
        }
        let Reading::Breach { value, summary } = reading else {
            return;
        };
        if self.instances.len() >= MAX_ACTIVE_ALERTS {
            self.dropped_instances = self.dropped_instances.saturating_add(1);
            return;
        }
        let state = if ready(rule, now_ms, 1, now_ms) {
            AlertState::Firing
        } else {
            AlertState::Pending
        };
        let alert = Alert {
            id: id.clone(),
            rule: rule.name.clone(),
            severity: rule.severity,
            state,
            since_ms: now_ms,
            active_since_ms: now_ms,
            value,
            labels,
            acked_by: None,
            summary,
        };
        out.push(Transition {
            alert: alert.clone(),
            from: None,
            to: state,
        });
        self.instances.insert(
            id,
            Instance {
                alert,
                breach_samples: 1,
            },
        );
    }
}

/// Whether an instance active since `active_since_ms` with `breach_samples` counted samples
/// has met the rule's `for` duration.
fn ready(rule: &RuleConfig, active_since_ms: i64, breach_samples: u32, now_ms: i64) -> bool {
    let held_ms = now_ms.saturating_sub(active_since_ms);
    held_ms >= rule.for_ms.max(0) && breach_samples >= rule.for_samples.max(1)
}

/// The stable id: rule name, then `:key=value` pairs in key order joined by `,`.
fn alert_id(rule: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return rule.to_string();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{rule}:{}", pairs.join(","))
}

/// Readings of the system-wide rules.
fn global_reading(
    kind: Kind,
    rule: &RuleConfig,
    obs: &Observations,
    first_eval_ms: i64,
) -> Reading {
    let thr = rule.threshold;
    match kind {
        Kind::GiBelow => match finite(obs.gi) {
            None => Reading::Missing,
            Some(v) if v < thr => Reading::Breach {
                value: v,
                summary: format!(
                    "GI {v:.4} is below the {} threshold {thr:.4}",
                    rule.severity.as_str()
                ),
            },
            Some(v) if v >= thr + GI_RESOLVE_MARGIN => Reading::Clear {
                value: v,
                summary: format!(
                    "GI {v:.4} is back at or above {:.4}",
                    thr + GI_RESOLVE_MARGIN
                ),
            },
            Some(v) => Reading::Band { value: v },
        },
        Kind::DiskUsage => match finite(obs.disk_used_ratio) {
            None => Reading::Missing,
            Some(v) if v > thr => Reading::Breach {
                value: v,
                summary: format!(
                    "data volume {:.1}% used, above {:.1}%",
                    v * 100.0,
                    thr * 100.0
                ),
            },
            Some(v) if v <= thr - DISK_RESOLVE_MARGIN => Reading::Clear {
                value: v,
                summary: format!(
                    "data volume {:.1}% used, back at or below {:.1}%",
                    v * 100.0,
                    (thr - DISK_RESOLVE_MARGIN) * 100.0
                ),
            },
            Some(v) => Reading::Band { value: v },
        },
        Kind::BackupStale => {
            if !obs.backups_enabled {
                return Reading::Clear {
                    value: 0.0,
                    summary: "backups are not configured".to_string(),
                };
            }
            // Never backed up: the grace period runs from the first evaluation, so a fresh
            // install is not stale at once but one that never backs up alerts after `threshold`.
            let since_ms = obs.last_full_backup_ms.unwrap_or(first_eval_ms);
            let age_s = ms_to_s(obs.now_ms.saturating_sub(since_ms));
            let thr_h = thr / 3600.0;
            if age_s > thr {
                let summary = match obs.last_full_backup_ms {
                    Some(_) => format!(
                        "last successful full backup {:.1} h ago, older than {thr_h:.1} h",
                        age_s / 3600.0
                    ),
                    None => format!(
                        "no successful full backup since monitoring started {:.1} h ago \
                         (threshold {thr_h:.1} h)",
                        age_s / 3600.0
                    ),
                };
                Reading::Breach {
                    value: age_s,
                    summary,
                }
            } else {
                Reading::Clear {
                    value: age_s,
                    summary: format!(
                        "last successful full backup {:.1} h ago, within {thr_h:.1} h",
                        age_s / 3600.0
                    ),
                }
            }
        }
        Kind::ServiceDown | Kind::SlowResponses | Kind::ErrorRate => Reading::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP_MS: i64 = 10_000;
    const T0_MS: i64 = 1_800_000_000_000;
    const SERVICES: [&str; 3] = ["broker-api", "indexer-api", "ledger-api"];

    fn svc(name: &str) -> ServiceObservation {
        ServiceObservation {
            name: name.to_string(),
            healthy: true,
            p95_s: Some(0.05),
            error_rate: Some(0.0),
        }
    }

    /// A healthy idle system at sample `n` (10 s apart), backed up daily.
    fn healthy(n: i64) -> Observations {
        let now_ms = T0_MS + n * STEP_MS;
        Observations {
            now_ms,
            gi: Some(1.0),
            services: SERVICES.iter().map(|s| svc(s)).collect(),
            disk_used_ratio: Some(0.3),
            // The latest daily backup at or before now.
            last_full_backup_ms: Some(now_ms - (now_ms - T0_MS).rem_euclid(86_400_000)),
            backups_enabled: true,
        }
    }

    fn service_mut<'a>(o: &'a mut Observations, name: &str) -> &'a mut ServiceObservation {
        o.services
            .iter_mut()
            .find(|s| s.name == name)
            .expect("test service exists")
    }

    fn summary(ts: &[Transition]) -> Vec<(String, Option<AlertState>, AlertState)> {
        ts.iter()
            .map(|t| (t.alert.id.clone(), t.from, t.to))
            .collect()
    }

    /// Runs samples from `start` while `bad` holds and returns (sample, transitions) pairs
    /// that produced transitions, up to `end` (exclusive).
    fn run(
        engine: &mut AlertEngine,
        range: std::ops::Range<i64>,
        mut make: impl FnMut(i64) -> Observations,
    ) -> Vec<(i64, Vec<Transition>)> {
        let mut out = Vec::new();
        for n in range {
            let ts = engine.evaluate(&make(n));
            if !ts.is_empty() {
                out.push((n, ts));
            }
        }
        out
    }

    fn only(rules: &[&str]) -> Vec<RuleConfig> {
        default_rules()
            .into_iter()
            .filter(|r| rules.contains(&r.name.as_str()))
            .collect()
    }

    /// Checks one rule: the condition starts at sample 3; pending there (unless immediate),
    /// firing exactly at `fire_at`; nothing else in between.
    fn check_fires_at(rule: &str, id: &str, fire_at: i64, bad: impl Fn(&mut Observations)) {
        let mut e = AlertEngine::new(only(&[rule]));
        let got = run(&mut e, 0..fire_at + 20, |n| {
            let mut o = healthy(n);
            if n >= 3 {
                bad(&mut o);
            }
            o
        });
        let got: Vec<_> = got.iter().map(|(n, ts)| (*n, summary(ts))).collect();
        let mut want = Vec::new();
        if fire_at > 3 {
            want.push((3, vec![(id.to_string(), None, AlertState::Pending)]));
            want.push((
                fire_at,
                vec![(
                    id.to_string(),
                    Some(AlertState::Pending),
                    AlertState::Firing,
                )],
            ));
        } else {
            want.push((3, vec![(id.to_string(), None, AlertState::Firing)]));
        }
        assert_eq!(got, want, "rule {rule}");
        let active = e.active();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].state, AlertState::Firing);
        assert_eq!(active[0].active_since_ms, T0_MS + 3 * STEP_MS);
        assert_eq!(active[0].since_ms, T0_MS + fire_at * STEP_MS);
    }

    #[test]
    fn every_default_rule_fires_at_exactly_the_right_evaluation() {
        // 2 samples: the second consecutive sample below 0.95.
        check_fires_at("gi_critical", "gi_critical", 4, |o| o.gi = Some(0.94));
        // 1 min: the sample 60 s after the first one below 0.97.
        check_fires_at("gi_warning", "gi_warning", 9, |o| o.gi = Some(0.96));
        // 5 min = 30 samples after the first failing one.
        check_fires_at("service_down", "service_down:service=ledger-api", 33, |o| {
            service_mut(o, "ledger-api").healthy = false
        });
        check_fires_at(
            "slow_responses",
            "slow_responses:service=indexer-api",
            33,
            |o| service_mut(o, "indexer-api").p95_s = Some(1.2),
        );
        check_fires_at("error_rate", "error_rate:service=broker-api", 33, |o| {
            service_mut(o, "broker-api").error_rate = Some(0.02)
        });
        check_fires_at("disk_usage", "disk_usage", 33, |o| {
            o.disk_used_ratio = Some(0.85)
        });
        // Immediate: straight to firing.
        check_fires_at("backup_stale", "backup_stale", 3, |o| {
            o.last_full_backup_ms = Some(o.now_ms - 27 * 3_600_000)
        });
    }

    #[test]
    fn thresholds_are_strict() {
        // Exactly at the threshold is not a breach.
        let mut e = AlertEngine::new(default_rules());
        let got = run(&mut e, 0..100, |n| {
            let mut o = healthy(n);
            o.gi = Some(0.97);
            o.disk_used_ratio = Some(0.80);
            let s = service_mut(&mut o, "ledger-api");
            s.p95_s = Some(1.0);
            s.error_rate = Some(0.01);
            o.last_full_backup_ms = Some(o.now_ms - 26 * 3_600_000);
            o
        });
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn backup_stale_fires_just_after_26_hours() {
        let mut e = AlertEngine::new(only(&["backup_stale"]));
        let backup_ms = T0_MS;
        let obs = |now_ms| Observations {
            now_ms,
            last_full_backup_ms: Some(backup_ms),
            backups_enabled: true,
            ..Default::default()
        };
        assert!(e.evaluate(&obs(backup_ms + 26 * 3_600_000)).is_empty());
        let ts = e.evaluate(&obs(backup_ms + 26 * 3_600_000 + STEP_MS));
        assert_eq!(
            summary(&ts),
            vec![("backup_stale".into(), None, AlertState::Firing)]
        );
        assert!(
            ts[0].alert.summary.contains("26"),
            "{}",
            ts[0].alert.summary
        );
        // A new backup resolves it.
        let mut o = obs(backup_ms + 27 * 3_600_000);
        o.last_full_backup_ms = Some(o.now_ms - 60_000);
        let ts = e.evaluate(&o);
        assert_eq!(
            summary(&ts),
            vec![(
                "backup_stale".into(),
                Some(AlertState::Firing),
                AlertState::Resolved
            )]
        );
    }

    #[test]
    fn backup_stale_never_fires_with_backups_disabled() {
        let mut e = AlertEngine::new(default_rules());
        for n in [0, 1, 10_000, 100_000] {
            let mut o = healthy(n);
            o.backups_enabled = false;
            o.last_full_backup_ms = None;
            assert!(e.evaluate(&o).is_empty());
            o.last_full_backup_ms = Some(0);
            assert!(e.evaluate(&o).is_empty());
        }
        assert!(e.active().is_empty());
    }

    #[test]
    fn never_backed_up_gets_a_grace_period_from_the_first_evaluation() {
        let mut e = AlertEngine::new(only(&["backup_stale"]));
        let obs = |now_ms| Observations {
            now_ms,
            backups_enabled: true,
            ..Default::default()
        };
        assert!(e.evaluate(&obs(T0_MS)).is_empty());
        assert!(e.evaluate(&obs(T0_MS + 26 * 3_600_000)).is_empty());
        let ts = e.evaluate(&obs(T0_MS + 26 * 3_600_000 + 1));
        assert_eq!(ts.len(), 1);
        assert_eq!(ts[0].to, AlertState::Firing);
        assert!(ts[0].alert.summary.contains("no successful full backup"));
    }

    #[test]
    fn gi_oscillating_around_the_critical_threshold_does_not_flap() {
        let mut e = AlertEngine::new(only(&["gi_critical"]));
        let gi_at = |n: i64| if n % 2 == 0 { 0.949 } else { 0.952 };
        let got = run(&mut e, 0..1000, |n| Observations {
            now_ms: T0_MS + n * STEP_MS,
            gi: Some(gi_at(n)),
            ..Default::default()
        });
        let got: Vec<_> = got.iter().map(|(n, ts)| (*n, summary(ts))).collect();
        // Pending at the first breach, firing at the second breach (the band sample between
        // them keeps it active), then nothing at all for the rest of the oscillation.
        assert_eq!(
            got,
            vec![
                (0, vec![("gi_critical".into(), None, AlertState::Pending)]),
                (
                    2,
                    vec![(
                        "gi_critical".into(),
                        Some(AlertState::Pending),
                        AlertState::Firing
                    )]
                ),
            ]
        );
        // Still inside the band: stays firing.
        let o = |n: i64, gi| Observations {
            now_ms: T0_MS + n * STEP_MS,
            gi: Some(gi),
            ..Default::default()
        };
        assert!(e.evaluate(&o(1000, 0.954)).is_empty());
        // A missing measurement keeps the state.
        assert!(
            e.evaluate(&Observations {
                now_ms: T0_MS + 1001 * STEP_MS,
                gi: None,
                ..Default::default()
            })
            .is_empty()
        );
        assert!(e.evaluate(&o(1002, f64::NAN)).is_empty());
        assert_eq!(e.active().len(), 1);
        // Past threshold + margin: resolves, once.
        let ts = e.evaluate(&o(1003, 0.956));
        assert_eq!(
            summary(&ts),
            vec![(
                "gi_critical".into(),
                Some(AlertState::Firing),
                AlertState::Resolved
            )]
        );
        assert_eq!(ts[0].alert.since_ms, T0_MS + 1003 * STEP_MS);
        assert_eq!(ts[0].alert.active_since_ms, T0_MS);
        assert!(e.active().is_empty());
        assert!(e.evaluate(&o(1004, 0.952)).is_empty());
    }

    #[test]
    fn hysteresis_margins_for_every_kind() {
        // Each case: (rule, breach value, band value, clear value, setter).
        type Set = fn(&mut Observations, f64);
        let cases: [(&str, f64, f64, f64, Set); 4] = [
            ("gi_warning", 0.96, 0.974, 0.976, |o, v| o.gi = Some(v)),
            ("slow_responses", 1.5, 0.95, 0.89, |o, v| {
                service_mut(o, "ledger-api").p95_s = Some(v)
            }),
            ("error_rate", 0.05, 0.0085, 0.0079, |o, v| {
                service_mut(o, "ledger-api").error_rate = Some(v)
            }),
            ("disk_usage", 0.9, 0.79, 0.779, |o, v| {
                o.disk_used_ratio = Some(v)
            }),
        ];
        for (rule, breach, band, clear, set) in cases {
            let mut e = AlertEngine::new(only(&[rule]));
            let mut fired = false;
            for n in 0..40 {
                let mut o = healthy(n);
                set(&mut o, breach);
                fired |= e.evaluate(&o).iter().any(|t| t.to == AlertState::Firing);
            }
            assert!(fired, "{rule} fired");
            for n in 40..200 {
                let mut o = healthy(n);
                set(&mut o, band);
                assert!(e.evaluate(&o).is_empty(), "{rule} stays firing in the band");
            }
            let mut o = healthy(200);
            set(&mut o, clear);
            let ts = e.evaluate(&o);
            assert_eq!(ts.len(), 1, "{rule}");
            assert_eq!(ts[0].to, AlertState::Resolved, "{rule}");
            assert_eq!(ts[0].alert.value, clear, "{rule}");
            assert!(e.active().is_empty(), "{rule}");
        }
    }

    #[test]
    fn pending_that_clears_is_dropped_silently() {
        let mut e = AlertEngine::new(only(&["disk_usage"]));
        let mut o = healthy(0);
        o.disk_used_ratio = Some(0.9);
        assert_eq!(e.evaluate(&o)[0].to, AlertState::Pending);
        let mut o = healthy(1);
        o.disk_used_ratio = Some(0.5);
        assert!(e.evaluate(&o).is_empty());
        assert!(e.active().is_empty());
    }

    #[test]
    fn per_service_instances_are_independent() {
        let mut e = AlertEngine::new(only(&["service_down"]));
        // ledger-api fails from sample 0, indexer-api from sample 10.
        let make = |n: i64| {
            let mut o = healthy(n);
            service_mut(&mut o, "ledger-api").healthy = false;
            if n >= 10 {
                service_mut(&mut o, "indexer-api").healthy = false;
            }
            o
        };
        let got = run(&mut e, 0..41, make);
        let got: Vec<_> = got.iter().map(|(n, ts)| (*n, summary(ts))).collect();
        let l = "service_down:service=ledger-api".to_string();
        let i = "service_down:service=indexer-api".to_string();
        assert_eq!(
            got,
            vec![
                (0, vec![(l.clone(), None, AlertState::Pending)]),
                (10, vec![(i.clone(), None, AlertState::Pending)]),
                (
                    30,
                    vec![(l.clone(), Some(AlertState::Pending), AlertState::Firing)]
                ),
                (
                    40,
                    vec![(i.clone(), Some(AlertState::Pending), AlertState::Firing)]
                ),
            ]
        );
        let active = e.active();
        assert_eq!(active.len(), 2);
        assert_eq!(
            active[1].labels.get("service").map(String::as_str),
            Some("ledger-api")
        );
        assert_eq!(active[1].value, 400.0);
        assert!(active[1].summary.contains("400 s"), "{}", active[1].summary);
        // ledger-api recovers: only its instance resolves.
        let mut o = make(41);
        service_mut(&mut o, "ledger-api").healthy = true;
        let ts = e.evaluate(&o);
        assert_eq!(
            summary(&ts),
            vec![(l, Some(AlertState::Firing), AlertState::Resolved)]
        );
        assert_eq!(e.active().len(), 1);
        // indexer-api disappears from the observations: its instance resolves too.
        let mut o = healthy(42);
        o.services.retain(|s| s.name != "indexer-api");
        let ts = e.evaluate(&o);
        assert_eq!(
            summary(&ts),
            vec![(i, Some(AlertState::Firing), AlertState::Resolved)]
        );
        assert!(ts[0].alert.summary.contains("no longer observed"));
        assert!(e.active().is_empty());
    }

    #[test]
    fn per_service_missing_measurements_keep_state() {
        let mut e = AlertEngine::new(only(&["slow_responses"]));
        for n in 0..40 {
            let mut o = healthy(n);
            service_mut(&mut o, "ledger-api").p95_s = Some(2.0);
            e.evaluate(&o);
        }
        assert_eq!(e.active()[0].state, AlertState::Firing);
        for n in 40..100 {
            let mut o = healthy(n);
            service_mut(&mut o, "ledger-api").p95_s = None;
            assert!(e.evaluate(&o).is_empty());
        }
        assert_eq!(e.active()[0].value, 2.0);
    }

    #[test]
    fn acks_stick_until_resolution() {
        let mut e = AlertEngine::new(only(&["gi_warning"]));
        let o = |n: i64, gi| Observations {
            now_ms: T0_MS + n * STEP_MS,
            gi: Some(gi),
            ..Default::default()
        };
        e.evaluate(&o(0, 0.96));
        assert!(e.ack("nope", "alice").is_none());
        let acked = e
            .ack("gi_warning", "alice")
            .expect("pending alert can be acked");
        assert_eq!(acked.acked_by.as_deref(), Some("alice"));
        assert_eq!(acked.state, AlertState::Pending);
        for n in 1..50 {
            e.evaluate(&o(n, 0.96));
        }
        let active = e.active();
        assert_eq!(active[0].state, AlertState::Firing);
        assert_eq!(active[0].acked_by.as_deref(), Some("alice"));
        let ts = e.evaluate(&o(50, 1.0));
        assert_eq!(ts[0].to, AlertState::Resolved);
        assert_eq!(ts[0].alert.acked_by.as_deref(), Some("alice"));
        assert!(e.ack("gi_warning", "bob").is_none());
        // A new episode starts unacknowledged.
        let ts = e.evaluate(&o(51, 0.96));
        assert_eq!(ts[0].alert.acked_by, None);
        assert_eq!(e.active()[0].acked_by, None);
        // Long names are bounded.
        let long = "x".repeat(10_000);
        let a = e.ack("gi_warning", &long).expect("active");
        assert_eq!(a.acked_by.map(|s| s.len()), Some(MAX_ACKED_BY_CHARS));
    }

    #[test]
    fn idle_healthy_system_never_alerts() {
        let mut e = AlertEngine::new(default_rules());
        // 30 hours of 10 s samples, crossing a daily backup.
        let got = run(&mut e, 0..(30 * 360), healthy);
        assert!(got.is_empty(), "{:?}", got.first());
        assert!(e.active().is_empty());
        // Services with no traffic (no p95, no error rate) and no GI yet are fine too.
        let mut e = AlertEngine::new(default_rules());
        let got = run(&mut e, 0..1000, |n| {
            let mut o = healthy(n);
            o.gi = None;
            for s in &mut o.services {
                s.p95_s = None;
                s.error_rate = None;
            }
            o
        });
        assert!(got.is_empty());
    }

    #[test]
    fn active_sorted_by_severity_then_id() {
        let mut e = AlertEngine::new(default_rules());
        for n in 0..40 {
            let mut o = healthy(n);
            o.gi = Some(0.5);
            o.disk_used_ratio = Some(0.99);
            service_mut(&mut o, "ledger-api").healthy = false;
            service_mut(&mut o, "broker-api").healthy = false;
            e.evaluate(&o);
        }
        let ids: Vec<String> = e.active().into_iter().map(|a| a.id).collect();
        assert_eq!(
            ids,
            vec![
                "gi_critical",
                "service_down:service=broker-api",
                "service_down:service=ledger-api",
                "disk_usage",
                "gi_warning",
            ]
        );
    }

    #[test]
    fn disabled_unknown_and_duplicate_rules_are_not_evaluated() {
        let mut rules = default_rules();
        for r in &mut rules {
            r.enabled = r.name != "gi_warning";
        }
        rules.push(RuleConfig {
            name: "cpu_usage".into(),
            severity: Severity::Critical,
            for_ms: 0,
            for_samples: 1,
            threshold: 0.0,
            enabled: true,
        });
        rules.push(RuleConfig {
            name: "gi_critical".into(),
            severity: Severity::Warning,
            for_ms: 0,
            for_samples: 1,
            threshold: 0.99,
            enabled: true,
        });
        rules.push(RuleConfig {
            name: "gi_safe_stop".into(),
            severity: Severity::Critical,
            for_ms: 0,
            for_samples: 1,
            threshold: 0.90,
            enabled: true,
        });
        let mut e = AlertEngine::new(rules);
        assert_eq!(e.rules().len(), 10);
        let mut o = healthy(0);
        o.gi = Some(0.96);
        assert!(e.evaluate(&o).is_empty());
        o.gi = Some(0.89);
        let ids: Vec<String> = e.evaluate(&o).into_iter().map(|t| t.alert.id).collect();
        assert_eq!(ids, vec!["gi_critical", "gi_safe_stop"]);
        assert_eq!(e.active()[0].severity, Severity::Critical);
    }

    #[test]
    fn active_instances_are_bounded() {
        let mut e = AlertEngine::new(only(&["service_down"]));
        let services: Vec<ServiceObservation> = (0..MAX_ACTIVE_ALERTS + 5)
            .map(|i| ServiceObservation {
                healthy: false,
                ..svc(&format!("svc-{i:05}"))
            })
            .collect();
        let o = Observations {
            now_ms: T0_MS,
            services,
            ..Default::default()
        };
        let ts = e.evaluate(&o);
        assert_eq!(ts.len(), MAX_ACTIVE_ALERTS);
        assert_eq!(e.active().len(), MAX_ACTIVE_ALERTS);
        assert_eq!(e.dropped_instances(), 5);
    }

    #[test]
    fn alert_serializes_with_lowercase_enums() {
        let mut e = AlertEngine::new(only(&["backup_stale"]));
        let ts = e.evaluate(&Observations {
            now_ms: T0_MS,
            last_full_backup_ms: Some(0),
            backups_enabled: true,
            ..Default::default()
        });
        let v = serde_json::to_value(&ts[0]).expect("serializes");
        assert_eq!(v["to"], "firing");
        assert_eq!(v["from"], serde_json::Value::Null);
        assert_eq!(v["alert"]["severity"], "warning");
        assert_eq!(v["alert"]["state"], "firing");
        let rules = serde_json::to_value(default_rules()).expect("serializes");
        let back: Vec<RuleConfig> = serde_json::from_value(rules).expect("round trips");
        assert_eq!(back.len(), 7);
    }
}
