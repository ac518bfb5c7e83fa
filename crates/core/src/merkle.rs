//! RFC 9162 (RFC 6962) Merkle tree: hashing, append-only storage, proofs, and verification.
//!
//! Hashes are stored in the layout of Go's `golang.org/x/mod/sumdb/tlog` (Crosby–Wallach
//! §3.3): record `n` writes its leaf hash followed by one hash per complete subtree it closes,
//! so storage is an append-only array and every proof is a handful of random reads, batched
//! into one `read_hashes` call.
//!
//! The writer side (storage, proof construction) and the verifier side are deliberately
//! independent code, so that a bug in one is caught by the other instead of mirrored.

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest: leaf hash, interior node hash or tree root.
pub type Hash = [u8; 32];

/// Largest tree the writer side accepts. Every stored index of such a tree is below 2^63,
/// so it fits a signed 64-bit database column, and no index arithmetic can overflow.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// Plain SHA-256.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// RFC 9162 leaf hash: SHA-256(0x00 || data). The prefix keeps leaves and nodes apart.
pub fn leaf_hash(leaf_data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf_data);
    h.finalize().into()
}

/// RFC 9162 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One stack buffer and one hashing call, as tlog does.
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sha256(&buf)
}

/// Root of the empty tree (RFC 9162 §2.1.1: the hash of the empty string).
pub fn empty_root() -> Hash {
    sha256(&[])
}

// ---------------------------------------------------------------------------------------------
// Storage layout
// ---------------------------------------------------------------------------------------------

/// Number of hashes stored before leaf `n`'s hash: n + n/2 + n/4 + ... = 2n - popcount(n).
fn leaf_stored_index(n: u64) -> u64 {
    n.wrapping_mul(2).wrapping_sub(u64::from(n.count_ones()))
}

/// Stored index of the `n`th hash at `level` (`tlog.StoredHashIndex`), in O(1).
///
/// That hash is written together with the leaf that completes it, `((n + 1) << level) - 1`,
/// `level` slots after that leaf's own hash. Only meaningful for nodes of trees up to
/// [`MAX_TREE_SIZE`]; other inputs give an unspecified value rather than a panic.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    let last_leaf = n
        .wrapping_add(1)
        .wrapping_shl(u32::from(level))
        .wrapping_sub(1);
    leaf_stored_index(last_leaf).wrapping_add(u64::from(level))
}

/// Inverse of [`stored_hash_index`] (`tlog.SplitStoredHashIndex`).
pub fn split_stored_hash_index(index: u64) -> (u8, u64) {
    // leaf_stored_index(n) < 2n, so the record that wrote `index` is in
    // [index/2, index/2 + log2(index)].
    let mut n = index / 2;
    let mut index_n = leaf_stored_index(n);
    loop {
        // Record n writes 1 + trailing_ones(n) hashes; record n+1 starts right after.
        let next = (n + 1)
            .trailing_zeros()
            .checked_add(1)
            .and_then(|c| index_n.checked_add(u64::from(c)));
        match next {
            Some(next) if next <= index => {
                n += 1;
                index_n = next;
            }
            _ => break,
        }
    }
    // The hash is one of (0, n), (1, n/2), (2, n/4), ... written with record n.
    let level = index - index_n;
    (level as u8, n.checked_shr(level as u32).unwrap_or(0))
}

/// Number of hashes stored for a tree of `n` records (`tlog.StoredHashCount`): exactly where
/// record `n` would start.
pub fn stored_hash_count(n: u64) -> u64 {
    leaf_stored_index(n)
}

// ---------------------------------------------------------------------------------------------
// Reading stored hashes
// ---------------------------------------------------------------------------------------------

/// Random access to stored hashes (a database, a `Vec`, ...).
///
/// Must return exactly one hash per index, in the order asked. Every tree operation makes at
/// most one call, with O(log n) indexes, because the callers are databases.
pub trait HashReader {
    type Error;
    fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error>;
}

/// The in-memory readers were asked for a stored index they do not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingHash {
    pub index: u64,
}

impl fmt::Display for MissingHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no stored hash at index {}", self.index)
    }
}

impl std::error::Error for MissingHash {}

fn read_from_slice(store: &[Hash], indexes: &[u64]) -> Result<Vec<Hash>, MissingHash> {
    indexes
        .iter()
        .map(|&index| {
            usize::try_from(index)
                .ok()
                .and_then(|i| store.get(i))
                .copied()
                .ok_or(MissingHash { index })
        })
        .collect()
}

/// A `Vec` indexed by stored index: what tests and offline verifiers hold.
impl HashReader for Vec<Hash> {
    type Error = MissingHash;
    fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<Hash>, MissingHash> {
        read_from_slice(self, indexes)
    }
}

/// Borrowed stores need no copy.
impl HashReader for &[Hash] {
    type Error = MissingHash;
    fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<Hash>, MissingHash> {
        read_from_slice(self, indexes)
    }
}

/// Failure of a writer-side tree operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeError<E> {
    /// The [`HashReader`] failed.
    Storage(E),
    /// Bad sizes or indexes, or a reader that broke its contract (wrong number of hashes).
    InvalidArgument(String),
}

impl<E: fmt::Display> fmt::Display for TreeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::Storage(e) => write!(f, "reading stored hashes: {e}"),
            TreeError::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TreeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TreeError::Storage(e) => Some(e),
            TreeError::InvalidArgument(_) => None,
        }
    }
}

fn invalid<T, E>(msg: String) -> Result<T, TreeError<E>> {
    Err(TreeError::InvalidArgument(msg))
}

fn check_size<E>(size: u64) -> Result<(), TreeError<E>> {
    if size > MAX_TREE_SIZE {
        return invalid(format!(
            "tree size {size} exceeds the maximum {MAX_TREE_SIZE}"
        ));
    }
    Ok(())
}

/// One batched read, checking the reader's contract so callers can index the result freely.
fn read<R: HashReader>(reader: &mut R, indexes: &[u64]) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes).map_err(TreeError::Storage)?;
    if hashes.len() != indexes.len() {
        return invalid(format!(
            "hash reader returned {} hashes for {} indexes",
            hashes.len(),
            indexes.len()
        ));
    }
    Ok(hashes)
}

/// Appends the stored indexes of the perfect subtrees covering leaves [begin, end), left to
/// right (`tlog.subTreeIndex`). `begin` must be aligned to the largest power of two
/// <= `end - begin`, which holds for [0, n) and for the right edge past a fork node.
fn push_range(begin: u64, end: u64, out: &mut Vec<u64>) {
    let mut lo = begin;
    while lo < end {
        let level = 63 - (end - lo).leading_zeros();
        out.push(stored_hash_index(level as u8, lo >> level));
        lo += 1 << level;
    }
}

// ---------------------------------------------------------------------------------------------
// Right edge (compact range)
// ---------------------------------------------------------------------------------------------

/// The compact range ("right edge") of the current tree: the roots of the perfect subtrees
/// of `size`, left to right, one per set bit of `size`. Appending costs O(1) amortised
/// hashing and the root O(log n), never a rebuild.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RightEdge {
    size: u64,
    /// Invariant: `hashes.len() == size.count_ones()`, largest subtree first.
    hashes: Vec<Hash>,
}

impl RightEdge {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append one leaf hash. Pushes the stored hashes this record creates, as
    /// (stored index, hash), in increasing stored-index order (leaf first, then each
    /// completed level) onto `out`.
    pub fn append(&mut self, leaf: Hash, out: &mut Vec<(u64, Hash)>) {
        let n = self.size;
        let base = stored_hash_index(0, n);
        out.push((base, leaf));
        // Each trailing one bit of n is a perfect subtree that this leaf's subtree now
        // completes into a larger one (`tlog.StoredHashesForRecordHash`).
        let mut h = leaf;
        for level in 1..=u64::from(n.trailing_ones()) {
            let left = self
                .hashes
                .pop()
                .expect("right edge holds one hash per set bit of its size");
            h = node_hash(&left, &h);
            out.push((base + level, h));
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// RFC 9162 MTH of the whole tree; [`empty_root`] for size 0.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.hashes.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(last) => subtrees.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Rebuild from storage with one read of popcount(size) hashes.
    pub fn load<R: HashReader>(size: u64, reader: &mut R) -> Result<Self, TreeError<R::Error>> {
        check_size(size)?;
        let mut indexes = Vec::with_capacity(size.count_ones() as usize);
        push_range(0, size, &mut indexes);
        let hashes = read(reader, &indexes)?;
        Ok(RightEdge { size, hashes })
    }
}

/// Root of the tree of `size` leaves from stored hashes, one read of O(log n) hashes
/// (`tlog.TreeHash`, except that size 0 gives [`empty_root`] as RFC 9162 requires).
pub fn tree_hash<R: HashReader>(size: u64, reader: &mut R) -> Result<Hash, TreeError<R::Error>> {
    Ok(RightEdge::load(size, reader)?.root())
}

// ---------------------------------------------------------------------------------------------
// Proof construction
// ---------------------------------------------------------------------------------------------

/// The stored hashes a proof needs, in proof order. `indexes[eph_begin..eph_end]` (if
/// non-empty) are the perfect subtrees, smallest first, that make up the one "ephemeral"
/// node of the proof: the incomplete subtree at the right edge, which is never stored.
///
/// Port of `transparency-dev/merkle` `proof.nodes`, mapped onto tlog stored indexes: it needs
/// no recursion and computes each index in O(1), so a proof costs O(log n) plus one read.
struct ProofPlan {
    indexes: Vec<u64>,
    eph_begin: usize,
    eph_end: usize,
}

/// Plan the proof that node (`level`, `index`) is in the tree of `size` leaves, bottom up.
/// Requires the node to be perfect and inside the tree: `(index + 1) << level <= size`.
/// `skip_seed` leaves out the node itself, which the verifier already knows.
fn plan_proof(index: u64, level: u32, size: u64, skip_seed: bool) -> ProofPlan {
    // The fork is the lowest ancestor of the node whose sibling is not perfect (or is
    // absent): where the path to the node leaves the path to leaf `size`.
    let inner = 63 - (index ^ (size >> level)).leading_zeros();
    let fork_level = level + inner;
    let fork_index = index >> inner;
    let begin = fork_index << fork_level;
    let end = (fork_index + 1) << fork_level;

    let mut indexes = Vec::with_capacity(1 + 2 * 64);
    if !skip_seed {
        indexes.push(stored_hash_index(level as u8, index));
    }
    // Siblings up to the fork: all perfect.
    for l in level..fork_level {
        let sibling = (index >> (l - level)) ^ 1;
        indexes.push(stored_hash_index(l as u8, sibling));
    }
    // The fork's sibling [end, size), smallest subtree first so it folds from the right.
    let eph_begin = indexes.len();
    push_range(end, size, &mut indexes);
    indexes[eph_begin..].reverse();
    let eph_end = indexes.len();
    // Left neighbours of the fork's ancestors: perfect subtrees of [0, begin), lowest first.
    push_range(0, begin, &mut indexes);
    indexes[eph_end..].reverse();

    ProofPlan {
        indexes,
        eph_begin,
        eph_end,
    }
}

impl ProofPlan {
    fn fetch<R: HashReader>(&self, reader: &mut R) -> Result<Vec<Hash>, TreeError<R::Error>> {
        let hashes = read(reader, &self.indexes)?;
        if self.eph_end - self.eph_begin <= 1 {
            return Ok(hashes);
        }
        let mut proof = Vec::with_capacity(hashes.len() - (self.eph_end - self.eph_begin) + 1);
        proof.extend_from_slice(&hashes[..self.eph_begin]);
        let ephemeral = &hashes[self.eph_begin..self.eph_end];
        let folded = ephemeral[1..]
            .iter()
            .fold(ephemeral[0], |acc, left| node_hash(left, &acc));
        proof.push(folded);
        proof.extend_from_slice(&hashes[self.eph_end..]);
        Ok(proof)
    }
}

/// RFC 9162 inclusion proof (audit path) for leaf `index` in the tree of `size`
/// (`tlog.ProveRecord`). One read of at most 2·log2(size) hashes.
pub fn inclusion_proof<R: HashReader>(
    index: u64,
    size: u64,
    reader: &mut R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    check_size(size)?;
    if index >= size {
        return invalid(format!(
            "leaf index {index} is not in a tree of size {size}"
        ));
    }
    plan_proof(index, 0, size, true).fetch(reader)
}

/// RFC 9162 consistency proof from `size1` to `size2` (`tlog.ProveTree`);
/// requires 0 < size1 <= size2. Equal sizes give the empty proof.
pub fn consistency_proof<R: HashReader>(
    size1: u64,
    size2: u64,
    reader: &mut R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    check_size(size2)?;
    if size1 == 0 || size1 > size2 {
        return invalid(format!(
            "consistency proof needs 0 < size1 <= size2, got {size1} and {size2}"
        ));
    }
    if size1 == size2 {
        return Ok(Vec::new());
    }
    // The largest perfect subtree ending at size1 is the seed; prove it is in size2. When
    // size1 is itself a power of two that subtree is the old root, which the verifier has.
    let level = size1.trailing_zeros();
    let index = (size1 - 1) >> level;
    plan_proof(index, level, size2, size1.is_power_of_two()).fetch(reader)
}

// ---------------------------------------------------------------------------------------------
// Verification (RFC 9162 §2.1.3.2 and §2.1.4.2), independent of the writer side above
// ---------------------------------------------------------------------------------------------

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// Inclusion: the leaf index is not below the tree size.
    IndexOutOfRange { index: u64, size: u64 },
    /// Consistency: the old tree is larger than the new one.
    SizesOutOfOrder { size1: u64, size2: u64 },
    /// Consistency from the empty tree proves nothing and is rejected.
    EmptyOldTree,
    /// The proof has the wrong number of hashes for these sizes.
    WrongProofLength { got: usize, want: usize },
    /// Inclusion: the proof leads to a different root.
    RootMismatch,
    /// Consistency: the proof does not lead to the old root.
    OldRootMismatch,
    /// Consistency: the proof does not lead to the new root.
    NewRootMismatch,
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is not in a tree of size {size}")
            }
            ProofError::SizesOutOfOrder { size1, size2 } => {
                write!(
                    f,
                    "old tree size {size1} is larger than new tree size {size2}"
                )
            }
            ProofError::EmptyOldTree => {
                write!(f, "consistency proof from the empty tree is meaningless")
            }
            ProofError::WrongProofLength { got, want } => {
                write!(f, "proof has {got} hashes, expected {want}")
            }
            ProofError::RootMismatch => {
                write!(f, "inclusion proof does not lead to the expected root")
            }
            ProofError::OldRootMismatch => {
                write!(f, "consistency proof does not lead to the old root")
            }
            ProofError::NewRootMismatch => {
                write!(f, "consistency proof does not lead to the new root")
            }
        }
    }
}

impl std::error::Error for ProofError {}

/// Splits the audit path of leaf `index` in a tree of `size` (> index) into the levels below
/// the point where its path and the path of leaf `size - 1` diverge (`inner`) and the left
/// siblings along the right border above it (`border`).
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Hashes `seed` (the node at `index` on its level) up through `proof`, taking the side of
/// each sibling from the bits of `index`.
fn chain_inner(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if index.checked_shr(i as u32).unwrap_or(0) & 1 == 0 {
            seed = node_hash(&seed, h);
        } else {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

/// Like [`chain_inner`] but only uses left siblings: the same subtree in the older tree.
fn chain_inner_right(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if index.checked_shr(i as u32).unwrap_or(0) & 1 == 1 {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

/// Along the right border every sibling is on the left.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

/// Checks that `proof` shows leaf hash `leaf` at `index` in the tree of `size` with `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose_inclusion(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    let (inner_proof, border_proof) = proof.split_at(inner);
    let calculated = chain_border_right(chain_inner(*leaf, inner_proof, index), border_proof);
    if calculated != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `size1` with `root1` is a prefix of the tree of
/// `size2` with `root2` (RFC 9162 §2.1.4.2). Size 0 is rejected; equal sizes need an empty
/// proof and equal roots.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        if root1 != root2 {
            return Err(ProofError::NewRootMismatch);
        }
        return Ok(());
    }

    // The proof is, after an optional seed, a suffix of the inclusion proof of leaf size1-1
    // in size2, starting at the level of the largest perfect subtree ending at size1.
    let (inner, border) = decompose_inclusion(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    let inner = inner - shift; // inner > shift because size1 < size2.
    // That subtree's hash is the first proof element, unless it is the whole old tree.
    let start = usize::from(!size1.is_power_of_two());
    if proof.len() != start + inner + border {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: start + inner + border,
        });
    }
    let seed = if start == 0 { *root1 } else { proof[0] };
    let (inner_proof, border_proof) = proof[start..].split_at(inner);
    let mask = (size1 - 1) >> shift;

    let hash1 = chain_border_right(chain_inner_right(seed, inner_proof, mask), border_proof);
    if hash1 != *root1 {
        return Err(ProofError::OldRootMismatch);
    }
    let hash2 = chain_border_right(chain_inner(seed, inner_proof, mask), border_proof);
    if hash2 != *root2 {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}
