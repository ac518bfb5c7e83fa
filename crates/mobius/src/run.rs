//! Command implementations: starting services, tokens, migrations, verification.

use crate::config::{Config, ensure_data_dir};
use mobius_core::note::{NoteSigner, NoteVerifier};
use mobius_core::time::now_ms;
use mobius_http::auth::{self, Authenticator, Role};
use mobius_http::health::Health;
use mobius_http::log;
use mobius_ledger::{Ledger, keys, routes};
use mobius_ops::automation::Automation;
use mobius_ops::incidents::Incidents;
use mobius_ops::monitor::{Monitor, MonitorConfig};
use mobius_ops::notify::WebhookConfig;
use mobius_store::{Conn, Pool};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Holds the data directory's lock file for as long as the process runs: two processes
/// writing one SQLite ledger would each believe they own the sequence.
struct DataDirLock(#[allow(dead_code)] std::fs::File);

fn lock_data_dir(cfg: &Config) -> Result<Option<DataDirLock>, String> {
    if cfg.store.is_postgres() {
        return Ok(None); // PostgreSQL replicas coordinate through advisory locks instead.
    }
    let path = cfg.data.join("mobius.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(DataDirLock(f))),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another mobius process is using {}; stop it first or use another --data directory",
            cfg.data.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("lock {}: {e}", path.display())),
    }
}

fn connect_migrated(cfg: &Config) -> Result<Conn, String> {
    let mut conn = cfg.store.connect().map_err(|e| e.to_string())?;
    let applied = mobius_store::migrate(&mut conn, now_ms()).map_err(|e| e.to_string())?;
    if !applied.is_empty() {
        log::info(
            "store migrated",
            &[
                ("versions", json!(applied)),
                ("store", json!(cfg.store.masked())),
            ],
        );
    }
    Ok(conn)
}

pub fn migrate(cfg: &Config) -> Result<(), String> {
    if !cfg.store.is_postgres() {
        ensure_data_dir(&cfg.data)?;
    }
    let mut conn = cfg.store.connect().map_err(|e| e.to_string())?;
    let applied = mobius_store::migrate(&mut conn, now_ms()).map_err(|e| e.to_string())?;
    let version = mobius_store::schema_version(&mut conn).map_err(|e| e.to_string())?;
    println!("schema version {version}; applied {applied:?}");
    Ok(())
}

/// Makes sure `<data>/operator.token` holds a working operator token (SPEC §2).
fn ensure_operator_token(cfg: &Config, conn: &mut Conn) -> Result<PathBuf, String> {
    let path = cfg.operator_token_file();
    if let Ok(existing) = std::fs::read_to_string(&path) {
        match auth::lookup_token(conn, existing.trim(), now_ms()).map_err(|e| e.to_string())? {
            Some((p, _)) if p.role == Role::Operator => return Ok(path),
            _ => log::warn(
                "operator token file does not match a live operator token in the store; minting a new one",
                &[("file", json!(path.display().to_string()))],
            ),
        }
    }
    let t = auth::create_token(conn, Role::Operator, "ops", None, now_ms())
        .map_err(|e| e.to_string())?;
    keys::write_secret(&path, format!("{}\n", t.token).as_bytes())?;
    log::info(
        "operator token created",
        &[
            ("file", json!(path.display().to_string())),
            ("token_id", json!(t.id)),
        ],
    );
    Ok(path)
}

fn signer(cfg: &Config) -> Result<NoteSigner, String> {
    let seed = keys::load_or_create_seed(&cfg.signing_key_file)?;
    NoteSigner::from_seed(&cfg.ledger.origin, &seed).map_err(|e| format!("ledger.origin: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Services {
    /// `mobius up`: everything.
    All,
    /// `mobius serve ledger`.
    Ledger,
    /// `mobius serve portal`: the ops API and the integrity monitor.
    Portal,
    /// `mobius serve shield`.
    Shield,
}

/// `mobius up` / `mobius serve <service>`.
pub fn up(
    common: &crate::config::CommonOpts,
    serve: &crate::config::ServeOpts,
    which: Services,
) -> Result<(), String> {
    let cfg = Config::resolve(common, Some(serve))?;
    ensure_data_dir(&cfg.data)?;
    let _lock = lock_data_dir(&cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mobius-worker")
        .build()
        .map_err(|e| format!("start runtime: {e}"))?;
    rt.block_on(serve_all(cfg, which))
}

async fn bind(addr: &str, service: &str) -> Result<(tokio::net::TcpListener, String), String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!("listen on {addr} for {service}: {e} (is another stack running? try --port-offset)")
    })?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, format!("http://{local}")))
}

async fn serve_all(cfg: Config, which: Services) -> Result<(), String> {
    let c2 = cfg.clone();
    let (signer, token_file) = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let mut conn = connect_migrated(&c2)?;
        let token_file = ensure_operator_token(&c2, &mut conn)?;
        Ok((signer(&c2)?, token_file))
    })
    .await
    .map_err(|e| e.to_string())??;

    let store = cfg.store.clone();
    let lcfg = cfg.ledger.clone();
    let ledger = tokio::task::spawn_blocking(move || Ledger::open(store, signer, lcfg))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("open ledger: {e}"))?;
    let authenticator = Authenticator::new(Pool::new(cfg.store.clone(), 4));
    let ops_pool = Pool::new(cfg.store.clone(), 4);
    let automation = Automation::load(ledger.clone(), ops_pool.clone())
        .await
        .map_err(|e| format!("automation state: {e}"))?;

    let run_ledger = matches!(which, Services::All | Services::Ledger);
    let run_portal = matches!(which, Services::All | Services::Portal);
    let run_shield = matches!(which, Services::All | Services::Shield);
    // Every service reports 401/403/429 to the security event log and is rate-limited.
    let events = mobius_shield::events::SecurityLog::start(ops_pool.clone());
    let protect = |h: &Arc<Health>| {
        h.set_security_hook(events.hook());
        let limiter = mobius_http::ratelimit::RateLimiter::new(cfg.rate_limits.clone());
        h.set_rate_limit(mobius_http::ratelimit::RateLimitLayerState {
            limiter: limiter.clone(),
            auth_paths: Arc::new(mobius_shield::routes::AUTH_PATHS.to_vec()),
            on_limited: None,
        });
        let label = format!("service=\"{}\"", h.service);
        h.metrics
            .add_collector(Box::new(move |out| limiter.render_metrics(out, &label)));
    };
    let shield_listener = if run_shield {
        Some(
            bind(
                &format!("{}:{}", cfg.bind, cfg.shield_port),
                mobius_shield::routes::SERVICE,
            )
            .await?,
        )
    } else {
        None
    };
    let ledger_listener = if run_ledger {
        Some(bind(&format!("{}:{}", cfg.bind, cfg.ledger_port), "ledger-api").await?)
    } else {
        None
    };
    let portal_listener = if run_portal {
        Some(bind(&format!("{}:{}", cfg.bind, cfg.portal_port), "portal").await?)
    } else {
        None
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let mut table = Vec::new();
    let mut endpoints = serde_json::Map::new();
    let mut servers = Vec::new();
    let ledger_health = Health::new(mobius_ledger::SERVICE);
    let monitor = if let Some((_, portal_url)) = &portal_listener {
        let mut services: Vec<(String, String)> = match (&ledger_listener, which) {
            (Some((_, url)), _) => vec![(mobius_ledger::SERVICE.to_string(), url.clone())],
            (None, _) => Vec::new(),
        };
        if let Some((_, url)) = &shield_listener {
            services.push((mobius_shield::routes::SERVICE.to_string(), url.clone()));
        }
        // Services running elsewhere (split deployments, or not yet built into `up`).
        services.extend(cfg.service_urls.iter().cloned());
        services.push((mobius_ops::portal::SERVICE.to_string(), portal_url.clone()));
        let mut mc = MonitorConfig::new(services, cfg.data.clone(), portal_url.clone());
        mc.sample_interval = Duration::from_millis(cfg.sample_interval_ms);
        mc.scrub_per_sample = cfg.scrub_per_sample;
        mc.attest_every_ms = cfg.attest_every_ms;
        mc.block_interval_ms = cfg.ledger.block_interval_ms as i64;
        mc.webhooks = cfg.webhooks.iter().map(WebhookConfig::new).collect();
        mc.rules = cfg.alert_rules.clone();
        let incidents = Incidents::new(ledger.clone(), ops_pool.clone());
        let m = Monitor::start(
            ledger.clone(),
            ops_pool.clone(),
            automation.clone(),
            incidents,
            mc,
        )
        .await
        .map_err(|e| format!("integrity monitor: {e}"))?;
        Some(m)
    } else {
        None
    };
    // Without an in-process monitor (split deployments), services read its stored samples.
    let integrity: Option<Arc<dyn mobius_http::health::IntegritySource>> = match &monitor {
        Some(m) => Some(m.clone()),
        None => Some(mobius_ops::monitor::StoredIntegrity::start(
            ops_pool.clone(),
            automation.clone(),
            Duration::from_millis(cfg.sample_interval_ms.saturating_mul(3).max(30_000)),
        )),
    };
    if let Some((listener, url)) = ledger_listener {
        protect(&ledger_health);
        mobius_http::health::spawn_store_probe(
            ledger_health.clone(),
            ledger.pool.clone(),
            Duration::from_secs(2),
        );
        ledger_health.set_ready(true);
        if let Some(i) = &integrity {
            ledger_health.set_integrity(i.clone());
        }
        if let Some(m) = &monitor {
            let m2 = m.clone();
            ledger_health.metrics.add_collector(Box::new(move |out| {
                m2.render_metrics(out, &format!("service=\"{}\"", mobius_ledger::SERVICE))
            }));
        }
        let guard: Arc<dyn mobius_http::health::Guard> = automation.clone();
        let app = routes::router(
            routes::LedgerApi {
                ledger: ledger.clone(),
                auth: authenticator.clone(),
                automation: Some(guard),
            },
            ledger_health.clone(),
        );
        log::info(
            "listening",
            &[
                ("service", json!(mobius_ledger::SERVICE)),
                ("url", json!(url)),
            ],
        );
        table.push((mobius_ledger::SERVICE, url.clone()));
        endpoints.insert(mobius_ledger::SERVICE.into(), json!(url));
        servers.push(tokio::spawn(mobius_http::serve(
            listener,
            app,
            stopped(stop_rx.clone()),
        )));
    }
    if let (Some((listener, url)), Some(m)) = (portal_listener, &monitor) {
        let health = Health::new(mobius_ops::portal::SERVICE);
        protect(&health);
        mobius_http::health::spawn_store_probe(
            health.clone(),
            ops_pool.clone(),
            Duration::from_secs(2),
        );
        health.set_ready(true);
        health.set_integrity(m.clone());
        let m2 = m.clone();
        health.metrics.add_collector(Box::new(move |out| {
            m2.render_metrics(out, &format!("service=\"{}\"", mobius_ops::portal::SERVICE))
        }));
        let app = mobius_ops::portal::router(
            mobius_ops::portal::PortalApi {
                monitor: m.clone(),
                auth: authenticator.clone(),
                pool: ops_pool.clone(),
            },
            health,
        );
        log::info(
            "listening",
            &[
                ("service", json!(mobius_ops::portal::SERVICE)),
                ("url", json!(url)),
            ],
        );
        table.push((mobius_ops::portal::SERVICE, url.clone()));
        endpoints.insert(mobius_ops::portal::SERVICE.into(), json!(url));
        servers.push(tokio::spawn(mobius_http::serve(
            listener,
            app,
            stopped(stop_rx.clone()),
        )));
    }

    if let Some((listener, url)) = shield_listener {
        let health = Health::new(mobius_shield::routes::SERVICE);
        protect(&health);
        if let Some(i) = &integrity {
            health.set_integrity(i.clone());
        }
        mobius_http::health::spawn_store_probe(
            health.clone(),
            ops_pool.clone(),
            Duration::from_secs(2),
        );
        health.set_ready(true);
        if let Some(m) = &monitor {
            let m2 = m.clone();
            health.metrics.add_collector(Box::new(move |out| {
                m2.render_metrics(
                    out,
                    &format!("service=\"{}\"", mobius_shield::routes::SERVICE),
                )
            }));
        }
        // The active-citizens gauge is refreshed off the request path (a store query).
        let active = Arc::new(std::sync::atomic::AtomicI64::new(0));
        {
            let (active, pool) = (active.clone(), ops_pool.clone());
            tokio::spawn(async move {
                loop {
                    let p = pool.clone();
                    let n = tokio::task::spawn_blocking(move || {
                        p.with(|c| {
                            mobius_shield::routes::active_citizens(c, mobius_core::time::now_ms())
                        })
                    })
                    .await;
                    if let Ok(Ok(n)) = n {
                        active.store(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            });
        }
        let ev = events.clone();
        health.metrics.add_collector(Box::new(move |out| {
            let label = format!("service=\"{}\"", mobius_shield::routes::SERVICE);
            ev.render_metrics(out, &label);
            let n = active.load(std::sync::atomic::Ordering::Relaxed);
            mobius_http::metrics::single(
                out,
                "mobius_active_citizens",
                "gauge",
                "Citizens holding a live token (refreshed every 10 s).",
                &label,
                n as f64,
            );
        }));
        let app = mobius_shield::routes::router(
            mobius_shield::routes::ShieldApi {
                ledger: ledger.clone(),
                auth: authenticator.clone(),
                pool: ops_pool.clone(),
                events: events.clone(),
            },
            health,
        );
        log::info(
            "listening",
            &[
                ("service", json!(mobius_shield::routes::SERVICE)),
                ("url", json!(url)),
            ],
        );
        table.push((mobius_shield::routes::SERVICE, url.clone()));
        endpoints.insert(mobius_shield::routes::SERVICE.into(), json!(url));
        servers.push(tokio::spawn(mobius_http::serve(
            listener,
            app,
            stopped(stop_rx.clone()),
        )));
    }

    let endpoints_json = json!({"services": endpoints, "pid": std::process::id()});
    let _ = std::fs::write(cfg.data.join("endpoints.json"), endpoints_json.to_string());
    let rows: String = table
        .iter()
        .map(|(n, u)| format!("  {n:<13} {u}\n"))
        .collect();
    eprintln!(
        "\nMobius is up.\n\n  SERVICE       URL\n{rows}\n  data directory   {}\n  store            {}\n  operator token   {}\n\nStop with Ctrl-C (SIGINT) or SIGTERM.\n",
        cfg.data.display(),
        cfg.store.masked(),
        token_file.display()
    );

    let mut result = Ok(());
    for s in servers {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(format!("server error: {e}")),
            Err(e) => result = Err(format!("server task: {e}")),
        }
    }
    drop(monitor);
    log::info("shutting down: draining the sequencer", &[]);
    let l = ledger.clone();
    let _ = tokio::task::spawn_blocking(move || l.shutdown()).await;
    let _ = std::fs::remove_file(cfg.data.join("endpoints.json"));
    log::info("stopped", &[]);
    result
}

pub fn token_create(
    cfg: &Config,
    role: Role,
    subject: &str,
    ttl_s: Option<i64>,
    json_out: bool,
) -> Result<(), String> {
    if subject.is_empty()
        || subject.len() > 64
        || !subject
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err("--subject must be 1-64 characters of [A-Za-z0-9_.-]".into());
    }
    if ttl_s.is_some_and(|t| t <= 0) {
        return Err("--ttl-s must be positive".into());
    }
    if !cfg.store.is_postgres() {
        ensure_data_dir(&cfg.data)?;
    }
    let mut conn = connect_migrated(cfg)?;
    let t =
        auth::create_token(&mut conn, role, subject, ttl_s, now_ms()).map_err(|e| e.to_string())?;
    if json_out {
        println!("{}", serde_json::to_string(&t).unwrap_or_default());
    } else {
        eprintln!(
            "token {} for {}:{} (shown once; store it securely)",
            t.id,
            role.as_str(),
            subject
        );
        println!("{}", t.token);
    }
    Ok(())
}

/// The verifier for offline verification: `--key`, else the data directory's signing key,
/// else the key recorded in the store.
fn offline_verifier(
    cfg: &Config,
    conn: &mut Conn,
    key: Option<&str>,
) -> Result<NoteVerifier, String> {
    if let Some(k) = key {
        return NoteVerifier::parse(k).map_err(|e| format!("--key: {e}"));
    }
    if cfg.signing_key_file.exists() {
        let s = signer(cfg)?;
        return Ok(s.verifier());
    }
    let stored =
        mobius_ledger::db::setting(conn, "ledger.verifier_key").map_err(|e| e.to_string())?;
    let k = stored.ok_or(
        "no signing key in the data directory and no key recorded in the store; pass --key",
    )?;
    NoteVerifier::parse(&k).map_err(|e| format!("stored verifier key: {e}"))
}

pub fn verify_offline(cfg: &Config, key: Option<&str>, json_out: bool) -> Result<(), String> {
    if let mobius_store::StoreConfig::Sqlite { path } = &cfg.store
        && !path.exists()
    {
        return Err(format!(
            "no ledger at {}: pass --data or --store",
            path.display()
        ));
    }
    let mut conn = cfg.store.connect().map_err(|e| e.to_string())?;
    let verifier = offline_verifier(cfg, &mut conn, key)?;
    let mut last_report = std::time::Instant::now();
    let result = mobius_ledger::verify::verify_store(&mut conn, &verifier, |done, total| {
        if !json_out && last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("  verified {done} of {total} entries");
            last_report = std::time::Instant::now();
        }
    });
    match result {
        Ok(r) => {
            let rate = r.entries as f64 / r.elapsed.as_secs_f64().max(1e-9);
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "entries": r.entries, "blocks": r.blocks, "tree_size": r.tree_size,
                           "root_hash": hex::encode(r.root), "seconds": r.elapsed.as_secs_f64(), "entries_per_second": rate})
                );
            } else {
                println!(
                    "OK: {} entries and {} blocks verified (root {}) in {:.2} s ({:.0} entries/s)",
                    r.entries,
                    r.blocks,
                    hex::encode(r.root),
                    r.elapsed.as_secs_f64(),
                    rate
                );
            }
            Ok(())
        }
        Err(f) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "first_bad_index": f.index, "error": f.message})
                );
            }
            Err(format!("verification FAILED: {f}"))
        }
    }
}

fn default_state_path(url: &str) -> PathBuf {
    let host: String = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".mobius")
        .join("witness")
        .join(format!("{host}.json"))
}

pub fn verify_remote(
    url: &str,
    key: Option<&str>,
    state: Option<PathBuf>,
    samples: usize,
    json_out: bool,
) -> Result<(), String> {
    let state_path = state.unwrap_or_else(|| default_state_path(url));
    match mobius_ledger::witness::witness(url, Path::new(&state_path), key, samples) {
        Ok(r) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "tree_size": r.tree_size, "previous_size": r.previous_size, "root_hash": hex::encode(r.root),
                           "checked_indexes": r.checked_indexes, "key_pinned_now": r.key_pinned_now,
                           "verifier_key": r.state.verifier_key, "state": state_path.display().to_string()})
                );
            } else {
                if r.key_pinned_now {
                    eprintln!(
                        "note: no key was pinned; trusting {} from now on (pass --key to pin it yourself)",
                        r.state.verifier_key
                    );
                }
                match r.previous_size {
                    Some(p) => println!(
                        "OK: checkpoint of size {} is signed and consistent with the verified size {p}",
                        r.tree_size
                    ),
                    None => println!(
                        "OK: checkpoint of size {} is signed (first check: nothing to compare yet)",
                        r.tree_size
                    ),
                }
                println!(
                    "    {} entries spot-checked with inclusion proofs; state saved in {}",
                    r.checked_indexes.len(),
                    state_path.display()
                );
            }
            Ok(())
        }
        Err(f) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "first_bad_index": f.index, "error": f.message})
                );
            }
            Err(format!("verification FAILED: {f}"))
        }
    }
}
