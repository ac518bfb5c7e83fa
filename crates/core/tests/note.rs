//! Signed-note and checkpoint tests against the Mobius ledger-format vectors and the examples
//! of Go's golang.org/x/mod/sumdb/note (the reference implementation).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mobius_core::note::{
    self, Checkpoint, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, NoteSigner, NoteVerifier,
};
use serde_json::Value;

struct Vectors {
    seed: [u8; 32],
    public_key_hex: String,
    origin: String,
    key_id_hex: String,
    verifier_key: String,
    tree_size: u64,
    root: [u8; 32],
    checkpoint_note: String,
}

fn vectors() -> Vectors {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/mobius-vectors/ledger-format.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k}")).to_owned();
    let h32 = |k: &str| -> [u8; 32] {
        hex::decode(s(k))
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    };
    Vectors {
        seed: h32("ed25519_seed_hex"),
        public_key_hex: s("ed25519_public_key_hex"),
        origin: s("origin"),
        key_id_hex: s("key_id_hex"),
        verifier_key: s("verifier_key"),
        tree_size: v["tree_size"].as_u64().expect("tree_size"),
        root: h32("root_hash_hex"),
        checkpoint_note: s("checkpoint_note"),
    }
}

fn signer() -> NoteSigner {
    let v = vectors();
    NoteSigner::from_seed(&v.origin, &v.seed).expect("valid signer")
}

fn verifier() -> NoteVerifier {
    NoteVerifier::parse(&vectors().verifier_key).expect("valid verifier key")
}

/// Splits a signed note into (text, signature lines without trailing newlines).
fn split_note(note: &str) -> (&str, Vec<&str>) {
    let i = note.rfind("\n\n").expect("separator");
    let sigs = note[i + 2..].strip_suffix('\n').expect("final newline");
    (&note[..i + 1], sigs.split('\n').collect())
}

/// Decodes the base64 part of a signature line.
fn sig_bytes(line: &str) -> Vec<u8> {
    let b64 = line.rsplit(' ').next().expect("b64");
    BASE64.decode(b64).expect("base64")
}

fn sig_line(name: &str, raw: &[u8]) -> String {
    format!("\u{2014} {name} {}", BASE64.encode(raw))
}

// ---------------------------------------------------------------------------------------------
// Vectors

#[test]
fn vector_key_material() {
    let v = vectors();
    let s = signer();
    assert_eq!(s.name(), v.origin);
    assert_eq!(hex::encode(s.public_key()), v.public_key_hex);
    assert_eq!(format!("{:08x}", s.key_id()), v.key_id_hex);
    assert_eq!(note::key_id(&v.origin, &s.public_key()), s.key_id());
    assert_eq!(s.verifier_key(), v.verifier_key);
}

#[test]
fn vector_checkpoint_note_is_reproduced_byte_for_byte() {
    let v = vectors();
    let note = signer().sign_checkpoint(v.tree_size, &v.root);
    assert_eq!(note, v.checkpoint_note);
    assert_eq!(note.as_bytes(), v.checkpoint_note.as_bytes());
}

#[test]
fn vector_verifier_key_opens_vector_note() {
    let v = vectors();
    let ver = verifier();
    assert_eq!(ver.name(), v.origin);
    assert_eq!(format!("{:08x}", ver.key_id()), v.key_id_hex);
    assert_eq!(ver.verifier_key().as_deref(), Some(v.verifier_key.as_str()));

    let body = ver.open(&v.checkpoint_note).expect("opens");
    let expected = Checkpoint {
        origin: v.origin.clone(),
        size: v.tree_size,
        root: v.root,
    };
    assert_eq!(body, expected.body());
    assert_eq!(ver.open_bytes(v.checkpoint_note.as_bytes()), Ok(body));
    assert_eq!(ver.verify_checkpoint(&v.checkpoint_note), Ok(expected));

    // The same verifier built from raw key material, and from the signer, agree.
    let pk: [u8; 32] = hex::decode(&v.public_key_hex)
        .expect("hex")
        .try_into()
        .expect("32");
    let from_pk = NoteVerifier::from_public_key(&v.origin, &pk);
    assert_eq!(from_pk.key_id(), ver.key_id());
    assert!(from_pk.verify_checkpoint(&v.checkpoint_note).is_ok());
    assert!(
        signer()
            .verifier()
            .verify_checkpoint(&v.checkpoint_note)
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// Go reference examples (golang.org/x/mod/sumdb/note package documentation)

const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_SIG_LINE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const GO_ENOCH_LINE: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn go_reference_example_signs_and_opens() {
    let skey = BASE64.decode(GO_SKEY_B64).expect("base64");
    assert_eq!(skey[0], 1);
    let seed: [u8; 32] = skey[1..].try_into().expect("32 bytes");
    let signer = NoteSigner::from_seed("PeterNeumann", &seed).expect("signer");
    assert_eq!(signer.verifier_key(), GO_VKEY);

    let expected = format!("{GO_TEXT}\n{GO_SIG_LINE}");
    assert_eq!(signer.sign_note(GO_TEXT), expected);
    assert_eq!(signer.try_sign_note(GO_TEXT).as_ref(), Ok(&expected));

    let ver = NoteVerifier::parse(GO_VKEY).expect("vkey");
    assert_eq!(ver.open(&expected).as_deref(), Ok(GO_TEXT));

    // Doubly signed: the unknown EnochRoot signature is ignored, whichever order.
    let double = format!("{GO_TEXT}\n{GO_SIG_LINE}{GO_ENOCH_LINE}");
    assert_eq!(ver.open(&double).as_deref(), Ok(GO_TEXT));
    let double = format!("{GO_TEXT}\n{GO_ENOCH_LINE}{GO_SIG_LINE}");
    assert_eq!(ver.open(&double).as_deref(), Ok(GO_TEXT));
    // ...but it cannot stand in for ours.
    let only_enoch = format!("{GO_TEXT}\n{GO_ENOCH_LINE}");
    assert!(matches!(
        ver.open(&only_enoch),
        Err(NoteError::NoVerifiedSignature { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Signing and round trips

#[test]
fn sign_and_open_round_trip() {
    let s = signer();
    let ver = s.verifier();
    for body in [
        "a\n",
        "\n",
        "multi\n\nparagraph\n\n\ntext\n",
        "unicode é € 😀 \u{7f}\n",
    ] {
        let note = s.try_sign_note(body).expect("valid text");
        assert_eq!(ver.open(&note).as_deref(), Ok(body), "{body:?}");
    }
    for (size, root) in [(0u64, [0u8; 32]), (1, [0xff; 32]), (u64::MAX, [7; 32])] {
        let note = s.sign_checkpoint(size, &root);
        let cp = ver.verify_checkpoint(&note).expect("verifies");
        assert_eq!(
            (cp.origin.as_str(), cp.size, cp.root),
            (s.name(), size, root)
        );
    }
}

#[test]
fn signer_rejects_invalid_names() {
    let seed = [1u8; 32];
    for name in [
        "",
        "a b",
        "a+b",
        "a\tb",
        "a\nb",
        "a\u{2003}b",
        "a\u{a0}b",
        "a\u{1}b",
        "+",
    ] {
        assert!(
            matches!(
                NoteSigner::from_seed(name, &seed),
                Err(NoteError::InvalidKeyName(_))
            ),
            "{name:?}"
        );
    }
    for name in ["a", "example.com/log", "é/😀", "a-b_c:d"] {
        assert!(NoteSigner::from_seed(name, &seed).is_ok(), "{name:?}");
    }
}

#[test]
fn try_sign_note_rejects_unsignable_text() {
    let s = signer();
    for body in ["", "no newline", "ctrl\r\n", "tab\t\n"] {
        assert!(
            matches!(s.try_sign_note(body), Err(NoteError::InvalidNoteText(_))),
            "{body:?}"
        );
    }
    let huge = "x".repeat(MAX_NOTE_BYTES) + "\n";
    assert!(matches!(
        s.try_sign_note(&huge),
        Err(NoteError::InvalidNoteText(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Negative cases: tampering

#[test]
fn flipped_bit_in_signature_fails() {
    let v = vectors();
    let (text, lines) = split_note(&v.checkpoint_note);
    let raw = sig_bytes(lines[0]);
    for (byte, bit) in [(4usize, 0u8), (20, 3), (35, 7), (36, 0), (67, 7)] {
        let mut bad = raw.clone();
        bad[byte] ^= 1 << bit;
        let note = format!("{text}\n{}\n", sig_line(&v.origin, &bad));
        assert_eq!(
            verifier().open(&note),
            Err(NoteError::InvalidSignature {
                name: v.origin.clone(),
                key_id: verifier().key_id()
            }),
            "byte {byte} bit {bit}"
        );
    }
    // A flipped bit in the key id makes it another key's signature: ignored, so nothing
    // verifies.
    let mut bad = raw.clone();
    bad[0] ^= 0x80;
    let note = format!("{text}\n{}\n", sig_line(&v.origin, &bad));
    assert!(matches!(
        verifier().open(&note),
        Err(NoteError::NoVerifiedSignature { .. })
    ));
    // Truncated or extended signature with the right key id.
    for bad in [&raw[..67], &[raw.as_slice(), &[0]].concat()[..]] {
        let note = format!("{text}\n{}\n", sig_line(&v.origin, bad));
        assert!(matches!(
            verifier().open(&note),
            Err(NoteError::InvalidSignature { .. })
        ));
    }
}

#[test]
fn changed_body_fails() {
    let v = vectors();
    let (text, lines) = split_note(&v.checkpoint_note);
    let sig = lines[0];
    let other_root = BASE64.encode([0u8; 32]);
    let root_b64 = BASE64.encode(v.root);
    let tampered = [
        text.replace("\n3\n", "\n4\n"),
        text.replace(&root_b64, &other_root),
        text.replace(&v.origin, "mobius.local/other-ledger"),
        format!("{text}extension\n"),
        text.trim_end_matches('\n').to_owned() + "\n\n",
    ];
    for body in tampered {
        assert_ne!(body, text);
        let note = format!("{body}\n{sig}\n");
        assert!(
            matches!(
                verifier().open(&note),
                Err(NoteError::InvalidSignature { .. })
            ),
            "{body:?}"
        );
        assert!(verifier().verify_checkpoint(&note).is_err());
    }
}

#[test]
fn validly_signed_checkpoint_with_other_origin_is_rejected() {
    let s = signer();
    let body = Checkpoint {
        origin: "mobius.local/other-ledger".into(),
        size: 3,
        root: [9; 32],
    }
    .body();
    let note = s.sign_note(&body);
    assert_eq!(verifier().open(&note).as_deref(), Ok(body.as_str()));
    assert_eq!(
        verifier().verify_checkpoint(&note),
        Err(NoteError::OriginMismatch {
            expected: s.name().to_owned(),
            found: "mobius.local/other-ledger".into()
        })
    );
}

#[test]
fn signature_from_another_key_with_same_name_fails() {
    let v = vectors();
    let impostor = NoteSigner::from_seed(&v.origin, &[0x42; 32]).expect("signer");
    assert_ne!(impostor.key_id(), verifier().key_id());
    let note = impostor.sign_checkpoint(v.tree_size, &v.root);
    // Different key id: the line is from an unknown key and is ignored.
    assert_eq!(
        verifier().verify_checkpoint(&note),
        Err(NoteError::NoVerifiedSignature {
            name: v.origin.clone(),
            key_id: verifier().key_id()
        })
    );

    // Impostor signature relabelled with our key id: must fail verification.
    let (text, lines) = split_note(&note);
    let mut raw = sig_bytes(lines[0]);
    raw[..4].copy_from_slice(&verifier().key_id().to_be_bytes());
    let forged = format!("{text}\n{}\n", sig_line(&v.origin, &raw));
    assert!(matches!(
        verifier().verify_checkpoint(&forged),
        Err(NoteError::InvalidSignature { .. })
    ));

    // Our signature under another name (same key id) is not ours either.
    let (text, lines) = split_note(&v.checkpoint_note);
    let renamed = format!(
        "{text}\n{}\n",
        sig_line("mobius.local/x", &sig_bytes(lines[0]))
    );
    assert!(matches!(
        verifier().open(&renamed),
        Err(NoteError::NoVerifiedSignature { .. })
    ));
}

#[test]
fn bad_signature_line_alongside_good_one_rejects_note() {
    let v = vectors();
    let (text, lines) = split_note(&v.checkpoint_note);
    let mut bad = sig_bytes(lines[0]);
    bad[10] ^= 1;
    let bad_line = sig_line(&v.origin, &bad);
    // Every signature from the verifier's key must verify, whatever the order.
    for note in [
        format!("{text}\n{}\n{bad_line}\n", lines[0]),
        format!("{text}\n{bad_line}\n{}\n", lines[0]),
    ] {
        assert!(matches!(
            verifier().open(&note),
            Err(NoteError::InvalidSignature { .. })
        ));
    }
    // A duplicated good line is fine.
    let dup = format!("{text}\n{0}\n{0}\n", lines[0]);
    assert!(verifier().open(&dup).is_ok());
}

#[test]
fn cosignatures_from_other_keys_are_ignored() {
    let v = vectors();
    let witness = NoteSigner::from_seed("witness.example/w1", &[7; 32]).expect("signer");
    let (text, lines) = split_note(&v.checkpoint_note);
    let wnote = witness.sign_note(text);
    let (_, wlines) = split_note(&wnote);
    // Syntactically valid lines from unknown keys, even with invalid signatures, are ignored.
    let junk = sig_line("someone.else", &[1, 2, 3, 4, 5]);
    let note = format!("{text}\n{}\n{}\n{junk}\n", wlines[0], lines[0]);
    assert_eq!(verifier().open(&note).as_deref(), Ok(text));
    assert_eq!(witness.verifier().open(&note).as_deref(), Ok(text));
}

// ---------------------------------------------------------------------------------------------
// Negative cases: malformed notes

fn assert_malformed(note: &str) {
    match verifier().open(note) {
        Err(NoteError::MalformedNote(_)) => {}
        other => panic!("expected MalformedNote for {note:?}, got {other:?}"),
    }
}

#[test]
fn missing_final_newline_fails() {
    let v = vectors();
    let note = v.checkpoint_note.strip_suffix('\n').expect("newline");
    assert_malformed(note);
    assert_malformed(&format!("{note}\r\n"));
}

#[test]
fn note_without_signature_lines_fails() {
    let v = vectors();
    let (text, _) = split_note(&v.checkpoint_note);
    assert_malformed(text);
    assert_malformed(&format!("{text}\n"));
    assert_malformed("");
    assert_malformed("\n");
    assert_malformed("\n\n");
}

#[test]
fn malformed_signature_lines_fail() {
    let v = vectors();
    let (text, lines) = split_note(&v.checkpoint_note);
    let b64 = lines[0].rsplit(' ').next().expect("b64");
    let bad_lines = [
        format!("- {} {b64}", v.origin),
        format!("\u{2014}{} {b64}", v.origin),
        format!("\u{2014}  {} {b64}", v.origin),
        format!("\u{2014} {}", v.origin),
        format!("\u{2014} {} ", v.origin),
        format!("\u{2014} {} {b64} ", v.origin),
        format!("\u{2014} {} {b64}x", v.origin),
        format!("\u{2014} {} !!!garbage!!!", v.origin),
        format!("\u{2014} {} {}", v.origin, &b64[..b64.len() - 1]),
        format!("\u{2014} {} {}", v.origin, b64.trim_end_matches('=')),
        format!("\u{2014} a+b {b64}"),
        format!("\u{2014}  {b64}"),
        sig_line(&v.origin, &[1, 2, 3, 4]),
        String::new(),
    ];
    for line in &bad_lines {
        // Malformed lines reject the note even when a valid signature is also present.
        assert_malformed(&format!("{text}\n{line}\n"));
        assert_malformed(&format!("{text}\n{}\n{line}\n", lines[0]));
    }
}

#[test]
fn non_canonical_base64_in_signature_fails() {
    let v = vectors();
    let (text, lines) = split_note(&v.checkpoint_note);
    // 68 bytes encode to 92 chars with one '=': the last data char carries 2 unused bits.
    let b64 = lines[0].rsplit(' ').next().expect("b64");
    let mut chars: Vec<char> = b64.chars().collect();
    let last = chars.len() - 2;
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let idx = alphabet.find(chars[last]).expect("alphabet");
    chars[last] = alphabet.as_bytes()[idx ^ 1] as char;
    let b64: String = chars.into_iter().collect();
    assert_malformed(&format!("{text}\n\u{2014} {} {b64}\n", v.origin));
}

#[test]
fn control_characters_and_non_utf8_fail() {
    let v = vectors();
    assert_malformed(&v.checkpoint_note.replacen('\n', "\r\n", 1));
    assert_malformed(&format!("tab\there\n{}", v.checkpoint_note));
    assert_malformed(&format!("\u{0}{}", v.checkpoint_note));

    let mut bytes = v.checkpoint_note.clone().into_bytes();
    bytes.insert(0, 0xff);
    assert!(matches!(
        verifier().open_bytes(&bytes),
        Err(NoteError::MalformedNote(_))
    ));
}

#[test]
fn over_long_notes_and_too_many_signatures_fail() {
    let v = vectors();
    let (text, lines) = split_note(&v.checkpoint_note);

    let long = format!("{}{}", "x\n".repeat(MAX_NOTE_BYTES / 2), v.checkpoint_note);
    assert!(matches!(
        verifier().open(&long),
        Err(NoteError::NoteTooLarge { .. })
    ));
    assert!(matches!(
        verifier().open_bytes(long.as_bytes()),
        Err(NoteError::NoteTooLarge { .. })
    ));

    let other = sig_line("witness.example", &[1, 2, 3, 4, 5]);
    let mut note = format!("{text}\n");
    for _ in 0..MAX_SIGNATURES {
        note.push_str(&other);
        note.push('\n');
    }
    note.push_str(lines[0]);
    note.push('\n');
    assert_eq!(verifier().open(&note), Err(NoteError::TooManySignatures));

    // At least 16 signatures must be accepted (signed-note spec).
    let mut note = format!("{text}\n");
    for _ in 0..15 {
        note.push_str(&other);
        note.push('\n');
    }
    note.push_str(lines[0]);
    note.push('\n');
    assert!(verifier().open(&note).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Verifier keys

#[test]
fn verifier_key_parsing() {
    let v = vectors();
    let good = v.verifier_key.as_str();
    let (name, rest) = good.split_once('+').expect("+");
    let (id, key) = rest.split_once('+').expect("+");

    // Wrong key id.
    let wrong_id = format!("{name}+f76d2e91+{key}");
    assert!(matches!(
        NoteVerifier::parse(&wrong_id),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    // Key id under another name.
    assert!(matches!(
        NoteVerifier::parse(&format!("other.name+{id}+{key}")),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    // Upper-case hex is accepted (as in Go).
    let upper = format!("{name}+{}+{key}", id.to_uppercase());
    assert_eq!(
        NoteVerifier::parse(&upper).map(|k| k.key_id()),
        Ok(0xf76d2e90)
    );

    // Bad algorithm byte.
    let mut raw = BASE64.decode(key).expect("b64");
    raw[0] = 0x02;
    let bad_alg = format!("{name}+{id}+{}", BASE64.encode(&raw));
    assert_eq!(
        NoteVerifier::parse(&bad_alg).map(|k| k.key_id()),
        Err(NoteError::UnsupportedAlgorithm(2))
    );

    let malformed = [
        String::new(),
        name.to_owned(),
        format!("{name}+{id}"),
        format!("{name}+{id}+"),
        format!("{name}+{id}+!!!garbage!!!"),
        format!("{name}+{id}+{}", &key[..key.len() - 1]),
        format!("{name}+{}+{key}", &id[..7]),
        format!("{name}+{id}0+{key}"),
        format!("{name}+zzzzzzzz+{key}"),
        format!("{name}++76d2e90+{key}"),
        format!("{name}+{id}+{}", BASE64.encode([1u8; 32])),
        format!(
            "{name}+{id}+{}",
            BASE64.encode([[1u8].as_slice(), &[0; 33]].concat())
        ),
        format!("+{id}+{key}"),
        format!("a b+{id}+{key}"),
    ];
    for k in &malformed {
        let err = NoteVerifier::parse(k).expect_err(k);
        assert!(
            matches!(
                err,
                NoteError::MalformedVerifierKey(_) | NoteError::InvalidKeyName(_)
            ),
            "{k}: {err:?}"
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn verifier_key_with_unusable_public_key_is_rejected() {
    // The identity point (small order) is a valid encoding but a weak key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let id = note::key_id("weak", &identity);
    let vkey = format!(
        "weak+{id:08x}+{}",
        BASE64.encode([[1u8].as_slice(), &identity].concat())
    );
    assert_eq!(
        NoteVerifier::parse(&vkey).err(),
        Some(NoteError::InvalidPublicKey)
    );
    let ver = NoteVerifier::from_public_key("weak", &identity);
    assert_eq!(ver.verifier_key(), None);
    let note = format!(
        "weak\n0\n{}\n\n{}\n",
        BASE64.encode([0u8; 32]),
        sig_line("weak", &[id.to_be_bytes().as_slice(), &[0; 64]].concat())
    );
    assert!(matches!(
        ver.open(&note),
        Err(NoteError::InvalidSignature { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Checkpoint bodies

#[test]
fn checkpoint_body_format_and_parse() {
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size: 20852163,
        root: [0xab; 32],
    };
    let body = cp.body();
    assert_eq!(
        body,
        format!("example.com/log\n20852163\n{}\n", BASE64.encode([0xab; 32]))
    );
    assert_eq!(Checkpoint::parse_body(&body), Ok(cp.clone()));
    // Extension lines are allowed and ignored.
    assert_eq!(
        Checkpoint::parse_body(&format!("{body}ext one\next two\n")),
        Ok(cp.clone())
    );
    let zero = Checkpoint {
        size: 0,
        ..cp.clone()
    };
    assert_eq!(Checkpoint::parse_body(&zero.body()), Ok(zero));
    let max = format!("o\n{}\n{}\n", u64::MAX, BASE64.encode([0u8; 32]));
    assert_eq!(Checkpoint::parse_body(&max).map(|c| c.size), Ok(u64::MAX));
}

#[test]
fn malformed_checkpoint_bodies_fail() {
    let root = BASE64.encode([1u8; 32]);
    let bad = [
        String::new(),
        "\n".to_owned(),
        format!("o\n3\n{root}"),
        format!("\n3\n{root}\n"),
        format!("o\n03\n{root}\n"),
        format!("o\n00\n{root}\n"),
        format!("o\n+3\n{root}\n"),
        format!("o\n-3\n{root}\n"),
        format!("o\n 3\n{root}\n"),
        format!("o\n3 \n{root}\n"),
        format!("o\n0x3\n{root}\n"),
        format!("o\n\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        "o\n3\n".to_owned(),
        "o\n3\n\n".to_owned(),
        "o\n".to_owned(),
        format!("o\n3\n{}\n", BASE64.encode([1u8; 31])),
        format!("o\n3\n{}\n", BASE64.encode([1u8; 33])),
        format!("o\n3\n{}\n", hex::encode([1u8; 32])),
        format!("o\n3\n{}\n", root.trim_end_matches('=')),
        format!("o\n3\n{root}\n\n"),
        format!("o\n3\n{root}\next\n\n"),
        format!("o\n3\n{root}\n\next\n"),
    ];
    for body in &bad {
        assert!(
            matches!(
                Checkpoint::parse_body(body),
                Err(NoteError::MalformedCheckpoint(_))
            ),
            "{body:?}"
        );
    }
}

#[test]
fn signed_checkpoint_with_non_canonical_size_fails() {
    let v = vectors();
    let s = signer();
    let body = format!("{}\n03\n{}\n", v.origin, BASE64.encode(v.root));
    let note = s.sign_note(&body);
    // The signature is fine; the body is not a valid checkpoint.
    assert_eq!(verifier().open(&note).as_deref(), Ok(body.as_str()));
    assert!(matches!(
        verifier().verify_checkpoint(&note),
        Err(NoteError::MalformedCheckpoint(_))
    ));
}

#[test]
fn errors_have_clear_messages() {
    let msgs = [
        NoteError::InvalidKeyName("a b".into()).to_string(),
        NoteError::KeyIdMismatch {
            stated: 1,
            computed: 2,
        }
        .to_string(),
        NoteError::NoVerifiedSignature {
            name: "n".into(),
            key_id: 0xf76d2e90,
        }
        .to_string(),
        NoteError::UnsupportedAlgorithm(2).to_string(),
    ];
    assert!(msgs[0].contains("a b"));
    assert!(msgs[1].contains("00000001") && msgs[1].contains("00000002"));
    assert!(msgs[2].contains("n+f76d2e90"));
    assert!(msgs[3].contains("0x02"));
}
