//! The store layer: one portable, synchronous SQL API over the embedded SQLite store (the
//! zero-setup default) and PostgreSQL (the scale-out store), plus versioned migrations.
//!
//! Invariants:
//! - SQL is written once, PostgreSQL style (`$1`, `$2`, ...); the SQLite backend rewrites the
//!   placeholders to `?1`, `?2`, ... Only four value kinds cross this boundary (null, 64-bit
//!   integer, text, bytes), so the same code behaves identically on both backends.
//! - Every call is blocking. Async code calls in from `spawn_blocking` or a dedicated thread.
//! - SQLite connections run in WAL mode with `synchronous=FULL`: a commit returns only after
//!   the write-ahead log is fsync'd, so an acknowledged write survives a crash.

mod checkpoint;
mod migrations;
mod pool;

pub use checkpoint::Checkpointer;

pub use migrations::{MIGRATIONS, Migration, migrate, schema_version};
pub use pool::Pool;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parameter passed to a statement.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> From<i64> for Param<'a> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl<'a> From<f64> for Param<'a> {
    fn from(v: f64) -> Self {
        Param::Float(v)
    }
}
impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}
impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Bytes(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Param::Bytes(v)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Param<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Param::Bytes(v)
    }
}
impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// A value read back from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One result row. Accessors fail with a clear error instead of panicking when the stored
/// value has an unexpected kind (a damaged or hand-edited database must not crash a reader).
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn value(&self, i: usize) -> Result<&Value, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::other(format!("column {i} out of range")))
    }
    pub fn i64(&self, i: usize) -> Result<i64, StoreError> {
        match self.value(i)? {
            Value::Int(v) => Ok(*v),
            other => Err(StoreError::other(format!(
                "column {i}: expected integer, found {other:?}"
            ))),
        }
    }
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }
    pub fn text(&self, i: usize) -> Result<&str, StoreError> {
        match self.value(i)? {
            Value::Text(v) => Ok(v),
            other => Err(StoreError::other(format!(
                "column {i}: expected text, found {other:?}"
            ))),
        }
    }
    pub fn f64(&self, i: usize) -> Result<f64, StoreError> {
        match self.value(i)? {
            Value::Float(v) => Ok(*v),
            Value::Int(v) => Ok(*v as f64),
            other => Err(StoreError::other(format!(
                "column {i}: expected a number, found {other:?}"
            ))),
        }
    }
    pub fn opt_f64(&self, i: usize) -> Result<Option<f64>, StoreError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.f64(i).map(Some),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
    /// Bytes; SQLite text in a byte column (a hand edit with a string function) is read as
    /// its UTF-8 bytes so a verifier can report the damage instead of failing to read.
    pub fn bytes(&self, i: usize) -> Result<&[u8], StoreError> {
        match self.value(i)? {
            Value::Bytes(v) => Ok(v),
            Value::Text(t) => Ok(t.as_bytes()),
            other => Err(StoreError::other(format!(
                "column {i}: expected bytes, found {other:?}"
            ))),
        }
    }
    pub fn opt_bytes(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        match self.value(i)? {
            Value::Null => Ok(None),
            _ => self.bytes(i).map(Some),
        }
    }
    /// A 32-byte hash column.
    pub fn hash(&self, i: usize) -> Result<[u8; 32], StoreError> {
        let b = self.bytes(i)?;
        b.try_into().map_err(|_| {
            StoreError::other(format!("column {i}: expected 32 bytes, found {}", b.len()))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A unique constraint was violated.
    Unique,
    /// The store could not be reached or the connection broke.
    Unavailable,
    /// The schema is missing, newer than this binary, or otherwise unusable.
    Schema,
    Other,
}

#[derive(Debug, Clone)]
pub struct StoreError {
    pub kind: ErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn other(message: impl Into<String>) -> Self {
        StoreError {
            kind: ErrorKind::Other,
            message: message.into(),
        }
    }
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let kind = match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                rusqlite::ErrorCode::ConstraintViolation => ErrorKind::Unique,
                rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::DatabaseBusy
                | rusqlite::ErrorCode::DatabaseLocked
                | rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::DiskFull => ErrorKind::Unavailable,
                _ => ErrorKind::Other,
            },
            _ => ErrorKind::Other,
        };
        StoreError {
            kind,
            message: format!("sqlite: {e}"),
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        let kind = if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
            ErrorKind::Unique
        } else if e.is_closed()
            || std::error::Error::source(&e)
                .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
        {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Other
        };
        // `{:#}`-style detail: postgres::Error's Display omits the server message.
        let detail = e.as_db_error().map(|d| d.message().to_string());
        let message = match detail {
            Some(d) => format!("postgres: {e}: {d}"),
            None => format!("postgres: {e}"),
        };
        StoreError { kind, message }
    }
}

/// Which backend a store URL names.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Path of the SQLite database file.
    Sqlite { path: PathBuf },
    /// A libpq-style URL (without our own `schema` parameter) and the schema to use.
    Postgres { url: String, schema: Option<String> },
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl StoreConfig {
    /// Parses `sqlite:PATH`, a plain path, or `postgres://...` / `postgresql://...`.
    /// PostgreSQL URLs may carry `schema=NAME` (ours, removed before connecting): every table
    /// lives in that schema, so several stacks (or tests) can share one database.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let (base, query) = match s.split_once('?') {
                Some((b, q)) => (b, Some(q)),
                None => (s, None),
            };
            let mut schema = None;
            let mut kept = Vec::new();
            for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("schema", v)) => {
                        if v.is_empty()
                            || v.len() > 63
                            || !v
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                            || v.as_bytes()[0].is_ascii_digit()
                        {
                            return Err(StoreError::new(
                                ErrorKind::Schema,
                                "store URL: schema must be 1-63 characters of [a-z0-9_], not starting with a digit",
                            ));
                        }
                        schema = Some(v.to_string());
                    }
                    _ => kept.push(pair),
                }
            }
            let url = if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            };
            Ok(StoreConfig::Postgres { url, schema })
        } else {
            let path = s.strip_prefix("sqlite:").unwrap_or(s);
            if path.is_empty() {
                return Err(StoreError::new(
                    ErrorKind::Schema,
                    "store URL: empty SQLite path",
                ));
            }
            Ok(StoreConfig::Sqlite {
                path: PathBuf::from(path),
            })
        }
    }

    pub fn sqlite(path: impl AsRef<Path>) -> Self {
        StoreConfig::Sqlite {
            path: path.as_ref().to_path_buf(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreConfig::Postgres { .. })
    }

    /// The URL with any password replaced by `****`, safe for logs and `config check`.
    pub fn masked(&self) -> String {
        match self {
            StoreConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
            StoreConfig::Postgres { url, schema } => {
                let masked = mask_password(url);
                match schema {
                    Some(s) => format!("{masked} (schema {s})"),
                    None => masked,
                }
            }
        }
    }

    /// Opens a new connection, configured for this backend.
    pub fn connect(&self) -> Result<Conn, StoreError> {
        match self {
            StoreConfig::Sqlite { path } => Conn::open_sqlite(path),
            StoreConfig::Postgres { url, schema } => Conn::open_postgres(url, schema.as_deref()),
        }
    }
}

fn mask_password(url: &str) -> String {
    // postgres://user:password@host/db → postgres://user:****@host/db
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:****{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// Which backend a connection talks to; SQL that differs (DDL, upserts) branches on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The synchronous PostgreSQL client runs its own small runtime and drops by blocking on it,
/// which panics on a tokio worker thread ("Cannot start a runtime from within a runtime").
/// Connections are dropped wherever their owner goes away — often on a worker thread at
/// shutdown — so the drop is moved to a plain thread.
struct PgClient(Option<postgres::Client>);

impl std::ops::Deref for PgClient {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("the client is present until drop")
    }
}

impl std::ops::DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("the client is present until drop")
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let dropper = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop(client));
            if let Ok(handle) = dropper {
                let _ = handle.join();
            }
        }
    }
}

pub struct PgConn {
    client: PgClient,
    statements: HashMap<String, postgres::Statement>,
}

/// A connection to either backend.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
}

/// Rewrites `$1`-style placeholders to SQLite's `?1`.
fn sqlite_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    if sql.contains('$') {
        std::borrow::Cow::Owned(sql.replace('$', "?"))
    } else {
        std::borrow::Cow::Borrowed(sql)
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match *self {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
            Param::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Param::Bytes(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Param::Float(v) => ToSqlOutput::Borrowed(ValueRef::Real(v)),
        })
    }
}

impl postgres_types::ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &postgres_types::Type,
        out: &mut postgres_types::private::BytesMut,
    ) -> Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres_types::Type;
        match *self {
            Param::Null => Ok(postgres_types::IsNull::Yes),
            Param::Int(v) => match *ty {
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Param::Text(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
            Param::Float(v) => match *ty {
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
        }
    }
    fn accepts(_ty: &postgres_types::Type) -> bool {
        // The variant decides; a mismatch surfaces as a clear error from the inner to_sql.
        true
    }
    postgres_types::to_sql_checked!();
}

fn pg_value(row: &postgres::Row, i: usize) -> Result<Value, StoreError> {
    use postgres_types::Type;
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Value::Null, |v| Value::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map_or(Value::Null, |v| Value::Int(v.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)?
            .map_or(Value::Null, Value::Float),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)?
            .map_or(Value::Null, |v| Value::Float(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, |v| Value::Int(v.into())),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Value::Null, Value::Bytes),
        Type::NUMERIC => {
            // SUM() over BIGINT yields NUMERIC; we cast in SQL where it matters, so refuse here.
            return Err(StoreError::other(format!(
                "column {i}: NUMERIC is not supported; cast to BIGINT"
            )));
        }
        Type::VOID => Value::Null,
        _ => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::Text),
    })
}

fn sqlite_row(row: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match row.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::Int(v),
            // REAL never appears in our schema; keep it representable instead of failing.
            ValueRef::Real(v) => Value::Float(v),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
        });
    }
    Ok(Row(out))
}

impl Conn {
    fn open_sqlite(path: &Path) -> Result<Conn, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::new(
                    ErrorKind::Unavailable,
                    format!("create {}: {e}", parent.display()),
                )
            })?;
        }
        let conn = rusqlite::Connection::open(path).map_err(|e| {
            StoreError::new(
                ErrorKind::Unavailable,
                format!("open SQLite database {}: {e}", path.display()),
            )
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL lets readers proceed during a write; FULL makes each commit fsync the WAL, which
        // is what "acknowledged only after it is durable" requires.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -32_768)?; // 32 MiB page cache per connection
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Conn::Sqlite(conn))
    }

    fn open_postgres(url: &str, schema: Option<&str>) -> Result<Conn, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|e| {
            StoreError::new(
                ErrorKind::Unavailable,
                format!("invalid PostgreSQL URL: {e}"),
            )
        })?;
        config.connect_timeout(Duration::from_secs(5));
        if config.get_application_name().is_none() {
            config.application_name("mobius");
        }
        let mut client = config.connect(postgres::NoTls).map_err(|e| {
            StoreError::new(
                ErrorKind::Unavailable,
                format!("connect to PostgreSQL: {e}"),
            )
        })?;
        if let Some(schema) = schema {
            // Schema names are validated in StoreConfig::parse, so quoting is safe here.
            client.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
            ))?;
        }
        Ok(Conn::Postgres(Box::new(PgConn {
            client: PgClient(Some(client)),
            statements: HashMap::new(),
        })))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs several statements without parameters (DDL, pragmas).
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(p) => Ok(p.client.batch_execute(sql)?),
        }
    }

    /// Runs one statement; returns the number of rows changed.
    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sqlite_sql(sql))?;
                Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Conn::Postgres(p) => {
                let stmt = p.statement(sql)?;
                let refs: Vec<&(dyn postgres_types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn postgres_types::ToSql + Sync))
                    .collect();
                Ok(p.client.execute(&stmt, &refs)?)
            }
        }
    }

    /// Runs a query and returns every row.
    pub fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sqlite_sql(sql))?;
                let n = stmt.column_count();
                let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    sqlite_row(r, n)
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            }
            Conn::Postgres(p) => {
                let stmt = p.statement(sql)?;
                let refs: Vec<&(dyn postgres_types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn postgres_types::ToSql + Sync))
                    .collect();
                let rows = p.client.query(&stmt, &refs)?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| pg_value(r, i))
                            .collect::<Result<Vec<_>, _>>()
                            .map(Row)
                    })
                    .collect()
            }
        }
    }

    /// Runs a query expected to return at most one row.
    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs `f` inside a transaction: committed when `f` returns Ok, rolled back otherwise.
    /// SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so a transaction never fails
    /// half-way with SQLITE_BUSY on upgrade.
    pub fn transaction<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let begin = match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        self.batch(begin)?;
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.batch("COMMIT") {
                    let _ = self.batch("ROLLBACK");
                    return Err(e.into());
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Turns SQLite's automatic in-commit WAL checkpoints off for this connection (run a
    /// [`Checkpointer`] instead). No-op on PostgreSQL.
    pub fn disable_auto_checkpoint(&mut self) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(c) => Ok(c.pragma_update(None, "wal_autocheckpoint", 0)?),
            Conn::Postgres(_) => Ok(()),
        }
    }

    /// True when the connection can no longer be used (PostgreSQL connection lost).
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::Sqlite(_) => false,
            Conn::Postgres(p) => p.client.is_closed(),
        }
    }

    /// Cheap liveness probe.
    pub fn ping(&mut self) -> Result<(), StoreError> {
        self.query("SELECT 1", &[]).map(|_| ())
    }

    /// Takes the cluster-wide write lock for the current transaction (PostgreSQL advisory
    /// lock; released at commit or rollback). SQLite needs none: `BEGIN IMMEDIATE` already
    /// serialises writers and one process owns the data directory.
    pub fn lock_for_write(&mut self, key: i64) -> Result<(), StoreError> {
        match self.backend() {
            Backend::Sqlite => Ok(()),
            Backend::Postgres => self
                .execute("SELECT pg_advisory_xact_lock($1)", &[Param::Int(key)])
                .map(|_| ()),
        }
    }

    /// Access to the raw SQLite connection (baselines and maintenance tools only).
    pub fn as_sqlite(&mut self) -> Option<&mut rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }
}

impl PgConn {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(sql)?;
        if self.statements.len() >= 256 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

/// Builds `$start, $start+1, ...` for an `IN (...)` list of `n` parameters.
pub fn placeholders(start: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(start + i).to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!(
            StoreConfig::parse("data/x.db").unwrap(),
            StoreConfig::sqlite("data/x.db")
        );
        assert_eq!(
            StoreConfig::parse("sqlite:/tmp/a.db").unwrap(),
            StoreConfig::sqlite("/tmp/a.db")
        );
        let pg =
            StoreConfig::parse("postgres://u:secret@h:5432/db?schema=t_1&sslmode=disable").unwrap();
        assert_eq!(
            pg,
            StoreConfig::Postgres {
                url: "postgres://u:secret@h:5432/db?sslmode=disable".into(),
                schema: Some("t_1".into())
            }
        );
        assert!(!pg.masked().contains("secret"), "{}", pg.masked());
        assert!(StoreConfig::parse("postgres://h/db?schema=Bad-Name").is_err());
        assert!(StoreConfig::parse("postgres://h/db?schema=1abc").is_err());
    }

    #[test]
    fn sqlite_round_trip_and_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StoreConfig::sqlite(dir.path().join("t.db"))
            .connect()
            .unwrap();
        c.batch("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c BLOB)")
            .unwrap();
        c.execute(
            "INSERT INTO t (a, b, c) VALUES ($1, $2, $3)",
            &[1.into(), "x".into(), Param::Null],
        )
        .unwrap();
        let r: Result<(), StoreError> = c.transaction(|c| {
            c.execute(
                "INSERT INTO t (a, b, c) VALUES ($1, $2, $3)",
                &[2.into(), Param::Null, Param::Bytes(b"z")],
            )?;
            Err(StoreError::other("abort"))
        });
        assert!(r.is_err());
        let rows = c.query("SELECT a, b, c FROM t ORDER BY a", &[]).unwrap();
        assert_eq!(rows.len(), 1, "rolled-back insert must not be visible");
        assert_eq!(rows[0].i64(0).unwrap(), 1);
        assert_eq!(rows[0].text(1).unwrap(), "x");
        assert_eq!(rows[0].opt_bytes(2).unwrap(), None);
        assert!(
            rows[0].text(0).is_err(),
            "wrong kind must be an error, not a panic"
        );
        let dup = c.execute(
            "INSERT INTO t (a, b, c) VALUES ($1, $2, $3)",
            &[1.into(), "y".into(), Param::Null],
        );
        assert_eq!(dup.unwrap_err().kind, ErrorKind::Unique);
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 0), "");
    }
}
