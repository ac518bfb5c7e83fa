//! `mobius bench ledger` (being written).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOpts {}

pub fn run(_opts: &BenchOpts) -> Result<(), String> {
    Err("the ledger benchmark is not built yet".into())
}
