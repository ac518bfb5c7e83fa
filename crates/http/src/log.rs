//! Structured logs: one JSON object per line on stdout
//! (`{time, level, message, service, ...fields}`). Secrets never go through here: callers pass
//! ids and hashes, never tokens or keys.

use serde_json::{Map, Value};
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static PROCESS_SERVICE: OnceLock<String> = OnceLock::new();
static QUIET: AtomicBool = AtomicBool::new(false);

/// Drops info lines (warnings and errors are still written); used by `mobius bench`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Sets the `service` field used when a log line does not name one (e.g. `mobius`).
pub fn set_process_service(name: &str) {
    let _ = PROCESS_SERVICE.set(name.to_string());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Writes one log line. `fields` may include `service` to override the process default.
pub fn log(level: Level, message: &str, fields: &[(&str, Value)]) {
    if level == Level::Info && QUIET.load(Ordering::Relaxed) {
        return;
    }
    let mut m = Map::new();
    m.insert(
        "time".into(),
        Value::String(mobius_core::time::rfc3339_ms(mobius_core::time::now_ms())),
    );
    m.insert("level".into(), Value::String(level.as_str().into()));
    m.insert("message".into(), Value::String(message.into()));
    m.insert(
        "service".into(),
        Value::String(
            PROCESS_SERVICE
                .get()
                .map_or("mobius", String::as_str)
                .to_string(),
        ),
    );
    for (k, v) in fields {
        m.insert((*k).to_string(), v.clone());
    }
    let mut line = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
    line.push(b'\n');
    // One write call per line keeps lines whole when several threads log at once.
    let _ = std::io::stdout().lock().write_all(&line);
}

pub fn info(message: &str, fields: &[(&str, Value)]) {
    log(Level::Info, message, fields)
}
pub fn warn(message: &str, fields: &[(&str, Value)]) {
    log(Level::Warn, message, fields)
}
pub fn error(message: &str, fields: &[(&str, Value)]) {
    log(Level::Error, message, fields)
}
