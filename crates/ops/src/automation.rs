//! The automation halt (SPEC §9.1). `gi_critical` halts automation — minting, reflection
//! rewards, epoch jobs, broker webhooks, and the ledger's scripted seal endpoint — until an
//! operator resumes it with a reason. The state is persisted and every change is attested
//! in the same transaction. [`Automation::guard`] is the one check every guarded operation
//! calls; it reads memory only.

use mobius_core::integrity::GI_THRESHOLD;
use mobius_core::time::{now_ms, rfc3339_ms};
use mobius_http::ApiError;
use mobius_ledger::Ledger;
use mobius_store::{Conn, Param, Pool, StoreError};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationState {
    pub halted: bool,
    pub since_ms: i64,
    pub reason: String,
    pub actor: String,
}

impl AutomationState {
    pub fn to_json(&self) -> Value {
        json!({
            "halted": self.halted,
            "since": rfc3339_ms(self.since_ms),
            "reason": self.reason,
            "actor": self.actor,
        })
    }
}

pub struct Automation {
    state: RwLock<AutomationState>,
    ledger: Arc<Ledger>,
    pool: Pool,
}

fn read_state(c: &mut Conn) -> Result<Option<AutomationState>, StoreError> {
    let row = c.query_opt(
        "SELECT halted, since_ms, reason, actor FROM automation_state WHERE id = 1",
        &[],
    )?;
    row.map(|r| {
        Ok(AutomationState {
            halted: r.i64(0)? != 0,
            since_ms: r.i64(1)?,
            reason: r.text(2)?.to_string(),
            actor: r.text(3)?.to_string(),
        })
    })
    .transpose()
}

fn write_state(c: &mut Conn, s: &AutomationState) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO automation_state (id, halted, since_ms, reason, actor) VALUES (1, $1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET halted = excluded.halted, since_ms = excluded.since_ms, \
         reason = excluded.reason, actor = excluded.actor",
        &[
            Param::Int(i64::from(s.halted)),
            Param::Int(s.since_ms),
            Param::Text(&s.reason),
            Param::Text(&s.actor),
        ],
    )?;
    Ok(())
}

/// Reasons are free text but bounded.
pub const MAX_REASON_CHARS: usize = 500;

fn check_reason(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid_field(
            "reason",
            format!("reason must be 1 to {MAX_REASON_CHARS} characters: say why"),
        ));
    }
    Ok(())
}

impl Automation {
    /// Loads the persisted state (running when none) and keeps it fresh from the store every
    /// second, so replicas sharing a store agree within a second.
    pub async fn load(ledger: Arc<Ledger>, pool: Pool) -> Result<Arc<Automation>, StoreError> {
        let p = pool.clone();
        let stored = tokio::task::spawn_blocking(move || p.with(read_state))
            .await
            .map_err(|e| StoreError::other(e.to_string()))??;
        let state = stored.unwrap_or(AutomationState {
            halted: false,
            since_ms: now_ms(),
            reason: "never halted".into(),
            actor: "system".into(),
        });
        let a = Arc::new(Automation {
            state: RwLock::new(state),
            ledger,
            pool,
        });
        let weak = Arc::downgrade(&a);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(a) = weak.upgrade() else { return };
                let pool = a.pool.clone();
                if let Ok(Ok(Some(s))) =
                    tokio::task::spawn_blocking(move || pool.with(read_state)).await
                {
                    *a.state.write().unwrap_or_else(|p| p.into_inner()) = s;
                }
            }
        });
        Ok(a)
    }

    pub fn state(&self) -> AutomationState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_halted(&self) -> bool {
        self.state.read().unwrap_or_else(|p| p.into_inner()).halted
    }

    /// The guard every automated operation calls first: 503 `automation_halted` while halted.
    pub fn guard(&self) -> Result<(), ApiError> {
        let s = self.state();
        if s.halted {
            return Err(ApiError::automation_halted(format!(
                "automation is halted since {} ({}); an operator must resume it: POST /api/ops/automation/resume",
                rfc3339_ms(s.since_ms),
                s.reason
            ))
            .with_details(s.to_json()));
        }
        Ok(())
    }

    async fn change(
        &self,
        next: AutomationState,
        entry_type: &str,
        source: &str,
        extra: Value,
    ) -> Result<AutomationState, ApiError> {
        let mut payload = json!({"reason": next.reason, "actor": next.actor});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        let stored = next.clone();
        self.ledger
            .attest(
                entry_type,
                None,
                source,
                payload,
                Some(Box::new(move |c: &mut Conn, _: &[_]| {
                    write_state(c, &stored).map_err(ApiError::from)
                })),
            )
            .await?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        mobius_http::log::warn(
            if next.halted {
                "automation halted"
            } else {
                "automation resumed"
            },
            &[("reason", json!(next.reason)), ("actor", json!(next.actor))],
        );
        Ok(next)
    }

    /// Halts automation (idempotent: halting while halted keeps the original time).
    pub async fn halt(
        &self,
        reason: &str,
        actor: &str,
        source: &str,
    ) -> Result<AutomationState, ApiError> {
        check_reason(reason)?;
        let current = self.state();
        if current.halted {
            return Ok(current);
        }
        let next = AutomationState {
            halted: true,
            since_ms: now_ms(),
            reason: reason.into(),
            actor: actor.into(),
        };
        self.change(next, "ops.automation_halted", source, json!({}))
            .await
    }

    /// Resumes automation. Refused while GI < 0.95 unless `force`.
    pub async fn resume(
        &self,
        reason: &str,
        actor: &str,
        source: &str,
        force: bool,
        gi: Option<f64>,
    ) -> Result<AutomationState, ApiError> {
        check_reason(reason)?;
        let current = self.state();
        if !current.halted {
            return Ok(current);
        }
        let below = gi.is_none_or(|g| g < GI_THRESHOLD);
        if below && !force {
            return Err(ApiError::conflict(format!(
                "GI is {} (threshold {GI_THRESHOLD}); repair the cause first, or resume with \"force\": true",
                gi.map_or("not measured".to_string(), |g| format!("{g:.4}"))
            ))
            .with_details(json!({"gi": gi, "threshold": GI_THRESHOLD})));
        }
        let next = AutomationState {
            halted: false,
            since_ms: now_ms(),
            reason: reason.into(),
            actor: actor.into(),
        };
        self.change(
            next,
            "ops.automation_resumed",
            source,
            json!({"forced": force && below, "gi": gi}),
        )
        .await
    }
}
