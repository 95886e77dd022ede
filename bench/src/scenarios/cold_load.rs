//! `cold-load`: a workspace with 10,000 blocks + 10,000 relations written through the protocol;
//! restart the server; time for a fresh client to hold the complete content, and peak RSS.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;

use super::Env;
use crate::client::{self, Client};
use crate::report::Row;
use crate::server::ServerOptions;

#[derive(Debug, Clone)]
pub struct ColdLoadConfig {
    pub blocks: usize,
    pub relations: usize,
    /// Entities per update while writing (one transaction each).
    pub batch: usize,
    /// Fresh-client loads measured after the restart (the first is the cold one).
    pub loads: usize,
}

pub async fn run(options: &ServerOptions, config: &ColdLoadConfig) -> Result<Vec<Row>> {
    if options.url.is_some() {
        bail!("cold-load restarts the server; it cannot use --server-url");
    }
    let mut env = Env::start(options).await?;
    let ws = env.tenant.create_workspace().await?;

    // Write the content through the protocol, durably acknowledged.
    let write_started = Instant::now();
    let mut writer = env.connect(&ws, 0, true).await?;
    let ids = write_content(&mut writer, config).await?;
    let write_secs = write_started.elapsed().as_secs_f64();
    let expected = writer.canvas_json();
    let doc_bytes = writer.state_len();
    writer.close().await;
    drop(ids);
    let rss_loaded = env.server.probe().rss_kib;

    // Graceful restart: the room compacts on shutdown; the new process starts with no rooms.
    let restart = env.server.restart().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_fresh = env.server.probe().rss_kib;

    let mut rows = Vec::new();
    for i in 0..config.loads {
        let monitor = env.server.monitor();
        let started = Instant::now();
        let mut client = Client::connect(&env.url(&ws, false), 100 + i as u64, true).await?;
        let connected = started.elapsed();
        client.wait_synced(Duration::from_secs(120)).await?;
        let received = client
            .sync_received_at
            .map_or(Duration::ZERO, |at| at - started);
        let synced = client.synced_at.map_or(Duration::ZERO, |at| at - started);
        let (blocks, relations) = client.counts();
        let complete = blocks == config.blocks && relations == config.relations;
        let identical = client.canvas_json() == expected;
        tokio::time::sleep(Duration::from_millis(300)).await;

        let mut row = Row::new(
            "cold-load",
            if i == 0 {
                "after restart (cold room)".to_string()
            } else {
                format!("fresh client #{} (warm room)", i + 1)
            },
        );
        row.set("blocks", blocks as u64)
            .set("relations", relations as u64)
            .set("complete", complete && identical)
            .num("total_ms", synced.as_secs_f64() * 1e3)
            .num("handshake_ms", connected.as_secs_f64() * 1e3)
            .num("to_sync_frame_ms", received.as_secs_f64() * 1e3)
            .num("client_apply_ms", (synced - received).as_secs_f64() * 1e3)
            .num("doc_kib", doc_bytes as f64 / 1024.0)
            .set("sync_bytes", client.sync_bytes as u64)
            .mib("peak_rss_mib", monitor.peak_rss_kib());
        if i == 0 {
            row.num("write_s", write_secs)
                .num("restart_s", restart.as_secs_f64())
                .mib("rss_before_restart_mib", rss_loaded)
                .mib("rss_fresh_mib", rss_fresh);
        }
        if !complete {
            row.note(format!(
                "incomplete: {blocks} blocks / {relations} relations, expected {} / {}",
                config.blocks, config.relations
            ));
        } else if !identical {
            row.note("content differs from what was written");
        }
        rows.push(row);
        client.close().await;
    }
    env.server.stop().await?;
    Ok(rows)
}

/// Blocks in batches, then relations chaining them, each batch one update; waits for acks.
pub(super) async fn write_content(
    writer: &mut Client,
    config: &ColdLoadConfig,
) -> Result<Vec<String>> {
    let ids = client::block_ids(config.blocks);
    ensure!(
        !ids.is_empty() || config.relations == 0,
        "relations need blocks"
    );
    for (chunk_no, chunk) in ids.chunks(config.batch.max(1)).enumerate() {
        let base = chunk_no * config.batch.max(1);
        writer
            .edit(|txn| {
                for (k, id) in chunk.iter().enumerate() {
                    let fields = client::block_fields(base + k);
                    let fields = fields.as_object().context("fields")?;
                    nox_sync_protocol::canvas::put_block(txn, id, fields)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Ok(())
            })
            .await?;
        // Keep reading so the server never sees us as a slow consumer.
        writer.pump_for(Duration::from_millis(1)).await;
    }
    let relation_ids = client::block_ids(config.relations);
    for (chunk_no, chunk) in relation_ids.chunks(config.batch.max(1)).enumerate() {
        let base = chunk_no * config.batch.max(1);
        writer
            .edit(|txn| {
                for (k, id) in chunk.iter().enumerate() {
                    let i = base + k;
                    let fields = json!({
                        "source_block_id": ids[i % ids.len()],
                        "target_block_id": ids[(i + 1) % ids.len()],
                        "type": "depends_on",
                        "visual": {"style": "solid"},
                    });
                    let fields = fields.as_object().context("fields")?;
                    nox_sync_protocol::canvas::put_relation(txn, id, fields)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Ok(())
            })
            .await?;
        writer.pump_for(Duration::from_millis(1)).await;
    }
    writer.wait_acked(Duration::from_secs(300)).await?;
    Ok(ids)
}
