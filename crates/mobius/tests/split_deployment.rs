//! A split deployment over one PostgreSQL: `mobius serve ledger` and `mobius serve portal`
//! as separate processes. The portal's monitor probes the ledger over HTTP and writes samples
//! (its own sequencer shares the ledger under the advisory lock); the separately served
//! ledger's `/healthz` and `/api/integrity-check` carry GI read from those stored samples.

mod common;

use common::{Http, pg_base_url, pg_client, random_hex};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(data: &Path, store: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mobius"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MOBIUS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.arg("--data")
        .arg(data)
        .arg("--store")
        .arg(store)
        .args(args)
        .envs(env.iter().copied());
    Proc(
        cmd.current_dir(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mobius"),
    )
}

fn url_of(data: &Path, service: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = std::fs::read_to_string(data.join("endpoints.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&t)
            && let Some(u) = v["services"][service].as_str()
        {
            return u.to_string();
        }
        assert!(Instant::now() < deadline, "{service} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn separately_served_ledger_carries_gi_from_the_portal() {
    let schema = format!("t_{}", random_hex());
    let base = pg_base_url();
    let store = format!(
        "{base}{}schema={schema}",
        if base.contains('?') { '&' } else { '?' }
    );
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ledger = spawn(
        d1.path(),
        &store,
        &["serve", "ledger"],
        &[("MOBIUS_LEDGER_PORT", "0"), ("MOBIUS_RATE_LIMITS", "off")],
    );
    let ledger_url = url_of(d1.path(), "ledger-api");
    // Replicas share the signing key.
    std::fs::create_dir_all(d2.path().join("keys")).unwrap();
    std::fs::copy(
        d1.path().join("keys/ledger-signing.key"),
        d2.path().join("keys/ledger-signing.key"),
    )
    .unwrap();
    let services = format!("ledger-api={ledger_url}");
    let portal = spawn(
        d2.path(),
        &store,
        &[
            "serve",
            "portal",
            "--integrity-sample-interval-ms",
            "300",
            "--service-urls",
            &services,
        ],
        &[("MOBIUS_PORTAL_PORT", "0"), ("MOBIUS_RATE_LIMITS", "off")],
    );
    let portal_url = url_of(d2.path(), "portal");
    let (l, p) = (Http::new(&ledger_url), Http::new(&portal_url));
    let deadline = Instant::now() + Duration::from_secs(30);
    let hz = loop {
        let hz = l.get("/healthz").json();
        if hz["gi"].as_f64() == Some(1.0) {
            break hz;
        }
        assert!(
            Instant::now() < deadline,
            "the ledger's /healthz never carried GI: {hz}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(hz["gi_ok"], true);
    let ic = l.get("/api/integrity-check");
    assert_eq!(ic.status, 200, "{}", ic.body);
    assert_eq!(ic.json()["components"]["ledger"], 1.0);
    let st = p.get("/api/ops/status").json();
    assert!(
        st["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "ledger-api" && s["status"] == "up"),
        "{st}"
    );
    drop(portal);
    drop(ledger);
    let _ = pg_client().batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
}
