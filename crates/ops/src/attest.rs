//! Writing ops entries to the Civic Ledger, each with its state change in one transaction.

use mobius_http::ApiError;
use mobius_ledger::Ledger;
use mobius_ledger::writer::{Appended, StateChange};
use serde_json::Value;

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
    ledger
        .attest(entry_type, None, source, payload, apply)
        .await
}
