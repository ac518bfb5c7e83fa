//! RFC 8785 JSON Canonicalization Scheme (JCS) over [`serde_json::Value`].
//!
//! The canonical form is what Mobius hashes into the log, so it must be byte-for-byte
//! reproducible by any conforming implementation:
//!
//! * no insignificant whitespace;
//! * object members sorted by the UTF-16 code units of their names (not by UTF-8 bytes — the
//!   two orders differ for characters above U+FFFF versus U+E000..=U+FFFF);
//! * strings escape only `"`, `\` and control characters below U+0020 (`\b \t \n \f \r`
//!   short forms, `\u00xx` with lowercase hex otherwise); everything else, including U+007F
//!   and U+2028/U+2029, is written as literal UTF-8;
//! * numbers are written as ECMAScript `Number.prototype.toString` would write the IEEE-754
//!   double (via `ryu_js`), so `1e21` becomes `1e+21` and `-0` becomes `0`.
//!
//! Integers that serde_json holds as `i64`/`u64` are written exactly when
//! `|v| <= 2^53 - 1`; larger magnitudes are rejected with [`JcsError::IntegerOutOfRange`]
//! because they cannot round-trip through a double (I-JSON, RFC 7493): carry them as strings.
//!
//! serde_json silently keeps the last of duplicate object keys, which would make the canonical
//! form of untrusted input ambiguous. Use [`parse_strict`] (or deserialize [`StrictValue`]) to
//! reject duplicates at any depth.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// Largest integer magnitude that survives a round trip through an IEEE-754 double:
/// `2^53 - 1` (ECMAScript `Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why a value has no RFC 8785 canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JcsError {
    /// An integer whose magnitude exceeds `2^53 - 1`; the decimal text of the integer.
    IntegerOutOfRange(String),
    /// NaN or an infinity (JSON cannot represent them).
    NonFiniteNumber,
    /// A number representation this module does not understand (e.g. serde_json's
    /// `arbitrary_precision` form that is none of i64/u64/f64).
    UnsupportedNumber(String),
}

impl fmt::Display for JcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JcsError::IntegerOutOfRange(n) => write!(
                f,
                "integer {n} is outside the range ±(2^53-1) and cannot be represented exactly \
                 as an IEEE-754 double; use a string for such values"
            ),
            JcsError::NonFiniteNumber => {
                write!(f, "non-finite number (NaN or infinity) has no JSON form")
            }
            JcsError::UnsupportedNumber(n) => {
                write!(f, "unsupported number representation {n}")
            }
        }
    }
}

impl std::error::Error for JcsError {}

/// Returns the RFC 8785 canonical serialization of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

/// Appends the RFC 8785 canonical serialization of `value` to `out`.
///
/// On error, `out` is restored to its original length (nothing is appended).
pub fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), JcsError> {
    let start = out.len();
    let result = write_value(value, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), JcsError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), JcsError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // Names are unique within a Map, so an unstable sort is deterministic.
    members.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push(b'{');
    for (i, (name, member)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(name, out);
        out.push(b':');
        write_value(member, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), JcsError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(JcsError::IntegerOutOfRange(u.to_string()));
        }
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(JcsError::IntegerOutOfRange(i.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        if !f.is_finite() {
            return Err(JcsError::NonFiniteNumber);
        }
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format_finite(f).as_bytes());
    } else {
        return Err(JcsError::UnsupportedNumber(n.to_string()));
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // Bytes >= 0x80 belong to multi-byte UTF-8 sequences and are copied verbatim.
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        } else {
            out.extend_from_slice(short);
        }
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// A [`serde_json::Value`] whose `Deserialize` implementation rejects duplicate object keys
/// at any depth (keys are compared after unescaping, so `"a"` and `"\u0061"` collide).
///
/// `Serialize` is transparent: it serializes the inner value.
///
/// Floating-point literals are taken as the deserializer reports them. serde_json's default
/// float parser is only "best effort" (it can be one ULP off, e.g. `333333333.33333329`)
/// unless its `float_roundtrip` feature is enabled; [`parse_strict`] does not depend on that
/// feature, as it re-parses every float literal from the source text with a correctly rounded
/// parser.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictValue(pub Value);

impl From<StrictValue> for Value {
    fn from(v: StrictValue) -> Self {
        v.0
    }
}

impl Serialize for StrictValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StrictSeed { literals: None }
            .deserialize(deserializer)
            .map(StrictValue)
    }
}

/// Parses JSON text like [`serde_json::from_slice`], but rejects duplicate object keys at any
/// depth, and parses floating-point numbers with correct rounding (independently of serde_json's
/// `float_roundtrip` feature), so the result canonicalizes exactly as in other RFC 8785
/// implementations.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let literals = NumberLiterals {
        text: bytes,
        pos: Cell::new(0),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed {
        literals: Some(&literals),
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Yields the number literals of a JSON text in document order. It is only a scanner: the
/// text is validated by serde_json, which calls the visitor once per number, in the same order.
struct NumberLiterals<'a> {
    text: &'a [u8],
    pos: Cell<usize>,
}

impl NumberLiterals<'_> {
    fn next(&self) -> Option<&str> {
        let text = self.text;
        let mut i = self.pos.get();
        while let Some(&b) = text.get(i) {
            match b {
                b'"' => {
                    i += 1;
                    while let Some(&c) = text.get(i) {
                        i += if c == b'\\' { 2 } else { 1 };
                        if c == b'"' {
                            break;
                        }
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while text.get(i).is_some_and(|c| {
                        matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    }) {
                        i += 1;
                    }
                    self.pos.set(i);
                    return text.get(start..i).and_then(|t| std::str::from_utf8(t).ok());
                }
                _ => i += 1,
            }
        }
        self.pos.set(i);
        None
    }

    /// The correctly rounded value of the next literal, if it is within a few ULPs of what
    /// serde_json computed (a guard against ever substituting an unrelated number).
    fn exact_f64(&self, approx: f64) -> f64 {
        match self.next().and_then(|t| t.parse::<f64>().ok()) {
            Some(exact) if exact.is_finite() && exact.to_bits().abs_diff(approx.to_bits()) <= 4 => {
                exact
            }
            _ => approx,
        }
    }
}

#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    literals: Option<&'a NumberLiterals<'a>>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl StrictSeed<'_> {
    fn skip_literal(&self) {
        if let Some(l) = self.literals {
            l.next();
        }
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value without duplicate object keys")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.skip_literal();
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.skip_literal();
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        let v = match self.literals {
            Some(l) => l.exact_f64(v),
            None => v,
        };
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate object key {key:?}"
                )));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}
