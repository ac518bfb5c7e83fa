//! What the machine is and what it is doing while a benchmark runs: the report header
//! (CPUs, CPU model, kernel, memory, the filesystem and disk under the data directory),
//! per-thread CPU time grouped by thread name, and the disk's I/O counters. Everything is
//! read from /proc and /sys; on a system without them the figures are simply left out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory: String,
    pub dir: PathBuf,
    /// e.g. `ext4 on /dev/vda (mounted at /)`.
    pub filesystem: String,
    /// e.g. `vda, queue/rotational=0`.
    pub disk: String,
    /// The whole-disk name in /proc/diskstats, when the data directory is on a block device.
    pub disk_name: Option<String>,
}

pub fn machine(dir: &Path) -> Machine {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB RAM", kb / (1024.0 * 1024.0)))
        })
        .unwrap_or_else(|| "unknown RAM".into());
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (filesystem, disk, disk_name) = match mount_of(&dir) {
        Some(m) => {
            let fs = format!(
                "{} on {} (mounted at {})",
                m.fstype, m.source, m.mount_point
            );
            match block_disk(&m.dev) {
                Some(name) => {
                    // Virtual disks often report rotational=1 whatever backs them: say
                    // what the kernel says rather than guess.
                    let rot =
                        std::fs::read_to_string(format!("/sys/block/{name}/queue/rotational"))
                            .map(|s| format!("queue/rotational={}", s.trim()))
                            .unwrap_or_else(|_| "queue/rotational unknown".into());
                    let model = std::fs::read_to_string(format!("/sys/block/{name}/device/model"))
                        .map(|s| s.trim().to_string())
                        .ok()
                        .filter(|s| !s.is_empty());
                    let kind = if name.starts_with("vd") {
                        ", virtio block device"
                    } else {
                        ""
                    };
                    let disk = match model {
                        Some(model) => format!("{name} ({model}), {rot}{kind}"),
                        None => format!("{name}, {rot}{kind}"),
                    };
                    (fs, disk, Some(name))
                }
                None => (fs, "no block device (virtual filesystem)".into(), None),
            }
        }
        None => ("unknown".into(), "unknown".into(), None),
    };
    Machine {
        cpus,
        cpu_model,
        kernel,
        memory,
        dir,
        filesystem,
        disk,
        disk_name,
    }
}

struct Mount {
    dev: String,
    mount_point: String,
    fstype: String,
    source: String,
}

/// The mount holding `dir`: the longest mount point that is a prefix of it.
fn mount_of(dir: &Path) -> Option<Mount> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<Mount> = None;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split_whitespace().collect();
        let r: Vec<&str> = right.split_whitespace().collect();
        if l.len() < 5 || r.len() < 2 {
            continue;
        }
        let mount_point = l[4].replace("\\040", " ");
        if !dir.starts_with(&mount_point) {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| mount_point.len() >= b.mount_point.len())
        {
            best = Some(Mount {
                dev: l[2].to_string(),
                mount_point,
                fstype: r[0].to_string(),
                source: r[1].to_string(),
            });
        }
    }
    best
}

/// The whole-disk name (`vda`, `nvme0n1`) of a `major:minor` device, if it is a block device.
fn block_disk(dev: &str) -> Option<String> {
    if dev.starts_with("0:") {
        return None;
    }
    let real = std::fs::canonicalize(format!("/sys/dev/block/{dev}")).ok()?;
    let disk = if real.join("partition").exists() {
        real.parent()?.to_path_buf()
    } else {
        real
    };
    Some(disk.file_name()?.to_string_lossy().into_owned())
}

/// Thread groups CPU time is reported by (matched on the thread name, which Linux cuts to
/// 15 bytes): client, server runtime, sequencer, SQLite checkpointer, other.
pub const CPU_GROUPS: usize = 5;

fn cpu_group(comm: &str) -> usize {
    if comm.starts_with("bench-client") {
        0
    } else if comm.starts_with("ledger-server") {
        1
    } else if comm.starts_with("ledger-sequence") {
        2
    } else if comm.starts_with("sqlite-checkpoi") {
        3
    } else {
        4
    }
}

/// CPU time per thread of this process, in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct CpuSnap {
    threads: HashMap<u32, (usize, u64)>,
    /// Busy CPU time of the whole machine (all processes), nanoseconds.
    machine_busy_ns: Option<u64>,
}

/// Non-idle time of all CPUs from /proc/stat (user, nice, system, irq, softirq, steal),
/// assuming 100 clock ticks per second.
fn machine_busy_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?;
    Some(busy * 10_000_000)
}

pub fn cpu_snapshot() -> CpuSnap {
    let mut threads = HashMap::new();
    let machine_busy_ns = machine_busy_ns();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return CpuSnap {
            threads,
            machine_busy_ns,
        };
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        // schedstat: nanoseconds on CPU; stat: utime + stime in clock ticks (assumed 100 Hz).
        let ns = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .or_else(|| {
                let s = std::fs::read_to_string(p.join("stat")).ok()?;
                let rest = &s[s.rfind(')')? + 2..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
                Some(ticks * 10_000_000)
            });
        if let Some(ns) = ns {
            threads.insert(tid, (cpu_group(comm.trim()), ns));
        }
    }
    CpuSnap {
        threads,
        machine_busy_ns,
    }
}

/// CPU seconds per group between two snapshots (threads that exited in between are lost,
/// so the server runtime keeps its blocking threads alive for the whole run), and as a fifth
/// figure the CPU seconds used by the rest of the machine (other processes, the kernel
/// outside our threads) when /proc/stat is readable (10 ms resolution).
pub fn cpu_delta(a: &CpuSnap, b: &CpuSnap) -> ([f64; CPU_GROUPS], Option<f64>) {
    let mut out = [0.0; CPU_GROUPS];
    for (tid, (g, ns)) in &b.threads {
        let before = a.threads.get(tid).map_or(0, |x| x.1);
        out[*g] += ns.saturating_sub(before) as f64 / 1e9;
    }
    let ours: f64 = out.iter().sum();
    let rest = match (a.machine_busy_ns, b.machine_busy_ns) {
        (Some(x), Some(y)) => Some((y.saturating_sub(x) as f64 / 1e9 - ours).max(0.0)),
        _ => None,
    };
    (out, rest)
}

/// Counters of one disk from /proc/diskstats.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskSnap {
    pub writes: u64,
    pub sectors_written: u64,
    pub flushes: u64,
    pub has_flushes: bool,
}

pub fn disk_snapshot(name: Option<&str>) -> Option<DiskSnap> {
    let name = name?;
    let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
    let line = stats
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(name))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(3)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Some(DiskSnap {
        writes: *f.get(4)?,
        sectors_written: *f.get(6)?,
        flushes: f.get(15).copied().unwrap_or(0),
        has_flushes: f.len() > 15,
    })
}

/// Per-second disk rates between two snapshots: (write requests, MB written, flushes).
pub fn disk_rates(a: &DiskSnap, b: &DiskSnap, secs: f64) -> (f64, f64, Option<f64>) {
    let s = secs.max(1e-9);
    (
        b.writes.saturating_sub(a.writes) as f64 / s,
        b.sectors_written.saturating_sub(a.sectors_written) as f64 * 512.0 / 1e6 / s,
        b.has_flushes
            .then(|| b.flushes.saturating_sub(a.flushes) as f64 / s),
    )
}
