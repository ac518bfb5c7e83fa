//! The security event log (SPEC §7): authentication failures, refusals, rate-limit hits and
//! screening blocks from every service. Recording never blocks a request: events go through a
//! bounded queue to a writer task that inserts them in batches.

use mobius_core::time::{now_ms, rfc3339_ms};
use mobius_http::health::SecurityNotice;
use mobius_store::{Param, Pool, StoreError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Events queued for writing at most (beyond: dropped and counted).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Events kept in the store (older ones are pruned by the writer).
pub const RETENTION_MS: i64 = 90 * 24 * 3600 * 1000;

#[derive(Debug, Clone)]
pub struct Event {
    pub at_ms: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub ip: Option<String>,
    pub route: Option<String>,
    pub detail: Value,
}

pub struct SecurityLog {
    tx: tokio::sync::mpsc::Sender<Event>,
    counts: Mutex<BTreeMap<String, u64>>,
    dropped: AtomicU64,
    pool: Pool,
}

impl SecurityLog {
    /// Starts the writer task on the current runtime.
    pub fn start(pool: Pool) -> Arc<SecurityLog> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(QUEUE_CAPACITY);
        let writer_pool = pool.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            while rx.recv_many(&mut batch, 256).await > 0 {
                let events = std::mem::take(&mut batch);
                let pool = writer_pool.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    pool.with(|c| {
                        c.transaction(|c| {
                            for e in &events {
                                c.execute(
                                    "INSERT INTO security_events (at_ms, kind, actor, ip, route, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                                    &[
                                        Param::Int(e.at_ms),
                                        Param::Text(&e.kind),
                                        e.actor.as_deref().into(),
                                        e.ip.as_deref().into(),
                                        e.route.as_deref().into(),
                                        Param::Text(&e.detail.to_string()),
                                    ],
                                )?;
                            }
                            if events.iter().any(|e| e.at_ms % 1000 < 5) {
                                c.execute(
                                    "DELETE FROM security_events WHERE at_ms < $1",
                                    &[Param::Int(now_ms() - RETENTION_MS)],
                                )?;
                            }
                            Ok::<_, StoreError>(())
                        })
                    })
                })
                .await;
            }
        });
        Arc::new(SecurityLog {
            tx,
            counts: Mutex::default(),
            dropped: AtomicU64::new(0),
            pool,
        })
    }

    /// Records an event without waiting.
    pub fn record(
        &self,
        kind: &str,
        actor: Option<&str>,
        ip: Option<String>,
        route: Option<&str>,
        detail: Value,
    ) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_string())
            .or_insert(0) += 1;
        let e = Event {
            at_ms: now_ms(),
            kind: kind.into(),
            actor: actor.map(str::to_string),
            ip,
            route: route.map(str::to_string),
            detail,
        };
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The hook every service's middleware calls for 401, 403 and 429 responses.
    pub fn hook(self: &Arc<Self>) -> mobius_http::health::SecurityHook {
        let log = self.clone();
        Arc::new(move |n: SecurityNotice| {
            let kind = match n.status {
                401 => "auth_failure",
                403 => "forbidden",
                _ => "rate_limited",
            };
            log.record(
                kind,
                None,
                n.ip.map(|i| i.to_string()),
                Some(&n.route),
                json!({"service": n.service, "method": n.method, "status": n.status, "code": n.code, "request_id": n.request_id}),
            );
        })
    }

    /// Newest first; `before_id` pages backwards.
    pub async fn list(
        &self,
        limit: i64,
        before_id: i64,
        kind: Option<String>,
    ) -> Result<Vec<Value>, StoreError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            pool.with(|c| {
                let rows = match &kind {
                    Some(k) => c.query(
                        "SELECT id, at_ms, kind, actor, ip, route, detail FROM security_events WHERE id < $1 AND kind = $3 ORDER BY id DESC LIMIT $2",
                        &[Param::Int(before_id), Param::Int(limit), Param::Text(k)],
                    )?,
                    None => c.query(
                        "SELECT id, at_ms, kind, actor, ip, route, detail FROM security_events WHERE id < $1 ORDER BY id DESC LIMIT $2",
                        &[Param::Int(before_id), Param::Int(limit)],
                    )?,
                };
                rows.iter()
                    .map(|r| {
                        Ok(json!({
                            "id": r.i64(0)?, "at": rfc3339_ms(r.i64(1)?), "kind": r.text(2)?, "actor": r.opt_text(3)?,
                            "ip": r.opt_text(4)?, "route": r.opt_text(5)?,
                            "detail": serde_json::from_str::<Value>(r.text(6)?).unwrap_or(Value::Null),
                        }))
                    })
                    .collect()
            })
        })
        .await
        .map_err(|e| StoreError::other(e.to_string()))?
    }

    pub fn render_metrics(&self, out: &mut String, svc: &str) {
        mobius_http::metrics::family(
            out,
            "mobius_security_events_total",
            "counter",
            "Security events by kind (auth failures, refusals, rate-limit hits, screening blocks).",
        );
        let sep = if svc.is_empty() { "" } else { "," };
        for (k, n) in self.counts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push_str(&format!(
                "mobius_security_events_total{{{svc}{sep}kind=\"{k}\"}} {n}\n"
            ));
        }
        mobius_http::metrics::single(
            out,
            "mobius_security_events_dropped_total",
            "counter",
            "Security events dropped because the write queue was full.",
            svc,
            self.dropped.load(Ordering::Relaxed) as f64,
        );
    }
}
