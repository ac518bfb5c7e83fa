//! The Civic Ledger's HTTP API end to end, on the real binary, on both backends:
//! the happy path (appends, reads, listing, blocks, checkpoints, proofs, stats, ops
//! endpoints), sealing rules, bad input (right error, nothing changes), and idempotency under
//! 10,000 concurrent duplicate submissions.

mod common;

use common::{Backend, Resp, Stack, hash_from_hex, id_of, proof_from_json};
use mobius_core::merkle::{self, RightEdge};
use mobius_core::note::NoteVerifier;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

both_backends!(
    happy_path,
    sealing_rules,
    bad_input_changes_nothing,
    concurrent_duplicate_refs,
    concurrent_conflicting_refs,
);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the test expects the ledger to hold: entry i is `entries[i]` (public §3.1 fields).
#[derive(Default)]
struct Model {
    entries: Vec<Value>,
}

impl Model {
    /// Checks a fresh (201) append answer for `req` and records the entry.
    fn record(&mut self, req: &Value, source: &str, a: &Value, before: i64, after: i64) {
        let keys: BTreeSet<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["id", "index", "timestamp_ms", "tree_size"]),
            "append answer fields: {a}"
        );
        let index = a["index"].as_u64().unwrap();
        assert_eq!(
            index,
            self.entries.len() as u64,
            "indexes are dense and in order: {a}"
        );
        let ts = a["timestamp_ms"].as_i64().unwrap();
        assert!(
            (before - 1000..=after + 1000).contains(&ts),
            "timestamp_ms {ts} is the server's acceptance time (request sent at {before}..{after})"
        );
        let mut e = req.clone();
        e["source"] = json!(source);
        e["timestamp_ms"] = json!(ts);
        assert_eq!(
            a["id"].as_str().unwrap(),
            id_of(&e),
            "id = hex SHA-256(0x00 || JCS(entry)) for {e}"
        );
        self.entries.push(e);
    }

    fn id(&self, i: usize) -> String {
        id_of(&self.entries[i])
    }

    fn leaf(&self, i: usize) -> [u8; 32] {
        hash_from_hex(&self.id(i))
    }

    /// Indexes of entries matching a filter.
    fn matching(&self, f: impl Fn(&Value) -> bool) -> Vec<u64> {
        (0..self.entries.len())
            .filter(|&i| f(&self.entries[i]))
            .map(|i| i as u64)
            .collect()
    }

    /// RFC 9162 root of the first `size` entries, computed locally.
    fn root(&self, size: u64) -> [u8; 32] {
        let mut edge = RightEdge::new();
        let mut scratch = Vec::new();
        for i in 0..size as usize {
            edge.append(self.leaf(i), &mut scratch);
        }
        edge.root()
    }
}

fn append_one(s: &Stack, token: &str, source: &str, req: Value, m: &mut Model) -> Value {
    let before = now_ms();
    let r = s
        .http
        .post_json("/v1/attestations", &req.to_string(), Some(token));
    let after = now_ms();
    assert_eq!(r.status, 201, "POST /v1/attestations {req}: {}", r.body);
    let a = r.json();
    m.record(&req, source, &a, before, after);
    assert_eq!(a["tree_size"].as_u64(), Some(m.entries.len() as u64));
    a
}

fn append_batch(
    s: &Stack,
    token: &str,
    source: &str,
    reqs: Vec<Value>,
    m: &mut Model,
) -> Vec<Value> {
    let before = now_ms();
    let r = s.http.post_json(
        "/v1/attestations/batch",
        &json!({ "entries": reqs }).to_string(),
        Some(token),
    );
    let after = now_ms();
    assert_eq!(r.status, 201, "POST /v1/attestations/batch: {}", r.body);
    let results = r.json()["results"].as_array().expect("results").clone();
    assert_eq!(
        results.len(),
        reqs.len(),
        "one result per entry, in request order"
    );
    for (req, a) in reqs.iter().zip(&results) {
        m.record(req, source, a, before, after);
    }
    for a in &results {
        assert_eq!(a["tree_size"].as_u64(), Some(m.entries.len() as u64));
    }
    results
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample of {name} in /metrics"))
}

fn verify_note(verifier: &NoteVerifier, note: &str) -> mobius_core::note::Checkpoint {
    verifier
        .verify_checkpoint(note)
        .unwrap_or_else(|e| panic!("checkpoint does not verify ({e}):\n{note}"))
}

fn happy_path(b: Backend) {
    let s = Stack::start(b);
    let op = s.token.clone();
    let svc = s.data.create_token("service", "indexer-api");
    let carol = s.data.create_token("citizen", "carol");
    let mut m = Model::default();

    // ---- ops endpoints --------------------------------------------------------------------
    let h = s.get_ok("/healthz");
    assert!(
        h["status"] == "pass" || h["status"] == "warn",
        "healthz: {h}"
    );
    assert_eq!(h["service"], "ledger-api");
    assert!(h["version"].is_string() && h["uptime_s"].is_u64() && h["checks"].is_object());
    assert_eq!(s.get_ok("/livez")["status"], "pass");
    assert_eq!(s.get_ok("/readyz")["status"], "pass");
    let echoed = s
        .http
        .get_with("/livez", &[("x-request-id", "e2e-trace-42")]);
    assert_eq!(
        echoed.header("x-request-id"),
        Some("e2e-trace-42"),
        "a sane client request id is echoed"
    );

    // ---- empty ledger -----------------------------------------------------------------------
    let key = s.get_ok("/v1/ledger/key");
    let origin = key["origin"].as_str().unwrap().to_string();
    assert_eq!(origin, "mobius.local/civic-ledger");
    let vkey = key["verifier_key"].as_str().unwrap();
    assert!(
        vkey.starts_with(&format!("{origin}+")),
        "verifier key is <origin>+<id>+<key>: {vkey}"
    );
    let verifier = NoteVerifier::parse(vkey).expect("verifier key parses (and its key id checks)");
    assert_eq!(verifier.name(), origin);
    let st = s.stats();
    assert_eq!(st["tree_size"], 0);
    assert_eq!(st["block_height"], Value::Null);
    assert_eq!(st["last_entry_at"], Value::Null);
    s.get("/v1/checkpoint").assert_error(404, "not_found");
    s.get("/v1/blocks/latest").assert_error(404, "not_found");
    assert_eq!(
        s.get_ok("/v1/attestations"),
        json!({"items": [], "next_cursor": null})
    );

    // ---- phase 1: single appends ------------------------------------------------------------
    let first = append_one(
        &s,
        &op,
        "operator:ops",
        json!({"type": "civic.vote", "subject": "alice", "ref": "vote-1", "payload": {"choice": "yes", "weight": 1}}),
        &mut m,
    );
    append_one(
        &s,
        &op,
        "operator:ops",
        json!({"type": "civic.proposal", "subject": "bob", "payload": {
            "title": "Parks für alle € 😀 \"quoted\" \\ \n\t\u{1}",
            "n": 1.5, "big": 1e21, "small": 1e-7, "neg": -12, "zero": 0,
            "nested": {"b": [1, 2, {"z": null, "a": true}], "a": "x", "": "empty key"}
        }}),
        &mut m,
    );
    append_one(
        &s,
        &op,
        "operator:ops",
        json!({"type": "civic.note", "payload": {}}),
        &mut m,
    );
    append_one(
        &s,
        &op,
        "operator:ops",
        json!({"type": "civic.vote", "subject": "alice", "ref": "vote-2", "payload": {"choice": "no"}}),
        &mut m,
    );
    // A GET right after the append: the entry is there; block_height is null or its block.
    let e0 = s.get_ok("/v1/attestations/0");
    assert!(
        e0["block_height"].is_null() || e0["block_height"] == 0,
        "{e0}"
    );
    let b1 = s.wait_sealed(m.entries.len() as u64);
    let cp1 = s.get("/v1/checkpoint");

    // ---- phase 2: batches -------------------------------------------------------------------
    let subjects = [Some("alice"), Some("bob"), Some("dave"), None];
    let batch: Vec<Value> = (0..10)
        .map(|i| {
            let mut e = json!({
                "type": if i % 3 == 0 { "civic.vote" } else { "civic.comment" },
                "payload": {"i": i, "text": format!("comment {i}")},
            });
            if let Some(sub) = subjects[i % 4] {
                e["subject"] = json!(sub);
            }
            if i % 2 == 0 {
                e["ref"] = json!(format!("batch-{i}"));
            }
            e
        })
        .collect();
    let results = append_batch(&s, &op, "operator:ops", batch.clone(), &mut m);
    let svc_batch: Vec<Value> = (0..5)
        .map(|i| json!({"type": "civic.sync", "subject": if i < 3 { "alice" } else { "erin" }, "ref": format!("sync-{i}"), "payload": {"seq": i}}))
        .collect();
    append_batch(&s, &svc, "service:indexer-api", svc_batch, &mut m);
    let b2 = s.wait_sealed(m.entries.len() as u64);
    let cp2 = s.get("/v1/checkpoint");

    // ---- phase 3: idempotency, other sources -------------------------------------------------
    // Same (source, ref), same body: the original entry, 200.
    let dup = s.post(
        "/v1/attestations",
        &json!({"type": "civic.vote", "subject": "alice", "ref": "vote-1", "payload": {"weight": 1, "choice": "yes"}}),
    );
    assert_eq!(dup.status, 200, "idempotent re-submission: {}", dup.body);
    let dup = dup.json();
    assert_eq!(dup["id"], first["id"]);
    assert_eq!(dup["index"], first["index"]);
    assert_eq!(dup["timestamp_ms"], first["timestamp_ms"]);
    assert_eq!(dup["duplicate"], true);
    // The batch's entries with a ref, again: all duplicates → 200, same ids and indexes.
    let with_ref: Vec<(Value, Value)> = batch
        .iter()
        .zip(&results)
        .filter(|(e, _)| e.get("ref").is_some())
        .map(|(e, r)| (e.clone(), r.clone()))
        .collect();
    let again = s.post(
        "/v1/attestations/batch",
        &json!({"entries": with_ref.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>()}),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let again = again.json()["results"].as_array().unwrap().clone();
    assert_eq!(again.len(), with_ref.len());
    for (a, (_, r)) in again.iter().zip(&with_ref) {
        assert_eq!(
            (&a["id"], &a["index"], &a["timestamp_ms"]),
            (&r["id"], &r["index"], &r["timestamp_ms"])
        );
        assert_eq!(a["duplicate"], true);
    }
    // The same ref from another source is another key: a new entry.
    append_one(
        &s,
        &svc,
        "service:indexer-api",
        json!({"type": "civic.vote", "subject": "alice", "ref": "vote-1", "payload": {"choice": "abstain"}}),
        &mut m,
    );
    // A batch mixing a duplicate, a new entry, and the same new ref twice.
    let mixed = s.post(
        "/v1/attestations/batch",
        &json!({"entries": [
            {"type": "civic.vote", "subject": "alice", "ref": "vote-2", "payload": {"choice": "no"}},
            {"type": "civic.vote", "subject": "frank", "ref": "vote-3", "payload": {"choice": "yes"}},
            {"type": "civic.vote", "subject": "frank", "ref": "vote-3", "payload": {"choice": "yes"}},
        ]}),
    );
    assert_eq!(mixed.status, 201, "{}", mixed.body);
    let mixed = mixed.json()["results"].as_array().unwrap().clone();
    assert_eq!(mixed[0]["index"], 3);
    assert_eq!(mixed[0]["duplicate"], true);
    assert_eq!(mixed[1]["index"].as_u64(), Some(m.entries.len() as u64));
    assert_eq!(mixed[1].get("duplicate"), None);
    assert_eq!(
        mixed[2]["index"], mixed[1]["index"],
        "same ref twice in one batch → one entry"
    );
    assert_eq!(mixed[2]["id"], mixed[1]["id"]);
    assert_eq!(mixed[2]["duplicate"], true);
    m.record(
        &json!({"type": "civic.vote", "subject": "frank", "ref": "vote-3", "payload": {"choice": "yes"}}),
        "operator:ops",
        &json!({"id": mixed[1]["id"], "index": mixed[1]["index"], "timestamp_ms": mixed[1]["timestamp_ms"], "tree_size": mixed[1]["tree_size"]}),
        0,
        i64::MAX / 2,
    );
    // A citizen writes about itself.
    append_one(
        &s,
        &carol,
        "citizen:carol",
        json!({"type": "civic.pledge", "subject": "carol", "payload": {"hours": 3}}),
        &mut m,
    );
    let n = m.entries.len() as u64;
    let b3 = s.wait_sealed(n);
    let cp3 = s.get("/v1/checkpoint");

    // ---- reads ----------------------------------------------------------------------------
    let blocks = s.all_blocks();
    assert_eq!(blocks.last().unwrap()["tree_size"].as_u64(), Some(n));
    for i in 0..n as usize {
        let e = s.get_ok(&format!("/v1/attestations/{i}"));
        let h = e["block_height"]
            .as_u64()
            .expect("sealed entries have a block_height");
        let blk = &blocks[h as usize];
        let first = blk["first_index"].as_u64().unwrap();
        assert!(
            (first..first + blk["entry_count"].as_u64().unwrap()).contains(&(i as u64)),
            "entry {i} is not in its block {blk}"
        );
        let mut want = m.entries[i].clone();
        want["id"] = json!(m.id(i));
        want["index"] = json!(i);
        want["block_height"] = json!(h);
        assert_eq!(e, want, "GET /v1/attestations/{i}");
        // No nulls for absent optional fields.
        assert!(e.get("subject").is_none_or(Value::is_string), "{e}");
        assert!(e.get("ref").is_none_or(Value::is_string), "{e}");
        let by_id = s.get_ok(&format!("/v1/attestations/by-id/{}", m.id(i)));
        assert_eq!(by_id, want, "GET /v1/attestations/by-id/{}", m.id(i));
    }
    assert!(s.get_ok("/v1/attestations/2").get("subject").is_none());
    s.get(&format!("/v1/attestations/{n}"))
        .assert_error(404, "not_found");
    s.get(&format!("/v1/attestations/by-id/{}", "ab".repeat(32)))
        .assert_error(404, "not_found");

    // ---- listing: filters and cursors --------------------------------------------------------
    let listed_indexes = |items: &[Value]| -> Vec<u64> {
        items.iter().map(|e| e["index"].as_u64().unwrap()).collect()
    };
    let all = s.list_all("", 7);
    assert_eq!(listed_indexes(&all), (0..n).collect::<Vec<_>>());
    for e in &all {
        let i = e["index"].as_u64().unwrap() as usize;
        assert_eq!(e["id"].as_str().unwrap(), m.id(i));
        assert!(
            e["block_height"].is_u64(),
            "sealed entries list a block height: {e}"
        );
    }
    let field_is = |k: &'static str, v: &'static str| move |e: &Value| e.get(k) == Some(&json!(v));
    let cases: Vec<(&str, Vec<u64>)> = vec![
        ("subject=alice", m.matching(field_is("subject", "alice"))),
        (
            "type=civic.vote",
            m.matching(field_is("type", "civic.vote")),
        ),
        (
            "source=service:indexer-api",
            m.matching(field_is("source", "service:indexer-api")),
        ),
        (
            "source=citizen:carol",
            m.matching(field_is("source", "citizen:carol")),
        ),
        (
            "subject=alice&type=civic.vote",
            m.matching(|e| field_is("subject", "alice")(e) && field_is("type", "civic.vote")(e)),
        ),
        (
            "subject=alice&source=operator:ops&from_index=4",
            m.matching(|e| {
                field_is("subject", "alice")(e) && field_is("source", "operator:ops")(e)
            })
            .into_iter()
            .filter(|i| *i >= 4)
            .collect(),
        ),
        ("subject=nobody", vec![]),
        ("type=civic.none", vec![]),
    ];
    for (q, want) in &cases {
        assert!(
            !want.is_empty() || q.contains("no"),
            "filter {q} should select something"
        );
        for limit in [1, 3, 1000] {
            let got = s.list_all(q, limit);
            assert_eq!(
                &listed_indexes(&got),
                want,
                "GET /v1/attestations?{q}&limit={limit}"
            );
        }
    }
    let page = s.get_ok("/v1/attestations?limit=5&from_index=3");
    assert_eq!(
        listed_indexes(page["items"].as_array().unwrap()),
        vec![3, 4, 5, 6, 7]
    );
    let page = s.get_ok(&format!("/v1/attestations?from_index={}", n - 2));
    assert_eq!(
        listed_indexes(page["items"].as_array().unwrap()),
        vec![n - 2, n - 1]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    let default_page = s.get_ok("/v1/attestations");
    assert_eq!(
        default_page["items"].as_array().unwrap().len() as u64,
        n.min(50)
    );

    // ---- blocks and checkpoints -------------------------------------------------------------
    let mut prev: Option<&Value> = None;
    for (h, blk) in blocks.iter().enumerate() {
        assert_eq!(blk["height"], h);
        let (first, count, size) = (
            blk["first_index"].as_u64().unwrap(),
            blk["entry_count"].as_u64().unwrap(),
            blk["tree_size"].as_u64().unwrap(),
        );
        assert!(count > 0, "no empty blocks: {blk}");
        assert_eq!(first + count, size);
        match prev {
            None => {
                assert_eq!(first, 0);
                assert_eq!(blk["prev_block_hash"], "0".repeat(64));
            }
            Some(p) => {
                assert_eq!(first, p["tree_size"].as_u64().unwrap());
                assert_eq!(blk["prev_block_hash"], p["block_hash"]);
            }
        }
        let mut header = blk.clone();
        let o = header.as_object_mut().unwrap();
        o.remove("block_hash");
        o.remove("checkpoint");
        assert_eq!(
            o.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            BTreeSet::from([
                "height",
                "first_index",
                "entry_count",
                "tree_size",
                "root_hash",
                "prev_block_hash",
                "sealed_at"
            ])
        );
        let hash = merkle::sha256(&mobius_core::jcs::to_vec(&header).unwrap());
        assert_eq!(
            blk["block_hash"],
            hex::encode(hash),
            "block_hash = SHA-256(JCS(header))"
        );
        assert_eq!(
            blk["root_hash"],
            hex::encode(m.root(size)),
            "block {h} root vs locally computed root"
        );
        let cp = verify_note(&verifier, blk["checkpoint"].as_str().unwrap());
        assert_eq!(cp.origin, origin);
        assert_eq!(cp.size, size);
        assert_eq!(hex::encode(cp.root), blk["root_hash"].as_str().unwrap());
        assert_eq!(s.get_ok(&format!("/v1/blocks/{h}")), *blk);
        prev = Some(blk);
    }
    assert_eq!(s.get_ok("/v1/blocks/latest"), *blocks.last().unwrap());
    s.get(&format!("/v1/blocks/{}", blocks.len()))
        .assert_error(404, "not_found");
    let paged: Vec<Value> = {
        let mut out = Vec::new();
        let mut path = "/v1/blocks?limit=1".to_string();
        loop {
            let v = s.get_ok(&path);
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/blocks?limit=1&cursor={c}"),
                None => break out,
            }
        }
    };
    assert_eq!(paged, blocks, "block pagination");

    let block_notes: Vec<&str> = blocks
        .iter()
        .map(|b| b["checkpoint"].as_str().unwrap())
        .collect();
    for (cp, blk) in [(&cp1, &b1), (&cp2, &b2), (&cp3, &b3)] {
        assert_eq!(cp.status, 200);
        assert_eq!(cp.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(
            block_notes.contains(&cp.body.as_str()),
            "checkpoint is a block's checkpoint"
        );
        let c = verify_note(&verifier, &cp.body);
        assert!(c.size >= blk["tree_size"].as_u64().unwrap());
        let lines: Vec<&str> = cp.body.split('\n').collect();
        assert_eq!(lines[0], origin);
        assert_eq!(lines[1], c.size.to_string());
        assert_eq!(lines[3], "", "blank line before the signatures");
        assert!(
            lines[4].starts_with(&format!("\u{2014} {origin} ")),
            "signature line: {}",
            lines[4]
        );
    }
    // A note signed by another key, or altered, does not verify.
    let other = mobius_core::note::NoteSigner::from_seed(&origin, &[7u8; 32]).unwrap();
    assert!(other.verifier().verify_checkpoint(&cp3.body).is_err());
    assert!(
        verifier
            .verify_checkpoint(&cp3.body.replacen(
                &format!("\n{n}\n"),
                &format!("\n{}\n", n + 1),
                1
            ))
            .is_err()
    );

    // ---- proofs ---------------------------------------------------------------------------
    let latest = verify_note(&verifier, &cp3.body);
    for i in 0..n {
        let p = s.get_ok(&format!("/v1/proofs/inclusion?index={i}"));
        assert_eq!(p["index"], i);
        assert_eq!(
            p["tree_size"], latest.size,
            "tree_size defaults to the latest checkpoint"
        );
        assert_eq!(p["leaf_hash"].as_str().unwrap(), m.id(i as usize));
        assert_eq!(hash_from_hex(p["root_hash"].as_str().unwrap()), latest.root);
        merkle::verify_inclusion(
            i,
            latest.size,
            &m.leaf(i as usize),
            &proof_from_json(&p),
            &latest.root,
        )
        .unwrap_or_else(|e| panic!("inclusion proof of {i} in {}: {e}", latest.size));
        // Against every earlier checkpoint that contains it, too.
        for blk in &blocks {
            let size = blk["tree_size"].as_u64().unwrap();
            if i >= size || size == latest.size {
                continue;
            }
            let root = hash_from_hex(blk["root_hash"].as_str().unwrap());
            let p = s.get_ok(&format!("/v1/proofs/inclusion?index={i}&tree_size={size}"));
            assert_eq!(hash_from_hex(p["root_hash"].as_str().unwrap()), root);
            merkle::verify_inclusion(i, size, &m.leaf(i as usize), &proof_from_json(&p), &root)
                .unwrap_or_else(|e| panic!("inclusion proof of {i} in {size}: {e}"));
        }
    }
    let sizes: Vec<(u64, [u8; 32])> = blocks
        .iter()
        .map(|b| {
            (
                b["tree_size"].as_u64().unwrap(),
                hash_from_hex(b["root_hash"].as_str().unwrap()),
            )
        })
        .collect();
    assert!(sizes.len() >= 3, "at least three checkpoints were seen");
    for (a, (s1, r1)) in sizes.iter().enumerate() {
        for (s2, r2) in &sizes[a..] {
            let p = s.get_ok(&format!("/v1/proofs/consistency?first={s1}&second={s2}"));
            assert_eq!(
                (p["first"].as_u64(), p["second"].as_u64()),
                (Some(*s1), Some(*s2))
            );
            assert_eq!(hash_from_hex(p["first_root"].as_str().unwrap()), *r1);
            assert_eq!(hash_from_hex(p["second_root"].as_str().unwrap()), *r2);
            merkle::verify_consistency(*s1, *s2, r1, r2, &proof_from_json(&p))
                .unwrap_or_else(|e| panic!("consistency {s1} → {s2}: {e}"));
            // A proof must not verify against a wrong old root.
            if s1 != s2 {
                let wrong = m.root(s1 - 1);
                assert!(
                    merkle::verify_consistency(*s1, *s2, &wrong, r2, &proof_from_json(&p)).is_err()
                );
            }
        }
    }
    let p = s.get_ok(&format!("/v1/proofs/consistency?first={}", sizes[0].0));
    assert_eq!(
        p["second"], latest.size,
        "second defaults to the latest checkpoint"
    );

    // ---- stats and metrics ------------------------------------------------------------------
    let st = s.stats();
    assert_eq!(st["tree_size"], n);
    assert_eq!(st["block_height"], blocks.len() as u64 - 1);
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for e in &m.entries {
        *by_type
            .entry(e["type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(st["entries_by_type"], json!(by_type));
    let distinct: BTreeSet<&str> = m
        .entries
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    assert_eq!(st["subjects"], distinct.len());
    let last_ts = m.entries.last().unwrap()["timestamp_ms"].as_i64().unwrap();
    let last_at = st["last_entry_at"].as_str().expect("last_entry_at");
    assert!(
        last_at.ends_with('Z') && last_at.len() == "2026-12-04T19:00:00.123Z".len(),
        "RFC 3339 UTC with milliseconds: {last_at}"
    );
    assert_eq!(
        &last_at[20..23],
        format!("{:03}", last_ts.rem_euclid(1000)),
        "last_entry_at is the last entry's timestamp"
    );
    assert_eq!(st["sequencer_lag_ms"], 0, "everything is sealed");

    let metrics = s.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for name in [
        "mobius_http_requests_total",
        "mobius_ledger_tree_size",
        "mobius_ledger_sequencer_lag_seconds",
    ] {
        assert!(
            metrics.body.contains(&format!("# TYPE {name} ")),
            "{name} in /metrics"
        );
    }
    assert_eq!(
        metric_value(&metrics.body, "mobius_ledger_tree_size"),
        n as f64
    );
    assert_eq!(
        metric_value(&metrics.body, "mobius_ledger_sequencer_lag_seconds"),
        0.0
    );
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.starts_with("mobius_http_requests_total{")
                && l.contains("route=\"/v1/attestations\"")
                && l.contains("method=\"POST\"")
                && l.contains("status=\"201\"")),
        "per-route request counter for POST /v1/attestations"
    );
    assert!(
        !metrics
            .body
            .lines()
            .any(|l| l.starts_with("mobius_http_requests_total{")
                && (l.contains("route=\"/healthz\"") || l.contains("route=\"/metrics\""))),
        "health and metrics routes are excluded from request metrics"
    );

    // The log lines are JSON objects with the SPEC §9 fields.
    let logs = s.stdout_logs();
    let listening: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "listening" && v["service"] == "ledger-api")
        .collect();
    assert_eq!(listening.len(), 1);
    assert_eq!(listening[0]["url"], s.url);
    assert!(
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["route"] == "/v1/attestations"
                && v["status"] == 201
                && v["request_id"].is_string()),
        "request log lines carry route, status and request_id"
    );
}

/// Blocks seal by time and by count, never empty; block_height is null until sealed; a clean
/// shutdown seals what is left.
fn sealing_rules(b: Backend) {
    // A one-hour timer: only counts, the seal endpoint and shutdown seal here.
    let mut s = Stack::start_with(
        b,
        &["--block-interval-ms", "3600000", "--block-max-entries", "5"],
    );
    let body = |i: u64| json!({"type": "test.seal", "payload": {"i": i}});
    for i in 0..3 {
        assert_eq!(s.post("/v1/attestations", &body(i)).status, 201);
    }
    for i in 0..3 {
        assert_eq!(
            s.get_ok(&format!("/v1/attestations/{i}"))["block_height"],
            Value::Null
        );
    }
    let listed = s.get_ok("/v1/attestations");
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["block_height"].is_null())
    );
    s.get("/v1/checkpoint").assert_error(404, "not_found");
    s.get("/v1/proofs/inclusion?index=0")
        .assert_error(404, "not_found");
    let st = s.stats();
    assert_eq!(
        (st["tree_size"].as_u64(), st["block_height"].clone()),
        (Some(3), Value::Null)
    );
    assert!(st["sequencer_lag_ms"].as_i64().is_some_and(|l| l >= 0));

    // Only an operator may seal by hand.
    s.http
        .post_json("/v1/ledger/seal", "{}", None)
        .assert_error(401, "unauthenticated");
    let svc = s.data.create_token("service", "indexer-api");
    s.http
        .post_json("/v1/ledger/seal", "{}", Some(&svc))
        .assert_error(403, "forbidden");
    let sealed = s.post("/v1/ledger/seal", &json!({}));
    assert_eq!(sealed.status, 200, "{}", sealed.body);
    let blk = sealed.json()["sealed"].clone();
    assert_eq!(
        (
            blk["height"].as_u64(),
            blk["first_index"].as_u64(),
            blk["entry_count"].as_u64(),
            blk["tree_size"].as_u64()
        ),
        (Some(0), Some(0), Some(3), Some(3))
    );
    assert_eq!(s.get_ok("/v1/attestations/2")["block_height"], 0);
    // Nothing unsealed: no empty block.
    let again = s.post("/v1/ledger/seal", &json!({}));
    assert_eq!(again.json(), json!({"sealed": null}));

    // Count-based sealing: 12 more entries with at most 5 per block → blocks [3,8), [8,13).
    let batch: Vec<Value> = (3..15).map(body).collect();
    assert_eq!(
        s.post("/v1/attestations/batch", &json!({"entries": batch}))
            .status,
        201
    );
    let blocks = s.all_blocks();
    let shape: Vec<(u64, u64, u64)> = blocks
        .iter()
        .map(|b| {
            (
                b["first_index"].as_u64().unwrap(),
                b["entry_count"].as_u64().unwrap(),
                b["tree_size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shape, vec![(0, 3, 3), (3, 5, 8), (8, 5, 13)]);
    for (i, h) in [
        (3, json!(1)),
        (7, json!(1)),
        (8, json!(2)),
        (12, json!(2)),
        (13, Value::Null),
        (14, Value::Null),
    ] {
        assert_eq!(
            s.get_ok(&format!("/v1/attestations/{i}"))["block_height"],
            h,
            "entry {i}"
        );
    }
    let st = s.stats();
    assert_eq!(
        (st["tree_size"].as_u64(), st["block_height"].as_u64()),
        (Some(15), Some(2))
    );
    let cp = s.get("/v1/checkpoint");
    assert!(
        cp.body.starts_with("mobius.local/civic-ledger\n13\n"),
        "{}",
        cp.body
    );

    // A shutdown on SIGTERM seals the two waiting entries; the restart resumes there.
    // (Exit status and endpoints.json clean-up are sigterm_exits_cleanly's business.)
    s.stop();
    s.restart();
    let latest = s.get_ok("/v1/blocks/latest");
    assert_eq!(
        (latest["height"].as_u64(), latest["tree_size"].as_u64()),
        (Some(3), Some(15))
    );
    assert_eq!(s.get_ok("/v1/attestations/14")["block_height"], 3);
}

fn err(r: &Resp, status: u16, code: &str) -> Value {
    r.assert_error(status, code)
}

fn bad_input_changes_nothing(b: Backend) {
    let s = Stack::start(b);
    let op = s.token.clone();
    let post = |body: &str| s.http.post_json("/v1/attestations", body, Some(&op));
    let batch = |body: &str| s.http.post_json("/v1/attestations/batch", body, Some(&op));
    let field = |r: Resp, status: u16, code: &str, f: &str| {
        let e = err(&r, status, code);
        assert_eq!(e["details"]["field"], f, "details.field in {}", r.body);
    };

    // Some state to protect.
    let seed = s.post(
        "/v1/attestations",
        &json!({"type": "civic.vote", "ref": "r-1", "payload": {"a": 1}}),
    );
    assert_eq!(seed.status, 201);
    s.wait_sealed(1);
    let stats_before = s.stats();
    let blocks_before = s.all_blocks();

    // Malformed and mistyped JSON.
    err(&post("{\"type\": \"civic.vote\", "), 400, "invalid_request");
    err(&post("not json"), 400, "invalid_request");
    err(&post(""), 400, "invalid_request");
    err(&post("[]"), 400, "invalid_request");
    err(
        &post("{\"type\": \"civic.vote\", \"payload\": {}} trailing"),
        400,
        "invalid_request",
    );
    err(
        &post("{\"type\": 5, \"payload\": {}}"),
        400,
        "invalid_request",
    );
    field(
        post("{\"type\": \"civic.vote\", \"payload\": \"x\"}"),
        400,
        "invalid_request",
        "payload",
    );
    // Integers the canonical form could not carry exactly (≥ 2^53) must be strings.
    for n in [
        "9007199254740993",
        "-9007199254740992",
        "12345678901234567890",
    ] {
        field(
            post(&format!(
                "{{\"type\": \"civic.vote\", \"payload\": {{\"n\": {n}}}}}"
            )),
            400,
            "invalid_request",
            "payload",
        );
    }
    field(
        post("{\"type\": \"civic.vote\", \"payload\": [1]}"),
        400,
        "invalid_request",
        "payload",
    );
    field(
        post("{\"type\": \"civic.vote\", \"payload\": null}"),
        400,
        "invalid_request",
        "payload",
    );
    field(
        post("{\"type\": \"civic.vote\", \"payload\": 3}"),
        400,
        "invalid_request",
        "payload",
    );
    err(
        &post("{\"type\": \"civic.vote\", \"subject\": 7, \"payload\": {}}"),
        400,
        "invalid_request",
    );
    err(
        &post("{\"type\": \"civic.vote\", \"ref\": 7, \"payload\": {}}"),
        400,
        "invalid_request",
    );
    field(post("{\"payload\": {}}"), 400, "invalid_request", "type");
    field(
        post("{\"type\": \"civic.vote\"}"),
        400,
        "invalid_request",
        "payload",
    );
    err(
        &post("{\"type\": \"civic.vote\", \"payload\": {\"s\": \"\\ud800\"}}"),
        400,
        "invalid_request",
    );

    // Bad type names, subjects, refs.
    for t in [
        "civic",
        "Civic.vote",
        "civic.Vote",
        "1civic.vote",
        "civic..vote",
        "civic.vote.",
        ".civic",
        "civic-x.vote",
        "civic.1vote",
        "",
    ] {
        field(
            post(&json!({"type": t, "payload": {}}).to_string()),
            400,
            "invalid_request",
            "type",
        );
    }
    field(
        post(&json!({"type": format!("a.{}", "b".repeat(63)), "payload": {}}).to_string()),
        400,
        "invalid_request",
        "type",
    );
    for sub in [
        "Al",
        "al",
        "Alice",
        "_alice",
        "-alice",
        "al ice",
        "alice!",
        &"a".repeat(65),
    ] {
        field(
            post(&json!({"type": "civic.vote", "subject": sub, "payload": {}}).to_string()),
            400,
            "invalid_request",
            "subject",
        );
    }
    for r in ["", "tab\there", "ünï", &"x".repeat(129)] {
        field(
            post(&json!({"type": "civic.vote", "ref": r, "payload": {}}).to_string()),
            400,
            "invalid_request",
            "ref",
        );
    }

    // Strict bodies: unknown fields named; server-set fields refused.
    field(
        post("{\"type\": \"civic.vote\", \"payload\": {}, \"color\": \"red\"}"),
        400,
        "invalid_request",
        "color",
    );
    field(
        post("{\"type\": \"civic.vote\", \"payload\": {}, \"source\": \"operator:ops\"}"),
        400,
        "invalid_request",
        "source",
    );
    field(
        post("{\"type\": \"civic.vote\", \"payload\": {}, \"timestamp_ms\": 1}"),
        400,
        "invalid_request",
        "timestamp_ms",
    );
    field(
        post("{\"type\": \"civic.vote\", \"payload\": {}, \"source\": null}"),
        400,
        "invalid_request",
        "source",
    );
    field(
        batch("{\"entries\": [], \"color\": 1}"),
        400,
        "invalid_request",
        "color",
    );
    field(
        batch("{\"entries\": [{\"type\": \"civic.vote\", \"payload\": {}, \"color\": 1}]}"),
        400,
        "invalid_request",
        "color",
    );
    let e = err(&batch(&json!({"entries": [{"type": "civic.vote", "payload": {}}, {"type": "civic.vote", "payload": {}, "source": "x"}]}).to_string()), 400, "invalid_request");
    assert_eq!(e["details"]["field"], "source");
    assert_eq!(e["details"]["position"], 1, "a batch error names the entry");
    // Duplicate keys, in the payload (at any depth) and at the top level.
    err(
        &post("{\"type\": \"civic.vote\", \"payload\": {\"a\": 1, \"a\": 2}}"),
        400,
        "invalid_request",
    );
    err(
        &post("{\"type\": \"civic.vote\", \"payload\": {\"x\": {\"a\": 1, \"a\": 1}}}"),
        400,
        "invalid_request",
    );
    err(
        &post("{\"type\": \"civic.vote\", \"payload\": {\"a\": 1, \"\\u0061\": 2}}"),
        400,
        "invalid_request",
    );
    err(
        &post("{\"type\": \"civic.vote\", \"type\": \"civic.other\", \"payload\": {}}"),
        400,
        "invalid_request",
    );

    // Sizes.
    let big = json!({"type": "civic.vote", "payload": {"blob": "x".repeat(70_000)}}).to_string();
    let e = err(&post(&big), 413, "payload_too_large");
    assert_eq!(e["details"]["limit_bytes"], 65_535);
    let just_over = {
        // The canonical entry is exactly 65,536 bytes: one over the limit.
        let probe = |len: usize| {
            let mut e = json!({"type": "civic.vote", "source": "operator:ops", "payload": {"blob": "x".repeat(len)}, "timestamp_ms": now_ms()});
            let n = mobius_core::jcs::to_vec(&e).unwrap().len();
            e.as_object_mut().unwrap().remove("source");
            e.as_object_mut().unwrap().remove("timestamp_ms");
            (n, e)
        };
        let (n0, _) = probe(0);
        probe(65_536 - n0).1
    };
    err(&post(&just_over.to_string()), 413, "payload_too_large");
    // Bodies over 1 MiB: refused from the declared length, before the body is read...
    let host = s.url.trim_start_matches("http://");
    let head = |extra: &str| {
        format!(
            "POST /v1/attestations HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\nauthorization: Bearer {op}\r\n{extra}\r\n"
        )
    };
    let mut req = head(&format!("content-length: {}\r\n", (1 << 20) + 1)).into_bytes();
    req.extend_from_slice(b"{\"type\": \"civic.vote\", \"payload\": {\"blob\": \"xxxx");
    let e = err(&common::raw_http(&s.url, &req), 413, "payload_too_large");
    assert_eq!(e["details"]["limit_bytes"], 1 << 20);
    // ...and, without a declared length (chunked), once more than 1 MiB has arrived.
    let body = format!(
        "{{\"type\": \"civic.vote\", \"payload\": {{\"blob\": \"{}\"}}}}",
        "x".repeat(1 << 20)
    );
    let mut req = head("transfer-encoding: chunked\r\n").into_bytes();
    req.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    req.extend_from_slice(body.as_bytes());
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    err(&common::raw_http(&s.url, &req), 413, "payload_too_large");
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"type": "civic.vote", "payload": {"i": i}}))
        .collect();
    field(
        batch(&json!({"entries": many}).to_string()),
        400,
        "invalid_request",
        "entries",
    );
    field(
        batch("{\"entries\": []}"),
        400,
        "invalid_request",
        "entries",
    );
    err(&batch("{}"), 400, "invalid_request");
    let e = err(&batch(&json!({"entries": [{"type": "civic.vote", "payload": {}}, {"type": "civic.vote", "payload": {"blob": "x".repeat(70_000)}}]}).to_string()), 413, "payload_too_large");
    assert_eq!(e["details"]["position"], 1);

    // Authentication and media type.
    let ok_body = json!({"type": "civic.vote", "payload": {}}).to_string();
    err(
        &s.http.post_json("/v1/attestations", &ok_body, None),
        401,
        "unauthenticated",
    );
    err(
        &s.http.post_json(
            "/v1/attestations",
            &ok_body,
            Some("mob_0000000000000000000000000000000000000000000000000000000000000000"),
        ),
        401,
        "unauthenticated",
    );
    err(
        &s.http
            .post_json("/v1/attestations", &ok_body, Some("garbage")),
        401,
        "unauthenticated",
    );
    err(
        &s.http.post_json(
            "/v1/attestations/batch",
            &json!({"entries": [{"type": "civic.vote", "payload": {}}]}).to_string(),
            None,
        ),
        401,
        "unauthenticated",
    );
    err(
        &s.http.post_raw(
            "/v1/attestations",
            ok_body.as_bytes(),
            Some("text/plain"),
            Some(&op),
        ),
        415,
        "unsupported_media_type",
    );
    err(
        &s.http
            .post_raw("/v1/attestations", ok_body.as_bytes(), None, Some(&op)),
        415,
        "unsupported_media_type",
    );
    err(
        &s.http.post_raw(
            "/v1/attestations",
            ok_body.as_bytes(),
            Some("application/jsonx"),
            Some(&op),
        ),
        415,
        "unsupported_media_type",
    );

    // Authorisation: reserved namespaces; citizens write only about themselves.
    for t in [
        "mic.mint",
        "eomm.day_sealed",
        "shield.enrolled",
        "ops.backup_created",
        "ledger.anything",
    ] {
        let e = err(
            &post(&json!({"type": t, "payload": {}}).to_string()),
            403,
            "forbidden",
        );
        assert_eq!(e["details"]["field"], "type");
    }
    let carol = s.data.create_token("citizen", "carol");
    err(
        &s.http.post_json(
            "/v1/attestations",
            &json!({"type": "civic.vote", "subject": "alice", "payload": {}}).to_string(),
            Some(&carol),
        ),
        403,
        "forbidden",
    );
    err(
        &s.http.post_json(
            "/v1/attestations",
            &json!({"type": "civic.vote", "payload": {}}).to_string(),
            Some(&carol),
        ),
        403,
        "forbidden",
    );
    err(&s.http.post_json("/v1/attestations/batch", &json!({"entries": [{"type": "civic.vote", "subject": "carol", "payload": {}}, {"type": "civic.vote", "subject": "dave", "payload": {}}]}).to_string(), Some(&carol)), 403, "forbidden");

    // Idempotency conflicts: same ref, different body (type, subject or payload).
    for other in [
        json!({"type": "civic.vote", "ref": "r-1", "payload": {"a": 2}}),
        json!({"type": "civic.other", "ref": "r-1", "payload": {"a": 1}}),
        json!({"type": "civic.vote", "subject": "alice", "ref": "r-1", "payload": {"a": 1}}),
    ] {
        let e = err(&post(&other.to_string()), 409, "conflict");
        assert_eq!(e["details"]["existing_index"], 0, "{e}");
    }
    // A batch with one conflicting entry is refused as a whole (atomic).
    err(&batch(&json!({"entries": [{"type": "civic.vote", "ref": "fresh", "payload": {}}, {"type": "civic.vote", "ref": "r-1", "payload": {"a": 3}}]}).to_string()), 409, "conflict");
    err(&batch(&json!({"entries": [{"type": "civic.vote", "ref": "twice", "payload": {"v": 1}}, {"type": "civic.vote", "ref": "twice", "payload": {"v": 2}}]}).to_string()), 409, "conflict");

    // Reads with bad parameters.
    err(&s.get("/v1/nope"), 404, "not_found");
    err(&s.get("/v2/attestations"), 404, "not_found");
    err(&s.get("/"), 404, "not_found");
    for bad in ["abc", "-1", "1.5", "99999999999999999999999", "0x10"] {
        field(
            s.get(&format!("/v1/attestations/{bad}")),
            400,
            "invalid_request",
            "index",
        );
    }
    // Beyond what the store can hold (≥ 2^63): a client error, not a 500.
    for big in ["9223372036854775808", "18446744073709551615"] {
        field(
            s.get(&format!("/v1/attestations/{big}")),
            400,
            "invalid_request",
            "index",
        );
        field(
            s.get(&format!("/v1/blocks/{big}")),
            400,
            "invalid_request",
            "height",
        );
        field(
            s.get(&format!("/v1/attestations?from_index={big}")),
            400,
            "invalid_request",
            "from_index",
        );
        field(
            s.get(&format!("/v1/blocks?from_height={big}")),
            400,
            "invalid_request",
            "from_height",
        );
    }
    err(
        &s.get("/v1/attestations/9223372036854775807"),
        404,
        "not_found",
    );
    // Forged cursors: "i:18446744073709551615" and "i:-5".
    field(
        s.get("/v1/attestations?cursor=aToxODQ0Njc0NDA3MzcwOTU1MTYxNQ"),
        400,
        "invalid_request",
        "cursor",
    );
    field(
        s.get("/v1/attestations?cursor=aTotNQ"),
        400,
        "invalid_request",
        "cursor",
    );
    field(
        s.get("/v1/attestations/by-id/xyz"),
        400,
        "invalid_request",
        "id",
    );
    field(
        s.get(&format!("/v1/attestations/by-id/{}", "AB".repeat(32))),
        400,
        "invalid_request",
        "id",
    );
    field(s.get("/v1/blocks/abc"), 400, "invalid_request", "height");
    field(
        s.get("/v1/attestations?limit=0"),
        400,
        "invalid_request",
        "limit",
    );
    field(
        s.get("/v1/attestations?limit=1001"),
        400,
        "invalid_request",
        "limit",
    );
    field(
        s.get("/v1/attestations?limit=x"),
        400,
        "invalid_request",
        "limit",
    );
    field(
        s.get("/v1/attestations?cursor=%21%21"),
        400,
        "invalid_request",
        "cursor",
    );
    field(
        s.get("/v1/attestations?cursor=Yjox"),
        400,
        "invalid_request",
        "cursor",
    ); // "b:1", a block cursor
    field(
        s.get("/v1/attestations?type=Bad"),
        400,
        "invalid_request",
        "type",
    );
    field(
        s.get("/v1/attestations?subject=A"),
        400,
        "invalid_request",
        "subject",
    );
    field(
        s.get("/v1/attestations?from_index=-1"),
        400,
        "invalid_request",
        "from_index",
    );
    field(
        s.get("/v1/proofs/inclusion"),
        400,
        "invalid_request",
        "index",
    );
    field(
        s.get("/v1/proofs/inclusion?index=1"),
        400,
        "invalid_request",
        "index",
    );
    field(
        s.get("/v1/proofs/inclusion?index=5&tree_size=1"),
        400,
        "invalid_request",
        "index",
    );
    field(
        s.get("/v1/proofs/inclusion?index=0&tree_size=2"),
        400,
        "invalid_request",
        "tree_size",
    );
    field(
        s.get("/v1/proofs/inclusion?index=0&tree_size=0"),
        400,
        "invalid_request",
        "index",
    );
    field(
        s.get("/v1/proofs/consistency"),
        400,
        "invalid_request",
        "first",
    );
    field(
        s.get("/v1/proofs/consistency?first=0&second=1"),
        400,
        "invalid_request",
        "first",
    );
    field(
        s.get("/v1/proofs/consistency?first=2&second=1"),
        400,
        "invalid_request",
        "first",
    );
    field(
        s.get("/v1/proofs/consistency?first=1&second=2"),
        400,
        "invalid_request",
        "second",
    );
    err(
        &s.http.call("DELETE", "/v1/attestations/0"),
        405,
        "method_not_allowed",
    );
    err(
        &s.http.call("PUT", "/v1/checkpoint"),
        405,
        "method_not_allowed",
    );

    // Nothing changed.
    let stats_after = s.stats();
    assert_eq!(
        stats_after["tree_size"], stats_before["tree_size"],
        "bad input appended something"
    );
    assert_eq!(
        stats_after["entries_by_type"],
        stats_before["entries_by_type"]
    );
    assert_eq!(stats_after["subjects"], stats_before["subjects"]);
    assert_eq!(s.all_blocks(), blocks_before, "bad input sealed something");
    let listed = s.get_ok("/v1/attestations");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    // And the ledger still works, right up to the limits.
    assert_eq!(
        s.post(
            "/v1/attestations",
            &json!({"type": "civic.vote", "payload": {}})
        )
        .status,
        201
    );
    assert_eq!(s.tree_size(), 2);
    let at_limit = {
        let mut e = just_over.clone();
        let blob = e["payload"]["blob"].as_str().unwrap().to_string();
        e["payload"]["blob"] = json!(&blob[1..]);
        e
    };
    let r = post(&at_limit.to_string());
    assert_eq!(
        r.status, 201,
        "an entry of exactly 65,535 canonical bytes is accepted: {}",
        r.body
    );
    let stored = s.get_ok(&format!("/v1/attestations/{}", r.json()["index"]));
    assert_eq!(common::leaf_data_of(&stored).len(), 65_535);
    let thousand: Vec<Value> = (0..1000)
        .map(|i| json!({"type": "civic.vote", "payload": {"i": i}}))
        .collect();
    let r = batch(&json!({"entries": thousand}).to_string());
    assert_eq!(
        r.status, 201,
        "a batch of exactly 1000 entries is accepted: {}",
        r.body
    );
    assert_eq!(s.tree_size(), 1003);
}

/// Fires `total` POSTs of `body_for(k)` from `threads` threads; returns (status, body) of each.
fn fire(
    s: &Stack,
    threads: usize,
    total: usize,
    body_for: impl Fn(usize) -> Value + Sync,
) -> Vec<(usize, Resp)> {
    let token = s.token.clone();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let http = common::Http::new(&s.url);
                let token = token.clone();
                let body_for = &body_for;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    let mut k = t;
                    while k < total {
                        let r = http.post_json(
                            "/v1/attestations",
                            &body_for(k).to_string(),
                            Some(&token),
                        );
                        out.push((k, r));
                        k += threads;
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("request thread panicked"))
            .collect()
    })
}

fn concurrent_duplicate_refs(b: Backend) {
    let s = Stack::start(b);
    assert_eq!(
        s.post(
            "/v1/attestations",
            &json!({"type": "civic.warmup", "payload": {}})
        )
        .status,
        201
    );
    let before = s.tree_size();
    let body = json!({"type": "civic.vote", "subject": "alice", "ref": "once", "payload": {"choice": "yes"}});
    let results = fire(&s, 64, 10_000, |_| body.clone());
    assert_eq!(results.len(), 10_000);
    let mut created = 0;
    let mut ids = BTreeSet::new();
    for (k, r) in &results {
        assert!(
            r.status == 201 || r.status == 200,
            "request {k}: {} {}",
            r.status,
            r.body
        );
        let v = r.json();
        if r.status == 201 {
            created += 1;
            assert_eq!(v.get("duplicate"), None);
        } else {
            assert_eq!(v["duplicate"], true);
        }
        ids.insert((
            v["id"].as_str().unwrap().to_string(),
            v["index"].as_u64().unwrap(),
            v["timestamp_ms"].as_i64().unwrap(),
        ));
    }
    assert_eq!(created, 1, "exactly one request creates the entry");
    assert_eq!(ids.len(), 1, "every answer names the same entry: {ids:?}");
    let (id, index, _) = ids.into_iter().next().unwrap();
    assert_eq!(index, before, "the entry went to the next index");
    assert_eq!(s.tree_size(), before + 1, "exactly one entry was appended");
    let e = s.get_ok(&format!("/v1/attestations/{index}"));
    assert_eq!(e["id"], id);
    assert_eq!(e["payload"], body["payload"]);
    assert_eq!(s.list_all("type=civic.vote", 1000).len(), 1);
    // The tree is intact: the sealed checkpoint covers both entries and proves the new one.
    let blk = s.wait_sealed(before + 1);
    let p = s.get_ok(&format!(
        "/v1/proofs/inclusion?index={index}&tree_size={}",
        blk["tree_size"]
    ));
    merkle::verify_inclusion(
        index,
        blk["tree_size"].as_u64().unwrap(),
        &hash_from_hex(&id),
        &proof_from_json(&p),
        &hash_from_hex(blk["root_hash"].as_str().unwrap()),
    )
    .expect("inclusion of the deduplicated entry");
}

fn concurrent_conflicting_refs(b: Backend) {
    let s = Stack::start(b);
    let before = s.tree_size();
    let body = |k: usize| json!({"type": "civic.vote", "subject": "alice", "ref": "contested", "payload": {"choice": if k.is_multiple_of(2) { "yes" } else { "no" }}});
    let results = fire(&s, 64, 10_000, body);
    assert_eq!(results.len(), 10_000);
    let winners: Vec<&(usize, Resp)> = results.iter().filter(|(_, r)| r.status == 201).collect();
    assert_eq!(winners.len(), 1, "exactly one request creates the entry");
    let winner_parity = winners[0].0 % 2;
    let w = winners[0].1.json();
    let mut dups = 0;
    let mut conflicts = 0;
    for (k, r) in &results {
        if k % 2 == winner_parity {
            assert!(
                r.status == 201 || r.status == 200,
                "request {k} (winning body): {} {}",
                r.status,
                r.body
            );
            let v = r.json();
            assert_eq!(
                (&v["id"], &v["index"]),
                (&w["id"], &w["index"]),
                "request {k}"
            );
            dups += usize::from(r.status == 200);
        } else {
            let e = r.assert_error(409, "conflict");
            if let Some(i) = e["details"]["existing_index"].as_u64() {
                assert_eq!(Some(i), w["index"].as_u64());
            }
            conflicts += 1;
        }
    }
    assert_eq!((dups, conflicts), (4_999, 5_000));
    assert_eq!(s.tree_size(), before + 1, "exactly one entry was appended");
    let e = s.get_ok(&format!("/v1/attestations/{}", w["index"]));
    assert_eq!(
        e["payload"],
        body(winner_parity)["payload"],
        "the stored body is the winner's"
    );
}
