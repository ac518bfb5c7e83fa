//! Verifying a running ledger from the outside (SPEC §3.4): a witness. It fetches the signed
//! checkpoint, checks the signature against a pinned key, proves the new checkpoint
//! consistent with the last one it verified, spot-checks entries with inclusion proofs, and
//! remembers the checkpoint for next time. It uses only the public HTTP API.

use mobius_core::jcs;
use mobius_core::merkle::{self, Hash, leaf_hash};
use mobius_core::note::{Checkpoint, NoteVerifier};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// What the witness remembers between runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WitnessState {
    pub url: String,
    pub origin: String,
    pub verifier_key: String,
    pub tree_size: u64,
    pub root_hash: String,
    pub checkpoint: String,
    pub verified_at: String,
}

#[derive(Debug, Clone)]
pub struct WitnessReport {
    pub previous_size: Option<u64>,
    pub tree_size: u64,
    pub root: Hash,
    pub checked_indexes: Vec<u64>,
    pub key_pinned_now: bool,
    pub state: WitnessState,
}

#[derive(Debug, Clone)]
pub struct WitnessFailure {
    pub index: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for WitnessFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "index {i}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn failure(message: impl Into<String>) -> WitnessFailure {
    WitnessFailure {
        index: None,
        message: message.into(),
    }
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn get_text(&self, path: &str) -> Result<String, WitnessFailure> {
        let url = format!("{}{}", self.base, path);
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| failure(format!("GET {url}: {e}")))?;
        resp.body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| failure(format!("GET {url}: reading body: {e}")))
    }

    fn get_json(&self, path: &str) -> Result<Value, WitnessFailure> {
        let text = self.get_text(path)?;
        serde_json::from_str(&text).map_err(|e| failure(format!("GET {path}: not JSON: {e}")))
    }
}

fn hex_hash(v: &Value, field: &str) -> Result<Hash, WitnessFailure> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| failure(format!("response field {field} is not a 32-byte hex hash")))
}

fn hex_proof(v: &Value) -> Result<Vec<Hash>, WitnessFailure> {
    v.get("proof")
        .and_then(Value::as_array)
        .ok_or_else(|| failure("response has no proof array"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| hex::decode(s).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| failure("proof element is not a 32-byte hex hash"))
        })
        .collect()
}

/// Rebuilds an entry's leaf data from its public JSON (the §3.1 fields only).
pub fn leaf_data_from_public(entry: &Value) -> Result<Vec<u8>, String> {
    let obj = entry.as_object().ok_or("entry is not an object")?;
    let mut m = Map::new();
    for k in [
        "type",
        "subject",
        "source",
        "ref",
        "payload",
        "timestamp_ms",
    ] {
        if let Some(v) = obj.get(k)
            && !v.is_null()
        {
            m.insert(k.to_string(), v.clone());
        }
    }
    jcs::to_vec(&Value::Object(m)).map_err(|e| e.to_string())
}

/// Picks up to `n` distinct indexes below `size`: the first, the last, and pseudo-random ones
/// seeded by the root (different every checkpoint, reproducible for the same one).
fn sample_indexes(size: u64, n: usize, root: &Hash) -> Vec<u64> {
    let mut out = Vec::new();
    if size == 0 || n == 0 {
        return out;
    }
    out.push(size - 1);
    if n > 1 && size > 1 {
        out.push(0);
    }
    let mut x = u64::from_le_bytes(root[..8].try_into().unwrap_or([1; 8])) | 1;
    let mut tries = 0;
    while out.len() < n.min(size as usize) && tries < n * 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = x % size;
        if !out.contains(&i) {
            out.push(i);
        }
        tries += 1;
    }
    out
}

/// Runs one witness pass against `url`. `pinned_key` overrides the remembered key; with
/// neither, the key is trusted on first use and pinned.
pub fn witness(
    url: &str,
    state_path: &Path,
    pinned_key: Option<&str>,
    samples: usize,
) -> Result<WitnessReport, WitnessFailure> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let client = Client {
        agent,
        base: url.trim_end_matches('/').to_string(),
    };
    let previous: Option<WitnessState> = match std::fs::read_to_string(state_path) {
        Ok(t) => Some(
            serde_json::from_str(&t)
                .map_err(|e| failure(format!("witness state {}: {e}", state_path.display())))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(failure(format!("read {}: {e}", state_path.display()))),
    };

    let key_info = client.get_json("/v1/ledger/key")?;
    let served_key = key_info
        .get("verifier_key")
        .and_then(Value::as_str)
        .ok_or_else(|| failure("no verifier_key"))?;
    let (vkey, pinned_now) = match (pinned_key, &previous) {
        (Some(k), _) => (k.to_string(), false),
        (None, Some(p)) => (p.verifier_key.clone(), false),
        (None, None) => (served_key.to_string(), true),
    };
    if served_key != vkey {
        return Err(failure(format!(
            "the ledger now publishes key {served_key}, not the pinned {vkey}: the log's key changed"
        )));
    }
    let verifier = NoteVerifier::parse(&vkey).map_err(|e| failure(format!("verifier key: {e}")))?;

    let note = client.get_text("/v1/checkpoint")?;
    let cp: Checkpoint = verifier
        .verify_checkpoint(&note)
        .map_err(|e| failure(format!("checkpoint: {e}")))?;

    if let Some(prev) = &previous {
        let prev_root: Hash = hex::decode(&prev.root_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| failure("witness state has a bad root"))?;
        if cp.size < prev.tree_size {
            return Err(failure(format!(
                "the log shrank: size {} after {} was verified (rollback)",
                cp.size, prev.tree_size
            )));
        }
        if cp.size == prev.tree_size {
            if cp.root != prev_root {
                return Err(failure(format!(
                    "fork: the same size {} now has another root",
                    cp.size
                )));
            }
        } else {
            let v = client.get_json(&format!(
                "/v1/proofs/consistency?first={}&second={}",
                prev.tree_size, cp.size
            ))?;
            let proof = hex_proof(&v)?;
            merkle::verify_consistency(prev.tree_size, cp.size, &prev_root, &cp.root, &proof)
                .map_err(|e| {
                    failure(format!(
                        "checkpoint of size {} is not consistent with the verified size {}: {e}",
                        cp.size, prev.tree_size
                    ))
                })?;
        }
    }

    let indexes = sample_indexes(cp.size, samples, &cp.root);
    for &i in &indexes {
        let bad = |m: String| WitnessFailure {
            index: Some(i),
            message: m,
        };
        let entry = client.get_json(&format!("/v1/attestations/{i}"))?;
        let data = leaf_data_from_public(&entry).map_err(|e| bad(format!("entry: {e}")))?;
        let leaf = leaf_hash(&data);
        if hex_hash(&entry, "id")? != leaf {
            return Err(bad("the entry's content does not hash to its id".into()));
        }
        let p = client.get_json(&format!(
            "/v1/proofs/inclusion?index={i}&tree_size={}",
            cp.size
        ))?;
        let proof = hex_proof(&p)?;
        merkle::verify_inclusion(i, cp.size, &leaf, &proof, &cp.root).map_err(|e| {
            bad(format!(
                "inclusion proof against the signed checkpoint fails: {e}"
            ))
        })?;
    }

    let state = WitnessState {
        url: client.base.clone(),
        origin: cp.origin.clone(),
        verifier_key: vkey,
        tree_size: cp.size,
        root_hash: hex::encode(cp.root),
        checkpoint: note,
        verified_at: mobius_core::time::rfc3339_ms(mobius_core::time::now_ms()),
    };
    let text = serde_json::to_string_pretty(&state).map_err(|e| failure(e.to_string()))?;
    crate::keys::write_secret(state_path, text.as_bytes()).map_err(failure)?;
    Ok(WitnessReport {
        previous_size: previous.map(|p| p.tree_size),
        tree_size: cp.size,
        root: cp.root,
        checked_indexes: indexes,
        key_pinned_now: pinned_now,
        state,
    })
}
