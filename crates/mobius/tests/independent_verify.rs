//! "Verify with an independent implementation": tools/independent-verify.py shares no code
//! with Mobius (Python standard library only: RFC 8032 Ed25519, RFC 9162 proofs, C2SP notes).
//! It must accept a live ledger's checkpoint, entries and proofs, follow it across appends
//! with a consistency proof, and reject a checkpoint checked against another key.

mod common;

use common::{Backend, Stack};
use serde_json::{Value, json};
use std::process::Command;

both_backends!(python_verifier_accepts_the_ledger);

fn run(args: &[&str]) -> (bool, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/independent-verify.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed to run the independent verifier");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn python_verifier_accepts_the_ledger(b: Backend) {
    let s = Stack::start(b);
    let entries: Vec<Value> = (0..37)
        .map(|i| json!({"type": "civic.vote", "subject": format!("citizen-{}", i % 4), "payload": {"i": i, "text": "ünïcødé ✓ 😀", "ok": true, "none": null, "list": [1, "two"]}}))
        .collect();
    assert_eq!(
        s.post("/v1/attestations/batch", &json!({ "entries": entries }))
            .status,
        201
    );
    let first = s.wait_sealed(37);
    let (ok, text) = run(&[&s.url, "--samples", "40"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("38 entries") || text.contains("37 entries"),
        "{text}"
    );

    for i in 0..11 {
        assert_eq!(
            s.post(
                "/v1/attestations",
                &json!({"type": "civic.more", "payload": {"i": i}})
            )
            .status,
            201
        );
    }
    s.wait_sealed(48);
    let since = format!(
        "{}:{}",
        first["tree_size"],
        first["root_hash"].as_str().unwrap()
    );
    let (ok, text) = run(&[&s.url, "--since", &since]);
    assert!(ok, "{text}");
    assert!(text.contains("consistency 37 -> 48: OK"), "{text}");

    // A key that is not the log's: same name, another public key.
    let other =
        mobius_core::note::NoteSigner::from_seed("mobius.local/civic-ledger", &[9u8; 32]).unwrap();
    let (ok, text) = run(&[&s.url, "--key", &other.verifier_key()]);
    assert!(
        !ok,
        "a checkpoint must not verify under another key: {text}"
    );
}
