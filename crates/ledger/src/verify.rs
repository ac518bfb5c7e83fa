//! Offline verification of a ledger store (SPEC §3.4): re-derives every leaf hash, every
//! stored tree hash, every block root, the block hash chain, every checkpoint signature and
//! the consistency of consecutive checkpoints — trusting nothing the writer stored. Scans in
//! index order, so the first failure names the first bad index.

use crate::db::{self, Block, DbHashes};
use mobius_core::jcs;
use mobius_core::merkle::{self, Hash, RightEdge, leaf_hash};
use mobius_core::note::NoteVerifier;
use mobius_store::{Conn, Param, StoreError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Rows fetched per query while scanning.
const SCAN_CHUNK: i64 = 8192;

#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub entries: u64,
    pub blocks: u64,
    pub tree_size: u64,
    pub root: Hash,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct VerifyFailure {
    /// The first bad index, when the failure can be pinned to one entry.
    pub index: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "index {i}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl From<StoreError> for VerifyFailure {
    fn from(e: StoreError) -> Self {
        VerifyFailure {
            index: None,
            message: format!("store error: {e}"),
        }
    }
}

fn fail(index: u64, message: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        index: Some(index),
        message: message.into(),
    }
}

fn fail_global(message: impl Into<String>) -> VerifyFailure {
    VerifyFailure {
        index: None,
        message: message.into(),
    }
}

struct Row {
    index: u64,
    id: Hash,
    entry_type: String,
    subject: Option<String>,
    source: String,
    reference: Option<String>,
    timestamp_ms: i64,
    leaf_data: Vec<u8>,
}

fn read_rows(c: &mut Conn, from: u64) -> Result<Vec<Row>, VerifyFailure> {
    let rows = c.query(
        "SELECT idx, id, type, subject, source, ref, timestamp_ms, leaf_data FROM ledger_entries \
         WHERE idx >= $1 ORDER BY idx LIMIT $2",
        &[Param::Int(db::to_i64(from)?), Param::Int(SCAN_CHUNK)],
    )?;
    rows.iter()
        .map(|r| {
            let index = db::to_u64(r.i64(0)?)?;
            let damaged = |e: StoreError| fail(index, format!("stored row is damaged: {e}"));
            let id = r
                .bytes(1)
                .map_err(damaged)?
                .try_into()
                .map_err(|_| fail(index, "stored id is not 32 bytes"))?;
            Ok(Row {
                index,
                id,
                entry_type: r.text(2).map_err(damaged)?.to_string(),
                subject: r.opt_text(3).map_err(damaged)?.map(str::to_string),
                source: r.text(4).map_err(damaged)?.to_string(),
                reference: r.opt_text(5).map_err(damaged)?.map(str::to_string),
                timestamp_ms: r.i64(6).map_err(damaged)?,
                leaf_data: r.bytes(7).map_err(damaged)?.to_vec(),
            })
        })
        .collect()
}

fn read_stored_hashes(c: &mut Conn, from: u64, to: u64) -> Result<Vec<(u64, Hash)>, VerifyFailure> {
    let rows = c.query(
        "SELECT n, hash FROM ledger_hashes WHERE n >= $1 AND n < $2 ORDER BY n",
        &[Param::Int(db::to_i64(from)?), Param::Int(db::to_i64(to)?)],
    )?;
    rows.iter()
        .map(|r| Ok((db::to_u64(r.i64(0)?)?, r.hash(1)?)))
        .collect()
}

/// Checks that the leaf data is canonical and agrees with the indexed columns.
fn check_entry(row: &Row) -> Result<(), VerifyFailure> {
    let i = row.index;
    let computed = leaf_hash(&row.leaf_data);
    if computed != row.id {
        return Err(fail(
            i,
            format!(
                "leaf data hashes to {} but the stored id is {}",
                hex::encode(computed),
                hex::encode(row.id)
            ),
        ));
    }
    let v: Value = serde_json::from_slice(&row.leaf_data)
        .map_err(|e| fail(i, format!("leaf data is not JSON: {e}")))?;
    let canon =
        jcs::to_vec(&v).map_err(|e| fail(i, format!("leaf data cannot be canonicalised: {e}")))?;
    if canon != row.leaf_data {
        return Err(fail(i, "leaf data is not in canonical (RFC 8785) form"));
    }
    let obj = v
        .as_object()
        .ok_or_else(|| fail(i, "leaf data is not an object"))?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    if text("type").as_deref() != Some(row.entry_type.as_str())
        || text("source").as_deref() != Some(row.source.as_str())
        || text("subject") != row.subject
        || text("ref") != row.reference
        || obj.get("timestamp_ms").and_then(Value::as_i64) != Some(row.timestamp_ms)
    {
        return Err(fail(
            i,
            "indexed columns (type, subject, source, ref, timestamp_ms) disagree with the leaf data",
        ));
    }
    if !obj.get("payload").is_some_and(Value::is_object) {
        return Err(fail(i, "payload is not an object"));
    }
    Ok(())
}

fn check_block(
    b: &Block,
    prev: Option<&Block>,
    edge: &RightEdge,
    verifier: &NoteVerifier,
    c: &mut Conn,
) -> Result<(), VerifyFailure> {
    let (expected_height, expected_first, expected_prev_hash) = match prev {
        Some(p) => (p.height + 1, p.tree_size, p.block_hash),
        None => (0, 0, [0u8; 32]),
    };
    let at = |m: String| fail(b.first_index, format!("block {}: {m}", b.height));
    if b.height != expected_height {
        return Err(at(format!("expected height {expected_height}")));
    }
    if b.first_index != expected_first
        || b.first_index + b.entry_count != b.tree_size
        || b.entry_count == 0
    {
        return Err(at(
            "first_index, entry_count and tree_size do not chain".into()
        ));
    }
    if b.prev_block_hash != expected_prev_hash {
        return Err(at(
            "prev_block_hash does not match the previous block's hash".into(),
        ));
    }
    if b.compute_hash() != b.block_hash {
        return Err(at("block_hash does not match the block header".into()));
    }
    let root = edge.root();
    if b.root_hash != root {
        return Err(at(format!(
            "root hash {} differs from the root {} recomputed from entries {}..{}",
            hex::encode(b.root_hash),
            hex::encode(root),
            b.first_index,
            b.tree_size
        )));
    }
    let cp = verifier
        .verify_checkpoint(&b.checkpoint)
        .map_err(|e| at(format!("checkpoint signature: {e}")))?;
    if cp.size != b.tree_size || cp.root != b.root_hash {
        return Err(at(
            "the signed checkpoint names another tree size or root".into()
        ));
    }
    if let Some(p) = prev {
        let proof = merkle::consistency_proof(p.tree_size, b.tree_size, &mut DbHashes(c))
            .map_err(|e| at(format!("consistency proof: {e}")))?;
        merkle::verify_consistency(p.tree_size, b.tree_size, &p.root_hash, &b.root_hash, &proof)
            .map_err(|e| at(format!("not consistent with block {}: {e}", p.height)))?;
    }
    Ok(())
}

/// Verifies the whole ledger in `c` against `verifier`.
pub fn verify_store(
    c: &mut Conn,
    verifier: &NoteVerifier,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, VerifyFailure> {
    let start = Instant::now();
    let head = db::head(c)?;
    let mut edge = RightEdge::new();
    let mut produced: Vec<(u64, Hash)> = Vec::new();
    let mut stored: std::collections::VecDeque<(u64, Hash)> = Default::default();
    let mut next_stored_n = 0u64;
    let mut next_index = 0u64;
    let mut prev_block: Option<Block> = None;
    let mut blocks = db::blocks_from(c, 0, 1024)?
        .into_iter()
        .collect::<std::collections::VecDeque<_>>();
    let mut block_count = 0u64;
    let mut type_counts: BTreeMap<String, u64> = BTreeMap::new();

    loop {
        let rows = read_rows(c, next_index)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            if row.index != next_index {
                return Err(fail(next_index, "entry is missing (indexes are not dense)"));
            }
            check_entry(row)?;
            *type_counts.entry(row.entry_type.clone()).or_insert(0) += 1;
            produced.clear();
            edge.append(row.id, &mut produced);
            for (n, h) in &produced {
                if stored.is_empty() {
                    let to =
                        merkle::stored_hash_count(next_index + SCAN_CHUNK as u64 + 1).max(n + 1);
                    stored.extend(read_stored_hashes(c, next_stored_n, to)?);
                    next_stored_n = to;
                }
                match stored.pop_front() {
                    Some((sn, sh)) if sn == *n && sh == *h => {}
                    Some((sn, _)) if sn == *n => {
                        return Err(fail(
                            row.index,
                            format!("stored tree hash {n} does not match the entries"),
                        ));
                    }
                    _ => return Err(fail(row.index, format!("stored tree hash {n} is missing"))),
                }
            }
            next_index += 1;
            if blocks.is_empty() {
                let from = prev_block.as_ref().map_or(0, |b| b.height + 1);
                blocks.extend(db::blocks_from(c, from, 1024)?);
            }
            if let Some(b) = blocks.front() {
                if b.tree_size == next_index {
                    let b = blocks
                        .pop_front()
                        .ok_or_else(|| fail_global("block vanished"))?;
                    check_block(&b, prev_block.as_ref(), &edge, verifier, c)?;
                    prev_block = Some(b);
                    block_count += 1;
                } else if b.tree_size < next_index {
                    return Err(fail(
                        b.first_index,
                        format!("block {} does not end on an entry boundary", b.height),
                    ));
                }
            }
        }
        progress(next_index, head.tree_size);
    }
    if next_index != head.tree_size {
        return Err(fail(
            next_index,
            format!(
                "the head says {} entries but {} are stored",
                head.tree_size, next_index
            ),
        ));
    }
    if let Some(b) = blocks.front() {
        return Err(fail_global(format!(
            "block {} covers entries that do not exist (tree size {})",
            b.height, b.tree_size
        )));
    }
    let sealed = prev_block.as_ref().map_or(0, |b| b.tree_size);
    if sealed != head.sealed_size {
        return Err(fail_global(format!(
            "the head says {} entries are sealed but the blocks cover {sealed}",
            head.sealed_size
        )));
    }
    let extra = c.query_opt(
        "SELECT n FROM ledger_hashes WHERE n >= $1 ORDER BY n LIMIT 1",
        &[Param::Int(db::to_i64(merkle::stored_hash_count(
            head.tree_size,
        ))?)],
    )?;
    if let Some(r) = extra {
        return Err(fail_global(format!(
            "stored tree hash {} lies beyond the tree",
            r.i64(0)?
        )));
    }
    let counted: BTreeMap<String, u64> = db::type_counts(c)?.into_iter().collect();
    if counted != type_counts {
        return Err(fail_global(
            "ledger_type_counts disagrees with the entries (derived statistics are damaged)",
        ));
    }
    Ok(VerifyReport {
        entries: next_index,
        blocks: block_count,
        tree_size: head.tree_size,
        root: edge.root(),
        elapsed: start.elapsed(),
    })
}
