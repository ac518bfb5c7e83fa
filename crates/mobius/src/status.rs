//! `mobius status` and `mobius gate` (SPEC §9.3): read the running stack over HTTP.

use crate::config::{CommonOpts, Config};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET returning (status, JSON body, latency ms); Err when unreachable.
fn get_json(agent: &ureq::Agent, url: &str) -> Result<(u16, Value, f64), String> {
    let start = Instant::now();
    let mut r = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, v, start.elapsed().as_secs_f64() * 1e3))
}

/// Service URLs of the running stack, from `<data>/endpoints.json`.
fn endpoints(common: &CommonOpts) -> Result<Vec<(String, String)>, String> {
    let cfg = Config::resolve(common, None)?;
    let path = cfg.data.join("endpoints.json");
    let text = std::fs::read_to_string(&path).map_err(|_| {
        format!(
            "no running stack found ({} is missing): start `mobius up` or pass --url",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(v["services"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, u)| u.as_str().map(|u| (k.clone(), u.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

fn portal_url(
    common: &CommonOpts,
    url: Option<&str>,
) -> Result<(String, Vec<(String, String)>), String> {
    match url {
        Some(u) => Ok((u.trim_end_matches('/').to_string(), Vec::new())),
        None => {
            let eps = endpoints(common)?;
            let portal = eps
                .iter()
                .find(|(n, _)| n == "portal")
                .map(|(_, u)| u.clone())
                .ok_or("the running stack has no portal (integrity monitor); pass --url")?;
            Ok((portal, eps))
        }
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

pub fn status(common: &CommonOpts, url: Option<&str>, json_out: bool) -> Result<(), String> {
    let (portal, eps) = portal_url(common, url)?;
    let agent = agent();
    let mut problems = Vec::new();
    let (code, st, _) = get_json(&agent, &format!("{portal}/api/ops/status"))?;
    if code != 200 {
        problems.push(format!("portal status answered {code}"));
    }
    // Services the monitor probes, plus any local endpoint it does not know.
    let mut rows = Vec::new();
    let mut names: Vec<(String, String)> = st["services"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s["name"].as_str()?.to_string(), String::new())))
                .collect()
        })
        .unwrap_or_default();
    for (n, u) in &eps {
        match names.iter_mut().find(|(m, _)| m == n) {
            Some(e) => e.1 = u.clone(),
            None => names.push((n.clone(), u.clone())),
        }
    }
    for (name, url) in &names {
        let probed = st["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name.as_str()))
            .cloned();
        let (health, gi, latency) = if url.is_empty() {
            let up = probed.as_ref().is_some_and(|p| p["status"] == "up");
            (
                if up {
                    "pass".to_string()
                } else {
                    "down".to_string()
                },
                None,
                probed.as_ref().and_then(|p| p["latency_ms"].as_f64()),
            )
        } else {
            match get_json(&agent, &format!("{url}/healthz")) {
                Ok((code, h, ms)) => {
                    let s = h["status"].as_str().unwrap_or("unknown").to_string();
                    (
                        if code == 200 {
                            s
                        } else {
                            format!("fail ({code})")
                        },
                        h["gi"].as_f64(),
                        Some(ms),
                    )
                }
                Err(_) => ("unreachable".to_string(), None, None),
            }
        };
        if health != "pass" && health != "warn" {
            problems.push(format!("{name} is {health}"));
        }
        rows.push(
            json!({"service": name, "url": url, "health": health, "gi": gi, "latency_ms": latency}),
        );
    }
    let gi = st["gi"].as_f64();
    if gi.is_none_or(|g| g < 0.95) {
        problems.push(format!("GI is {} (threshold 0.95)", fmt_opt(gi, 4)));
    }
    if json_out {
        println!(
            "{}",
            json!({"ok": problems.is_empty(), "services": rows, "gi": gi, "mii": st["mii"], "automation": st["automation"], "open_incidents": st["open_incidents"], "problems": problems})
        );
    } else {
        println!(
            "{:<14} {:<13} {:>8} {:>10}",
            "SERVICE", "HEALTH", "GI", "LATENCY"
        );
        for r in &rows {
            println!(
                "{:<14} {:<13} {:>8} {:>10}",
                r["service"].as_str().unwrap_or(""),
                r["health"].as_str().unwrap_or(""),
                fmt_opt(r["gi"].as_f64(), 4),
                r["latency_ms"]
                    .as_f64()
                    .map_or("-".into(), |l| format!("{l:.1} ms"))
            );
        }
        println!(
            "\nGI {}   MII {}   automation {}   open incidents {}",
            fmt_opt(gi, 4),
            fmt_opt(st["mii"].as_f64(), 4),
            if st["automation"]["halted"] == true {
                "HALTED"
            } else {
                "running"
            },
            st["open_incidents"].as_array().map_or(0, Vec::len)
        );
        for p in &problems {
            println!("problem: {p}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s): {}",
            problems.len(),
            problems.join("; ")
        ))
    }
}

pub fn gate(common: &CommonOpts, url: Option<&str>, json_out: bool) -> Result<(), String> {
    let (portal, _) = portal_url(common, url)?;
    let (_, ic, _) = get_json(&agent(), &format!("{portal}/api/integrity-check"))?;
    let (gi, mii) = (ic["gi"].as_f64(), ic["mii"].as_f64());
    let halted = ic["automation"]["halted"] == true;
    let mut reasons = Vec::new();
    if mii.is_none_or(|m| m < 0.95) {
        reasons.push(format!("MII {} < 0.95", fmt_opt(mii, 4)));
    }
    if gi.is_none_or(|g| g < 0.95) {
        reasons.push(format!("GI {} < 0.95", fmt_opt(gi, 4)));
    }
    if halted {
        reasons.push(format!(
            "automation is halted: {}",
            ic["automation"]["reason"].as_str().unwrap_or("")
        ));
    }
    if json_out {
        println!(
            "{}",
            json!({"pass": reasons.is_empty(), "gi": gi, "mii": mii, "automation_halted": halted, "components": ic["components"], "reasons": reasons})
        );
    } else {
        println!(
            "GI {}  MII {}  automation {}",
            fmt_opt(gi, 4),
            fmt_opt(mii, 4),
            if halted { "HALTED" } else { "running" }
        );
        if let Some(c) = ic["components"].as_object() {
            for (k, v) in c {
                println!(
                    "  {k:<12} {}",
                    v.as_f64()
                        .map_or("not measured".into(), |x| format!("{x:.4}"))
                );
            }
        }
        for r in ic["recommendations"].as_array().into_iter().flatten() {
            println!("  recommendation: {}", r.as_str().unwrap_or(""));
        }
        println!(
            "{}",
            if reasons.is_empty() {
                "GATE PASS".to_string()
            } else {
                format!("GATE FAIL: {}", reasons.join("; "))
            }
        );
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(format!("integrity gate failed: {}", reasons.join("; ")))
    }
}
