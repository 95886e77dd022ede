//! `nox-bench`: the load generator of Nox Sync (issue 6).
//!
//! It spawns its own `nox-sync` (fresh embedded PostgreSQL, free port) per scenario — or uses
//! `--server-url` — signs up its own tenant through the HTTP API, drives simulated editors over
//! WebSocket, and prints a table (and `--json`). See `bench/README.md`.

#![allow(clippy::print_stdout)]

mod api;
mod client;
mod report;
mod scenarios;
mod server;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};

use report::Report;
use scenarios::cold_load::ColdLoadConfig;
use scenarios::connections::ConnectionsConfig;
use scenarios::fanout::FanoutConfig;
use scenarios::idle::IdleConfig;
use scenarios::join_storm::JoinStormConfig;
use scenarios::many_docs::ManyDocsConfig;
use scenarios::versions::VersionsConfig;
use server::ServerOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Fanout,
    ManyDocs,
    ColdLoad,
    Idle,
    Connections,
    JoinStorm,
    DurabilityCost,
    /// Version history: taking and restoring versions of the 10k+10k canvas.
    Versions,
    /// Two nodes on one PostgreSQL: fan-out latency with readers on the owner or on the other
    /// node (relayed).
    Multinode,
    /// Every scenario above, in that order.
    All,
}

#[derive(Debug, Parser)]
#[command(
    name = "nox-bench",
    about = "Load generator for Nox Sync (see bench/README.md)"
)]
struct Args {
    scenario: Scenario,
    /// fanout: clients per run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "2,10,50,200")]
    clients: Vec<usize>,
    /// multinode: clients per run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    multinode_clients: Vec<usize>,
    /// fanout / durability-cost: seconds of moving.
    #[arg(long, default_value_t = 10)]
    fanout_secs: u64,
    /// fanout / durability-cost: milliseconds between moves.
    #[arg(long, default_value_t = 20)]
    fanout_interval_ms: u64,
    /// durability-cost: clients per run.
    #[arg(long, value_delimiter = ',', default_value = "50")]
    durability_clients: Vec<usize>,
    /// many-docs: workspace counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "200,1000")]
    docs: Vec<usize>,
    /// many-docs: seconds of moving.
    #[arg(long, default_value_t = 20)]
    docs_secs: u64,
    /// cold-load: blocks and relations.
    #[arg(long, default_value_t = 10_000)]
    blocks: usize,
    #[arg(long, default_value_t = 10_000)]
    relations: usize,
    /// versions: rounds of the restore cases (median and max reported).
    #[arg(long, default_value_t = 5)]
    version_rounds: usize,
    /// idle: loaded workspaces and extra connections.
    #[arg(long, default_value_t = 500)]
    idle_workspaces: usize,
    #[arg(long, default_value_t = 2_000)]
    idle_connections: usize,
    /// connections: the ramp's target and its workspaces.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    #[arg(long, default_value_t = 1_000)]
    conn_workspaces: usize,
    /// connections: seconds of latency measurement after each step.
    #[arg(long, default_value_t = 5)]
    conn_window_secs: u64,
    /// join-storm: joiners and document size.
    #[arg(long, default_value_t = 150)]
    storm_clients: usize,
    #[arg(long, default_value_t = 5.0)]
    storm_mib: f64,
    /// Small sizes everywhere (development smoke run).
    #[arg(long)]
    quick: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Use a running server instead of spawning one (no CPU/RSS figures without --server-pid).
    #[arg(long)]
    server_url: Option<String>,
    #[arg(long)]
    server_pid: Option<u32>,
    /// The `nox-sync` binary to spawn.
    #[arg(long, default_value = "target/release/nox-sync")]
    server_bin: PathBuf,
    /// The `nox-sync` built with `--features bench-noop-store` (durability-cost).
    #[arg(long, default_value = "target/noop-store/release/nox-sync")]
    noop_server_bin: PathBuf,
    /// Extra server environment, `KEY=VALUE` (repeatable), e.g. `--server-env NOX_PEER_QUEUE=256`.
    #[arg(long)]
    server_env: Vec<String>,
    /// Upper bound of one scenario's wall time, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

impl Args {
    fn apply_quick(&mut self) {
        if !self.quick {
            return;
        }
        self.clients = vec![2, 10];
        self.multinode_clients = vec![10];
        self.version_rounds = 1;
        self.durability_clients = vec![10];
        self.fanout_secs = 3;
        self.docs = vec![20];
        self.docs_secs = 4;
        self.blocks = 1_000;
        self.relations = 1_000;
        self.idle_workspaces = 50;
        self.idle_connections = 200;
        self.connections = 300;
        self.conn_workspaces = 100;
        self.conn_window_secs = 3;
        self.storm_clients = 20;
        self.storm_mib = 0.5;
    }

    fn fanout(&self, sizes: &[usize]) -> FanoutConfig {
        FanoutConfig {
            sizes: sizes.to_vec(),
            duration: Duration::from_secs(self.fanout_secs),
            interval: Duration::from_millis(self.fanout_interval_ms),
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    args.apply_quick();
    let _ = client::now_ns();
    let fds = server::raise_fd_limit();
    if fds < 2 * args.connections as u64 + 100
        && matches!(args.scenario, Scenario::Connections | Scenario::All)
    {
        eprintln!("warning: open-files limit is {fds}; the connections scenario needs more than its connection count");
    }
    let mut env = Vec::new();
    for pair in &args.server_env {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--server-env wants KEY=VALUE, got {pair}");
        };
        env.push((k.to_string(), v.to_string()));
    }
    let options = ServerOptions {
        url: args.server_url.clone(),
        pid: args.server_pid,
        bin: args.server_bin.clone(),
        env,
    };

    let scenarios = match args.scenario {
        Scenario::All => vec![
            Scenario::Fanout,
            Scenario::ManyDocs,
            Scenario::ColdLoad,
            Scenario::Idle,
            Scenario::Connections,
            Scenario::JoinStorm,
            Scenario::DurabilityCost,
            Scenario::Versions,
            Scenario::Multinode,
        ],
        one => vec![one],
    };
    let mut report = Report::new();
    let mut failures = 0;
    for scenario in scenarios {
        eprintln!("== {scenario:?} (load {}) ==", report::loadavg());
        let run = run_one(scenario, &args, &options);
        match tokio::time::timeout(Duration::from_secs(args.timeout_secs), run).await {
            Ok(Ok(rows)) => report.add(rows),
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("{scenario:?} failed: {e:#}");
            }
            Err(_) => {
                failures += 1;
                eprintln!("{scenario:?} did not finish within {} s", args.timeout_secs);
            }
        }
        if let Some(path) = &args.json {
            report.write_json(path)?;
        }
    }
    report.print();
    if failures > 0 {
        bail!("{failures} scenario(s) failed");
    }
    Ok(())
}

async fn run_one(
    scenario: Scenario,
    args: &Args,
    options: &ServerOptions,
) -> Result<Vec<report::Row>> {
    match scenario {
        Scenario::Fanout => scenarios::fanout::run(options, &args.fanout(&args.clients)).await,
        Scenario::ManyDocs => {
            scenarios::many_docs::run(
                options,
                &ManyDocsConfig {
                    docs: args.docs.clone(),
                    duration: Duration::from_secs(args.docs_secs),
                    interval: Duration::from_millis(500),
                },
            )
            .await
        }
        Scenario::ColdLoad => {
            scenarios::cold_load::run(
                options,
                &ColdLoadConfig {
                    blocks: args.blocks,
                    relations: args.relations,
                    batch: 500,
                    loads: 2,
                },
            )
            .await
        }
        Scenario::Idle => {
            scenarios::idle::run(
                options,
                &IdleConfig {
                    workspaces: args.idle_workspaces,
                    extra_connections: args.idle_connections,
                    blocks: 10,
                },
            )
            .await
        }
        Scenario::Connections => {
            scenarios::connections::run(
                options,
                &ConnectionsConfig {
                    connections: args.connections,
                    workspaces: args.conn_workspaces,
                    interval: Duration::from_secs(5),
                    window: Duration::from_secs(args.conn_window_secs),
                    threshold_ms: 50.0,
                },
            )
            .await
        }
        Scenario::JoinStorm => {
            scenarios::join_storm::run(
                options,
                &JoinStormConfig {
                    clients: args.storm_clients,
                    doc_mib: args.storm_mib,
                },
            )
            .await
        }
        Scenario::DurabilityCost => {
            scenarios::durability::run(
                options,
                &args.noop_server_bin,
                &args.fanout(&args.durability_clients),
            )
            .await
        }
        Scenario::Versions => {
            scenarios::versions::run(
                options,
                &VersionsConfig {
                    blocks: args.blocks,
                    relations: args.relations,
                    takes: 3,
                    churn: 100,
                    rounds: args.version_rounds,
                },
            )
            .await
        }
        Scenario::Multinode => {
            scenarios::multinode::run(options, &args.fanout(&args.multinode_clients)).await
        }
        Scenario::All => unreachable!("expanded above"),
    }
}
