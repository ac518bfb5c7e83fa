//! RFC 8785 canonicalization tests: the RFC's own examples, escaping, ordering, number
//! formatting, strict parsing, and the Mobius ledger-format vectors.

use std::path::Path;

use mobius_core::jcs::{self, JcsError, StrictValue};
use serde_json::{Number, Value, json};
use sha2::{Digest, Sha256};

fn canon(v: &Value) -> String {
    String::from_utf8(jcs::to_vec(v).expect("canonicalizable")).expect("JCS output is UTF-8")
}

fn canon_text(text: &str) -> String {
    canon(&jcs::parse_strict(text.as_bytes()).expect("valid JSON"))
}

fn f64_value(bits: u64) -> Value {
    Value::Number(Number::from_f64(f64::from_bits(bits)).expect("finite"))
}

#[test]
fn rfc8785_appendix_b_numbers() {
    let cases: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for &(bits, expected) in cases {
        assert_eq!(canon(&f64_value(bits)), expected, "bits {bits:016x}");
    }
}

#[test]
fn non_finite_numbers_cannot_enter_a_value() {
    // serde_json refuses to hold NaN/Infinity, so JSON input can never reach the encoder with
    // one; the strict parser rejects overflowing literals too.
    assert!(Number::from_f64(f64::NAN).is_none());
    assert!(Number::from_f64(f64::INFINITY).is_none());
    assert!(jcs::parse_strict(b"1e400").is_err());
    assert!(!JcsError::NonFiniteNumber.to_string().is_empty());
}

#[test]
fn numbers_from_json_text() {
    let cases: &[(&str, &str)] = &[
        ("1e21", "1e+21"),
        ("1E21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("1e-7", "1e-7"),
        ("0.0000001", "1e-7"),
        ("0.000001", "0.000001"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("0.0", "0"),
        ("1.0", "1"),
        ("4.50", "4.5"),
        ("2e-3", "0.002"),
        ("1E30", "1e+30"),
        ("333333333.33333329", "333333333.3333333"),
        ("0.000000000000000000000000001", "1e-27"),
        ("9007199254740991", "9007199254740991"),
        ("-9007199254740991", "-9007199254740991"),
        ("9007199254740992.0", "9007199254740992"),
        ("123", "123"),
        ("-123", "-123"),
    ];
    for &(text, expected) in cases {
        assert_eq!(canon_text(text), expected, "input {text}");
    }
}

#[test]
fn parse_strict_floats_are_correctly_rounded() {
    // serde_json's default (non-`float_roundtrip`) parser yields 0x41b3de4355555554 here; the
    // correctly rounded double is 0x41b3de4355555555.
    let v = jcs::parse_strict(b"333333333.33333329").expect("valid");
    assert_eq!(v.as_f64().map(f64::to_bits), Some(0x41b3de4355555555));
    // Number literals are matched to their source text even with digits, minus signs and
    // escaped quotes inside surrounding strings, and integers in between.
    let text = r#"{"a1\"2-3e5": "3\\", "b": [0.1, "x-1e5\"", 7, -8, 333333333.33333329,
        {"c\u0031": 1e21}, 18446744073709551616, -0.0, 5e-324]}"#;
    assert_eq!(
        canon_text(text),
        r#"{"a1\"2-3e5":"3\\","b":[0.1,"x-1e5\"",7,-8,333333333.3333333,{"c1":1e+21},18446744073709552000,0,5e-324]}"#
    );
}

#[test]
fn integers_beyond_2_pow_53_are_rejected() {
    assert_eq!(canon(&json!(9007199254740991u64)), "9007199254740991");
    assert_eq!(canon(&json!(-9007199254740991i64)), "-9007199254740991");
    for v in [
        json!(9007199254740992u64),
        json!(-9007199254740992i64),
        json!(u64::MAX),
        json!(i64::MIN),
        json!({"nested": [1, 2, 12345678901234567890u64]}),
    ] {
        let err = jcs::to_vec(&v).expect_err("out of range");
        assert!(matches!(err, JcsError::IntegerOutOfRange(_)), "{err:?}");
        assert!(err.to_string().contains("use a string"), "{err}");
    }
    let err = jcs::to_vec(&json!(u64::MAX)).expect_err("out of range");
    assert_eq!(err, JcsError::IntegerOutOfRange(u64::MAX.to_string()));
}

#[test]
fn write_appends_and_leaves_output_untouched_on_error() {
    let mut out = b"prefix:".to_vec();
    jcs::write(&json!({"b": 1, "a": [true, null]}), &mut out).expect("ok");
    assert_eq!(out, br#"prefix:{"a":[true,null],"b":1}"#);

    let mut out = b"prefix:".to_vec();
    let bad = json!({"a": "long string written before the failure", "b": 9007199254740993u64});
    assert!(jcs::write(&bad, &mut out).is_err());
    assert_eq!(out, b"prefix:");
}

#[test]
fn rfc8785_section_3_2_2_example() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    assert_eq!(canon_text(input), expected);
}

#[test]
fn rfc8785_sorting_example_uses_utf16_order() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let expected = concat!(
        "{\"\\r\":\"Carriage Return\",",
        "\"1\":\"One\",",
        "\"\u{80}\":\"Control\",",
        "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",",
        "\"\u{20ac}\":\"Euro Sign\",",
        "\"\u{1f600}\":\"Emoji: Grinning Face\",",
        "\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
    assert_eq!(canon_text(input), expected);
}

#[test]
fn supplementary_characters_sort_before_high_bmp() {
    // UTF-8 byte order would put U+10000 (F0 ..) after U+FFFF (EF ..) and U+E000 (EE ..);
    // UTF-16 order puts its lead surrogate D800 before both.
    let v = json!({"\u{ffff}": 3, "\u{e000}": 2, "\u{10000}": 1, "z": 0});
    assert_eq!(
        canon(&v),
        "{\"z\":0,\"\u{10000}\":1,\"\u{e000}\":2,\"\u{ffff}\":3}"
    );
}

#[test]
fn key_ordering_is_by_code_unit_not_locale() {
    let v = json!({"b": 1, "a": 2, "B": 3, "aa": 4, "": 5, "a\u{0}": 6, "10": 7, "9": 8});
    assert_eq!(
        canon(&v),
        r#"{"":5,"10":7,"9":8,"B":3,"a":2,"a\u0000":6,"aa":4,"b":1}"#
    );
}

#[test]
fn string_escaping() {
    let mut all_controls = String::new();
    for c in 0u8..0x20 {
        all_controls.push(char::from(c));
    }
    let expected_controls = concat!(
        "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007",
        "\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f",
        "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017",
        "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\""
    );
    assert_eq!(canon(&Value::String(all_controls)), expected_controls);

    let cases: &[(&str, &str)] = &[
        ("", r#""""#),
        ("plain", r#""plain""#),
        ("quote\"back\\slash", r#""quote\"back\\slash""#),
        ("slash/stays", r#""slash/stays""#),
        // DEL, line/paragraph separators and non-ASCII are literal UTF-8.
        ("\u{7f}\u{2028}\u{2029}", "\"\u{7f}\u{2028}\u{2029}\""),
        ("é€😀", "\"é€😀\""),
        ("<script>&'", "\"<script>&'\""),
    ];
    for &(input, expected) in cases {
        assert_eq!(canon(&json!(input)), expected, "input {input:?}");
    }
    // Keys are escaped the same way as values.
    assert_eq!(canon(&json!({"a\"\n": "\u{1}"})), r#"{"a\"\n":"\u0001"}"#);
}

#[test]
fn nested_arrays_and_objects() {
    let v = json!({
        "z": [3, {"y": [], "x": {}}, [[[]]], "s"],
        "a": {"c": {"e": null, "d": false}, "b": [1.5, -2, true]},
    });
    assert_eq!(
        canon(&v),
        r#"{"a":{"b":[1.5,-2,true],"c":{"d":false,"e":null}},"z":[3,{"x":{},"y":[]},[[[]]],"s"]}"#
    );
    assert_eq!(canon(&json!([])), "[]");
    assert_eq!(canon(&json!({})), "{}");
    assert_eq!(canon(&json!(null)), "null");
    assert_eq!(canon(&json!(true)), "true");
}

#[test]
fn whitespace_is_removed() {
    let input = " \n\t{ \"b\" : [ 1 , 2 ] ,\r\n \"a\" : \"x y\" }\n ";
    assert_eq!(canon_text(input), r#"{"a":"x y","b":[1,2]}"#);
}

#[test]
fn canonical_form_is_idempotent() {
    let input = r#"{"k":[1e21,0.1,{"\u00e9":"x","e":"y"}],"a":"\u2028"}"#;
    let once = canon_text(input);
    assert_eq!(canon_text(&once), once);
}

#[test]
fn duplicate_keys_rejected_at_any_depth() {
    let bad: &[&str] = &[
        r#"{"a":1,"a":2}"#,
        r#"{"a":1,"b":2,"a":1}"#,
        r#"{"x":{"a":1,"a":2}}"#,
        r#"[0,[{"ok":true},{"k":1,"k":1}]]"#,
        r#"{"a":{"b":[{"c":[{"d":1,"d":2}]}]}}"#,
        // Duplicates are detected after unescaping.
        r#"{"a":1,"\u0061":2}"#,
        r#"{"\ud83d\ude00":1,"😀":2}"#,
    ];
    for input in bad {
        let err = jcs::parse_strict(input.as_bytes()).expect_err(input);
        assert!(err.to_string().contains("duplicate"), "{input}: {err}");
        assert!(
            serde_json::from_str::<StrictValue>(input).is_err(),
            "{input}"
        );
        // Plain serde_json would have silently accepted it.
        assert!(serde_json::from_str::<Value>(input).is_ok(), "{input}");
    }

    let ok: &[&str] = &[
        r#"{"a":{"a":{"a":1}}}"#,
        r#"[{"a":1},{"a":2}]"#,
        r#"{"a":1,"A":2,"a ":3}"#,
    ];
    for input in ok {
        let strict = jcs::parse_strict(input.as_bytes()).expect(input);
        let lax: Value = serde_json::from_str(input).expect(input);
        assert_eq!(strict, lax, "{input}");
    }
}

#[test]
fn parse_strict_rejects_invalid_json() {
    for input in [
        &b""[..],
        b"{",
        b"[1,]",
        b"{\"a\":1} x",
        b"\"\\ud800\"",
        b"\"\xff\"",
        b"NaN",
    ] {
        assert!(jcs::parse_strict(input).is_err(), "{input:?}");
    }
}

#[test]
fn strict_value_round_trips_through_serde() {
    let text = r#"{"a":[1,-2,3.5,"s",null,true,{"b":{}}]}"#;
    let v: StrictValue = serde_json::from_str(text).expect("valid");
    assert_eq!(v.0, serde_json::from_str::<Value>(text).expect("valid"));
    assert_eq!(serde_json::to_string(&v).expect("serializable"), text);
    // Also works nested inside other serde types.
    let wrapped: Vec<StrictValue> = serde_json::from_str("[{\"x\":1},2]").expect("valid");
    assert_eq!(wrapped.len(), 2);
    assert!(serde_json::from_str::<Vec<StrictValue>>("[{\"x\":1,\"x\":2}]").is_err());
}

fn ledger_vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/mobius-vectors/ledger-format.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    jcs::parse_strict(&text).expect("vector file is valid JSON without duplicate keys")
}

#[test]
fn ledger_format_vectors_leaf_data_and_hashes() {
    let vectors = ledger_vectors();
    let entries = vectors["entries"].as_array().expect("entries array");
    assert_eq!(entries.len(), 3);
    for (i, e) in entries.iter().enumerate() {
        let leaf = jcs::to_vec(&e["entry"]).expect("canonicalizable entry");
        let expected = e["leaf_data_utf8"].as_str().expect("leaf_data_utf8");
        assert_eq!(
            String::from_utf8_lossy(&leaf),
            expected,
            "entry {i} leaf data"
        );
        assert_eq!(leaf, expected.as_bytes(), "entry {i} leaf data bytes");

        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(&leaf);
        let leaf_hash: [u8; 32] = h.finalize().into();
        assert_eq!(
            hex::encode(leaf_hash),
            e["leaf_hash_hex"].as_str().expect("leaf_hash_hex"),
            "entry {i} leaf hash"
        );

        // The leaf data is itself canonical.
        let reparsed = jcs::parse_strict(expected.as_bytes()).expect("leaf data is JSON");
        assert_eq!(jcs::to_vec(&reparsed).expect("ok"), expected.as_bytes());
    }
}
