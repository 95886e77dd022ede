//! The process's duties as a cluster node (DESIGN §7): heartbeats, and the cluster bus.
//!
//! - Every [`Cluster::heartbeat_interval`] the node renews its heartbeat (which keeps its leases)
//!   and learns which leases it still holds; a room whose lease another node took while this one
//!   could not reach the database is closed (`RoomRegistry::keep_only_held`). With other nodes
//!   alive it also reports its open connections per organization, so the connections quota
//!   counts the whole cluster.
//! - One connection `LISTEN`s on the bus and hands each message from another node to the part it
//!   is for: rights re-checks to the live registry, events to the workspace's room. Messages sent
//!   while the connection was down are lost; sockets still re-check every minute, and events
//!   describe rows already committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::access::{LiveAccess, Scope};
use crate::cluster::{BusMessage, Cluster, BUS_CHANNEL};
use crate::rooms::{EventAudience, RoomRegistry};
use crate::state::AppState;

/// How long a lost bus connection waits before listening again.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// The node's background tasks; stopped at shutdown before the node leaves the cluster.
pub struct NodeTasks {
    tasks: Vec<JoinHandle<()>>,
}

impl NodeTasks {
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

pub fn spawn(state: &AppState) -> NodeTasks {
    let heartbeats = tokio::spawn(heartbeats(
        state.cluster.clone(),
        state.rooms.clone(),
        state.live.clone(),
    ));
    let bus = tokio::spawn(listen(state.clone()));
    NodeTasks {
        tasks: vec![heartbeats, bus],
    }
}

async fn heartbeats(cluster: Arc<Cluster>, rooms: Arc<RoomRegistry>, live: Arc<LiveAccess>) {
    let mut every = tokio::time::interval(cluster.heartbeat_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let asked_at = Instant::now();
        match cluster.heartbeat().await {
            Ok(held) => rooms.keep_only_held(&held, asked_at).await,
            Err(err) => {
                tracing::warn!(error = %err, "heartbeat failed");
                continue;
            }
        }
        // Only worth a statement when another node counts them.
        if cluster.has_others() {
            if let Err(err) = cluster.report_connections(&live.count_by_org()).await {
                tracing::warn!(error = %err, "could not report this node's connections");
            }
        }
    }
}

async fn listen(state: AppState) {
    loop {
        match nox_persistence::cluster::listen(state.db.pool(), &[BUS_CHANNEL]).await {
            Ok(mut listener) => loop {
                match listener.recv().await {
                    Ok(notification) => {
                        if let Some(message) = state.cluster.receive(notification.payload()).await {
                            dispatch(&state, message).await;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cluster bus connection lost");
                        break;
                    }
                }
            },
            Err(err) => tracing::warn!(error = %err, "cannot listen on the cluster bus"),
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
}

async fn dispatch(state: &AppState, message: BusMessage) {
    match message {
        BusMessage::Recheck { scope } => match serde_json::from_value::<Scope>(scope) {
            Ok(scope) => {
                state.live.recheck_local(scope);
            }
            Err(err) => tracing::warn!(error = %err, "ignoring a re-check of unknown scope"),
        },
        BusMessage::RoomEvent {
            workspace_id,
            event,
            audience,
        } => {
            if let Some(audience) = EventAudience::parse(&audience) {
                state
                    .rooms
                    .broadcast_local(workspace_id, event, audience)
                    .await;
            }
        }
    }
}
