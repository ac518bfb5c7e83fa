//! The rolling scrub keeps cycling back to old records while the ledger takes appends, so a
//! tampered old entry is found within one cycle even on a busy ledger.

use mobius_core::note::NoteSigner;
use mobius_ledger::entry::{NewEntryRequest, prepare};
use mobius_ledger::{Ledger, LedgerConfig};
use mobius_ops::ledger_check::LedgerCheck;
use mobius_store::{Param, StoreConfig};
use serde_json::json;

fn entries(from: usize, n: usize) -> Vec<mobius_ledger::entry::PreparedEntry> {
    (from..from + n)
        .map(|i| {
            let req: NewEntryRequest =
                serde_json::from_value(json!({"type": "test.e", "payload": {"i": i}})).unwrap();
            prepare(req, "operator:ops", 1_700_000_000_000 + i as i64, None).unwrap()
        })
        .collect()
}

#[test]
fn scrub_wraps_while_the_ledger_grows_and_finds_old_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreConfig::sqlite(dir.path().join("m.db"));
    mobius_store::migrate(&mut store.connect().unwrap(), 0).unwrap();
    let signer = NoteSigner::from_seed("test.example/log", &[1u8; 32]).unwrap();
    let verifier = signer.verifier();
    let ledger = Ledger::open(
        store.clone(),
        signer,
        LedgerConfig {
            block_interval_ms: 3_600_000,
            ..LedgerConfig::default()
        },
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(ledger.append(entries(0, 50))).unwrap();
    rt.block_on(ledger.seal()).unwrap();

    let mut check = LedgerCheck::new(verifier, 1000, 10);
    let mut c = store.connect().unwrap();
    let mut next = 50;
    let first = check.sample(&mut c).unwrap();
    assert_eq!(first.score, 1.0);
    let mut tampered = false;
    let mut found_at = None;
    for round in 0..40 {
        // The ledger grows by 5 sealed entries between samples.
        rt.block_on(ledger.append(entries(next, 5))).unwrap();
        rt.block_on(ledger.seal()).unwrap();
        next += 5;
        if round == 3 {
            // Entry 3 was scrubbed in the first sample already.
            c.execute(
                "UPDATE ledger_entries SET leaf_data = $1 WHERE idx = 3",
                &[Param::Bytes(br#"{"payload":{"i":999},"source":"operator:ops","timestamp_ms":1700000000003,"type":"test.e"}"#)],
            )
            .unwrap();
            tampered = true;
        }
        let s = check.sample(&mut c).unwrap();
        if tampered && s.bad_index == Some(3) {
            found_at = Some(round);
            assert_eq!(s.score, 0.0);
            break;
        }
    }
    // One cycle is at most ceil(size / 10) samples; the tamper at round 3 must be found well
    // before 40 rounds even though new entries keep arriving.
    let found =
        found_at.expect("the rolling scrub never came back to entry 3 while the ledger grew");
    assert!(found <= 3 + 12, "found only at round {found}");
    ledger.shutdown();
}
