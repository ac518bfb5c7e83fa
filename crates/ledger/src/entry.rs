//! Ledger entries (SPEC §3.1): parsing client input into typed, validated values, and the
//! canonical leaf data that is hashed into the tree.

use mobius_core::jcs;
use mobius_core::merkle::{Hash, leaf_hash, sha256};
use mobius_http::ApiError;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The JCS encoding of a whole entry may not exceed this (SPEC §3.1).
pub const MAX_ENTRY_BYTES: usize = 65_535;
/// Entries per batch request (SPEC §3.3).
pub const MAX_BATCH_ENTRIES: usize = 1000;

/// Type namespaces written only by the services that own them, never through the public
/// attestation endpoints: derived state (balances, identities, day roots) is a fold of these
/// entries, so a client must not be able to forge them.
pub const RESERVED_NAMESPACES: &[(&str, &str)] = &[
    ("mic", "indexer-api"),
    ("eomm", "eomm-api"),
    ("shield", "shield-api"),
    ("broker", "broker-api"),
    ("integrity", "the integrity monitor"),
    ("ops", "the operations surface"),
    ("ledger", "the ledger itself"),
];

/// `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`, at most 64 characters.
pub fn valid_entry_type(s: &str) -> bool {
    if s.is_empty() || s.len() > 64 {
        return false;
    }
    let mut parts = 0;
    for part in s.split('.') {
        let b = part.as_bytes();
        if b.is_empty() || !b[0].is_ascii_lowercase() {
            return false;
        }
        if !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

/// Civic ids: `^[a-z0-9][a-z0-9_.-]{2,63}$`.
pub fn valid_civic_id(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.-".contains(c))
}

/// Idempotency keys: 1–128 printable ASCII characters.
pub fn valid_ref(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|c| (0x20..=0x7e).contains(&c))
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The body of `POST /v1/attestations` (and each item of a batch).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEntryRequest {
    #[serde(rename = "type")]
    pub entry_type: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    pub payload: jcs::StrictValue,
    /// Set by the server; a client that sends it gets a 400.
    #[serde(default, deserialize_with = "present")]
    pub source: bool,
    /// Set by the server; a client that sends it gets a 400.
    #[serde(default, deserialize_with = "present")]
    pub timestamp_ms: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub entries: Vec<NewEntryRequest>,
}

/// A validated entry with its canonical leaf data and hashes, ready for the sequencer.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    pub entry_type: String,
    pub subject: Option<String>,
    pub source: String,
    pub reference: Option<String>,
    /// SHA-256 of the JCS of `{type, subject?, payload}`: what "the same body" means for an
    /// idempotent re-submission. Present only when `reference` is.
    pub fingerprint: Option<Hash>,
    pub timestamp_ms: i64,
    pub leaf_data: Vec<u8>,
    pub leaf_hash: Hash,
}

impl PreparedEntry {
    /// Bytes this entry holds while queued (for the sequencer's bounded queue).
    pub fn queued_bytes(&self) -> usize {
        self.leaf_data.len() + 256
    }
}

fn field_error(position: Option<usize>, field: &str, message: String) -> ApiError {
    let mut e = ApiError::invalid_field(field, message);
    if let Some(p) = position {
        e.details["position"] = json!(p);
    }
    e
}

/// Refuses types in a reserved namespace: the public attestation endpoints call this, the
/// owning services (which write those entries themselves) do not.
pub fn check_public_type(entry_type: &str, position: Option<usize>) -> Result<(), ApiError> {
    let namespace = entry_type.split('.').next().unwrap_or("");
    if let Some((ns, owner)) = RESERVED_NAMESPACES.iter().find(|(ns, _)| *ns == namespace) {
        let mut e = ApiError::forbidden(format!(
            "the type namespace '{ns}' is reserved: only {owner} writes it"
        ));
        e.details = json!({"field": "type"});
        if let Some(p) = position {
            e.details["position"] = json!(p);
        }
        return Err(e);
    }
    Ok(())
}

/// Validates a request into a prepared entry. `position` is the index within a batch, so a
/// batch error names the offending entry.
pub fn prepare(
    req: NewEntryRequest,
    source: &str,
    timestamp_ms: i64,
    position: Option<usize>,
) -> Result<PreparedEntry, ApiError> {
    if req.source {
        return Err(field_error(
            position,
            "source",
            "source is set by the server from your token; remove it".into(),
        ));
    }
    if req.timestamp_ms {
        return Err(field_error(
            position,
            "timestamp_ms",
            "timestamp_ms is set by the server; remove it".into(),
        ));
    }
    if !valid_entry_type(&req.entry_type) {
        return Err(field_error(
            position,
            "type",
            format!(
                "invalid type {:?}: use dotted lowercase names like \"civic.vote\" (^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$, at most 64 characters)",
                truncate(&req.entry_type)
            ),
        ));
    }
    if let Some(s) = &req.subject
        && !valid_civic_id(s)
    {
        return Err(field_error(
            position,
            "subject",
            format!(
                "invalid subject {:?}: a civic id is 3-64 characters of [a-z0-9_.-] starting with a letter or digit",
                truncate(s)
            ),
        ));
    }
    if let Some(r) = &req.reference
        && !valid_ref(r)
    {
        return Err(field_error(
            position,
            "ref",
            "invalid ref: use 1-128 printable ASCII characters".into(),
        ));
    }
    let payload = req.payload.0;
    if !payload.is_object() {
        return Err(field_error(
            position,
            "payload",
            "payload must be a JSON object".into(),
        ));
    }
    if let Some(n) = first_imprecise_number(&payload) {
        return Err(field_error(
            position,
            "payload",
            format!(
                "the integer {n} has magnitude 2^53 or more and cannot be stored exactly \
                 (JSON numbers are IEEE-754 doubles); send it as a string"
            ),
        ));
    }
    let fingerprint = match &req.reference {
        Some(_) => {
            let mut body = Map::new();
            body.insert("type".into(), Value::String(req.entry_type.clone()));
            if let Some(s) = &req.subject {
                body.insert("subject".into(), Value::String(s.clone()));
            }
            body.insert("payload".into(), payload.clone());
            let bytes = jcs::to_vec(&Value::Object(body)).map_err(|e| {
                field_error(
                    position,
                    "payload",
                    format!("payload cannot be canonicalised: {e}"),
                )
            })?;
            Some(sha256(&bytes))
        }
        None => None,
    };
    let mut entry = Map::new();
    entry.insert("type".into(), Value::String(req.entry_type.clone()));
    if let Some(s) = &req.subject {
        entry.insert("subject".into(), Value::String(s.clone()));
    }
    entry.insert("source".into(), Value::String(source.to_string()));
    if let Some(r) = &req.reference {
        entry.insert("ref".into(), Value::String(r.clone()));
    }
    entry.insert("payload".into(), payload);
    entry.insert("timestamp_ms".into(), json!(timestamp_ms));
    let leaf_data = jcs::to_vec(&Value::Object(entry)).map_err(|e| {
        field_error(
            position,
            "payload",
            format!("payload cannot be canonicalised: {e}"),
        )
    })?;
    if leaf_data.len() > MAX_ENTRY_BYTES {
        let mut e = ApiError::payload_too_large(MAX_ENTRY_BYTES);
        e.message = format!(
            "the canonical entry is {} bytes; the limit is {MAX_ENTRY_BYTES} bytes per entry",
            leaf_data.len()
        );
        e.details = json!({"limit_bytes": MAX_ENTRY_BYTES, "entry_bytes": leaf_data.len()});
        if let Some(p) = position {
            e.details["position"] = json!(p);
        }
        return Err(e);
    }
    let leaf_hash = leaf_hash(&leaf_data);
    Ok(PreparedEntry {
        entry_type: req.entry_type,
        subject: req.subject,
        source: source.to_string(),
        reference: req.reference,
        fingerprint,
        timestamp_ms,
        leaf_data,
        leaf_hash,
    })
}

/// Finds an integer the canonical form could not carry exactly (magnitude ≥ 2^53): RFC 8785
/// numbers are IEEE-754 doubles, so such an integer would silently lose digits. Non-integer
/// numbers are doubles by definition and are canonicalised as such.
fn first_imprecise_number(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => {
            let imprecise = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => u >= 1 << 53,
                (None, Some(i), _) => i.unsigned_abs() >= 1 << 53,
                // Other numbers are IEEE-754 doubles, canonicalised per RFC 8785 (as 0.1 or
                // 1e+21 are); only non-finite values are refused.
                (None, None, Some(f)) => !f.is_finite(),
                _ => true,
            };
            imprecise.then(|| n.to_string())
        }
        Value::Array(a) => a.iter().find_map(first_imprecise_number),
        Value::Object(o) => o.values().find_map(first_imprecise_number),
        _ => None,
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        for ok in ["civic.vote", "a.b", "bar.example", "x1.y_2.z3"] {
            assert!(valid_entry_type(ok), "{ok}");
        }
        for bad in [
            "civic",
            "Civic.vote",
            "1a.b",
            "a..b",
            "a.b.",
            ".a.b",
            "a.B",
            "a-b.c",
            "a.1b",
            &"a.".repeat(40),
        ] {
            assert!(!valid_entry_type(bad), "{bad}");
        }
        assert!(valid_entry_type(&format!("a.{}", "b".repeat(62))));
        assert!(!valid_entry_type(&format!("a.{}", "b".repeat(63))));
    }

    #[test]
    fn numbers_that_would_lose_precision_are_refused() {
        let parse = |t: &str| mobius_core::jcs::parse_strict(t.as_bytes()).unwrap();
        assert_eq!(
            first_imprecise_number(&parse(r#"{"a":[1,2.5,-9007199254740991]}"#)),
            None
        );
        assert!(first_imprecise_number(&parse(r#"{"x":{"y":[9007199254740993]}}"#)).is_some());
        assert!(first_imprecise_number(&parse(r#"{"n":-9007199254740992}"#)).is_some());
        assert_eq!(
            first_imprecise_number(&parse(r#"{"x":{"y":[1e300, 1e21, 0.1]}}"#)),
            None
        );
    }

    #[test]
    fn civic_ids_and_refs() {
        assert!(valid_civic_id("alice"));
        assert!(valid_civic_id("0ab"));
        assert!(!valid_civic_id("ab"));
        assert!(!valid_civic_id("_abc"));
        assert!(!valid_civic_id("Alice"));
        assert!(!valid_civic_id(&"a".repeat(65)));
        assert!(valid_ref("t-1"));
        assert!(!valid_ref(""));
        assert!(!valid_ref("tab\there"));
        assert!(!valid_ref(&"x".repeat(129)));
    }
}
