//! Writing ops entries to the Civic Ledger, each with its state change in one transaction.

use mobius_core::time::now_ms;
use mobius_http::ApiError;
use mobius_ledger::Ledger;
use mobius_ledger::entry::{NewEntryRequest, prepare};
use mobius_ledger::writer::{Appended, StateChange};
use serde_json::{Value, json};

/// The ledger source of entries the monitor writes on its own initiative.
pub const MONITOR_SOURCE: &str = "service:integrity-monitor";

/// Appends one `type` entry (payload must be an object) from `source`, running `apply` in the
/// same transaction.
pub async fn attest(
    ledger: &Ledger,
    entry_type: &str,
    source: &str,
    payload: Value,
    apply: Option<StateChange>,
) -> Result<Appended, ApiError> {
    let req: NewEntryRequest =
        serde_json::from_value(json!({"type": entry_type, "payload": payload}))
            .map_err(|e| ApiError::internal(format!("building {entry_type} entry: {e}")))?;
    let prepared = prepare(req, source, now_ms(), None)?;
    let out = ledger.append_with(vec![prepared], apply).await?;
    out.into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("sequencer returned no result"))
}
