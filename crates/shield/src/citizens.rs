//! Citizens and their Bio-DNA manifests (SPEC §7). A manifest is the canonical (RFC 8785)
//! JSON `{civic_id, public_key, roles, created_at, version, display_name?,
//! previous_manifest_hash?}`; its hash is SHA-256 of that JCS. Every version is kept;
//! enrolment and key rotation are attested in the same transaction as the rows.

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use mobius_core::jcs;
use mobius_core::merkle::{Hash, sha256};
use mobius_core::time::rfc3339_ms;
use mobius_http::ApiError;
use mobius_store::{Conn, Param, StoreError};
use serde_json::{Value, json};

pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Parses a base64 Ed25519 public key, refusing malformed and weak (small-order) keys.
pub fn parse_public_key(b64: &str) -> Result<VerifyingKey, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "public_key",
            "public_key must be a base64 Ed25519 public key (32 bytes)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad())?;
    let bytes: [u8; 32] = raw.try_into().map_err(|_| bad())?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
    if key.is_weak() {
        return Err(ApiError::invalid_field(
            "public_key",
            "public_key is a weak (small-order) point",
        ));
    }
    Ok(key)
}

/// Parses a base64 Ed25519 signature.
pub fn parse_signature(b64: &str) -> Result<Signature, ApiError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| ApiError::invalid_field("signature", "signature must be base64 (64 bytes)"))?;
    let bytes: [u8; 64] = raw
        .try_into()
        .map_err(|_| ApiError::invalid_field("signature", "signature must be 64 bytes"))?;
    Ok(Signature::from_bytes(&bytes))
}

/// The manifest body and its hash.
pub fn manifest(
    civic_id: &str,
    public_key: &VerifyingKey,
    display_name: Option<&str>,
    version: i64,
    created_at_ms: i64,
    previous: Option<&Hash>,
) -> (Value, Hash) {
    let mut m = json!({
        "civic_id": civic_id,
        "public_key": base64::engine::general_purpose::STANDARD.encode(public_key.as_bytes()),
        "roles": ["citizen"],
        "created_at": rfc3339_ms(created_at_ms),
        "version": version,
    });
    if let Some(d) = display_name {
        m["display_name"] = json!(d);
    }
    if let Some(p) = previous {
        m["previous_manifest_hash"] = json!(hex::encode(p));
    }
    let hash = sha256(&jcs::to_vec(&m).unwrap_or_default());
    (m, hash)
}

/// The message a citizen's current key signs to rotate to `new_key` as `new_version`.
pub fn rotation_message(civic_id: &str, new_version: i64, new_key_b64: &str) -> String {
    format!("mobius-key-rotation:v1\n{civic_id}\n{new_version}\n{new_key_b64}\n")
}

#[derive(Debug, Clone)]
pub struct Citizen {
    pub civic_id: String,
    pub public_key: [u8; 32],
    pub display_name: Option<String>,
    pub created_at_ms: i64,
    pub version: i64,
    pub manifest_hash: Hash,
}

impl Citizen {
    pub fn public_json(&self) -> Value {
        json!({
            "civic_id": self.civic_id,
            "public_key": base64::engine::general_purpose::STANDARD.encode(self.public_key),
            "display_name": self.display_name,
            "roles": ["citizen"],
            "created_at": rfc3339_ms(self.created_at_ms),
            "version": self.version,
            "manifest_hash": hex::encode(self.manifest_hash),
        })
    }
}

pub fn load(c: &mut Conn, civic_id: &str) -> Result<Option<Citizen>, StoreError> {
    c.query_opt(
        "SELECT civic_id, public_key, display_name, created_at_ms, version, manifest_hash FROM citizens WHERE civic_id = $1",
        &[Param::Text(civic_id)],
    )?
    .map(|r| {
        Ok(Citizen {
            civic_id: r.text(0)?.to_string(),
            public_key: r.hash(1)?,
            display_name: r.opt_text(2)?.map(str::to_string),
            created_at_ms: r.i64(3)?,
            version: r.i64(4)?,
            manifest_hash: r.hash(5)?,
        })
    })
    .transpose()
}

pub fn insert_manifest(
    c: &mut Conn,
    civic_id: &str,
    version: i64,
    manifest: &Value,
    hash: &Hash,
    at_ms: i64,
) -> Result<(), StoreError> {
    let text = String::from_utf8(jcs::to_vec(manifest).unwrap_or_default()).unwrap_or_default();
    c.execute(
        "INSERT INTO citizen_manifests (civic_id, version, manifest, manifest_hash, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
        &[Param::Text(civic_id), Param::Int(version), Param::Text(&text), Param::Bytes(hash), Param::Int(at_ms)],
    )?;
    Ok(())
}

pub fn manifests(c: &mut Conn, civic_id: &str) -> Result<Vec<Value>, StoreError> {
    c.query(
        "SELECT version, manifest, manifest_hash FROM citizen_manifests WHERE civic_id = $1 ORDER BY version",
        &[Param::Text(civic_id)],
    )?
    .iter()
    .map(|r| {
        let mut m: Value = serde_json::from_str(r.text(1)?).unwrap_or(Value::Null);
        m["manifest_hash"] = json!(hex::encode(r.bytes(2)?));
        Ok(m)
    })
    .collect()
}

pub fn count(c: &mut Conn) -> Result<i64, StoreError> {
    Ok(
        c.query_opt("SELECT CAST(COUNT(*) AS BIGINT) FROM citizens", &[])?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn manifests_hash_their_canonical_form() {
        let key = SigningKey::from_bytes(&[3u8; 32]).verifying_key();
        let (m, h) = manifest("alice", &key, Some("Alice"), 1, 0, None);
        assert_eq!(h, sha256(&jcs::to_vec(&m).unwrap()));
        let (m2, h2) = manifest("alice", &key, Some("Alice"), 2, 0, Some(&h));
        assert_ne!(h, h2);
        assert_eq!(m2["previous_manifest_hash"], json!(hex::encode(h)));
    }

    #[test]
    fn keys_and_signatures_parse_strictly() {
        let sk = SigningKey::from_bytes(&[5u8; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sk.verifying_key().as_bytes());
        assert!(parse_public_key(&b64).is_ok());
        assert!(parse_public_key("not base64!").is_err());
        assert!(
            parse_public_key(&base64::engine::general_purpose::STANDARD.encode([0u8; 31])).is_err()
        );
        // The identity point is small-order: refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(
            parse_public_key(&base64::engine::general_purpose::STANDARD.encode(identity)).is_err()
        );
        let sig = sk.sign(b"nonce");
        let parsed =
            parse_signature(&base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()))
                .unwrap();
        assert!(sk.verifying_key().verify_strict(b"nonce", &parsed).is_ok());
        assert!(parse_signature("AAAA").is_err());
    }
}
