//! `join-storm`: 150 clients join a 5 MB workspace at the same instant; time until all are synced,
//! and peak server RSS. Run against the loaded room (its writer still connected) and, after a
//! restart, against a cold one (the first joiner's arrival loads it from storage).
//!
//! The joiners time the arrival of the server's SyncStep2 without decoding it: 150 decodes of
//! 5 MB would measure the load generator, not the server. One extra client applies the full
//! state afterwards to check the content.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use super::Env;
use crate::client::{self, Client};
use crate::report::Row;
use crate::server::ServerOptions;
use crate::stats::Samples;

#[derive(Debug, Clone)]
pub struct JoinStormConfig {
    pub clients: usize,
    pub doc_mib: f64,
}

const BLOCK_TEXT_BYTES: usize = 1000;

pub async fn run(options: &ServerOptions, config: &JoinStormConfig) -> Result<Vec<Row>> {
    let mut env = Env::start(options).await?;
    let (ws, mut writer, block_count, doc_bytes) = build_document(&env, config.doc_mib).await?;
    let expected = writer.canvas_json();

    let mut rows = Vec::new();
    let mut row = storm(&env, &ws, config, "warm room").await?;
    verify(&env, &ws, &expected, block_count, &mut row).await?;
    row.num("doc_mib", doc_bytes as f64 / 1024.0 / 1024.0);
    rows.push(row);

    writer.close().await;
    if options.url.is_some() {
        // An external server cannot be restarted: no cold case.
        return Ok(rows);
    }
    env.server.restart().await?;
    let mut row = storm(&env, &ws, config, "cold room (after restart)").await?;
    verify(&env, &ws, &expected, block_count, &mut row).await?;
    row.num("doc_mib", doc_bytes as f64 / 1024.0 / 1024.0);
    rows.push(row);
    env.server.stop().await?;
    Ok(rows)
}

/// A workspace of `mib` MiB (encoded state): blocks carrying ~1 KB of text in their config.
async fn build_document(env: &Env, mib: f64) -> Result<(String, Client, usize, usize)> {
    let ws = env.tenant.create_workspace().await?;
    let mut writer = env.connect(&ws, 0, true).await?;
    let blocks = ((mib * 1024.0 * 1024.0) / (BLOCK_TEXT_BYTES as f64 + 130.0)).ceil() as usize;
    let ids = client::block_ids(blocks);
    for (chunk_no, chunk) in ids.chunks(250).enumerate() {
        writer
            .edit(|txn| {
                for (k, id) in chunk.iter().enumerate() {
                    let i = chunk_no * 250 + k;
                    let text: String = (0..BLOCK_TEXT_BYTES)
                        .map(|j| char::from(b'a' + ((i * 7 + j * 13) % 26) as u8))
                        .collect();
                    let fields = json!({
                        "type": "document",
                        "name": format!("Doc block {i}"),
                        "config": {"text": text},
                        "visual": {"x": (i % 100) as f64 * 40.0, "y": (i / 100) as f64 * 40.0},
                    });
                    nox_sync_protocol::canvas::put_block(
                        txn,
                        id,
                        fields.as_object().context("fields")?,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Ok(())
            })
            .await?;
        writer.pump_for(Duration::from_millis(1)).await;
    }
    writer.wait_acked(Duration::from_secs(300)).await?;
    let doc_bytes = writer.state_len();
    Ok((ws, writer, blocks, doc_bytes))
}

async fn storm(env: &Env, ws: &str, config: &JoinStormConfig, case: &str) -> Result<Row> {
    let url = env.url(ws, false);
    let monitor = env.server.monitor();
    let before = env.server.probe();
    // Every joiner waits for the gate; its time is measured from the instant the gate opened.
    let (gate_tx, gate_rx) = tokio::sync::watch::channel::<Option<Instant>>(None);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..config.clients {
        let (url, mut gate, stop, done) = (
            url.clone(),
            gate_rx.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let opened = match gate.wait_for(Option::is_some).await {
                Ok(opened) => *opened,
                Err(_) => return,
            };
            let started = opened.unwrap_or_else(Instant::now);
            let result = async {
                let mut client = Client::connect(&url, 1000 + i as u64, false).await?;
                client.wait_synced(Duration::from_secs(120)).await?;
                anyhow::Ok(client)
            }
            .await;
            match result {
                Ok(mut client) => {
                    let _ = done.send(Ok((started.elapsed(), client.sync_bytes)));
                    // Stay connected and reading until the storm is over.
                    let plan = super::reader_plan(Instant::now() + Duration::from_secs(600))
                        .with_stop(stop);
                    let _ = client.run(&plan).await;
                    client.close().await;
                }
                Err(e) => {
                    let _ = done.send(Err(format!("{e:#}")));
                }
            }
        }));
    }
    drop(done_tx);
    // Let every task reach the gate, then open it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let _ = gate_tx.send(Some(started));
    let mut times = Samples::default();
    let mut errors = Vec::new();
    let mut bytes = Vec::new();
    let collect = async {
        while let Some(result) = done_rx.recv().await {
            match result {
                Ok((elapsed, b)) => {
                    times.push(elapsed.as_nanos() as u64);
                    bytes.push(b);
                }
                Err(e) => errors.push(e),
            }
            if times.len() + errors.len() == config.clients {
                break;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(180), collect)
        .await
        .is_err()
    {
        errors.push("storm did not finish within 180 s".into());
    }
    let all_synced = started.elapsed();
    let after = env.server.probe();
    // Still connected, idle: what does the server keep per joiner once the storm is over?
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = env.server.probe();
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }

    let summary = times.summary();
    let mut row = Row::new("join-storm", case);
    row.set("clients", config.clients as u64)
        .set("synced", times.len() as u64)
        .set("errors", errors.len() as u64)
        .num("all_synced_ms", all_synced.as_secs_f64() * 1e3)
        .num("p50_ms", summary.p50_ms)
        .num("p99_ms", summary.p99_ms)
        .num("server_cpu_s", after.cpu_secs - before.cpu_secs)
        .mib("peak_rss_mib", monitor.peak_rss_kib())
        .mib("rss_before_mib", before.rss_kib)
        .mib("rss_2s_after_mib", settled.rss_kib);
    if bytes.iter().any(|b| *b != bytes[0]) {
        row.note("joiners received different state sizes");
    }
    for e in errors.iter().take(3) {
        row.note(e.clone());
    }
    Ok(row)
}

/// A fresh, fully applying client must hold exactly what was written.
async fn verify(env: &Env, ws: &str, expected: &str, blocks: usize, row: &mut Row) -> Result<()> {
    let mut client = env.connect(ws, 999, false).await?;
    let ok = client.counts().0 == blocks && client.canvas_json() == expected;
    row.set("content_ok", ok);
    if !ok {
        row.note(format!(
            "verification client saw {} blocks, expected {blocks}",
            client.counts().0
        ));
    }
    client.close().await;
    Ok(())
}
