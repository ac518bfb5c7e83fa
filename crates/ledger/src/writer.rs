//! The sequencer: one thread owns the ledger's write connection. Handlers validate and hash
//! their entries, then queue them here (bounded by bytes; full → 503). The thread drains
//! whatever is queued, resolves idempotent refs, assigns dense indexes, extends the Merkle
//! tree, seals blocks that fill up, and commits the whole group in ONE transaction (one
//! fsync) before answering any request in it. Blocks are also sealed on a timer.
//!
//! Invariants:
//! - An append is acknowledged only after its transaction committed.
//! - Indexes are dense: the in-memory right edge is rolled back if a commit fails.
//! - A checkpoint is signed only after a consistency proof from the previous signed
//!   checkpoint to the new tree verifies against the stored hashes.
//! - On PostgreSQL every transaction starts with the ledger's advisory lock and re-reads the
//!   head, so several replicas can write without ever forking the log.

use crate::db::{self, Block, DbHashes, Head};
use crate::entry::PreparedEntry;
use crate::shared::Shared;
use mobius_core::merkle::{self, Hash, RightEdge};
use mobius_core::note::NoteSigner;
use mobius_core::time::now_ms;
use mobius_http::ApiError;
use mobius_store::{Conn, Param, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// PostgreSQL advisory-lock key serialising ledger writers across replicas.
pub const LEDGER_LOCK_KEY: i64 = 0x6d6f_6269_7573_4c47;

/// What the sequencer answers for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub id: Hash,
    pub index: u64,
    pub timestamp_ms: i64,
    /// Tree size right after the commit that made this entry durable (or, for a duplicate,
    /// at the time it was found).
    pub tree_size: u64,
    /// True when this was an idempotent re-submission of an existing entry.
    pub duplicate: bool,
}

#[derive(Debug, Clone)]
pub enum AppendError {
    /// Entry `position` of the request reuses a (source, ref) with a different body.
    Conflict {
        position: usize,
        existing_index: Option<u64>,
    },
    Store(StoreError),
    /// The request's state change refused (a domain rule); nothing of it was written.
    Rejected(ApiError),
    /// The request duplicated a ref that another request of the same group was about to
    /// write, and that request's state change failed: retry.
    Retry,
}

/// A state change that commits in the same transaction as its request's ledger entries (SPEC
/// §1.1). It sees the entries' results (indexes, ids) and may refuse with an [`ApiError`];
/// then the entries are rolled back with it and no index is consumed.
pub type StateChange = Box<dyn FnOnce(&mut Conn, &[Appended]) -> Result<(), ApiError> + Send>;

pub type AppendResult = Result<Vec<Appended>, AppendError>;

struct GroupJob {
    entries: Vec<PreparedEntry>,
    queued_bytes: usize,
    apply: Option<StateChange>,
    reply: oneshot::Sender<AppendResult>,
}

pub enum Job {
    Append {
        entries: Vec<PreparedEntry>,
        queued_bytes: usize,
        apply: Option<StateChange>,
        reply: oneshot::Sender<AppendResult>,
    },
    /// Seal now if anything is unsealed (tests, shutdown, operators).
    Seal {
        reply: oneshot::Sender<Result<Option<Block>, StoreError>>,
    },
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub block_interval: Duration,
    pub block_max_entries: u64,
    /// Entries committed per transaction at most.
    pub max_group_entries: usize,
}

pub struct Writer {
    conn: Conn,
    st: State,
    /// SQLite's WAL file, kept small: see [`WAL_RESTART_BYTES`].
    wal_path: Option<std::path::PathBuf>,
}

/// When the WAL grows past this, the sequencer runs a RESTART checkpoint between groups
/// (cheap: the background checkpointer has already copied most frames), so the next commit
/// overwrites the start of the WAL instead of growing the file — appending to a growing
/// file cost a third of the sequencer's CPU (page zeroing) and a slower fsync.
pub const WAL_RESTART_BYTES: u64 = 64 << 20;

/// Everything but the connection, so a transaction closure can borrow both.
struct State {
    edge: RightEdge,
    head: Head,
    last_block: Option<Block>,
    signer: Arc<NoteSigner>,
    shared: Arc<Shared>,
    config: WriterConfig,
    hashes_buf: Vec<(u64, Hash)>,
}

type RefKey<'a> = (&'a str, &'a str);

fn ref_key(e: &PreparedEntry) -> RefKey<'_> {
    (e.source.as_str(), e.reference.as_deref().unwrap_or(""))
}

/// Statistics rows a group (or one savepointed request) adds.
#[derive(Default)]
struct GroupStats {
    type_counts: HashMap<String, i64>,
    /// First index of each subject, written once per subject.
    subjects: HashMap<String, u64>,
}

impl GroupStats {
    fn write(&mut self, c: &mut Conn) -> Result<(), StoreError> {
        for (subject, index) in self.subjects.drain() {
            c.execute(
                "INSERT INTO ledger_subjects (subject, first_index) VALUES ($1, $2) \
                 ON CONFLICT (subject) DO NOTHING",
                &[Param::Text(&subject), Param::Int(db::to_i64(index)?)],
            )?;
        }
        for (t, n) in self.type_counts.drain() {
            c.execute(
                "INSERT INTO ledger_type_counts (type, count) VALUES ($1, $2) \
                 ON CONFLICT (type) DO UPDATE SET count = ledger_type_counts.count + excluded.count",
                &[Param::Text(&t), Param::Int(n)],
            )?;
        }
        Ok(())
    }
}

enum Slot {
    New(usize),
    Existing(Appended),
    /// Same (source, ref) and body as entry N of the same request.
    SameAs(usize),
    /// Same (source, ref) and body as an entry of an earlier request in this group.
    SameAsEarlierJob,
}

impl Writer {
    /// Loads the head, the right edge (O(log n) reads) and the latest block.
    pub fn open(
        mut conn: Conn,
        signer: Arc<NoteSigner>,
        shared: Arc<Shared>,
        config: WriterConfig,
    ) -> Result<Self, StoreError> {
        let head = db::head(&mut conn)?;
        let edge = RightEdge::load(head.tree_size, &mut DbHashes(&mut conn)).map_err(tree_err)?;
        let last_block = db::latest_block(&mut conn)?;
        let mut w = Writer {
            conn,
            st: State {
                edge,
                head,
                last_block,
                signer,
                shared,
                config,
                hashes_buf: Vec::new(),
            },
            wal_path: None,
        };
        w.st.publish(&mut w.conn)?;
        Ok(w)
    }

    /// The thread body: runs until every sender is gone, then seals what is left.
    pub fn run(mut self, rx: Receiver<Job>) {
        let mut next_seal = Instant::now() + self.st.config.block_interval;
        loop {
            let timeout = next_seal.saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(first) => {
                    let mut appends = Vec::new();
                    let mut seals = Vec::new();
                    let mut entries = 0;
                    let mut next = Some(first);
                    while let Some(job) = next.take() {
                        match job {
                            Job::Append {
                                entries: e,
                                queued_bytes,
                                apply,
                                reply,
                            } => {
                                entries += e.len();
                                appends.push(GroupJob {
                                    entries: e,
                                    queued_bytes,
                                    apply,
                                    reply,
                                });
                            }
                            Job::Seal { reply } => seals.push(reply),
                        }
                        if entries < self.st.config.max_group_entries {
                            next = rx.try_recv().ok();
                        }
                    }
                    if !appends.is_empty() {
                        self.append_group(appends);
                    }
                    for reply in seals {
                        let _ = reply.send(self.seal_now());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.seal_now() {
                        mobius_http::log::error(
                            "final seal failed",
                            &[("error", json!(e.to_string()))],
                        );
                    }
                    return;
                }
            }
            if Instant::now() >= next_seal {
                if let Err(e) = self.seal_now() {
                    mobius_http::log::error(
                        "block seal failed",
                        &[("error", json!(e.to_string()))],
                    );
                }
                next_seal = Instant::now() + self.st.config.block_interval;
            }
        }
    }

    /// Seals a block now if there are unsealed entries.
    fn seal_now(&mut self) -> Result<Option<Block>, StoreError> {
        let before = self.st.snapshot();
        let now = now_ms();
        let st = &mut self.st;
        let result = self.conn.transaction(|c| {
            c.lock_for_write(LEDGER_LOCK_KEY)?;
            st.sync_head(c)?;
            if st.head.tree_size == st.head.sealed_size {
                return Ok(None);
            }
            let block = st.seal_in_tx(c, now)?;
            db::set_head(c, st.head)?;
            Ok(Some(block))
        });
        match result {
            Ok(b) => {
                self.st.publish(&mut self.conn)?;
                Ok(b)
            }
            Err(e) => {
                self.st.restore(before);
                Err(e)
            }
        }
    }

    /// Sets the SQLite WAL file to keep small (see [`WAL_RESTART_BYTES`]).
    pub fn with_wal(mut self, path: std::path::PathBuf) -> Self {
        self.wal_path = Some(path);
        self
    }

    fn restart_wal_if_large(&mut self) {
        let Some(wal) = &self.wal_path else { return };
        if std::fs::metadata(wal)
            .map(|m| m.len() > WAL_RESTART_BYTES)
            .unwrap_or(false)
            && let Err(e) = self.conn.batch("PRAGMA wal_checkpoint(RESTART)")
        {
            mobius_http::log::warn(
                "WAL restart checkpoint failed",
                &[("error", json!(e.to_string()))],
            );
        }
    }

    fn append_group(&mut self, jobs: Vec<GroupJob>) {
        let started = Instant::now();
        let before = self.st.snapshot();
        let queued: usize = jobs.iter().map(|j| j.queued_bytes).sum();
        let mut entry_lists = Vec::with_capacity(jobs.len());
        let mut applies = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for j in jobs {
            entry_lists.push(j.entries);
            applies.push(j.apply);
            replies.push(j.reply);
        }
        let now = now_ms();
        let st = &mut self.st;
        let result = self.conn.transaction(|c| {
            c.lock_for_write(LEDGER_LOCK_KEY)?;
            st.sync_head(c)?;
            st.plan_and_write(c, &entry_lists, &mut applies, now)
        });
        self.st
            .shared
            .queued_bytes
            .fetch_sub(queued, Ordering::AcqRel);
        match result {
            Ok(results) => {
                let new_entries: u64 = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .map(|v| v.iter().filter(|a| !a.duplicate).count() as u64)
                    .sum();
                if let Err(e) = self.st.publish(&mut self.conn) {
                    mobius_http::log::error(
                        "publishing ledger head failed",
                        &[("error", json!(e.to_string()))],
                    );
                }
                let shared = &self.st.shared;
                shared
                    .appended_total
                    .fetch_add(new_entries, Ordering::Relaxed);
                shared.commit_seconds.observe(started.elapsed());
                shared.commit_entries.observe_count(new_entries);
                self.restart_wal_if_large();
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                self.st.restore(before);
                mobius_http::log::error("ledger commit failed", &[("error", json!(e.to_string()))]);
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Store(e.clone())));
                }
            }
        }
    }
}

impl State {
    fn snapshot(&self) -> (RightEdge, Head, Option<Block>) {
        (self.edge.clone(), self.head, self.last_block.clone())
    }

    /// Rolls the in-memory tree state back after a failed commit, keeping indexes dense.
    fn restore(&mut self, s: (RightEdge, Head, Option<Block>)) {
        (self.edge, self.head, self.last_block) = s;
    }

    /// Makes committed state visible to readers and metrics.
    fn publish(&mut self, conn: &mut Conn) -> Result<(), StoreError> {
        self.shared
            .tree_size
            .store(self.head.tree_size, Ordering::Release);
        self.shared
            .sealed_size
            .store(self.head.sealed_size, Ordering::Release);
        let oldest = if self.head.tree_size > self.head.sealed_size {
            db::timestamp_of(conn, self.head.sealed_size)?.unwrap_or(0)
        } else {
            0
        };
        self.shared
            .oldest_unsealed_ms
            .store(oldest, Ordering::Release);
        if let Some(b) = &self.last_block {
            self.shared
                .block_height
                .store(b.height + 1, Ordering::Release);
        }
        Ok(())
    }

    /// Re-reads the head inside the write transaction; reloads the in-memory tree state if
    /// another writer (a PostgreSQL replica) moved it.
    fn sync_head(&mut self, c: &mut Conn) -> Result<(), StoreError> {
        let c_head = db::head(c)?;
        if c_head != self.head || self.edge.size() != c_head.tree_size {
            self.edge = RightEdge::load(c_head.tree_size, &mut DbHashes(c)).map_err(tree_err)?;
            self.last_block = db::latest_block(c)?;
            self.head = c_head;
        }
        Ok(())
    }

    /// Seals the entries since the last block (inside the caller's transaction).
    fn seal_in_tx(&mut self, c: &mut Conn, now: i64) -> Result<Block, StoreError> {
        let size = self.edge.size();
        let root = self.edge.root();
        let (height, prev_hash, first_index) = match &self.last_block {
            Some(prev) => {
                // Never sign a checkpoint inconsistent with the previous one.
                let proof = merkle::consistency_proof(prev.tree_size, size, &mut DbHashes(c))
                    .map_err(tree_err)?;
                merkle::verify_consistency(prev.tree_size, size, &prev.root_hash, &root, &proof).map_err(|e| {
                    StoreError::other(format!(
                        "refusing to sign: tree of size {size} is not consistent with the signed checkpoint of size {}: {e}",
                        prev.tree_size
                    ))
                })?;
                (prev.height + 1, prev.block_hash, prev.tree_size)
            }
            None => (0, [0u8; 32], 0),
        };
        let mut block = Block {
            height,
            first_index,
            entry_count: size - first_index,
            tree_size: size,
            root_hash: root,
            prev_block_hash: prev_hash,
            block_hash: [0; 32],
            sealed_at_ms: now,
            checkpoint: self.signer.sign_checkpoint(size, &root),
        };
        block.block_hash = block.compute_hash();
        db::insert_block(c, &block)?;
        self.head.sealed_size = size;
        self.last_block = Some(block.clone());
        Ok(block)
    }

    /// Resolves refs, assigns indexes and writes every accepted entry. Returns one result per
    /// job; a job with a conflicting ref writes nothing and does not affect the others.
    fn plan_and_write(
        &mut self,
        c: &mut Conn,
        jobs: &[Vec<PreparedEntry>],
        applies: &mut [Option<StateChange>],
        now: i64,
    ) -> Result<Vec<AppendResult>, StoreError> {
        // Fingerprints of refs that earlier accepted jobs of this group will write.
        let mut group_refs: HashMap<RefKey<'_>, Option<Hash>> = HashMap::new();
        let mut plans: Vec<Result<Vec<Slot>, AppendError>> = Vec::with_capacity(jobs.len());

        for entries in jobs {
            let mut slots = Vec::with_capacity(entries.len());
            // Refs this job writes itself: fingerprint and position.
            let mut local: HashMap<RefKey<'_>, (Option<Hash>, usize)> = HashMap::new();
            let mut conflict = None;
            for (pos, e) in entries.iter().enumerate() {
                let Some(r) = e.reference.as_deref() else {
                    slots.push(Slot::New(pos));
                    continue;
                };
                let key = (e.source.as_str(), r);
                let conflict_at = |existing_index| AppendError::Conflict {
                    position: pos,
                    existing_index,
                };
                if let Some((fp, p)) = local.get(&key) {
                    if *fp != e.fingerprint {
                        conflict = Some(conflict_at(None));
                        break;
                    }
                    slots.push(Slot::SameAs(*p));
                } else if let Some(fp) = group_refs.get(&key) {
                    if *fp != e.fingerprint {
                        conflict = Some(conflict_at(None));
                        break;
                    }
                    slots.push(Slot::SameAsEarlierJob);
                } else if let Some(x) = db::find_ref(c, key.0, key.1)? {
                    if x.fingerprint != e.fingerprint {
                        conflict = Some(conflict_at(Some(x.index)));
                        break;
                    }
                    slots.push(Slot::Existing(Appended {
                        id: x.id,
                        index: x.index,
                        timestamp_ms: x.timestamp_ms,
                        tree_size: 0,
                        duplicate: true,
                    }));
                } else {
                    local.insert(key, (e.fingerprint, pos));
                    slots.push(Slot::New(pos));
                }
            }
            match conflict {
                Some(err) => plans.push(Err(err)),
                None => {
                    group_refs.extend(local.into_iter().map(|(k, (fp, _))| (k, fp)));
                    plans.push(Ok(slots));
                }
            }
        }

        // Assign indexes and write, in request order.
        let mut stats = GroupStats::default();
        let mut results: Vec<AppendResult> = Vec::with_capacity(jobs.len());
        let mut decided: HashMap<RefKey<'_>, Appended> = HashMap::new();
        let mut pending: Vec<(u64, &PreparedEntry)> = Vec::new();
        self.hashes_buf.clear();
        for (j, plan) in plans.into_iter().enumerate() {
            let slots = match plan {
                Ok(s) => s,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let entries = &jobs[j];
            // A ref claimed by an earlier request of this group whose state change then
            // failed was never written: this request must be retried, not half-written.
            let undecided = slots.iter().zip(entries).any(|(slot, e)| {
                matches!(slot, Slot::SameAsEarlierJob) && !decided.contains_key(&ref_key(e))
            });
            if undecided {
                results.push(Err(AppendError::Retry));
                continue;
            }
            let Some(apply) = applies.get_mut(j).and_then(Option::take) else {
                let out = self.write_slots(
                    c,
                    entries,
                    &slots,
                    &mut decided,
                    &mut pending,
                    &mut stats,
                    now,
                )?;
                results.push(Ok(out));
                continue;
            };
            // A state change runs in the same transaction as its entries, inside a
            // savepoint: if it refuses, its entries vanish and the group goes on.
            self.flush(c, &mut pending)?;
            let snapshot = self.snapshot();
            c.batch("SAVEPOINT mobius_job")?;
            let mut job_stats = GroupStats::default();
            let mut job_decided: HashMap<RefKey<'_>, Appended> = HashMap::new();
            let written = self
                .write_slots(
                    c,
                    entries,
                    &slots,
                    &mut job_decided,
                    &mut pending,
                    &mut job_stats,
                    now,
                )
                .and_then(|out| {
                    self.flush(c, &mut pending)?;
                    job_stats.write(c)?;
                    Ok(out)
                });
            let outcome = match written {
                Ok(mut out) => {
                    let size = self.edge.size();
                    for a in &mut out {
                        a.tree_size = size;
                    }
                    apply(c, &out).map(|()| out).map_err(AppendError::Rejected)
                }
                Err(e) => Err(AppendError::Store(e)),
            };
            match outcome {
                Ok(out) => {
                    c.batch("RELEASE SAVEPOINT mobius_job")?;
                    decided.extend(job_decided);
                    results.push(Ok(out));
                }
                Err(e) => {
                    c.batch("ROLLBACK TO SAVEPOINT mobius_job")?;
                    c.batch("RELEASE SAVEPOINT mobius_job")?;
                    self.restore(snapshot);
                    pending.clear();
                    self.hashes_buf.clear();
                    results.push(Err(e));
                }
            }
        }
        self.flush(c, &mut pending)?;
        stats.write(c)?;
        self.head.tree_size = self.edge.size();
        db::set_head(c, self.head)?;
        let size = self.head.tree_size;
        for r in results.iter_mut().flatten() {
            for a in r.iter_mut() {
                a.tree_size = size;
            }
        }
        Ok(results)
    }

    /// Assigns indexes to a request's new entries (buffering their rows) and resolves its
    /// duplicates; seals a block whenever one fills up.
    #[allow(clippy::too_many_arguments)]
    fn write_slots<'a>(
        &mut self,
        c: &mut Conn,
        entries: &'a [PreparedEntry],
        slots: &[Slot],
        decided: &mut HashMap<RefKey<'a>, Appended>,
        pending: &mut Vec<(u64, &'a PreparedEntry)>,
        stats: &mut GroupStats,
        now: i64,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut out: Vec<Appended> = Vec::with_capacity(slots.len());
        for (pos, slot) in slots.iter().enumerate() {
            let a = match slot {
                Slot::Existing(a) => *a,
                Slot::SameAs(p) => Appended {
                    duplicate: true,
                    ..out[*p]
                },
                Slot::SameAsEarlierJob => match decided.get(&ref_key(&entries[pos])) {
                    Some(a) => Appended {
                        duplicate: true,
                        ..*a
                    },
                    None => return Err(StoreError::other("internal: unresolved duplicate ref")),
                },
                Slot::New(p) => {
                    let e = &entries[*p];
                    let index = self.edge.size();
                    pending.push((index, e));
                    self.edge.append(e.leaf_hash, &mut self.hashes_buf);
                    *stats.type_counts.entry(e.entry_type.clone()).or_insert(0) += 1;
                    if let Some(s) = &e.subject {
                        stats.subjects.entry(s.clone()).or_insert(index);
                    }
                    let a = Appended {
                        id: e.leaf_hash,
                        index,
                        timestamp_ms: e.timestamp_ms,
                        tree_size: 0,
                        duplicate: false,
                    };
                    if e.reference.is_some() {
                        decided.insert(ref_key(e), a);
                    }
                    // Count-based seal: a block holds at most block_max_entries.
                    if self.edge.size() - self.head.sealed_size >= self.config.block_max_entries {
                        self.flush(c, pending)?;
                        self.seal_in_tx(c, now)?;
                    }
                    a
                }
            };
            out.push(a);
        }
        Ok(out)
    }

    /// Writes buffered entries and stored hashes with multi-row INSERTs (one statement per
    /// chunk instead of one per row: fewer statement executions on SQLite, far fewer round
    /// trips on PostgreSQL).
    fn flush(
        &mut self,
        c: &mut Conn,
        pending: &mut Vec<(u64, &PreparedEntry)>,
    ) -> Result<(), StoreError> {
        const ENTRY_COLUMNS: usize = 9;
        for chunk in pending.chunks(ROWS_PER_INSERT) {
            let idx: Vec<i64> = chunk
                .iter()
                .map(|(i, _)| db::to_i64(*i))
                .collect::<Result<_, _>>()?;
            let mut params: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * ENTRY_COLUMNS);
            for ((_, e), i) in chunk.iter().zip(&idx) {
                params.extend([
                    Param::Int(*i),
                    Param::Bytes(&e.leaf_hash),
                    Param::Text(&e.entry_type),
                    e.subject.as_deref().into(),
                    Param::Text(&e.source),
                    e.reference.as_deref().into(),
                    e.fingerprint
                        .as_ref()
                        .map_or(Param::Null, |f| Param::Bytes(f)),
                    Param::Int(e.timestamp_ms),
                    Param::Bytes(&e.leaf_data),
                ]);
            }
            c.execute(
                &multi_row_insert(
                    "INSERT INTO ledger_entries (idx, id, type, subject, source, ref, fingerprint, timestamp_ms, leaf_data)",
                    ENTRY_COLUMNS,
                    chunk.len(),
                ),
                &params,
            )?;
        }
        pending.clear();
        for chunk in self.hashes_buf.chunks(ROWS_PER_INSERT * 2) {
            let ns: Vec<i64> = chunk
                .iter()
                .map(|(n, _)| db::to_i64(*n))
                .collect::<Result<_, _>>()?;
            let mut params: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * 2);
            for ((_, h), n) in chunk.iter().zip(&ns) {
                params.extend([Param::Int(*n), Param::Bytes(h)]);
            }
            c.execute(
                &multi_row_insert("INSERT INTO ledger_hashes (n, hash)", 2, chunk.len()),
                &params,
            )?;
        }
        self.hashes_buf.clear();
        Ok(())
    }
}

/// Rows per multi-row INSERT (9 columns × 128 rows stays far below both backends' limits on
/// bound parameters).
const ROWS_PER_INSERT: usize = 128;

/// `INSERT ... VALUES ($1, $2), ($3, $4), ...` for `rows` rows of `columns` parameters.
fn multi_row_insert(prefix: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 6);
    sql.push_str(prefix);
    sql.push_str(" VALUES ");
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..columns {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
            n += 1;
        }
        sql.push(')');
    }
    sql
}

pub fn tree_err<E: std::fmt::Display>(e: merkle::TreeError<E>) -> StoreError {
    StoreError::other(format!("merkle tree: {e}"))
}
