//! Pure domain code shared by every Mobius service: canonical JSON (RFC 8785), hashing,
//! the RFC 9162 Merkle tree with its proofs, and C2SP signed notes.
//!
//! Invariant: this crate does no I/O and has no async code; everything here is deterministic
//! and testable against the published vectors in `shared/testdata`.

pub mod integrity;
pub mod jcs;
pub mod merkle;
pub mod note;
pub mod time;
