//! `fanout`: one workspace, N clients; one writer moves a block every 20 ms for 10 s and every
//! other client measures receive − send.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{
    close_with_notes, converged, delivered_moves, join_runs, lost_moves, reader_plan, spawn_runs,
    Env,
};
use crate::client::Plan;
use crate::report::Row;
use crate::server::{self_cpu_seconds, ServerOptions};
use crate::stats::Samples;

#[derive(Debug, Clone)]
pub struct FanoutConfig {
    pub sizes: Vec<usize>,
    pub duration: Duration,
    pub interval: Duration,
}

pub async fn run(options: &ServerOptions, config: &FanoutConfig) -> Result<Vec<Row>> {
    let env = Env::start(options).await?;
    let mut rows = Vec::new();
    for &n in &config.sizes {
        rows.push(measure(&env, "fanout", &format!("N={n}"), n, config).await?);
    }
    Ok(rows)
}

/// One fanout case on a fresh workspace of `env`'s server.
pub async fn measure(
    env: &Env,
    scenario: &str,
    case: &str,
    n: usize,
    config: &FanoutConfig,
) -> Result<Row> {
    measure_across(env, env, scenario, case, n, config).await
}

/// One fanout case whose writer connects to `writer_env`'s server (which loads the workspace and
/// so owns it) and whose readers connect to `reader_env`'s (the same server, or another node of
/// its cluster that relays them). Process figures are `writer_env`'s server's.
pub async fn measure_across(
    writer_env: &Env,
    reader_env: &Env,
    scenario: &str,
    case: &str,
    n: usize,
    config: &FanoutConfig,
) -> Result<Row> {
    let env = writer_env;
    let n = n.max(2);
    // The writer seeds 64 blocks and moves them round-robin (consecutive moves touch different
    // blocks, so even a server that merges a batch keeps every move observable).
    let (ws, writer, blocks) = env.seeded_workspace(64, 0).await?;
    let targets = (1..n as u64).map(|id| (ws.clone(), id)).collect();
    let readers = reader_env.connect_many(targets, 32).await?;

    let before = env.server.probe();
    let bench_cpu = self_cpu_seconds();
    let monitor = env.server.monitor();
    let start = Instant::now() + Duration::from_millis(200);
    let until = start + config.duration;
    let writer_plan = Plan {
        interval: Some(config.interval),
        first_at: start,
        blocks: Arc::new(blocks),
        random: false,
        until,
        stop: None,
    };
    let mut runs = vec![(writer, writer_plan)];
    runs.extend(readers.into_iter().map(|c| (c, reader_plan(until))));
    let handles = spawn_runs(runs, Duration::from_secs(1), Duration::from_secs(10));
    let (clients, errors) = join_runs(handles).await;
    let after = env.server.probe();
    let bench_cpu = self_cpu_seconds() - bench_cpu;

    let mut latencies = Samples::default();
    for client in &clients {
        latencies.extend(&client.take_latencies());
    }
    let sent = clients.iter().map(|c| c.moves_sent).sum::<u64>();
    let delivered = delivered_moves(&clients);
    let lost = lost_moves(&clients);
    let server_cpu = after.cpu_secs - before.cpu_secs;
    let secs = config.duration.as_secs_f64();

    let mut row = Row::new(scenario, case);
    row.set("clients", n as u64)
        .set("sent", sent)
        .set("delivered", delivered)
        .set("lost", lost)
        .set("converged", converged(&clients))
        .latency(&latencies.summary())
        .num("deliveries_per_s", delivered as f64 / secs)
        .num("server_cpu_s", server_cpu)
        .num("pg_cpu_s", after.pg_cpu_secs - before.pg_cpu_secs)
        .num(
            "cpu_us_per_delivery",
            if delivered > 0 {
                server_cpu * 1e6 / delivered as f64
            } else {
                0.0
            },
        )
        .num("bench_cpu_s", bench_cpu)
        .mib("peak_rss_mib", monitor.peak_rss_kib());
    close_with_notes(&mut row, lost, clients, &errors).await;
    Ok(row)
}
