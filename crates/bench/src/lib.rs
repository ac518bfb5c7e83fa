//! Benchmarks for `mobius bench <service>`.
pub mod ledger;
