//! Mobius Citizen Shield (SPEC §7).
//!
//! [`screen`] is the content-screening library behind `POST /v1/screen`, used directly by the
//! reflections and broker services: it blocks prompt- and script-injection and redacts personal
//! data. The rules are documented in `docs/operations/screening-rules.md`.
//!
//! [`citizens`] holds citizens and their Bio-DNA manifests, [`routes`] the shield-api
//! endpoints (enrolment, key rotation, challenge/response login, tokens, screening, the
//! security event log), and [`events`] the security event log every service reports to.

pub mod citizens;
pub mod events;
pub mod routes;
pub mod screen;
