//! `mobius ledger verify --url` as a witness, end to end on both backends: it passes on a live
//! ledger, remembers the checkpoint, proves consistency from it after more appends, and
//! refuses a different log — one with another key, and (split view) one signed with the same
//! key whose history forks or rolls back.

mod common;

use common::{Backend, Stack, StackData, verify_remote};
use serde_json::{Value, json};
use std::path::Path;

both_backends!(witness_follows_and_refuses_other_logs);

fn append(s: &Stack, kind: &str, n: usize) {
    let entries: Vec<Value> = (0..n)
        .map(|i| json!({"type": "civic.witnessed", "payload": {"log": kind, "i": i}}))
        .collect();
    let r = s.post("/v1/attestations/batch", &json!({ "entries": entries }));
    assert_eq!(r.status, 201, "{}", r.body);
}

fn pass(url: &str, state: &Path, what: &str) -> Value {
    let (ok, v, out) = verify_remote(url, state);
    assert!(
        ok && v["ok"] == true,
        "{what}: the witness must pass: {v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

fn fail(url: &str, state: &Path, what: &str) -> Value {
    let before = std::fs::read_to_string(state).expect("state file");
    let (ok, v, out) = verify_remote(url, state);
    assert!(!ok, "{what}: the witness must fail (exit non-zero): {v}");
    assert_eq!(v["ok"], false, "{what}: {v}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FAILED"),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(state).expect("state file"),
        before,
        "{what}: a failed check must not move the remembered checkpoint"
    );
    v
}

/// A fresh stack that signs with a copy of `like`'s checkpoint key (same origin, same key):
/// what a log operator presenting a split view would run.
fn stack_with_same_key(b: Backend, like: &Stack) -> Stack {
    use std::os::unix::fs::DirBuilderExt;
    let data = StackData::new(b);
    let keys = data.dir().join("keys");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&keys)
        .unwrap();
    std::fs::copy(
        like.data_dir().join("keys").join("ledger-signing.key"),
        keys.join("ledger-signing.key"),
    )
    .expect("copy the signing key");
    let s = Stack::start_on(data);
    assert_eq!(s.verifier_key(), like.verifier_key());
    s
}

fn witness_follows_and_refuses_other_logs(b: Backend) {
    let a = Stack::start(b);
    let state = a.data.scratch("witness.json");
    append(&a, "a", 10);
    a.wait_sealed(10);

    // First contact: trust on first use, nothing to compare yet.
    let v = pass(&a.url, &state, "first check");
    assert_eq!(v["tree_size"], 10);
    assert_eq!(v["previous_size"], Value::Null);
    assert_eq!(v["key_pinned_now"], true);
    assert_eq!(v["verifier_key"], a.verifier_key());
    assert!(v["checked_indexes"].as_array().unwrap().len() >= 2);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["tree_size"], 10);
    assert_eq!(saved["checkpoint"], a.get("/v1/checkpoint").body);

    // More appends: consistent with the remembered checkpoint.
    append(&a, "a", 15);
    a.wait_sealed(25);
    let v = pass(&a.url, &state, "after more appends");
    assert_eq!(
        (v["previous_size"].as_u64(), v["tree_size"].as_u64()),
        (Some(10), Some(25))
    );
    assert_eq!(v["key_pinned_now"], false);
    // Nothing new: the same checkpoint is fine.
    let v = pass(&a.url, &state, "unchanged log");
    assert_eq!(
        (v["previous_size"].as_u64(), v["tree_size"].as_u64()),
        (Some(25), Some(25))
    );

    // Another log with another key: refused.
    let other = Stack::start(b);
    append(&other, "other", 30);
    other.wait_sealed(30);
    let v = fail(&other.url, &state, "a log with another key");
    assert!(v["error"].as_str().unwrap().contains("key"), "{v}");

    // Same key, forked history (bigger than what was seen): refused as inconsistent.
    let fork = stack_with_same_key(b, &a);
    append(&fork, "fork", 40);
    fork.wait_sealed(40);
    let v = fail(&fork.url, &state, "a forked log signed with the same key");
    assert!(v["error"].as_str().unwrap().contains("consistent"), "{v}");

    // Same key, rolled back (smaller than what was seen): refused.
    let rollback = stack_with_same_key(b, &a);
    append(&rollback, "a", 5);
    rollback.wait_sealed(5);
    let v = fail(
        &rollback.url,
        &state,
        "a rolled-back log signed with the same key",
    );
    assert!(v["error"].as_str().unwrap().contains("shrank"), "{v}");

    // The real log still passes with the same state, after all that.
    append(&a, "a", 1);
    a.wait_sealed(26);
    let v = pass(&a.url, &state, "the real log again");
    assert_eq!(
        (v["previous_size"].as_u64(), v["tree_size"].as_u64()),
        (Some(25), Some(26))
    );
}
