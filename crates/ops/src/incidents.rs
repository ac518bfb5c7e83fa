//! Incidents (SPEC §9.2): opened by operators or automatically for critical alerts, updated,
//! resolved and given a post-mortem. Every step is a ledger entry written in the same
//! transaction as the row it changes; nothing is ever rewritten — a new post-mortem text is a
//! new attested update (visible repairs).

use mobius_core::time::rfc3339_ms;
use mobius_http::ApiError;
use mobius_ledger::Ledger;
use mobius_store::{Conn, Param, Pool, Row, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_TEXT_CHARS: usize = 20_000;
pub const MAX_SERVICES: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    pub title: String,
    pub severity: String,
    #[serde(default)]
    pub services: Vec<String>,
    pub summary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    pub summary: String,
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(())
}

impl NewIncident {
    pub fn validate(&self) -> Result<(), ApiError> {
        check_text("title", &self.title, MAX_TITLE_CHARS)?;
        check_text("summary", &self.summary, MAX_TEXT_CHARS)?;
        if !matches!(self.severity.as_str(), "sev1" | "sev2" | "sev3") {
            return Err(ApiError::invalid_field(
                "severity",
                "severity must be sev1, sev2 or sev3",
            ));
        }
        if self.services.len() > MAX_SERVICES
            || self.services.iter().any(|s| {
                s.is_empty()
                    || s.len() > 64
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
        {
            return Err(ApiError::invalid_field(
                "services",
                format!(
                    "services is a list of at most {MAX_SERVICES} service names like \"ledger-api\""
                ),
            ));
        }
        Ok(())
    }
}

pub struct Incidents {
    ledger: Arc<Ledger>,
    pool: Pool,
}

const COLUMNS: &str = "id, title, severity, services, summary, status, opened_at_ms, opened_by, alert_id, resolved_at_ms, postmortem";

fn incident_json(r: &Row) -> Result<Value, StoreError> {
    let services: Value = serde_json::from_str(r.text(3)?).unwrap_or(json!([]));
    Ok(json!({
        "id": r.text(0)?,
        "title": r.text(1)?,
        "severity": r.text(2)?,
        "services": services,
        "summary": r.text(4)?,
        "status": r.text(5)?,
        "opened_at": rfc3339_ms(r.i64(6)?),
        "opened_by": r.text(7)?,
        "alert_id": r.opt_text(8)?,
        "resolved_at": r.opt_i64(9)?.map(rfc3339_ms),
        "postmortem": r.opt_text(10)?,
    }))
}

fn load(c: &mut Conn, id: &str) -> Result<Option<Value>, StoreError> {
    let Some(row) = c.query_opt(
        &format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"),
        &[Param::Text(id)],
    )?
    else {
        return Ok(None);
    };
    let mut v = incident_json(&row)?;
    let updates: Vec<Value> = c
        .query(
            "SELECT at_ms, author, kind, text FROM incident_updates WHERE incident_id = $1 ORDER BY id",
            &[Param::Text(id)],
        )?
        .iter()
        .map(|u| Ok(json!({"at": rfc3339_ms(u.i64(0)?), "author": u.text(1)?, "kind": u.text(2)?, "text": u.text(3)?})))
        .collect::<Result<_, StoreError>>()?;
    v["updates"] = json!(updates);
    Ok(Some(v))
}

fn add_update(
    c: &mut Conn,
    id: &str,
    at_ms: i64,
    author: &str,
    kind: &str,
    text: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO incident_updates (incident_id, at_ms, author, kind, text) VALUES ($1, $2, $3, $4, $5)",
        &[Param::Text(id), Param::Int(at_ms), Param::Text(author), Param::Text(kind), Param::Text(text)],
    )?;
    Ok(())
}

impl Incidents {
    pub fn new(ledger: Arc<Ledger>, pool: Pool) -> Arc<Incidents> {
        Arc::new(Incidents { ledger, pool })
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(ApiError::internal)?
    }

    pub async fn get(&self, id: &str) -> Result<Value, ApiError> {
        let id = id.to_string();
        let found = self.read(move |c| Ok(load(c, &id)?)).await?;
        found.ok_or_else(|| ApiError::not_found("no such incident"))
    }

    /// Incidents, newest first; `status` filters open or resolved. At most 200.
    pub async fn list(&self, status: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let status = status.map(str::to_string);
        if status
            .as_deref()
            .is_some_and(|s| s != "open" && s != "resolved")
        {
            return Err(ApiError::invalid_field(
                "status",
                "status must be open or resolved",
            ));
        }
        self.read(move |c| {
            let rows = match &status {
                Some(s) => c.query(
                    &format!("SELECT {COLUMNS} FROM incidents WHERE status = $1 ORDER BY opened_at_ms DESC LIMIT 200"),
                    &[Param::Text(s)],
                )?,
                None => c.query(&format!("SELECT {COLUMNS} FROM incidents ORDER BY opened_at_ms DESC LIMIT 200"), &[])?,
            };
            Ok(rows.iter().map(incident_json).collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Opens an incident; `opened_by` is the actor, `source` its ledger source.
    pub async fn open(
        &self,
        req: NewIncident,
        opened_by: &str,
        source: &str,
        alert_id: Option<String>,
    ) -> Result<Value, ApiError> {
        req.validate()?;
        let id = format!("inc-{}", hex::encode(mobius_http::random_bytes::<6>()));
        let now = mobius_core::time::now_ms();
        let services = json!(req.services);
        let payload = json!({
            "incident": id, "title": req.title, "severity": req.severity, "services": services,
            "summary": req.summary, "opened_by": opened_by, "alert_id": alert_id,
        });
        let (rid, by) = (id.clone(), opened_by.to_string());
        self.ledger.attest(
            "ops.incident_opened",
            None,
            source,
            payload,
            Some(Box::new(move |c: &mut Conn, _: &[_]| {
                c.execute(
                    "INSERT INTO incidents (id, title, severity, services, summary, status, opened_at_ms, opened_by, alert_id) \
                     VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8)",
                    &[
                        Param::Text(&rid),
                        Param::Text(&req.title),
                        Param::Text(&req.severity),
                        Param::Text(&services.to_string()),
                        Param::Text(&req.summary),
                        Param::Int(now),
                        Param::Text(&by),
                        alert_id.as_deref().into(),
                    ],
                )?;
                add_update(c, &rid, now, &by, "opened", &req.summary)?;
                Ok(())
            })),
        )
        .await?;
        self.get(&id).await
    }

    /// Opens an incident for a firing critical alert unless one is already open for it.
    pub async fn open_for_alert(
        &self,
        alert: &crate::alerts::Alert,
    ) -> Result<Option<Value>, ApiError> {
        let alert_id = alert.id.clone();
        let aid = alert_id.clone();
        let open = self
            .read(move |c| {
                Ok(c.query_opt(
                    "SELECT id FROM incidents WHERE alert_id = $1 AND status = 'open'",
                    &[Param::Text(&aid)],
                )?
                .is_some())
            })
            .await?;
        if open {
            return Ok(None);
        }
        let services: Vec<String> = alert.labels.get("service").cloned().into_iter().collect();
        let severity = if alert.rule == "gi_critical" {
            "sev1"
        } else {
            "sev2"
        };
        let req = NewIncident {
            title: format!("{} firing", alert.rule),
            severity: severity.into(),
            services,
            summary: alert.summary.clone(),
        };
        self.open(
            req,
            "monitor",
            crate::attest::MONITOR_SOURCE,
            Some(alert_id),
        )
        .await
        .map(Some)
    }

    async fn step(
        &self,
        id: &str,
        kind: &'static str,
        entry_type: &str,
        text: String,
        author: &str,
        source: &str,
    ) -> Result<Value, ApiError> {
        let current = self.get(id).await?;
        if current["status"] == "resolved" && kind == "resolved" {
            return Err(ApiError::conflict("the incident is already resolved"));
        }
        let now = mobius_core::time::now_ms();
        let (rid, by, t) = (id.to_string(), author.to_string(), text.clone());
        self.ledger.attest(
            entry_type,
            None,
            source,
            json!({"incident": id, "author": author, "text": text}),
            Some(Box::new(move |c: &mut Conn, _: &[_]| {
                add_update(c, &rid, now, &by, kind, &t)?;
                match kind {
                    "resolved" => {
                        c.execute(
                            "UPDATE incidents SET status = 'resolved', resolved_at_ms = $2 WHERE id = $1",
                            &[Param::Text(&rid), Param::Int(now)],
                        )?;
                    }
                    "postmortem" => {
                        c.execute("UPDATE incidents SET postmortem = $2 WHERE id = $1", &[Param::Text(&rid), Param::Text(&t)])?;
                    }
                    _ => {}
                }
                Ok(())
            })),
        )
        .await?;
        self.get(id).await
    }

    pub async fn update(
        &self,
        id: &str,
        text: String,
        author: &str,
        source: &str,
    ) -> Result<Value, ApiError> {
        check_text("text", &text, MAX_TEXT_CHARS)?;
        self.step(id, "update", "ops.incident_updated", text, author, source)
            .await
    }

    pub async fn resolve(
        &self,
        id: &str,
        summary: String,
        author: &str,
        source: &str,
    ) -> Result<Value, ApiError> {
        check_text("summary", &summary, MAX_TEXT_CHARS)?;
        self.step(
            id,
            "resolved",
            "ops.incident_resolved",
            summary,
            author,
            source,
        )
        .await
    }

    pub async fn postmortem(
        &self,
        id: &str,
        text: String,
        author: &str,
        source: &str,
    ) -> Result<Value, ApiError> {
        check_text("text", &text, MAX_TEXT_CHARS)?;
        self.step(
            id,
            "postmortem",
            "ops.incident_postmortem",
            text,
            author,
            source,
        )
        .await
    }
}
