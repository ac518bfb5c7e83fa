//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys, and transparency-log
//! checkpoints (<https://c2sp.org/tlog-checkpoint>).
//!
//! A signed note is a text ending in a newline, a blank line, then one or more signature lines
//! `— <key name> base64(4-byte key id || signature)`. The reference implementation is Go's
//! `golang.org/x/mod/sumdb/note`; notes produced here open there and vice versa.
//!
//! Verification is deliberately a little stricter than the Go reference where that cannot
//! reject an honestly produced note: base64 must be canonical, Ed25519 signatures are checked
//! with `verify_strict` (no small-order keys or `R` points), and *every* signature line from the
//! verifier's key must verify (Go checks only the first of repeated lines).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::merkle::sha256;

/// Signature type identifier byte for Ed25519 in signed-note key ids and verifier keys.
pub const ALG_ED25519: u8 = 0x01;

/// Notes longer than this many bytes are rejected by [`NoteVerifier::open`].
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// Notes with more signature lines than this are rejected by [`NoteVerifier::open`]
/// (the spec requires accepting at least 16; Go's reference stops at 100).
pub const MAX_SIGNATURES: usize = 100;

const SIG_PREFIX: &str = "\u{2014} ";
const ED25519_SIGNATURE_LEN: usize = 64;

/// Errors from parsing keys, signing and opening notes, and parsing checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    /// A key name that is empty or contains whitespace, `+` or control characters.
    InvalidKeyName(String),
    /// A verifier key string not of the form `<name>+<8 hex digits>+<base64 key>`.
    MalformedVerifierKey(&'static str),
    /// A verifier key whose algorithm byte is not Ed25519 (0x01).
    UnsupportedAlgorithm(u8),
    /// A verifier key whose key id does not match its name and public key.
    KeyIdMismatch {
        /// Key id written in the verifier key.
        stated: u32,
        /// Key id computed from the name and public key.
        computed: u32,
    },
    /// Bytes that are not a usable Ed25519 public key (not a curve point, or small order).
    InvalidPublicKey,
    /// A note text that cannot be signed (must end in a newline and contain no control
    /// characters other than newline).
    InvalidNoteText(&'static str),
    /// A signed note that does not follow the signed-note syntax.
    MalformedNote(&'static str),
    /// A signed note larger than [`MAX_NOTE_BYTES`].
    NoteTooLarge {
        /// Size of the rejected note in bytes.
        size: usize,
    },
    /// A signed note with more than [`MAX_SIGNATURES`] signature lines.
    TooManySignatures,
    /// A signature line from the verifier's key (matching name and key id) failed to verify.
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// The note carries no signature line from the verifier's key.
    NoVerifiedSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// A note text that is not a well-formed tlog checkpoint body.
    MalformedCheckpoint(&'static str),
    /// A checkpoint whose origin line is not the verifier's key name.
    OriginMismatch {
        /// The verifier's key name.
        expected: String,
        /// The checkpoint's origin line.
        found: String,
    },
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteError::InvalidKeyName(name) => write!(
                f,
                "invalid key name {name:?}: must be non-empty and contain no whitespace, \
                 '+' or control characters"
            ),
            NoteError::MalformedVerifierKey(why) => write!(f, "malformed verifier key: {why}"),
            NoteError::UnsupportedAlgorithm(alg) => write!(
                f,
                "unsupported verifier key algorithm 0x{alg:02x} (only Ed25519, 0x01, is supported)"
            ),
            NoteError::KeyIdMismatch { stated, computed } => write!(
                f,
                "verifier key id {stated:08x} does not match its name and public key \
                 (expected {computed:08x})"
            ),
            NoteError::InvalidPublicKey => write!(f, "invalid Ed25519 public key"),
            NoteError::InvalidNoteText(why) => write!(f, "note text cannot be signed: {why}"),
            NoteError::MalformedNote(why) => write!(f, "malformed signed note: {why}"),
            NoteError::NoteTooLarge { size } => write!(
                f,
                "signed note is {size} bytes, more than the limit of {MAX_NOTE_BYTES}"
            ),
            NoteError::TooManySignatures => write!(
                f,
                "signed note has more than {MAX_SIGNATURES} signature lines"
            ),
            NoteError::InvalidSignature { name, key_id } => {
                write!(f, "invalid signature for key {name}+{key_id:08x}")
            }
            NoteError::NoVerifiedSignature { name, key_id } => {
                write!(f, "note has no signature from key {name}+{key_id:08x}")
            }
            NoteError::MalformedCheckpoint(why) => write!(f, "malformed checkpoint: {why}"),
            NoteError::OriginMismatch { expected, found } => write!(
                f,
                "checkpoint origin {found:?} does not match the verifier key name {expected:?}"
            ),
        }
    }
}

impl std::error::Error for NoteError {}

/// A transparency-log checkpoint body (the text of a signed note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique identifier of the log (first line).
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 6962 / RFC 9162 Merkle tree root hash at `size`.
    pub root: [u8; 32],
}

impl Checkpoint {
    /// The note text: `"<origin>\n<size>\n<base64(root)>\n"`.
    ///
    /// The origin is written as is; it must be non-empty and free of newlines for the result to
    /// parse back (signers only produce checkpoints whose origin is their validated key name).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses a checkpoint note text per c2sp.org/tlog-checkpoint: non-empty origin line,
    /// decimal tree size without leading zeros (except `0`), the standard base64 of exactly 32
    /// bytes, then optional non-empty extension lines (ignored); the text must end in a newline.
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let text = text
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedCheckpoint(
                "text must end with a newline",
            ))?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(NoteError::MalformedCheckpoint("origin line is empty"));
        }
        let size = lines
            .next()
            .ok_or(NoteError::MalformedCheckpoint("missing tree size line"))?;
        let size = parse_size(size)?;
        let root = lines
            .next()
            .ok_or(NoteError::MalformedCheckpoint("missing root hash line"))?;
        let root = BASE64
            .decode(root)
            .map_err(|_| NoteError::MalformedCheckpoint("root hash is not valid base64"))?;
        let root: [u8; 32] = root
            .try_into()
            .map_err(|_| NoteError::MalformedCheckpoint("root hash is not 32 bytes"))?;
        if lines.any(str::is_empty) {
            return Err(NoteError::MalformedCheckpoint("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn parse_size(s: &str) -> Result<u64, NoteError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NoteError::MalformedCheckpoint(
            "tree size is not a decimal number",
        ));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(NoteError::MalformedCheckpoint(
            "tree size has leading zeros",
        ));
    }
    s.parse()
        .map_err(|_| NoteError::MalformedCheckpoint("tree size does not fit in 64 bits"))
}

/// Signed-note key id of an Ed25519 key: the first 4 bytes (big-endian) of
/// `SHA-256(name || 0x0A || 0x01 || public key)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut preimage = Vec::with_capacity(name.len() + 2 + public_key.len());
    preimage.extend_from_slice(name.as_bytes());
    preimage.push(b'\n');
    preimage.push(ALG_ED25519);
    preimage.extend_from_slice(public_key);
    let h = sha256(&preimage);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// Whether `name` is a valid signed-note key name: non-empty, no Unicode whitespace, no `+`.
/// Control characters are also refused, since a note containing them can never be opened.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName(name.to_owned()))
    }
}

fn encode_verifier_key(name: &str, key_id: u32, public_key: &[u8; 32]) -> String {
    let mut key = Vec::with_capacity(33);
    key.push(ALG_ED25519);
    key.extend_from_slice(public_key);
    format!("{name}+{key_id:08x}+{}", BASE64.encode(key))
}

/// Signs notes with an Ed25519 key under a key name (for a log, the name is its origin).
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: u32,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// Creates a signer from a key name and a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
            key_id,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key string `<name>+<8 hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        encode_verifier_key(&self.name, self.key_id, &self.public_key())
    }

    /// A [`NoteVerifier`] for this signer's key.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: Some(self.key.verifying_key()),
        }
    }

    /// The complete signed note: `body`, a blank line, then
    /// `— <name> <base64(key id || Ed25519 signature over body)>\n`.
    ///
    /// `body` is signed exactly as given. It must end with a newline and contain no control
    /// characters other than newline, otherwise the result is not a valid note and
    /// [`NoteVerifier::open`] will reject it; use [`NoteSigner::try_sign_note`] when the body is
    /// not known to be well-formed.
    pub fn sign_note(&self, body: &str) -> String {
        let sig = self.key.sign(body.as_bytes()).to_bytes();
        let mut raw = Vec::with_capacity(4 + ED25519_SIGNATURE_LEN);
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&sig);
        format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, BASE64.encode(raw))
    }

    /// Like [`NoteSigner::sign_note`], but first checks that `body` is a valid note text.
    pub fn try_sign_note(&self, body: &str) -> Result<String, NoteError> {
        if !body.ends_with('\n') {
            return Err(NoteError::InvalidNoteText("text must end with a newline"));
        }
        if body.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::InvalidNoteText(
                "text contains a control character other than newline",
            ));
        }
        let note = self.sign_note(body);
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::InvalidNoteText("text is too long"));
        }
        Ok(note)
    }

    /// Signs the checkpoint `(self.name(), size, root)` and returns the signed note.
    pub fn sign_checkpoint(&self, size: u64, root: &[u8; 32]) -> String {
        let body = Checkpoint {
            origin: self.name.clone(),
            size,
            root: *root,
        }
        .body();
        self.sign_note(&body)
    }
}

/// Verifies notes signed by one Ed25519 key, identified by key name and key id.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    /// `None` when constructed by [`NoteVerifier::from_public_key`] from bytes that are not a
    /// usable public key; such a verifier rejects every note.
    key: Option<VerifyingKey>,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<8 hex key id>+<base64(0x01 || 32-byte public key)>`.
    pub fn parse(verifier_key: &str) -> Result<Self, NoteError> {
        let (name, rest) = verifier_key
            .split_once('+')
            .ok_or(NoteError::MalformedVerifierKey(
                "expected <name>+<id>+<key>",
            ))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(NoteError::MalformedVerifierKey(
            "expected <name>+<id>+<key>",
        ))?;
        check_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NoteError::MalformedVerifierKey(
                "key id is not 8 hexadecimal digits",
            ));
        }
        let stated = u32::from_str_radix(id_hex, 16)
            .map_err(|_| NoteError::MalformedVerifierKey("key id is not hexadecimal"))?;
        let key = BASE64
            .decode(key_b64)
            .map_err(|_| NoteError::MalformedVerifierKey("key is not valid base64"))?;
        let (&alg, public_key) = key
            .split_first()
            .ok_or(NoteError::MalformedVerifierKey("key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedAlgorithm(alg));
        }
        let public_key: &[u8; 32] = public_key
            .try_into()
            .map_err(|_| NoteError::MalformedVerifierKey("Ed25519 key is not 32 bytes"))?;
        let computed = key_id(name, public_key);
        if computed != stated {
            return Err(NoteError::KeyIdMismatch { stated, computed });
        }
        let key = decode_public_key(public_key).ok_or(NoteError::InvalidPublicKey)?;
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: computed,
            key: Some(key),
        })
    }

    /// A verifier for `public_key` under `name`, with the standard key id.
    ///
    /// Infallible by design: if `name` is not a valid key name or `public_key` is not a usable
    /// Ed25519 key, the verifier simply never accepts a note.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Self {
        NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, public_key),
            key: decode_public_key(public_key),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier key string, if the public key is usable.
    pub fn verifier_key(&self) -> Option<String> {
        self.key
            .map(|k| encode_verifier_key(&self.name, self.key_id, k.as_bytes()))
    }

    /// Opens a signed note given as raw bytes; see [`NoteVerifier::open`].
    pub fn open_bytes(&self, note: &[u8]) -> Result<String, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::NoteTooLarge { size: note.len() });
        }
        let note = std::str::from_utf8(note)
            .map_err(|_| NoteError::MalformedNote("note is not valid UTF-8"))?;
        self.open(note)
    }

    /// Opens a signed note and returns its text (including the final newline).
    ///
    /// The note must be well-formed (no control characters other than newline, text and
    /// signature block separated by the last blank line, every signature line
    /// `— <valid name> <base64 of at least 5 bytes>`, final newline, at most
    /// [`MAX_SIGNATURES`] lines and [`MAX_NOTE_BYTES`] bytes). Lines from other keys (different
    /// name or key id) are ignored; every line from this key must verify, and at least one must
    /// be present.
    pub fn open(&self, note: &str) -> Result<String, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::NoteTooLarge { size: note.len() });
        }
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::MalformedNote(
                "note contains a control character other than newline",
            ));
        }
        let split = note.rfind("\n\n").ok_or(NoteError::MalformedNote(
            "no blank line separating the text from the signatures",
        ))?;
        let text = &note[..split + 1];
        let sigs = note[split + 2..]
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedNote(
                "signature block is empty or does not end with a newline",
            ))?;

        let mut verified = 0usize;
        for (count, line) in sigs.split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let (name, id, sig) = parse_signature_line(line)?;
            if name != self.name || id != self.key_id {
                continue;
            }
            if !self.verify(text.as_bytes(), &sig) {
                return Err(NoteError::InvalidSignature {
                    name: self.name.clone(),
                    key_id: self.key_id,
                });
            }
            verified += 1;
        }
        if verified == 0 {
            return Err(NoteError::NoVerifiedSignature {
                name: self.name.clone(),
                key_id: self.key_id,
            });
        }
        Ok(text.to_owned())
    }

    /// Opens a signed checkpoint: [`NoteVerifier::open`], then [`Checkpoint::parse_body`], and
    /// the checkpoint origin must equal this verifier's key name.
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let text = self.open(note)?;
        let checkpoint = Checkpoint::parse_body(&text)?;
        if checkpoint.origin != self.name {
            return Err(NoteError::OriginMismatch {
                expected: self.name.clone(),
                found: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let (Some(key), Ok(sig)) = (&self.key, <&[u8; ED25519_SIGNATURE_LEN]>::try_from(sig))
        else {
            return false;
        };
        key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok()
    }
}

fn decode_public_key(public_key: &[u8; 32]) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(public_key)
        .ok()
        .filter(|k| !k.is_weak())
}

/// Splits `— <name> <base64>` into name, key id and signature bytes.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or(NoteError::MalformedNote(
            "signature line does not start with an em dash and a space",
        ))?;
    let (name, b64) = rest.split_once(' ').ok_or(NoteError::MalformedNote(
        "signature line has no space between key name and signature",
    ))?;
    if !is_valid_name(name) {
        return Err(NoteError::MalformedNote(
            "signature line has an invalid key name",
        ));
    }
    let raw = BASE64
        .decode(b64)
        .map_err(|_| NoteError::MalformedNote("signature is not valid base64"))?;
    match raw.split_first_chunk::<4>() {
        Some((id, sig)) if !sig.is_empty() => Ok((name, u32::from_be_bytes(*id), sig.to_vec())),
        _ => Err(NoteError::MalformedNote(
            "signature is shorter than 5 bytes",
        )),
    }
}
