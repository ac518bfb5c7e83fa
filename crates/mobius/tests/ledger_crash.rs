//! Durability end to end, on the real binary, on both backends: a restart keeps everything
//! and continues at the next dense index; a SIGTERM shutdown exits cleanly and seals what is
//! waiting; a SIGKILL in the middle of a stream of concurrent appends loses no acknowledged
//! entry, leaves the indexes dense, stays consistent with what a witness saw before the
//! crash, and passes offline `mobius ledger verify`.

mod common;

use common::{
    Backend, Stack, StackData, hash_from_hex, id_of, proof_from_json, verify_offline, verify_remote,
};
use mobius_core::merkle;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both_backends!(
    restart_keeps_everything,
    sigterm_exits_cleanly,
    crash_kill9_loses_nothing,
    sigterm_mid_stream_loses_nothing,
);

/// Offline verification must pass; on PostgreSQL the key is passed explicitly (`--key`).
fn assert_verifies(data: &StackData, key: &str, entries: u64) -> Value {
    let k = (data.backend == Backend::Postgres).then_some(key);
    let (ok, v, out) = verify_offline(data, k);
    assert!(
        ok && v["ok"] == true,
        "mobius ledger verify failed: {v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["entries"], entries, "{v}");
    assert_eq!(v["tree_size"], entries, "{v}");
    v
}

fn restart_keeps_everything(b: Backend) {
    let mut s = Stack::start(b);
    let key = s.verifier_key();
    let batch: Vec<Value> = (0..12)
        .map(|i| json!({"type": "civic.vote", "subject": format!("voter{i:02}"), "ref": format!("v-{i}"), "payload": {"i": i}}))
        .collect();
    assert_eq!(
        s.post("/v1/attestations/batch", &json!({"entries": batch}))
            .status,
        201
    );
    s.wait_sealed(12);
    for i in 12..20 {
        let r = s.post(
            "/v1/attestations",
            &json!({"type": "civic.note", "payload": {"i": i}}),
        );
        assert_eq!(r.status, 201);
    }
    s.wait_sealed(20);
    let entries = s.list_all("", 1000);
    let blocks = s.all_blocks();
    let cp = s.get("/v1/checkpoint").body;
    let stats = s.stats();
    let token = s.token.clone();
    assert!(blocks.len() >= 2);

    s.restart();

    assert_eq!(s.token, token, "the operator token survives a restart");
    assert_eq!(s.verifier_key(), key, "the signing key survives a restart");
    assert_eq!(s.list_all("", 1000), entries, "entries after restart");
    assert_eq!(s.all_blocks(), blocks, "blocks after restart");
    assert_eq!(s.get("/v1/checkpoint").body, cp, "checkpoint after restart");
    let st = s.stats();
    for k in [
        "tree_size",
        "block_height",
        "entries_by_type",
        "subjects",
        "last_entry_at",
    ] {
        assert_eq!(st[k], stats[k], "stats.{k} after restart");
    }
    // Refs are remembered: a retry of an old request answers the original entry.
    let dup = s.post("/v1/attestations", &batch[5]);
    assert_eq!(dup.status, 200, "{}", dup.body);
    assert_eq!(dup.json()["index"], 5);
    assert_eq!(dup.json()["id"], entries[5]["id"]);
    // Appends continue at the next dense index; the chain and the tree continue too.
    let next = s.post(
        "/v1/attestations",
        &json!({"type": "civic.note", "payload": {"after": "restart"}}),
    );
    assert_eq!(next.status, 201);
    assert_eq!(next.json()["index"], 20);
    let blk = s.wait_sealed(21);
    let last = blocks.last().unwrap();
    assert_eq!(
        blk["height"].as_u64(),
        last["height"].as_u64().map(|h| h + 1)
    );
    assert_eq!(blk["prev_block_hash"], last["block_hash"]);
    assert_eq!(blk["first_index"], 20);
    let p = s.get_ok("/v1/proofs/consistency?first=20&second=21");
    merkle::verify_consistency(
        20,
        21,
        &hash_from_hex(last["root_hash"].as_str().unwrap()),
        &hash_from_hex(blk["root_hash"].as_str().unwrap()),
        &proof_from_json(&p),
    )
    .expect("the checkpoint after the restart is consistent with the one before");

    // A second restart with an unsealed entry waiting, then offline verification.
    assert_eq!(
        s.post(
            "/v1/attestations",
            &json!({"type": "civic.note", "payload": {}})
        )
        .status,
        201
    );
    s.restart();
    assert_eq!(s.tree_size(), 22);
    let data = s.into_data();
    let v = assert_verifies(&data, &key, 22);
    assert!(
        v["blocks"].as_u64().unwrap() >= blocks.len() as u64 + 2,
        "{v}"
    );
    // SQLite: the data directory's own key is the default; passing it explicitly also works.
    if b == Backend::Sqlite {
        let (ok, v, _) = verify_offline(&data, Some(&key));
        assert!(ok, "{v}");
    }
}

/// SPEC §12: `mobius up` shuts down cleanly on SIGTERM: in-flight requests finish, exit status
/// 0, endpoints.json removed, and a restart resumes where it stopped.
fn sigterm_exits_cleanly(b: Backend) {
    let mut s = Stack::start_with(b, &["--block-interval-ms", "3600000"]);
    for i in 0..5 {
        assert_eq!(
            s.post(
                "/v1/attestations",
                &json!({"type": "civic.note", "payload": {"i": i}})
            )
            .status,
            201
        );
    }
    let status = s.stop();
    let logs = s.stdout_logs();
    assert!(
        logs.lines().any(|l| l.contains("\"message\":\"stopped\"")),
        "the log says it stopped\n{}",
        s.log_tail()
    );
    assert!(
        !s.data_dir().join("endpoints.json").exists(),
        "endpoints.json is removed"
    );
    assert!(
        status.success(),
        "mobius must exit 0 after SIGTERM, got {status}\n{}",
        s.log_tail()
    );
    s.restart();
    let latest = s.get_ok("/v1/blocks/latest");
    assert_eq!(
        latest["tree_size"], 5,
        "the shutdown sealed the waiting entries"
    );
    let status = s.stop();
    assert!(
        status.success(),
        "second SIGTERM: {status}\n{}",
        s.log_tail()
    );
}

#[test]
fn second_process_on_same_sqlite_data_is_refused() {
    let s = Stack::start(Backend::Sqlite);
    let out = s
        .data
        .cli_bounded(&["up", "--ledger-port", "0"], Duration::from_secs(20));
    assert!(
        !out.status.success(),
        "a second mobius on the same data directory must refuse to start"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another mobius process"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first one is unaffected.
    assert_eq!(s.get_ok("/livez")["status"], "pass");
}

#[derive(Debug, Clone)]
struct Ack {
    thread: usize,
    k: usize,
    index: u64,
    id: String,
}

fn stream_body(t: usize, k: usize) -> Value {
    json!({"type": "crash.stream", "subject": format!("writer{t:02}"), "ref": format!("w{t}-{k}"), "payload": {"t": t, "k": k}})
}

fn crash_kill9_loses_nothing(b: Backend) {
    interrupted_stream(b, Interrupt::Kill9);
}

fn sigterm_mid_stream_loses_nothing(b: Backend) {
    interrupted_stream(b, Interrupt::Sigterm);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Kill9,
    Sigterm,
}

fn interrupted_stream(b: Backend, how: Interrupt) {
    const THREADS: usize = 16;
    let mut s = Stack::start(b);
    let key = s.verifier_key();
    let state = s.data.scratch("witness.json");

    // Some history, seen by a witness.
    let warm: Vec<Value> = (0..50)
        .map(|i| json!({"type": "crash.warm", "payload": {"i": i}}))
        .collect();
    assert_eq!(
        s.post("/v1/attestations/batch", &json!({"entries": warm}))
            .status,
        201
    );
    s.wait_sealed(50);
    let (ok, w0, out) = verify_remote(&s.url, &state);
    assert!(
        ok,
        "witness before the stream: {w0}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The stream: THREADS writers, each appending sequentially and recording every ack.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let http = common::Http::new(&s.url);
            let token = s.token.clone();
            let (stop, acked, acks, unexpected) = (
                stop.clone(),
                acked.clone(),
                acks.clone(),
                unexpected.clone(),
            );
            std::thread::spawn(move || {
                let mut k = 0;
                // Returns the first k that was never acknowledged.
                while !stop.load(Ordering::Acquire) {
                    match http.try_post_json(
                        "/v1/attestations",
                        &stream_body(t, k).to_string(),
                        &token,
                    ) {
                        Ok(r) if r.status == 201 => {
                            let v = r.json();
                            acks.lock().unwrap().push(Ack {
                                thread: t,
                                k,
                                index: v["index"].as_u64().unwrap(),
                                id: v["id"].as_str().unwrap().to_string(),
                            });
                            acked.fetch_add(1, Ordering::AcqRel);
                            k += 1;
                        }
                        Ok(r) => {
                            unexpected
                                .lock()
                                .unwrap()
                                .push(format!("writer {t} k {k}: {} {}", r.status, r.body));
                            break;
                        }
                        Err(_) => break, // the server died under us
                    }
                }
                k
            })
        })
        .collect();

    // Let it run, let a witness see a checkpoint in the middle, then pull the plug.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Acquire) < 300 {
        assert!(
            Instant::now() < deadline,
            "the stream made no progress\n{}",
            s.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (ok, w1, out) = verify_remote(&s.url, &state);
    assert!(
        ok,
        "witness during the stream: {w1}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let witnessed = w1["tree_size"].as_u64().unwrap();
    assert!(witnessed >= 50);
    let target = acked.load(Ordering::Acquire) + 700;
    while acked.load(Ordering::Acquire) < target {
        assert!(
            Instant::now() < deadline,
            "the stream stalled\n{}",
            s.log_tail()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    match how {
        Interrupt::Kill9 => s.kill9(),
        // (The exit status is sigterm_exits_cleanly's business.)
        Interrupt::Sigterm => drop(s.stop()),
    }
    stop.store(true, Ordering::Release);
    let first_unacked: Vec<usize> = handles
        .into_iter()
        .map(|h| h.join().expect("writer panicked"))
        .collect();
    let unexpected = unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "writers got unexpected answers before the crash: {unexpected:?}"
    );
    let acks = acks.lock().unwrap().clone();
    assert!(acks.len() >= 1000, "{} acks", acks.len());

    s.restart();

    // Every acknowledged entry is there, with the same id, at the same index.
    let tree_size = s.tree_size();
    if how == Interrupt::Sigterm {
        let latest = s.get_ok("/v1/blocks/latest");
        assert_eq!(
            latest["tree_size"], tree_size,
            "a SIGTERM shutdown seals everything it accepted"
        );
    }
    eprintln!(
        "{how:?}/{b:?}: {} acknowledged, tree_size {tree_size} after restart (max acknowledged index {})",
        acks.len(),
        acks.iter().map(|a| a.index).max().unwrap()
    );
    let max_acked = acks.iter().map(|a| a.index).max().unwrap();
    assert!(
        tree_size > max_acked,
        "tree_size {tree_size} lost acknowledged index {max_acked}"
    );
    let all = s.list_all("", 1000);
    assert_eq!(
        all.len() as u64,
        tree_size,
        "every index below tree_size is readable"
    );
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["index"], i, "indexes are dense");
        assert_eq!(
            e["id"].as_str().unwrap(),
            id_of(e),
            "entry {i}'s content hashes to its id"
        );
    }
    let indexes: BTreeSet<u64> = acks.iter().map(|a| a.index).collect();
    assert_eq!(indexes.len(), acks.len(), "no index was acknowledged twice");
    for a in &acks {
        let e = &all[a.index as usize];
        assert_eq!(
            e["id"], a.id,
            "acknowledged entry at index {} changed",
            a.index
        );
        let want = stream_body(a.thread, a.k);
        assert_eq!(
            (&e["ref"], &e["payload"]),
            (&want["ref"], &want["payload"]),
            "index {}",
            a.index
        );
    }
    // No ref appears twice; every stream entry was one of the attempted ones.
    let mut refs: BTreeMap<String, u64> = BTreeMap::new();
    for e in all.iter().filter(|e| e["type"] == "crash.stream") {
        let r = e["ref"].as_str().unwrap().to_string();
        assert!(
            refs.insert(r.clone(), e["index"].as_u64().unwrap())
                .is_none(),
            "ref {r} stored twice"
        );
        let (t, k) = (
            e["payload"]["t"].as_u64().unwrap() as usize,
            e["payload"]["k"].as_u64().unwrap() as usize,
        );
        assert!(k <= first_unacked[t], "entry {r} was never sent");
    }
    // Retrying the request that was in flight is safe: 200 if it was committed, else 201.
    let before_retry = s.tree_size();
    let mut created = 0;
    for (t, &k) in first_unacked.iter().enumerate() {
        let r = s.post("/v1/attestations", &stream_body(t, k));
        match r.status {
            200 => assert_eq!(
                Some(&r.json()["index"].as_u64().unwrap()),
                refs.get(&format!("w{t}-{k}"))
            ),
            201 => {
                assert!(!refs.contains_key(&format!("w{t}-{k}")));
                created += 1;
            }
            other => panic!("retry of w{t}-{k}: {other} {}", r.body),
        }
    }
    assert_eq!(s.tree_size(), before_retry + created);

    // The log after the crash is consistent with what the witness saw before it.
    let size = s.tree_size();
    s.wait_sealed(size);
    let (ok, w2, out) = verify_remote(&s.url, &state);
    assert!(
        ok,
        "witness after the crash: {w2}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(w2["previous_size"], witnessed);
    assert_eq!(w2["tree_size"], size);
    let blk = s.get_ok("/v1/blocks/latest");
    let root = hash_from_hex(blk["root_hash"].as_str().unwrap());
    for a in acks.iter().step_by(7) {
        let p = s.get_ok(&format!(
            "/v1/proofs/inclusion?index={}&tree_size={size}",
            a.index
        ));
        merkle::verify_inclusion(
            a.index,
            size,
            &hash_from_hex(&a.id),
            &proof_from_json(&p),
            &root,
        )
        .unwrap_or_else(|e| panic!("inclusion of acknowledged index {}: {e}", a.index));
    }

    // And the store verifies offline.
    let data = s.into_data();
    assert_verifies(&data, &key, size);
}
