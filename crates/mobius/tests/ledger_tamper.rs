//! Tamper evidence end to end, on both backends: edit a stored entry directly in the database
//! of a stopped stack and show that offline `mobius ledger verify --json` exits non-zero and
//! names exactly the edited index, both for a naive edit (leaf data only) and for a careful
//! one (leaf data and id rewritten together so the leaf hash checks out).

mod common;

use common::{Backend, Stack, StackData, verify_offline};
use mobius_core::merkle::leaf_hash;
use serde_json::{Value, json};

both_backends!(
    tamper_payload_is_detected,
    tamper_payload_and_id_is_detected,
    tamper_indexed_column_is_detected,
    deleted_entry_is_detected,
);

/// The edited index: inside the second block, not at a block boundary.
const K: u64 = 17;

/// A stopped stack with 30 sealed entries over three blocks, verified clean; its verifier key.
fn sealed_ledger(b: Backend) -> (StackData, String) {
    let s = Stack::start(b);
    let key = s.verifier_key();
    for chunk in 0..3 {
        let entries: Vec<Value> = (0..10)
            .map(|i| {
                let n = chunk * 10 + i;
                json!({"type": "civic.grant", "subject": format!("citizen{n:02}"), "ref": format!("g-{n}"), "payload": {"amount": 100 + n, "memo": format!("grant {n}")}})
            })
            .collect();
        assert_eq!(
            s.post("/v1/attestations/batch", &json!({"entries": entries}))
                .status,
            201
        );
        s.wait_sealed((chunk + 1) * 10);
    }
    assert!(s.all_blocks().len() >= 3);
    let data = s.into_data();
    let (ok, v, out) = verify(&data, &key);
    assert!(
        ok && v["ok"] == true,
        "the untouched ledger verifies: {v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["entries"], 30);
    (data, key)
}

fn verify(data: &StackData, key: &str) -> (bool, Value, std::process::Output) {
    verify_offline(data, (data.backend == Backend::Postgres).then_some(key))
}

/// Verification must fail, naming K.
fn assert_fails_at(data: &StackData, key: &str, what: &str) -> Value {
    let (ok, v, _) = verify(data, key);
    eprintln!("{what}: {v}");
    assert!(!ok, "{what}: verify must exit non-zero, got {v}");
    assert_eq!(v["ok"], false, "{what}: {v}");
    assert_eq!(
        v["first_bad_index"], K,
        "{what}: the first bad index is the edited one: {v}"
    );
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {v}"
    );
    // The human-readable form names the index too.
    let plain = data.cli(&{
        let mut a = vec!["ledger", "verify"];
        if data.backend == Backend::Postgres {
            a.extend(["--key", key]);
        }
        a
    });
    assert!(!plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains(&format!("index {K}")), "{what}: {stderr}");
    v
}

/// The entry's leaf data with its payload amount changed, still canonical JSON.
fn forged_leaf(original: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(original).expect("leaf data is JSON");
    assert_eq!(v["payload"]["amount"], 100 + K);
    v["payload"]["amount"] = json!(1_000_000);
    mobius_core::jcs::to_vec(&v).expect("canonical")
}

fn tamper_payload_is_detected(b: Backend) {
    let (data, key) = sealed_ledger(b);
    let mut sql = data.sql();
    let forged = forged_leaf(&sql.leaf_data(K));
    sql.rewrite_entry(K, &forged, None);
    drop(sql);
    let v = assert_fails_at(&data, &key, "payload edited");
    assert!(v["error"].as_str().unwrap().contains("hash"), "{v}");
}

fn tamper_payload_and_id_is_detected(b: Backend) {
    let (data, key) = sealed_ledger(b);
    let mut sql = data.sql();
    let forged = forged_leaf(&sql.leaf_data(K));
    let id = leaf_hash(&forged);
    sql.rewrite_entry(K, &forged, Some(&id));
    drop(sql);
    // The leaf hash now matches the id; the stored tree hashes (and the signed roots) do not.
    let v = assert_fails_at(&data, &key, "payload and id edited consistently");
    assert!(
        !v["error"].as_str().unwrap().contains("stored id"),
        "the leaf-hash check passes; the tree check must catch it: {v}"
    );
}

fn tamper_indexed_column_is_detected(b: Backend) {
    let (data, key) = sealed_ledger(b);
    let mut sql = data.sql();
    match &mut sql {
        common::Sql::Sqlite(c) => {
            c.execute(
                "UPDATE ledger_entries SET subject = 'mallory' WHERE idx = ?1",
                [K as i64],
            )
            .unwrap();
        }
        common::Sql::Postgres(c) => {
            c.execute(
                "UPDATE ledger_entries SET subject = 'mallory' WHERE idx = $1",
                &[&(K as i64)],
            )
            .unwrap();
        }
    }
    drop(sql);
    // Filters read the indexed columns, so a lie there must not verify either.
    assert_fails_at(&data, &key, "indexed subject column edited");
}

fn deleted_entry_is_detected(b: Backend) {
    let (data, key) = sealed_ledger(b);
    let mut sql = data.sql();
    match &mut sql {
        common::Sql::Sqlite(c) => {
            c.execute("DELETE FROM ledger_entries WHERE idx = ?1", [K as i64])
                .unwrap();
        }
        common::Sql::Postgres(c) => {
            c.execute("DELETE FROM ledger_entries WHERE idx = $1", &[&(K as i64)])
                .unwrap();
        }
    }
    drop(sql);
    assert_fails_at(&data, &key, "entry deleted");
}
