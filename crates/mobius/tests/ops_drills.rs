//! End-to-end fault drills of the integrity and operations core on the real binary:
//! an idle healthy system scores GI = 1.0 with no alerts; tampering with an old, already
//! scrubbed ledger entry drives L = 0 and GI < 0.95, integrity-check answers 503, gi_critical
//! fires, automation halts (guarded operations answer 503 automation_halted), an incident
//! opens, a local webhook receiver gets the Alertmanager-style notification, and resume is
//! refused until the entry is repaired; a service that stops answering drives service_down
//! from pending to firing; every service's /metrics passes `promtool check metrics`.

mod common;

use common::{Backend, Http, Stack};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both_backends!(tamper_drill);

/// A minimal HTTP/1.1 webhook receiver on 127.0.0.1:0 that records request bodies.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, st) = (bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(5)))
                            .unwrap();
                        let mut reader = BufReader::new(stream);
                        let mut len = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                                break;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0u8; len.min(1 << 20)];
                        let _ = reader.read_exact(&mut body);
                        b.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).into_owned());
                        let _ = reader.get_mut().write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Receiver {
            url,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn portal(s: &Stack) -> Http {
    let eps: Value = serde_json::from_str(
        &std::fs::read_to_string(s.data_dir().join("endpoints.json")).unwrap(),
    )
    .unwrap();
    Http::new(
        eps["services"]["portal"]
            .as_str()
            .expect("portal URL in endpoints.json"),
    )
}

/// Polls `f` every 50 ms until it returns Some, for at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn with_token(http: &Http, path: &str, token: &str) -> Value {
    let r = http.get_with(path, &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

fn tamper_drill(b: Backend) {
    let hook = Receiver::start();
    let s = Stack::start_with(
        b,
        &[
            "--block-interval-ms",
            "100",
            "--integrity-sample-interval-ms",
            "200",
            "--alert-webhooks",
            &hook.url,
        ],
    );
    let p = portal(&s);
    let token = s.token.clone();

    // Idle and healthy: GI = 1.0, integrity-check 200, no alerts, healthz carries GI.
    let ic = wait_for("a first integrity sample", Duration::from_secs(20), || {
        let r = p.get("/api/integrity-check");
        (r.status == 200 && r.json()["gi"] == 1.0).then(|| r.json())
    });
    assert_eq!(ic["components"]["ledger"], 1.0);
    assert_eq!(
        ic["components"]["economy"],
        Value::Null,
        "unmeasured components are left out, not invented"
    );
    assert_eq!(ic["automation"]["halted"], false);
    let hz = s.get_ok("/healthz");
    assert_eq!(
        (
            hz["gi"].as_f64(),
            hz["gi_ok"].as_bool(),
            hz["gi_threshold"].as_f64()
        ),
        (Some(1.0), Some(true), Some(0.95))
    );
    assert_eq!(
        s.get("/api/integrity-check").status,
        200,
        "every service serves integrity-check"
    );
    assert_eq!(
        with_token(&p, "/api/ops/alerts", &token)["items"],
        json!([])
    );

    // Entries, sealed and scrubbed at least once.
    let entries: Vec<Value> = (0..40)
        .map(|i| json!({"type": "civic.vote", "payload": {"i": i}}))
        .collect();
    assert_eq!(
        s.post("/v1/attestations/batch", &json!({ "entries": entries }))
            .status,
        201
    );
    s.wait_sealed(40);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(p.get("/api/integrity-check").status, 200);

    // Tamper with old entry 7 directly in the store.
    const K: u64 = 7;
    let mut sql = s.data.sql();
    let original = sql.leaf_data(K);
    let mut forged: Value = serde_json::from_slice(&original).unwrap();
    forged["payload"]["i"] = json!(700);
    sql.rewrite_entry(K, &mobius_core::jcs::to_vec(&forged).unwrap(), None);
    drop(sql);

    let ic = wait_for(
        "GI < 0.95 after the tamper",
        Duration::from_secs(20),
        || {
            let r = p.get("/api/integrity-check");
            (r.status == 503).then(|| r.json())
        },
    );
    assert_eq!(ic["components"]["ledger"], 0.0, "{ic}");
    assert!(ic["gi"].as_f64().unwrap() < 0.95);
    assert!(
        ic["recommendations"].to_string().contains("stored entry 7"),
        "{ic}"
    );
    assert_eq!(
        s.get("/api/integrity-check").status,
        503,
        "the ledger's integrity-check agrees"
    );

    // gi_critical fires (2 samples), automation halts, an incident opens, the webhook hears it.
    wait_for("gi_critical firing", Duration::from_secs(20), || {
        let alerts = with_token(&p, "/api/ops/alerts", &token);
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "gi_critical" && a["state"] == "firing")
            .then_some(())
    });
    let auto = wait_for("automation halted", Duration::from_secs(10), || {
        let a = p.get("/api/ops/automation").json();
        (a["halted"] == true).then_some(a)
    });
    assert!(
        auto["reason"].as_str().unwrap().contains("gi_critical"),
        "{auto}"
    );
    let seal = s.http.post_json("/v1/ledger/seal", "{}", Some(&token));
    let e = seal.assert_error(503, "automation_halted");
    assert_eq!(e["details"]["halted"], true);
    assert_eq!(
        s.post(
            "/v1/attestations",
            &json!({"type": "civic.note", "payload": {}})
        )
        .status,
        201,
        "plain attestations continue while halted"
    );
    let incident = wait_for(
        "an incident for gi_critical",
        Duration::from_secs(10),
        || {
            let l = p.get("/api/ops/incidents?status=open").json();
            l["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["alert_id"] == "gi_critical")
                .cloned()
        },
    );
    assert_eq!(incident["severity"], "sev1");
    let note = wait_for("the webhook notification", Duration::from_secs(20), || {
        hook.bodies()
            .into_iter()
            .find(|b| b["status"] == "firing" && b["groupLabels"]["alertname"] == "gi_critical")
    });
    assert_eq!(note["version"], "4");
    assert_eq!(note["alerts"][0]["labels"]["severity"], "critical");
    let status = p.get("/api/ops/status").json();
    assert_eq!(status["automation"]["halted"], true);
    assert!(!status["open_incidents"].as_array().unwrap().is_empty());

    // Resume is refused while GI < 0.95 (and needs an operator and a reason).
    let resume =
        |body: &str, tok: Option<&str>| p.post_json("/api/ops/automation/resume", body, tok);
    resume(r#"{"reason":"looks fine"}"#, None).assert_error(401, "unauthenticated");
    resume(r#"{"reason":""}"#, Some(&token)).assert_error(400, "invalid_request");
    let refused = resume(r#"{"reason":"looks fine"}"#, Some(&token));
    refused.assert_error(409, "conflict");
    assert_eq!(p.get("/api/ops/automation").json()["halted"], true);

    // Repair the entry (restore it from a copy), wait for GI to recover, then resume.
    s.data.sql().rewrite_entry(K, &original, None);
    wait_for(
        "GI >= 0.95 after the repair",
        Duration::from_secs(30),
        || {
            let r = p.get("/api/integrity-check");
            (r.status == 200).then_some(())
        },
    );
    let resumed = resume(r#"{"reason":"entry 7 restored from backup"}"#, Some(&token));
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.json()["halted"], false);
    assert_eq!(
        s.http
            .post_json("/v1/ledger/seal", "{}", Some(&token))
            .status,
        200
    );
    wait_for("the resolved notification", Duration::from_secs(20), || {
        hook.bodies()
            .into_iter()
            .find(|b| b["status"] == "resolved" && b["groupLabels"]["alertname"] == "gi_critical")
    });

    // Incident lifecycle: update, resolve, post-mortem — all attested.
    let id = incident["id"].as_str().unwrap();
    let post = |path: &str, body: Value| p.post_json(path, &body.to_string(), Some(&token));
    assert_eq!(
        post(
            &format!("/api/ops/incidents/{id}/updates"),
            json!({"text": "restored entry 7"})
        )
        .status,
        200
    );
    let resolved = post(
        &format!("/api/ops/incidents/{id}/resolve"),
        json!({"summary": "tamper repaired"}),
    );
    assert_eq!(resolved.json()["status"], "resolved");
    post(
        &format!("/api/ops/incidents/{id}/resolve"),
        json!({"summary": "again"}),
    )
    .assert_error(409, "conflict");
    let pm = p.http_put(
        &format!("/api/ops/incidents/{id}/postmortem"),
        &json!({"text": "root cause: manual DB edit"}).to_string(),
        &token,
    );
    assert_eq!(pm.status, 200, "{}", pm.body);
    let full = p.get(&format!("/api/ops/incidents/{id}")).json();
    assert_eq!(full["updates"].as_array().unwrap().len(), 4, "{full}");
    for t in [
        "ops.automation_halted",
        "ops.automation_resumed",
        "ops.incident_opened",
        "ops.incident_updated",
        "ops.incident_resolved",
        "ops.incident_postmortem",
    ] {
        let l = s.get_ok(&format!("/v1/attestations?type={t}"));
        assert_eq!(l["items"].as_array().unwrap().len(), 1, "{t}: {l}");
    }
    let history = with_token(&p, "/api/ops/alerts/history?limit=100", &token);
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == "gi_critical" && h["state"] == "resolved")
    );
}

/// A service that stops answering: service_down goes pending, then firing (with a short
/// configured `for`), opens an incident, and `mobius status` fails.
#[test]
fn service_down_drill() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mobius.toml");
    std::fs::write(
        &cfg,
        "[[alerts.rules]]\nname = \"service_down\"\nfor_ms = 1500\n",
    )
    .unwrap();
    // Port 9 (discard) on loopback: nothing listens there.
    let s = Stack::start_with(
        Backend::Sqlite,
        &[
            "--block-interval-ms",
            "100",
            "--integrity-sample-interval-ms",
            "200",
            "--service-urls",
            "ghost-api=http://127.0.0.1:9",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let p = portal(&s);
    let token = s.token.clone();
    let state = |p: &Http| -> Option<String> {
        let a = with_token(p, "/api/ops/alerts", &token);
        a["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "service_down:service=ghost-api")
            .map(|a| a["state"].as_str().unwrap().to_string())
    };
    let first = wait_for("service_down to appear", Duration::from_secs(20), || {
        state(&p)
    });
    assert_eq!(
        first, "pending",
        "service_down must be pending before it fires"
    );
    wait_for("service_down firing", Duration::from_secs(20), || {
        (state(&p).as_deref() == Some("firing")).then_some(())
    });
    wait_for(
        "an incident for service_down",
        Duration::from_secs(10),
        || {
            let l = p.get("/api/ops/incidents?status=open").json();
            l["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["alert_id"] == "service_down:service=ghost-api")
                .cloned()
        },
    );
    let st = p.get("/api/ops/status").json();
    let ghost = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "ghost-api")
        .cloned()
        .unwrap();
    assert_eq!(ghost["status"], "down");
    let out = s.data.cli(&["status", "--url", &p.base()]);
    assert!(
        !out.status.success(),
        "mobius status must fail while a service is down"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ghost-api"));
}

/// `promtool check metrics` accepts every service's /metrics; the idle system passes
/// `mobius status` and `mobius gate`.
#[test]
fn metrics_pass_promtool_and_idle_gate_passes() {
    let s = Stack::start_with(
        Backend::Sqlite,
        &[
            "--block-interval-ms",
            "100",
            "--integrity-sample-interval-ms",
            "200",
        ],
    );
    let p = portal(&s);
    wait_for("a first integrity sample", Duration::from_secs(20), || {
        (p.get("/api/integrity-check").status == 200).then_some(())
    });
    assert_eq!(
        s.post(
            "/v1/attestations",
            &json!({"type": "civic.vote", "payload": {}})
        )
        .status,
        201
    );
    for http in [&s.http, &p] {
        let text = http.get("/metrics").body;
        for name in [
            "mobius_gi ",
            "mobius_mii ",
            "mobius_gi_component{",
            "mobius_automation_halted",
            "mobius_service_up{",
        ] {
            assert!(
                text.contains(name),
                "{name} missing from /metrics of {}",
                http.base()
            );
        }
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool is needed: scripts/check-monitoring installs it (Debian package prometheus)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "promtool check metrics on {}: {report}",
            http.base()
        );
    }
    let status = s.data.cli(&["status", "--url", &p.base()]);
    assert!(
        status.status.success(),
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let gate = s.data.cli(&["gate", "--url", &p.base(), "--json"]);
    assert!(
        gate.status.success(),
        "{}",
        String::from_utf8_lossy(&gate.stdout)
    );
    let g: Value = serde_json::from_slice(&gate.stdout).unwrap();
    assert_eq!(
        (g["pass"].as_bool(), g["gi"].as_f64()),
        (Some(true), Some(1.0))
    );
}

/// A fake service whose `/healthz` passes but whose `/metrics` show slow requests (p95 ≈ 2 s)
/// and 10% 5xx: the monitor's scrapes drive `slow_responses` and `error_rate` to firing, and
/// reliability (hence GI) falls. Each scrape reports 100 more requests.
struct SlowService {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlowService {
    fn start() -> SlowService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut scrapes = 0u64;
            while !st.load(Ordering::Acquire) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let (ctype, body) = if request_line.starts_with("GET /metrics") {
                    scrapes += 1;
                    let n = 100 * scrapes;
                    let (ok, err) = (n * 9 / 10, n / 10);
                    let fast = n / 50; // 2% fast, the rest take 1-2.5 s
                    let labels = "service=\"slow-api\",route=\"/v1/work\",method=\"POST\"";
                    let text = format!(
                        "# HELP mobius_http_requests_total x\n# TYPE mobius_http_requests_total counter\n\
                         mobius_http_requests_total{{{labels},status=\"200\"}} {ok}\n\
                         mobius_http_requests_total{{{labels},status=\"500\"}} {err}\n\
                         # HELP mobius_http_request_duration_seconds x\n# TYPE mobius_http_request_duration_seconds histogram\n\
                         mobius_http_request_duration_seconds_bucket{{{labels},le=\"0.1\"}} {fast}\n\
                         mobius_http_request_duration_seconds_bucket{{{labels},le=\"1\"}} {fast}\n\
                         mobius_http_request_duration_seconds_bucket{{{labels},le=\"2.5\"}} {n}\n\
                         mobius_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {n}\n"
                    );
                    ("text/plain; version=0.0.4; charset=utf-8", text)
                } else {
                    ("application/json", r#"{"status":"pass"}"#.to_string())
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = reader.get_mut().write_all(resp.as_bytes());
            }
        });
        SlowService {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SlowService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn slow_and_failing_service_drill() {
    let slow = SlowService::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mobius.toml");
    std::fs::write(
        &cfg,
        "[[alerts.rules]]\nname = \"slow_responses\"\nfor_ms = 1000\n\n[[alerts.rules]]\nname = \"error_rate\"\nfor_ms = 1000\n",
    )
    .unwrap();
    let services = format!("slow-api={}", slow.url);
    let s = Stack::start_with(
        Backend::Sqlite,
        &[
            "--block-interval-ms",
            "100",
            "--integrity-sample-interval-ms",
            "200",
            "--service-urls",
            &services,
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let p = portal(&s);
    let token = s.token.clone();
    let firing = |id: &str| {
        with_token(&p, "/api/ops/alerts", &token)["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id && a["state"] == "firing")
    };
    wait_for("slow_responses firing", Duration::from_secs(20), || {
        firing("slow_responses:service=slow-api").then_some(())
    });
    wait_for("error_rate firing", Duration::from_secs(20), || {
        firing("error_rate:service=slow-api").then_some(())
    });
    let ic = p.get("/api/integrity-check").json();
    let r = ic["components"]["reliability"].as_f64().unwrap();
    let n = p.get("/api/ops/status").json()["services"]
        .as_array()
        .unwrap()
        .len() as f64;
    // 10% errors and p95 ≈ 2 s make the slow service's reliability 0; the others are 1.
    assert!(
        (r - (n - 1.0) / n).abs() < 1e-9,
        "R = {r} with {n} services: {ic}"
    );
    // No incident for warnings, and the healthy services stay healthy.
    let st = p.get("/api/ops/status").json();
    assert!(
        st["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "up"),
        "{st}"
    );
}

/// A manual halt is persisted and attested, survives a restart, and an operator resumes it
/// with a reason once GI is healthy.
#[test]
fn halt_survives_restart() {
    let mut s = Stack::start_with(
        Backend::Sqlite,
        &[
            "--block-interval-ms",
            "100",
            "--integrity-sample-interval-ms",
            "200",
        ],
    );
    let p = portal(&s);
    let token = s.token.clone();
    p.post_json(
        "/api/ops/automation/halt",
        r#"{"reason":"maintenance window"}"#,
        None,
    )
    .assert_error(401, "unauthenticated");
    let citizen = s.data.create_token("citizen", "alice");
    p.post_json(
        "/api/ops/automation/halt",
        r#"{"reason":"x"}"#,
        Some(&citizen),
    )
    .assert_error(403, "forbidden");
    p.post_json(
        "/api/ops/automation/halt",
        r#"{"reason":"maintenance window","extra":1}"#,
        Some(&token),
    )
    .assert_error(400, "invalid_request");
    let h = p.post_json(
        "/api/ops/automation/halt",
        r#"{"reason":"maintenance window"}"#,
        Some(&token),
    );
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(
        (h.json()["halted"].as_bool(), h.json()["actor"].as_str()),
        (Some(true), Some("operator:ops"))
    );
    s.restart();
    let p = portal(&s);
    let a = p.get("/api/ops/automation").json();
    assert_eq!(
        (a["halted"].as_bool(), a["reason"].as_str()),
        (Some(true), Some("maintenance window")),
        "{a}"
    );
    s.http
        .post_json("/v1/ledger/seal", "{}", Some(&token))
        .assert_error(503, "automation_halted");
    wait_for("GI 1.0 after restart", Duration::from_secs(20), || {
        (p.get("/api/integrity-check").status == 200).then_some(())
    });
    let r = p.post_json(
        "/api/ops/automation/resume",
        r#"{"reason":"maintenance done"}"#,
        Some(&token),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["halted"], false);
    let entries = s.get_ok("/v1/attestations?type=ops.automation_halted");
    assert_eq!(
        entries["items"][0]["payload"]["reason"],
        "maintenance window"
    );
    assert_eq!(entries["items"][0]["source"], "operator:ops");
    assert_eq!(
        s.get_ok("/v1/attestations?type=ops.automation_resumed")["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
