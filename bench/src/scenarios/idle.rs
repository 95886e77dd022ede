//! `idle`: server RSS per loaded workspace and per extra connection.
//!
//! Baseline RSS; then W workspaces are loaded, each by one connection that wrote a small canvas
//! (10 blocks); then C extra connections join those workspaces. Every step settles (compaction
//! done, allocator quiet) before RSS is read.

use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::{stream, StreamExt, TryStreamExt};

use super::{seed_blocks, Env};
use crate::client::Client;
use crate::report::Row;
use crate::server::ServerOptions;

#[derive(Debug, Clone)]
pub struct IdleConfig {
    pub workspaces: usize,
    pub extra_connections: usize,
    pub blocks: usize,
}

/// Waits for the server to settle and returns its RSS (KiB).
async fn settled_rss(env: &Env, wait: Duration) -> u64 {
    tokio::time::sleep(wait).await;
    env.server.probe().rss_kib
}

pub async fn run(options: &ServerOptions, config: &IdleConfig) -> Result<Vec<Row>> {
    // Rooms of workspaces must stay loaded while their connections idle.
    let env = &Env::start(options).await?;
    let workspaces = env.tenant.create_workspaces(config.workspaces).await?;
    // One warm-up workspace so lazily built server state (pools, caches) is in the baseline.
    let (_, mut warm, _) = env.seeded_workspace(config.blocks, u64::MAX).await?;
    let baseline = settled_rss(env, Duration::from_secs(5)).await;

    let loaders: Vec<Client> = stream::iter(workspaces.iter().enumerate())
        .map(|(i, ws)| async move {
            let mut client = env.connect(ws, i as u64, true).await?;
            seed_blocks(&mut client, config.blocks).await?;
            anyhow::Ok(client)
        })
        .buffered(32)
        .try_collect()
        .await
        .context("loading workspaces")?;
    // Spawn readers so the clients keep draining their sockets while we wait.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let spawn_idle = |mut client: Client, stop: tokio::sync::watch::Receiver<bool>| {
        tokio::spawn(async move {
            let mut plan =
                super::reader_plan(std::time::Instant::now() + Duration::from_secs(3600));
            plan.stop = Some(stop);
            let _ = client.run(&plan).await;
            client
        })
    };
    for client in loaders {
        tasks.push(spawn_idle(client, stop_rx.clone()));
    }
    // Compaction runs every few seconds after writes; wait it out.
    let with_workspaces = settled_rss(env, Duration::from_secs(8)).await;

    let targets: Vec<(String, u64)> = (0..config.extra_connections)
        .map(|i| {
            (
                workspaces[i % workspaces.len()].clone(),
                1_000_000 + i as u64,
            )
        })
        .collect();
    let extra = env.connect_many(targets, 64).await?;
    for client in extra {
        tasks.push(spawn_idle(client, stop_rx.clone()));
    }
    let with_connections = settled_rss(env, Duration::from_secs(5)).await;
    let pg = env.server.probe();

    let _ = stop_tx.send(true);
    for task in tasks {
        if let Ok(mut client) = task.await {
            client.close().await;
        }
    }
    warm.close().await;

    let w = config.workspaces.max(1) as f64;
    let c = config.extra_connections.max(1) as f64;
    let per_conn = (with_connections as f64 - with_workspaces as f64) / c;
    let per_ws_incl_conn = (with_workspaces as f64 - baseline as f64) / w;
    let mut row = Row::new(
        "idle",
        format!(
            "{} ws + {} conns",
            config.workspaces, config.extra_connections
        ),
    );
    row.set("workspaces", config.workspaces as u64)
        .set("extra_connections", config.extra_connections as u64)
        .set("blocks_per_ws", config.blocks as u64)
        .mib("baseline_rss_mib", baseline)
        .mib("rss_with_ws_mib", with_workspaces)
        .mib("rss_with_conns_mib", with_connections)
        .num("kib_per_ws_incl_1_conn", per_ws_incl_conn)
        .num("kib_per_ws", per_ws_incl_conn - per_conn)
        .num("kib_per_conn", per_conn)
        .mib("pg_pss_mib", pg.pg_pss_kib);
    Ok(vec![row])
}
