//! The ledger component L of GI (SPEC §8), measured incrementally so a sample's cost does not
//! grow with the ledger:
//! - the latest checkpoint's signature verifies with the ledger's key;
//! - it is consistent with the checkpoint verified at the previous sample (a consistency proof
//!   built from the stored tree, checked against both signed roots);
//! - the entries sealed since the previous sample are re-hashed from their stored leaf data
//!   into an independent right edge whose root must equal the signed root (bounded per sample;
//!   a backlog carries over);
//! - a rolling scrub re-verifies `scrub_per_sample` older records per sample — leaf data
//!   against stored leaf hashes and ids, and every stored interior hash against its children —
//!   cycling through the whole ledger, so tampering with any stored entry is found within one
//!   scrub cycle.
//!
//! Any mismatch makes L = 0 and is remembered by index until a re-check passes (a repaired
//! store recovers by itself); L = 0.5 while the oldest unsealed entry is older than
//! 10 × block interval.

use mobius_core::merkle::{
    self, Hash, RightEdge, leaf_hash, node_hash, split_stored_hash_index, stored_hash_index,
};
use mobius_core::note::NoteVerifier;
use mobius_core::time::now_ms;
use mobius_ledger::db::{self, DbHashes};
use mobius_store::{Conn, Param, StoreError, placeholders};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Most newly sealed entries re-hashed in one sample (the rest carry over).
pub const MAX_NEW_PER_SAMPLE: u64 = 200_000;

#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub name: String,
    pub status: &'static str,
    pub observed: serde_json::Value,
    pub threshold: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct LedgerSample {
    pub score: f64,
    pub checks: Vec<CheckRow>,
    /// First bad index found (for messages and tests).
    pub bad_index: Option<u64>,
    pub verified_size: u64,
    pub scrub_position: u64,
    pub scrub_cycles: u64,
    pub rehashed: u64,
    pub scrubbed: u64,
}

pub struct LedgerCheck {
    verifier: NoteVerifier,
    block_interval_ms: i64,
    scrub_per_sample: u64,
    /// Last verified checkpoint.
    verified: Option<(u64, Hash)>,
    /// Right edge recomputed from leaf data up to the verified size (None until initialised).
    edge: Option<RightEdge>,
    scrub_next: u64,
    /// End (exclusive) of the current scrub cycle.
    cycle_end: u64,
    scrub_cycles: u64,
    /// Indexes (or stored-hash positions, as record indexes) that failed and are re-checked.
    bad: BTreeSet<u64>,
    /// A failure not tied to an index (signature, consistency, root); cleared when it passes.
    global_failure: Option<String>,
}

fn pass(name: &str, observed: serde_json::Value, threshold: serde_json::Value) -> CheckRow {
    CheckRow {
        name: name.into(),
        status: "pass",
        observed,
        threshold,
    }
}
fn failed(name: &str, observed: serde_json::Value, threshold: serde_json::Value) -> CheckRow {
    CheckRow {
        name: name.into(),
        status: "fail",
        observed,
        threshold,
    }
}

/// Leaf data and stored id of records [from, to).
fn read_leaves(c: &mut Conn, from: u64, to: u64) -> Result<Vec<(u64, Hash, Vec<u8>)>, StoreError> {
    let rows = c.query(
        "SELECT idx, id, leaf_data FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        &[Param::Int(db::to_i64(from)?), Param::Int(db::to_i64(to)?)],
    )?;
    rows.iter()
        .map(|r| {
            let idx = db::to_u64(r.i64(0)?)?;
            let id = r.bytes(1)?.try_into().unwrap_or([0u8; 32]);
            Ok((idx, id, r.bytes(2)?.to_vec()))
        })
        .collect()
}

/// Stored hashes with stored index in [from, to).
fn read_hash_range(c: &mut Conn, from: u64, to: u64) -> Result<HashMap<u64, Hash>, StoreError> {
    let rows = c.query(
        "SELECT n, hash FROM ledger_hashes WHERE n >= $1 AND n < $2",
        &[Param::Int(db::to_i64(from)?), Param::Int(db::to_i64(to)?)],
    )?;
    rows.iter()
        .map(|r| Ok((db::to_u64(r.i64(0)?)?, r.hash(1)?)))
        .collect()
}

fn read_hash_set(
    c: &mut Conn,
    wanted: &[u64],
    into: &mut HashMap<u64, Hash>,
) -> Result<(), StoreError> {
    for chunk in wanted.chunks(256) {
        let ints: Vec<i64> = chunk
            .iter()
            .map(|&n| db::to_i64(n))
            .collect::<Result<_, _>>()?;
        let params: Vec<Param<'_>> = ints.iter().map(|&n| Param::Int(n)).collect();
        let sql = format!(
            "SELECT n, hash FROM ledger_hashes WHERE n IN ({})",
            placeholders(1, params.len())
        );
        for r in c.query(&sql, &params)? {
            into.insert(db::to_u64(r.i64(0)?)?, r.hash(1)?);
        }
    }
    Ok(())
}

impl LedgerCheck {
    pub fn new(verifier: NoteVerifier, block_interval_ms: i64, scrub_per_sample: u64) -> Self {
        LedgerCheck {
            verifier,
            block_interval_ms,
            scrub_per_sample: scrub_per_sample.max(1),
            verified: None,
            edge: None,
            scrub_next: 0,
            cycle_end: 0,
            scrub_cycles: 0,
            bad: BTreeSet::new(),
            global_failure: None,
        }
    }

    /// Verifies records [from, to): leaf data hashes to the stored leaf hash and id, and every
    /// interior hash those records completed equals the hash of its stored children. Returns
    /// the records that failed.
    fn scrub_range(c: &mut Conn, from: u64, to: u64) -> Result<Vec<u64>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let leaves = read_leaves(c, from, to)?;
        let mut hashes = read_hash_range(c, stored_hash_index(0, from), stored_hash_index(0, to))?;
        // Left children of interior hashes may have been stored by records before `from`.
        let mut extra = Vec::new();
        for (&n, _) in hashes.iter() {
            let (level, k) = split_stored_hash_index(n);
            if level > 0 {
                for child in [
                    stored_hash_index(level - 1, 2 * k),
                    stored_hash_index(level - 1, 2 * k + 1),
                ] {
                    if child < stored_hash_index(0, from) {
                        extra.push(child);
                    }
                }
            }
        }
        read_hash_set(c, &extra, &mut hashes)?;
        let mut bad = Vec::new();
        let mut seen = from;
        for (idx, id, data) in &leaves {
            while seen < *idx {
                bad.push(seen); // a missing row
                seen += 1;
            }
            seen = idx + 1;
            let computed = leaf_hash(data);
            let stored = hashes.get(&stored_hash_index(0, *idx));
            if stored != Some(&computed) || *id != computed {
                bad.push(*idx);
            }
        }
        while seen < to {
            bad.push(seen);
            seen += 1;
        }
        for (&n, h) in hashes.iter() {
            let (level, k) = split_stored_hash_index(n);
            if level == 0 || n < stored_hash_index(0, from) {
                continue;
            }
            let left = hashes.get(&stored_hash_index(level - 1, 2 * k));
            let right = hashes.get(&stored_hash_index(level - 1, 2 * k + 1));
            let ok = matches!((left, right), (Some(l), Some(r)) if node_hash(l, r) == *h);
            if !ok {
                // Name the first record of the subtree whose stored hash disagrees.
                bad.push(k << level);
            }
        }
        bad.sort_unstable();
        bad.dedup();
        Ok(bad)
    }

    pub fn sample(&mut self, c: &mut Conn) -> Result<LedgerSample, StoreError> {
        let mut checks = Vec::new();
        let mut score: f64 = 1.0;
        let head = db::head(c)?;
        let latest = db::latest_block(c)?;
        let mut rehashed = 0;
        let mut scrubbed = 0;

        if let Some(b) = &latest {
            // 1. Signature.
            let sig_ok = matches!(
                self.verifier.verify_checkpoint(&b.checkpoint),
                Ok(cp) if cp.size == b.tree_size && cp.root == b.root_hash
            );
            if sig_ok {
                checks.push(pass(
                    "ledger.checkpoint_signature",
                    b.tree_size.into(),
                    "valid".into(),
                ));
            } else {
                checks.push(failed(
                    "ledger.checkpoint_signature",
                    b.tree_size.into(),
                    "valid".into(),
                ));
                self.global_failure =
                    Some(format!("checkpoint of block {} does not verify", b.height));
            }
            // 2. Consistency with the previously verified checkpoint.
            if sig_ok {
                let consistent = match self.verified {
                    None => true,
                    Some((size0, root0)) if b.tree_size < size0 => {
                        let _ = root0;
                        false
                    }
                    Some((size0, root0)) if b.tree_size == size0 => root0 == b.root_hash,
                    Some((size0, root0)) => {
                        match merkle::consistency_proof(size0, b.tree_size, &mut DbHashes(c)) {
                            Ok(proof) => merkle::verify_consistency(
                                size0,
                                b.tree_size,
                                &root0,
                                &b.root_hash,
                                &proof,
                            )
                            .is_ok(),
                            Err(_) => false,
                        }
                    }
                };
                if consistent {
                    checks.push(pass(
                        "ledger.consistency",
                        b.tree_size.into(),
                        "consistent with the last verified checkpoint".into(),
                    ));
                    // 3. Re-hash newly sealed entries into the independent edge.
                    if self.edge.is_none() {
                        // First sample: start from the stored tree at the signed size; older
                        // entries are covered by the scrub, so this costs O(log n), not O(n).
                        let edge = RightEdge::load(b.tree_size, &mut DbHashes(c))
                            .map_err(|e| StoreError::other(format!("merkle: {e}")))?;
                        self.edge = Some(edge);
                    }
                    let edge = self.edge.as_mut().expect("initialised above");
                    let target = b.tree_size.min(edge.size() + MAX_NEW_PER_SAMPLE);
                    let mut scratch = Vec::new();
                    let mut mismatch = None;
                    for (idx, id, data) in read_leaves(c, edge.size(), target)? {
                        if idx != edge.size() {
                            mismatch = Some(edge.size());
                            break;
                        }
                        let h = leaf_hash(&data);
                        if h != id {
                            mismatch = Some(idx);
                            break;
                        }
                        scratch.clear();
                        edge.append(h, &mut scratch);
                        rehashed += 1;
                    }
                    if mismatch.is_none() && edge.size() != target {
                        mismatch = Some(edge.size());
                    }
                    if let Some(i) = mismatch {
                        self.bad.insert(i);
                        // Start over from the stored tree next time, after the repair.
                        self.edge = None;
                        checks.push(failed(
                            "ledger.rehash",
                            i.into(),
                            "leaf data hashes to the stored id".into(),
                        ));
                    } else if edge.size() == b.tree_size && edge.root() != b.root_hash {
                        self.edge = None;
                        self.global_failure = Some(format!(
                            "entries re-hashed up to {} do not reproduce the signed root",
                            b.tree_size
                        ));
                        checks.push(failed(
                            "ledger.rehash",
                            b.tree_size.into(),
                            "root equals the signed root".into(),
                        ));
                    } else {
                        checks.push(pass(
                            "ledger.rehash",
                            rehashed.into(),
                            "entries since the last sample".into(),
                        ));
                        self.verified = Some((b.tree_size, b.root_hash));
                        if self.global_failure.as_deref().is_some_and(|f| {
                            f.starts_with("entries re-hashed") || f.starts_with("checkpoint")
                        }) {
                            self.global_failure = None;
                        }
                    }
                } else {
                    checks.push(failed(
                        "ledger.consistency",
                        b.tree_size.into(),
                        "consistent with the last verified checkpoint".into(),
                    ));
                    self.global_failure = Some(format!(
                        "checkpoint of size {} is not consistent with the verified one of size {}",
                        b.tree_size,
                        self.verified.map_or(0, |v| v.0)
                    ));
                }
            }
        }

        // 4. Re-check known bad records, then the rolling scrub over sealed records.
        let still_bad: Vec<u64> = self.bad.iter().copied().take(64).collect();
        for i in still_bad {
            if Self::scrub_range(c, i, (i + 1).min(head.tree_size.max(i + 1)))?.is_empty()
                && i < head.tree_size
            {
                self.bad.remove(&i);
            }
        }
        // A cycle covers [0, cycle_end), fixed when the cycle starts: entries sealed later are
        // re-hashed as they arrive and join the next cycle. (Chasing the growing head instead
        // would never wrap back to old records on a ledger that takes appends.)
        let limit = self.verified.map_or(0, |v| v.0);
        if limit > 0 {
            if self.cycle_end == 0 {
                self.cycle_end = limit;
            }
            if self.scrub_next >= self.cycle_end {
                self.scrub_next = 0;
                self.scrub_cycles += 1;
                self.cycle_end = limit;
            }
            let to = (self.scrub_next + self.scrub_per_sample).min(self.cycle_end);
            let found = Self::scrub_range(c, self.scrub_next, to)?;
            scrubbed = to - self.scrub_next;
            self.bad.extend(found.iter().copied());
            self.scrub_next = to;
        }
        if let Some(&first) = self.bad.iter().next() {
            checks.push(failed(
                "ledger.scrub",
                first.into(),
                "stored entries match the tree".into(),
            ));
        } else {
            checks.push(pass(
                "ledger.scrub",
                serde_json::json!({"position": self.scrub_next, "cycles": self.scrub_cycles}),
                "stored entries match the tree".into(),
            ));
        }
        if self.global_failure.is_some() || !self.bad.is_empty() {
            score = 0.0;
        }

        // 5. Sequencer lag.
        if head.tree_size > head.sealed_size {
            let oldest = db::timestamp_of(c, head.sealed_size)?.unwrap_or_else(now_ms);
            let lag = (now_ms() - oldest).max(0);
            let limit = 10 * self.block_interval_ms;
            if lag > limit {
                score = score.min(0.5);
                checks.push(CheckRow {
                    name: "ledger.sequencer_lag_ms".into(),
                    status: "warn",
                    observed: lag.into(),
                    threshold: limit.into(),
                });
            } else {
                checks.push(pass("ledger.sequencer_lag_ms", lag.into(), limit.into()));
            }
        }
        Ok(LedgerSample {
            score,
            checks,
            bad_index: self.bad.iter().next().copied(),
            verified_size: self.verified.map_or(0, |v| v.0),
            scrub_position: self.scrub_next,
            scrub_cycles: self.scrub_cycles,
            rehashed,
            scrubbed,
        })
    }

    /// Why L is 0, for recommendations.
    pub fn failure(&self) -> Option<String> {
        self.global_failure.clone().or_else(|| {
            self.bad
                .iter()
                .next()
                .map(|i| format!("stored entry {i} does not match the tree"))
        })
    }
}
