//! Versioned schema migrations. Each migration has one SQL text per backend; versions are
//! applied in order, each in its own transaction, and recorded in `schema_migrations`.
//! A database whose schema is newer than this binary is refused rather than guessed at.

use crate::{Backend, Conn, ErrorKind, Param, StoreError};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Advisory-lock key that serialises concurrent migrators on PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x6d6f_6269_7573_0001;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger and operator tokens",
        sqlite: r#"
CREATE TABLE ledger_entries (
    idx          INTEGER PRIMARY KEY,
    id           BLOB    NOT NULL,
    type         TEXT    NOT NULL,
    subject      TEXT,
    source       TEXT    NOT NULL,
    ref          TEXT,
    fingerprint  BLOB,
    timestamp_ms INTEGER NOT NULL,
    leaf_data    BLOB    NOT NULL
);
CREATE INDEX ledger_entries_id ON ledger_entries (id);
CREATE UNIQUE INDEX ledger_entries_ref ON ledger_entries (source, ref) WHERE ref IS NOT NULL;
CREATE INDEX ledger_entries_subject ON ledger_entries (subject, idx) WHERE subject IS NOT NULL;
CREATE INDEX ledger_entries_type ON ledger_entries (type, idx);
CREATE INDEX ledger_entries_source ON ledger_entries (source, idx);
CREATE TABLE ledger_hashes (
    n    INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
CREATE TABLE ledger_blocks (
    height          INTEGER PRIMARY KEY,
    first_index     INTEGER NOT NULL UNIQUE,
    entry_count     INTEGER NOT NULL,
    tree_size       INTEGER NOT NULL,
    root_hash       BLOB    NOT NULL,
    prev_block_hash BLOB    NOT NULL,
    block_hash      BLOB    NOT NULL,
    sealed_at_ms    INTEGER NOT NULL,
    checkpoint      TEXT    NOT NULL
);
CREATE TABLE ledger_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size   INTEGER NOT NULL,
    sealed_size INTEGER NOT NULL
);
INSERT INTO ledger_head (id, tree_size, sealed_size) VALUES (1, 0, 0);
CREATE TABLE ledger_type_counts (
    type  TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE ledger_subjects (
    subject     TEXT PRIMARY KEY,
    first_index INTEGER NOT NULL
);
CREATE TABLE auth_tokens (
    id            TEXT PRIMARY KEY,
    token_hash    BLOB    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    revoked_at_ms INTEGER
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
        postgres: r#"
CREATE TABLE ledger_entries (
    idx          BIGINT PRIMARY KEY,
    id           BYTEA  NOT NULL,
    type         TEXT   NOT NULL,
    subject      TEXT,
    source       TEXT   NOT NULL,
    ref          TEXT,
    fingerprint  BYTEA,
    timestamp_ms BIGINT NOT NULL,
    leaf_data    BYTEA  NOT NULL
);
CREATE INDEX ledger_entries_id ON ledger_entries (id);
CREATE UNIQUE INDEX ledger_entries_ref ON ledger_entries (source, ref) WHERE ref IS NOT NULL;
CREATE INDEX ledger_entries_subject ON ledger_entries (subject, idx) WHERE subject IS NOT NULL;
CREATE INDEX ledger_entries_type ON ledger_entries (type, idx);
CREATE INDEX ledger_entries_source ON ledger_entries (source, idx);
CREATE TABLE ledger_hashes (
    n    BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);
CREATE TABLE ledger_blocks (
    height          BIGINT PRIMARY KEY,
    first_index     BIGINT NOT NULL UNIQUE,
    entry_count     BIGINT NOT NULL,
    tree_size       BIGINT NOT NULL,
    root_hash       BYTEA  NOT NULL,
    prev_block_hash BYTEA  NOT NULL,
    block_hash      BYTEA  NOT NULL,
    sealed_at_ms    BIGINT NOT NULL,
    checkpoint      TEXT   NOT NULL
);
CREATE TABLE ledger_head (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    tree_size   BIGINT NOT NULL,
    sealed_size BIGINT NOT NULL
);
INSERT INTO ledger_head (id, tree_size, sealed_size) VALUES (1, 0, 0);
CREATE TABLE ledger_type_counts (
    type  TEXT PRIMARY KEY,
    count BIGINT NOT NULL
);
CREATE TABLE ledger_subjects (
    subject     TEXT PRIMARY KEY,
    first_index BIGINT NOT NULL
);
CREATE TABLE auth_tokens (
    id            TEXT PRIMARY KEY,
    token_hash    BYTEA  NOT NULL UNIQUE,
    role          TEXT   NOT NULL,
    subject       TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    },
    Migration {
        version: 2,
        name: "integrity monitor, alerts, automation halt, incidents",
        sqlite: r#"
CREATE TABLE integrity_samples (
    at_ms       INTEGER PRIMARY KEY,
    gi          REAL,
    mii         REAL,
    ledger      REAL,
    economy     REAL,
    reliability REAL,
    sentinels   REAL,
    detail      TEXT NOT NULL
);
CREATE TABLE automation_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    halted     INTEGER NOT NULL,
    since_ms   INTEGER NOT NULL,
    reason     TEXT    NOT NULL,
    actor      TEXT    NOT NULL
);
CREATE TABLE alert_history (
    id          INTEGER PRIMARY KEY,
    alert_id    TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,
    value       REAL    NOT NULL,
    labels      TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    acked_by    TEXT
);
CREATE INDEX alert_history_at ON alert_history (at_ms);
CREATE TABLE incidents (
    id            TEXT    PRIMARY KEY,
    title         TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    services      TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    opened_at_ms  INTEGER NOT NULL,
    opened_by     TEXT    NOT NULL,
    alert_id      TEXT,
    resolved_at_ms INTEGER,
    postmortem    TEXT
);
CREATE INDEX incidents_status ON incidents (status, opened_at_ms);
CREATE TABLE incident_updates (
    id          INTEGER PRIMARY KEY,
    incident_id TEXT    NOT NULL REFERENCES incidents (id),
    at_ms       INTEGER NOT NULL,
    author      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    text        TEXT    NOT NULL
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, id);
"#,
        postgres: r#"
CREATE TABLE integrity_samples (
    at_ms       BIGINT PRIMARY KEY,
    gi          DOUBLE PRECISION,
    mii         DOUBLE PRECISION,
    ledger      DOUBLE PRECISION,
    economy     DOUBLE PRECISION,
    reliability DOUBLE PRECISION,
    sentinels   DOUBLE PRECISION,
    detail      TEXT NOT NULL
);
CREATE TABLE automation_state (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    halted     BIGINT NOT NULL,
    since_ms   BIGINT NOT NULL,
    reason     TEXT   NOT NULL,
    actor      TEXT   NOT NULL
);
CREATE TABLE alert_history (
    id          BIGSERIAL PRIMARY KEY,
    alert_id    TEXT   NOT NULL,
    rule        TEXT   NOT NULL,
    severity    TEXT   NOT NULL,
    from_state  TEXT,
    to_state    TEXT   NOT NULL,
    at_ms       BIGINT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    labels      TEXT   NOT NULL,
    summary     TEXT   NOT NULL,
    acked_by    TEXT
);
CREATE INDEX alert_history_at ON alert_history (at_ms);
CREATE TABLE incidents (
    id            TEXT   PRIMARY KEY,
    title         TEXT   NOT NULL,
    severity      TEXT   NOT NULL,
    services      TEXT   NOT NULL,
    summary       TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    opened_at_ms  BIGINT NOT NULL,
    opened_by     TEXT   NOT NULL,
    alert_id      TEXT,
    resolved_at_ms BIGINT,
    postmortem    TEXT
);
CREATE INDEX incidents_status ON incidents (status, opened_at_ms);
CREATE TABLE incident_updates (
    id          BIGSERIAL PRIMARY KEY,
    incident_id TEXT   NOT NULL REFERENCES incidents (id),
    at_ms       BIGINT NOT NULL,
    author      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    text        TEXT   NOT NULL
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, id);
"#,
    },
    Migration {
        version: 3,
        name: "citizen shield: citizens, manifests, nonces, security events",
        sqlite: r#"
CREATE TABLE citizens (
    civic_id      TEXT    PRIMARY KEY,
    public_key    BLOB    NOT NULL,
    display_name  TEXT,
    roles         TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    manifest_hash BLOB    NOT NULL
);
CREATE TABLE citizen_manifests (
    civic_id      TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    manifest      TEXT    NOT NULL,
    manifest_hash BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (civic_id, version)
);
CREATE TABLE auth_nonces (
    nonce         TEXT    PRIMARY KEY,
    civic_id      TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
);
CREATE INDEX auth_nonces_expiry ON auth_nonces (expires_at_ms);
CREATE TABLE security_events (
    id     INTEGER PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    actor  TEXT,
    ip     TEXT,
    route  TEXT,
    detail TEXT    NOT NULL
);
CREATE INDEX security_events_at ON security_events (at_ms);
CREATE INDEX auth_tokens_subject ON auth_tokens (subject);
"#,
        postgres: r#"
CREATE TABLE citizens (
    civic_id      TEXT   PRIMARY KEY,
    public_key    BYTEA  NOT NULL,
    display_name  TEXT,
    roles         TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    manifest_hash BYTEA  NOT NULL
);
CREATE TABLE citizen_manifests (
    civic_id      TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    manifest      TEXT   NOT NULL,
    manifest_hash BYTEA  NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (civic_id, version)
);
CREATE TABLE auth_nonces (
    nonce         TEXT   PRIMARY KEY,
    civic_id      TEXT   NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT
);
CREATE INDEX auth_nonces_expiry ON auth_nonces (expires_at_ms);
CREATE TABLE security_events (
    id     BIGSERIAL PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    kind   TEXT   NOT NULL,
    actor  TEXT,
    ip     TEXT,
    route  TEXT,
    detail TEXT   NOT NULL
);
CREATE INDEX security_events_at ON security_events (at_ms);
CREATE INDEX auth_tokens_subject ON auth_tokens (subject);
"#,
    },
];

fn ensure_table(conn: &mut Conn) -> Result<(), StoreError> {
    conn.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version       BIGINT PRIMARY KEY,
            name          TEXT   NOT NULL,
            applied_at_ms BIGINT NOT NULL
        )",
    )
}

/// The highest applied migration version (0 for an empty store).
pub fn schema_version(conn: &mut Conn) -> Result<i64, StoreError> {
    ensure_table(conn)?;
    let row = conn.query_opt(
        "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations",
        &[],
    )?;
    match row {
        Some(r) => r.i64(0),
        None => Ok(0),
    }
}

/// Applies every pending migration. Returns the versions applied (empty when up to date).
pub fn migrate(conn: &mut Conn, now_ms: i64) -> Result<Vec<i64>, StoreError> {
    ensure_table(conn)?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let done = conn.transaction(|c| -> Result<bool, StoreError> {
            c.lock_for_write(MIGRATION_LOCK_KEY)?;
            let current = {
                let r = c.query_opt("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations", &[])?;
                r.map(|r| r.i64(0)).transpose()?.unwrap_or(0)
            };
            if current > latest {
                return Err(StoreError::new(
                    ErrorKind::Schema,
                    format!(
                        "the store's schema version {current} is newer than this binary supports ({latest}); run a newer mobius"
                    ),
                ));
            }
            if current >= m.version {
                return Ok(false);
            }
            let sql = match c.backend() {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            c.batch(sql)?;
            c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
                &[Param::Int(m.version), Param::Text(m.name), Param::Int(now_ms)],
            )?;
            Ok(true)
        })?;
        if done {
            applied.push(m.version);
        }
    }
    Ok(applied)
}
