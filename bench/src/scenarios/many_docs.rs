//! `many-docs`: D workspaces × 2 clients, each moving a random block of its own at 2 Hz for 20 s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::Rng;

use super::{close_with_notes, converged, delivered_moves, join_runs, lost_moves, spawn_runs, Env};
use crate::client::{Client, Plan};
use crate::report::Row;
use crate::server::{self_cpu_seconds, ServerOptions};
use crate::stats::Samples;

#[derive(Debug, Clone)]
pub struct ManyDocsConfig {
    pub docs: Vec<usize>,
    pub duration: Duration,
    pub interval: Duration,
}

pub async fn run(options: &ServerOptions, config: &ManyDocsConfig) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &d in &config.docs {
        // A fresh server per size: RSS figures must not carry rooms of the previous size.
        let env = &Env::start(options).await?;
        rows.push(measure(env, d, config).await?);
    }
    Ok(rows)
}

const BLOCKS_PER_CLIENT: usize = 10;

async fn measure(env: &Env, docs: usize, config: &ManyDocsConfig) -> Result<Row> {
    let setup = Instant::now();
    let workspaces = env.tenant.create_workspaces(docs).await?;
    // Per workspace: client A seeds 2 × 10 blocks; A moves the first 10, B the other 10
    // (disjoint, so concurrent moves never overwrite each other and every move is observable).
    let pairs: Vec<(Client, Client, Vec<String>)> =
        stream::iter(workspaces.into_iter().enumerate())
            .map(|(i, ws)| async move {
                let mut a = env.connect(&ws, 2 * i as u64, true).await?;
                let blocks = super::seed_blocks(&mut a, 2 * BLOCKS_PER_CLIENT).await?;
                let b = env.connect(&ws, 2 * i as u64 + 1, false).await?;
                anyhow::Ok((a, b, blocks))
            })
            .buffered(32)
            .try_collect()
            .await
            .context("setting up the workspaces")?;
    let setup_secs = setup.elapsed().as_secs_f64();
    // Let the seeding's compactions finish before measuring.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let before = env.server.probe();
    let bench_cpu = self_cpu_seconds();
    let monitor = env.server.monitor();
    let start = Instant::now() + Duration::from_millis(200);
    let until = start + config.duration;
    let mut rng = rand::thread_rng();
    let mut runs = Vec::with_capacity(docs * 2);
    for (a, b, blocks) in pairs {
        let (mine, theirs) = blocks.split_at(BLOCKS_PER_CLIENT);
        for (client, own) in [(a, mine), (b, theirs)] {
            let phase = rng.gen_range(0..config.interval.as_millis() as u64);
            runs.push((
                client,
                Plan {
                    interval: Some(config.interval),
                    first_at: start + Duration::from_millis(phase),
                    blocks: Arc::new(own.to_vec()),
                    random: true,
                    until,
                    stop: None,
                },
            ));
        }
    }
    // Under overload latency reaches seconds: drain until 3 s of quiet (at most 30 s) so that a
    // late move is not counted as lost. CPU is read at the end of the writing phase.
    let handles = spawn_runs(runs, Duration::from_secs(3), Duration::from_secs(30));
    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
    let after = env.server.probe();
    let bench_cpu = self_cpu_seconds() - bench_cpu;
    let (clients, errors) = join_runs(handles).await;

    let mut latencies = Samples::default();
    for client in &clients {
        latencies.extend(&client.take_latencies());
    }
    let sent: u64 = clients.iter().map(|c| c.moves_sent).sum();
    // Each pair only sees its own workspace's moves.
    let delivered: u64 = clients.chunks(2).map(delivered_moves).sum();
    let lost: u64 = clients.chunks(2).map(lost_moves).sum();
    let diverged = clients.chunks(2).filter(|pair| !converged(pair)).count();
    let closed = clients.iter().filter(|c| !c.is_open()).count();
    let secs = config.duration.as_secs_f64();
    let server_cpu = after.cpu_secs - before.cpu_secs;

    let mut row = Row::new("many-docs", format!("D={docs}"));
    row.set("clients", clients.len() as u64)
        .set("sent", sent)
        .set("delivered", delivered)
        .set("lost", lost)
        .set("errors", (errors.len() + closed) as u64)
        .set("diverged_docs", diverged as u64)
        .latency(&latencies.summary())
        .num("deliveries_per_s", delivered as f64 / secs)
        .num("server_cpu_pct", server_cpu / secs * 100.0)
        .num(
            "pg_cpu_pct",
            (after.pg_cpu_secs - before.pg_cpu_secs) / secs * 100.0,
        )
        .num(
            "cpu_us_per_delivery",
            if delivered > 0 {
                server_cpu * 1e6 / delivered as f64
            } else {
                0.0
            },
        )
        .mib("server_rss_mib", after.rss_kib)
        .mib("peak_rss_mib", monitor.peak_rss_kib())
        .mib("pg_pss_mib", after.pg_pss_kib)
        .mib("peak_pg_pss_mib", monitor.peak_pg_pss_kib())
        .mib("pg_rss_sum_mib", after.pg_rss_kib)
        .num("bench_cpu_pct", bench_cpu / secs * 100.0)
        .num("setup_s", setup_secs);
    close_with_notes(&mut row, lost, clients, &errors).await;
    Ok(row)
}
