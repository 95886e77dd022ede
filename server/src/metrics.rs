//! Prometheus metrics, served as text at `GET /metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the server exports. Cheap to clone (each metric is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub rooms_loaded: IntGauge,
    pub connections: IntGauge,
    pub updates_received: IntCounter,
    /// One per update frame delivered to one peer.
    pub updates_broadcast: IntCounter,
    pub log_append_seconds: Histogram,
    pub log_append_failures: IntCounter,
    /// Rooms closed because another node took their workspace's lease (DESIGN §7).
    pub leases_lost: IntCounter,
    /// Live sockets relayed to the node that owns their workspace.
    pub relayed_connections: IntGauge,
    /// HTTP requests forwarded to the node that owns their workspace.
    pub forwarded_requests: IntCounter,
    /// Workspaces whose batches went into one log commit (group commit across rooms).
    pub log_commit_workspaces: Histogram,
    pub compaction_seconds: Histogram,
    /// Compactions skipped because the full state would not rebuild the live document.
    pub compactions_refused: IntCounter,
    /// Log entries not yet folded into a snapshot, summed over loaded rooms.
    pub compaction_lag_entries: IntGauge,
    pub slow_consumers_closed: IntCounter,
    pub malformed_messages: IntCounter,
    /// Entities that could not be projected as they are, by kind, summed over loaded rooms.
    pub projection_conflicts: IntGaugeVec,
    pub ws_closed: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("nox".into()), None)
            .expect("a constant prefix is a valid registry");
        let fast_buckets = vec![
            0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        let m = Metrics {
            rooms_loaded: IntGauge::new("rooms_loaded", "Workspace rooms in memory")
                .expect("valid metric"),
            connections: IntGauge::new("connections", "Open WebSocket connections")
                .expect("valid metric"),
            updates_received: IntCounter::new(
                "updates_received_total",
                "Document updates received from clients",
            )
            .expect("valid metric"),
            updates_broadcast: IntCounter::new(
                "updates_broadcast_total",
                "Document update frames delivered to peers",
            )
            .expect("valid metric"),
            log_append_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "log_append_seconds",
                    "Time to append a batch to the update log",
                )
                .buckets(fast_buckets.clone()),
            )
            .expect("valid metric"),
            log_append_failures: IntCounter::new(
                "log_append_failures_total",
                "Update log appends that failed (their updates were not broadcast)",
            )
            .expect("valid metric"),
            leases_lost: IntCounter::new(
                "leases_lost_total",
                "Rooms closed because another node took over their workspace",
            )
            .expect("valid metric"),
            relayed_connections: IntGauge::new(
                "relayed_connections",
                "Open sockets relayed to the node that owns their workspace",
            )
            .expect("valid metric"),
            forwarded_requests: IntCounter::new(
                "forwarded_requests_total",
                "HTTP requests forwarded to the node that owns their workspace",
            )
            .expect("valid metric"),
            log_commit_workspaces: Histogram::with_opts(
                HistogramOpts::new(
                    "log_commit_workspaces",
                    "Workspaces whose update batches were written by one log commit",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            )
            .expect("valid metric"),
            compaction_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "compaction_seconds",
                    "Duration of one compaction + projection",
                )
                .buckets(fast_buckets),
            )
            .expect("valid metric"),
            compactions_refused: IntCounter::new(
                "compactions_refused_total",
                "Compactions skipped (log kept) because the full state would not rebuild the live document",
            )
            .expect("valid metric"),
            compaction_lag_entries: IntGauge::new(
                "compaction_lag_entries",
                "Update log entries not yet compacted into snapshots",
            )
            .expect("valid metric"),
            slow_consumers_closed: IntCounter::new(
                "slow_consumers_closed_total",
                "Connections closed with 1013 because they fell behind",
            )
            .expect("valid metric"),
            malformed_messages: IntCounter::new(
                "malformed_messages_total",
                "WebSocket messages that could not be decoded",
            )
            .expect("valid metric"),
            projection_conflicts: IntGaugeVec::new(
                Opts::new(
                    "projection_conflicts",
                    "Entities that could not be projected as they are, by kind",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            ws_closed: IntCounterVec::new(
                Opts::new(
                    "ws_closed_total",
                    "WebSocket connections closed, by close code",
                ),
                &["code"],
            )
            .expect("valid metric"),
            registry,
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.rooms_loaded.clone()),
            Box::new(self.connections.clone()),
            Box::new(self.updates_received.clone()),
            Box::new(self.updates_broadcast.clone()),
            Box::new(self.log_append_seconds.clone()),
            Box::new(self.log_append_failures.clone()),
            Box::new(self.leases_lost.clone()),
            Box::new(self.relayed_connections.clone()),
            Box::new(self.forwarded_requests.clone()),
            Box::new(self.log_commit_workspaces.clone()),
            Box::new(self.compaction_seconds.clone()),
            Box::new(self.compactions_refused.clone()),
            Box::new(self.compaction_lag_entries.clone()),
            Box::new(self.slow_consumers_closed.clone()),
            Box::new(self.malformed_messages.clone()),
            Box::new(self.projection_conflicts.clone()),
            Box::new(self.ws_closed.clone()),
        ];
        for c in collectors {
            self.registry
                .register(c)
                .expect("each metric is registered once");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.connections.inc();
        m.projection_conflicts
            .with_label_values(&["parent_cycle"])
            .set(2);
        let text = m.render();
        for name in [
            "nox_rooms_loaded",
            "nox_connections 1",
            "nox_updates_received_total",
            "nox_log_append_seconds_bucket",
            "nox_compaction_lag_entries",
            "nox_projection_conflicts{kind=\"parent_cycle\"} 2",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
