//! The Civic Ledger (ledger-api, SPEC §3).
//!
//! Three stages, after Trillian/Tessera: *sequencing* (the [`writer`] thread durably assigns
//! dense indexes in group commits), *integration* (the same transaction extends the stored
//! Merkle tree, whose hashes are laid out as in Go's sumdb/tlog so that any root or proof
//! needs O(log n) reads), and *publishing* (blocks sealed by time or count carry a C2SP
//! signed checkpoint). Verification ([`verify`], [`witness`]) is separate code that trusts
//! nothing the writer stored.

pub mod db;
pub mod entry;
pub mod keys;
pub mod routes;
pub mod shared;
pub mod verify;
pub mod witness;
pub mod writer;

use mobius_core::note::NoteSigner;
use mobius_http::ApiError;
use mobius_store::{Conn, Pool, StoreConfig, StoreError};
use serde_json::json;
use shared::Shared;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use writer::{AppendError, Appended, Job, Writer, WriterConfig};

pub const SERVICE: &str = "ledger-api";

#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Checkpoint origin and signing key name (`ledger.origin`).
    pub origin: String,
    pub block_interval_ms: u64,
    pub block_max_entries: u64,
    /// Bytes of entries that may wait in the sequencer queue before appends get 503.
    pub queue_max_bytes: usize,
    /// Entries committed in one transaction at most.
    pub max_group_entries: usize,
    /// Read connections.
    pub read_pool_size: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            origin: "mobius.local/civic-ledger".into(),
            block_interval_ms: 1000,
            block_max_entries: 10_000,
            queue_max_bytes: 64 << 20,
            max_group_entries: 20_000,
            read_pool_size: 8,
        }
    }
}

/// Most jobs that may wait in the sequencer channel (each is one request).
const QUEUE_MAX_JOBS: usize = 65_536;

pub struct Ledger {
    pub pool: Pool,
    pub shared: Arc<Shared>,
    pub signer: Arc<NoteSigner>,
    pub config: LedgerConfig,
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<mobius_store::Checkpointer>>,
}

impl Ledger {
    /// Opens the ledger over a migrated store and starts the sequencer thread. Refuses to
    /// start if the store was created with another origin or checkpoint key, so a log is
    /// never signed by two keys.
    pub fn open(
        store: StoreConfig,
        signer: NoteSigner,
        config: LedgerConfig,
    ) -> Result<Arc<Ledger>, StoreError> {
        let mut conn = store.connect()?;
        check_identity(&mut conn, &signer)?;
        // SQLite: checkpoint the WAL on a background thread, not inside sequencer commits.
        let checkpointer = match &store {
            StoreConfig::Sqlite { path } => {
                conn.disable_auto_checkpoint()?;
                Some(mobius_store::Checkpointer::start(
                    path.clone(),
                    Duration::from_millis(500),
                )?)
            }
            StoreConfig::Postgres { .. } => None,
        };
        let shared = Arc::new(Shared::default());
        let signer = Arc::new(signer);
        let writer = Writer::open(
            conn,
            signer.clone(),
            shared.clone(),
            WriterConfig {
                block_interval: Duration::from_millis(config.block_interval_ms.max(1)),
                block_max_entries: config.block_max_entries.max(1),
                max_group_entries: config.max_group_entries.max(1),
            },
        )?;
        let writer = match &store {
            StoreConfig::Sqlite { path } => {
                writer.with_wal(std::path::PathBuf::from(format!("{}-wal", path.display())))
            }
            StoreConfig::Postgres { .. } => writer,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_MAX_JOBS);
        let thread = std::thread::Builder::new()
            .name("ledger-sequencer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::other(format!("spawn sequencer: {e}")))?;
        Ok(Arc::new(Ledger {
            pool: Pool::new(store, config.read_pool_size),
            shared,
            signer,
            config,
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(checkpointer),
        }))
    }

    fn send(&self, job: Job) -> Result<(), ApiError> {
        let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Err(ApiError::unavailable("the ledger is shutting down"));
        };
        tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                ApiError::unavailable("the ledger sequencer queue is full; retry shortly")
            }
            TrySendError::Disconnected(_) => {
                ApiError::unavailable("the ledger sequencer has stopped")
            }
        })
    }

    /// Appends entries atomically; resolves once they are durable.
    pub async fn append(
        &self,
        entries: Vec<entry::PreparedEntry>,
    ) -> Result<Vec<Appended>, ApiError> {
        self.append_with(entries, None).await
    }

    /// Appends entries and runs `apply` in the same transaction (SPEC §1.1: every state
    /// change is written with its ledger entry). If `apply` refuses, nothing is written.
    pub async fn append_with(
        &self,
        entries: Vec<entry::PreparedEntry>,
        apply: Option<writer::StateChange>,
    ) -> Result<Vec<Appended>, ApiError> {
        let bytes: usize = entries.iter().map(entry::PreparedEntry::queued_bytes).sum();
        let queued = self.shared.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if queued + bytes > self.config.queue_max_bytes {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(ApiError::unavailable(
                "the ledger sequencer queue is full; retry shortly",
            ));
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        if let Err(e) = self.send(Job::Append {
            entries,
            queued_bytes: bytes,
            apply,
            reply,
        }) {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(e);
        }
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(AppendError::Conflict { position, existing_index })) => Err(ApiError::conflict(
                "this ref was already used with a different type, subject or payload; use a new ref",
            )
            .with_details(json!({"position": position, "existing_index": existing_index}))),
            Ok(Err(AppendError::Store(e))) => Err(e.into()),
            Ok(Err(AppendError::Rejected(e))) => Err(e),
            Ok(Err(AppendError::Retry)) => Err(ApiError::unavailable(
                "a concurrent request with the same ref failed; retry",
            )),
            Err(_) => Err(ApiError::unavailable("the ledger sequencer stopped before answering")),
        }
    }

    /// Appends one service-written entry (`entry_type`, optional `subject`, object
    /// `payload`) from `source`, running `apply` in the same transaction. Services use this
    /// for their own namespaces, which the public attestation endpoints refuse.
    pub async fn attest(
        &self,
        entry_type: &str,
        subject: Option<&str>,
        source: &str,
        payload: serde_json::Value,
        apply: Option<writer::StateChange>,
    ) -> Result<Appended, ApiError> {
        let mut body = json!({"type": entry_type, "payload": payload});
        if let Some(s) = subject {
            body["subject"] = json!(s);
        }
        let req: entry::NewEntryRequest = serde_json::from_value(body)
            .map_err(|e| ApiError::internal(format!("building {entry_type} entry: {e}")))?;
        let prepared = entry::prepare(req, source, mobius_core::time::now_ms(), None)?;
        let out = self.append_with(vec![prepared], apply).await?;
        out.into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("sequencer returned no result"))
    }

    /// Seals a block now if anything is unsealed.
    pub async fn seal(&self) -> Result<Option<db::Block>, ApiError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.send(Job::Seal { reply })?;
        match rx.await {
            Ok(r) => r.map_err(ApiError::from),
            Err(_) => Err(ApiError::unavailable(
                "the ledger sequencer stopped before answering",
            )),
        }
    }

    /// Runs a read on a pooled connection off the async threads.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(ApiError::internal)?
    }

    /// Stops accepting appends, lets the sequencer commit what is queued, seal the rest and
    /// exit. Blocks until the thread is gone.
    pub fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        if let Some(mut c) = self
            .checkpointer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            c.stop();
        }
    }

    /// Sequencer lag: age of the oldest unsealed entry in milliseconds (0 when all sealed).
    pub fn sequencer_lag_ms(&self) -> i64 {
        let oldest = self.shared.oldest_unsealed_ms.load(Ordering::Acquire);
        if oldest == 0 {
            0
        } else {
            (mobius_core::time::now_ms() - oldest).max(0)
        }
    }

    /// The service-specific metric families.
    pub fn render_metrics(&self, out: &mut String, svc_label: &str) {
        use mobius_http::metrics::{family, single};
        let s = &self.shared;
        single(
            out,
            "mobius_ledger_tree_size",
            "gauge",
            "Entries in the Civic Ledger (committed tree size).",
            svc_label,
            s.tree_size.load(Ordering::Acquire) as f64,
        );
        single(
            out,
            "mobius_ledger_sealed_size",
            "gauge",
            "Entries covered by sealed, signed blocks.",
            svc_label,
            s.sealed_size.load(Ordering::Acquire) as f64,
        );
        single(
            out,
            "mobius_ledger_block_height",
            "gauge",
            "Number of sealed blocks.",
            svc_label,
            s.block_height.load(Ordering::Acquire) as f64,
        );
        single(
            out,
            "mobius_ledger_sequencer_lag_seconds",
            "gauge",
            "Age of the oldest entry not yet sealed into a block (0 when all are sealed).",
            svc_label,
            self.sequencer_lag_ms() as f64 / 1000.0,
        );
        single(
            out,
            "mobius_ledger_queue_bytes",
            "gauge",
            "Bytes of entries waiting for the sequencer.",
            svc_label,
            s.queued_bytes.load(Ordering::Acquire) as f64,
        );
        single(
            out,
            "mobius_ledger_appends_total",
            "counter",
            "Entries appended by this process (excluding idempotent duplicates).",
            svc_label,
            s.appended_total.load(Ordering::Relaxed) as f64,
        );
        family(
            out,
            "mobius_ledger_commit_duration_seconds",
            "histogram",
            "Time to plan, write and fsync one group commit.",
        );
        s.commit_seconds
            .render(out, "mobius_ledger_commit_duration_seconds", svc_label);
        family(
            out,
            "mobius_ledger_commit_entries",
            "histogram",
            "New entries per group commit.",
        );
        s.commit_entries
            .render(out, "mobius_ledger_commit_entries", svc_label);
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

const ORIGIN_SETTING: &str = "ledger.origin";
const KEY_SETTING: &str = "ledger.verifier_key";

fn check_identity(conn: &mut Conn, signer: &NoteSigner) -> Result<(), StoreError> {
    let vkey = signer.verifier_key();
    conn.transaction(|c| -> Result<(), StoreError> {
        match db::setting(c, ORIGIN_SETTING)? {
            Some(o) if o != signer.name() => {
                return Err(StoreError::new(
                    mobius_store::ErrorKind::Schema,
                    format!("this store's ledger origin is {o:?} but the configuration says {:?}; fix ledger.origin", signer.name()),
                ));
            }
            Some(_) => {}
            None => db::set_setting(c, ORIGIN_SETTING, signer.name())?,
        }
        match db::setting(c, KEY_SETTING)? {
            Some(k) if k != vkey => Err(StoreError::new(
                mobius_store::ErrorKind::Schema,
                format!("this store's checkpoints are signed by {k} but the configured key is {vkey}; restore the original signing key"),
            )),
            Some(_) => Ok(()),
            None => db::set_setting(c, KEY_SETTING, &vkey),
        }
    })
}
