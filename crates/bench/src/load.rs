//! A lean HTTP/1.1 load generator: one keep-alive connection per simulated client (hyper's
//! low-level client over a tokio `TcpStream`), requests sequential per connection, every
//! latency recorded. Runs are bounded either by time (a warm-up, then a measured window) or
//! by a request count; every task is joined before a run returns, and every request has a
//! timeout so a stuck server cannot hang the benchmark.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A request that takes longer than this counts as an error and ends its client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub token: String,
}

pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Bytes,
}

/// Builds request number `seq` (numbered across all clients of a run) for client `client`.
pub type MakeReq = Arc<dyn Fn(usize, u64) -> Req + Send + Sync>;

pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    conn: JoinHandle<()>,
    host: HeaderValue,
    auth: HeaderValue,
}

impl Client {
    pub async fn connect(t: &Target) -> Result<Client, String> {
        let stream = tokio::net::TcpStream::connect(t.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", t.addr))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client {
            sender,
            conn,
            host: HeaderValue::from_str(&t.addr.to_string()).map_err(|e| e.to_string())?,
            auth: HeaderValue::from_str(&format!("Bearer {}", t.token))
                .map_err(|e| e.to_string())?,
        })
    }

    /// Sends one request and reads the whole response.
    pub async fn send(&mut self, req: &Req) -> Result<(StatusCode, Bytes), String> {
        let mut b = Request::builder()
            .method(req.method.clone())
            .uri(req.path.as_str())
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.auth.clone());
        if !req.body.is_empty() {
            b = b.header(CONTENT_TYPE, "application/json");
        }
        let r = b
            .body(Full::new(req.body.clone()))
            .map_err(|e| format!("build request: {e}"))?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection: {e}"))?;
            let resp = self
                .sender
                .send_request(r)
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("response body: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no response within {} s", REQUEST_TIMEOUT.as_secs()))?
    }

    /// Closes the connection and waits (briefly) for its task to end.
    pub async fn close(self) {
        drop(self.sender);
        let mut conn = self.conn;
        if tokio::time::timeout(Duration::from_secs(5), &mut conn)
            .await
            .is_err()
        {
            conn.abort();
            let _ = conn.await;
        }
    }
}

pub struct RunSpec {
    pub clients: usize,
    pub make: MakeReq,
    pub expect: StatusCode,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Successful requests (for a timed run: completed inside the measured window).
    pub ok: u64,
    /// Failed requests (wrong status, transport error or timeout) in the measured part.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Latency of every measured request in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// Length of the measured window.
    pub window: Duration,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Nearest-rank percentile (`q` in 0..=1) in seconds.
    pub fn pct(&self, q: f64) -> Option<f64> {
        percentile(&self.latencies_ns, q).map(|ns| ns as f64 / 1e9)
    }

    fn merge(&mut self, c: ClientResult) {
        self.ok += c.ok;
        self.errors += c.errors;
        if self.first_error.is_none() {
            self.first_error = c.first_error;
        }
        self.latencies_ns.extend(c.latencies_ns);
    }
}

pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[derive(Default)]
struct ClientResult {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_ns: Vec<u64>,
}

fn describe(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    format!("HTTP {}: {text}", status.as_u16())
}

async fn connect_all(t: &Target, n: usize) -> Result<Vec<Client>, String> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(Client::connect(t).await?);
    }
    Ok(clients)
}

async fn join_all(
    handles: Vec<JoinHandle<(Client, ClientResult)>>,
    out: &mut Outcome,
) -> Result<(), String> {
    let mut panicked = None;
    for h in handles {
        match h.await {
            Ok((c, r)) => {
                out.merge(r);
                c.close().await;
            }
            Err(e) => panicked = Some(format!("client task failed: {e}")),
        }
    }
    out.latencies_ns.sort_unstable();
    panicked.map_or(Ok(()), Err)
}

/// Runs `spec.clients` clients flat out from now until `warmup + measure` has passed. Only
/// requests started after the warm-up are measured; throughput counts the requests that
/// completed inside the measured window. `probe` is called at the start and the end of that
/// window (for CPU, disk and commit counters) and its two results are returned.
pub async fn run_timed<S: Send + 'static>(
    t: &Target,
    spec: &RunSpec,
    warmup: Duration,
    measure: Duration,
    probe: impl Fn() -> S + Send + 'static,
) -> Result<(Outcome, S, S), String> {
    let clients = connect_all(t, spec.clients).await?;
    let start = Instant::now() + warmup;
    let end = start + measure;
    let seq = Arc::new(AtomicU64::new(0));
    let prober = tokio::spawn(async move {
        tokio::time::sleep_until(start).await;
        let a = probe();
        tokio::time::sleep_until(end).await;
        let b = probe();
        (a, b)
    });
    let mut handles = Vec::with_capacity(clients.len());
    for (id, mut c) in clients.into_iter().enumerate() {
        let make = spec.make.clone();
        let seq = seq.clone();
        let expect = spec.expect;
        handles.push(tokio::spawn(async move {
            let mut r = ClientResult::default();
            loop {
                if Instant::now() >= end {
                    break;
                }
                let req = make(id, seq.fetch_add(1, Ordering::Relaxed));
                let t0 = Instant::now();
                let res = c.send(&req).await;
                let t1 = Instant::now();
                let measured = t0 >= start;
                match res {
                    Ok((status, _)) if status == expect => {
                        if measured {
                            r.latencies_ns.push((t1 - t0).as_nanos() as u64);
                        }
                        if t1 >= start && t1 <= end {
                            r.ok += 1;
                        }
                    }
                    Ok((status, body)) => {
                        if measured {
                            r.errors += 1;
                        }
                        r.first_error.get_or_insert_with(|| describe(status, &body));
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
    let mut out = Outcome {
        window: measure,
        ..Outcome::default()
    };
    let joined = join_all(handles, &mut out).await;
    let (a, b) = prober
        .await
        .map_err(|e| format!("probe task failed: {e}"))?;
    joined?;
    Ok((out, a, b))
}

/// Sends exactly `total` requests (fewer only if clients fail) spread over `spec.clients`
/// clients, measuring all of them. `probe` is called just before and just after.
pub async fn run_counted<S>(
    t: &Target,
    spec: &RunSpec,
    total: u64,
    probe: impl Fn() -> S,
) -> Result<(Outcome, S, S), String> {
    let clients = connect_all(t, spec.clients).await?;
    let next = Arc::new(AtomicU64::new(0));
    let a = probe();
    let started = Instant::now();
    let mut handles = Vec::with_capacity(clients.len());
    for (id, mut c) in clients.into_iter().enumerate() {
        let make = spec.make.clone();
        let next = next.clone();
        let expect = spec.expect;
        handles.push(tokio::spawn(async move {
            let mut r = ClientResult::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let req = make(id, n);
                let t0 = Instant::now();
                let res = c.send(&req).await;
                let t1 = Instant::now();
                match res {
                    Ok((status, _)) if status == expect => {
                        r.ok += 1;
                        r.latencies_ns.push((t1 - t0).as_nanos() as u64);
                    }
                    Ok((status, body)) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| describe(status, &body));
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
    let mut out = Outcome::default();
    // The window ends with the last response; the connections are closed after it.
    let mut results = Vec::with_capacity(handles.len());
    let mut panicked = None;
    for h in handles {
        match h.await {
            Ok(x) => results.push(x),
            Err(e) => panicked = Some(format!("client task failed: {e}")),
        }
    }
    out.window = started.elapsed();
    let b = probe();
    for (c, r) in results {
        out.merge(r);
        c.close().await;
    }
    out.latencies_ns.sort_unstable();
    if let Some(p) = panicked {
        return Err(p);
    }
    Ok((out, a, b))
}
