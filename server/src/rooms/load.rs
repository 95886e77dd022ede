//! Loading a workspace document from storage (DESIGN §3): the snapshot, then the log after it. A
//! workspace with projected rows but no document (imported data) is built once from its rows, and
//! that document is stored at once so every later load starts from it.
//!
//! Loading is split in two: [`fetch`] (the I/O) and [`build`] (decode + apply, CPU). In between,
//! the loading room can already answer joiners from the stored bytes ([`Fetched::complete_state`]).

use nox_persistence::cluster::Lease;
use nox_persistence::compaction::{self, Compaction};
use nox_persistence::db::Database;
use nox_persistence::error::PersistenceError;
use nox_persistence::locks::{self, EditLock};
use nox_persistence::update_log::StoredDocument;
use nox_persistence::{projection_store, update_log};
use nox_sync_protocol::canvas;
use nox_sync_protocol::projection::ProjectionDiff;
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// A document ready to be served, and where the log stands.
pub struct LoadedDocument {
    pub doc: Doc,
    /// The seq the next appended update gets.
    pub next_seq: i64,
    /// The highest seq already folded into the stored snapshot.
    pub compacted_seq: i64,
    /// The workspace's live edit locks (they survive restarts as rows).
    pub locks: Vec<EditLock>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Storage(#[from] PersistenceError),
    /// Stored bytes that do not decode: the workspace is not served rather than served partially.
    #[error("stored update {seq} of workspace {workspace_id} is corrupt: {detail}")]
    Corrupt {
        workspace_id: Uuid,
        seq: i64,
        detail: String,
    },
    #[error("loading task failed: {0}")]
    Task(String),
}

/// What storage holds for a workspace, read but not yet turned into a document.
pub enum Fetched {
    /// Nothing was stored or the document was built from rows: ready to serve.
    Ready(LoadedDocument),
    /// A snapshot and/or log to decode and apply ([`build`]), which is CPU work.
    Stored {
        stored: StoredDocument,
        locks: Vec<EditLock>,
    },
}

impl Fetched {
    /// When storage holds exactly one snapshot and no log after it, those bytes *are* the
    /// document: they can answer a joiner's SyncStep1 before the document has been built.
    pub fn complete_state(&self) -> Option<&[u8]> {
        match self {
            Fetched::Stored { stored, .. } if stored.log.is_empty() => stored.snapshot.as_deref(),
            _ => None,
        }
    }
}

/// Reads everything the workspace's room starts from (the I/O part of loading).
///
/// Runs under the workspace's `lease`, taken before: whatever the previous owner committed is
/// visible by then (DESIGN §7).
pub async fn fetch(db: &Database, lease: &Lease) -> Result<Fetched, LoadError> {
    let workspace_id = lease.workspace_id;
    locks::sweep_expired(db.pool(), workspace_id).await?;
    let live_locks = locks::live_for_workspace(db.pool(), workspace_id).await?;
    let stored = update_log::load(db.pool(), workspace_id).await?;
    if stored.is_empty() {
        let mut loaded = load_from_rows(db, lease).await?;
        loaded.locks = live_locks;
        return Ok(Fetched::Ready(loaded));
    }
    Ok(Fetched::Stored {
        stored,
        locks: live_locks,
    })
}

/// Turns what [`fetch`] read into a document, on a blocking thread (decode + apply of a large
/// document takes tens of milliseconds and must not stall the async workers).
pub async fn build(workspace_id: Uuid, fetched: Fetched) -> Result<LoadedDocument, LoadError> {
    let (stored, locks) = match fetched {
        Fetched::Ready(loaded) => return Ok(loaded),
        Fetched::Stored { stored, locks } => (stored, locks),
    };
    let next_seq = stored.next_seq();
    let compacted_seq = stored.covers_seq;
    let doc = tokio::task::spawn_blocking(move || {
        let doc = canvas::new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            let snapshot = stored.snapshot.iter().map(|s| (stored.covers_seq, s));
            let log = stored.log.iter().map(|(seq, bytes)| (*seq, bytes));
            for (seq, bytes) in snapshot.chain(log) {
                apply_stored(&mut txn, workspace_id, seq, bytes)?;
            }
        }
        Ok::<_, LoadError>(doc)
    })
    .await
    .map_err(|e| LoadError::Task(e.to_string()))??;
    Ok(LoadedDocument {
        doc,
        next_seq,
        compacted_seq,
        locks,
    })
}

fn apply_stored(
    txn: &mut yrs::TransactionMut,
    workspace_id: Uuid,
    seq: i64,
    bytes: &[u8],
) -> Result<(), LoadError> {
    let corrupt = |detail: String| LoadError::Corrupt {
        workspace_id,
        seq,
        detail,
    };
    let update = Update::decode_v1(bytes).map_err(|e| corrupt(e.to_string()))?;
    txn.apply_update(update).map_err(|e| corrupt(e.to_string()))
}

/// No snapshot and no log: build the document from `core_blocks` / `core_relations` (empty when the
/// workspace is new) and store it as the first snapshot when there was anything to import.
async fn load_from_rows(db: &Database, lease: &Lease) -> Result<LoadedDocument, LoadError> {
    let workspace_id = lease.workspace_id;
    let (blocks, relations, usages) = projection_store::load_rows(db.pool(), workspace_id).await?;
    let doc = canvas::new_canvas_doc();
    if blocks.is_empty() && relations.is_empty() {
        return Ok(LoadedDocument {
            doc,
            next_seq: 1,
            compacted_seq: 0,
            locks: Vec::new(),
        });
    }
    let imported = canvas::canvas_update_from_rows(&blocks, &relations, &usages);
    let (state, state_vector) = {
        let mut txn = doc.transact_mut();
        apply_stored(&mut txn, workspace_id, 0, &imported)?;
        (
            txn.encode_state_as_update_v1(&StateVector::default()),
            yrs::updates::encoder::Encode::encode_v1(&txn.state_vector()),
        )
    };
    // The rows already are the projection of this document: nothing to diff.
    compaction::compact(
        db.pool(),
        Compaction {
            lease,
            workspace_id,
            state: &state,
            state_vector: &state_vector,
            covers_seq: 0,
            diff: &ProjectionDiff::default(),
            conflicts: &[],
        },
    )
    .await?;
    tracing::info!(
        %workspace_id,
        blocks = blocks.len(),
        relations = relations.len(),
        "built the workspace document from its rows"
    );
    Ok(LoadedDocument {
        doc,
        next_seq: 1,
        compacted_seq: 0,
        locks: Vec::new(),
    })
}
