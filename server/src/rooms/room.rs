//! [`WorkspaceRoom`]: one task per loaded workspace. It alone owns the `yrs::Doc` and its awareness.
//!
//! The loop drains every queued command, applies them in order, then — if any update changed the
//! document — appends those updates to the log in **one** statement, and only after that commit
//! delivers every reply and broadcast the batch produced (DESIGN §3: durable before any peer sees
//! it). Nothing is awaited while a yrs transaction is open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nox_persistence::cluster::Lease;
use nox_persistence::error::PersistenceError;
use nox_persistence::update_log::NewLogEntry;
use nox_sync_protocol::projection::ProjectionDigest;
use nox_sync_protocol::wire::{self, ClientMessage};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use uuid::Uuid;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{IdSet, ReadTxn, StateVector, Transact, Update};

use super::compactor::{self, CompactionError, CompactionJob, CompactionOutcome};
use super::load::LoadedDocument;
use super::lock_table::LockTable;
use super::log_writer::AppendError;
use super::peer::{CloseReason, ConnId, Peer, PeerControl, PeerInfo};
use super::room_http::{HttpRequest, PendingHttpReply};
use super::room_locks::LockRelease;
use super::room_versions::AutoVersions;
use super::room_waiting;
use super::RoomContext;
use nox_sync_protocol::locks::LockCommand;

const TICK: Duration = Duration::from_millis(500);
/// Commands handled per batch: bounds the latency one batch adds for the first command in it.
const MAX_BATCH: usize = 256;
/// Awareness messages accepted per connection and second (cursors move at most ~60 times/s).
const MAX_AWARENESS_PER_SECOND: u32 = 60;
/// Largest awareness state (JSON) relayed; a cursor and a name need a few hundred bytes.
const MAX_AWARENESS_STATE_BYTES: usize = 16 * 1024;

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
    /// A request of the HTTP API (reads, server-originated edits, presence, locks).
    Http(HttpRequest),
    /// The connection's rights changed while it was open.
    SetAccess {
        conn: ConnId,
        can_write: bool,
        can_override_locks: bool,
    },
    /// The node no longer holds the room's lease: close without writing (DESIGN §7).
    LeaseLost,
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

/// Who a queued frame goes to once the batch is durable.
pub(super) enum Target {
    One(ConnId),
    AllExcept(Option<ConnId>),
    /// Every peer that receives lock events.
    LockSubscribers,
}

/// A frame encoded once and shared by every joiner until the document changes (join storms).
struct CachedFullState {
    version: u64,
    frame: Bytes,
}

pub struct WorkspaceRoom {
    pub(super) workspace_id: Uuid,
    /// This node's claim on the workspace: every write of the room carries it (DESIGN §7).
    pub(super) lease: Lease,
    pub(super) ctx: RoomContext,
    pub(super) awareness: Awareness,
    pub(super) peers: HashMap<ConnId, Peer>,
    /// Filled by the doc's update observer, drained after every applied message.
    emitted: Arc<Mutex<Vec<Emitted>>>,
    /// Updates applied in this batch, to append before anything is delivered.
    pending_log: Vec<NewLogEntry>,
    /// Frames to deliver once the batch is durable, in order.
    outbox: Vec<(Target, Bytes)>,
    /// Update messages per connection in this batch: acknowledged after the commit.
    acks: HashMap<ConnId, u64>,
    next_seq: i64,
    /// Bumped whenever the document changes; keys the cached full state.
    pub(super) version: u64,
    full_state: Option<CachedFullState>,
    /// Highest seq in the stored snapshot.
    compacted_seq: i64,
    compaction: Option<JoinHandle<CompactionOutcome>>,
    pub(super) last_compaction: Instant,
    /// Fingerprints of the rows the last compaction wrote (the base of the next diff).
    projection: Option<Arc<ProjectionDigest>>,
    idle_since: Option<Instant>,
    stopping: bool,
    pub(super) locks: LockTable,
    /// Lock requests of this batch, decided and stored in `flush`.
    pub(super) lock_work: Vec<(ConnId, LockCommand)>,
    /// Locks to release in `flush` (closed connections, expiry).
    pub(super) lock_releases: Vec<LockRelease>,
    /// HTTP answers that wait for the batch to be durable.
    pub(super) http_replies: Vec<PendingHttpReply>,
    /// Who made the server-originated edit being applied (recorded in the log).
    pub(super) acting_user: Option<Uuid>,
    /// What of the document waits for changes the server never received (`room_waiting.rs`).
    pub(super) waiting: room_waiting::Waiting,
    /// When the next automatic version is due (`room_versions.rs`).
    pub(super) auto_versions: AutoVersions,
    /// What restores of this batch deleted, garbage-collected once the batch is answered.
    pub(super) deferred_gc: Vec<IdSet>,
}

impl WorkspaceRoom {
    pub fn new(lease: Lease, ctx: RoomContext, loaded: LoadedDocument) -> Self {
        let workspace_id = lease.workspace_id;
        let emitted: Arc<Mutex<Vec<Emitted>>> = Arc::default();
        let sink = emitted.clone();
        // The subscription lives as long as the doc (keyed observers are owned by the doc).
        let observed = loaded.doc.observe_update_v1("room", move |txn, event| {
            let origin = txn.origin().and_then(conn_of_origin);
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Emitted {
                    origin,
                    update: event.update.clone(),
                });
        });
        if let Err(err) = observed {
            tracing::error!(%workspace_id, error = %err, "could not observe document updates");
        }
        let waiting = room_waiting::Waiting::of_loaded(&loaded.doc);
        Self {
            workspace_id,
            lease,
            ctx,
            awareness: Awareness::new(loaded.doc),
            peers: HashMap::new(),
            emitted,
            pending_log: Vec::new(),
            outbox: Vec::new(),
            acks: HashMap::new(),
            next_seq: loaded.next_seq,
            version: 0,
            full_state: None,
            compacted_seq: loaded.compacted_seq,
            compaction: None,
            last_compaction: Instant::now(),
            projection: None,
            idle_since: Some(Instant::now()),
            stopping: false,
            locks: LockTable::from_rows(loaded.locks),
            lock_work: Vec::new(),
            lock_releases: Vec::new(),
            http_replies: Vec::new(),
            acting_user: None,
            waiting,
            auto_versions: AutoVersions::default(),
            deferred_gc: Vec::new(),
        }
    }

    /// The SyncStep2 frame of the document as loaded, when the loader already had it (the stored
    /// snapshot with no log after it): the first full-state joiners share it instead of an encode.
    pub fn seed_full_state(&mut self, frame: Bytes) {
        self.full_state = Some(CachedFullState {
            version: self.version,
            frame,
        });
    }

    /// Runs until unloaded or shut down, starting with `early` (commands that arrived while the
    /// document was being built). `on_exit` removes the room from the registry.
    pub async fn run(
        mut self,
        early: Vec<RoomCommand>,
        mut commands: mpsc::Receiver<RoomCommand>,
        on_exit: impl FnOnce(),
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Grows to the largest batch seen: an idle room should not hold 256 empty slots.
        let mut batch = early;
        let mut shutdown_reply = self.handle_batch(&mut batch).await;
        while !self.stopping && shutdown_reply.is_none() {
            tokio::select! {
                received = commands.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    shutdown_reply = self.handle_batch(&mut batch).await;
                }
                outcome = wait_compaction(&mut self.compaction) => self.on_compaction_done(outcome),
                _ = tick.tick() => self.on_tick().await,
            }
        }
        if shutdown_reply.is_some() {
            self.shutdown().await;
        }
        on_exit();
        // After the last compaction: the next owner may take over at once.
        self.ctx.cluster.release(&self.lease).await;
        refuse_remaining(commands).await;
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
        self.release_metrics();
        tracing::debug!(workspace_id = %self.workspace_id, "room stopped");
    }

    /// Applies every command of `batch` (leaving it empty), then makes the batch durable and
    /// delivers it. Returns the reply channel of a shutdown request among them.
    async fn handle_batch(&mut self, batch: &mut Vec<RoomCommand>) -> Option<oneshot::Sender<()>> {
        let mut shutdown_reply = None;
        for command in batch.drain(..) {
            if let Some(reply) = self.handle(command) {
                shutdown_reply = Some(reply);
            }
        }
        self.flush().await;
        self.collect_deferred_garbage();
        shutdown_reply
    }

    /// Applies one command. Returns the reply channel of a shutdown request.
    fn handle(&mut self, command: RoomCommand) -> Option<oneshot::Sender<()>> {
        match command {
            RoomCommand::Join {
                info,
                outbound,
                control,
                reply,
            } => {
                let conn = info.conn;
                self.peers.insert(conn, Peer::new(info, outbound, control));
                self.idle_since = None;
                self.greet(conn);
                let _ = reply.send(Ok(()));
            }
            RoomCommand::Leave { conn } => self.leave(conn),
            RoomCommand::Messages { conn, messages } => {
                for message in messages {
                    self.on_message(conn, message);
                }
            }
            RoomCommand::Shutdown { reply } => return Some(reply),
            RoomCommand::LeaseLost => self.lost_lease(),
            RoomCommand::Http(request) => self.on_http(request),
            RoomCommand::SetAccess {
                conn,
                can_write,
                can_override_locks,
            } => {
                if let Some(peer) = self.peers.get_mut(&conn) {
                    peer.info.can_write = can_write;
                    peer.info.can_override_locks = can_override_locks;
                }
                if !can_write {
                    // A read-only connection may not hold locks.
                    self.release_locks_of(conn);
                }
            }
        }
        None
    }

    /// SyncStep1 and the current awareness, each in its own frame (JS clients read one message per
    /// frame). Our SyncStep1 makes the client upload its offline edits.
    fn greet(&mut self, conn: ConnId) {
        let sv = self.awareness.doc().transact().state_vector();
        self.queue(Target::One(conn), wire::encode_sync_step1(&sv));
        if let Ok(update) = self.awareness.update() {
            if !update.clients.is_empty() {
                self.queue(Target::One(conn), wire::encode_awareness(&update));
            }
        }
        if self.peers.get(&conn).is_some_and(|p| p.info.wants_locks) {
            self.send_lock_list(conn);
        }
    }

    fn leave(&mut self, conn: ConnId) {
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        let ids: Vec<ClientID> = peer.awareness_ids.iter().copied().collect();
        self.remove_awareness(&ids);
        self.release_locks_of(conn);
        if self.peers.is_empty() {
            self.idle_since = Some(Instant::now());
        }
    }

    /// Removes awareness states and tells the remaining peers (the "null" states clear cursors).
    fn remove_awareness(&mut self, ids: &[ClientID]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.awareness.remove_state(*id);
        }
        if let Ok(update) = self.awareness.update_with_clients(ids.iter().copied()) {
            self.queue(Target::AllExcept(None), wire::encode_awareness(&update));
        }
    }

    fn on_message(&mut self, conn: ConnId, message: ClientMessage) {
        let Some(peer) = self.peers.get(&conn) else {
            return; // it left earlier in this batch
        };
        let can_write = peer.info.can_write;
        match message {
            ClientMessage::SyncStep1(sv) => {
                let frame = self.sync_step2_for(&sv);
                self.queue_bytes(Target::One(conn), frame);
            }
            ClientMessage::SyncStep2(update) | ClientMessage::Update(update) => {
                self.on_update(conn, can_write, &update)
            }
            ClientMessage::Awareness(update) => self.on_awareness(conn, update),
            ClientMessage::AwarenessQuery => {
                if let Ok(update) = self.awareness.update() {
                    self.queue(Target::One(conn), wire::encode_awareness(&update));
                }
            }
            ClientMessage::Stateless(payload) => self.on_stateless(conn, &payload),
            ClientMessage::Auth(_) | ClientMessage::Unknown(_) => {}
        }
    }

    fn on_update(&mut self, conn: ConnId, can_write: bool, bytes: &[u8]) {
        self.ctx.metrics.updates_received.inc();
        let update = match Update::decode_v1(bytes) {
            Ok(update) => update,
            Err(err) => {
                // The session validates frames; this only happens if the two disagree.
                self.close_peer(conn, CloseReason::new(1007, "malformed update"));
                tracing::warn!(workspace_id = %self.workspace_id, conn, error = %err, "undecodable update");
                return;
            }
        };
        if !can_write {
            if !update.is_empty() {
                self.queue(
                    Target::One(conn),
                    wire::encode_permission_denied("read-only: updates are not accepted"),
                );
            }
            return;
        }
        let first = update.state_vector_lower();
        let applied = {
            let mut txn = self.awareness.doc().transact_mut_with(origin_of_conn(conn));
            let known = txn.state_vector();
            txn.apply_update(update).map(|()| {
                let out_of_order =
                    room_waiting::skips_ahead(&first, &known) || txn.has_missing_updates();
                (out_of_order, known)
            })
        };
        let (out_of_order, known) = match applied {
            Ok(applied) => applied,
            Err(err) => {
                self.close_peer(conn, CloseReason::new(1007, "update could not be applied"));
                tracing::warn!(workspace_id = %self.workspace_id, conn, error = %err, "update rejected");
                return;
            }
        };
        self.collect_emitted();
        if !out_of_order {
            self.settle_waiting();
        } else if !self.keep_waiting(conn, bytes, &first, &known) {
            return;
        }
        *self.acks.entry(conn).or_default() += 1;
    }

    /// Moves what the observer saw into the log batch and the outbox, in order.
    pub(super) fn collect_emitted(&mut self) {
        let emitted =
            std::mem::take(&mut *self.emitted.lock().unwrap_or_else(PoisonError::into_inner));
        for Emitted { origin, update } in emitted {
            let user_id = origin
                .and_then(|c| self.peers.get(&c))
                .map(|p| p.info.user_id)
                .or(self.acting_user);
            self.queue(Target::AllExcept(origin), wire::encode_update(&update));
            self.log_entry(update, user_id);
        }
    }

    /// Appends `update` to this batch's log entries with the next seq.
    pub(super) fn log_entry(&mut self, update: Vec<u8>, user_id: Option<Uuid>) {
        self.pending_log.push(NewLogEntry {
            seq: self.next_seq,
            update,
            user_id,
        });
        self.next_seq += 1;
        self.version += 1;
    }

    fn on_awareness(&mut self, conn: ConnId, update: AwarenessUpdate) {
        if !self.within_awareness_rate(conn) {
            return;
        }
        let Some(update) = self.trusted_awareness(conn, update) else {
            return;
        };
        let frame = wire::encode_awareness(&update);
        match self.awareness.apply_update_summary(update) {
            Ok(Some(summary)) => {
                if let Some(peer) = self.peers.get_mut(&conn) {
                    peer.awareness_ids.extend(summary.added.iter().copied());
                    peer.awareness_ids.extend(summary.updated.iter().copied());
                    for id in &summary.removed {
                        peer.awareness_ids.remove(id);
                    }
                }
                // To everyone, the sender included: its echo is what keeps a y-websocket client's
                // 30 s "nothing received" timer from firing.
                self.queue(Target::AllExcept(None), frame);
            }
            Ok(None) => self.queue(Target::One(conn), frame),
            Err(err) => {
                tracing::debug!(workspace_id = %self.workspace_id, conn, error = %err, "awareness update ignored");
            }
        }
    }

    /// At most [`MAX_AWARENESS_PER_SECOND`] awareness messages per connection; the rest are
    /// dropped (each message supersedes the previous one, so nothing lasting is lost).
    fn within_awareness_rate(&mut self, conn: ConnId) -> bool {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return false;
        };
        let (window_start, count) = &mut peer.awareness_window;
        if window_start.elapsed() >= Duration::from_secs(1) {
            *window_start = Instant::now();
            *count = 0;
        }
        *count += 1;
        *count <= MAX_AWARENESS_PER_SECOND
    }

    /// Keeps only the entries this connection may set (its own client ids, bounded size) and
    /// stamps the authenticated user onto each state, so peers cannot impersonate each other.
    fn trusted_awareness(&self, conn: ConnId, update: AwarenessUpdate) -> Option<AwarenessUpdate> {
        let peer = self.peers.get(&conn)?;
        let owned_elsewhere = |id: &ClientID| {
            self.peers
                .iter()
                .any(|(other, p)| *other != conn && p.awareness_ids.contains(id))
        };
        let clients: HashMap<ClientID, AwarenessUpdateEntry> = update
            .clients
            .into_iter()
            .filter(|(id, entry)| {
                !owned_elsewhere(id) && entry.json.len() <= MAX_AWARENESS_STATE_BYTES
            })
            .map(|(id, entry)| {
                let json = stamp_user(
                    &entry.json,
                    peer.info.user_id,
                    peer.info.user_name.as_deref(),
                );
                (
                    id,
                    AwarenessUpdateEntry {
                        clock: entry.clock,
                        json,
                    },
                )
            })
            .collect();
        (!clients.is_empty()).then_some(AwarenessUpdate { clients })
    }

    /// SyncStep2 answering a client's state vector; the full state is encoded once per version.
    fn sync_step2_for(&mut self, sv: &StateVector) -> Bytes {
        if sv.is_empty() {
            if let Some(cached) = &self.full_state {
                if cached.version == self.version {
                    return cached.frame.clone();
                }
            }
        }
        let diff = self.awareness.doc().transact().encode_diff_v1(sv);
        let frame = Bytes::from(wire::encode_sync_step2(&diff));
        if sv.is_empty() {
            self.full_state = Some(CachedFullState {
                version: self.version,
                frame: frame.clone(),
            });
        }
        frame
    }

    /// Drops the cached SyncStep2 full state (the document's encoding changed without a new
    /// version: its deleted content was collected).
    pub(super) fn forget_full_state(&mut self) {
        self.full_state = None;
    }

    pub(super) fn queue(&mut self, target: Target, frame: Vec<u8>) {
        self.queue_bytes(target, Bytes::from(frame));
    }

    pub(super) fn queue_bytes(&mut self, target: Target, frame: Bytes) {
        self.outbox.push((target, frame));
    }

    /// Makes the batch durable, then delivers it. On a failed append nothing of the batch is
    /// delivered: every peer is closed with a retryable code and the room stops, so the next
    /// connection reloads exactly what storage holds.
    async fn flush(&mut self) {
        if !self.pending_log.is_empty() {
            let entries = std::mem::take(&mut self.pending_log);
            let appended_entries = entries.len() as i64;
            let started = Instant::now();
            let appended = self.append(entries).await;
            self.ctx
                .metrics
                .log_append_seconds
                .observe(started.elapsed().as_secs_f64());
            if let Err(err) = appended {
                self.answer_http(false);
                if matches!(err, AppendError::Fenced) {
                    self.lost_lease();
                    return;
                }
                self.ctx.metrics.log_append_failures.inc();
                tracing::error!(workspace_id = %self.workspace_id, error = %err, "update log append failed; closing the room");
                self.fail(CloseReason::STORAGE_UNAVAILABLE);
                return;
            }
            self.ctx
                .metrics
                .compaction_lag_entries
                .add(appended_entries);
        }
        self.answer_http(true);
        self.process_locks().await;
        self.deliver();
    }

    /// Hands the batch to the shared log writer (group commit with other rooms) and waits for
    /// its commit.
    async fn append(&self, entries: Vec<NewLogEntry>) -> Result<(), AppendError> {
        if cfg!(feature = "bench-noop-store") {
            // Benchmarks only (`durability-cost`): shows what the durable append costs.
            return Ok(());
        }
        self.ctx.log.append(self.lease, entries).await
    }

    fn deliver(&mut self) {
        for (target, frame) in std::mem::take(&mut self.outbox) {
            match target {
                Target::One(conn) => {
                    if let Some(peer) = self.peers.get(&conn) {
                        peer.send(frame);
                    }
                }
                Target::LockSubscribers => {
                    for peer in self.peers.values().filter(|p| p.info.wants_locks) {
                        peer.send(frame.clone());
                    }
                }
                Target::AllExcept(except) => {
                    let is_update = frame.starts_with(&[wire::MSG_SYNC, 2]);
                    for (conn, peer) in &self.peers {
                        if Some(*conn) != except && peer.send(frame.clone()) && is_update {
                            self.ctx.metrics.updates_broadcast.inc();
                        }
                    }
                }
            }
        }
        for (conn, count) in std::mem::take(&mut self.acks) {
            if let Some(peer) = self.peers.get(&conn) {
                if peer.info.wants_acks {
                    peer.send(Bytes::from(wire::encode_ack(count)));
                }
            }
        }
        self.drop_closed_peers();
    }

    /// Peers the room closed (slow consumers) leave at once: their awareness goes with them.
    fn drop_closed_peers(&mut self) {
        let closed: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.control.reason().is_some())
            .map(|(c, _)| *c)
            .collect();
        for conn in closed {
            if let Some(peer) = self.peers.get(&conn) {
                if peer.control.reason() == Some(&CloseReason::SLOW_CONSUMER) {
                    self.ctx.metrics.slow_consumers_closed.inc();
                    tracing::info!(workspace_id = %self.workspace_id, conn, "closed a slow consumer");
                }
            }
            self.leave(conn);
        }
    }

    pub(super) fn close_peer(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(peer) = self.peers.get(&conn) {
            peer.control.close(reason);
        }
    }

    /// Storage failed: drop the in-memory state (it holds updates storage does not) and stop.
    /// Another node took the workspace over (this node's heartbeat lapsed): nothing more may be
    /// written or served here. Peers reconnect and reach the new owner.
    pub(super) fn lost_lease(&mut self) {
        self.ctx.metrics.leases_lost.inc();
        tracing::warn!(workspace_id = %self.workspace_id, epoch = self.lease.epoch,
            "the workspace lease moved to another node; closing the room");
        self.fail(CloseReason::OWNER_MOVED);
    }

    fn fail(&mut self, reason: CloseReason) {
        for peer in self.peers.values() {
            peer.control.close(reason.clone());
        }
        self.peers.clear();
        self.outbox.clear();
        self.acks.clear();
        self.stopping = true;
    }

    async fn on_tick(&mut self) {
        self.expire_awareness();
        self.expire_locks().await;
        if self.compaction.is_none() && self.has_uncompacted() {
            let due = self.last_compaction.elapsed() >= self.ctx.settings.compact_interval;
            // All compaction slots busy: try again next tick rather than queue a copy of the
            // document behind them (a busy server compacts each room less often instead).
            let slot = self.ctx.compaction_slots.clone().try_acquire_owned();
            if let (true, Ok(slot)) = (due || self.idle_since.is_some(), slot) {
                self.start_compaction(slot);
            }
        }
        self.auto_version_tick();
        // Tick work happens outside a batch: deliver at once (nothing to make durable).
        self.deliver();
        let idle_long_enough = self
            .idle_since
            .is_some_and(|since| since.elapsed() >= self.ctx.settings.idle_unload);
        if idle_long_enough && self.compaction.is_none() && !self.has_uncompacted() {
            tracing::debug!(workspace_id = %self.workspace_id, "unloading idle room");
            self.auto_version_before_stop().await;
            self.stopping = true;
        }
    }

    fn has_uncompacted(&self) -> bool {
        self.next_seq - 1 > self.compacted_seq
    }

    /// Drops awareness states not renewed in time (30 s by default, as the JS server does; yrs has
    /// no such timer and JS clients expect it).
    fn expire_awareness(&mut self) {
        let now = now_millis();
        let timeout = self.ctx.settings.awareness_timeout.as_millis() as u64;
        let stale: Vec<ClientID> = self
            .awareness
            .iter()
            .filter(|(_, state)| state.data.is_some())
            .filter(|(_, state)| now.saturating_sub(state.last_updated) > timeout)
            .map(|(id, _)| id)
            .collect();
        for peer in self.peers.values_mut() {
            for id in &stale {
                peer.awareness_ids.remove(id);
            }
        }
        self.remove_awareness(&stale);
    }

    fn start_compaction(&mut self, slot: OwnedSemaphorePermit) {
        let (state, state_vector) = {
            let txn = self.awareness.doc().transact();
            (
                txn.encode_state_as_update_v1(&StateVector::default()),
                txn.state_vector().encode_v1(),
            )
        };
        let job = CompactionJob {
            workspace_id: self.workspace_id,
            lease: self.lease,
            state,
            state_vector,
            covers_seq: self.next_seq - 1,
            previous: self.projection.clone(),
        };
        self.last_compaction = Instant::now();
        let (db, metrics) = (self.ctx.db.clone(), self.ctx.metrics.clone());
        self.compaction = Some(tokio::spawn(async move {
            let outcome = compactor::run(job, db, metrics).await;
            drop(slot);
            outcome
        }));
    }

    fn on_compaction_done(&mut self, outcome: Option<CompactionOutcome>) {
        self.compaction = None;
        let Some(outcome) = outcome else {
            self.projection = None;
            return;
        };
        match outcome.result {
            Ok(projection) => {
                self.ctx
                    .metrics
                    .compaction_lag_entries
                    .sub(outcome.covers_seq - self.compacted_seq);
                self.compacted_seq = outcome.covers_seq;
                self.projection = Some(projection);
            }
            Err(CompactionError::Storage(PersistenceError::Fenced { .. })) => self.lost_lease(),
            // The fallback may have stored the snapshot; re-reading the rows next time is safe.
            Err(_) => self.projection = None,
        }
    }

    /// Flush, finish or run the final compaction, close every peer with 1012.
    async fn shutdown(&mut self) {
        self.flush().await;
        self.auto_version_before_stop().await;
        if let Some(running) = self.compaction.take() {
            let outcome = running.await.ok();
            self.on_compaction_done(outcome);
        }
        let slot = self.ctx.compaction_slots.clone().acquire_owned().await;
        if let (true, Ok(slot)) = (self.has_uncompacted(), slot) {
            self.start_compaction(slot);
            if let Some(running) = self.compaction.take() {
                let outcome = running.await.ok();
                self.on_compaction_done(outcome);
            }
        }
        for peer in self.peers.values() {
            peer.control.close(CloseReason::SERVER_RESTART);
        }
        self.peers.clear();
    }

    fn release_metrics(&mut self) {
        self.ctx.metrics.rooms_loaded.dec();
        self.ctx
            .metrics
            .compaction_lag_entries
            .sub(self.next_seq - 1 - self.compacted_seq);
        if let Some(projection) = &self.projection {
            compactor::forget_conflicts(&self.ctx.metrics, projection);
        }
    }
}

/// Refuses whatever raced into a room's queue before it was removed from the registry: nobody can
/// reach the room any more, so senders learn it is gone and get a fresh one.
pub(super) async fn refuse_remaining(mut commands: mpsc::Receiver<RoomCommand>) {
    commands.close();
    while let Some(command) = commands.recv().await {
        refuse(command);
    }
}

/// Answers a command of a room that has stopped (or never came to be) so no caller waits forever.
pub(super) fn refuse(command: RoomCommand) {
    match command {
        RoomCommand::Join { reply, .. } => {
            let _ = reply.send(Err(RoomClosed));
        }
        RoomCommand::Shutdown { reply } => {
            let _ = reply.send(());
        }
        RoomCommand::Http(request) => request.refuse(),
        RoomCommand::Leave { .. }
        | RoomCommand::Messages { .. }
        | RoomCommand::SetAccess { .. }
        | RoomCommand::LeaseLost => {}
    }
}

/// Sets `user.id` (and `user.name` when known) of an awareness state to the authenticated user.
/// Removals (`null`) and non-object states pass unchanged.
fn stamp_user(json: &str, user_id: Uuid, user_name: Option<&str>) -> Arc<str> {
    let Ok(serde_json::Value::Object(mut state)) = serde_json::from_str(json) else {
        return Arc::from(json);
    };
    let user = state
        .entry("user")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if !user.is_object() {
        *user = serde_json::Value::Object(Default::default());
    }
    if let Some(user) = user.as_object_mut() {
        user.insert("id".into(), serde_json::Value::String(user_id.to_string()));
        if let Some(name) = user_name {
            user.insert("name".into(), serde_json::Value::String(name.to_string()));
        }
    }
    Arc::from(serde_json::Value::Object(state).to_string())
}

/// Resolves when the running compaction finishes; never when there is none.
async fn wait_compaction(
    compaction: &mut Option<JoinHandle<CompactionOutcome>>,
) -> Option<CompactionOutcome> {
    match compaction {
        Some(handle) => handle.await.ok(),
        None => std::future::pending().await,
    }
}

/// Transaction origins carry the connection id (8 bytes, big-endian) so the update observer can
/// tell the broadcast who not to echo to.
pub(super) fn origin_of_conn(conn: ConnId) -> yrs::Origin {
    yrs::Origin::from(conn)
}

fn conn_of_origin(origin: &yrs::Origin) -> Option<ConnId> {
    let bytes: [u8; 8] = origin.as_ref().try_into().ok()?;
    Some(ConnId::from_be_bytes(bytes))
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awareness_states_carry_the_authenticated_user() {
        let id = Uuid::new_v4();
        let forged = r#"{"user":{"id":"someone-else","name":"Mallory","color":"red"},"cursor":1}"#;
        let stamped: serde_json::Value =
            serde_json::from_str(&stamp_user(forged, id, Some("Alice"))).expect("json");
        assert_eq!(stamped["user"]["id"], id.to_string());
        assert_eq!(stamped["user"]["name"], "Alice");
        assert_eq!(
            stamped["user"]["color"], "red",
            "client-chosen extras are kept"
        );
        assert_eq!(stamped["cursor"], 1);
        assert_eq!(&*stamp_user("null", id, None), "null");
        let bare: serde_json::Value =
            serde_json::from_str(&stamp_user(r#"{"user":"x"}"#, id, None)).expect("json");
        assert_eq!(bare["user"]["id"], id.to_string());
    }

    #[test]
    fn connection_ids_survive_the_origin_round_trip() {
        for conn in [0, 1, 42, u64::MAX] {
            assert_eq!(conn_of_origin(&origin_of_conn(conn)), Some(conn));
        }
    }
}
