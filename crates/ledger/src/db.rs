//! SQL for the ledger tables, written once for both backends. Every function takes the
//! connection it runs on, so the sequencer can call them inside its write transaction and
//! readers on pooled connections.

use mobius_core::jcs;
use mobius_core::merkle::{Hash, HashReader, sha256};
use mobius_core::time::rfc3339_ms;
use mobius_store::{Conn, Param, Row, StoreError, placeholders};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The stored hashes table read as a Merkle [`HashReader`].
pub struct DbHashes<'a>(pub &'a mut Conn);

/// Parameters per `IN (...)` query (well under SQLite's and PostgreSQL's limits).
const HASH_READ_CHUNK: usize = 256;

impl HashReader for DbHashes<'_> {
    type Error = StoreError;

    fn read_hashes(&mut self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        let mut found: HashMap<u64, Hash> = HashMap::with_capacity(indexes.len());
        for chunk in indexes.chunks(HASH_READ_CHUNK) {
            let ints: Vec<i64> = chunk.iter().map(|&n| to_i64(n)).collect::<Result<_, _>>()?;
            let params: Vec<Param<'_>> = ints.iter().map(|&n| Param::Int(n)).collect();
            let sql = format!(
                "SELECT n, hash FROM ledger_hashes WHERE n IN ({})",
                placeholders(1, params.len())
            );
            for row in self.0.query(&sql, &params)? {
                found.insert(to_u64(row.i64(0)?)?, row.hash(1)?);
            }
        }
        indexes
            .iter()
            .map(|n| {
                found
                    .get(n)
                    .copied()
                    .ok_or_else(|| StoreError::other(format!("stored hash {n} is missing")))
            })
            .collect()
    }
}

pub fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n)
        .map_err(|_| StoreError::other(format!("{n} does not fit a 64-bit signed integer")))
}

pub fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::other(format!("negative value {n} in the store")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub tree_size: u64,
    pub sealed_size: u64,
}

pub fn head(c: &mut Conn) -> Result<Head, StoreError> {
    let row = c
        .query_opt(
            "SELECT tree_size, sealed_size FROM ledger_head WHERE id = 1",
            &[],
        )?
        .ok_or_else(|| StoreError::other("ledger_head row is missing; run mobius migrate"))?;
    Ok(Head {
        tree_size: to_u64(row.i64(0)?)?,
        sealed_size: to_u64(row.i64(1)?)?,
    })
}

pub fn set_head(c: &mut Conn, h: Head) -> Result<(), StoreError> {
    c.execute(
        "UPDATE ledger_head SET tree_size = $1, sealed_size = $2 WHERE id = 1",
        &[
            Param::Int(to_i64(h.tree_size)?),
            Param::Int(to_i64(h.sealed_size)?),
        ],
    )?;
    Ok(())
}

/// A sealed block (SPEC §3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub height: u64,
    pub first_index: u64,
    pub entry_count: u64,
    pub tree_size: u64,
    pub root_hash: Hash,
    pub prev_block_hash: Hash,
    pub block_hash: Hash,
    pub sealed_at_ms: i64,
    pub checkpoint: String,
}

impl Block {
    /// The block header that `block_hash` covers: the block without `block_hash` and
    /// `checkpoint`, hashes in lowercase hex, `sealed_at` in RFC 3339 with milliseconds.
    pub fn header_json(&self) -> Value {
        json!({
            "height": self.height,
            "first_index": self.first_index,
            "entry_count": self.entry_count,
            "tree_size": self.tree_size,
            "root_hash": hex::encode(self.root_hash),
            "prev_block_hash": hex::encode(self.prev_block_hash),
            "sealed_at": rfc3339_ms(self.sealed_at_ms),
        })
    }

    /// SHA-256 over the JCS of [`Block::header_json`].
    pub fn compute_hash(&self) -> Hash {
        // The header holds only small integers and strings, so canonicalisation cannot fail.
        sha256(&jcs::to_vec(&self.header_json()).unwrap_or_default())
    }

    pub fn to_json(&self) -> Value {
        let mut v = self.header_json();
        v["block_hash"] = json!(hex::encode(self.block_hash));
        v["checkpoint"] = json!(self.checkpoint);
        v
    }
}

const BLOCK_COLUMNS: &str = "height, first_index, entry_count, tree_size, root_hash, prev_block_hash, block_hash, sealed_at_ms, checkpoint";

fn block_from_row(r: &Row) -> Result<Block, StoreError> {
    Ok(Block {
        height: to_u64(r.i64(0)?)?,
        first_index: to_u64(r.i64(1)?)?,
        entry_count: to_u64(r.i64(2)?)?,
        tree_size: to_u64(r.i64(3)?)?,
        root_hash: r.hash(4)?,
        prev_block_hash: r.hash(5)?,
        block_hash: r.hash(6)?,
        sealed_at_ms: r.i64(7)?,
        checkpoint: r.text(8)?.to_string(),
    })
}

pub fn insert_block(c: &mut Conn, b: &Block) -> Result<(), StoreError> {
    c.execute(
        &format!("INSERT INTO ledger_blocks ({BLOCK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
        &[
            Param::Int(to_i64(b.height)?),
            Param::Int(to_i64(b.first_index)?),
            Param::Int(to_i64(b.entry_count)?),
            Param::Int(to_i64(b.tree_size)?),
            Param::Bytes(&b.root_hash),
            Param::Bytes(&b.prev_block_hash),
            Param::Bytes(&b.block_hash),
            Param::Int(b.sealed_at_ms),
            Param::Text(&b.checkpoint),
        ],
    )?;
    Ok(())
}

pub fn latest_block(c: &mut Conn) -> Result<Option<Block>, StoreError> {
    c.query_opt(
        &format!("SELECT {BLOCK_COLUMNS} FROM ledger_blocks ORDER BY height DESC LIMIT 1"),
        &[],
    )?
    .map(|r| block_from_row(&r))
    .transpose()
}

pub fn block_by_height(c: &mut Conn, height: u64) -> Result<Option<Block>, StoreError> {
    c.query_opt(
        &format!("SELECT {BLOCK_COLUMNS} FROM ledger_blocks WHERE height = $1"),
        &[Param::Int(to_i64(height)?)],
    )?
    .map(|r| block_from_row(&r))
    .transpose()
}

pub fn blocks_from(c: &mut Conn, from_height: u64, limit: usize) -> Result<Vec<Block>, StoreError> {
    c.query(
        &format!(
            "SELECT {BLOCK_COLUMNS} FROM ledger_blocks WHERE height >= $1 ORDER BY height LIMIT $2"
        ),
        &[Param::Int(to_i64(from_height)?), Param::Int(limit as i64)],
    )?
    .iter()
    .map(block_from_row)
    .collect()
}

/// The height of the block that sealed entry `index`, if it is sealed.
pub fn block_height_of(c: &mut Conn, index: u64) -> Result<Option<u64>, StoreError> {
    let row = c.query_opt(
        "SELECT height, first_index, entry_count FROM ledger_blocks WHERE first_index <= $1 ORDER BY first_index DESC LIMIT 1",
        &[Param::Int(to_i64(index)?)],
    )?;
    let Some(r) = row else { return Ok(None) };
    let (height, first, count) = (to_u64(r.i64(0)?)?, to_u64(r.i64(1)?)?, to_u64(r.i64(2)?)?);
    Ok((index < first + count).then_some(height))
}

/// A stored entry as read back.
#[derive(Debug, Clone)]
pub struct EntryRow {
    pub index: u64,
    pub id: Hash,
    pub leaf_data: Vec<u8>,
}

impl EntryRow {
    /// The entry's own fields (parsed from its leaf data) plus `id` and `index`.
    pub fn to_json(&self) -> Result<Value, StoreError> {
        let mut v: Value = serde_json::from_slice(&self.leaf_data).map_err(|e| {
            StoreError::other(format!(
                "entry {} has unreadable leaf data: {e}",
                self.index
            ))
        })?;
        let obj = v.as_object_mut().ok_or_else(|| {
            StoreError::other(format!("entry {} leaf data is not an object", self.index))
        })?;
        obj.insert("id".into(), json!(hex::encode(self.id)));
        obj.insert("index".into(), json!(self.index));
        Ok(v)
    }
}

fn entry_from_row(r: &Row) -> Result<EntryRow, StoreError> {
    Ok(EntryRow {
        index: to_u64(r.i64(0)?)?,
        id: r.hash(1)?,
        leaf_data: r.bytes(2)?.to_vec(),
    })
}

pub fn entry_by_index(c: &mut Conn, index: u64) -> Result<Option<EntryRow>, StoreError> {
    c.query_opt(
        "SELECT idx, id, leaf_data FROM ledger_entries WHERE idx = $1",
        &[Param::Int(to_i64(index)?)],
    )?
    .map(|r| entry_from_row(&r))
    .transpose()
}

pub fn entry_by_id(c: &mut Conn, id: &Hash) -> Result<Option<EntryRow>, StoreError> {
    c.query_opt(
        "SELECT idx, id, leaf_data FROM ledger_entries WHERE id = $1 ORDER BY idx LIMIT 1",
        &[Param::Bytes(id)],
    )?
    .map(|r| entry_from_row(&r))
    .transpose()
}

#[derive(Debug, Default, Clone)]
pub struct EntryFilter {
    pub subject: Option<String>,
    pub entry_type: Option<String>,
    pub source: Option<String>,
}

/// Entries with index ≥ `from_index` matching `filter`, ascending, at most `limit`.
pub fn list_entries(
    c: &mut Conn,
    f: &EntryFilter,
    from_index: u64,
    limit: usize,
) -> Result<Vec<EntryRow>, StoreError> {
    let from = to_i64(from_index)?;
    let lim = limit as i64;
    let mut sql = String::from("SELECT idx, id, leaf_data FROM ledger_entries WHERE idx >= $1");
    let mut params: Vec<Param<'_>> = vec![Param::Int(from)];
    for (col, v) in [
        ("subject", &f.subject),
        ("type", &f.entry_type),
        ("source", &f.source),
    ] {
        if let Some(v) = v {
            params.push(Param::Text(v));
            sql.push_str(&format!(" AND {col} = ${}", params.len()));
        }
    }
    params.push(Param::Int(lim));
    sql.push_str(&format!(" ORDER BY idx LIMIT ${}", params.len()));
    c.query(&sql, &params)?.iter().map(entry_from_row).collect()
}

/// An existing entry with the given (source, ref), for idempotent re-submission.
pub struct ExistingRef {
    pub index: u64,
    pub id: Hash,
    pub fingerprint: Option<Hash>,
    pub timestamp_ms: i64,
}

pub fn find_ref(
    c: &mut Conn,
    source: &str,
    reference: &str,
) -> Result<Option<ExistingRef>, StoreError> {
    let row = c.query_opt(
        "SELECT idx, id, fingerprint, timestamp_ms FROM ledger_entries WHERE source = $1 AND ref = $2",
        &[Param::Text(source), Param::Text(reference)],
    )?;
    let Some(r) = row else { return Ok(None) };
    let fingerprint = match r.opt_bytes(2)? {
        Some(b) => Some(
            b.try_into()
                .map_err(|_| StoreError::other("fingerprint is not 32 bytes"))?,
        ),
        None => None,
    };
    Ok(Some(ExistingRef {
        index: to_u64(r.i64(0)?)?,
        id: r.hash(1)?,
        fingerprint,
        timestamp_ms: r.i64(3)?,
    }))
}

pub fn timestamp_of(c: &mut Conn, index: u64) -> Result<Option<i64>, StoreError> {
    c.query_opt(
        "SELECT timestamp_ms FROM ledger_entries WHERE idx = $1",
        &[Param::Int(to_i64(index)?)],
    )?
    .map(|r| r.i64(0))
    .transpose()
}

pub fn setting(c: &mut Conn, key: &str) -> Result<Option<String>, StoreError> {
    c.query_opt(
        "SELECT value FROM settings WHERE key = $1",
        &[Param::Text(key)],
    )?
    .map(|r| r.text(0).map(str::to_string))
    .transpose()
}

pub fn set_setting(c: &mut Conn, key: &str, value: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Param::Text(key), Param::Text(value)],
    )?;
    Ok(())
}

/// Counts of entries per type.
pub fn type_counts(c: &mut Conn) -> Result<Vec<(String, u64)>, StoreError> {
    c.query(
        "SELECT type, count FROM ledger_type_counts ORDER BY type",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?.to_string(), to_u64(r.i64(1)?)?)))
    .collect()
}

pub fn subject_count(c: &mut Conn) -> Result<u64, StoreError> {
    let r = c.query_opt("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_subjects", &[])?;
    r.map_or(Ok(0), |r| to_u64(r.i64(0)?))
}
