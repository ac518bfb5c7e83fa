//! Benchmarks for `mobius bench <service>`.
pub mod ledger;
mod load;
pub mod ops;
mod report;
pub mod shield;
mod sys;
