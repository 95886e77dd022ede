//! The scenarios of issue 6, one module each, and what they share: a server with a signed-up
//! tenant, connecting many clients, seeding documents, checking loss and convergence.

pub mod cold_load;
pub mod connections;
pub mod durability;
pub mod fanout;
pub mod idle;
pub mod join_storm;
pub mod many_docs;
pub mod multinode;
pub mod versions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{stream, StreamExt};
use serde_json::Value;

use crate::api::Tenant;
use crate::client::{self, Client};
use crate::report::Row;
use crate::server::{Server, ServerOptions};

/// A running server plus the bench's tenant on it.
pub struct Env {
    pub server: Server,
    pub tenant: Tenant,
}

impl Env {
    pub async fn start(options: &ServerOptions) -> Result<Self> {
        let server = Server::start(options).await?;
        let tenant = Tenant::sign_up(&server.base_url)
            .await
            .context("signing up the bench tenant")?;
        Ok(Env { server, tenant })
    }

    pub fn url(&self, workspace: &str, acks: bool) -> String {
        self.server.ws_url(workspace, &self.tenant.token, acks)
    }

    /// Connects one client and waits for its initial sync.
    pub async fn connect(&self, workspace: &str, writer_id: u64, acks: bool) -> Result<Client> {
        let mut client = Client::connect(&self.url(workspace, acks), writer_id, true).await?;
        client.wait_synced(SYNC_TIMEOUT).await?;
        Ok(client)
    }

    /// Connects `(workspace, writer id)` pairs, `parallel` handshakes at a time, each synced.
    pub async fn connect_many(
        &self,
        targets: Vec<(String, u64)>,
        parallel: usize,
    ) -> Result<Vec<Client>> {
        let results: Vec<Result<Client>> = stream::iter(targets)
            .map(|(ws, id)| async move { self.connect(&ws, id, false).await })
            .buffered(parallel)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Creates a workspace whose first client (kept, with acks) wrote `blocks` blocks durably.
    pub async fn seeded_workspace(
        &self,
        blocks: usize,
        writer_id: u64,
    ) -> Result<(String, Client, Vec<String>)> {
        let ws = self.tenant.create_workspace().await?;
        let mut writer = self.connect(&ws, writer_id, true).await?;
        let ids = seed_blocks(&mut writer, blocks).await?;
        Ok((ws, writer, ids))
    }
}

pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes `n` blocks in one transaction and waits until they are durable. Returns their ids.
pub async fn seed_blocks(client: &mut Client, n: usize) -> Result<Vec<String>> {
    let ids = client::block_ids(n);
    let fields: Vec<Value> = (0..n).map(client::block_fields).collect();
    client
        .edit(|txn| {
            for (id, f) in ids.iter().zip(&fields) {
                let f = f.as_object().context("fields")?;
                nox_sync_protocol::canvas::put_block(txn, id, f)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(())
        })
        .await?;
    client.wait_acked(Duration::from_secs(60)).await?;
    Ok(ids)
}

/// Spawns each client's measured phase on its own task; after the phase it keeps reading until
/// quiet (so in-flight updates arrive), then hands the client back.
pub fn spawn_runs(
    clients: Vec<(Client, crate::client::Plan)>,
    quiet: Duration,
    max_drain: Duration,
) -> Vec<tokio::task::JoinHandle<(Client, Option<String>)>> {
    clients
        .into_iter()
        .map(|(mut client, plan)| {
            tokio::spawn(async move {
                let error = client.run(&plan).await.err().map(|e| format!("{e:#}"));
                if error.is_none() {
                    client.drain(quiet, max_drain).await;
                }
                client.set_measuring(false);
                (client, error)
            })
        })
        .collect()
}

/// Waits for the spawned runs; returns the clients and the errors seen.
pub async fn join_runs(
    handles: Vec<tokio::task::JoinHandle<(Client, Option<String>)>>,
) -> (Vec<Client>, Vec<String>) {
    let mut clients = Vec::with_capacity(handles.len());
    let mut errors = Vec::new();
    for handle in handles {
        match handle.await {
            Ok((client, error)) => {
                errors.extend(error);
                clients.push(client);
            }
            Err(e) => errors.push(format!("client task failed: {e}")),
        }
    }
    (clients, errors)
}

/// Notes on `row` what went wrong in a run (lost moves, closed connections, the first errors),
/// then closes every client.
pub async fn close_with_notes(row: &mut Row, lost: u64, clients: Vec<Client>, errors: &[String]) {
    if lost > 0 {
        row.note(format!("{lost} moves lost"));
    }
    let closed = clients.iter().filter(|c| !c.is_open()).count();
    if closed > 0 {
        row.note(format!(
            "{closed} connections closed, e.g. {:?}",
            clients.iter().find_map(|c| c.closed.clone())
        ));
    }
    for error in errors.iter().take(3) {
        row.note(error.clone());
    }
    for mut client in clients {
        client.close().await;
    }
}

/// Lost moves: for every client, the moves of every *other* writer it did not see.
pub fn lost_moves(clients: &[Client]) -> u64 {
    let sent: Vec<(u64, u64)> = clients
        .iter()
        .filter(|c| c.moves_sent > 0)
        .map(|c| (c.writer_id, c.moves_sent))
        .collect();
    let mut lost = 0u64;
    for client in clients {
        for &(writer, count) in &sent {
            if writer != client.writer_id {
                lost += count.saturating_sub(client.seen_from(writer) as u64);
            }
        }
    }
    lost
}

/// Distinct moves received, summed over clients.
pub fn delivered_moves(clients: &[Client]) -> u64 {
    let writers: Vec<u64> = clients
        .iter()
        .filter(|c| c.moves_sent > 0)
        .map(|c| c.writer_id)
        .collect();
    clients
        .iter()
        .map(|c| {
            writers
                .iter()
                .filter(|w| **w != c.writer_id)
                .map(|w| c.seen_from(*w) as u64)
                .sum::<u64>()
        })
        .sum()
}

/// True when every client's canvas JSON is the same.
pub fn converged(clients: &[Client]) -> bool {
    let mut states = clients.iter().map(Client::canvas_json);
    match states.next() {
        Some(first) => states.all(|s| s == first),
        None => true,
    }
}

/// A plan that only reads until `until`.
pub fn reader_plan(until: Instant) -> crate::client::Plan {
    crate::client::Plan {
        interval: None,
        first_at: until,
        blocks: Arc::new(Vec::new()),
        random: false,
        until,
        stop: None,
    }
}
