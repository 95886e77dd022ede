//! `connections`: ramp to 10,000 concurrent connections over 1,000 workspaces while a light
//! update stream runs (in every workspace its first client moves a block every 5 s); after each
//! step the p99 latency of that stream is measured over a window. Reports when p99 crosses 50 ms.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::Rng;

use super::{seed_blocks, Env};
use crate::client::{Client, LatencyHandle, Plan};
use crate::report::Row;
use crate::server::{self_cpu_seconds, ServerOptions};
use crate::stats::Samples;

#[derive(Debug, Clone)]
pub struct ConnectionsConfig {
    pub connections: usize,
    pub workspaces: usize,
    /// Each workspace's writer moves a block this often.
    pub interval: Duration,
    /// Latency measurement window after each step.
    pub window: Duration,
    pub threshold_ms: f64,
}

struct Running {
    handles: Vec<LatencyHandle>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    failed: Arc<AtomicUsize>,
}

impl Running {
    /// Runs `client` on its own task with `plan` (reading continuously) until told to stop.
    fn spawn(&mut self, mut client: Client, plan: Plan) {
        self.handles.push(client.latency_handle());
        let failed = self.failed.clone();
        self.tasks.push(tokio::spawn(async move {
            if client.run(&plan).await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            client.close().await;
        }));
    }

    fn take_latencies(&self) -> Samples {
        let mut all = Samples::default();
        for handle in &self.handles {
            all.extend(&handle.take());
        }
        all
    }
}

pub async fn run(options: &ServerOptions, config: &ConnectionsConfig) -> Result<Vec<Row>> {
    let env = &Env::start(options).await?;
    let w = config.workspaces.max(1);
    let per_ws_max = (config.connections / w).max(2);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    let mut running = Running {
        handles: Vec::new(),
        tasks: Vec::new(),
        failed: Arc::default(),
    };

    // Step 0: every workspace gets its writer, which seeds 5 blocks and then moves them.
    let setup = Instant::now();
    let workspaces = env.tenant.create_workspaces(w).await?;
    let writers: Vec<(Client, Vec<String>)> = stream::iter(workspaces.iter().enumerate())
        .map(|(i, ws)| async move {
            let mut client = env.connect(ws, i as u64, true).await?;
            let blocks = seed_blocks(&mut client, 5).await?;
            anyhow::Ok((client, blocks))
        })
        .buffered(64)
        .try_collect()
        .await
        .context("seeding workspaces")?;
    let mut rng = rand::thread_rng();
    let now = Instant::now();
    for (client, blocks) in writers {
        let phase = Duration::from_millis(rng.gen_range(0..config.interval.as_millis() as u64));
        running.spawn(
            client,
            Plan {
                interval: Some(config.interval),
                first_at: now + phase,
                blocks: Arc::new(blocks),
                random: true,
                until: far,
                stop: Some(stop_rx.clone()),
            },
        );
    }
    let setup_secs = setup.elapsed().as_secs_f64();

    let mut rows = Vec::new();
    let mut crossed: Option<usize> = None;
    for per_ws in 2..=per_ws_max {
        let step_started = Instant::now();
        let targets: Vec<(String, u64)> = workspaces
            .iter()
            .enumerate()
            .map(|(i, ws)| (ws.clone(), (per_ws * w + i) as u64))
            .collect();
        let connected: Result<Vec<Client>> = stream::iter(targets)
            .map(|(ws, id)| async move { env.connect(&ws, id, false).await })
            .buffer_unordered(64)
            .try_collect()
            .await;
        let connect_secs = step_started.elapsed().as_secs_f64();
        let clients = match connected {
            Ok(clients) => clients,
            Err(e) => {
                let mut row = Row::new("connections", format!("{} (failed)", per_ws * w));
                row.note(format!("ramp stopped: {e:#}"));
                rows.push(row);
                break;
            }
        };
        for client in clients {
            running.spawn(client, super::reader_plan(far).with_stop(stop_rx.clone()));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = running.take_latencies();
        let before = env.server.probe();
        let bench_cpu = self_cpu_seconds();
        tokio::time::sleep(config.window).await;
        let latencies = running.take_latencies();
        let after = env.server.probe();
        let bench_cpu = self_cpu_seconds() - bench_cpu;
        let secs = config.window.as_secs_f64();
        let summary = latencies.summary();

        let total = per_ws * w;
        let mut row = Row::new("connections", format!("{total}"));
        row.set("connections", total as u64)
            .set("workspaces", w as u64)
            .latency(&summary)
            .set("deliveries", latencies.len() as u64)
            .set(
                "failed_clients",
                running.failed.load(Ordering::Relaxed) as u64,
            )
            .num(
                "server_cpu_pct",
                (after.cpu_secs - before.cpu_secs) / secs * 100.0,
            )
            .num(
                "pg_cpu_pct",
                (after.pg_cpu_secs - before.pg_cpu_secs) / secs * 100.0,
            )
            .num("bench_cpu_pct", bench_cpu / secs * 100.0)
            .mib("server_rss_mib", after.rss_kib)
            .mib("pg_pss_mib", after.pg_pss_kib)
            .num("step_connect_s", connect_secs);
        if per_ws == 2 {
            row.num("setup_s", setup_secs);
        }
        if crossed.is_none() && summary.p99_ms > config.threshold_ms {
            crossed = Some(total);
            row.note(format!("p99 crossed {} ms here", config.threshold_ms));
        }
        rows.push(row);
    }
    let mut summary = Row::new("connections", "summary");
    summary.set(
        "p99_crosses_threshold_at",
        crossed.map_or_else(|| "never".to_string(), |c| c.to_string()),
    );
    rows.push(summary);

    let _ = stop_tx.send(true);
    for task in running.tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    Ok(rows)
}
