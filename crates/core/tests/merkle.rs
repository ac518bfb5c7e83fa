//! Tests for `mobius_core::merkle`: the published transparency-dev vectors, the standard
//! 8-leaf tree, and seeded property tests against naive RFC 9162 definitions and an
//! independent (tlog-style recursive) reference verifier.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mobius_core::merkle::{
    Hash, HashReader, MAX_TREE_SIZE, MissingHash, ProofError, RightEdge, TreeError,
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, sha256,
    split_stored_hash_index, stored_hash_count, stored_hash_index, tree_hash, verify_consistency,
    verify_inclusion,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Seeded xorshift64 so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in [0, n); n > 0.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hash(&mut self) -> Hash {
        let mut h = [0u8; 32];
        for chunk in h.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        h
    }
}

fn flip(h: &Hash, bit: u64) -> Hash {
    let mut out = *h;
    out[(bit / 8) as usize] ^= 1 << (bit % 8);
    out
}

/// Largest power of two strictly below n (n >= 2), as RFC 9162 splits trees.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.1 MTH, straight from the definition.
fn naive_mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(b""),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&naive_mth(&leaves[..k]), &naive_mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1 PATH(m, D[n]).
fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n == 1 {
        return Vec::new();
    }
    let k = split_point(n as u64) as usize;
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(naive_mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(naive_mth(&leaves[..k]));
        p
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b).
fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b {
            Vec::new()
        } else {
            vec![naive_mth(leaves)]
        };
    }
    let k = split_point(n as u64) as usize;
    if m <= k {
        let mut p = naive_subproof(m, &leaves[..k], b);
        p.push(naive_mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &leaves[k..], false);
        p.push(naive_mth(&leaves[..k]));
        p
    }
}

/// Sibling sides of PATH(m, D[n]), bottom up (true = sibling on the left).
fn naive_path_sides(m: u64, n: u64) -> Vec<bool> {
    if n == 1 {
        return Vec::new();
    }
    let k = split_point(n);
    if m < k {
        let mut s = naive_path_sides(m, k);
        s.push(false);
        s
    } else {
        let mut s = naive_path_sides(m - k, n - k);
        s.push(true);
        s
    }
}

/// Reference inclusion verifier: tlog's recursive `CheckRecord`, independent of RFC 9162's
/// iterative algorithm used by the crate.
fn ref_check_record(proof: &[Hash], size: u64, root: &Hash, index: u64, leaf: &Hash) -> bool {
    fn run(p: &[Hash], lo: u64, hi: u64, n: u64, leaf: &Hash) -> Option<Hash> {
        if lo + 1 == hi {
            return p.is_empty().then_some(*leaf);
        }
        let (last, rest) = p.split_last()?;
        let k = split_point(hi - lo);
        if n < lo + k {
            Some(node_hash(&run(rest, lo, lo + k, n, leaf)?, last))
        } else {
            Some(node_hash(last, &run(rest, lo + k, hi, n, leaf)?))
        }
    }
    index < size && run(proof, 0, size, index, leaf).as_ref() == Some(root)
}

/// Reference consistency verifier: tlog's recursive `CheckTree`.
fn ref_check_tree(proof: &[Hash], size2: u64, root2: &Hash, size1: u64, root1: &Hash) -> bool {
    fn run(p: &[Hash], lo: u64, hi: u64, n: u64, old: &Hash) -> Option<(Hash, Hash)> {
        if n == hi {
            if lo == 0 {
                return p.is_empty().then_some((*old, *old));
            }
            return (p.len() == 1).then(|| (p[0], p[0]));
        }
        let (last, rest) = p.split_last()?;
        let k = split_point(hi - lo);
        if n <= lo + k {
            let (oh, th) = run(rest, lo, lo + k, n, old)?;
            Some((oh, node_hash(&th, last)))
        } else {
            let (oh, th) = run(rest, lo + k, hi, n, old)?;
            Some((node_hash(last, &oh), node_hash(last, &th)))
        }
    }
    size1 >= 1 && size1 <= size2 && run(proof, 0, size2, size1, root1) == Some((*root1, *root2))
}

/// A tree built by appending, with everything the tests compare against.
struct Built {
    leaves: Vec<Hash>,
    store: Vec<Hash>,
    /// roots[n] = root of the first n leaves, from `RightEdge::root`.
    roots: Vec<Hash>,
    /// edges[n] = the edge after n appends.
    edges: Vec<RightEdge>,
}

fn build(leaves: Vec<Hash>) -> Built {
    let mut store = Vec::new();
    let mut edge = RightEdge::new();
    let mut roots = vec![edge.root()];
    let mut edges = vec![edge.clone()];
    let mut out = Vec::new();
    for (n, leaf) in leaves.iter().enumerate() {
        let n = n as u64;
        out.clear();
        edge.append(*leaf, &mut out);
        assert_eq!(
            out.len() as u32,
            1 + n.trailing_ones(),
            "append({n}) hash count"
        );
        assert_eq!(out[0].1, *leaf);
        for (level, &(index, hash)) in out.iter().enumerate() {
            assert_eq!(index, stored_hash_index(level as u8, n >> level));
            assert_eq!(index, store.len() as u64, "append({n}) must be contiguous");
            store.push(hash);
        }
        assert_eq!(edge.size(), n + 1);
        assert_eq!(stored_hash_count(n + 1), store.len() as u64);
        roots.push(edge.root());
        edges.push(edge.clone());
    }
    Built {
        leaves,
        store,
        roots,
        edges,
    }
}

fn random_tree(rng: &mut Rng, n: usize) -> Built {
    // Distinct leaves (the index is part of the data): with duplicates, swapping two equal
    // neighbours is not a detectable change.
    let leaves = (0..n)
        .map(|i| {
            let len = rng.below(40) as usize;
            let mut data = (i as u64).to_be_bytes().to_vec();
            data.extend((0..len).map(|_| rng.next() as u8));
            leaf_hash(&data)
        })
        .collect();
    build(leaves)
}

const STANDARD_LEAVES_HEX: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

fn standard_tree() -> Built {
    build(
        STANDARD_LEAVES_HEX
            .iter()
            .map(|h| leaf_hash(&hex::decode(h).expect("leaf hex")))
            .collect(),
    )
}

/// Sizes around every power of two up to 2048, for the edge cases of the index math.
fn interesting_sizes() -> Vec<u64> {
    let mut sizes = vec![1, 2, 3];
    for k in 2..=11 {
        let p = 1u64 << k;
        sizes.extend([p - 1, p, p + 1]);
    }
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

// ---------------------------------------------------------------------------------------------
// Vector files
// ---------------------------------------------------------------------------------------------

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/merkle-vectors")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

struct InclusionVector {
    file: String,
    index: u64,
    size: u64,
    root: String,
    leaf: String,
    proof: Vec<String>,
    want_err: bool,
}

struct ConsistencyVector {
    file: String,
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Vec<String>,
    want_err: bool,
}

fn load_vectors() -> (Vec<InclusionVector>, Vec<ConsistencyVector>) {
    let mut files = Vec::new();
    json_files(&vectors_dir(), &mut files);
    files.sort();
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let num = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{file}: {k}"));
        let string = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{file}: {k}"))
                .to_owned()
        };
        // `null` is Go's nil slice: the empty proof.
        let proof: Vec<String> = match &v["proof"] {
            Value::Null => Vec::new(),
            Value::Array(a) => a
                .iter()
                .map(|h| {
                    h.as_str()
                        .unwrap_or_else(|| panic!("{file}: proof"))
                        .to_owned()
                })
                .collect(),
            other => panic!("{file}: proof is {other}"),
        };
        let want_err = v["wantErr"]
            .as_bool()
            .unwrap_or_else(|| panic!("{file}: wantErr"));
        if v.get("leafIdx").is_some() {
            inclusion.push(InclusionVector {
                index: num("leafIdx"),
                size: num("treeSize"),
                root: string("root"),
                leaf: string("leafHash"),
                proof,
                want_err,
                file,
            });
        } else {
            consistency.push(ConsistencyVector {
                size1: num("size1"),
                size2: num("size2"),
                root1: string("root1"),
                root2: string("root2"),
                proof,
                want_err,
                file,
            });
        }
    }
    (inclusion, consistency)
}

fn b64(s: &str) -> Vec<u8> {
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// The decoding step in front of the typed API: anything that is not exactly 32 bytes is
/// rejected here, before a verifier could see it.
fn decode_hash(s: &str) -> Option<Hash> {
    b64(s).try_into().ok()
}

fn decode_proof(p: &[String]) -> Option<Vec<Hash>> {
    p.iter().map(|h| decode_hash(h)).collect()
}

/// Decodes two hashes and a proof, or `None` if any of them is not 32 bytes.
fn decode_all(pair: &[&String; 2], proof: &[String]) -> Option<(Hash, Hash, Vec<Hash>)> {
    Some((
        decode_hash(pair[0])?,
        decode_hash(pair[1])?,
        decode_proof(proof)?,
    ))
}

#[test]
fn vectors_verify_or_are_rejected() {
    let (inclusion, consistency) = load_vectors();
    let mut happy = 0;
    let mut rejected_by_verifier = 0;
    let mut rejected_by_decoding = 0;
    let mut opaque_equal_roots = 0;

    for v in &inclusion {
        let decoded = decode_all(&[&v.leaf, &v.root], &v.proof);
        match (v.want_err, decoded) {
            (false, Some((leaf, root, proof))) => {
                verify_inclusion(v.index, v.size, &leaf, &proof, &root)
                    .unwrap_or_else(|e| panic!("{}: happy path rejected: {e}", v.file));
                assert!(
                    ref_check_record(&proof, v.size, &root, v.index, &leaf),
                    "{}",
                    v.file
                );
                happy += 1;
            }
            (false, None) => panic!("{}: happy path has a hash that is not 32 bytes", v.file),
            (true, Some((leaf, root, proof))) => {
                assert!(
                    verify_inclusion(v.index, v.size, &leaf, &proof, &root).is_err(),
                    "{}: tampered inclusion proof accepted",
                    v.file
                );
                assert!(
                    !ref_check_record(&proof, v.size, &root, v.index, &leaf),
                    "{}",
                    v.file
                );
                rejected_by_verifier += 1;
            }
            // Explicit: a leaf/root/proof hash of the wrong length cannot even be expressed
            // as a `Hash`, so the decoding step is what rejects it.
            (true, None) => rejected_by_decoding += 1,
        }
    }

    for v in &consistency {
        let decoded = decode_all(&[&v.root1, &v.root2], &v.proof);
        match (v.want_err, decoded) {
            (false, Some((root1, root2, proof))) => {
                verify_consistency(v.size1, v.size2, &root1, &root2, &proof)
                    .unwrap_or_else(|e| panic!("{}: happy path rejected: {e}", v.file));
                assert!(
                    ref_check_tree(&proof, v.size2, &root2, v.size1, &root1),
                    "{}",
                    v.file
                );
                happy += 1;
            }
            // Upstream compares roots as opaque byte strings when the sizes are equal, so one
            // vector accepts the 12-byte root "don't care 2". Our roots are typed 32-byte
            // hashes and decoding rejects it; check the rule it encodes (equal sizes, equal
            // roots, empty proof verify) with a real hash instead.
            (false, None)
                if v.size1 == v.size2 && v.proof.is_empty() && b64(&v.root1) == b64(&v.root2) =>
            {
                let root = sha256(&b64(&v.root1));
                verify_consistency(v.size1, v.size2, &root, &root, &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", v.file));
                opaque_equal_roots += 1;
            }
            (false, None) => panic!("{}: happy path has a hash that is not 32 bytes", v.file),
            (true, Some((root1, root2, proof))) => {
                assert!(
                    verify_consistency(v.size1, v.size2, &root1, &root2, &proof).is_err(),
                    "{}: tampered consistency proof accepted",
                    v.file
                );
                // tlog accepts 0 -> 0; the README (and we) reject any proof from size 0.
                if v.size1 != 0 {
                    assert!(
                        !ref_check_tree(&proof, v.size2, &root2, v.size1, &root1),
                        "{}",
                        v.file
                    );
                }
                rejected_by_verifier += 1;
            }
            (true, None) => rejected_by_decoding += 1,
        }
    }

    let checked = inclusion.len() + consistency.len();
    assert!(checked > 100, "only {checked} vector files found");
    assert_eq!(
        happy + opaque_equal_roots + rejected_by_verifier + rejected_by_decoding,
        checked
    );
    assert_eq!(
        opaque_equal_roots, 1,
        "expected exactly one opaque-root vector"
    );
    assert!(happy >= 10, "only {happy} happy paths");
    assert!(
        rejected_by_verifier > 100,
        "only {rejected_by_verifier} rejections by the verifier"
    );
    assert!(rejected_by_decoding > 0);
}

#[test]
fn vector_edge_rules() {
    let h = sha256(b"x");
    // From size 0 nothing is provable, not even 0 -> 0.
    assert_eq!(
        verify_consistency(0, 0, &h, &h, &[]),
        Err(ProofError::EmptyOldTree)
    );
    assert_eq!(
        verify_consistency(0, 5, &h, &h, &[h]),
        Err(ProofError::EmptyOldTree)
    );
    assert_eq!(
        verify_consistency(3, 2, &h, &h, &[]),
        Err(ProofError::SizesOutOfOrder { size1: 3, size2: 2 })
    );
    // Equal sizes: empty proof and equal roots.
    assert_eq!(verify_consistency(7, 7, &h, &h, &[]), Ok(()));
    assert_eq!(
        verify_consistency(7, 7, &h, &h, &[h]),
        Err(ProofError::WrongProofLength { got: 1, want: 0 })
    );
    assert_eq!(
        verify_consistency(7, 7, &h, &flip(&h, 3), &[]),
        Err(ProofError::NewRootMismatch)
    );
    assert!(matches!(
        verify_consistency(1, 2, &h, &h, &[]),
        Err(ProofError::WrongProofLength { got: 0, .. })
    ));
    assert_eq!(
        verify_inclusion(0, 0, &h, &[], &h),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(verify_inclusion(0, 1, &h, &[], &h), Ok(()));
    assert_eq!(
        verify_inclusion(0, 1, &h, &[], &flip(&h, 0)),
        Err(ProofError::RootMismatch)
    );
    // Huge sizes must not overflow the verifier's bit arithmetic.
    assert!(verify_inclusion(0, u64::MAX, &h, &[], &h).is_err());
    assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &h, &[h; 64], &h).is_err());
    assert!(verify_consistency(1, u64::MAX, &h, &h, &[h; 64]).is_err());
    assert!(verify_consistency(u64::MAX - 1, u64::MAX, &h, &h, &[h; 64]).is_err());
    for e in [
        ProofError::EmptyOldTree,
        ProofError::RootMismatch,
        ProofError::OldRootMismatch,
        ProofError::NewRootMismatch,
        ProofError::IndexOutOfRange { index: 1, size: 1 },
        ProofError::SizesOutOfOrder { size1: 2, size2: 1 },
        ProofError::WrongProofLength { got: 1, want: 2 },
    ] {
        assert!(!e.to_string().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// The standard 8-leaf tree
// ---------------------------------------------------------------------------------------------

#[test]
fn standard_tree_matches_vectors() {
    let mut t = standard_tree();
    assert_eq!(
        hex::encode(t.roots[8]),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
    for n in 0..=8u64 {
        assert_eq!(
            tree_hash(n, &mut t.store),
            Ok(t.roots[n as usize]),
            "tree_hash({n})"
        );
        assert_eq!(naive_mth(&t.leaves[..n as usize]), t.roots[n as usize]);
    }

    // Every proof up to size 8 verifies and equals the RFC definition.
    for size in 1..=8u64 {
        let root = t.roots[size as usize];
        for index in 0..size {
            let proof = inclusion_proof(index, size, &mut t.store).expect("inclusion proof");
            assert_eq!(
                proof,
                naive_path(index as usize, &t.leaves[..size as usize])
            );
            verify_inclusion(index, size, &t.leaves[index as usize], &proof, &root)
                .expect("inclusion verifies");
        }
        for size1 in 1..=size {
            let proof = consistency_proof(size1, size, &mut t.store).expect("consistency proof");
            assert_eq!(
                proof,
                naive_subproof(size1 as usize, &t.leaves[..size as usize], true)
            );
            verify_consistency(size1, size, &t.roots[size1 as usize], &root, &proof)
                .expect("consistency verifies");
        }
    }

    // The happy-path files over this tree: same proofs, byte for byte.
    let (inclusion, consistency) = load_vectors();
    let mut matched_inclusion = 0;
    for v in inclusion.iter().filter(|v| !v.want_err && v.size <= 8) {
        let (Some(root), Some(leaf), Some(want)) = (
            decode_hash(&v.root),
            decode_hash(&v.leaf),
            decode_proof(&v.proof),
        ) else {
            continue;
        };
        if root != t.roots[v.size as usize] {
            continue; // a vector over a different tree
        }
        assert_eq!(leaf, t.leaves[v.index as usize], "{}", v.file);
        let got = inclusion_proof(v.index, v.size, &mut t.store).expect("inclusion proof");
        assert_eq!(got, want, "{}", v.file);
        matched_inclusion += 1;
    }
    let mut matched_consistency = 0;
    for v in consistency.iter().filter(|v| !v.want_err && v.size2 <= 8) {
        let (Some(root1), Some(root2), Some(want)) = (
            decode_hash(&v.root1),
            decode_hash(&v.root2),
            decode_proof(&v.proof),
        ) else {
            continue;
        };
        if root1 != t.roots[v.size1 as usize] || root2 != t.roots[v.size2 as usize] {
            continue;
        }
        let got = consistency_proof(v.size1, v.size2, &mut t.store).expect("consistency proof");
        assert_eq!(got, want, "{}", v.file);
        matched_consistency += 1;
    }
    assert_eq!(
        matched_inclusion, 5,
        "inclusion happy paths over the standard tree"
    );
    assert_eq!(
        matched_consistency, 5,
        "consistency happy paths over the standard tree"
    );
}

// ---------------------------------------------------------------------------------------------
// Storage layout
// ---------------------------------------------------------------------------------------------

/// tlog.StoredHashIndex, loop for loop.
fn tlog_stored_hash_index(level: u8, mut n: u64) -> u64 {
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut i = 0;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + u64::from(level)
}

#[test]
fn storage_layout_matches_tlog() {
    // First hashes of the layout: leaf 0, leaf 1, node(1,0), leaf 2, leaf 3, node(1,1), node(2,0).
    let expect = [
        (0, 0),
        (0, 1),
        (1, 0),
        (0, 2),
        (0, 3),
        (1, 1),
        (2, 0),
        (0, 4),
    ];
    for (i, &(level, n)) in expect.iter().enumerate() {
        assert_eq!(stored_hash_index(level, n), i as u64);
        assert_eq!(split_stored_hash_index(i as u64), (level, n));
    }
    for level in 0..=20u8 {
        for n in 0..600u64 {
            assert_eq!(
                stored_hash_index(level, n),
                tlog_stored_hash_index(level, n),
                "({level}, {n})"
            );
        }
    }
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..5000 {
        let level = rng.below(40) as u8;
        let n = rng.below(MAX_TREE_SIZE >> level);
        let index = stored_hash_index(level, n);
        assert_eq!(index, tlog_stored_hash_index(level, n));
        assert_eq!(split_stored_hash_index(index), (level, n));
    }
    for index in 0..200_000u64 {
        let (level, n) = split_stored_hash_index(index);
        assert_eq!(stored_hash_index(level, n), index);
    }
    // The largest tree's hashes all fit a signed 64-bit column.
    assert!(stored_hash_count(MAX_TREE_SIZE) <= i64::MAX as u64);
    assert_eq!(
        stored_hash_index(62, 0),
        stored_hash_count(MAX_TREE_SIZE) - 1
    );
    assert_eq!(split_stored_hash_index(stored_hash_index(62, 0)), (62, 0));
    // stored_hash_count(n) = tlog.StoredHashCount(n).
    for n in 1..5000u64 {
        let mut want = tlog_stored_hash_index(0, n - 1) + 1;
        let mut i = n - 1;
        while i & 1 != 0 {
            want += 1;
            i >>= 1;
        }
        assert_eq!(stored_hash_count(n), want, "{n}");
    }
    assert_eq!(stored_hash_count(0), 0);
}

// ---------------------------------------------------------------------------------------------
// Property tests over random trees
// ---------------------------------------------------------------------------------------------

const N: usize = 2100;

#[test]
fn tree_hash_and_right_edge_match_naive() {
    let mut rng = Rng(0x5eed_0002);
    let mut t = random_tree(&mut rng, N);
    assert_eq!(t.roots[0], empty_root());
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    for n in 0..=N {
        let size = n as u64;
        if n <= 300 {
            assert_eq!(t.roots[n], naive_mth(&t.leaves[..n]), "MTH({n})");
        }
        assert_eq!(
            tree_hash(size, &mut t.store),
            Ok(t.roots[n]),
            "tree_hash({n})"
        );
        let loaded = RightEdge::load(size, &mut t.store).expect("load");
        assert_eq!(loaded, t.edges[n], "load({n})");
        assert_eq!(loaded.root(), t.roots[n]);
    }
    // A loaded edge keeps appending exactly like the original.
    for n in [0usize, 1, 5, 64, 1000, 1537] {
        let mut edge = RightEdge::load(n as u64, &mut t.store).expect("load");
        let mut out = Vec::new();
        for leaf in &t.leaves[n..n + 40] {
            edge.append(*leaf, &mut out);
        }
        assert_eq!(edge, t.edges[n + 40]);
        let start = stored_hash_count(n as u64) as usize;
        let expect: Vec<(u64, Hash)> = (start..start + out.len())
            .map(|i| (i as u64, t.store[i]))
            .collect();
        assert_eq!(out, expect);
    }
}

/// Tampering that must make an inclusion proof fail. Returns (wrong sizes tried, accepted).
fn check_inclusion_tampering(
    rng: &mut Rng,
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
    exhaustive: bool,
) -> (u32, u32) {
    let bits: Vec<u64> = if exhaustive {
        (0..256).collect()
    } else {
        vec![0, 255, rng.below(256)]
    };
    for &bit in &bits {
        assert!(verify_inclusion(index, size, &flip(leaf, bit), proof, root).is_err());
        assert!(verify_inclusion(index, size, leaf, proof, &flip(root, bit)).is_err());
        for i in 0..proof.len() {
            let mut p = proof.to_vec();
            p[i] = flip(&p[i], bit);
            assert!(
                verify_inclusion(index, size, leaf, &p, root).is_err(),
                "flipped bit {bit} of proof[{i}] accepted ({index}/{size})"
            );
        }
    }
    if let Some((_, rest)) = proof.split_last() {
        assert!(verify_inclusion(index, size, leaf, rest, root).is_err());
        assert!(verify_inclusion(index, size, leaf, &proof[1..], root).is_err());
    }
    let mut longer = proof.to_vec();
    longer.push(rng.hash());
    assert!(verify_inclusion(index, size, leaf, &longer, root).is_err());
    longer.pop();
    longer.insert(0, *leaf);
    assert!(verify_inclusion(index, size, leaf, &longer, root).is_err());

    // A wrong index always fails: the sibling sides spell out the leaf's position.
    let mut wrong_indexes = vec![
        index + 1,
        index ^ 1,
        size,
        size + 1,
        u64::MAX,
        rng.below(size),
    ];
    if index > 0 {
        wrong_indexes.push(index - 1);
    }
    if size <= 64 {
        wrong_indexes.extend(0..size);
    }
    for j in wrong_indexes.into_iter().filter(|&j| j != index) {
        assert!(
            verify_inclusion(j, size, leaf, proof, root).is_err(),
            "index {j} accepted for a proof of {index}/{size}"
        );
        assert!(!ref_check_record(proof, size, root, j, leaf));
    }

    // A wrong size fails unless the leaf sits at the same position of the same shape of
    // path in both trees (then the proof really is valid for both): agree with the
    // reference verifier and the RFC's PATH definition.
    let (mut tried, mut accepted) = (0, 0);
    let mut wrong_sizes = vec![
        size - 1,
        size + 1,
        size * 2,
        size + 1 + rng.below(size),
        0,
        index,
    ];
    wrong_sizes.push(index + 1 + rng.below(size));
    for s in wrong_sizes.into_iter().filter(|&s| s != size) {
        let ours = verify_inclusion(index, s, leaf, proof, root);
        if s <= index {
            assert_eq!(ours, Err(ProofError::IndexOutOfRange { index, size: s }));
            continue;
        }
        tried += 1;
        assert_eq!(
            ours.is_ok(),
            ref_check_record(proof, s, root, index, leaf),
            "{index}/{size} as {s}"
        );
        if ours.is_ok() {
            accepted += 1;
            assert_eq!(naive_path_sides(index, s), naive_path_sides(index, size));
        }
    }
    (tried, accepted)
}

#[test]
fn inclusion_proofs_verify_and_resist_tampering() {
    let mut rng = Rng(0x5eed_0003);
    let mut t = random_tree(&mut rng, N);
    let mut sizes = interesting_sizes();
    sizes.extend((0..40).map(|_| 1 + rng.below(N as u64)));

    let (mut tried, mut accepted, mut proofs) = (0, 0, 0);
    for &size in &sizes {
        let root = t.roots[size as usize];
        let mut indexes = vec![0, size - 1, size / 2];
        indexes.extend((0..5).map(|_| rng.below(size)));
        for index in indexes {
            let leaf = t.leaves[index as usize];
            let proof = inclusion_proof(index, size, &mut t.store).expect("inclusion proof");
            if size <= 300 {
                assert_eq!(
                    proof,
                    naive_path(index as usize, &t.leaves[..size as usize])
                );
            }
            verify_inclusion(index, size, &leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("{index}/{size}: {e}"));
            assert!(ref_check_record(&proof, size, &root, index, &leaf));
            let (tr, acc) = check_inclusion_tampering(
                &mut rng,
                index,
                size,
                &leaf,
                &proof,
                &root,
                proofs % 8 == 0,
            );
            tried += tr;
            accepted += acc;
            proofs += 1;
        }
    }
    // An audit path does not encode the tree size: a leaf far from the right edge has the
    // same path in nearby sizes, so many wrong sizes are (correctly) accepted. Each accepted
    // one was checked above to have the identical RFC path shape; the rest must be rejected.
    assert!(proofs > 400);
    assert!(
        tried > 1000 && tried - accepted > 1000,
        "{accepted} of {tried} wrong sizes accepted"
    );

    // All pairs in small trees against the RFC definition.
    for size in 1..=40u64 {
        for index in 0..size {
            let proof = inclusion_proof(index, size, &mut t.store).expect("inclusion proof");
            assert_eq!(
                proof,
                naive_path(index as usize, &t.leaves[..size as usize])
            );
        }
    }
}

/// Tampering that must make a consistency proof fail. Returns how many wrong old sizes were
/// tried, wrong new sizes tried, and wrong new sizes accepted.
fn check_consistency_tampering(
    rng: &mut Rng,
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
    exhaustive: bool,
) -> (u32, u32, u32) {
    let bits: Vec<u64> = if exhaustive {
        (0..256).collect()
    } else {
        vec![0, 255, rng.below(256)]
    };
    for &bit in &bits {
        assert!(verify_consistency(size1, size2, &flip(root1, bit), root2, proof).is_err());
        assert!(verify_consistency(size1, size2, root1, &flip(root2, bit), proof).is_err());
        for i in 0..proof.len() {
            let mut p = proof.to_vec();
            p[i] = flip(&p[i], bit);
            assert!(
                verify_consistency(size1, size2, root1, root2, &p).is_err(),
                "flipped bit {bit} of proof[{i}] accepted ({size1} -> {size2})"
            );
        }
    }
    if let Some((_, rest)) = proof.split_last() {
        assert!(verify_consistency(size1, size2, root1, root2, rest).is_err());
        assert!(verify_consistency(size1, size2, root1, root2, &proof[1..]).is_err());
    }
    let mut longer = proof.to_vec();
    longer.push(rng.hash());
    assert!(verify_consistency(size1, size2, root1, root2, &longer).is_err());
    longer.pop();
    longer.insert(0, *root1);
    assert!(verify_consistency(size1, size2, root1, root2, &longer).is_err());
    if root1 != root2 {
        assert!(verify_consistency(size1, size2, root2, root1, proof).is_err());
    }

    // A wrong old size is always rejected: the old root pins it. A wrong new size is accepted
    // exactly when the proof has the same shape for it (root2 binds the size only through a
    // signed checkpoint), so there we must agree with the reference verifier.
    let (mut wrong_old, mut wrong_new, mut accepted_new) = (0, 0, 0);
    let mut pairs = vec![
        (size1 + 1, size2),
        (size1 - 1, size2),
        (size1, size2 + 1),
        (size1, size2 - 1),
        (size1, size2 * 2),
        (size2, size1),
        (size1 * 2, size2),
        (1 + rng.below(size2), size2),
        (size1, size1 + rng.below(size2)),
    ];
    pairs.retain(|&p| p != (size1, size2));
    for (s1, s2) in pairs {
        let ours = verify_consistency(s1, s2, root1, root2, proof);
        let reference = s1 > 0 && ref_check_tree(proof, s2, root2, s1, root1);
        assert_eq!(
            ours.is_ok(),
            reference,
            "{size1} -> {size2} as {s1} -> {s2}"
        );
        if s1 != size1 {
            assert!(ours.is_err(), "{size1} -> {size2} accepted as {s1} -> {s2}");
            wrong_old += 1;
        } else {
            wrong_new += 1;
            accepted_new += u32::from(ours.is_ok());
        }
    }
    (wrong_old, wrong_new, accepted_new)
}

#[test]
fn consistency_proofs_verify_and_resist_tampering() {
    let mut rng = Rng(0x5eed_0004);
    let mut t = random_tree(&mut rng, N);
    let mut pairs = Vec::new();
    let sizes = interesting_sizes();
    for &a in &sizes {
        for &b in &sizes {
            if a <= b && rng.below(4) == 0 {
                pairs.push((a, b));
            }
        }
        pairs.push((a, a));
    }
    for _ in 0..200 {
        let b = 1 + rng.below(N as u64);
        pairs.push((1 + rng.below(b), b));
    }

    let (mut wrong_old, mut wrong_new, mut accepted_new, mut proofs) = (0, 0, 0, 0);
    for (size1, size2) in pairs {
        let (root1, root2) = (t.roots[size1 as usize], t.roots[size2 as usize]);
        let proof = consistency_proof(size1, size2, &mut t.store).expect("consistency proof");
        if size2 <= 300 {
            assert_eq!(
                proof,
                naive_subproof(size1 as usize, &t.leaves[..size2 as usize], true)
            );
        }
        verify_consistency(size1, size2, &root1, &root2, &proof)
            .unwrap_or_else(|e| panic!("{size1} -> {size2}: {e}"));
        assert!(ref_check_tree(&proof, size2, &root2, size1, &root1));
        let (old, new, acc) = check_consistency_tampering(
            &mut rng,
            size1,
            size2,
            &root1,
            &root2,
            &proof,
            proofs % 8 == 0,
        );
        wrong_old += old;
        wrong_new += new;
        accepted_new += acc;
        proofs += 1;
    }
    assert!(proofs > 250);
    assert!(wrong_old > 1000, "only {wrong_old} wrong old sizes tried");
    // Same-shape new sizes exist (e.g. 2 -> 3 also checks as 2 -> 4) but are the minority.
    assert!(
        wrong_new > 1000 && accepted_new * 2 < wrong_new,
        "{accepted_new} of {wrong_new} wrong new sizes accepted"
    );

    for size2 in 1..=40u64 {
        for size1 in 1..=size2 {
            let proof = consistency_proof(size1, size2, &mut t.store).expect("consistency proof");
            assert_eq!(
                proof,
                naive_subproof(size1 as usize, &t.leaves[..size2 as usize], true)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Huge trees, batching, errors
// ---------------------------------------------------------------------------------------------

/// A consistent tree of any size without storing it: all leaves are equal, so every perfect
/// subtree at level L has the same hash. Checks every read is a node inside the tree and
/// counts the calls.
struct UniformTree {
    size: u64,
    perfect: Vec<Hash>,
    calls: usize,
    max_batch: usize,
}

impl UniformTree {
    fn new(size: u64) -> Self {
        let mut perfect = vec![leaf_hash(b"same")];
        for l in 0..63 {
            let h = perfect[l];
            perfect.push(node_hash(&h, &h));
        }
        UniformTree {
            size,
            perfect,
            calls: 0,
            max_batch: 0,
        }
    }

    /// Root from the RFC split rule: MTH(n) = node(MTH(k), MTH(n - k)).
    fn root(&self, n: u64) -> Hash {
        if n.is_power_of_two() {
            return self.perfect[n.trailing_zeros() as usize];
        }
        let k = split_point(n);
        node_hash(&self.root(k), &self.root(n - k))
    }
}

impl HashReader for UniformTree {
    type Error = String;
    fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<Hash>, String> {
        self.calls += 1;
        self.max_batch = self.max_batch.max(indexes.len());
        indexes
            .iter()
            .map(|&i| {
                let (level, n) = split_stored_hash_index(i);
                if (u128::from(n) + 1) << level > u128::from(self.size) {
                    return Err(format!(
                        "read of ({level}, {n}) outside a tree of {}",
                        self.size
                    ));
                }
                Ok(self.perfect[level as usize])
            })
            .collect()
    }
}

#[test]
fn huge_trees_one_batched_read() {
    let mut rng = Rng(0x5eed_0005);
    let sizes = [
        1u64,
        1_000_000,
        (1 << 20) + 12_345,
        (1 << 40) + 3,
        (1 << 61) + (1 << 33) + 7,
        MAX_TREE_SIZE - 1,
        MAX_TREE_SIZE,
    ];
    for size in sizes {
        let mut tree = UniformTree::new(size);
        let root = tree.root(size);
        assert_eq!(tree_hash(size, &mut tree), Ok(root));
        assert_eq!(tree.calls, 1);
        assert_eq!(RightEdge::load(size, &mut tree).map(|e| e.root()), Ok(root));
        let leaf = tree.perfect[0];
        let mut indexes = vec![0, size / 2, size - 1, size.saturating_sub(2)];
        indexes.extend((0..10).map(|_| rng.below(size)));
        for index in indexes {
            tree.calls = 0;
            let proof = inclusion_proof(index, size, &mut tree).expect("inclusion proof");
            assert!(tree.calls <= 1 && tree.max_batch <= 128);
            verify_inclusion(index, size, &leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("{index}/{size}: {e}"));
            assert!(ref_check_record(&proof, size, &root, index, &leaf));
        }
        let mut olds = vec![
            1,
            size / 3,
            size - 1,
            size,
            1 << (63 - size.leading_zeros()),
        ];
        olds.extend((0..10).map(|_| 1 + rng.below(size)));
        for size1 in olds.into_iter().filter(|&s| s >= 1) {
            tree.calls = 0;
            let proof = consistency_proof(size1, size, &mut tree).expect("consistency proof");
            assert!(tree.calls <= 1 && tree.max_batch <= 128);
            let root1 = tree.root(size1);
            verify_consistency(size1, size, &root1, &root, &proof)
                .unwrap_or_else(|e| panic!("{size1} -> {size}: {e}"));
            assert!(ref_check_tree(&proof, size, &root, size1, &root1));
        }
    }
}

#[test]
fn inclusion_proof_at_one_million_is_fast() {
    /// Free reads: time only the proof construction.
    struct Constant;
    impl HashReader for Constant {
        type Error = std::convert::Infallible;
        fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error> {
            Ok(vec![[7; 32]; indexes.len()])
        }
    }
    let mut rng = Rng(0x5eed_0006);
    let rounds = 2000u32;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let size = 1_000_000 + rng.below(1000);
        let proof = inclusion_proof(rng.below(size), size, &mut Constant).expect("proof");
        assert!(proof.len() <= 20);
    }
    let per_proof = start.elapsed() / rounds;
    // Generous even for an unoptimised build on a loaded machine; a rebuild would be ~1000x.
    assert!(
        per_proof.as_micros() < 500,
        "{per_proof:?} per inclusion proof"
    );
}

#[test]
fn writer_errors() {
    let mut rng = Rng(0x5eed_0007);
    let mut t = random_tree(&mut rng, 20);
    let invalid = |r: Result<Vec<Hash>, TreeError<MissingHash>>| {
        matches!(r, Err(TreeError::InvalidArgument(_)))
    };
    assert!(invalid(inclusion_proof(20, 20, &mut t.store)));
    assert!(invalid(inclusion_proof(0, 0, &mut t.store)));
    assert!(invalid(consistency_proof(0, 5, &mut t.store)));
    assert!(invalid(consistency_proof(6, 5, &mut t.store)));
    assert!(invalid(consistency_proof(
        1,
        MAX_TREE_SIZE + 1,
        &mut t.store
    )));
    assert!(invalid(inclusion_proof(0, u64::MAX, &mut t.store)));
    assert!(matches!(
        tree_hash(u64::MAX, &mut t.store),
        Err(TreeError::InvalidArgument(_))
    ));
    assert_eq!(consistency_proof(7, 7, &mut t.store), Ok(Vec::new()));

    // Reading past the stored hashes is a storage error, not a panic.
    let err = inclusion_proof(3, 21, &mut t.store).expect_err("tree of 21 is not stored");
    assert!(
        matches!(err, TreeError::Storage(MissingHash { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("no stored hash"));
    assert!(std::error::Error::source(&err).is_some());
    assert!(matches!(
        tree_hash(25, &mut t.store),
        Err(TreeError::Storage(_))
    ));

    // Borrowed stores work too.
    let mut borrowed: &[Hash] = &t.store;
    assert_eq!(tree_hash(20, &mut borrowed), Ok(t.roots[20]));

    // A reader that returns the wrong number of hashes is caught.
    struct Short;
    impl HashReader for Short {
        type Error = std::convert::Infallible;
        fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error> {
            Ok(vec![[0; 32]; indexes.len().saturating_sub(1)])
        }
    }
    assert!(matches!(
        inclusion_proof(3, 20, &mut Short),
        Err(TreeError::InvalidArgument(_))
    ));
    assert!(matches!(
        RightEdge::load(7, &mut Short),
        Err(TreeError::InvalidArgument(_))
    ));
    // Operations that need no hashes do not call the reader at all.
    assert_eq!(tree_hash(0, &mut Short), Ok(empty_root()));
    assert_eq!(inclusion_proof(0, 1, &mut Short), Ok(Vec::new()));
    assert_eq!(consistency_proof(4, 4, &mut Short), Ok(Vec::new()));
}
