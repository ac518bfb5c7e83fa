//! End-to-end test harness: runs the real `mobius` binary on a scratch data directory (and,
//! for the PostgreSQL backend, a scratch schema), talks to it over HTTP, and cleans up after
//! itself. Nothing here touches the seed ports: the ledger listens on a free port
//! (`MOBIUS_LEDGER_PORT=0`) and the harness reads the real URL from `endpoints.json`.
//!
//! Process hygiene: every child is stopped when its [`Stack`] is dropped (SIGTERM, then
//! SIGKILL if it does not exit), and is started with `PR_SET_PDEATHSIG` so it dies even if the
//! test binary itself is killed.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mobius");
/// How long a stack may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stack may take to stop after SIGTERM before it is SIGKILLed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
pub const DEFAULT_PG_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// Runs a `fn(Backend)` test case once per backend: `both_backends!(case);` expands to two
/// `#[test]`s named `sqlite` and `postgres` in a module named after the case.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn sqlite() {
                    super::$case($crate::common::Backend::Sqlite);
                }
                #[test]
                fn postgres() {
                    super::$case($crate::common::Backend::Postgres);
                }
            }
        )*
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use (`MOBIUS_TEST_PG_URL`).
pub fn pg_base_url() -> String {
    std::env::var("MOBIUS_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

/// A connection to the test PostgreSQL server. Fails the test (never skips it) when the
/// server cannot be reached.
pub fn pg_client() -> postgres::Client {
    let url = pg_base_url();
    let mut cfg: postgres::Config = url
        .parse()
        .unwrap_or_else(|e| panic!("MOBIUS_TEST_PG_URL={url:?} is not a PostgreSQL URL: {e}"));
    cfg.connect_timeout(Duration::from_secs(5));
    cfg.connect(postgres::NoTls).unwrap_or_else(|e| {
        let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
        panic!(
            "PostgreSQL is not reachable at {url} ({e}{cause}).\n\
             The PostgreSQL variants of the end-to-end tests need a server: start one, or set \
             MOBIUS_TEST_PG_URL=postgres://user@host:port/db. They fail rather than skip, so a \
             backend is never silently untested."
        )
    })
}

/// A random lowercase hex string (no extra dependency: std's randomly keyed SipHash).
pub fn random_hex() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

/// Where a stack keeps its data: the directory (always; it holds keys, the operator token,
/// endpoints.json, and for SQLite the store) and, for PostgreSQL, a private schema.
/// Dropping it drops the schema.
pub struct StackData {
    root: tempfile::TempDir,
    pub backend: Backend,
    /// PostgreSQL only: the schema all tables live in.
    pub schema: Option<String>,
    /// PostgreSQL only: the store URL with `schema=` (what `--store` gets).
    pub store_url: Option<String>,
}

impl StackData {
    pub fn new(backend: Backend) -> StackData {
        let root = tempfile::Builder::new()
            .prefix("mobius-e2e-")
            .tempdir()
            .expect("create a temporary directory");
        std::fs::create_dir_all(root.path().join("logs")).expect("create log directory");
        let (schema, store_url) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                // Fail loudly now if PostgreSQL is not there.
                drop(pg_client());
                let schema = format!("t_{}", random_hex());
                let base = pg_base_url();
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}schema={schema}");
                (Some(schema), Some(url))
            }
        };
        StackData {
            root,
            backend,
            schema,
            store_url,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.path().join("logs")
    }

    /// A scratch directory that outlives nothing but this data (for state files etc.).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.root.path().join("scratch");
        std::fs::create_dir_all(&p).expect("create scratch directory");
        p.join(name)
    }

    /// The global CLI arguments selecting this data (`--data DIR [--store URL]`).
    pub fn global_args(&self) -> Vec<String> {
        let mut a = vec!["--data".to_string(), self.dir().display().to_string()];
        if let Some(u) = &self.store_url {
            a.push("--store".into());
            a.push(u.clone());
        }
        a
    }

    /// Runs `mobius <global args> <args>` to completion and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = base_command(self.root.path());
        cmd.args(self.global_args()).args(args);
        run_bounded(cmd, Duration::from_secs(120))
    }

    /// Like [`StackData::cli`] with a custom time limit (the command is killed after it).
    pub fn cli_bounded(&self, args: &[&str], limit: Duration) -> Output {
        let mut cmd = base_command(self.root.path());
        cmd.args(self.global_args()).args(args);
        run_bounded(cmd, limit)
    }

    /// Creates a bearer token with the CLI and returns its secret.
    pub fn create_token(&self, role: &str, subject: &str) -> String {
        let out = self.cli(&[
            "token",
            "create",
            "--role",
            role,
            "--subject",
            subject,
            "--json",
        ]);
        assert!(
            out.status.success(),
            "mobius token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("token create --json output");
        v["token"].as_str().expect("token field").to_string()
    }

    /// A direct SQL connection to this store, for tamper tests.
    pub fn sql(&self) -> Sql {
        match self.backend {
            Backend::Sqlite => Sql::Sqlite(
                rusqlite::Connection::open(self.dir().join("mobius.db")).expect("open mobius.db"),
            ),
            Backend::Postgres => {
                let mut c = pg_client();
                let schema = self.schema.as_deref().unwrap_or_default();
                c.batch_execute(&format!("SET search_path TO \"{schema}\""))
                    .expect("set search_path");
                Sql::Postgres(c)
            }
        }
    }
}

impl Drop for StackData {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            // The schema name is ours (t_ + hex), so quoting is safe.
            let r =
                pg_client().batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            if let Err(e) = r {
                eprintln!("warning: could not drop test schema {schema}: {e}");
            }
        }
    }
}

/// Direct store access for tamper tests (the same two tables on both backends).
pub enum Sql {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Sql {
    pub fn leaf_data(&mut self, index: u64) -> Vec<u8> {
        match self {
            Sql::Sqlite(c) => c
                .query_row(
                    "SELECT leaf_data FROM ledger_entries WHERE idx = ?1",
                    [index as i64],
                    |r| r.get(0),
                )
                .expect("read leaf_data"),
            Sql::Postgres(c) => c
                .query_one(
                    "SELECT leaf_data FROM ledger_entries WHERE idx = $1",
                    &[&(index as i64)],
                )
                .expect("read leaf_data")
                .get(0),
        }
    }

    /// Overwrites `leaf_data` (and, if given, `id`) of the entry at `index`.
    pub fn rewrite_entry(&mut self, index: u64, leaf_data: &[u8], id: Option<&[u8]>) {
        let n = match (self, id) {
            (Sql::Sqlite(c), None) => c
                .execute(
                    "UPDATE ledger_entries SET leaf_data = ?1 WHERE idx = ?2",
                    rusqlite::params![leaf_data, index as i64],
                )
                .expect("update leaf_data") as u64,
            (Sql::Sqlite(c), Some(id)) => c
                .execute(
                    "UPDATE ledger_entries SET leaf_data = ?1, id = ?2 WHERE idx = ?3",
                    rusqlite::params![leaf_data, id, index as i64],
                )
                .expect("update leaf_data, id") as u64,
            (Sql::Postgres(c), None) => c
                .execute(
                    "UPDATE ledger_entries SET leaf_data = $1 WHERE idx = $2",
                    &[&leaf_data, &(index as i64)],
                )
                .expect("update leaf_data"),
            (Sql::Postgres(c), Some(id)) => c
                .execute(
                    "UPDATE ledger_entries SET leaf_data = $1, id = $2 WHERE idx = $3",
                    &[&leaf_data, &id, &(index as i64)],
                )
                .expect("update leaf_data, id"),
        };
        assert_eq!(n, 1, "exactly one row must be rewritten");
    }
}

fn base_command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    // Only what the test sets: no stray MOBIUS_* from the environment, no ./mobius.toml.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MOBIUS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.current_dir(cwd);
    cmd.stdin(Stdio::null());
    // Die with the test (the thread that spawned us), never outlive it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Runs a command with captured output, killing it if it exceeds `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn mobius");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for mobius") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mobius CLI did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // The pid is our own child that has not been reaped yet, so it cannot have been reused.
    let pid = child.id() as libc::pid_t;
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A running `mobius up` on some [`StackData`].
pub struct Stack {
    pub data: StackData,
    child: Option<Child>,
    /// Base URL of ledger-api, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The operator bearer token.
    pub token: String,
    pub http: Http,
    starts: u32,
    /// Arguments after `up` (default: `--block-interval-ms 100`, for fast sealing).
    up_args: Vec<String>,
}

impl Stack {
    /// A fresh stack on a fresh data directory (and schema).
    pub fn start(backend: Backend) -> Stack {
        Stack::start_on(StackData::new(backend))
    }

    /// Starts `mobius up` on existing data.
    pub fn start_on(data: StackData) -> Stack {
        Stack::start_on_with(data, &["--block-interval-ms", "100"])
    }

    /// A fresh stack whose `up` gets exactly `up_args` (instead of the fast-sealing default).
    pub fn start_with(backend: Backend, up_args: &[&str]) -> Stack {
        Stack::start_on_with(StackData::new(backend), up_args)
    }

    pub fn start_on_with(data: StackData, up_args: &[&str]) -> Stack {
        let mut s = Stack {
            data,
            child: None,
            url: String::new(),
            token: String::new(),
            http: Http::new(""),
            starts: 0,
            up_args: up_args.iter().map(|a| a.to_string()).collect(),
        };
        s.spawn();
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.dir()
    }

    pub fn backend(&self) -> Backend {
        self.data.backend
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "stack is already running");
        let dir = self.data.dir();
        // A SIGKILLed predecessor leaves a stale endpoints.json behind.
        let endpoints = dir.join("endpoints.json");
        let _ = std::fs::remove_file(&endpoints);
        self.starts += 1;
        let logs = self.data.logs_dir();
        let stdout = std::fs::File::create(logs.join(format!("stdout.{}.log", self.starts)))
            .expect("create stdout log");
        let stderr = std::fs::File::create(logs.join(format!("stderr.{}.log", self.starts)))
            .expect("create stderr log");
        let mut cmd = base_command(self.data.root.path());
        cmd.args(self.data.global_args())
            .arg("up")
            .args(&self.up_args)
            .env("MOBIUS_LEDGER_PORT", "0")
            .env("MOBIUS_PORTAL_PORT", "0")
            .env("MOBIUS_SHIELD_PORT", "0")
            // Rate limits would throttle the suite's bulk traffic from one IP and token;
            // tests that configure their own (`--config`) keep them on.
            .env(
                "MOBIUS_RATE_LIMITS",
                if self.up_args.iter().any(|a| a == "--config") {
                    "on"
                } else {
                    "off"
                },
            )
            .env("RUST_BACKTRACE", "1")
            .stdout(stdout)
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn mobius up");
        let deadline = Instant::now() + START_TIMEOUT;
        let url = loop {
            if let Some(status) = child.try_wait().expect("wait for mobius up") {
                panic!("mobius up exited early with {status}\n{}", self.log_tail());
            }
            if let Ok(text) = std::fs::read_to_string(&endpoints)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v["pid"].as_u64() == Some(u64::from(child.id()))
                && let Some(u) = v["services"]["ledger-api"].as_str()
            {
                break u.to_string();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mobius up did not write endpoints.json within {START_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        self.child = Some(child); // from here on, Drop stops it
        for seed in 4001..=4005 {
            assert!(
                !url.ends_with(&format!(":{seed}")),
                "the test stack must never use a seed port: {url}"
            );
        }
        self.url = url.clone();
        self.token = std::fs::read_to_string(dir.join("operator.token"))
            .expect("read operator.token")
            .trim()
            .to_string();
        self.http = Http::new(&url);
    }

    /// The last lines of this stack's logs, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        for kind in ["stdout", "stderr"] {
            let p = self
                .data
                .logs_dir()
                .join(format!("{kind}.{}.log", self.starts));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            s.push_str(&format!("--- {kind} (last 30 lines) ---\n{tail}\n"));
        }
        s
    }

    /// All stdout log lines of every start of this stack.
    pub fn stdout_logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.data.logs_dir().join(format!("stdout.{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// Graceful stop: SIGTERM, wait (SIGKILL after [`STOP_TIMEOUT`]). Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("stack is not running");
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(s) = child.try_wait().expect("wait for mobius") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let s = child.wait().expect("wait for mobius");
                panic!(
                    "mobius did not stop within {STOP_TIMEOUT:?} of SIGTERM (killed: {s})\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Graceful stop that must exit 0 (SPEC §12: clean shutdown on SIGTERM).
    pub fn stop_clean(&mut self) {
        let s = self.stop();
        assert!(
            s.success(),
            "mobius exited with {s} on SIGTERM (a clean shutdown exits 0)\n{}",
            self.log_tail()
        );
    }

    /// Crash: SIGKILL and reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("stack is not running");
        signal(&child, libc::SIGKILL);
        let s = child.wait().expect("wait for mobius");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&s),
            Some(libc::SIGKILL),
            "mobius should have died of SIGKILL: {s}"
        );
    }

    /// Starts again on the same data (after [`Stack::stop`] or [`Stack::kill9`]).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            // Exit status is checked by the dedicated clean-shutdown test, not here.
            self.stop();
        }
        self.spawn();
    }

    /// Stops the stack and hands back its data (for offline checks, tamper edits, restarts).
    pub fn into_data(mut self) -> StackData {
        if self.child.is_some() {
            self.stop();
        }
        // Move the data out without running Stack's Drop on a running child.

        std::mem::replace(&mut self.data, StackData::placeholder())
    }

    // ---- HTTP conveniences -------------------------------------------------------------

    pub fn get(&self, path: &str) -> Resp {
        self.http.get(path)
    }

    /// GET that must answer 200 with JSON.
    pub fn get_ok(&self, path: &str) -> Value {
        let r = self.http.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    /// POST a JSON value with the operator token.
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.http
            .post_json(path, &body.to_string(), Some(&self.token))
    }

    pub fn stats(&self) -> Value {
        self.get_ok("/v1/ledger/stats")
    }

    pub fn tree_size(&self) -> u64 {
        self.stats()["tree_size"].as_u64().expect("stats.tree_size")
    }

    pub fn verifier_key(&self) -> String {
        self.get_ok("/v1/ledger/key")["verifier_key"]
            .as_str()
            .expect("verifier_key")
            .to_string()
    }

    /// Waits (bounded) until a sealed block covers at least `size` entries; returns it.
    pub fn wait_sealed(&self, size: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.get("/v1/blocks/latest");
            if r.status == 200 {
                let b = r.json();
                if b["tree_size"].as_u64().unwrap_or(0) >= size {
                    return b;
                }
            } else {
                assert_eq!(r.status, 404, "GET /v1/blocks/latest: {}", r.body);
            }
            assert!(
                Instant::now() < deadline,
                "no block sealed {size} entries within 30 s (block interval is 100 ms)\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every block, following cursors.
    pub fn all_blocks(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = "/v1/blocks?limit=1000".to_string();
        loop {
            let v = self.get_ok(&path);
            out.extend(v["items"].as_array().expect("items").iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/blocks?limit=1000&cursor={c}"),
                None => return out,
            }
        }
    }

    /// Every entry (optionally filtered: `query` like `subject=alice&type=a.b`), following
    /// cursors with pages of `limit`.
    pub fn list_all(&self, query: &str, limit: usize) -> Vec<Value> {
        let sep = if query.is_empty() { "" } else { "&" };
        let mut out = Vec::new();
        let mut path = format!("/v1/attestations?limit={limit}{sep}{query}");
        let mut pages = 0;
        loop {
            let v = self.get_ok(&path);
            let items = v["items"].as_array().expect("items");
            assert!(items.len() <= limit, "page larger than limit {limit}");
            out.extend(items.iter().cloned());
            pages += 1;
            assert!(pages < 100_000, "pagination does not terminate");
            match v["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(items.len(), limit, "a non-final page must be full");
                    path = format!("/v1/attestations?limit={limit}{sep}{query}&cursor={c}");
                }
                None => return out,
            }
        }
    }
}

impl StackData {
    fn placeholder() -> StackData {
        StackData {
            root: tempfile::Builder::new()
                .prefix("mobius-e2e-moved-")
                .tempdir()
                .expect("tempdir"),
            backend: Backend::Sqlite,
            schema: None,
            store_url: None,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }
}

// ---- HTTP ---------------------------------------------------------------------------------

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {:?}", self.body))
    }

    /// Asserts a SPEC §2 error: this status, this code, a non-empty message, object details.
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got: {}",
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "error bodies are JSON"
        );
        let v = self.json();
        let e = &v["error"];
        assert_eq!(e["code"], json!(code), "error code in {}", self.body);
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error message in {}",
            self.body
        );
        assert!(e["details"].is_object(), "error details in {}", self.body);
        assert_eq!(
            v.as_object().map(|o| o.len()),
            Some(1),
            "error body has only `error`: {}",
            self.body
        );
        e.clone()
    }
}

/// A small HTTP client over ureq that never turns statuses into errors and checks that every
/// response carries `x-request-id`.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    pub base: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .proxy(None)
            // No connection reuse: the server closes a connection when it answers before reading
            // a request body (401/413/415), and a pooled dead connection makes the next request
            // fail with "peer disconnected" at random.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .into();
        Http {
            agent,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn finish(&self, what: &str, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let r = self.try_finish(r).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            r.header("x-request-id").is_some_and(|v| !v.is_empty()),
            "{what}: response without x-request-id (status {}): {}",
            r.status,
            r.body
        );
        r
    }

    fn try_finish(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Resp, ureq::Error> {
        let mut r = r?;
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = r
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub fn get(&self, path: &str) -> Resp {
        let url = format!("{}{path}", self.base);
        self.finish(&format!("GET {path}"), self.agent.get(&url).call())
    }

    /// GET with extra request headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(&format!("GET {path}"), req.call())
    }

    /// Any method, no body (405 checks and the like).
    pub fn call(&self, method: &str, path: &str) -> Resp {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .body(())
            .expect("build request");
        self.finish(&format!("{method} {path}"), self.agent.run(req))
    }

    pub fn post_json(&self, path: &str, body: &str, token: Option<&str>) -> Resp {
        self.post_raw(path, body.as_bytes(), Some("application/json"), token)
    }

    /// POST with full control over content type and token.
    pub fn post_raw(
        &self,
        path: &str,
        body: &[u8],
        content_type: Option<&str>,
        token: Option<&str>,
    ) -> Resp {
        let r = self.try_post_raw(path, body, content_type, token);
        self.finish(&format!("POST {path}"), r)
    }

    /// Any method with a bearer token and no body.
    pub fn call_with_token(&self, method: &str, path: &str, token: &str) -> Resp {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .expect("build request");
        self.finish(&format!("{method} {path}"), self.agent.run(req))
    }

    /// The base URL.
    pub fn base(&self) -> String {
        self.base.clone()
    }

    /// PUT a JSON body with a token.
    pub fn http_put(&self, path: &str, body: &str, token: &str) -> Resp {
        let url = format!("{}{path}", self.base);
        let r = self
            .agent
            .put(&url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .send(body.as_bytes());
        self.finish(&format!("PUT {path}"), r)
    }

    /// POST that reports transport errors instead of panicking (crash tests).
    pub fn try_post_json(&self, path: &str, body: &str, token: &str) -> Result<Resp, String> {
        self.try_finish(self.try_post_raw(
            path,
            body.as_bytes(),
            Some("application/json"),
            Some(token),
        ))
        .map_err(|e| e.to_string())
    }

    fn try_post_raw(
        &self,
        path: &str,
        body: &[u8],
        content_type: Option<&str>,
        token: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.post(&url);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.send(body)
    }
}

/// Sends raw bytes over a fresh TCP connection and reads one response (status line, headers,
/// and a Content-Length body). For requests a well-behaved client library will not send, and
/// for bodies the server refuses before reading them (which makes a library's write fail).
pub fn raw_http(base: &str, request: &[u8]) -> Resp {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.set_write_timeout(Some(Duration::from_secs(30))).ok();
    // The server may answer and close before reading everything: ignore write errors.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, content_length) = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).to_string();
            let cl = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            break (p + 4, cl);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => panic!(
                "connection closed before a full response: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    while buf.len() < head_end + content_length {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let end = (head_end + content_length).min(buf.len());
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&buf[head_end..end]).into_owned(),
    }
}

// ---- Ledger helpers -----------------------------------------------------------------------

/// The leaf data the ledger must have hashed for an entry (SPEC §3.1), from its public JSON.
pub fn leaf_data_of(entry: &Value) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    for k in [
        "type",
        "subject",
        "source",
        "ref",
        "payload",
        "timestamp_ms",
    ] {
        if let Some(v) = entry.get(k)
            && !v.is_null()
        {
            m.insert(k.to_string(), v.clone());
        }
    }
    mobius_core::jcs::to_vec(&Value::Object(m)).expect("canonicalise entry")
}

/// The id (hex leaf hash) of an entry from its public JSON.
pub fn id_of(entry: &Value) -> String {
    hex::encode(mobius_core::merkle::leaf_hash(&leaf_data_of(entry)))
}

pub fn hash_from_hex(s: &str) -> [u8; 32] {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or_else(|| panic!("not a 32-byte hex hash: {s:?}"))
}

pub fn proof_from_json(v: &Value) -> Vec<[u8; 32]> {
    v["proof"]
        .as_array()
        .expect("proof array")
        .iter()
        .map(|h| hash_from_hex(h.as_str().expect("hex string")))
        .collect()
}

/// Parses `mobius ... --json` output (the last JSON line on stdout).
pub fn json_stdout(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON on stdout (status {}):\nstdout: {text}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Offline `mobius ledger verify --json` on stopped data; returns (exit ok, JSON report).
pub fn verify_offline(data: &StackData, key: Option<&str>) -> (bool, Value, Output) {
    let mut args = vec!["ledger", "verify", "--json"];
    if let Some(k) = key {
        args.push("--key");
        args.push(k);
    }
    let out = data.cli(&args);
    let v = json_stdout(&out);
    (out.status.success(), v, out)
}

/// `mobius ledger verify --url URL --state FILE --json`; returns (exit ok, JSON report).
pub fn verify_remote(url: &str, state: &Path) -> (bool, Value, Output) {
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut cmd = base_command(cwd.path());
    cmd.args([
        "ledger",
        "verify",
        "--url",
        url,
        "--state",
        &state.display().to_string(),
        "--json",
    ]);
    let out = run_bounded(cmd, Duration::from_secs(120));
    let v = json_stdout(&out);
    (out.status.success(), v, out)
}
