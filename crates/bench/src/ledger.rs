//! `mobius bench ledger`: a real ledger-api (SQLite store, sequencer thread, axum router) is
//! started in-process on a fresh temporary data directory and driven over real HTTP/1.1
//! keep-alive connections from the same process. It measures
//!
//! 1. durable single-entry appends at 1, 16 and 64 concurrent clients,
//! 2. batch appends (1000 entries per request) at 1 and 4 clients,
//! 3. the time to grow the ledger to `--proof-entries`, then inclusion-proof latency,
//! 4. offline verification (`verify::verify_store`) of the whole store after a clean
//!    shutdown,
//! 5. raw baselines on the same filesystem: SQLite (WAL, synchronous=FULL) with one commit
//!    per row and per 1000 rows, and bare 4 KiB write + fdatasync loops,
//!
//! and prints the figures next to the targets, plus per-phase diagnostics (group-commit
//! sizes and durations from the sequencer's own histograms, CPU time per thread group,
//! disk writes and flushes). It is a benchmark, not a test: nothing is asserted about time.
//! Everything is bounded (fixed durations or request counts), every task is joined, and the
//! temporary directory is removed at the end.

use crate::load::{self, MakeReq, Outcome, Req, RunSpec, Target};
use crate::report::{self, Table};
use crate::sys::{self, CpuSnap, DiskSnap, Machine};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use mobius_core::merkle::{self, Hash};
use mobius_core::note::{NoteSigner, NoteVerifier};
use mobius_core::time::{now_ms, rfc3339_ms};
use mobius_http::auth::{self, Authenticator, Role};
use mobius_http::health::Health;
use mobius_ledger::{Ledger, LedgerConfig, routes};
use mobius_store::{Pool, StoreConfig};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOpts {
    /// Seconds each load level is measured, after a warm-up [default: 10; 2 with --quick]
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Grow the ledger to this many entries before measuring inclusion proofs
    /// [default: 1000000; 20000 with --quick]
    #[arg(long)]
    pub proof_entries: Option<u64>,
    /// Inclusion-proof requests per client level [default: 20000; 5000 with --quick]
    #[arg(long)]
    pub proof_requests: Option<u64>,
    /// Smoke run with small sizes (2 s per level, 20,000 proof entries)
    #[arg(long)]
    pub quick: bool,
    /// Where to create the temporary data directory [default: the system temp directory]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also write the report as Markdown (with the command line and date) to this file
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads of the in-process client's tokio runtime
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

/// The options with the defaults (and `--quick`) applied.
#[derive(Debug, Clone)]
struct Settings {
    measure: Duration,
    warmup: Duration,
    proof_entries: u64,
    proof_requests: u64,
    sqlite_secs: f64,
    fsync_secs: f64,
    client_threads: usize,
    quick: bool,
}

impl Settings {
    fn from(o: &BenchOpts) -> Result<Settings, String> {
        let q = o.quick;
        let secs = o.seconds.unwrap_or(if q { 2 } else { 10 });
        if secs == 0 || secs > 3600 {
            return Err("--seconds must be 1 to 3600".into());
        }
        let proof_entries = o
            .proof_entries
            .unwrap_or(if q { 20_000 } else { 1_000_000 });
        if !(1_000..=100_000_000).contains(&proof_entries) {
            return Err("--proof-entries must be 1000 to 100000000".into());
        }
        let proof_requests = o.proof_requests.unwrap_or(if q { 5_000 } else { 20_000 });
        if !(100..=10_000_000).contains(&proof_requests) {
            return Err("--proof-requests must be 100 to 10000000".into());
        }
        if !(1..=64).contains(&o.client_threads) {
            return Err("--client-threads must be 1 to 64".into());
        }
        Ok(Settings {
            measure: Duration::from_secs(secs),
            warmup: Duration::from_millis(if q { 500 } else { 1000 }),
            proof_entries,
            proof_requests,
            sqlite_secs: if q { 1.0 } else { 3.0 },
            fsync_secs: if q { 1.0 } else { 2.0 },
            client_threads: o.client_threads,
            quick: q,
        })
    }
}

const SINGLE_LEVELS: [usize; 3] = [1, 16, 64];
const BATCH_LEVELS: [usize; 2] = [1, 4];
const PROOF_LEVELS: [usize; 2] = [1, 16];
pub(crate) const BATCH_SIZE: u64 = 1000;
pub(crate) const GROW_CLIENTS: usize = 4;
/// Distinct subjects the entries cycle through.
const SUBJECTS: u64 = 100_000;
const NOTE: &str =
    "a typical civic attestation written by mobius bench ledger to measure durable appends";

// The issue's targets.
const T_APPENDS: f64 = 10_000.0;
const T_APPEND_P99: f64 = 0.050;
const T_BATCH: f64 = 100_000.0;
const T_PROOF_P99: f64 = 0.002;
const T_PROOF_SIZE: u64 = 1_000_000;
const T_VERIFY: f64 = 200_000.0;

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
        .prefix("mobius-bench-")
        .tempdir_in(&base)
        .map_err(|e| format!("create a temporary directory in {}: {e}", base.display()))?;
    let machine = sys::machine(tmp.path());
    eprintln!(
        "mobius bench ledger: {} CPUs ({}), data in {} on {}",
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

// ---------------------------------------------------------------------------------------
// Probes: CPU per thread group, disk counters and the sequencer's commit histograms.

#[derive(Debug, Clone, Default)]
struct Hist {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Hist {
    fn parse(text: &str, name: &str) -> Hist {
        let mut h = Hist::default();
        let bucket = format!("{name}_bucket{{le=\"");
        let sum = format!("{name}_sum ");
        let count = format!("{name}_count ");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&bucket) {
                if let Some((le, v)) = rest.split_once("\"} ") {
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::NAN)
                    };
                    h.buckets.push((le, v.trim().parse().unwrap_or(0)));
                }
            } else if let Some(v) = line.strip_prefix(&sum) {
                h.sum = v.trim().parse().unwrap_or(0.0);
            } else if let Some(v) = line.strip_prefix(&count) {
                h.count = v.trim().parse().unwrap_or(0);
            }
        }
        h
    }

    fn minus(&self, before: &Hist) -> Hist {
        Hist {
            buckets: self
                .buckets
                .iter()
                .zip(before.buckets.iter().chain(std::iter::repeat(&(0.0, 0))))
                .map(|((le, b), (_, a))| (*le, b.saturating_sub(*a)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count.saturating_sub(before.count),
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The upper bound of the bucket holding quantile `q` (buckets are cumulative).
    fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        self.buckets
            .iter()
            .find(|(_, cum)| *cum >= rank)
            .map(|(le, _)| *le)
    }
}

#[derive(Debug, Clone, Default)]
struct CommitSnap {
    secs: Hist,
    entries: Hist,
}

fn commit_snapshot(ledger: &Ledger) -> CommitSnap {
    let mut text = String::new();
    ledger.render_metrics(&mut text, "");
    CommitSnap {
        secs: Hist::parse(&text, "mobius_ledger_commit_duration_seconds"),
        entries: Hist::parse(&text, "mobius_ledger_commit_entries"),
    }
}

#[derive(Debug, Clone)]
struct Snap {
    at: Instant,
    cpu: CpuSnap,
    disk: Option<DiskSnap>,
    commits: Option<CommitSnap>,
}

type Probe = Arc<dyn Fn() -> Snap + Send + Sync>;

fn probe(ledger: Option<Arc<Ledger>>, disk: Option<String>) -> Probe {
    Arc::new(move || Snap {
        at: Instant::now(),
        cpu: sys::cpu_snapshot(),
        disk: sys::disk_snapshot(disk.as_deref()),
        commits: ledger.as_deref().map(commit_snapshot),
    })
}

/// What happened on the machine during one measured phase.
#[derive(Debug, Clone)]
struct Diag {
    phase: String,
    secs: f64,
    /// CPU seconds: client, server runtime, sequencer, checkpointer, other threads of this
    /// process.
    cpu: [f64; sys::CPU_GROUPS],
    /// CPU seconds used outside this process.
    elsewhere: Option<f64>,
    /// Write requests/s, MB/s written, flushes/s.
    disk: Option<(f64, f64, Option<f64>)>,
    commits: Option<CommitSnap>,
}

fn diag(phase: impl Into<String>, a: &Snap, b: &Snap) -> Diag {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let (cpu, elsewhere) = sys::cpu_delta(&a.cpu, &b.cpu);
    Diag {
        phase: phase.into(),
        secs,
        cpu,
        elsewhere,
        disk: match (&a.disk, &b.disk) {
            (Some(x), Some(y)) => Some(sys::disk_rates(x, y, secs)),
            _ => None,
        },
        commits: match (&a.commits, &b.commits) {
            (Some(x), Some(y)) => Some(CommitSnap {
                secs: y.secs.minus(&x.secs),
                entries: y.entries.minus(&x.entries),
            }),
            _ => None,
        },
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

struct ResultRow {
    name: String,
    rate: String,
    requests: String,
    p50: String,
    p99: String,
    p999: String,
    max: String,
    errors: String,
    target: String,
    verdict: Option<bool>,
}

struct TargetLine {
    target: &'static str,
    measured: String,
    verdict: Option<bool>,
}

#[derive(Default)]
struct Report {
    rows: Vec<ResultRow>,
    targets: Vec<TargetLine>,
    diags: Vec<Diag>,
    notes: Vec<String>,
    config: Vec<String>,
}

impl Report {
    fn row_from(
        &mut self,
        name: String,
        o: &Outcome,
        rate: String,
        target: &str,
        verdict: Option<bool>,
    ) {
        self.rows.push(ResultRow {
            name: name.clone(),
            rate,
            requests: report::int(o.latencies_ns.len() as u64),
            p50: report::ms(o.pct(0.50)),
            p99: report::ms(o.pct(0.99)),
            p999: report::ms(o.pct(0.999)),
            max: report::ms(o.latencies_ns.last().map(|n| *n as f64 / 1e9)),
            errors: report::int(o.errors),
            target: target.into(),
            verdict,
        });
        if let Some(e) = &o.first_error {
            self.notes.push(format!(
                "{name}: {} failed request(s); first: {e}",
                o.errors
            ));
        }
    }

    fn plain_row(&mut self, name: String, rate: String, target: &str, verdict: Option<bool>) {
        self.rows.push(ResultRow {
            name,
            rate,
            requests: "-".into(),
            p50: "-".into(),
            p99: "-".into(),
            p999: "-".into(),
            max: "-".into(),
            errors: "-".into(),
            target: target.into(),
            verdict,
        });
    }

    fn results_table(&self) -> Table {
        let mut t = Table::new(&[
            ("benchmark", false),
            ("throughput", true),
            ("samples", true),
            ("p50", true),
            ("p99", true),
            ("p99.9", true),
            ("max", true),
            ("errors", true),
            ("target", false),
            ("", false),
        ]);
        for r in &self.rows {
            t.row(vec![
                r.name.clone(),
                r.rate.clone(),
                r.requests.clone(),
                r.p50.clone(),
                r.p99.clone(),
                r.p999.clone(),
                r.max.clone(),
                r.errors.clone(),
                r.target.clone(),
                report::verdict(r.verdict).into(),
            ]);
        }
        t
    }

    fn targets_table(&self) -> Table {
        let mut t = Table::new(&[("target", false), ("measured", false), ("", false)]);
        for l in &self.targets {
            t.row(vec![
                l.target.into(),
                l.measured.clone(),
                report::verdict(l.verdict).into(),
            ]);
        }
        t
    }

    fn commit_table(&self) -> Table {
        let mut t = Table::new(&[
            ("phase", false),
            ("commits/s", true),
            ("entries/commit", true),
            ("commit mean", true),
            ("commit p50 <=", true),
            ("commit p99 <=", true),
            ("commit time / wall", true),
        ]);
        for d in &self.diags {
            let Some(c) = &d.commits else { continue };
            if c.secs.count == 0 {
                continue;
            }
            let busy = c.secs.sum / d.secs.max(1e-9);
            t.row(vec![
                d.phase.clone(),
                report::rate(c.secs.count as f64 / d.secs.max(1e-9)),
                c.entries.mean().map_or("-".into(), |m| format!("{m:.1}")),
                report::ms(c.secs.mean()),
                report::ms(c.secs.quantile_bound(0.5)),
                report::ms(c.secs.quantile_bound(0.99)),
                format!("{:.0}%", busy * 100.0),
            ]);
        }
        t
    }

    fn cpu_table(&self) -> Table {
        let mut t = Table::new(&[
            ("phase", false),
            ("secs", true),
            ("client", true),
            ("server runtime", true),
            ("sequencer", true),
            ("checkpointer", true),
            ("other", true),
            ("total", true),
            ("rest of machine", true),
            ("disk writes/s", true),
            ("MB/s written", true),
            ("flushes/s", true),
        ]);
        for d in &self.diags {
            let pct = |s: f64| format!("{:.0}%", s / d.secs.max(1e-9) * 100.0);
            let total: f64 = d.cpu.iter().sum();
            let (w, mb, fl) = match d.disk {
                Some((w, mb, fl)) => (
                    report::rate(w),
                    format!("{mb:.1}"),
                    fl.map_or("-".into(), report::rate),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            t.row(vec![
                d.phase.clone(),
                format!("{:.1}", d.secs),
                pct(d.cpu[0]),
                pct(d.cpu[1]),
                pct(d.cpu[2]),
                pct(d.cpu[3]),
                pct(d.cpu[4]),
                pct(total),
                d.elsewhere.map_or("-".into(), pct),
                w,
                mb,
                fl,
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
                    "{} s measured per level after {:.1} s warm-up{}; proofs at >= {} entries, {} requests per level; client runtime {} thread(s), server runtime {} worker threads",
                    s.measure.as_secs(),
                    s.warmup.as_secs_f64(),
                    if s.quick { " (--quick)" } else { "" },
                    report::int(s.proof_entries),
                    report::int(s.proof_requests),
                    s.client_threads,
                    m.cpus
                ),
            ),
        ]
    }

    fn render_text(&self, h: &Header) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\nMobius ledger benchmark (mobius bench ledger)\n");
        for (k, v) in self.header_lines(h) {
            let _ = writeln!(out, "{:<11} {v}", format!("{k}:"));
        }
        for c in &self.config {
            let _ = writeln!(out, "{:<11} {c}", "");
        }
        let _ = writeln!(out, "\nRESULTS\n{}", self.results_table().text());
        let _ = writeln!(out, "TARGETS\n{}", self.targets_table().text());
        let _ = writeln!(
            out,
            "GROUP COMMITS (the sequencer's mobius_ledger_commit_* histograms; bucket bounds)\n{}",
            self.commit_table().text()
        );
        let _ = writeln!(
            out,
            "CPU (% of one core, by thread group) AND DISK (/proc/diskstats)\n{}",
            self.cpu_table().text()
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
            "# Ledger benchmark, {}\n",
            h.started_at.get(..10).unwrap_or(&h.started_at)
        );
        let _ = writeln!(
            out,
            "Produced by `mobius bench ledger` (crates/bench/src/ledger.rs). A benchmark, not a test: numbers from one run on one machine.\n"
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
        let _ = writeln!(out, "\n## Results\n\n{}", self.results_table().markdown());
        let _ = writeln!(out, "## Targets\n\n{}", self.targets_table().markdown());
        let _ = writeln!(
            out,
            "## Group commits\n\nFrom the sequencer's `mobius_ledger_commit_duration_seconds` and `mobius_ledger_commit_entries` histograms over each measured window (p50/p99 are bucket upper bounds).\n\n{}",
            self.commit_table().markdown()
        );
        let _ = writeln!(
            out,
            "## CPU and disk\n\nCPU time per thread group as % of one core (`bench-client*` = load generator, `ledger-server*` = axum/tokio workers and blocking read pool, `ledger-sequence*` = the writer thread, `sqlite-checkpoint` = the background WAL checkpointer (when the store has one), other = the rest of this process, e.g. the main thread running verify and the baselines; \"rest of machine\" = busy CPU outside this process from /proc/stat, i.e. other processes and kernel threads such as the filesystem journal); disk counters from /proc/diskstats of the data directory's disk.\n\n{}",
            self.cpu_table().markdown()
        );
        let _ = writeln!(out, "## Notes\n");
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Request bodies.

pub(crate) fn entry_json(n: u64) -> String {
    format!(
        r#"{{"type":"bench.event","subject":"citizen-{:06}","payload":{{"n":{n},"note":"{NOTE}"}}}}"#,
        n % SUBJECTS
    )
}

fn single_maker(next: Arc<AtomicU64>) -> MakeReq {
    Arc::new(move |_, _| Req {
        method: Method::POST,
        path: "/v1/attestations".into(),
        body: Bytes::from(entry_json(next.fetch_add(1, Ordering::Relaxed))),
    })
}

pub(crate) fn batch_maker(next: Arc<AtomicU64>) -> MakeReq {
    Arc::new(move |_, _| {
        let first = next.fetch_add(BATCH_SIZE, Ordering::Relaxed);
        let mut body = String::with_capacity(200 * BATCH_SIZE as usize);
        body.push_str(r#"{"entries":["#);
        for n in first..first + BATCH_SIZE {
            if n > first {
                body.push(',');
            }
            body.push_str(&entry_json(n));
        }
        body.push_str("]}");
        Req {
            method: Method::POST,
            path: "/v1/attestations/batch".into(),
            body: Bytes::from(body),
        }
    })
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn proof_path(seq: u64, salt: u64, size: u64) -> String {
    let index = splitmix64(seq ^ salt.rotate_left(32)) % size;
    format!("/v1/proofs/inclusion?index={index}&tree_size={size}")
}

fn proof_maker(salt: u64, size: u64) -> MakeReq {
    Arc::new(move |_, seq| Req {
        method: Method::GET,
        path: proof_path(seq, salt, size),
        body: Bytes::new(),
    })
}

// ---------------------------------------------------------------------------------------
// The run.

fn bench(s: &Settings, machine: &Machine, dir: &Path) -> Result<Report, String> {
    let mut rep = Report::default();
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
    let verifier = signer.verifier();
    rep.config.push(format!(
        "ledger: SQLite store (WAL, synchronous=FULL), LedgerConfig::default() (block every {} ms or {} entries, group commits of at most {} entries, {} read connections)",
        lcfg.block_interval_ms, lcfg.block_max_entries, lcfg.max_group_entries, lcfg.read_pool_size
    ));
    let ledger =
        Ledger::open(store.clone(), signer, lcfg).map_err(|e| format!("open ledger: {e}"))?;

    let srv_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ledger-server")
        // Keep blocking threads alive so their CPU time stays visible to the probes.
        .thread_keep_alive(Duration::from_secs(3600))
        .build()
        .map_err(|e| format!("start the server runtime: {e}"))?;
    let cli_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(s.client_threads)
        .enable_all()
        .thread_name("bench-client")
        .build()
        .map_err(|e| format!("start the client runtime: {e}"))?;

    let health = Health::new(mobius_ledger::SERVICE);
    health.set_ready(true);
    let app = routes::router(
        routes::LedgerApi {
            ledger: ledger.clone(),
            auth: Authenticator::new(Pool::new(store.clone(), 4)),
            automation: None,
        },
        health,
    );
    let listener = srv_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| format!("listen on 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = srv_rt.spawn(mobius_http::serve(listener, app, async move {
        let _ = stop_rx.await;
    }));
    eprintln!("ledger-api listening on http://{addr}");

    let target = Target { addr, token };
    let disk = machine.disk_name.clone();
    let online = cli_rt.block_on(online_phases(
        s,
        &target,
        &ledger,
        &verifier,
        disk.clone(),
        &mut rep,
    ));
    cli_rt.shutdown_timeout(Duration::from_secs(10));

    // Stop the server (all client connections are closed by now), then the sequencer.
    let _ = stop_tx.send(());
    let served =
        srv_rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), server).await });
    match served {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => rep.notes.push(format!("server error: {e}")),
        Ok(Err(e)) => rep.notes.push(format!("server task failed: {e}")),
        Err(_) => rep
            .notes
            .push("the server did not stop within 30 s of the shutdown signal".into()),
    }
    eprintln!("shutting the ledger down (draining and sealing)");
    let t = Instant::now();
    ledger.shutdown();
    rep.notes.push(format!(
        "Ledger::shutdown took {} (sequencer drained, final block sealed).",
        report::ms(Some(t.elapsed().as_secs_f64()))
    ));
    srv_rt.shutdown_timeout(Duration::from_secs(10));
    online?;

    verify_phase(&store, &verifier, disk.clone(), &mut rep)?;
    drop(ledger);
    let row_bytes = leaf_stats(&store, dir, &mut rep)?;
    baselines(s, dir, row_bytes, disk, &mut rep)?;
    Ok(rep)
}

async fn online_phases(
    s: &Settings,
    target: &Target,
    ledger: &Arc<Ledger>,
    verifier: &NoteVerifier,
    disk: Option<String>,
    rep: &mut Report,
) -> Result<(), String> {
    let p = probe(Some(ledger.clone()), disk);
    let next = Arc::new(AtomicU64::new(0));
    let secs = s.measure.as_secs_f64();

    // 1. Single-entry durable appends.
    let mut at64 = None;
    for clients in SINGLE_LEVELS {
        eprintln!(
            "single appends, {clients} client(s): {:.1} s warm-up + {secs} s",
            s.warmup.as_secs_f64()
        );
        let spec = RunSpec {
            clients,
            make: single_maker(next.clone()),
            expect: StatusCode::CREATED,
        };
        let pc = p.clone();
        let (o, a, b) = load::run_timed(target, &spec, s.warmup, s.measure, move || pc()).await?;
        let name = format!("single append, {clients} client{}", plural(clients));
        let (tgt, verdict) = if clients == 64 {
            let ok = o.rate() >= T_APPENDS && o.pct(0.99).is_some_and(|p| p < T_APPEND_P99);
            ("≥ 10,000/s, p99 < 50 ms", Some(ok))
        } else {
            ("", None)
        };
        if clients == 64 {
            at64 = Some((o.rate(), o.pct(0.99), verdict));
        }
        rep.row_from(
            name.clone(),
            &o,
            format!("{} appends/s", report::rate(o.rate())),
            tgt,
            verdict,
        );
        rep.diags.push(diag(name, &a, &b));
    }
    if let Some((r, p99, v)) = at64 {
        rep.targets.push(TargetLine {
            target: "≥ 10,000 durable single-entry appends/s at 64 clients, p99 < 50 ms",
            measured: format!("{} appends/s, p99 {}", report::rate(r), report::ms(p99)),
            verdict: v,
        });
    }

    // 2. Batch appends.
    let mut best: Option<(f64, usize)> = None;
    for clients in BATCH_LEVELS {
        eprintln!(
            "batch appends ({BATCH_SIZE} entries/request), {clients} client(s): {:.1} s warm-up + {secs} s",
            s.warmup.as_secs_f64()
        );
        let spec = RunSpec {
            clients,
            make: batch_maker(next.clone()),
            expect: StatusCode::CREATED,
        };
        let pc = p.clone();
        let (o, a, b) = load::run_timed(target, &spec, s.warmup, s.measure, move || pc()).await?;
        let eps = o.rate() * BATCH_SIZE as f64;
        if best.is_none_or(|(r, _)| eps > r) {
            best = Some((eps, clients));
        }
        let name = format!(
            "batch append ×{BATCH_SIZE}, {clients} client{}",
            plural(clients)
        );
        rep.row_from(
            name.clone(),
            &o,
            format!("{} entries/s", report::rate(eps)),
            "≥ 100,000 entries/s",
            Some(eps >= T_BATCH),
        );
        rep.diags.push(diag(name, &a, &b));
    }

    // 3. Grow to the proof size, wait for a seal, then inclusion proofs.
    let have = ledger.shared.tree_size.load(Ordering::Acquire);
    if have < s.proof_entries {
        let requests = (s.proof_entries - have).div_ceil(BATCH_SIZE);
        eprintln!(
            "growing the ledger from {} to {} entries ({requests} batch requests, {GROW_CLIENTS} clients)",
            report::int(have),
            report::int(have + requests * BATCH_SIZE)
        );
        let spec = RunSpec {
            clients: GROW_CLIENTS,
            make: batch_maker(next.clone()),
            expect: StatusCode::CREATED,
        };
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let l = ledger.clone();
        let progress = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => eprintln!(
                        "  tree size {}",
                        report::int(l.shared.tree_size.load(Ordering::Acquire))
                    ),
                }
            }
        });
        let grown = load::run_counted(target, &spec, requests, || p()).await;
        let _ = stop_tx.send(());
        let _ = progress.await;
        let (o, a, b) = grown?;
        let eps = o.rate() * BATCH_SIZE as f64;
        if best.is_none_or(|(r, _)| eps > r) {
            best = Some((eps, GROW_CLIENTS));
        }
        let after = ledger.shared.tree_size.load(Ordering::Acquire);
        let name = format!(
            "grow {} → {} (batches, {GROW_CLIENTS} clients)",
            short(have),
            short(after)
        );
        rep.row_from(
            name.clone(),
            &o,
            format!("{} entries/s", report::rate(eps)),
            "≥ 100,000 entries/s",
            Some(eps >= T_BATCH),
        );
        rep.notes.push(format!(
            "Growing the ledger from {} to {} entries took {:.1} s.",
            report::int(have),
            report::int(after),
            o.window.as_secs_f64()
        ));
        rep.diags.push(diag(name, &a, &b));
    } else {
        rep.notes.push(format!(
            "The ledger already held {} entries (≥ --proof-entries) after the append phases, so no growth phase ran.",
            report::int(have)
        ));
    }
    if let Some((r, c)) = best {
        rep.targets.push(TargetLine {
            target: "≥ 100,000 entries/s batched",
            measured: format!(
                "best {} entries/s ({c} client{}, {BATCH_SIZE} entries/request)",
                report::rate(r),
                plural(c)
            ),
            verdict: Some(r >= T_BATCH),
        });
    }

    let waited = Instant::now();
    let size = loop {
        let tree = ledger.shared.tree_size.load(Ordering::Acquire);
        let sealed = ledger.shared.sealed_size.load(Ordering::Acquire);
        if tree > 0 && sealed == tree {
            break tree;
        }
        if waited.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "no block sealed the whole tree within 60 s (tree {tree}, sealed {sealed})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    rep.notes.push(format!(
        "A block sealing the whole tree ({} entries) was in place {} after the last append.",
        report::int(size),
        report::ms(Some(waited.elapsed().as_secs_f64()))
    ));
    check_proofs(target, verifier, size, rep).await?;

    let mut proof_p99s = Vec::new();
    for (i, clients) in PROOF_LEVELS.into_iter().enumerate() {
        eprintln!(
            "inclusion proofs at tree size {}, {clients} client(s): {} requests",
            report::int(size),
            report::int(s.proof_requests)
        );
        let warm = RunSpec {
            clients,
            make: proof_maker(1000 + i as u64, size),
            expect: StatusCode::OK,
        };
        load::run_counted(
            target,
            &warm,
            (s.proof_requests / 10).clamp(100, 2000),
            || (),
        )
        .await?;
        let spec = RunSpec {
            clients,
            make: proof_maker(i as u64, size),
            expect: StatusCode::OK,
        };
        let (o, a, b) = load::run_counted(target, &spec, s.proof_requests, || p()).await?;
        let p99 = o.pct(0.99);
        proof_p99s.push((clients, p99));
        let name = format!(
            "inclusion proof @ {}, {clients} client{}",
            short(size),
            plural(clients)
        );
        rep.row_from(
            name.clone(),
            &o,
            format!("{} req/s", report::rate(o.rate())),
            "p99 < 2 ms at 1M",
            Some(p99.is_some_and(|p| p < T_PROOF_P99)),
        );
        rep.diags.push(diag(name, &a, &b));
    }
    let ok = proof_p99s
        .iter()
        .all(|(_, p)| p.is_some_and(|p| p < T_PROOF_P99));
    let mut measured = proof_p99s
        .iter()
        .map(|(c, p)| format!("p99 {} ({c} client{})", report::ms(*p), plural(*c)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(measured, " at {} entries", report::int(size));
    if size < T_PROOF_SIZE {
        measured.push_str(" (smaller than 1M: indicative only)");
    }
    rep.targets.push(TargetLine {
        target: "inclusion proof p99 < 2 ms at 1M entries",
        measured,
        verdict: Some(ok),
    });
    Ok(())
}

/// Fetches the signed checkpoint and a sample of proofs and checks them, so the latency
/// figures are known to be for correct answers.
async fn check_proofs(
    target: &Target,
    verifier: &NoteVerifier,
    size: u64,
    rep: &mut Report,
) -> Result<(), String> {
    const SAMPLES: u64 = 64;
    let mut c = load::Client::connect(target).await?;
    let get = |path: String| Req {
        method: Method::GET,
        path,
        body: Bytes::new(),
    };
    let (status, body) = c.send(&get("/v1/checkpoint".into())).await?;
    let checkpoint = if status == StatusCode::OK {
        verifier
            .verify_checkpoint(&String::from_utf8_lossy(&body))
            .map_err(|e| e.to_string())
    } else {
        Err(format!("HTTP {status}"))
    };
    let mut good = 0;
    let mut first_bad = None;
    for seq in 0..SAMPLES {
        let (status, body) = c.send(&get(proof_path(seq, 999, size))).await?;
        let r = (|| -> Result<(), String> {
            if status != StatusCode::OK {
                return Err(format!("HTTP {status}"));
            }
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let hash = |x: &serde_json::Value| -> Result<Hash, String> {
                hex::decode(x.as_str().unwrap_or(""))
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| "bad hash".to_string())
            };
            let index = v["index"].as_u64().ok_or("no index")?;
            let leaf = hash(&v["leaf_hash"])?;
            let root = hash(&v["root_hash"])?;
            let proof = v["proof"]
                .as_array()
                .ok_or("no proof")?
                .iter()
                .map(hash)
                .collect::<Result<Vec<_>, _>>()?;
            merkle::verify_inclusion(index, size, &leaf, &proof, &root)
                .map_err(|e| format!("{e:?}"))?;
            match &checkpoint {
                Ok(cp) if cp.size == size && cp.root != root => {
                    Err("root differs from the signed checkpoint".into())
                }
                _ => Ok(()),
            }
        })();
        match r {
            Ok(()) => good += 1,
            Err(e) => {
                first_bad.get_or_insert(e);
            }
        }
    }
    c.close().await;
    let cp = match &checkpoint {
        Ok(cp) if cp.size == size => "the signed checkpoint's root".to_string(),
        Ok(cp) => format!("(checkpoint is for size {}, not compared)", cp.size),
        Err(e) => format!("(checkpoint not verified: {e})"),
    };
    rep.notes.push(match first_bad {
        None => format!(
            "{good}/{SAMPLES} sampled inclusion proofs verified against {cp} before timing."
        ),
        Some(e) => format!(
            "WARNING: only {good}/{SAMPLES} sampled inclusion proofs verified; first failure: {e}"
        ),
    });
    Ok(())
}

fn verify_phase(
    store: &StoreConfig,
    verifier: &NoteVerifier,
    disk: Option<String>,
    rep: &mut Report,
) -> Result<(), String> {
    eprintln!("offline verify (verify::verify_store) of the whole store");
    let p = probe(None, disk);
    let mut conn = store.connect().map_err(|e| e.to_string())?;
    let a = p();
    let mut last = Instant::now();
    let r = mobius_ledger::verify::verify_store(&mut conn, verifier, |done, total| {
        if last.elapsed() >= Duration::from_secs(5) {
            eprintln!("  verified {} of {}", report::int(done), report::int(total));
            last = Instant::now();
        }
    });
    let b = p();
    match r {
        Ok(v) => {
            let eps = v.entries as f64 / v.elapsed.as_secs_f64().max(1e-9);
            let name = format!("offline verify, {} entries", short(v.entries));
            rep.plain_row(
                name.clone(),
                format!("{} entries/s", report::rate(eps)),
                "≥ 200,000 entries/s",
                Some(eps >= T_VERIFY),
            );
            rep.targets.push(TargetLine {
                target: "offline verify ≥ 200,000 entries/s",
                measured: format!(
                    "{} entries/s ({} entries, {} blocks in {:.2} s)",
                    report::rate(eps),
                    report::int(v.entries),
                    report::int(v.blocks),
                    v.elapsed.as_secs_f64()
                ),
                verdict: Some(eps >= T_VERIFY),
            });
            rep.diags.push(diag(name, &a, &b));
        }
        Err(f) => {
            rep.plain_row(
                "offline verify".into(),
                "FAILED".into(),
                "≥ 200,000 entries/s",
                Some(false),
            );
            rep.notes.push(format!("Offline verification FAILED: {f}"));
            rep.targets.push(TargetLine {
                target: "offline verify ≥ 200,000 entries/s",
                measured: format!("verification failed: {f}"),
                verdict: Some(false),
            });
        }
    }
    Ok(())
}

/// Notes the stored entry sizes and the store's size on disk; returns the average leaf size
/// (the row size used by the SQLite baselines).
fn leaf_stats(store: &StoreConfig, dir: &Path, rep: &mut Report) -> Result<usize, String> {
    let mut conn = store.connect().map_err(|e| e.to_string())?;
    let row = conn
        .query_opt(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(AVG(LENGTH(leaf_data)), 0) AS BIGINT) FROM ledger_entries",
            &[],
        )
        .map_err(|e| e.to_string())?;
    let (count, avg) = match row {
        Some(r) => (
            r.i64(0).map_err(|e| e.to_string())?,
            r.i64(1).map_err(|e| e.to_string())?,
        ),
        None => (0, 0),
    };
    drop(conn);
    let bytes: u64 = ["mobius.db", "mobius.db-wal", "mobius.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    rep.notes.push(format!(
        "Entries carry no ref (no idempotency lookups) and cycle through {} subjects; request bodies are ~{} bytes per entry, stored leaf data averages {avg} bytes. The store holds {} entries in {:.0} MB ({:.0} bytes/entry with indexes and tree hashes).",
        report::int(SUBJECTS),
        entry_json(123_456).len(),
        report::int(count as u64),
        bytes as f64 / 1e6,
        bytes as f64 / (count.max(1) as f64)
    ));
    Ok((avg as usize).clamp(16, 65_536))
}

fn baselines(
    s: &Settings,
    dir: &Path,
    row_bytes: usize,
    disk: Option<String>,
    rep: &mut Report,
) -> Result<(), String> {
    let p = probe(None, disk);
    let path = dir.join("baseline.db");
    let sql = |e: rusqlite::Error| format!("baseline SQLite: {e}");
    let c = rusqlite::Connection::open(&path).map_err(sql)?;
    c.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    c.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
    c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        .map_err(sql)?;
    let mut data: Vec<u8> = (0..row_bytes as u64)
        .map(|i| (splitmix64(i) & 0xff) as u8)
        .collect();
    let mut ins = c.prepare("INSERT INTO t (data) VALUES (?1)").map_err(sql)?;
    let mut row_no = 0u64;
    let mut stamp = |data: &mut Vec<u8>| {
        row_no += 1;
        let n = row_no.to_le_bytes();
        let k = n.len().min(data.len());
        data[..k].copy_from_slice(&n[..k]);
    };

    // One transaction (one WAL fsync) per row.
    eprintln!(
        "baseline: raw SQLite, one commit per row ({} s)",
        s.sqlite_secs
    );
    let mut lat = Vec::new();
    let a = p();
    let end = Instant::now() + Duration::from_secs_f64(s.sqlite_secs);
    while Instant::now() < end {
        stamp(&mut data);
        let t0 = Instant::now();
        c.execute_batch("BEGIN").map_err(sql)?;
        ins.execute([&data]).map_err(sql)?;
        c.execute_batch("COMMIT").map_err(sql)?;
        lat.push(t0.elapsed().as_nanos() as u64);
    }
    let b = p();
    let o = Outcome {
        ok: lat.len() as u64,
        window: b.at.duration_since(a.at),
        latencies_ns: sorted(lat),
        ..Outcome::default()
    };
    let name = format!("SQLite: 1 row ({row_bytes} B) per commit");
    rep.row_from(
        name.clone(),
        &o,
        format!("{} rows/s", report::rate(o.rate())),
        "(baseline)",
        None,
    );
    rep.diags.push(diag(name, &a, &b));

    // One transaction per 1000 rows.
    eprintln!(
        "baseline: raw SQLite, 1000 rows per commit ({} s)",
        s.sqlite_secs
    );
    let mut lat = Vec::new();
    let a = p();
    let end = Instant::now() + Duration::from_secs_f64(s.sqlite_secs);
    while Instant::now() < end {
        let t0 = Instant::now();
        c.execute_batch("BEGIN").map_err(sql)?;
        for _ in 0..BATCH_SIZE {
            stamp(&mut data);
            ins.execute([&data]).map_err(sql)?;
        }
        c.execute_batch("COMMIT").map_err(sql)?;
        lat.push(t0.elapsed().as_nanos() as u64);
    }
    let b = p();
    let o = Outcome {
        ok: lat.len() as u64,
        window: b.at.duration_since(a.at),
        latencies_ns: sorted(lat),
        ..Outcome::default()
    };
    let name = "SQLite: 1000 rows per commit".to_string();
    rep.row_from(
        name.clone(),
        &o,
        format!("{} rows/s", report::rate(o.rate() * BATCH_SIZE as f64)),
        "(baseline)",
        None,
    );
    rep.diags.push(diag(name, &a, &b));
    drop(ins);
    drop(c);

    // The floor under every durable commit: write 4 KiB and fdatasync, overwriting a
    // preallocated file (no size change, as in a reused WAL) and appending to a growing one
    // (the size change must be made durable too).
    for overwrite in [true, false] {
        let name = if overwrite {
            "fdatasync after 4 KiB overwrite"
        } else {
            "fdatasync after 4 KiB append"
        };
        eprintln!("baseline: {name} ({} s)", s.fsync_secs);
        let o = fsync_loop(
            &dir.join(if overwrite {
                "fsync-overwrite.bin"
            } else {
                "fsync-append.bin"
            }),
            overwrite,
            s.fsync_secs,
            &p,
            |a, b| rep.diags.push(diag(name, a, b)),
        )?;
        rep.row_from(
            name.into(),
            &o,
            format!("{} fsyncs/s", report::rate(o.rate())),
            "(baseline)",
            None,
        );
    }
    Ok(())
}

fn fsync_loop(
    path: &Path,
    overwrite: bool,
    secs: f64,
    p: &Probe,
    mut on_diag: impl FnMut(&Snap, &Snap),
) -> Result<Outcome, String> {
    use std::os::unix::fs::FileExt;
    const BLOCK: usize = 4096;
    const SLOTS: u64 = 4096; // a 16 MiB preallocated file
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    if overwrite {
        let zeros = vec![0u8; BLOCK * 256];
        for _ in 0..(SLOTS as usize * BLOCK / zeros.len()) {
            f.write_all(&zeros).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
    }
    let block = vec![0x5au8; BLOCK];
    let mut lat = Vec::new();
    let a = p();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut i = 0u64;
    while Instant::now() < end {
        let t0 = Instant::now();
        if overwrite {
            f.write_all_at(&block, (i % SLOTS) * BLOCK as u64)
                .map_err(io)?;
        } else {
            f.write_all(&block).map_err(io)?;
        }
        f.sync_data().map_err(io)?;
        lat.push(t0.elapsed().as_nanos() as u64);
        i += 1;
    }
    let b = p();
    on_diag(&a, &b);
    Ok(Outcome {
        ok: lat.len() as u64,
        window: b.at.duration_since(a.at),
        latencies_ns: sorted(lat),
        ..Outcome::default()
    })
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The source revision of the working directory, best effort (`git` may be absent).
pub(crate) fn git_revision() -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = git(&["rev-parse", "--short", "HEAD"]).filter(|r| !r.is_empty())?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("git {rev} with uncommitted changes")
    } else {
        format!("git {rev}")
    })
}

pub(crate) fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1000000` → `1M`, `20000` → `20k` (for row names).
pub(crate) fn short(n: u64) -> String {
    if n >= 1_000_000 {
        let m = n as f64 / 1e6;
        if (m - m.round()).abs() < 0.005 {
            format!("{}M", m.round())
        } else {
            format!("{m:.2}M")
        }
    } else if n >= 1_000 {
        format!("{}k", (n as f64 / 1e3).round())
    } else {
        n.to_string()
    }
}
