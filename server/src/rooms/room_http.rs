//! HTTP requests served by a [`WorkspaceRoom`] (DESIGN §4, last point): reads of the live document,
//! server-originated edits, presence and locks. Edits are Yjs transactions in the room, so live
//! editors see them at once and they are logged, compacted and projected like any client update.
//! Every answer waits for the batch to be durable.

use chrono::{DateTime, Utc};
use nox_persistence::versions::DeltaBase;
use nox_sync_protocol::canvas::{self, BlockEntry, CanvasError, CanvasState, RelationEntry};
use nox_sync_protocol::locks::{LockView, ReleaseReason, ResourceType};
use nox_sync_protocol::restore::VersionSource;
use nox_sync_protocol::rules::body::{BlockChanges, NewBlock, NewRelation, RelationChanges};
use nox_sync_protocol::rules::graph::{self, Cascade};
use nox_sync_protocol::rules::{parse_id, parse_ref, FieldViolation, Problem};
use serde::Serialize;
use serde_json::{Map as JsonMap, Value};
use tokio::sync::oneshot;
use uuid::Uuid;
use yrs::Transact;

use super::lock_table::view;
use super::peer::ConnId;
use super::room::{origin_of_conn, WorkspaceRoom};
use super::room_insert::CanvasInsert;
use super::room_locks::LockRelease;
use super::room_versions::{RestoreOutcome, VersionState};

/// Transactions made by the server itself carry this origin: it is no peer's id, so every peer
/// receives them.
pub(super) const SERVER_ORIGIN: ConnId = 0;

/// A change to the canvas requested over HTTP, already checked against the column rules
/// ([`nox_sync_protocol::rules::body`]); the room checks it against the live canvas.
#[derive(Debug, Clone)]
pub enum CanvasEdit {
    CreateBlock {
        id: Uuid,
        block: NewBlock,
    },
    PatchBlock {
        id: Uuid,
        changes: BlockChanges,
    },
    CreateRelation {
        id: Uuid,
        relation: NewRelation,
    },
    PatchRelation {
        id: Uuid,
        changes: RelationChanges,
    },
    /// Removes the block with its cascade ([`graph::cascade`]).
    RemoveBlock {
        id: Uuid,
    },
    RemoveRelation {
        id: Uuid,
    },
}

impl CanvasEdit {
    fn target(&self) -> (ResourceType, Uuid) {
        match self {
            CanvasEdit::CreateBlock { id, .. }
            | CanvasEdit::PatchBlock { id, .. }
            | CanvasEdit::RemoveBlock { id } => (ResourceType::Block, *id),
            CanvasEdit::CreateRelation { id, .. }
            | CanvasEdit::PatchRelation { id, .. }
            | CanvasEdit::RemoveRelation { id } => (ResourceType::Relation, *id),
        }
    }

    fn creates(&self) -> bool {
        matches!(
            self,
            CanvasEdit::CreateBlock { .. } | CanvasEdit::CreateRelation { .. }
        )
    }
}

/// What an accepted edit writes, in one transaction.
enum CanvasWrite {
    PutBlock(String, JsonMap<String, Value>),
    PutRelation(String, JsonMap<String, Value>),
    Remove(Cascade),
}

/// What an edit left behind: the entity as it now reads, or nothing (a delete).
#[derive(Debug, Clone)]
pub enum Edited {
    Block(BlockEntry),
    Relation(RelationEntry),
    Removed,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EditError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Exists,
    #[error("locked by another user")]
    Locked(Box<LockView>),
    /// Fields the live canvas refuses (a missing reference, a cycle, a duplicate…).
    #[error("invalid fields")]
    Invalid(Vec<FieldViolation>),
    #[error("storage unavailable")]
    Unavailable,
}

/// Who is connected, from the server's own knowledge of each socket.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceEntry {
    pub user_id: Uuid,
    pub user_name: Option<String>,
    pub connections: usize,
    pub since: DateTime<Utc>,
}

type Reply<T> = oneshot::Sender<T>;

/// Which opted-in peers a broadcast event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAudience {
    /// Comment events (`?comments=1`; always for Hocuspocus).
    Comments,
    /// Chat messages of the workspace's project (`?chat=1`; always for Hocuspocus).
    Chat,
}

impl EventAudience {
    /// Its name on the cluster bus.
    pub fn as_str(self) -> &'static str {
        match self {
            EventAudience::Comments => "comments",
            EventAudience::Chat => "chat",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "comments" => Some(EventAudience::Comments),
            "chat" => Some(EventAudience::Chat),
            _ => None,
        }
    }

    fn wanted_by(self, info: &super::peer::PeerInfo) -> bool {
        match self {
            EventAudience::Comments => info.wants_comments,
            EventAudience::Chat => info.wants_chat,
        }
    }
}

pub enum HttpRequest {
    Canvas {
        reply: Reply<CanvasState>,
    },
    Edit {
        user_id: Uuid,
        /// Boxed: a checked edit is large next to the other requests.
        edit: Box<CanvasEdit>,
        reply: Reply<Result<Edited, EditError>>,
    },
    Presence {
        reply: Reply<Vec<PresenceEntry>>,
    },
    Locks {
        reply: Reply<Vec<LockView>>,
    },
    /// A stateless JSON event (a comment or chat message already committed) for the peers that
    /// opted in to `audience`; answers how many peers it was queued for.
    Broadcast {
        event: String,
        audience: EventAudience,
        reply: Reply<usize>,
    },
    /// Break a lock by id (an override by `by`). `None` when there is no such live lock.
    BreakLock {
        lock_id: Uuid,
        by: Uuid,
        reply: Reply<Option<LockView>>,
    },
    /// Many new blocks and relations in one transaction (`room_insert.rs`).
    Insert(CanvasInsert),
    /// The document's state for a version (`room_versions.rs`), once durable: the changes since
    /// `base` when worth it, else the full state.
    TakeVersion {
        base: Option<DeltaBase>,
        reply: Reply<VersionState>,
    },
    /// Brings the canvas back to `target` as a forward change by `user_id`. `prepared`: the
    /// `document_version` of the state the caller took (and stores as the state before the
    /// restore); the room takes a new one only if the document changed since, against `base`.
    Restore {
        user_id: Uuid,
        target: VersionSource,
        prepared: u64,
        base: Option<DeltaBase>,
        reply: Reply<Result<RestoreOutcome, EditError>>,
    },
}

impl HttpRequest {
    /// Answers a request that reached a room which is stopping: the caller retries or fails.
    pub fn refuse(self) {
        match self {
            HttpRequest::Edit { reply, .. } => {
                let _ = reply.send(Err(EditError::Unavailable));
            }
            HttpRequest::Insert(insert) => insert.refuse(),
            HttpRequest::Restore { reply, .. } => {
                let _ = reply.send(Err(EditError::Unavailable));
            }
            // Dropping the other replies tells the caller the room is gone.
            HttpRequest::Canvas { .. }
            | HttpRequest::Presence { .. }
            | HttpRequest::Locks { .. }
            | HttpRequest::Broadcast { .. }
            | HttpRequest::BreakLock { .. }
            | HttpRequest::TakeVersion { .. } => {}
        }
    }
}

/// An answer held back until the batch it belongs to is durable (`true`) or has failed.
pub struct PendingHttpReply(Box<dyn FnOnce(bool) + Send + Sync>);

impl PendingHttpReply {
    pub(super) fn new<T: Send + Sync + 'static>(
        reply: Reply<T>,
        value: T,
        on_failure: Option<T>,
    ) -> Self {
        Self(Box::new(move |durable| {
            let answer = if durable { Some(value) } else { on_failure };
            if let Some(answer) = answer {
                let _ = reply.send(answer);
            }
        }))
    }
}

impl WorkspaceRoom {
    pub(super) fn on_http(&mut self, request: HttpRequest) {
        match request {
            HttpRequest::Insert(insert) => self.on_insert(insert),
            HttpRequest::Canvas { reply } => {
                let canvas = self.read_canvas();
                self.http_replies
                    .push(PendingHttpReply::new(reply, canvas, None));
            }
            HttpRequest::Edit {
                user_id,
                edit,
                reply,
            } => {
                let result = self.apply_edit(user_id, *edit);
                let failure = Some(Err(EditError::Unavailable));
                self.http_replies
                    .push(PendingHttpReply::new(reply, result, failure));
            }
            HttpRequest::Presence { reply } => {
                let presence = self.presence();
                let _ = reply.send(presence);
            }
            HttpRequest::Locks { reply } => {
                let now = Utc::now();
                let locks = self
                    .locks
                    .live(now)
                    .iter()
                    .map(|(kind, lock)| view(*kind, lock, self.user_name(lock.locked_by)))
                    .collect();
                let _ = reply.send(locks);
            }
            HttpRequest::Broadcast {
                event,
                audience,
                reply,
            } => {
                let _ = reply.send(self.broadcast_event(&event, audience));
            }
            HttpRequest::BreakLock { lock_id, by, reply } => {
                let found = self.locks.find_by_id(lock_id).map(|(k, l)| (k, l.clone()));
                let answer = found.map(|(kind, lock)| {
                    let shown = view(kind, &lock, self.user_name(lock.locked_by));
                    self.lock_releases.push(LockRelease {
                        kind,
                        lock,
                        reason: ReleaseReason::Broken,
                        by: Some(by),
                    });
                    shown
                });
                self.http_replies
                    .push(PendingHttpReply::new(reply, answer, None));
            }
            HttpRequest::TakeVersion { base, reply } => {
                let state = self.take_version(base.as_ref());
                self.http_replies
                    .push(PendingHttpReply::new(reply, state, None));
            }
            HttpRequest::Restore {
                user_id,
                target,
                prepared,
                base,
                reply,
            } => {
                let outcome = Ok(self.restore_to(user_id, &target, prepared, base.as_ref()));
                let failure = Some(Err(EditError::Unavailable));
                self.http_replies
                    .push(PendingHttpReply::new(reply, outcome, failure));
            }
        }
    }

    /// Sends a stateless event straight to the peers that asked for its kind. It does not wait
    /// for a batch: the event describes rows already committed, and carries no document state.
    fn broadcast_event(&self, event: &str, audience: EventAudience) -> usize {
        let frame = bytes::Bytes::from(nox_sync_protocol::wire::encode_stateless(event));
        self.peers
            .values()
            .filter(|peer| audience.wanted_by(&peer.info))
            .filter(|peer| peer.send(frame.clone()))
            .count()
    }

    /// Sends every held-back answer: the batch is durable (`true`) or failed.
    pub(super) fn answer_http(&mut self, durable: bool) {
        for PendingHttpReply(answer) in std::mem::take(&mut self.http_replies) {
            answer(durable);
        }
    }

    fn read_canvas(&self) -> CanvasState {
        canvas::read_canvas(&self.awareness.doc().transact())
    }

    /// Checks `edit` against the live canvas (existence, then references, then the locks of
    /// everything the write touches) and applies it as one server-originated transaction.
    fn apply_edit(&mut self, user_id: Uuid, edit: CanvasEdit) -> Result<Edited, EditError> {
        let (kind, id) = edit.target();
        check_existence(edit.creates(), self.resource_exists(kind, id))?;
        let write = {
            let live = LiveCanvas::new(self.awareness.doc());
            plan_write(&live, user_id, edit)?
        };
        self.check_locks(user_id, &write)?;
        let written = {
            let mut txn = self
                .awareness
                .doc()
                .transact_mut_with(origin_of_conn(SERVER_ORIGIN));
            match &write {
                CanvasWrite::PutBlock(id, fields) => canvas::put_block(&mut txn, id, fields),
                CanvasWrite::PutRelation(id, fields) => canvas::put_relation(&mut txn, id, fields),
                CanvasWrite::Remove(cascade) => {
                    canvas::remove_cascade(&mut txn, cascade);
                    Ok(())
                }
            }
        };
        written.map_err(|e| EditError::Invalid(vec![refused_by_writer(e)]))?;
        self.acting_user = Some(user_id);
        self.collect_emitted();
        self.acting_user = None;
        Ok(self.read_written(&write))
    }

    fn read_written(&self, write: &CanvasWrite) -> Edited {
        let txn = self.awareness.doc().transact();
        let read = match write {
            CanvasWrite::PutBlock(id, _) => canvas::read_block(&txn, id).map(Edited::Block),
            CanvasWrite::PutRelation(id, _) => {
                canvas::read_relation(&txn, id).map(Edited::Relation)
            }
            CanvasWrite::Remove(_) => None,
        };
        read.unwrap_or(Edited::Removed)
    }

    /// 423 when another user holds a lock on anything the write touches (for a delete: every
    /// block and relation of its cascade).
    fn check_locks(&self, user_id: Uuid, write: &CanvasWrite) -> Result<(), EditError> {
        let now = Utc::now();
        for (kind, id) in touched(write) {
            if let Some(lock) = self.locks.holder(kind, id, now) {
                if lock.locked_by != user_id {
                    let shown = view(kind, lock, self.user_name(lock.locked_by));
                    return Err(EditError::Locked(Box::new(shown)));
                }
            }
        }
        Ok(())
    }

    fn presence(&self) -> Vec<PresenceEntry> {
        let mut by_user: std::collections::BTreeMap<Uuid, PresenceEntry> = Default::default();
        for peer in self.peers.values() {
            let entry = by_user
                .entry(peer.info.user_id)
                .or_insert_with(|| PresenceEntry {
                    user_id: peer.info.user_id,
                    user_name: peer.info.user_name.clone(),
                    connections: 0,
                    since: peer.joined_at,
                });
            entry.connections += 1;
            entry.since = entry.since.min(peer.joined_at);
        }
        by_user.into_values().collect()
    }
}

/// The live canvas as plain values, read on first use: the graph rules and the cascade need all
/// of it, but most edits (a rename, a move) need none, and reading it costs about 160 ms at 10k
/// blocks + 10k relations (release build), time the room serves nobody else.
struct LiveCanvas<'a> {
    doc: &'a yrs::Doc,
    read: std::cell::OnceCell<CanvasState>,
}

impl<'a> LiveCanvas<'a> {
    fn new(doc: &'a yrs::Doc) -> Self {
        Self {
            doc,
            read: std::cell::OnceCell::new(),
        }
    }

    fn get(&self) -> &CanvasState {
        self.read
            .get_or_init(|| canvas::read_canvas(&self.doc.transact()))
    }
}

/// 409 for a create of an id the canvas holds, 404 for any other edit of an id it does not.
fn check_existence(creates: bool, exists: bool) -> Result<(), EditError> {
    match (creates, exists) {
        (true, true) => Err(EditError::Exists),
        (false, false) => Err(EditError::NotFound),
        _ => Ok(()),
    }
}

/// The write an edit makes, once its references hold on the live canvas.
fn plan_write(
    canvas: &LiveCanvas<'_>,
    user_id: Uuid,
    edit: CanvasEdit,
) -> Result<CanvasWrite, EditError> {
    let invalid = |found: Vec<FieldViolation>| EditError::Invalid(found);
    match edit {
        CanvasEdit::CreateBlock { id, block } => {
            check_block_parent(canvas, id, &block.fields).map_err(invalid)?;
            Ok(CanvasWrite::PutBlock(
                id.to_string(),
                block.doc_fields(user_id),
            ))
        }
        CanvasEdit::PatchBlock { id, changes } => {
            check_block_parent(canvas, id, &changes).map_err(invalid)?;
            Ok(CanvasWrite::PutBlock(id.to_string(), changes.doc_fields()))
        }
        CanvasEdit::CreateRelation { id, relation } => {
            check_relation_ends(canvas, id, &relation.fields).map_err(invalid)?;
            Ok(CanvasWrite::PutRelation(
                id.to_string(),
                relation.doc_fields(),
            ))
        }
        CanvasEdit::PatchRelation { id, changes } => {
            check_relation_ends(canvas, id, &changes).map_err(invalid)?;
            Ok(CanvasWrite::PutRelation(
                id.to_string(),
                changes.doc_fields(),
            ))
        }
        CanvasEdit::RemoveBlock { id } => Ok(CanvasWrite::Remove(graph::cascade(canvas.get(), id))),
        CanvasEdit::RemoveRelation { id } => Ok(CanvasWrite::Remove(Cascade {
            relations: [id.to_string()].into(),
            ..Cascade::default()
        })),
    }
}

fn check_block_parent(
    canvas: &LiveCanvas<'_>,
    id: Uuid,
    changes: &BlockChanges,
) -> Result<(), Vec<FieldViolation>> {
    match changes.parent_block_id {
        Some(Some(parent)) => graph::check_parent(canvas.get(), id, parent).map_err(|v| vec![v]),
        _ => Ok(()),
    }
}

/// Checked when the edit sets an end; an end it leaves is taken from the stored relation.
fn check_relation_ends(
    canvas: &LiveCanvas<'_>,
    id: Uuid,
    changes: &RelationChanges,
) -> Result<(), Vec<FieldViolation>> {
    if changes.source_block_id.is_none() && changes.target_block_id.is_none() {
        return Ok(());
    }
    let canvas = canvas.get();
    let stored = canvas.relations.get(&id.to_string());
    let source = changes
        .source_block_id
        .or_else(|| stored.and_then(|r| parse_ref(&r.source_block_id)));
    let target = changes
        .target_block_id
        .or_else(|| stored.and_then(|r| parse_ref(&r.target_block_id)));
    match (source, target) {
        (Some(source), Some(target)) => graph::check_relation_ends(canvas, id, source, target),
        // The stored end is no id (a stock client wrote it): the patch must set both.
        (None, _) => Err(vec![FieldViolation::new(
            "source_block_id",
            Problem::NotALiveBlock,
        )]),
        (_, None) => Err(vec![FieldViolation::new(
            "target_block_id",
            Problem::NotALiveBlock,
        )]),
    }
}

/// Every lockable resource a write touches.
fn touched(write: &CanvasWrite) -> Vec<(ResourceType, Uuid)> {
    let (blocks, relations): (Vec<&String>, Vec<&String>) = match write {
        CanvasWrite::PutBlock(id, _) => (vec![id], Vec::new()),
        CanvasWrite::PutRelation(id, _) => (Vec::new(), vec![id]),
        CanvasWrite::Remove(cascade) => (
            cascade.blocks.iter().collect(),
            cascade.relations.iter().collect(),
        ),
    };
    // Keys that are no ids cannot be locked.
    let blocks = blocks.into_iter().filter_map(|key| parse_id(key));
    let relations = relations.into_iter().filter_map(|key| parse_id(key));
    blocks
        .map(|id| (ResourceType::Block, id))
        .chain(relations.map(|id| (ResourceType::Relation, id)))
        .collect()
}

/// The document writers refuse only what a checked edit never holds; kept as a 422 anyway.
fn refused_by_writer(err: CanvasError) -> FieldViolation {
    match err {
        CanvasError::UnknownField(field) => FieldViolation::new(field, Problem::UnknownField),
        CanvasError::NotAnObject(field) => FieldViolation::new(field, Problem::NotAnObject),
    }
}
