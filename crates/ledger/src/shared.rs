//! State the sequencer publishes after each commit, read lock-free by handlers and metrics.

use mobius_http::metrics::{Histogram, LATENCY_BUCKETS_S};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize};

/// Bucket bounds for entries per commit (group-commit batch sizes).
pub const BATCH_BUCKETS: [f64; 15] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0,
];

pub struct Shared {
    /// Committed tree size.
    pub tree_size: AtomicU64,
    /// Entries covered by sealed blocks.
    pub sealed_size: AtomicU64,
    /// Number of sealed blocks (latest height + 1).
    pub block_height: AtomicU64,
    /// `timestamp_ms` of the oldest unsealed entry, 0 when everything is sealed.
    pub oldest_unsealed_ms: AtomicI64,
    /// Bytes of entries waiting in the sequencer queue.
    pub queued_bytes: AtomicUsize,
    pub appended_total: AtomicU64,
    pub commit_seconds: Histogram,
    pub commit_entries: Histogram,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            tree_size: AtomicU64::new(0),
            sealed_size: AtomicU64::new(0),
            block_height: AtomicU64::new(0),
            oldest_unsealed_ms: AtomicI64::new(0),
            queued_bytes: AtomicUsize::new(0),
            appended_total: AtomicU64::new(0),
            commit_seconds: Histogram::new(&LATENCY_BUCKETS_S),
            commit_entries: Histogram::new(&BATCH_BUCKETS),
        }
    }
}
