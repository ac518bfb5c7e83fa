//! `mobius bench ops`: the cost of watching the stack.
//!
//! 1. **Health latency under load.** ledger-api and the portal are assembled in-process as
//!    `mobius up` assembles them (`crates/mobius/src/run.rs`: one server runtime, the
//!    integrity monitor sampling every 10 s and probing both services over HTTP, GI on both
//!    services' `/healthz` and `/api/integrity-check`) over a fresh temporary SQLite store.
//!    An open-loop generator sends `GET /healthz` to ledger-api and
//!    `GET /api/integrity-check` to the portal at a fixed total rate (default 1,000/s, half
//!    each) plus `GET /healthz` to the portal at a tenth of that rate, while a background
//!    writer appends single entries at a fixed rate (default 2,000/s). Requests are sent at
//!    fixed scheduled instants by a pacing thread, over as many connections as are needed
//!    (up to a bound), and latency is measured from the *scheduled* instant, so a stall
//!    delays (and is charged to) every request scheduled during it instead of being hidden
//!    by a client that waits (no coordinated omission).
//! 2. **Monitor sample cost vs ledger size.** A second fresh ledger is grown with batch
//!    appends to 10^4, 10^5 and 10^6 entries; at each size, after a block has sealed
//!    everything, a new monitor (sample interval 1 h, so its own loop stays out of the way)
//!    takes its first, initialising sample, then `Monitor::sample_once()` is timed with no
//!    new entries, with 1,000 new sealed entries before each sample, and (another monitor)
//!    with no new entries but probing ledger-api over HTTP as the real configuration does.
//!
//! A benchmark, not a test: nothing is asserted about time. Everything is bounded (fixed
//! durations and counts, request timeouts, a drain deadline), every task is joined or
//! aborted, and the temporary directory is removed at the end.

use crate::ledger::{
    BATCH_SIZE, GROW_CLIENTS, batch_maker, entry_json, git_revision, loadavg, short, sorted,
};
use crate::load::{self, Client, Outcome, Req, RunSpec, Target};
use crate::report::{self, Table};
use crate::sys::{self, CpuSnap, DiskSnap, Machine};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use mobius_core::note::NoteSigner;
use mobius_core::time::{now_ms, rfc3339_ms};
use mobius_http::auth::{self, Authenticator, Role};
use mobius_http::health::Health;
use mobius_http::ratelimit::{RateLimitConfig, RateLimitLayerState, RateLimiter};
use mobius_ledger::{Ledger, LedgerConfig, routes};
use mobius_ops::automation::Automation;
use mobius_ops::incidents::Incidents;
use mobius_ops::monitor::{Monitor, MonitorConfig, Snapshot};
use mobius_store::{Pool, StoreConfig};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOpts {
    /// Seconds the health endpoints are measured under load, after a warm-up
    /// [default: 60; 5 with --quick]
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Health requests per second: half GET /healthz on ledger-api, half
    /// GET /api/integrity-check on the portal (plus a tenth of this rate of GET /healthz on
    /// the portal)
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Background single-entry appends per second during the health phase (0: none)
    #[arg(long, default_value_t = 2000)]
    pub append_rate: u64,
    /// Connections the background writer spreads its appends over, each with its own token
    /// (the per-token write limit of `mobius up` is 100/s)
    #[arg(long, default_value_t = 32)]
    pub append_connections: usize,
    /// Ledger sizes at which the monitor's sample cost is measured, comma-separated
    /// [default: 10000,100000,1000000; 10000,100000 with --quick]
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<u64>,
    /// Timed samples per series and size [default: 20; 5 with --quick]
    #[arg(long)]
    pub samples: Option<usize>,
    /// Smoke run (5 s of health load, sizes 10^4 and 10^5, 5 samples per series)
    #[arg(long)]
    pub quick: bool,
    /// Where to create the temporary data directory [default: the system temp directory]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also write the report as Markdown (with the command line and date) to this file
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads of the in-process load generator's tokio runtime
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

/// The options with the defaults (and `--quick`) applied.
#[derive(Debug, Clone)]
struct Settings {
    measure: Duration,
    warmup: Duration,
    rate: f64,
    append_rate: f64,
    append_connections: usize,
    sizes: Vec<u64>,
    samples: usize,
    client_threads: usize,
    quick: bool,
}

impl Settings {
    fn from(o: &BenchOpts) -> Result<Settings, String> {
        let q = o.quick;
        let secs = o.seconds.unwrap_or(if q { 5 } else { 60 });
        if secs == 0 || secs > 3600 {
            return Err("--seconds must be 1 to 3600".into());
        }
        if !(10..=100_000).contains(&o.rate) {
            return Err("--rate must be 10 to 100000".into());
        }
        if o.append_rate > 100_000 {
            return Err("--append-rate must be 0 to 100000".into());
        }
        if !(1..=256).contains(&o.append_connections) {
            return Err("--append-connections must be 1 to 256".into());
        }
        let per_token = RateLimitConfig::default().write.per_second;
        if o.append_rate as f64 / o.append_connections as f64 > per_token {
            return Err(format!(
                "--append-rate / --append-connections must be at most {per_token}: each writer connection has its own token, and the rate limiter admits {per_token} writes/s per token"
            ));
        }
        let mut sizes = if o.sizes.is_empty() {
            if q {
                vec![10_000, 100_000]
            } else {
                vec![10_000, 100_000, 1_000_000]
            }
        } else {
            o.sizes.clone()
        };
        if sizes.iter().any(|n| !(1_000..=100_000_000).contains(n)) {
            return Err("--sizes must each be 1000 to 100000000".into());
        }
        sizes.sort_unstable();
        sizes.dedup();
        let samples = o.samples.unwrap_or(if q { 5 } else { 20 });
        if !(1..=1000).contains(&samples) {
            return Err("--samples must be 1 to 1000".into());
        }
        if !(1..=64).contains(&o.client_threads) {
            return Err("--client-threads must be 1 to 64".into());
        }
        Ok(Settings {
            measure: Duration::from_secs(secs),
            warmup: Duration::from_secs(if q { 1 } else { 2 }),
            rate: o.rate as f64,
            append_rate: o.append_rate as f64,
            append_connections: o.append_connections,
            sizes,
            samples,
            client_threads: o.client_threads,
            quick: q,
        })
    }
}

// The issue's targets.
const T_HEALTH_P99: f64 = 0.005;
/// Sample cost is called flat when the median at the largest size is at most this many times
/// the median at the smallest size (plus `FLAT_SLACK_S` for timer-scale noise).
const FLAT_RATIO: f64 = 1.5;
const FLAT_SLACK_S: f64 = 0.0005;

/// Most concurrent requests (= connections) per health stream.
const MAX_CONNS_PER_STREAM: usize = 64;
/// How long in-flight health requests may take to finish after the schedule ends.
const DRAIN: Duration = Duration::from_secs(10);
/// The monitor sample interval in the sample-cost phase: long enough that its own loop
/// never runs again after its first sample.
const IDLE_INTERVAL: Duration = Duration::from_secs(3600);

pub fn run(opts: &BenchOpts) -> Result<(), String> {
    let settings = Settings::from(opts)?;
    let command = std::env::args()
        .map(|a| report::shell_word(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let started_at = rfc3339_ms(now_ms());
    let load_before = loadavg();
    let revision = git_revision();
    let base = opts.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("mobius-bench-ops-")
        .tempdir_in(&base)
        .map_err(|e| format!("create a temporary directory in {}: {e}", base.display()))?;
    let machine = sys::machine(tmp.path());
    eprintln!(
        "mobius bench ops: {} CPUs ({}), data in {} on {}",
        machine.cpus,
        machine.cpu_model,
        machine.dir.display(),
        machine.filesystem
    );
    // The per-request JSON access log would flood stdout (and cost a write per request).
    mobius_http::log::set_quiet(true);
    let result = bench(&settings, &machine, tmp.path());
    mobius_http::log::set_quiet(false);
    let dir = tmp.path().display().to_string();
    let removed = tmp.close();
    let mut rep = result?;
    match removed {
        Ok(()) => rep
            .notes
            .push(format!("The temporary directory {dir} was removed.")),
        Err(e) => rep.notes.push(format!(
            "Removing the temporary directory {dir} failed: {e}"
        )),
    }
    let header = Header {
        command,
        load: format!(
            "{load_before} before, {} after (1/5/15-minute averages; the machine may be shared)",
            loadavg()
        ),
        revision,
        started_at,
        machine,
        settings,
    };
    print!("{}", rep.render_text(&header));
    let _ = std::io::stdout().flush();
    if let Some(out) = &opts.out {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        std::fs::write(out, rep.render_markdown(&header))
            .map_err(|e| format!("write {}: {e}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

fn bench(s: &Settings, machine: &Machine, dir: &Path) -> Result<Report, String> {
    let mut rep = Report::default();
    let lcfg = LedgerConfig::default();
    rep.config.push(format!(
        "ledger: SQLite store (WAL, synchronous=FULL), LedgerConfig::default() (block every {} ms or {} entries); monitor: MonitorConfig::new defaults (scrub {} records per sample, attest every 5 min)",
        lcfg.block_interval_ms,
        lcfg.block_max_entries,
        report::int(MonitorConfig::new(Vec::new(), PathBuf::new(), String::new()).scrub_per_sample)
    ));
    let health_dir = dir.join("health");
    health_phase(s, machine, &health_dir, &mut rep)?;
    // The second phase starts from an empty store; free the first one's space now.
    let _ = std::fs::remove_dir_all(&health_dir);
    sample_phase(s, &dir.join("samples"), &mut rep)?;
    Ok(rep)
}

// ---------------------------------------------------------------------------------------
// Shared set-up.

struct Opened {
    store: StoreConfig,
    token: String,
    ledger: Arc<Ledger>,
    lcfg: LedgerConfig,
}

/// A migrated SQLite store in `dir` with an operator token, and the ledger open over it.
fn open_ledger(dir: &Path) -> Result<Opened, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let store = StoreConfig::sqlite(dir.join("mobius.db"));
    let token = {
        let mut conn = store.connect().map_err(|e| e.to_string())?;
        mobius_store::migrate(&mut conn, now_ms()).map_err(|e| e.to_string())?;
        auth::create_token(&mut conn, Role::Operator, "bench", None, now_ms())
            .map_err(|e| e.to_string())?
            .token
    };
    let lcfg = LedgerConfig::default();
    let signer = NoteSigner::from_seed(&lcfg.origin, &mobius_http::random_bytes::<32>())
        .map_err(|e| format!("signing key: {e}"))?;
    let ledger = Ledger::open(store.clone(), signer, lcfg.clone())
        .map_err(|e| format!("open ledger: {e}"))?;
    Ok(Opened {
        store,
        token,
        ledger,
        lcfg,
    })
}

fn runtime(name: &str, workers: Option<usize>) -> Result<tokio::runtime::Runtime, String> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all()
        .thread_name(name)
        // Keep blocking threads alive so their CPU time stays visible to the probes.
        .thread_keep_alive(Duration::from_secs(3600));
    if let Some(w) = workers {
        b.worker_threads(w);
    }
    b.build()
        .map_err(|e| format!("start the {name} runtime: {e}"))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Stops the servers (their clients must be gone), then waits for them.
async fn stop_servers(
    stop: &watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    notes: &mut Vec<String>,
) {
    let _ = stop.send(true);
    for s in servers {
        match tokio::time::timeout(Duration::from_secs(30), s).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => notes.push(format!("server error: {e}")),
            Ok(Err(e)) => notes.push(format!("server task failed: {e}")),
            Err(_) => notes.push("a server did not stop within 30 s of the shutdown signal".into()),
        }
    }
}

/// Waits until every committed entry is covered by a sealed block; returns the tree size.
async fn wait_sealed(ledger: &Ledger, limit: Duration) -> Result<u64, String> {
    let t = Instant::now();
    loop {
        let tree = ledger.shared.tree_size.load(Ordering::Acquire);
        let sealed = ledger.shared.sealed_size.load(Ordering::Acquire);
        if tree > 0 && sealed == tree {
            return Ok(tree);
        }
        if t.elapsed() > limit {
            return Err(format!(
                "no block sealed the whole tree within {} s (tree {tree}, sealed {sealed})",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The monitor's own counters: (samples taken, total seconds spent in them).
fn monitor_counters(m: &Monitor) -> (u64, f64) {
    let mut text = String::new();
    m.render_metrics(&mut text, "");
    let mut count = 0;
    let mut sum = 0.0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("mobius_integrity_sample_duration_seconds_count ") {
            count = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("mobius_integrity_sample_duration_seconds_sum ") {
            sum = v.trim().parse().unwrap_or(0.0);
        }
    }
    (count, sum)
}

/// Waits for a just-started monitor's first sample (taken by its own loop); returns its full
/// duration from the monitor's histogram and the snapshot it produced.
async fn first_sample(m: &Monitor, limit: Duration) -> Result<(f64, Snapshot), String> {
    let t = Instant::now();
    loop {
        let (count, sum) = monitor_counters(m);
        if count >= 1 {
            let snap = m
                .snapshot()
                .ok_or("the monitor counted a sample but has no snapshot")?;
            return Ok((sum, snap));
        }
        if t.elapsed() > limit {
            return Err(format!(
                "the monitor took no sample within {} s of starting",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Phase 1: health latency under load.

struct Stack {
    ledger_addr: SocketAddr,
    portal_addr: SocketAddr,
    monitor: Arc<Monitor>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The rate limiter `mobius up` puts on every service (default limits; health routes are
/// never limited). Its security-event hook belongs to the Citizen Shield and is left out: it
/// acts only on 401, 403 and 429 answers, and none occur here.
fn protect(h: &Arc<Health>) {
    let limiter = RateLimiter::new(RateLimitConfig::default());
    h.set_rate_limit(RateLimitLayerState {
        limiter: limiter.clone(),
        auth_paths: Arc::new(Vec::new()),
        on_limited: None,
    });
    let label = format!("service=\"{}\"", h.service);
    h.metrics
        .add_collector(Box::new(move |out| limiter.render_metrics(out, &label)));
}

/// ledger-api and the portal with the integrity monitor, wired as `serve_all` wires them.
async fn start_stack(
    o: &Opened,
    data: &Path,
    stop: watch::Receiver<bool>,
) -> Result<Stack, String> {
    let authenticator = Authenticator::new(Pool::new(o.store.clone(), 4));
    let ops_pool = Pool::new(o.store.clone(), 4);
    let automation = Automation::load(o.ledger.clone(), ops_pool.clone())
        .await
        .map_err(|e| format!("automation state: {e}"))?;
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let ledger_l = bind().await.map_err(|e| format!("listen: {e}"))?;
    let portal_l = bind().await.map_err(|e| format!("listen: {e}"))?;
    let ledger_addr = ledger_l.local_addr().map_err(|e| e.to_string())?;
    let portal_addr = portal_l.local_addr().map_err(|e| e.to_string())?;
    let portal_url = format!("http://{portal_addr}");
    let services = vec![
        (
            mobius_ledger::SERVICE.to_string(),
            format!("http://{ledger_addr}"),
        ),
        (mobius_ops::portal::SERVICE.to_string(), portal_url.clone()),
    ];
    let mut mc = MonitorConfig::new(services, data.to_path_buf(), portal_url);
    mc.block_interval_ms = o.lcfg.block_interval_ms as i64;
    let incidents = Incidents::new(o.ledger.clone(), ops_pool.clone());
    let monitor = Monitor::start(
        o.ledger.clone(),
        ops_pool.clone(),
        automation.clone(),
        incidents,
        mc,
    )
    .await
    .map_err(|e| format!("integrity monitor: {e}"))?;

    let mut servers = Vec::new();
    let ledger_health = Health::new(mobius_ledger::SERVICE);
    protect(&ledger_health);
    mobius_http::health::spawn_store_probe(
        ledger_health.clone(),
        o.ledger.pool.clone(),
        Duration::from_secs(2),
    );
    ledger_health.set_ready(true);
    ledger_health.set_integrity(monitor.clone());
    let m2 = monitor.clone();
    ledger_health.metrics.add_collector(Box::new(move |out| {
        m2.render_metrics(out, &format!("service=\"{}\"", mobius_ledger::SERVICE))
    }));
    let guard: Arc<dyn mobius_http::health::Guard> = automation.clone();
    let app = routes::router(
        routes::LedgerApi {
            ledger: o.ledger.clone(),
            auth: authenticator.clone(),
            automation: Some(guard),
        },
        ledger_health,
    );
    servers.push(tokio::spawn(mobius_http::serve(
        ledger_l,
        app,
        stopped(stop.clone()),
    )));

    let health = Health::new(mobius_ops::portal::SERVICE);
    protect(&health);
    mobius_http::health::spawn_store_probe(
        health.clone(),
        ops_pool.clone(),
        Duration::from_secs(2),
    );
    health.set_ready(true);
    health.set_integrity(monitor.clone());
    let m2 = monitor.clone();
    health.metrics.add_collector(Box::new(move |out| {
        m2.render_metrics(out, &format!("service=\"{}\"", mobius_ops::portal::SERVICE))
    }));
    let app = mobius_ops::portal::router(
        mobius_ops::portal::PortalApi {
            monitor: monitor.clone(),
            auth: authenticator,
            pool: ops_pool,
        },
        health,
    );
    servers.push(tokio::spawn(mobius_http::serve(
        portal_l,
        app,
        stopped(stop),
    )));
    Ok(Stack {
        ledger_addr,
        portal_addr,
        monitor,
        servers,
    })
}

/// One stream of the open-loop load.
#[derive(Clone)]
struct StreamSpec {
    name: String,
    target: Target,
    path: &'static str,
    rate: f64,
    /// Non-200 answers are errors (false for the integrity check: 503 means GI < 0.95).
    strict: bool,
}

/// One request of a stream: when it was due, when it went out, when it was answered.
struct Shot {
    due: Instant,
    sent: Option<Instant>,
    done: Instant,
    result: Result<u16, String>,
}

struct StreamResult {
    spec: StreamSpec,
    /// Requests scheduled inside the measured window.
    scheduled: u64,
    /// Latency from the scheduled instant of every answered request in the window.
    lat: Outcome,
    /// Scheduled instant → request handed to the connection (the generator's own delay).
    lag_ns: Vec<u64>,
    /// Request handed to the connection → response read.
    service_ns: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    connections: usize,
    /// (due, latency) of the requests over the target, for the diagnosis.
    slow: Vec<(Instant, u64)>,
}

/// The pacing thread: sends each stream's scheduled instants, in time order, as they come
/// due. A plain thread with `std::thread::sleep` (high-resolution timers), because tokio's
/// timer wheel has 1 ms granularity, which at 2 ms intervals would be most of the figure.
fn pace(rates: Vec<f64>, txs: Vec<mpsc::UnboundedSender<Instant>>, t0: Instant, end: Instant) {
    let n = rates.len();
    let mut k = vec![0u64; n];
    // Stagger the streams within their own interval.
    let due = |i: usize, k: u64| {
        t0 + Duration::from_secs_f64((k as f64 + i as f64 / n as f64) / rates[i])
    };
    loop {
        let Some((i, at)) = (0..n).map(|i| (i, due(i, k[i]))).min_by_key(|x| x.1) else {
            return;
        };
        if at >= end {
            return;
        }
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        if txs[i].send(at).is_err() {
            return;
        }
        k[i] += 1;
    }
}

/// Sends one request per scheduled instant received, each on an idle connection of the
/// stream's pool (opening one when none is idle, up to `MAX_CONNS_PER_STREAM` in flight).
async fn dispatch(
    spec: StreamSpec,
    mut rx: mpsc::UnboundedReceiver<Instant>,
    start: Instant,
    end: Instant,
) -> StreamResult {
    let idle: Arc<Mutex<Vec<Client>>> = Arc::default();
    let shots: Arc<Mutex<Vec<Shot>>> = Arc::default();
    let opened = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(Semaphore::new(MAX_CONNS_PER_STREAM));
    let req = Arc::new(Req {
        method: Method::GET,
        path: spec.path.to_string(),
        body: Bytes::new(),
    });
    // Two connections up front; more are opened when needed.
    for _ in 0..2 {
        if let Ok(c) = Client::connect(&spec.target).await {
            opened.fetch_add(1, Ordering::Relaxed);
            idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    }
    let mut set = JoinSet::new();
    let mut scheduled = 0u64;
    while let Some(due) = rx.recv().await {
        while set.try_join_next().is_some() {}
        if due >= start && due < end {
            scheduled += 1;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (idle, shots, opened, req, target) = (
            idle.clone(),
            shots.clone(),
            opened.clone(),
            req.clone(),
            spec.target.clone(),
        );
        set.spawn(async move {
            let pooled = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut client = match pooled {
                Some(c) => c,
                None => match Client::connect(&target).await {
                    Ok(c) => {
                        opened.fetch_add(1, Ordering::Relaxed);
                        c
                    }
                    Err(e) => {
                        drop(permit);
                        let shot = Shot {
                            due,
                            sent: None,
                            done: Instant::now(),
                            result: Err(e),
                        };
                        shots.lock().unwrap_or_else(|p| p.into_inner()).push(shot);
                        return;
                    }
                },
            };
            let sent = Instant::now();
            let r = client.send(&req).await;
            let done = Instant::now();
            let result = match r {
                Ok((status, _)) => {
                    idle.lock().unwrap_or_else(|p| p.into_inner()).push(client);
                    Ok(status.as_u16())
                }
                Err(e) => {
                    client.close().await;
                    Err(e)
                }
            };
            drop(permit);
            let shot = Shot {
                due,
                sent: Some(sent),
                done,
                result,
            };
            shots.lock().unwrap_or_else(|p| p.into_inner()).push(shot);
        });
    }
    // The schedule is over: give in-flight requests a bounded time to finish.
    let deadline = tokio::time::Instant::now() + DRAIN;
    while !set.is_empty() {
        if tokio::time::timeout_at(deadline, set.join_next())
            .await
            .is_err()
        {
            break;
        }
    }
    set.abort_all();
    while set.join_next().await.is_some() {}
    let clients: Vec<Client> = std::mem::take(&mut *idle.lock().unwrap_or_else(|p| p.into_inner()));
    for c in clients {
        c.close().await;
    }
    let shots = std::mem::take(&mut *shots.lock().unwrap_or_else(|p| p.into_inner()));

    let mut r = StreamResult {
        scheduled,
        lat: Outcome {
            window: end.duration_since(start),
            ..Outcome::default()
        },
        lag_ns: Vec::new(),
        service_ns: Vec::new(),
        statuses: BTreeMap::new(),
        connections: opened.load(Ordering::Relaxed),
        slow: Vec::new(),
        spec,
    };
    let mut answered = 0u64;
    for s in shots.iter().filter(|s| s.due >= start && s.due < end) {
        match &s.result {
            Ok(status) => {
                answered += 1;
                *r.statuses.entry(*status).or_insert(0) += 1;
                let ns = s.done.duration_since(s.due).as_nanos() as u64;
                r.lat.latencies_ns.push(ns);
                if ns as f64 / 1e9 >= T_HEALTH_P99 {
                    r.slow.push((s.due, ns));
                }
                if let Some(sent) = s.sent {
                    r.lag_ns.push(sent.duration_since(s.due).as_nanos() as u64);
                    r.service_ns
                        .push(s.done.duration_since(sent).as_nanos() as u64);
                }
                if *status == 200 {
                    r.lat.ok += 1;
                } else if r.spec.strict {
                    r.lat.errors += 1;
                    r.lat
                        .first_error
                        .get_or_insert_with(|| format!("HTTP {status}"));
                }
            }
            Err(e) => {
                answered += 1;
                r.lat.errors += 1;
                r.lat.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    let unfinished = scheduled.saturating_sub(answered);
    if unfinished > 0 {
        r.lat.errors += unfinished;
        r.lat.first_error.get_or_insert_with(|| {
            format!(
                "{unfinished} request(s) not answered within {} s of the end of the schedule",
                DRAIN.as_secs()
            )
        });
    }
    r.lat.latencies_ns.sort_unstable();
    r.lag_ns.sort_unstable();
    r.service_ns.sort_unstable();
    r
}

#[derive(Default)]
struct WriterResult {
    /// Appends answered 201 inside the measured window.
    ok: u64,
    /// Appends due inside the measured window.
    scheduled: u64,
    errors: u64,
    first_error: Option<String>,
    /// Send → response of the appends sent inside the window.
    service_ns: Vec<u64>,
}

/// The background writer: single-entry appends at `rate` per second over one connection per
/// target, each with its own token (each sends the next due append; a connection that falls behind sends at
/// once, so the rate is held as long as `conns / latency` allows).
async fn writer(
    targets: Vec<Target>,
    rate: f64,
    t0: Instant,
    start: Instant,
    end: Instant,
) -> Result<WriterResult, String> {
    let mut clients = Vec::with_capacity(targets.len());
    for t in &targets {
        clients.push(Client::connect(t).await?);
    }
    let ticket = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for mut c in clients {
        let ticket = ticket.clone();
        handles.push(tokio::spawn(async move {
            let mut r = WriterResult::default();
            loop {
                let i = ticket.fetch_add(1, Ordering::Relaxed);
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                if due >= start {
                    r.scheduled += 1;
                }
                let req = Req {
                    method: Method::POST,
                    path: "/v1/attestations".into(),
                    // Offset from the sample phase's numbering; content is irrelevant.
                    body: Bytes::from(entry_json(i)),
                };
                let sent = Instant::now();
                let res = c.send(&req).await;
                let done = Instant::now();
                match res {
                    Ok((status, _)) if status == StatusCode::CREATED => {
                        if done >= start && done <= end {
                            r.ok += 1;
                        }
                        if sent >= start {
                            r.service_ns
                                .push(done.duration_since(sent).as_nanos() as u64);
                        }
                    }
                    Ok((status, body)) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| {
                            format!(
                                "HTTP {}: {}",
                                status.as_u16(),
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            )
                        });
                    }
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(e);
                        break;
                    }
                }
            }
            (c, r)
        }));
    }
    let mut out = WriterResult::default();
    for h in handles {
        let (c, r) = h.await.map_err(|e| format!("writer task failed: {e}"))?;
        c.close().await;
        out.ok += r.ok;
        out.scheduled += r.scheduled;
        out.errors += r.errors;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
        out.service_ns.extend(r.service_ns);
    }
    out.service_ns.sort_unstable();
    Ok(out)
}

#[derive(Default)]
struct LockProbe {
    lat_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Another writer beside the sequencer, as the monitor is when it stores a sample: once a
/// second during the measured window, a one-row INSERT (its own transaction, so SQLite's
/// write lock and a WAL fsync) into a table of its own, on its own connection with the
/// store's settings (busy timeout 10 s). Times how long that takes while appends run.
fn lock_probe(store: StoreConfig, start: Instant, end: Instant) -> Result<LockProbe, String> {
    let mut c = store.connect().map_err(|e| e.to_string())?;
    c.batch(
        "CREATE TABLE IF NOT EXISTS bench_write_probe (id INTEGER PRIMARY KEY, at_ms BIGINT NOT NULL)",
    )
    .map_err(|e| format!("write-lock probe: {e}"))?;
    let mut out = LockProbe::default();
    for k in 0u64.. {
        let due = start + Duration::from_millis(500 + 1000 * k);
        if due >= end {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = Instant::now();
        match c.execute(
            "INSERT INTO bench_write_probe (at_ms) VALUES ($1)",
            &[mobius_store::Param::Int(now_ms())],
        ) {
            Ok(_) => out.lat_ns.push(t.elapsed().as_nanos() as u64),
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| {
                    format!("after {}: {e}", report::ms(Some(t.elapsed().as_secs_f64())))
                });
            }
        }
    }
    out.lat_ns.sort_unstable();
    Ok(out)
}

/// A monitor sample seen during the health phase: (started, measured part, GI).
#[derive(Clone, Copy)]
struct SeenSample {
    at: Instant,
    sample_ms: f64,
    /// The whole `sample_once`, including storing the sample and the alert evaluation
    /// (from the monitor's histogram), once it has finished.
    full_s: Option<f64>,
    gi: Option<f64>,
}

struct HealthRun {
    streams: Vec<StreamResult>,
    writer: Option<WriterResult>,
    seen: Vec<SeenSample>,
    lock: Result<LockProbe, String>,
    /// The monitor's (count, seconds) before and after the window.
    mon: ((u64, f64), (u64, f64)),
    cpu: (CpuSnap, CpuSnap),
    disk: (Option<DiskSnap>, Option<DiskSnap>),
    window: Duration,
}

fn health_phase(
    s: &Settings,
    machine: &Machine,
    dir: &Path,
    rep: &mut Report,
) -> Result<(), String> {
    let o = open_ledger(dir)?;
    // One token per writer connection, so the per-token write limit is not what is measured.
    let writer_tokens = {
        let mut conn = o.store.connect().map_err(|e| e.to_string())?;
        (0..s.append_connections)
            .map(|i| {
                auth::create_token(
                    &mut conn,
                    Role::Operator,
                    &format!("bench-writer-{i}"),
                    None,
                    now_ms(),
                )
                .map(|t| t.token)
                .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let srv_rt = runtime("ledger-server", None)?;
    let cli_rt = runtime("bench-client", Some(s.client_threads))?;
    let wr_rt = runtime("bench-writer", Some(1))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stack = match srv_rt.block_on(start_stack(&o, dir, stop_rx)) {
        Ok(st) => st,
        Err(e) => {
            o.ledger.shutdown();
            return Err(e);
        }
    };
    eprintln!(
        "health phase: ledger-api on http://{}, portal on http://{}",
        stack.ledger_addr, stack.portal_addr
    );
    let run = cli_rt.block_on(health_load(
        s,
        &o,
        &writer_tokens,
        &stack,
        &wr_rt,
        machine.disk_name.clone(),
    ));
    cli_rt.shutdown_timeout(Duration::from_secs(10));
    wr_rt.shutdown_timeout(Duration::from_secs(10));

    let Stack {
        monitor, servers, ..
    } = stack;
    srv_rt.block_on(stop_servers(&stop_tx, servers, &mut rep.notes));
    let final_snap = monitor.snapshot();
    drop(monitor);
    o.ledger.shutdown();
    let entries = o.ledger.shared.tree_size.load(Ordering::Acquire);
    srv_rt.shutdown_timeout(Duration::from_secs(10));
    let run = run?;
    report_health(s, &run, entries, final_snap, rep);
    Ok(())
}

async fn health_load(
    s: &Settings,
    o: &Opened,
    writer_tokens: &[String],
    stack: &Stack,
    wr_rt: &tokio::runtime::Runtime,
    disk: Option<String>,
) -> Result<HealthRun, String> {
    // The first sample runs at start-up; wait for it so GI is there to serve.
    first_sample(&stack.monitor, Duration::from_secs(60)).await?;
    let ledger = Target {
        addr: stack.ledger_addr,
        token: o.token.clone(),
    };
    let portal = Target {
        addr: stack.portal_addr,
        token: o.token.clone(),
    };
    let specs = vec![
        StreamSpec {
            name: "GET /healthz (ledger-api)".into(),
            target: ledger.clone(),
            path: "/healthz",
            rate: s.rate / 2.0,
            strict: true,
        },
        StreamSpec {
            name: "GET /api/integrity-check (portal)".into(),
            target: portal.clone(),
            path: "/api/integrity-check",
            rate: s.rate / 2.0,
            strict: false,
        },
        StreamSpec {
            name: "GET /healthz (portal)".into(),
            target: portal,
            path: "/healthz",
            rate: s.rate / 10.0,
            strict: true,
        },
    ];
    let t0 = Instant::now() + Duration::from_millis(300);
    let start = t0 + s.warmup;
    let end = start + s.measure;
    eprintln!(
        "health load: {} req/s for {:.0} s warm-up + {} s, background appends at {}/s over {} connections",
        report::rate(specs.iter().map(|x| x.rate).sum()),
        s.warmup.as_secs_f64(),
        s.measure.as_secs(),
        report::rate(s.append_rate),
        s.append_connections
    );

    let writer_targets: Vec<Target> = writer_tokens
        .iter()
        .map(|t| Target {
            addr: stack.ledger_addr,
            token: t.clone(),
        })
        .collect();
    let writer = (s.append_rate > 0.0)
        .then(|| wr_rt.spawn(writer(writer_targets, s.append_rate, t0, start, end)));

    // Watch the monitor's samples (it takes one every 10 s).
    let (seen_stop_tx, mut seen_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let m = stack.monitor.clone();
    let (base_i, base_ms) = (Instant::now(), now_ms());
    let watcher = tokio::spawn(async move {
        let mut seen: Vec<SeenSample> = Vec::new();
        let mut last = m.snapshot().map(|x| x.at_ms);
        let mut counted = monitor_counters(&m);
        loop {
            if let Some(snap) = m.snapshot()
                && Some(snap.at_ms) != last
            {
                last = Some(snap.at_ms);
                let off = snap.at_ms - base_ms;
                let at = if off >= 0 {
                    base_i + Duration::from_millis(off as u64)
                } else {
                    base_i - Duration::from_millis((-off) as u64)
                };
                seen.push(SeenSample {
                    at,
                    sample_ms: snap.sample_ms,
                    full_s: None,
                    gi: snap.gi,
                });
            }
            // The snapshot is published before the sample is stored; the histogram counts
            // the sample when it has finished.
            let c = monitor_counters(&m);
            if c.0 > counted.0 {
                let full = (c.1 - counted.1) / (c.0 - counted.0) as f64;
                if let Some(x) = seen.iter_mut().rev().find(|x| x.full_s.is_none()) {
                    x.full_s = Some(full);
                }
                counted = c;
            }
            tokio::select! {
                _ = &mut seen_stop_rx => return seen,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });

    let m = stack.monitor.clone();
    let prober = tokio::spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(start)).await;
        let a = (
            sys::cpu_snapshot(),
            sys::disk_snapshot(disk.as_deref()),
            monitor_counters(&m),
            Instant::now(),
        );
        tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
        let b = (
            sys::cpu_snapshot(),
            sys::disk_snapshot(disk.as_deref()),
            monitor_counters(&m),
            Instant::now(),
        );
        (a, b)
    });

    let mut txs = Vec::new();
    let mut dispatchers = Vec::new();
    for spec in &specs {
        let (tx, rx) = mpsc::unbounded_channel();
        txs.push(tx);
        dispatchers.push(tokio::spawn(dispatch(spec.clone(), rx, start, end)));
    }
    let store = o.store.clone();
    let lock_probe = std::thread::Builder::new()
        .name("bench-lockprobe".into())
        .spawn(move || lock_probe(store, start, end))
        .map_err(|e| format!("start the write-lock probe: {e}"))?;
    let rates = specs.iter().map(|x| x.rate).collect();
    let pacer = std::thread::Builder::new()
        .name("bench-client-pacer".into())
        .spawn(move || pace(rates, txs, t0, end))
        .map_err(|e| format!("start the pacing thread: {e}"))?;

    let mut streams = Vec::new();
    let mut failed = None;
    for d in dispatchers {
        match d.await {
            Ok(r) => streams.push(r),
            Err(e) => failed = Some(format!("dispatcher task failed: {e}")),
        }
    }
    let _ = pacer.join();
    let lock = lock_probe
        .join()
        .unwrap_or_else(|_| Err("the write-lock probe panicked".into()));
    let writer = match writer {
        Some(w) => Some(
            w.await
                .map_err(|e| format!("writer task failed: {e}"))
                .and_then(|r| r)?,
        ),
        None => None,
    };
    let _ = seen_stop_tx.send(());
    let seen = watcher.await.unwrap_or_default();
    let (a, b) = prober
        .await
        .map_err(|e| format!("probe task failed: {e}"))?;
    if let Some(f) = failed {
        return Err(f);
    }
    Ok(HealthRun {
        streams,
        writer,
        seen: seen
            .into_iter()
            .filter(|x| x.at + Duration::from_secs(1) >= start && x.at < end)
            .collect(),
        lock,
        mon: (a.2, b.2),
        cpu: (a.0, b.0),
        disk: (a.1, b.1),
        window: b.3.duration_since(a.3),
    })
}

/// Whether a request due at `due` was due while a monitor sample ran (from 50 ms before
/// the sample started to 50 ms after it finished; when its end is unknown, 1 s after the
/// measured part).
fn near_sample(seen: &[SeenSample], due: Instant) -> bool {
    seen.iter().any(|x| {
        let len = x.full_s.unwrap_or(x.sample_ms / 1e3 + 1.0);
        due + Duration::from_millis(50) >= x.at
            && due <= x.at + Duration::from_secs_f64(len) + Duration::from_millis(50)
    })
}

fn pct_ns(v: &[u64], q: f64) -> Option<f64> {
    load::percentile(v, q).map(|ns| ns as f64 / 1e9)
}

fn report_health(
    s: &Settings,
    run: &HealthRun,
    entries: u64,
    final_snap: Option<Snapshot>,
    rep: &mut Report,
) {
    let secs = run.window.as_secs_f64().max(1e-9);
    let mut t = Table::new(&[
        ("endpoint", false),
        ("scheduled", true),
        ("answered", true),
        ("p50", true),
        ("p99", true),
        ("p99.9", true),
        ("max", true),
        ("errors", true),
        ("statuses", false),
        ("target", false),
        ("", false),
    ]);
    let mut split = Table::new(&[
        ("endpoint", false),
        ("lag p50", true),
        ("lag p99", true),
        ("lag max", true),
        ("service p50", true),
        ("service p99", true),
        ("service max", true),
        ("≥ 5 ms", true),
        ("… near a monitor sample", true),
        ("connections", true),
    ]);
    for r in &run.streams {
        let p99 = r.lat.pct(0.99);
        let ok = p99.is_some_and(|p| p < T_HEALTH_P99) && r.lat.errors == 0;
        let statuses = r
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}×{}", report::int(*v)))
            .collect::<Vec<_>>()
            .join(" ");
        t.row(vec![
            r.spec.name.clone(),
            format!(
                "{} ({}/s)",
                report::int(r.scheduled),
                report::rate(r.spec.rate)
            ),
            report::int(r.lat.latencies_ns.len() as u64),
            report::ms(r.lat.pct(0.50)),
            report::ms(p99),
            report::ms(r.lat.pct(0.999)),
            report::ms(r.lat.latencies_ns.last().map(|n| *n as f64 / 1e9)),
            report::int(r.lat.errors),
            statuses,
            "p99 < 5 ms".into(),
            report::verdict(Some(ok)).into(),
        ]);
        let near = r
            .slow
            .iter()
            .filter(|(due, _)| near_sample(&run.seen, *due))
            .count();
        split.row(vec![
            r.spec.name.clone(),
            report::ms(pct_ns(&r.lag_ns, 0.5)),
            report::ms(pct_ns(&r.lag_ns, 0.99)),
            report::ms(r.lag_ns.last().map(|n| *n as f64 / 1e9)),
            report::ms(pct_ns(&r.service_ns, 0.5)),
            report::ms(pct_ns(&r.service_ns, 0.99)),
            report::ms(r.service_ns.last().map(|n| *n as f64 / 1e9)),
            report::int(r.slow.len() as u64),
            report::int(near as u64),
            r.connections.to_string(),
        ]);
        rep.targets.push(TargetLine {
            target: format!(
                "{}: p99 < 5 ms at {}/s total",
                r.spec.name,
                report::rate(s.rate)
            ),
            measured: format!(
                "p99 {} (p99.9 {}, max {}) over {} requests, {} errors",
                report::ms(p99),
                report::ms(r.lat.pct(0.999)),
                report::ms(r.lat.latencies_ns.last().map(|n| *n as f64 / 1e9)),
                report::int(r.lat.latencies_ns.len() as u64),
                report::int(r.lat.errors)
            ),
            verdict: Some(ok),
        });
        if let Some(e) = &r.lat.first_error {
            rep.notes.push(format!(
                "{}: {} error(s); first: {e}",
                r.spec.name, r.lat.errors
            ));
        }
        if !r.spec.strict && r.statuses.keys().any(|k| *k != 200) {
            rep.notes.push(format!(
                "{} answered other than 200 (GI below 0.95 at the time): {}",
                r.spec.name,
                r.statuses
                    .iter()
                    .map(|(k, v)| format!("{k}×{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    rep.health = Some(t);
    rep.split = Some(split);

    // Background: the writer and the monitor.
    let mut bg = Table::new(&[
        ("background load", false),
        ("target", true),
        ("achieved", true),
        ("p50", true),
        ("p99", true),
        ("max", true),
        ("errors", true),
    ]);
    if let Some(w) = &run.writer {
        bg.row(vec![
            "single appends (POST /v1/attestations)".into(),
            format!("{}/s", report::rate(s.append_rate)),
            format!(
                "{}/s ({} of {} due)",
                report::rate(w.ok as f64 / secs),
                report::int(w.ok),
                report::int(w.scheduled)
            ),
            report::ms(pct_ns(&w.service_ns, 0.5)),
            report::ms(pct_ns(&w.service_ns, 0.99)),
            report::ms(w.service_ns.last().map(|n| *n as f64 / 1e9)),
            report::int(w.errors),
        ]);
        if let Some(e) = &w.first_error {
            rep.notes.push(format!(
                "background writer: {} error(s); first: {e}",
                w.errors
            ));
        }
    }
    let ((c0, s0), (c1, s1)) = run.mon;
    let n = c1.saturating_sub(c0);
    let measured: Vec<u64> = sorted(
        run.seen
            .iter()
            .map(|x| (x.sample_ms * 1e6) as u64)
            .collect(),
    );
    let full: Vec<u64> = sorted(
        run.seen
            .iter()
            .filter_map(|x| x.full_s)
            .map(|f| (f * 1e9) as u64)
            .collect(),
    );
    bg.row(vec![
        "monitor samples: checks and probes (`sample_ms`)".into(),
        "every 10 s".into(),
        format!("{} seen", measured.len()),
        report::ms(pct_ns(&measured, 0.5)),
        "-".into(),
        report::ms(measured.last().map(|n| *n as f64 / 1e9)),
        "-".into(),
    ]);
    bg.row(vec![
        "monitor samples: whole sample_once (+ store, alerts)".into(),
        "every 10 s".into(),
        format!("{} seen", full.len()),
        report::ms(pct_ns(&full, 0.5)),
        "-".into(),
        report::ms(full.last().map(|n| *n as f64 / 1e9)),
        "-".into(),
    ]);
    match &run.lock {
        Ok(l) => {
            bg.row(vec![
                "another writer: one-row INSERT on its own connection".into(),
                "every 1 s".into(),
                format!("{} done", l.lat_ns.len()),
                report::ms(pct_ns(&l.lat_ns, 0.5)),
                report::ms(pct_ns(&l.lat_ns, 0.99)),
                report::ms(l.lat_ns.last().map(|n| *n as f64 / 1e9)),
                report::int(l.errors),
            ]);
            if let Some(e) = &l.first_error {
                rep.notes.push(format!(
                    "The write-lock probe failed {} time(s); first: {e}",
                    l.errors
                ));
            }
        }
        Err(e) => rep
            .notes
            .push(format!("The write-lock probe did not run: {e}")),
    }
    rep.background = Some(bg);
    if n > 0 {
        rep.notes.push(format!(
            "The monitor took {n} sample(s) inside the measured window, {} each on average by its own histogram (`mobius_integrity_sample_duration_seconds`, the whole sample_once). The part before the snapshot is published (`sample_ms`: ledger checks and HTTP probes) is shown separately; the rest is mostly storing the sample in `integrity_samples` from a pooled connection, which must get SQLite's write lock from under the sequencer's back-to-back commits (compare the one-row INSERT probe above; SQLite's busy handler retries at growing intervals, up to 100 ms apart, for at most the 10 s busy timeout). GI seen: {}.",
            report::ms(Some((s1 - s0) / n as f64)),
            run.seen
                .iter()
                .map(|x| x.gi.map_or("none".into(), |g| format!("{g:.3}")))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // Do the slow health requests of different endpoints come together (a stall of the
    // process or the machine) or one by one?
    let mut slow: Vec<(Instant, usize)> = run
        .streams
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.slow.iter().map(move |(due, _)| (*due, i)))
        .collect();
    slow.sort_unstable_by_key(|x| x.0);
    if !slow.is_empty() {
        // Group requests due within 20 ms of the previous slow one.
        let mut groups: Vec<Vec<(Instant, usize)>> = Vec::new();
        for x in slow {
            match groups.last_mut() {
                Some(g) if x.0.duration_since(g[g.len() - 1].0) <= Duration::from_millis(20) => {
                    g.push(x)
                }
                _ => groups.push(vec![x]),
            }
        }
        let total: usize = groups.iter().map(|g| g.len()).sum();
        let multi = groups
            .iter()
            .filter(|g| {
                let mut e: Vec<usize> = g.iter().map(|x| x.1).collect();
                e.sort_unstable();
                e.dedup();
                e.len() > 1
            })
            .count();
        let near = groups
            .iter()
            .filter(|g| near_sample(&run.seen, g[0].0))
            .count();
        rep.notes.push(format!(
            "The {total} health request(s) at or over 5 ms fell into {} burst(s) (requests due within 20 ms of each other); {multi} burst(s) hit more than one endpoint at once (a stall of the process or the machine rather than of one handler), {near} began while a monitor sample was running (from 50 ms before its start to 50 ms after it finished).",
            groups.len()
        ));
    }
    if let Some(snap) = final_snap {
        rep.notes.push(format!(
            "At the end of the health phase the ledger held {} entries; the monitor's last GI was {} ({}).",
            report::int(entries),
            snap.gi.map_or("none".into(), |g| format!("{g:.4}")),
            snap.components
                .iter()
                .map(|(k, v)| format!("{k} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let (cpu, elsewhere) = sys::cpu_delta(&run.cpu.0, &run.cpu.1);
    let pct = |x: f64| format!("{:.0}%", x / secs * 100.0);
    let mut ct = Table::new(&[
        ("window", false),
        ("secs", true),
        ("load generator", true),
        ("servers + monitor", true),
        ("sequencer", true),
        ("checkpointer", true),
        ("writer + other", true),
        ("total", true),
        ("rest of machine", true),
        ("disk writes/s", true),
        ("MB/s written", true),
        ("flushes/s", true),
    ]);
    let (w, mb, fl) = match (&run.disk.0, &run.disk.1) {
        (Some(a), Some(b)) => {
            let (w, mb, fl) = sys::disk_rates(a, b, secs);
            (
                report::rate(w),
                format!("{mb:.1}"),
                fl.map_or("-".into(), report::rate),
            )
        }
        _ => ("-".into(), "-".into(), "-".into()),
    };
    ct.row(vec![
        "health phase (measured window)".into(),
        format!("{secs:.1}"),
        pct(cpu[0]),
        pct(cpu[1]),
        pct(cpu[2]),
        pct(cpu[3]),
        pct(cpu[4]),
        pct(cpu.iter().sum()),
        elsewhere.map_or("-".into(), pct),
        w,
        mb,
        fl,
    ]);
    rep.cpu = Some(ct);
}

// ---------------------------------------------------------------------------------------
// Phase 2: the monitor's sample cost against the ledger size.

struct Series {
    size: u64,
    name: &'static str,
    probes: &'static str,
    durs_ns: Vec<u64>,
    rehashed: Vec<u64>,
    scrubbed: Vec<u64>,
    /// CPU used outside this process while the series ran, as a share of one core.
    elsewhere: Option<f64>,
    /// CPU seconds this process used while the series ran.
    cpu_s: Option<f64>,
    /// Scrub position before the first and after the last sample, and the scrub's cycle
    /// count after the first and the last.
    pos: (u64, u64),
    cycles: (u64, u64),
}

impl Series {
    fn new(size: u64, name: &'static str, probes: &'static str) -> Series {
        Series {
            size,
            name,
            probes,
            durs_ns: Vec::new(),
            rehashed: Vec::new(),
            scrubbed: Vec::new(),
            elsewhere: None,
            cpu_s: None,
            pos: (0, 0),
            cycles: (0, 0),
        }
    }

    /// CPU time of this whole process per sample (the server is otherwise idle then).
    fn cpu_per_sample(&self) -> Option<f64> {
        self.cpu_s
            .filter(|_| !self.durs_ns.is_empty())
            .map(|c| c / self.durs_ns.len() as f64)
    }

    /// Records checked per sample: entries re-hashed plus records scrubbed (mean).
    fn work(&self) -> f64 {
        let n = self.rehashed.len().max(1) as f64;
        (self.rehashed.iter().sum::<u64>() + self.scrubbed.iter().sum::<u64>()) as f64 / n
    }
}

const S_INIT: &str = "first sample (initialises)";
const S_IDLE: &str = "no new entries";
const S_NEW: &str = "1,000 new sealed entries before each";
const S_PROBE: &str = "no new entries, probing ledger-api";

fn sample_phase(s: &Settings, dir: &Path, rep: &mut Report) -> Result<(), String> {
    let o = open_ledger(dir)?;
    let rt = runtime("ledger-server", None)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut notes = Vec::new();
    let r = rt.block_on(async {
        let health = Health::new(mobius_ledger::SERVICE);
        health.set_ready(true);
        let app = routes::router(
            routes::LedgerApi {
                ledger: o.ledger.clone(),
                auth: Authenticator::new(Pool::new(o.store.clone(), 4)),
                automation: None,
            },
            health,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("listen: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let server = tokio::spawn(mobius_http::serve(listener, app, stopped(stop_rx)));
        let r = sample_series(s, &o, dir, addr).await;
        stop_servers(&stop_tx, vec![server], &mut notes).await;
        r
    });
    o.ledger.shutdown();
    rt.shutdown_timeout(Duration::from_secs(10));
    rep.notes.extend(notes);
    let (series, phase_notes) = r?;
    report_samples(s, &series, rep);
    rep.notes.extend(phase_notes);
    Ok(())
}

struct Settled {
    wal_bytes: u64,
    frames: u64,
    waited: Duration,
}

/// Waits (at most 120 s) until the WAL of `db` is fully checkpointed, running passive
/// checkpoints as the ledger's checkpointer does (they never block the writer).
fn settle_wal(db: &Path) -> Result<Settled, String> {
    let sql = |e: rusqlite::Error| format!("WAL settle: {e}");
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    let c = rusqlite::Connection::open(db).map_err(sql)?;
    c.busy_timeout(Duration::from_secs(5)).map_err(sql)?;
    let t = Instant::now();
    let mut first = None;
    loop {
        let (busy, log, done): (i64, i64, i64) = c
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(sql)?;
        let (log, done) = (log.max(0) as u64, done.max(0) as u64);
        let frames = *first.get_or_insert(log);
        if busy == 0 && done >= log {
            return Ok(Settled {
                wal_bytes,
                frames,
                waited: t.elapsed(),
            });
        }
        if t.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "the WAL was not fully checkpointed within 120 s ({done} of {log} frames)"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_observed(snap: &Snapshot, name: &str) -> Option<serde_json::Value> {
    snap.checks
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.observed.clone())
}

fn scrub_position(snap: &Snapshot) -> u64 {
    check_observed(snap, "ledger.scrub")
        .and_then(|v| v["position"].as_u64())
        .unwrap_or(0)
}

/// Takes and times one sample on `m`; records its duration, the entries it re-hashed and
/// the records it scrubbed (from the scrub position before it). Returns the new position.
async fn timed_sample(
    m: &Monitor,
    scrub_pos: u64,
    out: &mut Series,
    bad: &mut Vec<String>,
) -> Result<u64, String> {
    let t = Instant::now();
    let snap = m
        .sample_once()
        .await
        .map_err(|e| format!("monitor sample: {e}"))?;
    out.durs_ns.push(t.elapsed().as_nanos() as u64);
    out.rehashed.push(
        check_observed(&snap, "ledger.rehash")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
    );
    let pos = scrub_position(&snap);
    let cycles = check_observed(&snap, "ledger.scrub")
        .and_then(|v| v["cycles"].as_u64())
        .unwrap_or(0);
    if out.durs_ns.len() == 1 {
        out.pos.0 = scrub_pos;
        out.cycles.0 = cycles;
    }
    out.pos.1 = pos;
    out.cycles.1 = cycles;
    // The scrub wraps to the start when it reaches the verified size.
    out.scrubbed.push(if pos > scrub_pos {
        pos - scrub_pos
    } else {
        pos
    });
    if snap.components.get("ledger") != Some(&1.0) && bad.len() < 5 {
        bad.push(format!(
            "at {} entries ({}): ledger component {:?}, checks {}",
            out.size,
            out.name,
            snap.components.get("ledger"),
            serde_json::to_string(&snap.checks).unwrap_or_default()
        ));
    }
    Ok(pos)
}

async fn start_monitor(
    o: &Opened,
    dir: &Path,
    services: Vec<(String, String)>,
) -> Result<Arc<Monitor>, String> {
    let pool = Pool::new(o.store.clone(), 4);
    let automation = Automation::load(o.ledger.clone(), pool.clone())
        .await
        .map_err(|e| format!("automation state: {e}"))?;
    let incidents = Incidents::new(o.ledger.clone(), pool.clone());
    let mut mc = MonitorConfig::new(services, dir.to_path_buf(), "http://127.0.0.1:9".into());
    mc.sample_interval = IDLE_INTERVAL;
    mc.block_interval_ms = o.lcfg.block_interval_ms as i64;
    Monitor::start(o.ledger.clone(), pool, automation, incidents, mc)
        .await
        .map_err(|e| format!("integrity monitor: {e}"))
}

async fn sample_series(
    s: &Settings,
    o: &Opened,
    dir: &Path,
    addr: SocketAddr,
) -> Result<(Vec<Series>, Vec<String>), String> {
    let target = Target {
        addr,
        token: o.token.clone(),
    };
    let ledger_url = format!("http://{addr}");
    // Entry numbers continue across growth and the per-sample batches.
    let next = Arc::new(AtomicU64::new(0));
    let mut series = Vec::new();
    let mut notes = Vec::new();
    let mut bad = Vec::new();
    for &size in &s.sizes {
        let have = o.ledger.shared.tree_size.load(Ordering::Acquire);
        if have < size {
            let requests = (size - have).div_ceil(BATCH_SIZE);
            eprintln!(
                "sample phase: growing the ledger from {} to {} entries ({requests} batch requests, {GROW_CLIENTS} clients)",
                report::int(have),
                report::int(have + requests * BATCH_SIZE)
            );
            let spec = RunSpec {
                clients: GROW_CLIENTS,
                make: batch_maker(next.clone()),
                expect: StatusCode::CREATED,
            };
            let (g, _, _) = load::run_counted(&target, &spec, requests, || ()).await?;
            if g.errors > 0 {
                return Err(format!(
                    "growing the ledger: {} failed batch(es); first: {}",
                    g.errors,
                    g.first_error.unwrap_or_default()
                ));
            }
            let grown = o.ledger.shared.tree_size.load(Ordering::Acquire);
            notes.push(format!(
                "Growing the ledger from {} to {} entries took {:.1} s ({} entries/s, batches of {BATCH_SIZE} over {GROW_CLIENTS} connections).",
                report::int(have),
                report::int(grown),
                g.window.as_secs_f64(),
                report::rate((grown - have) as f64 / g.window.as_secs_f64().max(1e-9))
            ));
        }
        let sealed_at = wait_sealed(&o.ledger, Duration::from_secs(120)).await?;
        // Growth leaves a large WAL behind; until the checkpointer has copied it into the
        // database, every page a reader misses in its cache is looked up in the WAL index
        // (more segments to search the bigger the WAL), and the checkpointer competes for
        // the CPU. Time the samples against a settled store, as a long-running one is.
        let db = dir.join("mobius.db");
        let settled = tokio::task::spawn_blocking(move || settle_wal(&db))
            .await
            .map_err(|e| format!("WAL settle task: {e}"))??;
        notes.push(format!(
            "At {} entries the WAL file was {:.0} MB ({} frames in use) after growth and sealing; {} later it was fully checkpointed, and only then were the samples timed.",
            report::int(sealed_at),
            settled.wal_bytes as f64 / 1e6,
            report::int(settled.frames),
            report::ms(Some(settled.waited.as_secs_f64()))
        ));
        eprintln!(
            "sample phase: {} entries sealed; timing monitor samples",
            report::int(sealed_at)
        );

        // A monitor that probes no service: the cost of the samples themselves.
        let m = start_monitor(o, dir, Vec::new()).await?;
        let (init_s, init_snap) = first_sample(&m, Duration::from_secs(300)).await?;
        let mut init = Series::new(sealed_at, S_INIT, "none");
        init.durs_ns.push((init_s * 1e9) as u64);
        init.rehashed.push(
            check_observed(&init_snap, "ledger.rehash")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        );
        init.scrubbed.push(scrub_position(&init_snap));
        if init_snap.components.get("ledger") != Some(&1.0) && bad.len() < 5 {
            bad.push(format!(
                "at {} entries (first sample): ledger component {:?}",
                sealed_at,
                init_snap.components.get("ledger")
            ));
        }
        init.durs_ns.sort_unstable();
        series.push(init);

        let mut idle = Series::new(sealed_at, S_IDLE, "none");
        let mut pos = scrub_position(&init_snap);
        let busy = Busy::start();
        for _ in 0..s.samples {
            pos = timed_sample(&m, pos, &mut idle, &mut bad).await?;
        }
        let (e, c) = busy.finish();
        (idle.elsewhere, idle.cpu_s) = (e, Some(c));
        idle.durs_ns.sort_unstable();
        series.push(idle);

        // As configured in `mobius up`, a monitor also probes the services over HTTP: a
        // second monitor, probing ledger-api, on the same (still idle) ledger.
        let mp = start_monitor(
            o,
            dir,
            vec![(mobius_ledger::SERVICE.to_string(), ledger_url.clone())],
        )
        .await?;
        let (_, snap) = first_sample(&mp, Duration::from_secs(300)).await?;
        let mut probe = Series::new(sealed_at, S_PROBE, "ledger-api /healthz + /metrics");
        let mut ppos = scrub_position(&snap);
        let busy = Busy::start();
        for _ in 0..s.samples {
            ppos = timed_sample(&mp, ppos, &mut probe, &mut bad).await?;
        }
        let (e, c) = busy.finish();
        (probe.elsewhere, probe.cpu_s) = (e, Some(c));
        drop(mp);
        probe.durs_ns.sort_unstable();
        series.push(probe);

        // Back to the first monitor: 1,000 new entries, sealed, before each sample.
        let mut new = Series::new(sealed_at, S_NEW, "none");
        let mut client = Client::connect(&target).await?;
        let batch = batch_maker(next.clone());
        let busy = Busy::start();
        for _ in 0..s.samples {
            let (status, body) = client.send(&batch(0, 0)).await?;
            if status != StatusCode::CREATED {
                return Err(format!(
                    "batch append: HTTP {}: {}",
                    status.as_u16(),
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
            wait_sealed(&o.ledger, Duration::from_secs(60)).await?;
            pos = timed_sample(&m, pos, &mut new, &mut bad).await?;
        }
        // (Its CPU includes the appends and sealing: not a per-sample figure.)
        new.elsewhere = busy.finish().0;
        client.close().await;
        drop(m);
        new.durs_ns.sort_unstable();
        // Under steady appends the rolling scrub can end up re-checking only the newest
        // records: say so when it happens, since it changes what a sample costs.
        let trailing = new
            .rehashed
            .iter()
            .zip(&new.scrubbed)
            .filter(|(r, sc)| **r > 0 && *sc <= *r)
            .count();
        if trailing * 2 > new.scrubbed.len() {
            notes.push(format!(
                "At {} entries with 1,000 new sealed entries before each sample, the rolling scrub re-checked only the newly sealed records in {trailing} of {} samples (scrub position {} → {}; completed scrub cycles {} after the first sample, {} after the last): once the scrub reaches the verified size it does not wrap to the start while new entries keep being sealed between samples (ledger_check.rs, step 4), so under continuous appends the old records are no longer re-verified and the sample is cheaper than at rest.",
                report::int(sealed_at),
                new.scrubbed.len(),
                report::int(new.pos.0),
                report::int(new.pos.1),
                new.cycles.0,
                new.cycles.1
            ));
        }
        series.push(new);
    }
    if bad.is_empty() {
        notes.push(
            "Every timed sample scored the ledger component L = 1.0 (signature, consistency, re-hash and scrub all passed), so the timings are of complete, passing checks.".into(),
        );
    } else {
        notes.push(format!(
            "WARNING: some samples did not score L = 1.0: {}",
            bad.join("; ")
        ));
    }
    Ok((series, notes))
}

/// CPU used outside this process over a stretch of time (other processes, the kernel).
struct Busy {
    cpu: CpuSnap,
    at: Instant,
}

impl Busy {
    fn start() -> Busy {
        Busy {
            cpu: sys::cpu_snapshot(),
            at: Instant::now(),
        }
    }

    /// Since `start`: the share of one core used outside this process, and the CPU
    /// seconds used by this process.
    fn finish(&self) -> (Option<f64>, f64) {
        let (ours, rest) = sys::cpu_delta(&self.cpu, &sys::cpu_snapshot());
        let secs = self.at.elapsed().as_secs_f64().max(1e-9);
        (rest.map(|r| r / secs), ours.iter().sum())
    }
}

fn mean_ns(v: &[u64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64 / 1e9)
}

fn mean_count(v: &[u64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    report::int((v.iter().sum::<u64>() as f64 / v.len() as f64).round() as u64)
}

fn report_samples(s: &Settings, series: &[Series], rep: &mut Report) {
    let mut t = Table::new(&[
        ("ledger entries", true),
        ("series", false),
        ("samples", true),
        ("mean", true),
        ("p50", true),
        ("max", true),
        ("re-hashed/sample", true),
        ("scrubbed/sample", true),
        ("CPU/sample", true),
        ("services probed", false),
        ("rest of machine", true),
    ]);
    for x in series {
        t.row(vec![
            report::int(x.size),
            x.name.into(),
            x.durs_ns.len().to_string(),
            report::ms(mean_ns(&x.durs_ns)),
            report::ms(pct_ns(&x.durs_ns, 0.5)),
            report::ms(x.durs_ns.last().map(|n| *n as f64 / 1e9)),
            mean_count(&x.rehashed),
            mean_count(&x.scrubbed),
            report::ms(x.cpu_per_sample()),
            x.probes.into(),
            x.elsewhere
                .map_or("-".into(), |b| format!("{:.0}%", b * 100.0)),
        ]);
    }
    rep.samples = Some(t);

    let mut f = Table::new(&[
        ("series", false),
        ("p50 by size", false),
        ("records checked/sample by size", false),
        ("CPU/sample by size", false),
        ("largest / smallest", true),
        ("flat", false),
    ]);
    let mut all_flat = true;
    let mut measured = Vec::new();
    for name in [S_INIT, S_IDLE, S_PROBE, S_NEW] {
        let rows: Vec<&Series> = series.iter().filter(|x| x.name == name).collect();
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            continue;
        };
        let (Some(a), Some(b)) = (pct_ns(&first.durs_ns, 0.5), pct_ns(&last.durs_ns, 0.5)) else {
            continue;
        };
        let ratio = b / a.max(1e-9);
        let flat = b <= a * FLAT_RATIO + FLAT_SLACK_S;
        // Sizes are compared only when the samples did the same work (entries re-hashed
        // plus records scrubbed within 10%); the single first sample is shown, not judged.
        let (wa, wb) = (first.work(), last.work());
        let comparable = (wb - wa).abs() <= 0.1 * wa.max(wb);
        let judged = name != S_INIT && rows.len() > 1 && comparable;
        if judged {
            all_flat &= flat;
            measured.push(format!("{name}: ×{ratio:.2}"));
        }
        let by_size = |v: &dyn Fn(&Series) -> String| {
            rows.iter()
                .map(|x| format!("{}: {}", short(x.size), v(x)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        f.row(vec![
            name.into(),
            by_size(&|x| report::ms(pct_ns(&x.durs_ns, 0.5))),
            by_size(&|x| report::int(x.work().round() as u64)),
            by_size(&|x| report::ms(x.cpu_per_sample())),
            format!("×{ratio:.2}"),
            if judged {
                if flat { "flat" } else { "GROWS" }.into()
            } else if rows.len() < 2 {
                "(one size)".into()
            } else if !comparable {
                "not judged: unequal work".into()
            } else if flat {
                "(flat; one sample)".into()
            } else {
                "(grows; one sample)".into()
            },
        ]);
    }
    rep.flat = Some(f);
    let sizes = s
        .sizes
        .iter()
        .map(|n| short(*n))
        .collect::<Vec<_>>()
        .join(", ");
    rep.targets.push(TargetLine {
        target: format!(
            "monitor sample cost flat across {sizes} entries (p50 at the largest ≤ {FLAT_RATIO}× the smallest + {} ms)",
            FLAT_SLACK_S * 1e3
        ),
        measured: if measured.is_empty() {
            "only one size measured".into()
        } else {
            format!("largest/smallest p50: {}", measured.join("; "))
        },
        verdict: (s.sizes.len() > 1).then_some(all_flat),
    });
    if !s.sizes.contains(&1_000_000) {
        rep.notes.push(
            "The sizes measured stop short of 10^6 (e.g. --quick): the flatness verdict is indicative only.".into(),
        );
    }
}

// ---------------------------------------------------------------------------------------
// The report.

struct Header {
    command: String,
    load: String,
    revision: Option<String>,
    started_at: String,
    machine: Machine,
    settings: Settings,
}

struct TargetLine {
    target: String,
    measured: String,
    verdict: Option<bool>,
}

#[derive(Default)]
struct Report {
    config: Vec<String>,
    health: Option<Table>,
    split: Option<Table>,
    background: Option<Table>,
    cpu: Option<Table>,
    samples: Option<Table>,
    flat: Option<Table>,
    targets: Vec<TargetLine>,
    notes: Vec<String>,
}

impl Report {
    fn targets_table(&self) -> Table {
        let mut t = Table::new(&[("target", false), ("measured", false), ("", false)]);
        for l in &self.targets {
            t.row(vec![
                l.target.clone(),
                l.measured.clone(),
                report::verdict(l.verdict).into(),
            ]);
        }
        t
    }

    fn header_lines(&self, h: &Header) -> Vec<(&'static str, String)> {
        let m = &h.machine;
        let s = &h.settings;
        vec![
            ("date", h.started_at.clone()),
            ("command", h.command.clone()),
            (
                "source",
                h.revision
                    .clone()
                    .unwrap_or_else(|| "unknown revision".into()),
            ),
            (
                "machine",
                format!(
                    "nproc {} | {} | {} | {}",
                    m.cpus, m.cpu_model, m.kernel, m.memory
                ),
            ),
            ("load", h.load.clone()),
            ("data dir", format!("{} (temporary)", m.dir.display())),
            ("filesystem", m.filesystem.clone()),
            ("disk", m.disk.clone()),
            (
                "settings",
                format!(
                    "health: {} s measured after {:.0} s warm-up at {}/s ({}/s ledger-api /healthz, {}/s portal /api/integrity-check, {}/s portal /healthz), open loop, latency from the scheduled send time, at most {MAX_CONNS_PER_STREAM} connections per endpoint; background appends {}/s over {} connections with a token each; rate limiter as in `mobius up` (default limits; health routes exempt); sample cost at {} entries, {} timed samples per series{}; load generator runtime {} thread(s) + a pacing thread, writer runtime 1 thread, server runtime {} worker threads",
                    s.measure.as_secs(),
                    s.warmup.as_secs_f64(),
                    report::rate(s.rate * 1.1),
                    report::rate(s.rate / 2.0),
                    report::rate(s.rate / 2.0),
                    report::rate(s.rate / 10.0),
                    report::rate(s.append_rate),
                    s.append_connections,
                    s.sizes
                        .iter()
                        .map(|n| report::int(*n))
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.samples,
                    if s.quick { " (--quick)" } else { "" },
                    s.client_threads,
                    m.cpus
                ),
            ),
        ]
    }

    fn render_text(&self, h: &Header) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\nMobius ops benchmark (mobius bench ops)\n");
        for (k, v) in self.header_lines(h) {
            let _ = writeln!(out, "{:<11} {v}", format!("{k}:"));
        }
        for c in &self.config {
            let _ = writeln!(out, "{:<11} {c}", "");
        }
        let section = |out: &mut String, title: &str, t: &Option<Table>| {
            if let Some(t) = t {
                let _ = writeln!(out, "\n{title}\n{}", t.text());
            }
        };
        section(
            &mut out,
            "HEALTH ENDPOINTS UNDER LOAD (open loop; latency from the scheduled send time)",
            &self.health,
        );
        section(
            &mut out,
            "MONITOR SAMPLE COST vs LEDGER SIZE (Monitor::sample_once, in-process)",
            &self.samples,
        );
        section(&mut out, "FLATNESS (sample p50 by ledger size)", &self.flat);
        let _ = writeln!(out, "\nTARGETS\n{}", self.targets_table().text());
        section(
            &mut out,
            "WHERE THE HEALTH LATENCY GOES (lag = scheduled → sent by the generator; service = sent → answered)",
            &self.split,
        );
        section(
            &mut out,
            "BACKGROUND LOAD DURING THE HEALTH WINDOW",
            &self.background,
        );
        section(
            &mut out,
            "CPU (% of one core, by thread group) AND DISK (/proc/diskstats)",
            &self.cpu,
        );
        let _ = writeln!(out, "NOTES");
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        out
    }

    fn render_markdown(&self, h: &Header) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Ops benchmark, {}\n",
            h.started_at.get(..10).unwrap_or(&h.started_at)
        );
        let _ = writeln!(
            out,
            "Produced by `mobius bench ops` (crates/bench/src/ops.rs). A benchmark, not a test: numbers from one run on one machine.\n"
        );
        let _ = writeln!(out, "```\n{}\n```\n", h.command);
        for (k, v) in self.header_lines(h) {
            if k != "command" {
                let _ = writeln!(out, "- **{k}**: {v}");
            }
        }
        for c in &self.config {
            let _ = writeln!(out, "- {c}");
        }
        let section = |out: &mut String, title: &str, intro: &str, t: &Option<Table>| {
            if let Some(t) = t {
                let _ = writeln!(out, "\n## {title}\n\n{intro}{}", t.markdown());
            }
        };
        section(
            &mut out,
            "Health endpoints under load",
            "ledger-api and the portal in-process with the integrity monitor sampling every 10 s, driven open loop: requests go out at fixed scheduled instants and latency runs from the scheduled instant to the end of the response, so stalls are charged to every request they delay. `statuses` are the HTTP codes seen (`/api/integrity-check` answers 200 while GI ≥ 0.95).\n\n",
            &self.health,
        );
        section(
            &mut out,
            "Monitor sample cost vs ledger size",
            "`Monitor::sample_once()` timed in-process on an idle ledger grown with batch appends; a new monitor per size (its first, initialising sample is taken by its own loop and timed by its histogram). Services probed: none, except in the last series, where the monitor probes ledger-api's `/healthz` and `/metrics` over HTTP as `mobius up` configures it. `CPU/sample` is the CPU time of the whole process per sample while the series ran (the server is otherwise idle then; not shown for the series with appends), which a busy neighbour disturbs less than wall time; `rest of machine` is the CPU used outside this process while the series ran (% of one core).\n\n",
            &self.samples,
        );
        section(&mut out, "Flatness", "", &self.flat);
        let _ = writeln!(out, "\n## Targets\n\n{}", self.targets_table().markdown());
        section(
            &mut out,
            "Where the health latency goes",
            "lag = scheduled instant → request handed to a connection (the load generator's own delay: pacing-thread wake-up, hand-off, waiting for a connection); service = handed to the connection → response read. `≥ 5 ms` counts the requests at or over the target; `… near a monitor sample` those of them scheduled from 50 ms before a monitor sample started to 50 ms after it finished.\n\n",
            &self.split,
        );
        section(
            &mut out,
            "Background load during the health window",
            "",
            &self.background,
        );
        section(
            &mut out,
            "CPU and disk",
            "CPU time per thread group as % of one core over the measured health window (`bench-client*` = load generator and pacing thread, `ledger-server*` = the one server runtime running ledger-api, the portal and the monitor, `ledger-sequence*` = the ledger's writer thread, `sqlite-checkpoint` = the WAL checkpointer, writer + other = the background writer's runtime and the rest of this process; \"rest of machine\" = busy CPU outside this process from /proc/stat); disk counters from /proc/diskstats of the data directory's disk.\n\n",
            &self.cpu,
        );
        let _ = writeln!(out, "\n## Notes\n");
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_is_in_time_order_and_staggered() {
        let (tx_a, mut rx_a) = mpsc::unbounded_channel();
        let (tx_b, mut rx_b) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        let end = t0 + Duration::from_millis(50);
        pace(vec![200.0, 100.0], vec![tx_a, tx_b], t0, end);
        let mut a = Vec::new();
        while let Ok(x) = rx_a.try_recv() {
            a.push(x);
        }
        let mut b = Vec::new();
        while let Ok(x) = rx_b.try_recv() {
            b.push(x);
        }
        assert_eq!(a.len(), 10);
        assert_eq!(b.len(), 5);
        let near =
            |d: Duration, ms: u64| d.abs_diff(Duration::from_millis(ms)) < Duration::from_micros(1);
        assert!(near(a[1] - a[0], 5));
        assert!(near(b[0] - t0, 5));
        assert!(a.iter().chain(&b).all(|x| *x < end));
    }
}
