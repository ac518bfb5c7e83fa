//! Property test over request parsing: random bytes, and valid requests with random
//! mutations, fed through the strict JSON body parser and entry validation never panic, and
//! whatever is accepted canonicalises within the entry size limit.

use mobius_http::json::parse_json;
use mobius_ledger::entry::{BatchRequest, MAX_ENTRY_BYTES, NewEntryRequest, prepare};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    r#"{"type":"civic.vote","subject":"alice","ref":"r-1","payload":{"a":1,"b":[1,2,{"c":"d"}],"e":null,"f":1.5e3}}"#,
    r#"{"entries":[{"type":"civic.a","payload":{}},{"type":"civic.b","payload":{"x":"ü😀"}}]}"#,
    r#"{"type":"x.y","payload":{"deep":[[[[[[[[[[{}]]]]]]]]]]}}"#,
];

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "1e999",
    "-0",
    "9007199254740993",
    "\"type\"",
    "\"payload\"",
    "\"source\"",
    "\"timestamp_ms\"",
    "😀",
    "\u{0}",
    "\u{2028}",
    "é",
    " ",
    "\n",
    "0.1",
];

fn check(bytes: &[u8]) {
    if let Ok(req) = parse_json::<NewEntryRequest>(bytes)
        && let Ok(p) = prepare(req, "operator:ops", 1_700_000_000_000, None)
    {
        assert!(p.leaf_data.len() <= MAX_ENTRY_BYTES);
        assert!(std::str::from_utf8(&p.leaf_data).is_ok());
    }
    if let Ok(b) = parse_json::<BatchRequest>(bytes) {
        for (i, e) in b.entries.into_iter().enumerate() {
            let _ = prepare(e, "citizen:alice", 0, Some(i));
        }
    }
    let _ = mobius_core::jcs::parse_strict(bytes);
}

#[test]
fn parsing_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let mut bytes: Vec<u8> = if round % 3 == 0 {
            (0..rng.below(200)).map(|_| rng.next() as u8).collect()
        } else {
            SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec()
        };
        for _ in 0..rng.below(6) {
            match rng.below(4) {
                0 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                1 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes.remove(i);
                }
                _ => {
                    let i = rng.below(bytes.len() + 1);
                    let f = FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes();
                    bytes.splice(i..i, f.iter().copied());
                }
            }
        }
        check(&bytes);
    }
    // Valid seeds are accepted as they are.
    assert!(
        prepare(
            parse_json::<NewEntryRequest>(SEEDS[0].as_bytes()).unwrap(),
            "operator:ops",
            0,
            None
        )
        .is_ok()
    );
}
