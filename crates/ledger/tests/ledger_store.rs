//! Library-level ledger tests, run against both stores: SQLite in a temp dir and a real
//! PostgreSQL (MOBIUS_TEST_PG_URL, default postgres://root@127.0.0.1:5432/test) in a fresh
//! schema. A PostgreSQL that cannot be reached fails the test: CI starts it.

use mobius_core::merkle::{self, HashReader};
use mobius_core::note::NoteSigner;
use mobius_ledger::db::{self, DbHashes};
use mobius_ledger::entry::{NewEntryRequest, PreparedEntry, prepare};
use mobius_ledger::{Ledger, LedgerConfig};
use mobius_store::StoreConfig;
use serde_json::json;
use std::sync::Arc;

struct TestStore {
    config: StoreConfig,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.pg_schema
            && let Ok(mut c) = StoreConfig::parse(url).and_then(|s| s.connect())
        {
            let _ = c.batch(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
        }
    }
}

fn pg_url() -> String {
    std::env::var("MOBIUS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

fn store(pg: bool) -> TestStore {
    let ts = if pg {
        let schema = format!("t_{}", hex::encode(mobius_http::random_bytes::<6>()));
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let config = StoreConfig::parse(&format!("{base}{sep}schema={schema}")).unwrap();
        TestStore {
            config,
            _dir: None,
            pg_schema: Some((base, schema)),
        }
    } else {
        let dir = tempfile::tempdir().unwrap();
        TestStore {
            config: StoreConfig::sqlite(dir.path().join("m.db")),
            _dir: Some(dir),
            pg_schema: None,
        }
    };
    let mut c = ts.config.connect().unwrap_or_else(|e| {
        panic!("cannot reach the test store ({e}); for PostgreSQL start it (see .ci/run) or set MOBIUS_TEST_PG_URL")
    });
    mobius_store::migrate(&mut c, 0).unwrap();
    ts
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("test.example/log", &[7u8; 32]).unwrap()
}

fn entry(i: usize, reference: Option<&str>, note: &str) -> PreparedEntry {
    let req: NewEntryRequest = serde_json::from_value(json!({
        "type": "test.event",
        "subject": format!("citizen-{}", i % 5),
        "ref": reference,
        "payload": {"i": i, "note": note},
    }))
    .unwrap();
    prepare(req, "operator:ops", 1_700_000_000_000 + i as i64, None).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn open(ts: &TestStore, cfg: LedgerConfig) -> Arc<Ledger> {
    Ledger::open(ts.config.clone(), signer(), cfg).unwrap()
}

fn config(block_max_entries: u64) -> LedgerConfig {
    LedgerConfig {
        block_interval_ms: 3_600_000,
        block_max_entries,
        ..LedgerConfig::default()
    }
}

/// Appends in groups, seals by count and by request, and checks every block against an
/// independent recomputation: exact block boundaries, roots, hash chain and signatures.
fn blocks_and_roots(pg: bool) {
    let ts = store(pg);
    let ledger = open(&ts, config(7));
    let rt = rt();
    let mut leaves = Vec::new();
    rt.block_on(async {
        for round in 0..6 {
            let batch: Vec<_> = (0..(round * 5 + 3))
                .map(|i| entry(leaves.len() + i, None, "x"))
                .collect();
            let out = ledger.append(batch.clone()).await.unwrap();
            for (a, e) in out.iter().zip(&batch) {
                assert_eq!(
                    a.index as usize,
                    leaves.len(),
                    "indexes are dense and in request order"
                );
                assert_eq!(a.id, e.leaf_hash);
                leaves.push(e.leaf_hash);
            }
        }
        ledger.seal().await.unwrap().expect("a final partial block");
        assert!(ledger.seal().await.unwrap().is_none(), "no empty blocks");
    });
    let n = leaves.len() as u64;
    let mut c = ts.config.connect().unwrap();
    let blocks = db::blocks_from(&mut c, 0, 1000).unwrap();
    let verifier = signer().verifier();
    let mut prev: Option<db::Block> = None;
    for b in &blocks {
        if b.tree_size != n {
            assert_eq!(
                b.entry_count, 7,
                "count-sealed blocks hold exactly block_max_entries"
            );
        }
        let naive = leaves[..b.tree_size as usize].to_vec();
        assert_eq!(
            b.root_hash,
            merkle::tree_hash(b.tree_size, &mut rebuild(&naive)).unwrap()
        );
        let cp = verifier.verify_checkpoint(&b.checkpoint).unwrap();
        assert_eq!((cp.size, cp.root), (b.tree_size, b.root_hash));
        assert_eq!(b.block_hash, b.compute_hash());
        match &prev {
            Some(p) => {
                assert_eq!(b.prev_block_hash, p.block_hash);
                assert_eq!(b.first_index, p.tree_size);
            }
            None => assert_eq!((b.first_index, b.prev_block_hash), (0, [0; 32])),
        }
        prev = Some(b.clone());
    }
    assert_eq!(prev.unwrap().tree_size, n);
    // Every inclusion proof from the stored tree verifies against the recomputed root.
    let root = merkle::tree_hash(n, &mut rebuild(&leaves)).unwrap();
    for i in 0..n {
        let proof = merkle::inclusion_proof(i, n, &mut DbHashes(&mut c)).unwrap();
        merkle::verify_inclusion(i, n, &leaves[i as usize], &proof, &root).unwrap();
    }
    ledger.shutdown();
    let report = mobius_ledger::verify::verify_store(&mut c, &verifier, |_, _| {}).unwrap();
    assert_eq!((report.entries, report.blocks), (n, blocks.len() as u64));
}

/// An in-memory stored-hash array built the same way the writer builds it.
fn rebuild(leaves: &[merkle::Hash]) -> Vec<merkle::Hash> {
    let mut edge = merkle::RightEdge::new();
    let mut out = Vec::new();
    let mut all = Vec::new();
    for l in leaves {
        out.clear();
        edge.append(*l, &mut out);
        all.extend(out.iter().map(|(_, h)| *h));
    }
    all
}

/// Idempotent refs inside one request, across requests of one group, and across commits.
fn refs(pg: bool) {
    let ts = store(pg);
    let ledger = open(&ts, config(1000));
    let rt = rt();
    rt.block_on(async {
        let first = ledger
            .append(vec![
                entry(1, Some("a"), "x"),
                entry(2, Some("b"), "y"),
                entry(1, Some("a"), "x"),
            ])
            .await
            .unwrap();
        assert_eq!(
            first
                .iter()
                .map(|a| (a.index, a.duplicate))
                .collect::<Vec<_>>(),
            vec![(0, false), (1, false), (0, true)]
        );
        // Same ref, different body, in one request: the whole request is refused.
        let err = ledger
            .append(vec![
                entry(3, Some("c"), "x"),
                entry(3, Some("c"), "DIFFERENT"),
            ])
            .await
            .unwrap_err();
        assert_eq!(err.code, "conflict");
        // Concurrent requests: one duplicate, one conflict, one new — decided in one group.
        let (a, b, c) = tokio::join!(
            ledger.append(vec![entry(1, Some("a"), "x")]),
            ledger.append(vec![entry(2, Some("b"), "changed")]),
            ledger.append(vec![entry(4, Some("d"), "x")]),
        );
        let a = a.unwrap();
        assert!(a[0].duplicate && a[0].index == 0);
        assert_eq!(b.unwrap_err().code, "conflict");
        assert_eq!(
            c.unwrap()[0].index,
            2,
            "the refused requests consumed no index"
        );
    });
    let mut c = ts.config.connect().unwrap();
    assert_eq!(db::head(&mut c).unwrap().tree_size, 3);
    ledger.shutdown();
}

/// Restart: the right edge is reloaded from storage (O(log n) reads) and appends continue
/// densely; a second ledger with another key refuses the store.
fn restart(pg: bool) {
    let ts = store(pg);
    let rt = rt();
    let ledger = open(&ts, config(10));
    rt.block_on(async {
        ledger
            .append((0..25).map(|i| entry(i, None, "before")).collect())
            .await
            .unwrap();
    });
    ledger.shutdown();
    drop(ledger);
    let again = open(&ts, config(10));
    rt.block_on(async {
        let out = again.append(vec![entry(99, None, "after")]).await.unwrap();
        assert_eq!(out[0].index, 25);
    });
    again.shutdown();
    let other = NoteSigner::from_seed("test.example/log", &[8u8; 32]).unwrap();
    let refused = Ledger::open(ts.config.clone(), other, config(10));
    assert!(
        refused.is_err(),
        "a store signed by one key must not be opened with another"
    );
    let mut c = ts.config.connect().unwrap();
    let r = mobius_ledger::verify::verify_store(&mut c, &signer().verifier(), |_, _| {}).unwrap();
    assert_eq!(r.entries, 26);
    // The stored hashes serve proofs after restart, too.
    let leaf = DbHashes(&mut c)
        .read_hashes(&[merkle::stored_hash_index(0, 25)])
        .unwrap()[0];
    let proof = merkle::inclusion_proof(25, 26, &mut DbHashes(&mut c)).unwrap();
    merkle::verify_inclusion(25, 26, &leaf, &proof, &r.root).unwrap();
}

#[test]
fn blocks_and_roots_sqlite() {
    blocks_and_roots(false)
}
#[test]
fn blocks_and_roots_postgres() {
    blocks_and_roots(true)
}
#[test]
fn refs_sqlite() {
    refs(false)
}
#[test]
fn refs_postgres() {
    refs(true)
}
#[test]
fn restart_sqlite() {
    restart(false)
}
#[test]
fn restart_postgres() {
    restart(true)
}

/// Two sequencers over one store (two PostgreSQL replicas; on SQLite two ledgers in one
/// process): writes serialise on the store's lock and each writer re-reads the head, so
/// indexes stay dense, nothing is lost, and every checkpoint either writer signs is
/// consistent with every other.
fn two_writers(pg: bool) {
    let ts = store(pg);
    let a = open(&ts, config(13));
    let b = open(&ts, config(13));
    let rt = rt();
    let mut ids = std::collections::HashSet::new();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for round in 0..20 {
            for (w, ledger) in [(0, a.clone()), (1, b.clone())] {
                let batch: Vec<_> = (0..10)
                    .map(|i| entry(10_000 * w + 100 * round + i, None, "two writers"))
                    .collect();
                tasks.push(tokio::spawn(
                    async move { ledger.append(batch).await.unwrap() },
                ));
            }
        }
        for t in tasks {
            for appended in t.await.unwrap() {
                assert!(
                    ids.insert(appended.index),
                    "index {} handed out twice",
                    appended.index
                );
            }
        }
        a.seal().await.unwrap();
        b.seal().await.unwrap();
    });
    assert_eq!(ids.len(), 400);
    assert_eq!(*ids.iter().max().unwrap(), 399, "indexes are dense");
    a.shutdown();
    b.shutdown();
    let mut c = ts.config.connect().unwrap();
    let r = mobius_ledger::verify::verify_store(&mut c, &signer().verifier(), |_, _| {}).unwrap();
    assert_eq!(r.entries, 400);
    assert!(r.blocks >= 400 / 13);
}

#[test]
fn two_writers_sqlite() {
    two_writers(false)
}
#[test]
fn two_writers_postgres() {
    two_writers(true)
}

/// State changes commit in the same transaction as their entries (SPEC §1.1): a refused
/// change leaves neither its entries nor its rows, consumes no index, and does not disturb
/// the other requests of the same group commit.
fn state_changes(pg: bool) {
    let ts = store(pg);
    ts.config
        .connect()
        .unwrap()
        .batch("CREATE TABLE test_kv (k TEXT PRIMARY KEY, idx BIGINT NOT NULL)")
        .unwrap();
    let ledger = open(&ts, config(1000));
    let rt = rt();
    let change = |key: &'static str, refuse: bool| -> Option<mobius_ledger::writer::StateChange> {
        Some(Box::new(
            move |c: &mut mobius_store::Conn, out: &[mobius_ledger::writer::Appended]| {
                c.execute(
                    "INSERT INTO test_kv (k, idx) VALUES ($1, $2)",
                    &[
                        mobius_store::Param::Text(key),
                        mobius_store::Param::Int(out[0].index as i64),
                    ],
                )?;
                if refuse {
                    return Err(mobius_http::ApiError::conflict(
                        "refused by the domain rule",
                    ));
                }
                Ok(())
            },
        ))
    };
    rt.block_on(async {
        let (a, b, c, d) = tokio::join!(
            ledger.append_with(vec![entry(1, Some("a"), "x")], change("a", false)),
            ledger.append_with(
                vec![entry(2, Some("b"), "x"), entry(3, None, "x")],
                change("b", true)
            ),
            ledger.append(vec![entry(4, None, "plain")]),
            ledger.append_with(vec![entry(5, Some("c"), "x")], change("c", false)),
        );
        assert_eq!(a.unwrap()[0].index, 0);
        assert_eq!(b.unwrap_err().code, "conflict");
        assert_eq!(
            c.unwrap()[0].index,
            1,
            "the refused request consumed no index"
        );
        assert_eq!(d.unwrap()[0].index, 2);
        // The refused ref was never written, so it can be used now.
        let again = ledger
            .append_with(vec![entry(2, Some("b"), "x")], change("b", false))
            .await
            .unwrap();
        assert_eq!((again[0].index, again[0].duplicate), (3, false));
    });
    ledger.shutdown();
    let mut c = ts.config.connect().unwrap();
    let kv: Vec<(String, i64)> = c
        .query("SELECT k, idx FROM test_kv ORDER BY k", &[])
        .unwrap()
        .iter()
        .map(|r| (r.text(0).unwrap().to_string(), r.i64(1).unwrap()))
        .collect();
    assert_eq!(kv, vec![("a".into(), 0), ("b".into(), 3), ("c".into(), 2)]);
    let r = mobius_ledger::verify::verify_store(&mut c, &signer().verifier(), |_, _| {}).unwrap();
    assert_eq!(r.entries, 4);
}

#[test]
fn state_changes_sqlite() {
    state_changes(false)
}
#[test]
fn state_changes_postgres() {
    state_changes(true)
}

/// Identical entries without a ref (same body, same millisecond) share a leaf hash; both are
/// appended at their own index, and by-id lookup answers the first.
fn identical_entries(pg: bool) {
    let ts = store(pg);
    let ledger = open(&ts, config(1000));
    let rt = rt();
    let out = rt
        .block_on(ledger.append(vec![entry(7, None, "same"), entry(7, None, "same")]))
        .unwrap();
    assert_eq!((out[0].index, out[1].index), (0, 1));
    assert_eq!(out[0].id, out[1].id);
    ledger.shutdown();
    let mut c = ts.config.connect().unwrap();
    assert_eq!(
        db::entry_by_id(&mut c, &out[0].id).unwrap().unwrap().index,
        0
    );
    mobius_ledger::verify::verify_store(&mut c, &signer().verifier(), |_, _| {}).unwrap();
}

#[test]
fn identical_entries_sqlite() {
    identical_entries(false)
}
#[test]
fn identical_entries_postgres() {
    identical_entries(true)
}
