//! `mobius`: one binary that runs every service and operates it.

mod config;
mod run;
mod status;

use clap::{Parser, Subcommand};
use config::{CommonOpts, Config, ServeOpts};
use mobius_http::auth::Role;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mobius",
    version,
    about = "Mobius civic-integrity platform: run and operate the services."
)]
struct Cli {
    #[command(flatten)]
    common: CommonOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start every service in one process over the embedded store (the zero-setup default)
    Up(ServeOpts),
    /// Run one service (e.g. against a shared PostgreSQL, as one of many replicas)
    Serve {
        #[command(subcommand)]
        service: ServeCommand,
    },
    /// Civic Ledger tools
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Bearer tokens
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Configuration tools
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Apply pending store schema migrations
    Migrate,
    /// Table of every service: health, GI, latency (non-zero exit if anything fails)
    Status {
        /// Portal URL [default: from <data>/endpoints.json]
        #[arg(long)]
        url: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// The deploy integrity gate: exit 0 only when MII >= 0.95, GI >= 0.95 and automation runs
    Gate {
        /// Portal URL [default: from <data>/endpoints.json]
        #[arg(long)]
        url: Option<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (print throughput and latency percentiles; not tests)
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum ServeCommand {
    /// The Civic Ledger (ledger-api, seed port 4001)
    Ledger(ServeOpts),
    /// The portal: ops API and integrity monitor (seed port 3002); probe the other services
    /// with --service-urls ledger-api=http://...
    Portal(ServeOpts),
    /// The Citizen Shield (shield-api, seed port 4004)
    Shield(ServeOpts),
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Verify the ledger: offline over a data directory or store, or --url from outside
    Verify {
        /// Verify a running ledger over HTTP instead (acts as a witness)
        #[arg(long)]
        url: Option<String>,
        /// Trusted verifier key (<name>+<hex id>+<base64 key>); default: the data
        /// directory's signing key (offline) or the key pinned on first use (--url)
        #[arg(long)]
        key: Option<String>,
        /// Where --url remembers the last verified checkpoint
        /// [default: ~/.mobius/witness/<host_port>.json]
        #[arg(long)]
        state: Option<PathBuf>,
        /// Entries to spot-check with inclusion proofs (--url)
        #[arg(long, default_value_t = 16)]
        samples: usize,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer token; the secret is printed once and stored only as a hash
    Create {
        /// citizen, sentinel, service or operator
        #[arg(long, default_value = "operator")]
        role: String,
        /// Who the token acts as (e.g. ops, indexer-api, alice)
        #[arg(long)]
        subject: String,
        /// Lifetime in seconds [default: no expiry]
        #[arg(long)]
        ttl_s: Option<i64>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate and print the effective configuration (secrets masked)
    Check(ServeOpts),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Benchmark the Civic Ledger against raw SQLite baselines
    Ledger(mobius_bench::ledger::BenchOpts),
    /// Benchmark health-endpoint latency under load and the integrity monitor's sample cost
    Ops(mobius_bench::ops::BenchOpts),
    /// Benchmark authentication overhead per request and screening throughput
    Shield(mobius_bench::shield::BenchOpts),
}

fn main() -> ExitCode {
    mobius_http::metrics::mark_process_start();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(serve) => run::up(&cli.common, &serve, run::Services::All),
        Command::Serve {
            service: ServeCommand::Ledger(serve),
        } => run::up(&cli.common, &serve, run::Services::Ledger),
        Command::Serve {
            service: ServeCommand::Portal(serve),
        } => run::up(&cli.common, &serve, run::Services::Portal),
        Command::Serve {
            service: ServeCommand::Shield(serve),
        } => run::up(&cli.common, &serve, run::Services::Shield),
        Command::Status { url, json } => status::status(&cli.common, url.as_deref(), json),
        Command::Gate { url, json } => status::gate(&cli.common, url.as_deref(), json),
        Command::Ledger {
            command:
                LedgerCommand::Verify {
                    url,
                    key,
                    state,
                    samples,
                    json,
                },
        } => match url {
            Some(url) => run::verify_remote(&url, key.as_deref(), state, samples, json),
            None => Config::resolve(&cli.common, None)
                .and_then(|c| run::verify_offline(&c, key.as_deref(), json)),
        },
        Command::Token {
            command:
                TokenCommand::Create {
                    role,
                    subject,
                    ttl_s,
                    json,
                },
        } => match Role::parse(&role) {
            Some(role) => Config::resolve(&cli.common, None)
                .and_then(|c| run::token_create(&c, role, &subject, ttl_s, json)),
            None => Err(format!(
                "unknown role {role:?}: use citizen, sentinel, service or operator"
            )),
        },
        Command::Config {
            command: ConfigCommand::Check(serve),
        } => Config::resolve(&cli.common, Some(&serve)).map(|c| {
            println!(
                "{}",
                serde_json::to_string_pretty(&c.to_json()).unwrap_or_default()
            )
        }),
        Command::Migrate => Config::resolve(&cli.common, None).and_then(|c| run::migrate(&c)),
        Command::Bench {
            command: BenchCommand::Ledger(opts),
        } => mobius_bench::ledger::run(&opts),
        Command::Bench {
            command: BenchCommand::Ops(opts),
        } => mobius_bench::ops::run(&opts),
        Command::Bench {
            command: BenchCommand::Shield(opts),
        } => mobius_bench::shield::run(&opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mobius: {e}");
            ExitCode::FAILURE
        }
    }
}
