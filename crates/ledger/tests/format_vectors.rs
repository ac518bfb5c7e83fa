//! The Mobius format vectors (shared/testdata/mobius-vectors/ledger-format.json) reproduced
//! byte for byte through the ledger's own code paths: request validation and canonical leaf
//! data (entry::prepare), the tree (RightEdge), the checkpoint signer, and the block hash.

use mobius_core::merkle::RightEdge;
use mobius_core::note::{NoteSigner, NoteVerifier};
use mobius_ledger::entry::{NewEntryRequest, prepare};
use serde_json::{Value, json};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/mobius-vectors/ledger-format.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("format vectors")).unwrap()
}

#[test]
fn entries_tree_and_checkpoint_match_the_vectors() {
    let v = vectors();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let mut edge = RightEdge::new();
    let mut stored = Vec::new();
    for case in entries {
        let e = &case["entry"];
        // What a client sends: everything but the server-set source and timestamp.
        let mut body = e.clone();
        let obj = body.as_object_mut().unwrap();
        let source = obj.remove("source").unwrap();
        let ts = obj.remove("timestamp_ms").unwrap();
        let req: NewEntryRequest = serde_json::from_value(body).unwrap();
        let p = prepare(req, source.as_str().unwrap(), ts.as_i64().unwrap(), None).unwrap();
        assert_eq!(
            String::from_utf8(p.leaf_data.clone()).unwrap(),
            case["leaf_data_utf8"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(p.leaf_hash),
            case["leaf_hash_hex"].as_str().unwrap()
        );
        edge.append(p.leaf_hash, &mut stored);
    }
    assert_eq!(edge.size(), v["tree_size"].as_u64().unwrap());
    assert_eq!(
        hex::encode(edge.root()),
        v["root_hash_hex"].as_str().unwrap()
    );

    let seed: [u8; 32] = hex::decode(v["ed25519_seed_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let signer = NoteSigner::from_seed(v["origin"].as_str().unwrap(), &seed).unwrap();
    assert_eq!(
        format!("{:08x}", signer.key_id()),
        v["key_id_hex"].as_str().unwrap()
    );
    assert_eq!(signer.verifier_key(), v["verifier_key"].as_str().unwrap());
    let note = signer.sign_checkpoint(edge.size(), &edge.root());
    assert_eq!(note, v["checkpoint_note"].as_str().unwrap());
    let cp = NoteVerifier::parse(v["verifier_key"].as_str().unwrap())
        .unwrap()
        .verify_checkpoint(&note)
        .unwrap();
    assert_eq!(cp.size, 3);
}

#[test]
fn block_hash_is_sha256_of_the_jcs_header() {
    let b = mobius_ledger::db::Block {
        height: 0,
        first_index: 0,
        entry_count: 3,
        tree_size: 3,
        root_hash: [0xdc; 32],
        prev_block_hash: [0; 32],
        block_hash: [0; 32],
        sealed_at_ms: 1_764_878_401_000,
        checkpoint: String::new(),
    };
    let header = json!({
        "entry_count": 3, "first_index": 0, "height": 0,
        "prev_block_hash": "0".repeat(64), "root_hash": "dc".repeat(32),
        "sealed_at": "2025-12-04T20:00:01.000Z", "tree_size": 3
    });
    let expected = mobius_core::merkle::sha256(&mobius_core::jcs::to_vec(&header).unwrap());
    assert_eq!(b.compute_hash(), expected);
    // The JCS text is exactly the sorted, whitespace-free header.
    assert_eq!(
        String::from_utf8(mobius_core::jcs::to_vec(&b.header_json()).unwrap()).unwrap(),
        format!(
            "{{\"entry_count\":3,\"first_index\":0,\"height\":0,\"prev_block_hash\":\"{}\",\"root_hash\":\"{}\",\"sealed_at\":\"2025-12-04T20:00:01.000Z\",\"tree_size\":3}}",
            "0".repeat(64),
            "dc".repeat(32)
        )
    );
}
