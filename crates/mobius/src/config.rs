//! Configuration (SPEC §12): built-in defaults, overridden by `mobius.toml`, overridden by
//! `MOBIUS_*` environment variables, overridden by flags. Clap resolves flag-over-env; this
//! module layers the file and the defaults underneath.

use clap::Args;
use mobius_ledger::LedgerConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Seed ports (SPEC §1).
pub const SERVICES: &[(&str, u16)] = &[
    ("portal", 3002),
    ("ledger-api", 4001),
    ("indexer-api", 4002),
    ("eomm-api", 4003),
    ("shield-api", 4004),
    ("broker-api", 4005),
];

/// Options shared by every command that touches a data directory or store.
#[derive(Debug, Clone, Args)]
pub struct CommonOpts {
    /// Data directory: store, keys, operator token, backups [default: ./mobius-data]
    #[arg(long, env = "MOBIUS_DATA", global = true)]
    pub data: Option<PathBuf>,
    /// Store URL: postgres://... for the scale-out store [default: SQLite in the data directory]
    #[arg(long, env = "MOBIUS_STORE", global = true, hide_env_values = true)]
    pub store: Option<String>,
    /// Configuration file [default: ./mobius.toml if it exists]
    #[arg(long, env = "MOBIUS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// Options of commands that serve HTTP.
#[derive(Debug, Clone, Args)]
pub struct ServeOpts {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "MOBIUS_BIND")]
    pub bind: Option<String>,
    /// Shift every seed port by N so a second stack can run beside the first [default: 0]
    #[arg(long, env = "MOBIUS_PORT_OFFSET")]
    pub port_offset: Option<i32>,
    /// ledger-api port (overrides seed port + offset; 0 picks a free port)
    #[arg(long, env = "MOBIUS_LEDGER_PORT")]
    pub ledger_port: Option<u16>,
    /// Rate limiting on or off (overrides rate_limits.enabled) [default: on]
    #[arg(long, env = "MOBIUS_RATE_LIMITS", value_parser = ["on", "off"])]
    pub rate_limits: Option<String>,
    /// shield-api port (overrides seed port 4004 + offset; 0 = any)
    #[arg(long, env = "MOBIUS_SHIELD_PORT")]
    pub shield_port: Option<u16>,
    /// portal port: ops API and integrity monitor (overrides seed port 3002 + offset; 0 = any)
    #[arg(long, env = "MOBIUS_PORTAL_PORT")]
    pub portal_port: Option<u16>,
    /// Alert webhook URLs (Alertmanager-compatible JSON), comma-separated
    #[arg(long, env = "MOBIUS_ALERT_WEBHOOKS", value_delimiter = ',')]
    pub alert_webhooks: Vec<String>,
    /// Integrity sample interval [default: 10000]
    #[arg(long, env = "MOBIUS_INTEGRITY_SAMPLE_INTERVAL_MS")]
    pub integrity_sample_interval_ms: Option<u64>,
    /// Services the portal's monitor probes in a split deployment: NAME=URL, comma-separated
    /// (`mobius up` probes its own services)
    #[arg(long, env = "MOBIUS_SERVICE_URLS", value_delimiter = ',')]
    pub service_urls: Vec<String>,
    /// Checkpoint origin (the signing key's name) [default: mobius.local/civic-ledger]
    #[arg(long, env = "MOBIUS_LEDGER_ORIGIN")]
    pub ledger_origin: Option<String>,
    /// Seal a block at least this often when entries are waiting [default: 1000]
    #[arg(long, env = "MOBIUS_LEDGER_BLOCK_INTERVAL_MS")]
    pub block_interval_ms: Option<u64>,
    /// Seal a block once this many entries are waiting [default: 10000]
    #[arg(long, env = "MOBIUS_LEDGER_BLOCK_MAX_ENTRIES")]
    pub block_max_entries: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub store: Option<String>,
    pub bind: Option<String>,
    pub port_offset: Option<i32>,
    #[serde(default)]
    pub ports: FilePorts,
    #[serde(default)]
    pub ledger: FileLedger,
    #[serde(default)]
    pub integrity: FileIntegrity,
    #[serde(default)]
    pub alerts: FileAlerts,
    #[serde(default)]
    pub rate_limits: FileRateLimits,
}

/// Rate limits per route class (requests per second and burst), SPEC §7.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRateLimits {
    pub enabled: Option<bool>,
    pub read_per_s: Option<f64>,
    pub read_burst: Option<u32>,
    pub write_per_s: Option<f64>,
    pub write_burst: Option<u32>,
    pub auth_per_s: Option<f64>,
    pub auth_burst: Option<u32>,
    pub anonymous_per_s: Option<f64>,
    pub anonymous_burst: Option<u32>,
    pub max_keys: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIntegrity {
    pub sample_interval_ms: Option<u64>,
    pub scrub_per_sample: Option<u64>,
    pub attest_every_ms: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAlerts {
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// Overrides of the default rules (SPEC §9.1), by name.
    #[serde(default)]
    pub rules: Vec<RuleOverride>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    pub name: String,
    pub for_ms: Option<i64>,
    pub for_samples: Option<u32>,
    pub threshold: Option<f64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePorts {
    pub ledger: Option<u16>,
    pub portal: Option<u16>,
    pub shield: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLedger {
    pub origin: Option<String>,
    pub block_interval_ms: Option<u64>,
    pub block_max_entries: Option<u64>,
    pub signing_key_file: Option<PathBuf>,
    pub queue_max_bytes: Option<usize>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub store: mobius_store::StoreConfig,
    pub bind: String,
    pub port_offset: i32,
    pub ledger_port: u16,
    pub ledger: LedgerConfig,
    pub signing_key_file: PathBuf,
    pub config_file: Option<PathBuf>,
    pub portal_port: u16,
    pub webhooks: Vec<String>,
    pub sample_interval_ms: u64,
    pub scrub_per_sample: u64,
    pub attest_every_ms: i64,
    /// (name, URL) for `serve portal`.
    pub service_urls: Vec<(String, String)>,
    pub alert_rules: Vec<mobius_ops::alerts::RuleConfig>,
    pub shield_port: u16,
    pub rate_limits: mobius_http::ratelimit::RateLimitConfig,
}

fn read_file_config(common: &CommonOpts) -> Result<(FileConfig, Option<PathBuf>), String> {
    let path = match &common.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("mobius.toml")).filter(|p| p.exists()),
    };
    let Some(path) = path else {
        return Ok((FileConfig::default(), None));
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let fc: FileConfig = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((fc, Some(path)))
}

fn seed_port(name: &str) -> u16 {
    SERVICES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, p)| *p)
}

/// Seed port shifted by the offset, validated to stay a usable port.
pub fn offset_port(name: &str, offset: i32) -> Result<u16, String> {
    let p = i32::from(seed_port(name)) + offset;
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port offset {offset} moves {name} to {p}, outside 1-65535"))
}

impl Config {
    pub fn resolve(common: &CommonOpts, serve: Option<&ServeOpts>) -> Result<Config, String> {
        let (fc, config_file) = read_file_config(common)?;
        let data = common
            .data
            .clone()
            .or(fc.data)
            .unwrap_or_else(|| PathBuf::from("mobius-data"));
        let store_url = common.store.clone().or(fc.store);
        let store = match &store_url {
            Some(u) => mobius_store::StoreConfig::parse(u).map_err(|e| e.to_string())?,
            None => mobius_store::StoreConfig::sqlite(data.join("mobius.db")),
        };
        let bind = serve
            .and_then(|s| s.bind.clone())
            .or(fc.bind)
            .unwrap_or_else(|| "127.0.0.1".into());
        let port_offset = serve
            .and_then(|s| s.port_offset)
            .or(fc.port_offset)
            .unwrap_or(0);
        let ledger_port = match serve.and_then(|s| s.ledger_port).or(fc.ports.ledger) {
            Some(p) => p,
            None => offset_port("ledger-api", port_offset)?,
        };
        let defaults = LedgerConfig::default();
        let ledger = LedgerConfig {
            origin: serve
                .and_then(|s| s.ledger_origin.clone())
                .or(fc.ledger.origin)
                .unwrap_or(defaults.origin),
            block_interval_ms: serve
                .and_then(|s| s.block_interval_ms)
                .or(fc.ledger.block_interval_ms)
                .unwrap_or(defaults.block_interval_ms),
            block_max_entries: serve
                .and_then(|s| s.block_max_entries)
                .or(fc.ledger.block_max_entries)
                .unwrap_or(defaults.block_max_entries),
            queue_max_bytes: fc
                .ledger
                .queue_max_bytes
                .unwrap_or(defaults.queue_max_bytes),
            ..defaults
        };
        if !(1..=3_600_000).contains(&ledger.block_interval_ms) {
            return Err("ledger.block_interval_ms must be 1 to 3600000".into());
        }
        if !(1..=1_000_000).contains(&ledger.block_max_entries) {
            return Err("ledger.block_max_entries must be 1 to 1000000".into());
        }
        if ledger.queue_max_bytes < (1 << 20) {
            return Err("ledger.queue_max_bytes must be at least 1048576".into());
        }
        // The origin is also the signing key's name: validate it now, not at first seal.
        mobius_core::note::NoteSigner::from_seed(&ledger.origin, &[0u8; 32])
            .map_err(|e| format!("ledger.origin {:?}: {e}", ledger.origin))?;
        let portal_port = match serve.and_then(|s| s.portal_port).or(fc.ports.portal) {
            Some(p) => p,
            None => offset_port("portal", port_offset)?,
        };
        let webhooks = match serve
            .map(|s| s.alert_webhooks.clone())
            .filter(|w| !w.is_empty())
        {
            Some(w) => w,
            None => fc.alerts.webhooks,
        };
        for w in &webhooks {
            if !w.starts_with("http://") {
                return Err(format!(
                    "alert webhook {:?}: only http:// URLs are supported (put a TLS proxy in front)",
                    mask_query(w)
                ));
            }
        }
        let sample_interval_ms = serve
            .and_then(|s| s.integrity_sample_interval_ms)
            .or(fc.integrity.sample_interval_ms)
            .unwrap_or(10_000);
        if !(100..=600_000).contains(&sample_interval_ms) {
            return Err("integrity.sample_interval_ms must be 100 to 600000".into());
        }
        let scrub_per_sample = fc.integrity.scrub_per_sample.unwrap_or(10_000);
        if !(1..=10_000_000).contains(&scrub_per_sample) {
            return Err("integrity.scrub_per_sample must be 1 to 10000000".into());
        }
        let attest_every_ms = fc.integrity.attest_every_ms.unwrap_or(300_000);
        let mut service_urls = Vec::new();
        for s in serve.map(|s| s.service_urls.clone()).unwrap_or_default() {
            let (name, url) = s
                .split_once('=')
                .ok_or_else(|| format!("--service-urls entry {s:?}: use NAME=URL"))?;
            service_urls.push((name.to_string(), url.to_string()));
        }
        let shield_port = match serve.and_then(|s| s.shield_port).or(fc.ports.shield) {
            Some(p) => p,
            None => offset_port("shield-api", port_offset)?,
        };
        let mut rate_limits = mobius_http::ratelimit::RateLimitConfig::default();
        {
            let f = &fc.rate_limits;
            let set = |l: &mut mobius_http::ratelimit::Limit,
                       ps: Option<f64>,
                       b: Option<u32>,
                       name: &str|
             -> Result<(), String> {
                if let Some(v) = ps {
                    if !(v > 0.0 && v <= 1e6) {
                        return Err(format!(
                            "rate_limits.{name}_per_s must be > 0 and at most 1000000"
                        ));
                    }
                    l.per_second = v;
                }
                if let Some(v) = b {
                    l.burst = v.max(1);
                }
                Ok(())
            };
            set(&mut rate_limits.read, f.read_per_s, f.read_burst, "read")?;
            set(
                &mut rate_limits.write,
                f.write_per_s,
                f.write_burst,
                "write",
            )?;
            set(&mut rate_limits.auth, f.auth_per_s, f.auth_burst, "auth")?;
            set(
                &mut rate_limits.per_ip_anonymous,
                f.anonymous_per_s,
                f.anonymous_burst,
                "anonymous",
            )?;
            if let Some(m) = f.max_keys {
                rate_limits.max_keys = m.clamp(1000, 10_000_000);
            }
            if let Some(e) = f.enabled {
                rate_limits.enabled = e;
            }
            if let Some(v) = serve.and_then(|s| s.rate_limits.as_deref()) {
                rate_limits.enabled = v == "on";
            }
        }
        let mut alert_rules = mobius_ops::alerts::default_rules();
        for o in &fc.alerts.rules {
            let r = alert_rules
                .iter_mut()
                .find(|r| r.name == o.name)
                .ok_or_else(|| format!("alerts.rules: unknown rule {:?}", o.name))?;
            if let Some(v) = o.for_ms {
                if v < 0 {
                    return Err(format!(
                        "alerts.rules {}: for_ms must not be negative",
                        o.name
                    ));
                }
                r.for_ms = v;
            }
            if let Some(v) = o.for_samples {
                r.for_samples = v.max(1);
            }
            if let Some(v) = o.threshold {
                r.threshold = v;
            }
            if let Some(v) = o.enabled {
                r.enabled = v;
            }
        }
        let signing_key_file = fc
            .ledger
            .signing_key_file
            .unwrap_or_else(|| data.join("keys").join("ledger-signing.key"));
        Ok(Config {
            data,
            store,
            bind,
            port_offset,
            ledger_port,
            ledger,
            signing_key_file,
            config_file,
            portal_port,
            webhooks,
            sample_interval_ms,
            scrub_per_sample,
            attest_every_ms,
            service_urls,
            alert_rules,
            shield_port,
            rate_limits,
        })
    }

    pub fn operator_token_file(&self) -> PathBuf {
        self.data.join("operator.token")
    }

    /// The effective configuration as JSON, secrets masked.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "config_file": self.config_file.as_ref().map(|p| p.display().to_string()),
            "data": self.data.display().to_string(),
            "store": self.store.masked(),
            "bind": self.bind,
            "port_offset": self.port_offset,
            "ports": {"ledger-api": self.ledger_port, "portal": self.portal_port, "shield-api": self.shield_port},
            "rate_limits": format!("{:?}", self.rate_limits),
            "integrity": {"sample_interval_ms": self.sample_interval_ms, "scrub_per_sample": self.scrub_per_sample, "attest_every_ms": self.attest_every_ms},
            "alerts": {"webhooks": self.webhooks.iter().map(|w| mask_query(w)).collect::<Vec<_>>(), "rules": self.alert_rules},
            "ledger": {
                "origin": self.ledger.origin,
                "block_interval_ms": self.ledger.block_interval_ms,
                "block_max_entries": self.ledger.block_max_entries,
                "queue_max_bytes": self.ledger.queue_max_bytes,
                "signing_key_file": self.signing_key_file.display().to_string(),
            },
            "operator_token_file": self.operator_token_file().display().to_string(),
        })
    }
}

/// Webhook URLs may carry secrets in their query string: show only what precedes it.
fn mask_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?****"),
        None => url.to_string(),
    }
}

/// Creates the data directory with mode 0700.
pub fn ensure_data_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("create data directory {}: {e}", dir.display()))
}
