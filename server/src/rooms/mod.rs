//! Workspace rooms: the live documents, one task per loaded workspace (DESIGN §1).
//!
//! [`RoomRegistry`] maps workspace ids to running rooms. A room is loaded **once** however many
//! clients arrive at the same instant (they all wait on one `OnceCell`), is never reachable before
//! its document has loaded, and removes itself when it unloads. A failed load leaves nothing behind,
//! so an empty document can never be served or stored over real data.

mod compactor;
mod load;
mod loading_room;
mod lock_table;
mod log_writer;
pub mod peer;
mod room;
mod room_http;
mod room_insert;
mod room_locks;
mod room_versions;
mod room_waiting;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use futures_util::future::BoxFuture;
use nox_persistence::cluster::{Lease, LeaseOutcome, NodeInfo};
use nox_persistence::db::Database;
use nox_persistence::error::PersistenceError;
use nox_sync_protocol::wire;
use tokio::sync::{mpsc, oneshot, OnceCell, Semaphore};
use uuid::Uuid;

use crate::cluster::{BusMessage, Cluster};
use crate::metrics::Metrics;
pub use load::LoadError;
pub use log_writer::LogWriter;
use peer::{PeerControl, PeerInfo};
pub use room::{RoomClosed, RoomCommand};
pub use room_http::{CanvasEdit, EditError, Edited, EventAudience, HttpRequest, PresenceEntry};
pub use room_insert::{CanvasInsert, InsertError};
pub use room_versions::{RestoreOutcome, VersionState};

/// How many queued commands a room accepts before senders wait.
const ROOM_QUEUE: usize = 4096;
/// A join that keeps meeting rooms that are just unloading gives up after this many tries.
const JOIN_ATTEMPTS: usize = 5;

/// What every room needs from the server.
#[derive(Clone)]
pub struct RoomContext {
    pub db: Database,
    pub metrics: Metrics,
    pub settings: RoomSettings,
    /// Shared by every room: batches of many rooms go into one log commit.
    pub log: LogWriter,
    /// Compactions running at once, across rooms: a permit per running compaction.
    pub compaction_slots: Arc<Semaphore>,
    /// This node: rooms load only under its lease of their workspace (DESIGN §7).
    pub cluster: Arc<Cluster>,
}

#[derive(Clone, Debug)]
pub struct RoomSettings {
    pub compact_interval: Duration,
    pub idle_unload: Duration,
    pub awareness_timeout: Duration,
    /// Quiet (or busy) time after a change before an automatic version; `None`: off.
    pub auto_version: Option<Duration>,
}

/// A way to send commands to a running room.
#[derive(Clone)]
pub struct RoomHandle {
    commands: mpsc::Sender<RoomCommand>,
    /// The lease the room was loaded under, and when it was taken.
    lease: Lease,
    leased_at: Instant,
}

impl RoomHandle {
    /// Sends a command, waiting while the room's queue is full. Err when the room has stopped.
    pub async fn send(&self, command: RoomCommand) -> Result<(), RoomClosed> {
        self.commands.send(command).await.map_err(|_| RoomClosed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("could not load the workspace: {0}")]
    Load(Arc<LoadError>),
    #[error("the workspace room kept closing")]
    Unavailable,
    /// Another live node owns the workspace: relay to it (DESIGN §7).
    #[error("workspace is served by node {} at {}", .0.id, .0.addr)]
    OwnedElsewhere(NodeInfo),
    #[error("could not take the workspace lease: {0}")]
    Lease(Arc<PersistenceError>),
}

/// One registry entry: the room of one workspace, loaded at most once.
#[derive(Default)]
struct RoomSlot {
    room: OnceCell<RoomHandle>,
}

pub struct RoomRegistry {
    rooms: Arc<DashMap<Uuid, Arc<RoomSlot>>>,
    ctx: RoomContext,
    shutting_down: AtomicBool,
}

impl RoomRegistry {
    pub fn new(ctx: RoomContext) -> Self {
        Self {
            rooms: Arc::default(),
            ctx,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Joins a connection to the workspace's room, loading it first if needed.
    pub async fn join(
        &self,
        workspace_id: Uuid,
        info: PeerInfo,
        outbound: mpsc::Sender<Bytes>,
        control: Arc<PeerControl>,
    ) -> Result<RoomHandle, JoinError> {
        for _ in 0..JOIN_ATTEMPTS {
            let (slot, handle) = self.room(workspace_id).await?;
            let (reply, joined) = oneshot::channel();
            let command = RoomCommand::Join {
                info: info.clone(),
                outbound: outbound.clone(),
                control: control.clone(),
                reply,
            };
            if handle.send(command).await.is_ok() && matches!(joined.await, Ok(Ok(()))) {
                return Ok(handle);
            }
            // The room was unloading: make sure its slot is gone and try a fresh one.
            self.rooms
                .remove_if(&workspace_id, |_, current| Arc::ptr_eq(current, &slot));
        }
        Err(JoinError::Unavailable)
    }

    /// The room of a workspace for an HTTP request, loading it when needed.
    pub async fn handle(&self, workspace_id: Uuid) -> Result<RoomHandle, JoinError> {
        self.room(workspace_id).await.map(|(_, handle)| handle)
    }

    /// The room of a workspace only if it is loaded (presence must not load rooms).
    pub fn loaded_handle(&self, workspace_id: Uuid) -> Option<RoomHandle> {
        self.rooms
            .get(&workspace_id)
            .and_then(|slot| slot.room.get().cloned())
    }

    /// Sends an HTTP request to the workspace's room and waits for the answer. A room that stops
    /// meanwhile is replaced (its successor loads from storage) and the request is sent again.
    pub async fn request<T>(
        &self,
        workspace_id: Uuid,
        make: impl Fn(oneshot::Sender<T>) -> HttpRequest,
    ) -> Result<T, JoinError> {
        for _ in 0..JOIN_ATTEMPTS {
            let (slot, handle) = self.room(workspace_id).await?;
            let (reply, answer) = oneshot::channel();
            if handle.send(RoomCommand::Http(make(reply))).await.is_ok() {
                if let Ok(value) = answer.await {
                    return Ok(value);
                }
            }
            self.rooms
                .remove_if(&workspace_id, |_, current| Arc::ptr_eq(current, &slot));
        }
        Err(JoinError::Unavailable)
    }

    /// Pushes a stateless event to the opted-in peers of a workspace, only where its room is
    /// loaded: nobody is connected to a workspace without a room, and an event must not load one.
    /// When the room is not loaded here, another node may own it: the event goes out on the
    /// cluster bus (DESIGN §7). Answers how many peers it reached on this node.
    pub async fn broadcast_if_loaded(
        &self,
        workspace_id: Uuid,
        event: String,
        audience: EventAudience,
    ) -> usize {
        if !self.is_loaded(workspace_id) {
            let message = BusMessage::RoomEvent {
                workspace_id,
                event: event.clone(),
                audience: audience.as_str().to_string(),
            };
            self.ctx.cluster.publish(message).await;
        }
        self.broadcast_local(workspace_id, event, audience).await
    }

    /// Pushes a stateless event to the opted-in peers of this node's room of the workspace.
    pub async fn broadcast_local(
        &self,
        workspace_id: Uuid,
        event: String,
        audience: EventAudience,
    ) -> usize {
        let Some(handle) = self.loaded_handle(workspace_id) else {
            return 0;
        };
        let (reply, answer) = oneshot::channel();
        let request = HttpRequest::Broadcast {
            event,
            audience,
            reply,
        };
        if handle.send(RoomCommand::Http(request)).await.is_err() {
            return 0;
        }
        answer.await.unwrap_or(0)
    }

    /// The running room of a workspace, loading it when there is none.
    ///
    /// Boxed: loading (SQL, decoding) is a large future that every socket session would otherwise
    /// carry inline in its own state for as long as it lives.
    fn room(
        &self,
        workspace_id: Uuid,
    ) -> BoxFuture<'_, Result<(Arc<RoomSlot>, RoomHandle), JoinError>> {
        Box::pin(self.load_room(workspace_id))
    }

    async fn load_room(
        &self,
        workspace_id: Uuid,
    ) -> Result<(Arc<RoomSlot>, RoomHandle), JoinError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(JoinError::ShuttingDown);
        }
        // Clone the slot out so no map guard is held across the await below.
        let slot = self.rooms.entry(workspace_id).or_default().clone();
        let loaded = slot
            .room
            .get_or_try_init(|| self.start_room(workspace_id, slot.clone()))
            .await
            .cloned();
        match loaded {
            Ok(handle) => Ok((slot, handle)),
            Err(err) => {
                // Forget the failed slot so the next attempt loads again from storage.
                self.rooms
                    .remove_if(&workspace_id, |_, current| Arc::ptr_eq(current, &slot));
                Err(err)
            }
        }
    }

    async fn start_room(
        &self,
        workspace_id: Uuid,
        slot: Arc<RoomSlot>,
    ) -> Result<RoomHandle, JoinError> {
        let failed = |err: LoadError| {
            tracing::error!(%workspace_id, error = %err, "workspace failed to load");
            JoinError::Load(Arc::new(err))
        };
        let lease = match self.ctx.cluster.acquire(workspace_id).await {
            Ok(LeaseOutcome::Acquired(lease)) => lease,
            Ok(LeaseOutcome::HeldBy(node)) => return Err(JoinError::OwnedElsewhere(node)),
            Err(err) => return Err(JoinError::Lease(Arc::new(err))),
        };
        // After the take committed: a heartbeat asked later is sure to list this lease.
        let leased_at = Instant::now();
        let fetched = match load::fetch(&self.ctx.db, &lease).await {
            Ok(fetched) => fetched,
            Err(err) => {
                self.ctx.cluster.release(&lease).await;
                return Err(failed(err));
            }
        };
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let rooms = self.rooms.clone();
        let on_exit = move || {
            rooms.remove_if(&workspace_id, |_, current| Arc::ptr_eq(current, &slot));
        };
        let ctx = self.ctx.clone();
        match fetched.complete_state().map(wire::encode_sync_step2) {
            Some(full_state) => {
                // Joiners get the stored state at once while the document is built.
                ctx.metrics.rooms_loaded.inc();
                let full_state = Bytes::from(full_state);
                tokio::spawn(loading_room::run(
                    lease, ctx, fetched, full_state, rx, on_exit,
                ));
            }
            None => {
                let loaded = match load::build(workspace_id, fetched).await {
                    Ok(loaded) => loaded,
                    Err(err) => {
                        self.ctx.cluster.release(&lease).await;
                        return Err(failed(err));
                    }
                };
                ctx.metrics.rooms_loaded.inc();
                let room = room::WorkspaceRoom::new(lease, ctx, loaded);
                tokio::spawn(room.run(Vec::new(), rx, on_exit));
            }
        }
        tracing::debug!(%workspace_id, epoch = lease.epoch, "room loaded");
        Ok(RoomHandle {
            commands: tx,
            lease,
            leased_at,
        })
    }

    /// After a heartbeat: closes the rooms whose lease is not among those this node still holds
    /// (another node took the workspace over while this one could not reach the database).
    /// `asked_at` is when the heartbeat was sent: rooms leased after it are not in `held` yet.
    pub async fn keep_only_held(&self, held: &[Lease], asked_at: Instant) {
        let lost: Vec<RoomHandle> = self
            .rooms
            .iter()
            .filter_map(|entry| entry.value().room.get().cloned())
            .filter(|handle| handle.leased_at < asked_at && !held.contains(&handle.lease))
            .collect();
        for handle in lost {
            let _ = handle.send(RoomCommand::LeaseLost).await;
        }
    }

    /// Whether this node has the workspace's room loaded (and so owns it).
    pub fn is_loaded(&self, workspace_id: Uuid) -> bool {
        self.loaded_handle(workspace_id).is_some()
    }

    /// Number of rooms in memory.
    pub fn loaded(&self) -> usize {
        self.rooms.len()
    }

    /// Refuses new joins, then asks every room to flush, compact and close its peers with 1012.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let handles: Vec<RoomHandle> = self
            .rooms
            .iter()
            .filter_map(|entry| entry.value().room.get().cloned())
            .collect();
        let mut waiting = Vec::with_capacity(handles.len());
        for handle in handles {
            let (reply, done) = oneshot::channel();
            if handle.send(RoomCommand::Shutdown { reply }).await.is_ok() {
                waiting.push(done);
            }
        }
        for done in waiting {
            let _ = done.await;
        }
        tracing::info!("every room compacted and closed");
    }
}

/// The wire form of a stored lock (for rooms that are not loaded).
pub fn lock_view(
    lock: &nox_persistence::locks::EditLock,
) -> Option<nox_sync_protocol::locks::LockView> {
    let kind = nox_sync_protocol::locks::ResourceType::parse(&lock.resource_type)?;
    Some(lock_table::view(kind, lock, None))
}
