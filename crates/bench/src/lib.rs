//! Benchmarks for `mobius bench <service>`.
pub mod ledger;
mod load;
mod report;
mod sys;
