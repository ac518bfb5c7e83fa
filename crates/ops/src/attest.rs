//! The ledger source of entries the integrity monitor writes on its own initiative. Ops
//! entries are written with `Ledger::attest`, each with its state change in one transaction.

/// The ledger source of entries the monitor writes on its own initiative.
pub const MONITOR_SOURCE: &str = "service:integrity-monitor";
