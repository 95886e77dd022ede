//! Updates that depend on changes the server never received.
//!
//! yrs handles them in two ways, neither of which fires the update observer (so nothing of them
//! would be logged or broadcast): a struct whose origin or parent is missing waits aside as a
//! "pending" update; a struct whose only gap is earlier clocks of its own client is integrated at
//! once behind a skip — the state vector does not move, so the observer sees no change. Both are
//! encoded in the room's full state, but fuzzing found skip-integrated structs that a fresh
//! document built from that state cannot integrate again; the compactor therefore keeps the log
//! whenever the full state does not rebuild the live clocks (`snapshot::rebuilds`). Honest clients
//! rarely cause this (the server has
//! every change they built on), so two rules keep it durable, convergent and bounded:
//! - an update that arrives out of order is logged and relayed as it arrived (besides what the
//!   observer saw integrate), so the log replays to the same document, peers hold what the room
//!   holds, and its ack stays true;
//! - when out-of-order updates grow past [`MAX_WAITING_BYTES`], the pending parts are dropped from
//!   the document, the sender is closed with 1008 (it reconnects and resyncs, sending what it has)
//!   and is not acked, and the room compacts soon so the logged copies of the dropped parts go too.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use nox_sync_protocol::wire;
use yrs::block::ClientID;
use yrs::StateVector;

use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Transact, WriteTxn};

use super::peer::{CloseReason, ConnId};
use super::room::{Target, WorkspaceRoom};

/// Bytes of updates that may wait for missing dependencies in one document.
pub(super) const MAX_WAITING_BYTES: usize = 1024 * 1024;

pub(super) const TOO_MUCH_WAITING: CloseReason = CloseReason::new(
    1008,
    "too many changes depend on changes the server does not have: resync",
);

/// What of the document waits for missing changes.
#[derive(Default)]
pub(super) struct Waiting {
    /// Bytes of the out-of-order updates received since the document was last complete.
    bytes: usize,
    /// Per client, the clock the document must reach for the holes before skips to be filled.
    holes: HashMap<ClientID, u32>,
}

impl Waiting {
    /// For a loaded document (pending parts are counted; holes are not known, so not tracked).
    pub(super) fn of_loaded(doc: &Doc) -> Self {
        Self {
            bytes: waiting_bytes_of(doc),
            holes: HashMap::new(),
        }
    }

    /// Records the clocks this update skipped ahead to: `first` (its lowest clock per client)
    /// beyond `known` (the document's state vector before it).
    fn note_holes(&mut self, first: &StateVector, known: &StateVector) {
        for (client, clock) in first.iter() {
            if *clock > known.get(client) {
                let hole = self.holes.entry(*client).or_default();
                *hole = (*hole).max(*clock);
            }
        }
    }
}

/// Whether an update (its lowest clock per client: `first`) skips clocks the document (its state
/// vector: `known`) does not have.
pub(super) fn skips_ahead(first: &StateVector, known: &StateVector) -> bool {
    first
        .iter()
        .any(|(client, clock)| *clock > known.get(client))
}

impl WorkspaceRoom {
    /// After `conn`'s update (`bytes`) was applied out of order. Returns false when its pending
    /// parts were dropped (so it may not be acked).
    pub(super) fn keep_waiting(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        first: &StateVector,
        known: &StateVector,
    ) -> bool {
        self.waiting.bytes += bytes.len();
        self.waiting.note_holes(first, known);
        // Logged and relayed even when over the bound: structs integrated behind a skip are in
        // the document now, like any write, and must be stored and seen like one.
        let user_id = self.peers.get(&conn).map(|p| p.info.user_id);
        self.queue_bytes(
            Target::AllExcept(Some(conn)),
            Bytes::from(wire::encode_update(bytes)),
        );
        self.log_entry(bytes.to_vec(), user_id);
        if self.waiting.bytes > MAX_WAITING_BYTES {
            self.drop_waiting(conn);
            return false;
        }
        true
    }

    /// After an in-order update: forgets the count once nothing waits any more.
    pub(super) fn settle_waiting(&mut self) {
        if self.waiting.bytes == 0 && self.waiting.holes.is_empty() {
            return;
        }
        let txn = self.awareness.doc().transact();
        let known = txn.state_vector();
        self.waiting
            .holes
            .retain(|client, clock| known.get(client) < *clock);
        if self.waiting.holes.is_empty() && !txn.has_missing_updates() {
            self.waiting = Waiting::default();
        }
    }

    fn drop_waiting(&mut self, conn: ConnId) {
        let dropped = self.awareness.doc().transact_mut().prune_pending();
        tracing::warn!(
            workspace_id = %self.workspace_id,
            conn,
            waiting_bytes = self.waiting.bytes,
            dropped = dropped.is_some(),
            "dropped updates waiting for missing dependencies"
        );
        // Skipped-ahead structs are integrated (like any write) and stay; their holes stay tracked.
        self.waiting.bytes = 0;
        self.version += 1;
        self.close_peer(conn, TOO_MUCH_WAITING);
        // The log still holds the waiting updates; the next snapshot (without them) trims it.
        if let Some(due) = Instant::now().checked_sub(self.ctx.settings.compact_interval) {
            self.last_compaction = due;
        }
    }
}

/// Roughly how many bytes of a document wait for missing dependencies.
fn waiting_bytes_of(doc: &Doc) -> usize {
    let txn = doc.transact();
    let store = txn.store();
    let blocks = store
        .pending_update()
        .map_or(0, |pending| pending.update.encode_v1().len());
    let deletes = store.pending_ds().map_or(0, |ds| ds.encode_v1().len());
    blocks + deletes
}
