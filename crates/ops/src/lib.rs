//! Operations core (SPEC §8, §9): the integrity monitor that measures GI and MII, the alert
//! engine and its webhook notifier, the automation halt, incidents, and the ops API served
//! on the portal port.

pub mod alerts;
pub mod attest;
pub mod automation;
pub mod incidents;
pub mod ledger_check;
pub mod monitor;
pub mod notify;
pub mod portal;
pub mod reliability;
