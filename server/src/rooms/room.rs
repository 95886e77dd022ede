//! [`WorkspaceRoom`]: one task per loaded workspace. It alone owns the `yrs::Doc` and its awareness.
//!
//! The loop drains every queued command, applies them in order, then — if any update changed the
//! document — appends those updates to the log in **one** statement, and only after that commit
//! delivers every reply and broadcast the batch produced (DESIGN §3: durable before any peer sees
//! it). Nothing is awaited while a yrs transaction is open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nox_sync_protocol::wire::{self, ClientMessage};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

use super::compactor::{CompactionJob, CompactionOutcome};
use super::peer::{CloseReason, ConnId, Peer, PeerControl, PeerInfo};
use super::RoomContext;

/// Clients renew awareness every 15 s; a state not renewed for 30 s is dropped (as the JS server does).
const AWARENESS_TIMEOUT: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_millis(500);
const MAX_BATCH: usize = 512;

/// What sessions (and the registry) ask of a room.
pub enum RoomCommand {
    Join {
        info: PeerInfo,
        outbound: mpsc::Sender<Bytes>,
        control: Arc<PeerControl>,
        reply: oneshot::Sender<Result<(), RoomClosed>>,
    },
    Leave {
        conn: ConnId,
    },
    /// The decoded messages of one WebSocket frame.
    Messages {
        conn: ConnId,
        messages: Vec<ClientMessage>,
    },
    /// Compact, close every peer with 1012, stop.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    CompactionDone(CompactionOutcome),
}

/// The room stopped (unloaded or failed) before it could take the request: get a new one.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("workspace room closed")]
pub struct RoomClosed;

/// An update the doc observer saw, tagged with the connection whose message caused it.
struct Emitted {
    origin: Option<ConnId>,
    update: Vec<u8>,
}

pub struct WorkspaceRoom {
    workspace_id: Uuid,
    generation: u64,
    ctx: RoomContext,
    doc: Doc,
    awareness: Awareness,
    peers: HashMap<ConnId, Peer>,
    /// Filled by the doc's update observer during a batch, drained by `flush`.
    emitted: Arc<Mutex<Vec<Emitted>>>,
    /// Frames to deliver once the batch is durable, in order.
    outbox: Vec<(Target, Bytes)>,
    /// Connections whose messages caused updates in this batch (they get acks after the commit).
    updaters: Vec<ConnId>,
    next_seq: i64,
    /// Highest seq folded into a snapshot (or being folded by the running compaction).
    compacted_seq: i64,
    compaction_running: bool,
    last_compaction: Instant,
    previous_projection: Option<nox_sync_protocol::projection::Projection>,
    /// The full state as a SyncStep2 frame for clients that have nothing yet, shared by a join storm.
    full_state_cache: Option<Bytes>,
    idle_since: Option<Instant>,
    conflict_counts: HashMap<String, i64>,
}

enum Target {
    One(ConnId),
    AllExcept(Option<ConnId>),
}

/// A room that has loaded its document and is ready to run.
pub struct LoadedRoom {
    pub doc: Doc,
    pub next_seq: i64,
    pub covers_seq: i64,
}

impl WorkspaceRoom {
    pub fn new(workspace_id: Uuid, generation: u64, ctx: RoomContext, loaded: LoadedRoom) -> Self {
        let emitted: Arc<Mutex<Vec<Emitted>>> = Arc::default();
        let sink = emitted.clone();
        // The origin is the connection id (u64, big-endian) set by `transact_mut_with`.
        let _ = loaded.doc.observe_update_v1("room-broadcast", move |txn, event| {
            let origin = txn.origin().and_then(|o| {
                let bytes: [u8; 8] = o.as_ref().try_into().ok()?;
                Some(u64::from_be_bytes(bytes))
            });
            if let Ok(mut list) = sink.lock() {
                list.push(Emitted {
                    origin,
                    update: event.update.clone(),
                });
            }
        });
        ctx.metrics.rooms_loaded.inc();
        ctx.metrics
            .compaction_lag_entries
            .add(loaded.next_seq - 1 - loaded.covers_seq);
        WorkspaceRoom {
            workspace_id,
            generation,
            awareness: Awareness::new(loaded.doc.clone()),
            doc: loaded.doc,
            ctx,
            peers: HashMap::new(),
            emitted,
            outbox: Vec::new(),
            updaters: Vec::new(),
            next_seq: loaded.next_seq,
            compacted_seq: loaded.covers_seq,
            compaction_running: false,
            last_compaction: Instant::now(),
            previous_projection: None,
            full_state_cache: None,
            idle_since: Some(Instant::now()),
            conflict_counts: HashMap::new(),
        }
    }

    /// Runs until unloaded or shut down.
    pub async fn run(mut self, mut commands: mpsc::Receiver<RoomCommand>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            tokio::select! {
                n = commands.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    let mut shutdown = None;
                    for command in batch.drain(..) {
                        match command {
                            RoomCommand::Shutdown { reply } => shutdown = Some(reply),
                            other => self.handle(other),
                        }
                    }
                    if !self.flush().await {
                        self.fail(&mut commands, CloseReason::STORAGE_UNAVAILABLE).await;
                        return;
                    }
                    if let Some(reply) = shutdown {
                        self.shut_down(&mut commands).await;
                        let _ = reply.send(());
                        return;
                    }
                }
                _ = tick.tick() => {
                    self.expire_awareness();
                    if !self.flush().await {
                        self.fail(&mut commands, CloseReason::STORAGE_UNAVAILABLE).await;
                        return;
                    }
                    self.maybe_compact();
                    if self.should_unload() {
                        self.unload(&mut commands).await;
                        return;
                    }
                }
            }
        }
        self.unload(&mut commands).await;
    }

    fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join {
                info,
                outbound,
                control,
                reply,
            } => self.join(info, outbound, control, reply),
            RoomCommand::Leave { conn } => self.leave(conn),
            RoomCommand::Messages { conn, messages } => {
                for message in messages {
                    if !self.peers.contains_key(&conn) {
                        break; // closed while its messages were queued
                    }
                    self.handle_message(conn, message);
                }
            }
            RoomCommand::CompactionDone(outcome) => self.compaction_done(outcome),
            RoomCommand::Shutdown { .. } => {}
        }
    }

    /// A new connection: the server's SyncStep1 and the current awareness, each its own frame.
    fn join(
        &mut self,
        info: PeerInfo,
        outbound: mpsc::Sender<Bytes>,
        control: Arc<PeerControl>,
        reply: oneshot::Sender<Result<(), RoomClosed>>,
    ) {
        let conn = info.conn;
        tracing::debug!(workspace_id = %self.workspace_id, conn, user_id = %info.user_id, "peer joined");
        self.peers.insert(
            conn,
            Peer {
                info,
                outbound,
                control,
                awareness_ids: Default::default(),
                updates_received: 0,
                updates_acked: 0,
            },
        );
        self.idle_since = None;
        let sv = self.doc.transact().state_vector();
        self.outbox
            .push((Target::One(conn), Bytes::from(wire::encode_sync_step1(&sv))));
        if let Ok(update) = self.awareness.update() {
            if !update.clients.is_empty() {
                self.outbox.push((
                    Target::One(conn),
                    Bytes::from(wire::encode_awareness(&update)),
                ));
            }
        }
        let _ = reply.send(Ok(()));
    }

    fn leave(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        tracing::debug!(workspace_id = %self.workspace_id, conn, "peer left");
        self.remove_awareness(peer.awareness_ids.into_iter().collect(), None);
        if self.peers.is_empty() {
            self.idle_since = Some(Instant::now());
        }
    }

    fn handle_message(&mut self, conn: ConnId, message: ClientMessage) {
        match message {
            ClientMessage::SyncStep1(sv) => self.answer_sync_step1(conn, &sv),
            ClientMessage::SyncStep2(update) | ClientMessage::Update(update) => {
                self.apply_client_update(conn, &update)
            }
            ClientMessage::Awareness(update) => self.apply_awareness(conn, update),
            ClientMessage::AwarenessQuery => {
                if let Ok(update) = self.awareness.update() {
                    self.outbox.push((
                        Target::One(conn),
                        Bytes::from(wire::encode_awareness(&update)),
                    ));
                }
            }
            // Clients have no business sending auth, stateless or unknown messages here yet;
            // ignoring them keeps stock clients working.
            _ => {}
        }
    }

    fn answer_sync_step1(&mut self, conn: ConnId, sv: &StateVector) {
        let frame = if *sv == StateVector::default() {
            self.full_state_frame()
        } else {
            let update = self.doc.transact().encode_state_as_update_v1(sv);
            Bytes::from(wire::encode_sync_step2(&update))
        };
        self.outbox.push((Target::One(conn), frame));
    }

    /// SyncStep2 of the whole document, encoded once per document version.
    fn full_state_frame(&mut self) -> Bytes {
        if let Some(frame) = &self.full_state_cache {
            return frame.clone();
        }
        let update = self
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let frame = Bytes::from(wire::encode_sync_step2(&update));
        self.full_state_cache = Some(frame.clone());
        frame
    }

    fn apply_client_update(&mut self, conn: ConnId, update: &[u8]) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        let decoded = match Update::decode_v1(update) {
            Ok(decoded) => decoded,
            Err(err) => {
                self.ctx.metrics.malformed_messages.inc();
                peer.control.close(CloseReason {
                    code: 1007,
                    reason: format!("invalid update: {err}").into(),
                });
                return;
            }
        };
        if !peer.info.can_write {
            if !decoded.state_vector().is_empty() || !update_is_noop(update) {
                peer.send(Bytes::from(wire::encode_permission_denied(
                    "read-only: this connection may not edit the workspace",
                )));
            }
            return;
        }
        peer.updates_received += 1;
        self.ctx.metrics.updates_received.inc();
        self.updaters.push(conn);
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut txn = self.doc.transact_mut_with(conn);
            txn.apply_update(decoded)
        }));
        match applied {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                self.ctx.metrics.malformed_messages.inc();
                if let Some(peer) = self.peers.get(&conn) {
                    peer.control.close(CloseReason {
                        code: 1007,
                        reason: format!("update could not be applied: {err}").into(),
                    });
                }
            }
            Err(_) => {
                // yrs panicked mid-transaction; the in-memory doc can no longer be trusted. Storage
                // holds only what was flushed, so close the connection; `flush` poisons the room.
                tracing::error!(workspace_id = %self.workspace_id, conn, "update apply panicked");
                if let Some(peer) = self.peers.get(&conn) {
                    peer.control.close(CloseReason::INTERNAL);
                }
                self.poisoned = true;
            }
        }
    }
}
